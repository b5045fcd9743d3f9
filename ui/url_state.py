"""Page controls in the address bar: every widget made through this module starts from its value
in `st.query_params` (when the link carries a valid one) and writes its value back there, so a
copied address opens the same picture in a fresh session.

    w = url_state.slider("Weight", 0.05, 0.95, 0.8, 0.05, key="lv_w", where=c1)
    url_state.copy_link()

A value that does not parse or is out of the widget's range falls back to the default with one
line (a toast). Values equal to the default are left out of the address, so links stay short.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

_FIRST = "_url_state_first"   # key → the value the widget was first created with (kept stable)


def _encode(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else repr(value)
    return str(value)


def _decode(raw: str, like):
    """raw → the type of `like` (bool, int, float or str); ValueError when it does not parse."""
    if isinstance(like, bool):
        if raw not in ("0", "1", "true", "false", "True", "False"):
            raise ValueError(raw)
        return raw in ("1", "true", "True")
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(raw)
        return value
    return raw


def _closest(options, value):
    """The option equal to value (numbers compared with a tolerance, as links round them)."""
    for option in options:
        if option == value or (isinstance(option, float) and isinstance(value, (int, float))
                               and abs(option - value) <= 1e-9 * max(1.0, abs(option))):
            return option
    raise ValueError(value)


def initial(key: str, default, *, low=None, high=None, options=None):
    """The value a widget `key` is created with: from the link when valid, else `default`
    (with one line saying so). Stable across reruns: the widget's own state takes over."""
    first = st.session_state.setdefault(_FIRST, {})
    if key in first and key in st.session_state:
        return first[key]
    value = default
    raw = st.query_params.get(key)
    if raw is not None and key not in st.session_state:
        try:
            parsed = _decode(raw, default if options is None else options[0])
            if options is not None:
                parsed = _closest(options, parsed)
            if (low is not None and parsed < low) or (high is not None and parsed > high):
                raise ValueError(parsed)
            value = parsed
        except (ValueError, TypeError):
            st.toast(f"The link's {key}={raw!r} is not a valid setting; using the default "
                     f"{_encode(default)}.", icon=":material/link_off:")
    first[key] = value
    return value


def publish(key: str, value, default) -> None:
    """Write value to the address (or drop it there when it equals the default)."""
    encoded = None if value == default else _encode(value)
    if st.query_params.get(key) != encoded:
        if encoded is None:
            del st.query_params[key]
        else:
            st.query_params[key] = encoded


def _bound(make, key: str, default, *, low=None, high=None, options=None):
    value = make(initial(key, default, low=low, high=high, options=options))
    publish(key, value, default)
    return value


def slider(label, min_value, max_value, value, step=None, *, key: str, where=st, **kw):
    return _bound(lambda v: where.slider(label, min_value, max_value, v, step, key=key, **kw),
                  key, value, low=min_value, high=max_value)


def select_slider(label, options, value, *, key: str, where=st, **kw):
    options = list(options)
    return _bound(lambda v: where.select_slider(label, options, value=v, key=key, **kw),
                  key, value, options=options)


def radio(label, options, value, *, key: str, where=st, **kw):
    options = list(options)
    return _bound(lambda v: where.radio(label, options, index=options.index(v), key=key, **kw),
                  key, value, options=options)


def selectbox(label, options, value, *, key: str, where=st, **kw):
    options = list(options)
    return _bound(lambda v: where.selectbox(label, options, index=options.index(v), key=key, **kw),
                  key, value, options=options)


def checkbox(label, value: bool, *, key: str, where=st, toggle: bool = False, **kw):
    widget = where.toggle if toggle else where.checkbox
    return _bound(lambda v: widget(label, value=v, key=key, **kw), key, bool(value))


def number_input(label, min_value, max_value, value, step=None, *, key: str, where=st, **kw):
    return _bound(lambda v: where.number_input(label, min_value, max_value, v, step, key=key, **kw),
                  key, value, low=min_value, high=max_value)


def link() -> str:
    """This page's address with every control's value in it."""
    parts = urlsplit(st.context.url or "")
    path = st.session_state.get("_page_path", "")
    base = f"{parts.scheme}://{parts.netloc}/{path}" if parts.netloc else f"/{path}"
    query = urlencode(st.query_params.to_dict())
    return base + (f"?{query}" if query else "")


def copy_link(where=st) -> None:
    """A "Copy link" popover: the address of this exact picture, with a copy button."""
    with where.popover("Copy link", icon=":material/link:"):
        st.code(link(), language=None, wrap_lines=True)
        st.caption("Opening this address in a new session restores every control on this page.")

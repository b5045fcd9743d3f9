"""Shared by the page files: make a page that was opened by a deep link run inside app.py.

Streamlit keeps a legacy mode for apps with a `pages/` folder: until some script run has called
`st.navigation`, a request for /langevin runs pages/langevin.py on its own — no sidebar (seed,
device) and an auto-generated page list. That happens for the first visitor after a server start
who opens (or reloads) a page URL. `ensure_app()` at the top of a page switches the server out of
that mode and reruns, so app.py runs and then shows the requested page.
"""

from __future__ import annotations

import streamlit as st


def ensure_app() -> None:
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()

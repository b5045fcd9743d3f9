"""Shared pytest fixtures.

- Streamlit caches are cleared around every test, so AppTests do not see each other's results.
- Browser fixtures (a live `streamlit run app.py` server and headless Chromium) live in
  tests/browser/server.py and are registered here: use `streamlit_server`, `chromium`, `browser_page`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `import engine`, `import ui`, `from tests.browser.server import …`
    sys.path.insert(0, str(ROOT))

from tests.browser.server import browser_page, chromium, streamlit_server  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """st.cache_data / st.cache_resource outlive an AppTest; start and end every test clean."""
    try:
        import streamlit as st
    except ImportError:
        yield
        return
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_test():
    """A fresh AppTest of app.py with a timeout that fits torch imports on a slow machine."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)

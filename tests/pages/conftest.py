"""Shared by the page tests: an AppTest of app.py opened on one page."""

from __future__ import annotations

import pytest

from engine.paths import PROJECT_ROOT


@pytest.fixture
def open_page(tmp_path, monkeypatch):
    """open_page("app_pages/x.py") → (AppTest on that page, stored media). Runs go to a temporary
    SCORELAB_RUNS; `stored` collects (bytes, mimetype, filename) of every media file the page hands
    to Streamlit, so downloads can be decoded."""
    import streamlit as st
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SCORELAB_RUNS", str(tmp_path / "runs"))
    st.cache_resource.clear()
    st.cache_data.clear()
    stored = []
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes):
            stored.append((path_or_data, mimetype, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)

    def open_(page_file: str):
        at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180)
        at.run()
        at.switch_page(page_file).run()
        return at, stored

    yield open_
    st.cache_resource.clear()

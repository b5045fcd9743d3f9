"""Shared by the page files: the job manager, and making a page that was opened by a deep link
run inside app.py.

Streamlit keeps a legacy mode for apps with a `pages/` folder: until some script run has called
`st.navigation`, a request for /langevin runs pages/langevin.py on its own — no sidebar (seed,
device) and an auto-generated page list. That happens for the first visitor after a server start
who opens (or reloads) a page URL. `ensure_app()` at the top of a page switches the server out of
that mode and reruns, so app.py runs and then shows the requested page.
"""

from __future__ import annotations

import streamlit as st

from engine.paths import default_runs_root
from engine.store.jobs import JobManager


def ensure_app() -> None:
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def _job_manager(root: str) -> JobManager:
    return JobManager(root)


def job_manager() -> JobManager:
    """One job manager per runs folder, shared by every page and session (it reaps the workers
    it started); the state itself lives in the run folders."""
    return _job_manager(str(default_runs_root()))


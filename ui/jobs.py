"""The job manager the Train and MNIST pages share (one per runs folder, for every session)."""

from __future__ import annotations

import streamlit as st

from engine.paths import default_runs_root
from engine.store.jobs import JobManager


@st.cache_resource(show_spinner=False)
def _job_manager(root: str) -> JobManager:
    return JobManager(root)


def job_manager() -> JobManager:
    """One job manager per runs folder, shared by every page and session (it reaps the workers
    it started); the state itself lives in the run folders."""
    return _job_manager(str(default_runs_root()))


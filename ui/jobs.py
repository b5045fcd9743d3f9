"""The job manager the pages share (one per runs folder, for every session), and starting a job
from a page with one line of feedback."""

from __future__ import annotations

from pathlib import Path

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



def start_job(config, argv: list[str], name: str, record: dict | None = None) -> Path | None:
    """Validate `config` and queue `python -m engine ARGV`: one error line on the page for a bad
    value or a full queue (both ValueErrors), else one success line. The run folder, or None."""
    try:
        config.validate()
        run_dir = job_manager().submit(argv, name=name,
                                       config=config.to_dict() if record is None else record)
    except ValueError as err:
        st.error(str(err))
        return None
    st.success(f"Started {run_dir.name}.")
    return run_dir

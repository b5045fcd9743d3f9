"""The job managers the pages share (one per runs folder, for every session), starting a job from
a page with one line of feedback, and following running jobs without blocking the page.

Training jobs live in the runs folder; jobs that compute a page's result (sampling, inpainting,
likelihoods) in its `computed/` subfolder, with their own manager, so they never wait behind a
long training run. `follow_jobs` draws each job's progress bar (with the ETA the job measured),
a Cancel button and its live intermediate result in a fragment that polls once a second; the rest
of the page stays interactive, and when the last job ends the page reruns once to show results.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from engine.paths import default_runs_root
from engine.store.jobs import JobManager, job_fraction, job_progress
from engine.store.runs import FINAL_STATES, RunInfo, read_run

COMPUTED = "computed"          # subfolder of the runs folder for the pages' computing jobs
KEEP_COMPUTED = 40             # ended computing jobs kept on disk (older ones are deleted)
POLL_SECONDS = 1.0


@st.cache_resource(show_spinner=False)
def _job_manager(root: str, keep_ended: int | None = None) -> JobManager:
    return JobManager(root, keep_ended=keep_ended)


def job_manager(sub: str = "") -> JobManager:
    """One job manager per runs folder (or its subfolder `sub`, e.g. COMPUTED), shared by every
    page and session (it reaps the workers it started); the state itself lives in the run folders."""
    root = default_runs_root()
    if sub:
        return _job_manager(str(root / sub), KEEP_COMPUTED if sub == COMPUTED else None)
    return _job_manager(str(root))


def computing_threads() -> int:
    """Torch threads for a computing job: every core but one, which the page keeps."""
    return max(1, (os.cpu_count() or 2) - 1)


def start_job(config, argv: list[str], name: str, record: dict | None = None, sub: str = "",
              out_flag: str = "--out", announce: bool = True) -> Path | None:
    """Validate `config` (if any) and queue `python -m engine ARGV` (in the manager of `sub`): one
    error line on the page for a bad value or a full queue (both ValueErrors), else (if `announce`)
    one success line. The run folder, or None."""
    try:
        if config is not None:
            config.validate()
        extra = {"out_flag": out_flag, "threads": computing_threads()} if sub == COMPUTED else {}
        if record is None and config is not None:
            record = config.to_dict()
        run_dir = job_manager(sub).submit(argv, name=name, config=record, **extra)
    except ValueError as err:
        st.error(str(err))
        return None
    if announce:
        st.success(f"Started {run_dir.name}.")
    return run_dir


def job_infos(jobs: dict[str, str], sub: str = COMPUTED) -> dict[str, RunInfo]:
    """{title: RunInfo} for {title: run folder}; a folder that vanished reads as unreadable."""
    manager = job_manager(sub)
    manager.pump()
    out = {}
    for title, run_dir in jobs.items():
        info = read_run(run_dir)
        if not Path(run_dir).is_dir():
            info.state, info.message = "unreadable", "The job's folder is gone; start it again."
        out[title] = info
    return out


def active(infos: dict[str, RunInfo]) -> bool:
    return any(info.state not in FINAL_STATES for info in infos.values())


def ended_sentence(info: RunInfo, what: str = "The job") -> str:
    """One sentence for a job that ended without a result."""
    if info.state == "cancelled":
        unit = info.status.get("unit", "step")
        if not info.step:
            return f"{what} was cancelled."
        return f"{what} was cancelled " + (f"{info.step}% of the way." if unit == "%" else
                                           f"after {unit} {info.step} of {info.total}.")
    if info.state == "failed":
        return info.message or f"{what} failed."
    if info.state == "interrupted":
        return f"{what} stopped without finishing (its process is gone); start it again."
    if info.state == "unreadable":
        return f"{what}'s folder cannot be read ({info.message}); start it again."
    return info.message or info.state


def supersede(jobs: dict[str, str] | None, sub: str = COMPUTED) -> None:
    """Cancel those of `jobs` still queued or running: a page that starts new ones for the same
    view does not leave the old ones using the CPU."""
    for title, info in job_infos(jobs or {}, sub).items():
        if info.state not in FINAL_STATES:
            job_manager(sub).cancel(info.dir)


def follow_jobs(jobs: dict[str, str], key: str, live=None, sub: str = COMPUTED) -> bool:
    """While any of `jobs` ({title: run folder}) is queued or running, show them in a fragment
    that polls every POLL_SECONDS: a progress bar with the measured ETA, Cancel, and
    `live(title, info)` (e.g. the grid after the last level). True while any is active."""
    if not active(job_infos(jobs, sub)):
        return False
    _follow(tuple(jobs.items()), key, live, sub)
    return True


@st.fragment(run_every=POLL_SECONDS)
def _follow(items: tuple, key: str, live, sub: str) -> None:
    infos = job_infos(dict(items), sub)
    cols = st.columns(len(infos))
    for i, (col, (title, info)) in enumerate(zip(cols, infos.items())):
        with col:
            st.markdown(f"**{title}**")
            if info.state in FINAL_STATES:
                st.caption(ended_sentence(info) if info.state != "finished" else "Finished.")
                continue
            cancelling = (info.dir / "cancel").exists()
            st.progress(job_fraction(info), text="Cancelling…" if cancelling else job_progress(info))
            if not cancelling and st.button("Cancel", key=f"{key}_cancel_{i}"):
                job_manager(sub).cancel(info.dir)
                st.caption("Cancelling…")
            if live is not None:
                live(title, info)
    if not active(infos):
        st.rerun()          # the whole page, once: the results replace the progress

"""Background jobs: each job is a `python -m engine …` subprocess writing its own run folder.

A subprocess (not a thread) because cancelling is then just terminating it, a crash cannot take
the app down, and CPU-heavy training does not starve the UI. The manager keeps no state that the
folders do not: after a browser reload or a server restart, `runs()` finds every run again.
At most `max_running` jobs run at once; the rest wait as "queued" and start as slots free up
(any call to `runs()`, `pump()` or `submit()` starts them). At most `max_queued` wait: a submit
beyond that raises QueueFull (one sentence), so nobody can pile up unbounded work.

A job's command gets its folder as `--out RUN_DIR` (or the flag named by submit's `out_flag`, e.g.
`sample --run-dir`). Jobs that compute rather than train (sampling, inpainting) report through
`LevelReporter` in the worker and are read back by `job_progress` / `read_array`:

RUN_DIR/ (besides engine.store.runs' config.json, status.json, launch.json, log.txt, cancel)
  status.json   + "unit" ("level"), "seconds" elapsed, "sec_per_unit" measured so far,
                  "eta_seconds" = sec_per_unit · (total − step)
  current.npy   the latest intermediate images (N, 28, 28) float32 in [0, 1], after each unit
  result.json   what the command measured, written before the final state "finished"
  *.npy, *.png  the command's results (engine.cli.sample: samples.npy, frames.npy, grid.png)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from engine.paths import PROJECT_ROOT, default_runs_root
from engine.progress import eta_seconds, format_seconds
from engine.store.checkpoints import _atomic_write, atomic_write_json
from engine.store.runs import FINAL_STATES, RunInfo, RunWriter, pid_alive, read_json, read_run


MAX_QUEUED = 8


class QueueFull(ValueError):
    """The job queue already holds max_queued waiting jobs (one sentence for the user)."""


def default_max_running() -> int:
    # Two cores here: one training job (one thread) leaves the other core to the UI.
    return max(1, (os.cpu_count() or 2) // 2)


class JobManager:
    def __init__(self, root=None, max_running: int | None = None, kill_after: float = 5.0,
                 max_queued: int = MAX_QUEUED, keep_ended: int | None = None):
        self.root = Path(root) if root is not None else default_runs_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_running = max_running or default_max_running()
        self.max_queued = max_queued
        self.keep_ended = keep_ended      # computing jobs: keep this many ended folders (None: all)
        self.kill_after = kill_after
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- submitting and launching ------------------------------------------------------------
    def submit(self, argv: list[str], name: str, config: dict | None = None,
               threads: int = 1, out_flag: str = "--out") -> Path:
        """Queue `python -m engine ARGV OUT_FLAG RUN_DIR`; returns the run folder. QueueFull when
        max_queued jobs are already waiting."""
        self.pump()
        waiting = sum(1 for i in self._scan() if i.state == "queued")
        if waiting >= self.max_queued:
            raise QueueFull(f"The job queue is full: {waiting} jobs are already waiting (at most "
                            f"{self.max_queued}); wait for one to finish or cancel one.")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = self.root / f"{stamp}-{_slug(name)}-{uuid.uuid4().hex[:6]}"
        run_dir.mkdir(parents=True)
        # status.json first: a folder becomes visible to scans only once config.json exists.
        atomic_write_json(run_dir / "status.json", {"state": "queued", "step": 0})
        atomic_write_json(run_dir / "config.json", {
            "name": name, "argv": list(argv), "config": config or {}, "created": time.time(),
            "threads": threads, "out_flag": out_flag,
        })
        self.pump()
        self.prune()
        return run_dir

    def prune(self) -> None:
        """Delete the oldest ended job folders beyond `keep_ended` (never a queued or running one;
        for the pages' computing jobs, whose results are cheap to make again — not training runs)."""
        if self.keep_ended is None:
            return
        ended = sorted((i for i in self._scan() if i.state in FINAL_STATES),
                       key=lambda i: i.created, reverse=True)
        for info in ended[self.keep_ended:]:
            shutil.rmtree(info.dir, ignore_errors=True)

    def pump(self) -> None:
        """Reap finished children, enforce pending kills, start queued runs while slots are free."""
        with self._lock:
            for key, proc in list(self._procs.items()):
                if proc.poll() is not None:
                    del self._procs[key]
            infos = self._scan()
            for info in infos:
                self._finish_cancel(info)
            running = sum(1 for i in infos if i.state in ("running", "starting"))
            for info in sorted(infos, key=lambda i: i.created):
                if running >= self.max_running:
                    break
                if info.state == "queued" and not (info.dir / "cancel").exists():
                    self._launch(info)
                    running += 1

    def _launch(self, info: RunInfo) -> None:
        argv = info.config.get("argv", [])
        env = dict(os.environ)
        threads = str(info.config.get("threads", 1))
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, SCORELAB_THREADS=threads,
                   PYTHONUNBUFFERED="1")
        log = open(info.dir / "log.txt", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *argv, info.config.get("out_flag") or "--out", str(info.dir)],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,  # own process group: cancel kills the whole tree
        )
        log.close()
        self._procs[str(info.dir)] = proc
        atomic_write_json(info.dir / "launch.json", {"pid": proc.pid, "launched": time.time()})

    # -- reading -------------------------------------------------------------------------------
    def _scan(self) -> list[RunInfo]:
        if not self.root.exists():
            return []
        return [read_run(d) for d in self.root.iterdir() if (d / "config.json").exists()]

    def runs(self) -> list[RunInfo]:
        """Every run under the root, newest first (starting queued ones when slots are free)."""
        self.pump()
        return sorted(self._scan(), key=lambda i: i.created, reverse=True)

    def get(self, run_dir) -> RunInfo:
        self.pump()
        return read_run(run_dir)

    # -- cancelling ------------------------------------------------------------------------------
    def cancel(self, run_dir) -> RunInfo:
        """Ask the worker to stop (it saves what it has and exits); killed if it does not."""
        run_dir = Path(run_dir)
        info = read_run(run_dir)
        if info.state in FINAL_STATES:
            return info
        (run_dir / "cancel").write_text(str(time.time()))
        if info.state == "queued":
            atomic_write_json(run_dir / "status.json",
                              {**info.status, "state": "cancelled", "message": "Cancelled before it started."})
        else:
            pid = (read_json(run_dir / "launch.json", {}) or {}).get("pid")
            if pid and pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        self.pump()
        return read_run(run_dir)

    def _finish_cancel(self, info: RunInfo) -> None:
        """A cancelled worker that ignores SIGTERM past `kill_after` seconds is killed."""
        flag = info.dir / "cancel"
        if info.state not in ("running", "starting") or not flag.exists():
            return
        try:
            asked = float(flag.read_text() or 0)
        except (OSError, ValueError):
            asked = 0.0
        if time.time() - asked < self.kill_after:
            return
        pid = (read_json(info.dir / "launch.json", {}) or {}).get("pid")
        if pid and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        atomic_write_json(info.dir / "status.json",
                          {**info.status, "state": "cancelled", "message": "Cancelled (stopped by force)."})

    def wait(self, run_dir, timeout: float = 120.0, poll: float = 0.2) -> RunInfo:
        """Block until the run reaches a final state (for the CLI and tests, never the UI)."""
        deadline = time.time() + timeout
        while True:
            info = self.get(run_dir)
            if info.state in FINAL_STATES or time.time() > deadline:
                return info
            time.sleep(poll)


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())
    return keep.strip("-")[:40] or "run"


# -- the worker's side of a computing job, and reading it back ---------------------------------------

class JobCancelled(Exception):
    """Raised inside the worker at the next progress report after a cancel was asked for."""


class LevelReporter:
    """`reporter(done, total, images=None)`: the progress callback a job's worker hands to the
    engine (sample_images' `progress`). Writes current.npy and status.json with the measured
    seconds per unit and the ETA; raises JobCancelled once a cancel was asked for (cancel file or
    SIGTERM), so the job stops after the unit in progress.

    Used as `with job:` around the work: JobCancelled ends there in the state "cancelled" (and
    `job.stopped` is True), an error a user can cause (ValueError, a diverging sampler's
    RuntimeError) in "failed" with its sentence before it propagates to the CLI."""

    def __init__(self, run_dir, total: int = 0, unit: str = "level", every_seconds: float = 0.25):
        self.dir = Path(run_dir)
        self.writer = RunWriter(self.dir, total=total)
        self.unit = unit
        self.done, self.total = 0, total
        self.every = every_seconds          # fast units: files rewritten at most this often
        self.start = self._written = time.perf_counter()
        self.stopped = False
        self.writer.status("running", step=0, total=total, unit=unit, seconds=0.0,
                           message=f"started, {total} {unit}s to go" if total else "started")

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, done: float, total: int, images=None) -> None:
        self.done, self.total = done, int(total)       # done may be fractional (part of a unit)
        if self.writer.stop_requested:
            raise JobCancelled()
        if done < total and self.done > 1 and time.perf_counter() - self._written < self.every:
            return
        self._written = time.perf_counter()
        if images is not None:
            save_array(self.dir / "current.npy", images)
        elapsed = self.seconds
        self.writer.status("running", step=int(self.done), done=float(self.done), total=self.total,
                           unit=self.unit, seconds=elapsed,
                           sec_per_unit=elapsed / self.done if self.done else None,
                           eta_seconds=eta_seconds(self.done, self.total, elapsed),
                           message=f"{self.unit} {int(self.done)} of {self.total}")

    def __enter__(self) -> "LevelReporter":
        return self

    def __exit__(self, kind, err, tb) -> bool:
        if kind is JobCancelled:
            self.cancelled()
            self.stopped = True
            return True
        if kind is not None and issubclass(kind, (ValueError, RuntimeError)):
            self.failed(str(err))
        return False

    def finished(self, message: str, **result) -> None:
        """result.json (with the elapsed seconds), then the final state."""
        atomic_write_json(self.dir / "result.json", {"seconds": self.seconds, **result})
        self.writer.status("finished", step=self.total, done=float(self.total), total=self.total,
                           unit=self.unit, seconds=self.seconds, eta_seconds=0.0, message=message)

    def cancelled(self) -> None:
        self.writer.status("cancelled", step=int(self.done), total=self.total, unit=self.unit,
                           seconds=self.seconds, eta_seconds=None,
                           message=f"Cancelled {int(self.done)}% of the way." if self.unit == "%"
                           else f"Cancelled after {self.unit} {int(self.done)} of {self.total}.")

    def failed(self, message: str) -> None:
        self.writer.status("failed", step=int(self.done), total=self.total, unit=self.unit,
                           seconds=self.seconds, message=message)


def also_to(job: LevelReporter | None, progress):
    """A progress callback f(done, total, *rest) that reports to `progress` (e.g. a terminal bar's
    callback) and, when there is one, to the job folder's LevelReporter."""
    def report(done, total, *rest):
        progress(done, total, *rest)
        if job is not None:
            job(done, total, *rest)
    return report


def save_array(path, array) -> None:
    """np.save, atomically (a reader never sees half an array)."""
    a = np.asarray(array, dtype=np.float32)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, a, allow_pickle=False)
    _atomic_write(Path(path), write)


def read_array(path, ndim: int | None = None) -> np.ndarray | None:
    """A float array a job wrote, or None when it is absent, damaged or of the wrong shape."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if a.dtype.kind != "f" or (ndim is not None and a.ndim != ndim):
        return None
    return a


def job_fraction(info: RunInfo) -> float:
    """How much of a job is done, in [0, 1] (parts of a unit included)."""
    done = info.status.get("done")
    if info.state == "finished" or not _number(done) or info.total <= 0:
        return info.progress
    return max(0.0, min(1.0, done / info.total))


def job_progress(info: RunInfo) -> str:
    """One line on a computing job: 'level 3 of 10 · 4.2 s elapsed · about 9.8 s left (1.40 s per
    level, measured)', or its state's sentence."""
    status = info.status
    unit = status.get("unit") if isinstance(status.get("unit"), str) else "step"
    seconds, per, eta = (status.get(k) for k in ("seconds", "sec_per_unit", "eta_seconds"))
    if info.state == "queued":
        return "Waiting for a free worker."
    if info.state == "starting" or (info.state == "running" and not _number(status.get("done"))):
        return "Starting (loading the model)…"
    if info.state != "running":
        return info.message or info.state
    done = status.get("done")
    whole = not _number(done) or float(done).is_integer()
    if unit == "%":
        parts = [f"{100 * job_fraction(info):.0f}% done"]
    else:
        parts = [f"{unit} {info.step} of {info.total}" if whole
                 else f"{100 * job_fraction(info):.0f}% of {info.total} {unit}s"]
    if _number(seconds):
        parts.append(f"{format_seconds(seconds)} elapsed")
    if _number(eta) and _number(per):
        parts.append(f"about {format_seconds(eta)} left" + ("" if unit == "%" else
                                                            f" ({per:.2f} s per {unit}, measured)"))
    return " · ".join(parts)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)

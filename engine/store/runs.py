"""The run folder: how a training process and the app talk without sharing memory.

RUN_DIR/
  config.json     what was asked: {"name", "argv", "config", "created"}
  status.json     written atomically by the worker: {"state", "step", "total", "message", ...}
  launch.json     written by the job manager: {"pid", "launched"}
  metrics.jsonl   append-only records, one JSON object a line (METRIC_FIELDS; evaluations add
                  {"step", **figures}); read_metrics gives the first version's names today's names
  state.safetensors + state.json   weights, EMA and optimizer state for --resume
  log.txt         the worker's stdout/stderr
  model.safetensors + model.json   the latest checkpoint (atomic)
  cancel          present when a stop was asked for

States: queued → running → finished | failed | cancelled; a run whose process vanished without a
final state reads as "interrupted".
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.store.checkpoints import atomic_write_json

FINAL_STATES = ("finished", "failed", "cancelled", "interrupted")

METRIC_FIELDS = {
    "step": "optimizer steps so far (resumed runs included)",
    "loss": "mean training loss over the steps since the previous record",
    "seconds": "wall seconds since the run started (resumed runs included)",
    "sec_per_step": "seconds per training step (forward, backward, update) in this process",
    "loss_per_level": "multi-level objectives: mean loss per noise level over those steps (None: not drawn)",
}
# Names the first version wrote (2D runs: time; MNIST: per_sigma; SDE: the smoothed loss_avg).
V1_NAMES = {"time": "seconds", "per_sigma": "loss_per_level", "loss_avg": "loss"}


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return default


def upgrade_record(record: dict) -> dict:
    """A metric record in today's names (V1_NAMES)."""
    out = dict(record)
    for old, new in V1_NAMES.items():
        if old in out:
            out[new] = out.pop(old)
    return out


def read_metrics(run_dir) -> list[dict]:
    """All complete records of metrics.jsonl in today's names (a half-written last line, or a
    line that is not a JSON object, is skipped)."""
    path = Path(run_dir) / "metrics.jsonl"
    records = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    records.append(upgrade_record(record))
    except (OSError, UnicodeDecodeError):
        pass
    return records


def drop_metrics_after(run_dir, step: int) -> None:
    """Rewrite metrics.jsonl without the records of steps > step, atomically: a run resumed from
    its checkpoint at `step` must not repeat the steps it loses."""
    records = read_metrics(run_dir)
    keep = [r for r in records if isinstance(r.get("step"), (int, float)) and r["step"] <= step]
    if len(keep) == len(records):
        return
    path = Path(run_dir) / "metrics.jsonl"
    tmp = path.with_name("metrics.jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


class RunWriter:
    """Used by the worker process: status, metrics and cooperative cancellation."""

    def __init__(self, run_dir, total: int | None = None, handle_sigterm: bool = True):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.total = total
        self.started = time.time()
        self._stop = False
        self._status: dict = {}
        if handle_sigterm:
            try:
                signal.signal(signal.SIGTERM, self._on_sigterm)
            except ValueError:  # not in the main thread (e.g. tests): rely on the cancel file
                pass

    def _on_sigterm(self, signum, frame):
        self._stop = True

    @property
    def stop_requested(self) -> bool:
        return self._stop or (self.dir / "cancel").exists()

    def status(self, state: str, **fields) -> None:
        self._status = {**self._status, **fields, "state": state, "updated": time.time(),
                        "started": self.started, "pid": os.getpid()}
        if self.total is not None:
            self._status.setdefault("total", self.total)
        atomic_write_json(self.dir / "status.json", self._status)

    def metric(self, record: dict) -> None:
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


@dataclass
class RunInfo:
    dir: Path
    name: str
    state: str
    step: int = 0
    total: int = 0
    message: str = ""
    created: float = 0.0
    config: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)

    @property
    def progress(self) -> float:
        if self.state == "finished":
            return 1.0
        return min(1.0, self.step / self.total) if self.total else 0.0

    @property
    def checkpoint(self) -> Path | None:
        p = self.dir / "model.json"
        return p if p.exists() else None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0): look at /proc where there is one.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_run(run_dir) -> RunInfo:
    d = Path(run_dir)
    config = read_json(d / "config.json", {}) or {}
    status = read_json(d / "status.json", {}) or {}
    launch = read_json(d / "launch.json", {}) or {}
    state = status.get("state", "queued")
    if state == "queued" and launch:
        state = "starting"
    if state in ("running", "starting") and not pid_alive(launch.get("pid") or status.get("pid")):
        # Re-read: the worker may have written its final state just now.
        status = read_json(d / "status.json", {}) or {}
        state = status.get("state", state)
        if state not in FINAL_STATES:
            # Asked to stop and gone: a cancel that landed before the worker could say so.
            state = "cancelled" if (d / "cancel").exists() else "interrupted"
    return RunInfo(dir=d, name=config.get("name", d.name), state=state,
                   step=int(status.get("step", 0) or 0), total=int(status.get("total", 0) or 0),
                   message=status.get("message", ""), created=float(config.get("created", 0.0)),
                   config=config, status=status)


def run_checkpoints(root):
    """(run folder, checkpoint meta) for every run under root with a readable RUN_DIR/model
    checkpoint, newest folder name first; unreadable ones are skipped."""
    from engine.store.checkpoints import CheckpointError, read_meta

    root = Path(root)
    if not root.exists():
        return []
    found = []
    for d in sorted(root.iterdir(), reverse=True):
        if (d / "model.json").exists():
            try:
                found.append((d, read_meta(d / "model")))
            except CheckpointError:
                pass
    return found


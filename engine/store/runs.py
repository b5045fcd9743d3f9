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
final state reads as "interrupted". A folder whose files hold valid JSON of the wrong shape (a
list for status.json, "step": "abc", a model.json of another kind …) reads as "unreadable" with
the message "unreadable run: <why>", so a listing shows it as one row and goes on.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.store.checkpoints import atomic_write_json

FINAL_STATES = ("finished", "failed", "cancelled", "interrupted", "unreadable")
STATES = ("queued", "starting", "running", *FINAL_STATES)

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


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _good_record(record) -> bool:
    """A metric record the pages can draw: an object whose METRIC_FIELDS have their types."""
    if not isinstance(record, dict) or not _number(record.get("step")):
        return False
    if any(k in record and record[k] is not None and not _number(record[k])
           for k in ("loss", "seconds", "sec_per_step")):
        return False
    levels = record.get("loss_per_level")
    return levels is None or (isinstance(levels, list) and all(v is None or _number(v) for v in levels))


def _metric_lines(run_dir) -> tuple[list[dict], int]:
    """(good records in today's names, number of lines that were not)."""
    path = Path(run_dir) / "metrics.jsonl"
    records, bad = [], 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = upgrade_record(json.loads(line)) if line.strip() else None
                except (json.JSONDecodeError, TypeError, ValueError):
                    record = None
                if _good_record(record):
                    records.append(record)
                elif line.strip():
                    bad += 1
    except OSError:
        pass
    return records, bad


def read_metrics(run_dir) -> list[dict]:
    """All complete records of metrics.jsonl in today's names (a half-written last line, a line
    that is not a JSON object, or a record whose step/loss is not a number, is skipped)."""
    return _metric_lines(run_dir)[0]


def drop_metrics_after(run_dir, step: int) -> None:
    """Rewrite metrics.jsonl without the records of steps > step (and without a half-written
    line a kill left behind), atomically: a run resumed from its checkpoint at `step` must not
    repeat the steps it loses, nor glue its first record onto a broken line."""
    records, bad = _metric_lines(run_dir)
    keep = [r for r in records if r["step"] <= step]
    path = Path(run_dir) / "metrics.jsonl"
    if len(keep) == len(records) and not bad:
        try:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) == b"\n":
                    return
        except OSError:
            return   # empty or absent: nothing to fix
    tmp = path.with_name("metrics.jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    os.replace(tmp, path)


def mark_failed(run_dir, message: str) -> None:
    """A run folder that already exists (a job the app queued) says why its command refused to
    start; a folder that does not exist is not created (a typo on the command line)."""
    d = Path(run_dir)
    if d.is_dir():
        status = read_json(d / "status.json", {})
        status = status if isinstance(status, dict) else {}
        atomic_write_json(d / "status.json", {**status, "state": "failed", "message": message,
                                              "updated": time.time()})


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
        return max(0.0, min(1.0, self.step / self.total)) if self.total > 0 else 0.0

    @property
    def unreadable(self) -> bool:
        return self.state == "unreadable"

    @property
    def checkpoint(self) -> Path | None:
        p = self.dir / "model.json"
        return p if p.exists() and not self.unreadable else None


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


def _pid(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31


class RunUnreadable(ValueError):
    """A run folder whose files hold JSON of the wrong shape (one sentence: why)."""


# The model kind each training command writes (RUN_DIR/model.json of another kind is foreign).
RUN_KINDS = {("train2d",): ("mlp2d", "ncsn2d"), ("train", "mnist"): ("ncsn_unet",),
             ("train-sde", "2d"): ("sde_mlp2d",), ("train-sde", "mnist"): ("tutorial_unet",),
             ("vae", "train"): ("vae_mnist",)}

_TYPES = {  # file → {field: (check, what)} for the fields the pages read
    "config.json": {"name": (lambda v: isinstance(v, str), "a text"),
                    "argv": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of texts"),
                    "config": (lambda v: isinstance(v, dict), "an object"),
                    "created": (_number, "a number (seconds)")},
    "status.json": {"state": (lambda v: v in STATES, f"one of {', '.join(STATES)}"),
                    "step": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number"),
                    "total": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number"),
                    "message": (lambda v: isinstance(v, str), "a text"),
                    "sec_per_step": (_number, "a number"),
                    "pid": (lambda v: _pid(v), "a process id")},
    "launch.json": {"pid": (lambda v: _pid(v), "a process id")},
}


def _read_object(d: Path, name: str) -> dict:
    data = read_json(d / name, {})
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RunUnreadable(f"{name} holds a {type(data).__name__}, not an object")
    for key, (ok, what) in _TYPES[name].items():
        if data.get(key) is not None and not ok(data[key]):
            raise RunUnreadable(f"{name} has {key} {data[key]!r:.40}, not {what}")
    return data


def _check_model(d: Path, config: dict) -> None:
    """RUN_DIR/model.json, when there, must be a readable checkpoint of this run's kind."""
    if not (d / "model.json").exists():
        return
    from engine.store.checkpoints import CheckpointError, read_meta

    try:
        meta = read_meta(d / "model")
    except CheckpointError as err:
        raise RunUnreadable(str(err).rstrip(".")) from None
    argv = config.get("argv") or []
    kind = (meta.get("model") or {}).get("kind")
    for prefix, kinds in RUN_KINDS.items():
        if tuple(argv[:len(prefix)]) == prefix and kind not in kinds:
            raise RunUnreadable(f"model.json holds a {kind!r} model, not the {' or '.join(kinds)} "
                                f"that {' '.join(prefix)} writes")


def read_run(run_dir) -> RunInfo:
    """The run's state from its files; never raises for a folder's contents: a folder that cannot
    be understood comes back with state "unreadable" and message "unreadable run: <why>"."""
    d = Path(run_dir)
    try:
        return _read_run(d)
    except RunUnreadable as err:
        config = read_json(d / "config.json", {})
        argv = config.get("argv") if isinstance(config, dict) else None
        try:
            created = d.stat().st_mtime
        except OSError:
            created = 0.0
        keep = {"argv": argv} if _TYPES["config.json"]["argv"][0](argv) else {}
        return RunInfo(dir=d, name=d.name, state="unreadable", message=f"unreadable run: {err}.",
                       created=created, config=keep)


def _read_run(d: Path) -> RunInfo:
    config = _read_object(d, "config.json")
    status = _read_object(d, "status.json")
    launch = _read_object(d, "launch.json")
    _check_model(d, config)
    state = status.get("state", "queued")
    if state == "queued" and launch:
        state = "starting"
    if state in ("running", "starting") and not pid_alive(launch.get("pid") or status.get("pid")):
        # Re-read: the worker may have written its final state just now.
        status = _read_object(d, "status.json")
        state = status.get("state", state)
        if state not in FINAL_STATES:
            # Asked to stop and gone: a cancel that landed before the worker could say so.
            state = "cancelled" if (d / "cancel").exists() else "interrupted"
    return RunInfo(dir=d, name=config.get("name") or d.name, state=state,
                   step=status.get("step") or 0, total=status.get("total") or 0,
                   message=status.get("message") or "", created=float(config.get("created") or 0.0),
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


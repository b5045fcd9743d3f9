"""The run-folder protocol between worker processes and the app."""

import json
import os
import subprocess
import sys

from engine.store.runs import RunWriter, pid_alive, read_metrics, read_run
from engine.store.checkpoints import atomic_write_json


def test_writer_status_metrics_and_cancel_flag(tmp_path):
    atomic_write_json(tmp_path / "config.json", {"name": "demo", "created": 1.0})
    w = RunWriter(tmp_path, total=10, handle_sigterm=False)
    w.status("running", step=3)
    w.metric({"step": 1, "loss": 2.0})
    w.metric({"step": 2, "loss": 1.5})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "lo')  # a half-written line is skipped, not an error
    assert [r["loss"] for r in read_metrics(tmp_path)] == [2.0, 1.5]
    info = read_run(tmp_path)
    assert info.state == "running" and info.step == 3 and info.total == 10
    assert info.progress == 0.3 and info.name == "demo"
    assert not w.stop_requested
    (tmp_path / "cancel").write_text("now")
    assert w.stop_requested
    w.status("finished", step=10)
    assert read_run(tmp_path).progress == 1.0


def test_run_whose_process_vanished_reads_as_interrupted(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    atomic_write_json(tmp_path / "config.json", {"name": "x"})
    atomic_write_json(tmp_path / "status.json", {"state": "running", "step": 4, "pid": proc.pid})
    atomic_write_json(tmp_path / "launch.json", {"pid": proc.pid})
    assert not pid_alive(proc.pid)
    assert read_run(tmp_path).state == "interrupted"
    assert pid_alive(os.getpid())


def test_unreadable_files_do_not_raise(tmp_path):
    (tmp_path / "config.json").write_text("{broken")
    (tmp_path / "status.json").write_text(json.dumps({"state": "queued"}))
    assert read_run(tmp_path).state == "queued"

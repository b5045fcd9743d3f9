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


# -- run folders read defensively (issue 13) --------------------------------------------------------

import random  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from engine.store.jobs import JobManager, QueueFull  # noqa: E402
from engine.store.registry import runs_started_with, score2d_runs  # noqa: E402
from engine.store.runs import drop_metrics_after  # noqa: E402


def _folder(root, name, config=None, status=None, model=None):
    d = root / name
    d.mkdir(parents=True)
    atomic_write_json(d / "config.json", {"name": name, "argv": ["train2d"], "created": 1.0}
                      if config is None else config)
    if status is not None:
        (d / "status.json").write_text(json.dumps(status))
    if model is not None:
        from engine.store.checkpoints import save_checkpoint

        save_checkpoint(d / "model", {}, model)
    return d


@pytest.mark.parametrize("config,status,model,why", [
    (None, {"state": "finished", "step": "abc"}, None, "step 'abc'"),
    ({"name": "x", "argv": ["train2d"], "created": "yesterday"}, {"state": "finished"}, None, "created"),
    (None, ["finished", 3], None, "status.json holds a list"),
    ([1, 2], {"state": "finished"}, None, "config.json holds a list"),
    (None, {"state": "finished"}, {"model": {"kind": "ncsn_unet"}}, "not the mlp2d"),
    (None, {"state": "finished"}, {"model": {"kind": "mlp2d"}, "task": "score2d",
                                   "target": {"data": "mixture", "weights": ["a", "b"]}}, "weights"),
    (None, {"state": "banana"}, None, "state"),
    (None, {"state": "running", "pid": 2**40}, None, "pid"),
])
def test_a_bad_folder_is_one_unreadable_row_and_the_listing_goes_on(tmp_path, config, status, model, why):
    _folder(tmp_path, "20260101-good", status={"state": "finished", "step": 5, "total": 5})
    bad = _folder(tmp_path, "20260102-bad", config=config, status=status, model=model)
    info = read_run(bad)
    assert info.state == "unreadable" and info.message.startswith("unreadable run: ")
    assert why in info.message and "\n" not in info.message
    assert info.progress == 0.0 and info.checkpoint is None and isinstance(info.config, dict)
    runs = JobManager(tmp_path).runs()            # the listing does not raise
    assert {r.dir.name: r.state for r in runs} == {"20260101-good": "finished", "20260102-bad": "unreadable"}
    listed = runs_started_with(runs, "train2d")   # a page's list: the bad one is its own row
    assert [r.dir.name for r in listed if r.unreadable] == ["20260102-bad"]
    assert score2d_runs(tmp_path) == {}            # no checkpoint picker offers it


def test_metric_records_of_the_wrong_type_are_skipped(tmp_path):
    lines = [{"step": 1, "loss": 1.0}, {"step": "abc", "loss": 1.0}, {"step": 2, "loss": "x"},
             {"step": 3, "loss_per_level": "x"}, [1, 2], {"step": 4, "loss": 0.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 4]


def test_drop_metrics_after_removes_a_half_written_line(tmp_path):
    w = RunWriter(tmp_path, handle_sigterm=False)
    for step in (10, 20):
        w.metric({"step": step, "loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "lo')                # killed mid-write
    drop_metrics_after(tmp_path, 20)
    w.metric({"step": 30, "loss": 0.9})          # the resumed run's next record
    assert [r["step"] for r in read_metrics(tmp_path)] == [10, 20, 30]


def test_the_queue_has_a_bound_and_says_so(tmp_path):
    jobs = JobManager(tmp_path, max_running=1, max_queued=2)
    (tmp_path / "blocker").mkdir()                 # a running job holds the only slot
    atomic_write_json(tmp_path / "blocker" / "status.json", {"state": "running", "pid": os.getpid()})
    atomic_write_json(tmp_path / "blocker" / "config.json", {"name": "b", "argv": ["x"], "created": 0.0})
    jobs.submit(["train2d", "--steps", "10"], name="a")
    jobs.submit(["train2d", "--steps", "10"], name="b")
    with pytest.raises(QueueFull, match="queue is full"):
        jobs.submit(["train2d", "--steps", "10"], name="c")
    assert sum(r.state == "queued" for r in jobs.runs()) == 2


@pytest.mark.parametrize("wait_for", ["metrics.jsonl", "state.json"])
def test_kill_9_at_a_random_moment_then_resume_keeps_each_step_once(tmp_path, wait_for):
    """train2d killed with SIGKILL at a random moment (soon after its first record, or after its
    first checkpoint), then --resume: metrics.jsonl holds every record step exactly once, in order,
    and the curve continues (its clock never goes back)."""
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "engine", "train2d", "--out", str(run), "--objective", "dsm",
            "--steps", "1500", "--log-every", "10", "--checkpoint-every", "200", "--eval-every", "0",
            "--hidden", "32", "--quiet", "--threads", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / wait_for).exists():
        time.sleep(0.02)
    time.sleep(random.Random().uniform(0.0, 0.6))    # then a random moment
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = [r["step"] for r in read_metrics(run)]
    assert killed_at, "the run wrote no records before the kill"
    done = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    records = [r for r in read_metrics(run) if "loss" in r]
    assert [r["step"] for r in records] == list(range(10, 1501, 10))   # each step once, in order
    seconds = [r["seconds"] for r in records]
    assert seconds == sorted(seconds)                # the curve continues, never doubles back
    assert read_run(run).state == "finished"
    with open(run / "metrics.jsonl") as f:
        assert all(json.loads(line) for line in f)   # no broken line left behind


def test_pages_show_a_damaged_folder_as_one_row_and_go_on(tmp_path, monkeypatch):
    """Train, MNIST and Langevin pages over a runs folder holding each kind of damage."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from engine.paths import PROJECT_ROOT

    monkeypatch.setenv("SCORELAB_RUNS", str(tmp_path))
    done = {"state": "finished", "step": 5, "total": 5}
    _folder(tmp_path, "20260101-a", status={"state": "finished", "step": "abc"})
    _folder(tmp_path, "20260101-b", config={"name": "x", "argv": ["train", "mnist"], "created": "yesterday"},
            status=done)
    _folder(tmp_path, "20260101-c", status=["a", "list"])
    _folder(tmp_path, "20260101-d", config={"name": "d", "argv": ["train", "mnist"], "created": 2.0},
            status=done, model={"model": {"kind": "mlp2d"}})
    _folder(tmp_path, "20260101-e", status=done, model={"model": {"kind": "mlp2d"}, "task": "score2d",
                                                          "target": {"data": "mixture", "weights": ["a", "b"]}})
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        for page, expect in (("app_pages/train.py", True), ("app_pages/mnist.py", True),
                             ("app_pages/langevin.py", False)):
            at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=180).run()
            at.switch_page(page).run()
            assert not at.exception, (page, at.exception)
            shown = " ".join(str(e.value) for kind in ("markdown", "caption", "text") for e in getattr(at, kind))
            shown += " ".join(str(getattr(p, "text", "") or "") for p in at.get("progress"))
            assert ("unreadable run:" in shown) == expect, page
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()

"""train2d as a background job: the exact command the Train page submits, run by JobManager."""

import time

from engine.checkpoints import load_score_fn, read_meta
from engine.jobs import JobManager
from engine.runs import read_metrics


def wait_for(predicate, timeout=90.0, poll=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out")


def test_a_short_job_finishes_with_a_loadable_checkpoint(tmp_path):
    jm = JobManager(tmp_path, max_running=1)
    run = jm.submit(["train2d", "--objective", "dsm", "--steps", "60", "--log-every", "10"],
                    name="dsm quick", config={"objective": "dsm"})
    info = jm.wait(run, timeout=120)
    assert info.state == "finished", (info.message, (run / "log.txt").read_text()[-500:])
    assert info.step == 60
    assert read_meta(run / "model")["objective"] == "dsm"
    assert len([r for r in read_metrics(run) if "loss" in r]) == 6
    score_fn = load_score_fn(run / "model")
    assert score_fn.meta["steps"] == 60


def test_a_running_job_outlives_its_manager_is_found_again_and_can_be_cancelled(tmp_path):
    jm = JobManager(tmp_path, max_running=1)
    long_run = jm.submit(["train2d", "--objective", "ssm-vr", "--steps", "200000", "--log-every", "10"],
                         name="long")
    queued = jm.submit(["train2d", "--objective", "dsm", "--steps", "10"], name="waits")
    wait_for(lambda: jm.get(long_run).step >= 10)
    assert jm.get(queued).state == "queued"             # one slot: the second job waits its turn

    # The page is re-run / the server restarts: a new manager on the same folder finds both runs.
    again = JobManager(tmp_path, max_running=1)
    states = {r.name: r.state for r in again.runs()}
    assert states == {"long": "running", "waits": "queued"}
    step_before = again.get(long_run).step
    wait_for(lambda: again.get(long_run).step > step_before)   # still training

    info = again.cancel(long_run)
    info = again.wait(long_run, timeout=60)
    assert info.state == "cancelled"
    assert read_meta(long_run / "model")["state"] == "cancelled"   # the model so far is kept
    # The freed slot starts the queued run, which then finishes.
    assert again.wait(queued, timeout=120).state == "finished"

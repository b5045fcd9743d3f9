"""train2d as a background job, run by JobManager (the Train page's AppTest covers start → finished
through the UI; this covers a manager restart, the queue and cancel at the engine level)."""

import time

from engine.store.checkpoints import read_meta
from engine.store.jobs import JobManager


def wait_for(predicate, timeout=90.0, poll=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out")


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

    again.cancel(long_run)
    assert again.cancel(queued).state == "cancelled"          # a queued run is dropped at once
    info = again.wait(long_run, timeout=60)
    assert info.state == "cancelled"
    assert read_meta(long_run / "model")["state"] == "cancelled"   # the model so far is kept
    assert not (queued / "launch.json").exists()                   # and the dropped run never ran

"""The training loop's progress (engine.progress): a step line with loss and ETA, the ETA of a time
budget, slow evaluations announced and timed; silent unless a command enabled progress."""

import re

import pytest

from engine import progress
from engine.progress import format_seconds
from engine.training.loop import LoopConfig, train_loop

from tests.engine.test_training_loop import quadratic_task


@pytest.fixture
def shown():
    progress.enable()
    yield
    progress.disable()


def test_steps_loss_and_an_announced_evaluation(shown, capsys):
    task = quadratic_task()
    task.evaluate, task.eval_every = (lambda model, p: {"theta": float(model.theta.detach())}), 20
    task.evaluate_label = "preview grid: sampling 16 images"
    logged = []
    train_loop(task, LoopConfig(steps=40, lr=0.05, record_every=10), log=logged.append)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "train: step 0/40 (0%), 0.0 s elapsed"
    i = err.index("step 20: preview grid: sampling 16 images…")
    assert err[i + 1].startswith("step 20: preview grid done in ")
    assert any(line.startswith("train: step 20/40 (50%)") for line in err[:i])
    assert re.match(r"train: step 40/40 \(100%\), [\d.]+ s elapsed, loss [\d.]+$", err[-3])
    assert err[-2] == "step 40: preview grid: sampling 16 images…"
    assert logged == []          # the record lines would repeat the bar's loss


def test_the_eta_of_a_time_budget(shown, capsys):
    budget = 0.3                                           # seconds
    config = LoopConfig(steps=10**9, record_every=10, max_minutes=budget / 60)
    out = train_loop(quadratic_task(sleep=0.01), config)
    assert out.state == "finished" and 0 < out.progress.step < 10**9
    lines = capsys.readouterr().err.splitlines()
    etas = [line.split("ETA ")[1].split(",")[0] for line in lines if "ETA" in line]
    assert etas and etas[0] == format_seconds(budget)     # at step 0: the whole budget
    assert all(float(e.rstrip(" s")) <= budget for e in etas)


def test_silent_unless_enabled(capsys):
    logged = []
    train_loop(quadratic_task(), LoopConfig(steps=20, record_every=10), log=logged.append)
    assert capsys.readouterr().err == ""
    assert [line.split()[:2] for line in logged] == [["step", "10"], ["step", "20"]]

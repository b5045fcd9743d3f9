"""The one training loop (engine.training.loop): records, stops (steps, budget, cancel, NaN),
checkpoints, resume without repeated steps, EMA and warm-up; and the config ↔ flags table."""

import argparse
import json
import math
import time

import pytest
import torch
from torch import nn

from engine.models.ema import Ema
from engine.store.checkpoints import load_checkpoint, read_meta
from engine.store.runs import V1_NAMES, RunWriter, read_metrics, read_run
from engine.training import loop
from engine.training.flags import add_config_arguments, config_argv, config_from_args
from engine.training.loop import LoopConfig, Task, resume_point, train_loop


class Quadratic(nn.Module):
    """loss_n = ½(θ − y_n)²: its minimiser is the data mean."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(1))

    def spec(self):
        return {"kind": "quadratic"}


def quadratic_task(model=None, nan_at=None, sleep=0.0, levels=0, seed=0):
    model = model or Quadratic()
    g = torch.Generator().manual_seed(seed)
    calls = {"n": 0}

    def batch_loss(net):
        calls["n"] += 1
        y = 3.0 + torch.randn(8, generator=g)
        per = 0.5 * (net.theta - y) ** 2
        if nan_at is not None and calls["n"] >= nan_at:
            per = per * float("nan")
        if sleep:
            time.sleep(sleep)
        lv = torch.randint(levels, (8,), generator=g) if levels else None
        return per, lv

    def meta(p):
        return {"model": model.spec(), "step": p.step, "state": p.state, "loss": p.loss}

    return Task(model=model, batch_loss=batch_loss, meta=meta, n_levels=levels)


def test_records_use_one_set_of_names_and_the_model_learns(tmp_path):
    out = train_loop(quadratic_task(levels=3), LoopConfig(steps=300, lr=0.05, record_every=100),
                     tmp_path, RunWriter(tmp_path, handle_sigterm=False))
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [100, 200, 300]
    assert all(set(r) == {"step", "loss", "seconds", "sec_per_step", "loss_per_level"} for r in records)
    assert all(len(r["loss_per_level"]) == 3 for r in records)
    assert float(out.model.theta.detach()) == pytest.approx(3.0, abs=0.2)
    assert out.state == "finished" and read_run(tmp_path).state == "finished"
    assert read_meta(tmp_path / "model")["step"] == 300


def test_cancel_saves_the_model_so_far(tmp_path):
    writer = RunWriter(tmp_path, handle_sigterm=False)

    def progress(step, total, loss):
        if step == 20:
            (tmp_path / "cancel").write_text("now")

    out = train_loop(quadratic_task(), LoopConfig(steps=1000, record_every=10), tmp_path, writer,
                     progress=progress)
    assert out.state == "cancelled" and out.progress.step == 20
    info = read_run(tmp_path)
    assert info.state == "cancelled" and info.step == 20 and "Cancelled at step 20" in info.message
    assert read_meta(tmp_path / "model")["step"] == 20
    assert read_meta(tmp_path / "model")["state"] == "cancelled"


def test_a_nan_loss_ends_failed_with_the_last_finite_weights_saved(tmp_path):
    out = train_loop(quadratic_task(nan_at=6), LoopConfig(steps=100, lr=0.1, record_every=1),
                     tmp_path, RunWriter(tmp_path, handle_sigterm=False))
    assert out.state == "failed" and out.progress.step == 5
    info = read_run(tmp_path)
    assert info.state == "failed" and len(info.message.splitlines()) == 1
    assert "nan at step 6" in info.message
    tensors, meta = load_checkpoint(tmp_path / "model")
    assert meta["state"] == "failed" and meta["step"] == 5
    assert torch.isfinite(tensors["theta"]).all()


@pytest.mark.parametrize("budget", ["max_minutes", "max_cpu_minutes"])
def test_the_time_budget_stops_and_saves(tmp_path, budget):
    sleep = 0.01 if budget == "max_minutes" else 0.0   # CPU time: a busy loop has to burn it
    config = LoopConfig(steps=10**9, record_every=10, **{budget: 0.3 / 60})
    start = time.time()
    out = train_loop(quadratic_task(sleep=sleep), config, tmp_path, RunWriter(tmp_path, handle_sigterm=False))
    assert time.time() - start < 30
    assert out.state == "finished" and 0 < out.progress.step < 10**9
    assert "time budget" in read_run(tmp_path).message
    assert read_meta(tmp_path / "model")["step"] == out.progress.step


def test_resume_continues_the_step_count_and_metrics_without_repeating_steps(tmp_path):
    """A crash after the step-20 checkpoint left records up to step 30; resuming drops those and
    continues from step 20 with the weights, EMA and Adam state of the checkpoint."""
    class Crash(Exception):
        pass

    def crash(step, total, loss):
        if step == 30:
            raise Crash()

    config = LoopConfig(steps=50, lr=0.05, ema=0.9, record_every=10, checkpoint_every=20)
    with pytest.raises(Crash):
        train_loop(quadratic_task(), config, tmp_path, RunWriter(tmp_path, handle_sigterm=False),
                   progress=crash)
    assert [r["step"] for r in read_metrics(tmp_path)] == [10, 20, 30]
    point = resume_point(tmp_path)
    assert point.step == 20 and point.meta["ema_updates"] == 20
    saved = {k: v.clone() for k, v in point.tensors.items()}

    seen = {}
    model = Quadratic()
    task = quadratic_task(model)
    inner = task.batch_loss

    def spy(net):   # the weights the resumed loop starts from
        seen.setdefault("theta", float(net.theta.detach()))
        return inner(net)

    task.batch_loss = spy
    out = train_loop(task, config, tmp_path, RunWriter(tmp_path, handle_sigterm=False), start=point)
    assert seen["theta"] == pytest.approx(float(saved["model.theta"]))
    assert [r["step"] for r in read_metrics(tmp_path)] == [10, 20, 30, 40, 50]
    assert out.progress.step == 50 and out.progress.steps_here == 30
    final, meta = load_checkpoint(tmp_path / "state")
    assert meta["step"] == 50 and meta["ema_updates"] == 50
    assert meta["optimizer"]["steps"]["0"]["step"] == 50.0            # Adam's count continued
    with pytest.raises(Exception, match="different model"):
        other = quadratic_task()
        other.meta = lambda p: {"model": {"kind": "other"}}
        train_loop(other, config, tmp_path, start=resume_point(tmp_path))


def test_state_checkpoint_round_trip_restores_model_ema_and_adam():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = Ema(model, 0.99)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
        ema.update(model)
    tensors, meta = loop._state_tensors(model, ema, opt)
    model2 = nn.Linear(3, 2)
    ema2 = Ema(model2, 0.99)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.01)
    loop._restore_state(loop.ResumePoint(3, tensors, meta), model2, ema2, opt2)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(ema.model.state_dict().values(), ema2.model.state_dict().values()):
        assert torch.equal(a, b)
    assert ema2.updates == 3
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for i in s1:
        assert torch.equal(s1[i]["exp_avg_sq"], s2[i]["exp_avg_sq"]) and float(s1[i]["step"]) == float(s2[i]["step"])


def test_ema_warmup_formula_and_state_dict_round_trip():
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = Ema(lin, decay=0.5)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    expect = 0.0
    for n in range(12):
        d = min(0.5, (1 + n) / (10 + n))       # warm-up, then the decay caps it from n = 8 on
        expect = d * expect + (1 - d)
        ema.update(lin)
    assert float(ema.model.weight) == pytest.approx(expect)
    again = Ema(nn.Linear(1, 1, bias=False), decay=0.5)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 12 and float(again.model.weight) == pytest.approx(expect)


def test_learning_rate_warm_up_scales_the_first_adam_step():
    """Adam's first step moves a parameter by lr_1 = lr·1/warmup (its update is ±lr)."""
    for warmup, expect in ((0, 0.1), (10, 0.01)):
        model = Quadratic()
        task = Task(model=model, batch_loss=lambda net: (net.theta - 0.0, None), meta=lambda p: {})
        train_loop(task, LoopConfig(steps=1, lr=0.1, lr_warmup=warmup, record_every=1))
        assert float(model.theta.detach()) == pytest.approx(-expect, rel=1e-6)


def test_invalid_loop_settings_are_one_sentence():
    for bad in (dict(steps=0), dict(steps=1, lr=0.0), dict(steps=1, ema=1.0), dict(steps=1, max_minutes=0.0)):
        with pytest.raises(ValueError):
            LoopConfig(**bad).validate()


# -- metric names of the first version ----------------------------------------------------------

def test_first_version_metric_names_are_read_in_todays_names():
    import json

    from tests.engine.test_old_runs import FIXTURES

    for run in sorted(FIXTURES.iterdir()):
        for r in read_metrics(run):
            assert not set(r) & set(V1_NAMES)
            if "loss" in r and "fisher" not in r:
                assert "seconds" in r
    def raw(run):
        return json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    sde = next(p for p in FIXTURES.iterdir() if "sde2d" in p.name)
    assert read_metrics(sde)[0]["loss"] == raw(sde)["loss_avg"]
    mnist = next(p for p in FIXTURES.iterdir() if "mnist" in p.name)
    assert read_metrics(mnist)[0]["loss_per_level"] == raw(mnist)["per_sigma"]


# -- one table: config fields ↔ flags ----------------------------------------------------------

def _configs():
    from engine.training.images import ImageTrainConfig
    from engine.training.sde import SDETrain2DConfig, SDETrainMnistConfig
    from engine.training.toy2d import Train2DConfig

    return [ImageTrainConfig(), ImageTrainConfig(objective="dsm", sigma_max=12.5, gamma=1.05, channels=(8, 16, 16, 32),
                                                 sigma_embed=False, max_cpu_minutes=2.5, mnist_dir="/tmp/m"),
            SDETrain2DConfig(), SDETrain2DConfig(sde="vp", means=((1.0, -2.5),), weights=(1.0,), stds=(0.5,),
                                                 weighting="likelihood", max_minutes=3.0),
            SDETrainMnistConfig(), SDETrainMnistConfig(channels=(8, 16, 32, 64), lr_warmup=0),
            Train2DConfig(objective="ssm", n_projections=4, ema=0.99)]


@pytest.mark.parametrize("config", _configs(), ids=lambda c: type(c).__name__)
def test_flags_rebuild_every_config(config):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, type(config))
    assert config_from_args(type(config), parser.parse_args(config_argv(config))) == config
    assert config_from_args(type(config), parser.parse_args([])) == type(config)()


def test_documented_training_commands_parse(tmp_path, capsys):
    from engine.cli.main import main

    rc = main(["train-sde", "2d", "--sde", "vp", "--steps", "20", "--out", str(tmp_path / "s"),
               "--weighting", "likelihood", "--means=-5,-5;5,5"])
    assert rc == 0
    meta = read_meta(tmp_path / "s" / "model")
    assert meta["steps"] == 20 and meta["sde"]["sde"] == "vp" and meta["train"]["means"] == [[-5.0, -5.0], [5.0, 5.0]]
    assert read_run(tmp_path / "s").state == "finished"
    rc = main(["train-sde", "2d", "--steps", "30", "--out", str(tmp_path / "s"), "--resume",
               "--sde", "vp", "--weighting", "likelihood", "--means=-5,-5;5,5"])
    assert rc == 0 and read_meta(tmp_path / "s" / "model")["steps"] == 30
    rc = main(["train-sde", "2d", "--weighting", "uniform", "--out", str(tmp_path / "x")])
    assert rc == 2 and "invalid choice" in capsys.readouterr().err
    records = [json.loads(line) for line in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == sorted({r["step"] for r in records})
    assert all(math.isfinite(r["loss"]) for r in records)

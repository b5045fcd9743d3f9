"""The 2D training loop, its run folder and checkpoint, and the train2d / mix --checkpoint CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.cli.main import main
from engine.models.score import load_score
from engine.store.checkpoints import read_meta
from engine.lab.mixing import MixConfig, run_mix
from engine.store.runs import read_metrics, read_run
from engine.targets import seeds_mixture
from engine.training.toy2d import Train2DConfig, evaluate, time_objectives, train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread():
    """Small MLPs are fastest on one thread, and the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ncsn_run(tmp_path_factory):
    """The Done-when model: `python -m engine train2d` with its defaults, an NCSN on the seeds'
    0.8/0.2 mixture (5000 steps, ~8 s of CPU on an idle machine)."""
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("ncsn")
    config = Train2DConfig(eval_every=1000)
    assert (config.objective, config.weights, config.seed) == ("ncsn", (0.8, 0.2), 0)
    result = train(config, run_dir)
    return run_dir, result


def test_ncsn_on_the_seeds_mixture_lets_annealed_langevin_recover_the_weights(ncsn_run):
    """`mix --sampler annealed --checkpoint RUN/model` with its defaults: the weights within 0.03
    (total variation) of the exact ones (engine.targets.seeds_mixture), for two sampler seeds."""
    run_dir, result = ncsn_run
    score_fn = load_score(run_dir / "model").score_fn
    exact = torch.tensor(seeds_mixture().weights, dtype=torch.float64)
    for seed in (0, 1):
        out = run_mix(MixConfig(sampler="annealed", seed=seed, checkpoint=str(run_dir / "model")),
                      score_fn=score_fn)
        assert out.target_weights == pytest.approx(exact.tolist())
        assert out.weight_error < 0.03, out.summary()
        assert abs(out.mode_weights[0] - 0.8) < 0.03, out.summary()
    # Plain Langevin with the exact score gets them wrong (the seeds' point), so the test has teeth.
    plain = run_mix(MixConfig(sampler="langevin", steps=1000, step_size=0.1, seed=0))
    assert abs(plain.mode_weights[0] - 0.8) > 0.1


def test_the_run_folder_and_checkpoint_say_what_was_trained(ncsn_run):
    run_dir, result = ncsn_run
    info = read_run(run_dir)
    steps = Train2DConfig().steps
    assert info.state == "finished" and info.step == steps and info.total == steps
    meta = read_meta(run_dir / "model")
    assert meta["objective"] == "ncsn" and meta["steps"] == steps
    assert 0 < meta["cpu_time"] and meta["config"]["ema"] > 0
    assert meta["sigmas"][0] == pytest.approx(20.0) and meta["sigmas"][-1] == pytest.approx(1.0)
    assert meta["target"]["weights"] == pytest.approx([0.8, 0.2])
    assert meta["model"]["kind"] == "ncsn2d" and meta["wall_time"] > 0
    records = read_metrics(run_dir)
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == steps // 10                    # every log_every = 10 steps
    assert sum(losses[-20:]) / 20 < sum(losses[:5]) / 5  # it learned something
    fisher = [r for r in records if "fisher" in r]
    assert [r["step"] for r in fisher] == list(range(1000, steps + 1, 1000))
    assert set(fisher[-1]["fisher_sigma"]) == {f"{s:.4g}" for s in meta["sigmas"]}
    assert meta["metrics"]["fisher"] == pytest.approx(fisher[-1]["fisher"])


def test_fisher_divergence_of_the_exact_score_is_zero_and_of_a_fresh_net_is_not():
    config = Train2DConfig(objective="dsm", sigma=0.5)
    x = seeds_mixture().sample(500, torch.Generator().manual_seed(0))

    class Exact(torch.nn.Module):
        noise_conditional = False

        def spec(self):
            return {"kind": "mlp2d", "dim": 2}

        def forward(self, x, sigma):
            return seeds_mixture().score(x, 0.5)          # the noisy score DSM should learn

    ev = evaluate(Exact(), config, x)
    assert ev["fisher_sigma"]["0.5"] == pytest.approx(0.0, abs=1e-10)
    assert ev["fisher"] > 0.01  # but it is not the clean score: DSM's bias, measured
    assert ev["fisher_floor"] == pytest.approx(ev["fisher"])
    # Unit-variance components far apart: ∇log p_σ − ∇log p ≈ (x − μ)·σ²/(1 + σ²), so the floor is
    # ½·d·(σ²/(1 + σ²))² = (0.25/1.25)² = 0.04 in 2D, up to sampling error.
    assert ev["fisher_floor"] == pytest.approx(0.04, rel=0.15)
    fresh = train(Train2DConfig(objective="dsm", steps=1, eval_every=1))
    assert fresh.meta["metrics"]["fisher_sigma"]["1"] > 0.1


def test_esm_training_lowers_the_fisher_divergence():
    result = train(Train2DConfig(objective="esm", steps=300, eval_every=100, seed=1))
    fisher = result.meta["metrics"]["fisher"]
    untrained = train(Train2DConfig(objective="esm", steps=1, eval_every=1, seed=1)).meta["metrics"]["fisher"]
    assert fisher < 0.3 * untrained


def test_cancel_file_stops_training_and_saves_the_model_so_far(tmp_path):
    def progress(step, total, loss):
        if step == 50:
            (tmp_path / "cancel").write_text("now")

    result = train(Train2DConfig(objective="ssm-vr", steps=5000, log_every=10), tmp_path, progress=progress)
    assert result.state == "cancelled"
    info = read_run(tmp_path)
    assert info.state == "cancelled" and info.step == 50
    assert read_meta(tmp_path / "model")["steps"] == 50


def test_non_gaussian_data_trains_without_fisher_numbers(tmp_path):
    result = train(Train2DConfig(data="moons", objective="dsm", sigma=0.2, steps=30, log_every=10), tmp_path)
    assert result.meta["metrics"].get("fisher") is None
    assert result.meta["target"] == {"data": "moons"}


def test_invalid_configs_are_one_sentence_errors():
    for bad, pattern in [(dict(objective="esm", data="rings"), "exact score"),
                         (dict(objective="nope"), "Unknown objective"),
                         (dict(objective="ncsn", sigma_max=0.5, sigma_min=1.0), "larger than"),
                         (dict(lr=-1.0), "learning rate"),
                         (dict(objective="dsm", sigma=0.0), "positive")]:
        with pytest.raises(ValueError, match=pattern):
            Train2DConfig(**bad).validate()


def test_time_objectives_reports_every_dimension_and_objective():
    rows = time_objectives(dims=(2, 4), steps=2, batch=8, hidden=8)
    assert [(r["dim"], r["objective"]) for r in rows] == [
        (2, "ism"), (2, "ssm"), (2, "dsm"), (4, "ism"), (4, "ssm"), (4, "dsm")]
    assert all(r["sec_per_step"] > 0 for r in rows)


# -- CLI -------------------------------------------------------------------------------------------

def test_cli_train2d_writes_a_run_folder_that_mix_can_sample(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train2d", "--objective", "dsm", "--sigma", "1", "--steps", "40", "--quiet",
               "--out", str(out), "--seed", "3"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["state"] == "finished" and summary["steps"] == 40 and "fisher" in summary
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["objective"] == "dsm" and config["argv"]
    assert read_run(out).state == "finished"
    rc = main(["mix", "--checkpoint", str(out / "model"), "--sampler", "langevin", "--steps", "20",
               "--particles", "50"])
    assert rc == 0
    mix = json.loads(capsys.readouterr().out)
    assert mix["score"] == str(out / "model") and len(mix["mode_weights"]) == 2


@pytest.mark.parametrize("argv,pattern", [
    (["--steps", "ten"], "invalid int"),
    (["--objective", "xsm"], "invalid choice"),
    (["--data", "rings", "--objective", "esm"], "exact score"),
    (["--weights", "0.8"], "weights"),
    (["--objective", "ncsn", "--sigma-max", "0.1"], "larger than"),
])
def test_cli_train2d_bad_flags_give_one_line(tmp_path, capsys, argv, pattern):
    rc = main(["train2d", *argv, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and pattern in err and len(err.splitlines()) == 1


def test_cli_mix_with_a_corrupt_checkpoint_prints_one_line_and_fails(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"\x00\x01not safetensors")
    (tmp_path / "m.json").write_text(json.dumps({"format": "scorelab-checkpoint", "version": 1,
                                                 "model": {"kind": "mlp2d"}}))
    proc = subprocess.run([sys.executable, "-m", "engine", "mix", "--checkpoint", str(tmp_path / "m")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["error: m.safetensors is not a readable safetensors "
                                                "file (truncated or corrupt)."]


@pytest.mark.parametrize("config", [
    Train2DConfig(),
    Train2DConfig(objective="dsm", sigma=0.37, weights=(0.65, 0.35), means=((1.5, 2.0), (-3.0, 0.25)),
                  stds=(0.5, 1.25), lr=3e-4, hidden=64, depth=3, seed=7),
    Train2DConfig(data="curve", objective="ssm", projection="rademacher", n_projections=3, perturb=0.01),
    Train2DConfig(objective="ncsn", conditioning="divide", sigma_max=12.5, sigma_min=0.05, levels=17),
])
def test_the_job_command_reproduces_the_page_config(config):
    """The page submits cli_argv(config); the worker parses it back into the same config."""
    import argparse

    from engine.cli import train2d as cli_train2d
    from engine.training.toy2d import cli_argv

    parser = argparse.ArgumentParser()
    cli_train2d.add_arguments(parser)
    argv = cli_argv(config)
    assert argv[0] == "train2d"
    args = parser.parse_args([*argv[1:], "--out", "unused"])
    assert cli_train2d.config_from_args(args) == config

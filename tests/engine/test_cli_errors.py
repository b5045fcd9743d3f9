"""Every category of bad input of issue 13 gives one line on stderr and a non-zero exit, in-process
through engine.cli.main.main (the fuzz test, test_fuzz_cli.py, generates many more)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.cli import main as cli
from engine.store.checkpoints import save_checkpoint, save_model

SEEDS = ["--means", "5,5;-5,-5", "--weights", "0.8,0.2"]


def one_error_line(argv, capsys, code=2) -> str:
    got = cli.main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert got == code, (argv, got, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _sidecar(tmp_path, name, meta, tensors=None) -> str:
    save_checkpoint(tmp_path / name, tensors or {}, meta)
    return str(tmp_path / name)


# -- diverging samplers --------------------------------------------------------------------------

def test_a_diverging_mnist_sampler_stops_with_one_line(tmp_path, capsys):
    line = one_error_line(["sample", "--checkpoint", "checkpoints/ncsn_mnist", "--n", "2",
                           "--out", str(tmp_path / "g.png"), "--mode", "annealed", "--step-size", "1e6",
                           "--steps-per-level", "1"], capsys, code=3)
    assert "diverged" in line and "smaller step size" in line


def test_a_diverging_likelihood_ode_stops_with_one_line(tmp_path, capsys, monkeypatch):
    from engine.sde import likelihood

    def blow_up(*a, **k):
        raise likelihood.LikelihoodError("The likelihood ODE diverged at t = 0.5; try a tighter tolerance.")

    monkeypatch.setattr(likelihood, "ode_log_likelihood", blow_up)
    line = one_error_line(["nll", "--exact-score", *SEEDS, "--points", "3"], capsys, code=3)
    assert "diverged" in line


# -- flags: ranges, zero intervals, NaN/inf, caps -------------------------------------------------

@pytest.mark.parametrize("argv,fragment", [
    (["mix", "--sigma-max", "inf"], "--sigma-max"),
    (["mix", "--step-size", "nan"], "--step-size"),
    (["mix", "--levels", "200000"], "[1, 1000]"),
    (["mix", "--particles", "200001"], "[1, 100000]"),
    (["mix", "--particles", "1e9"], "invalid int"),
    (["mix", "--sampler", "pc", "--steps", "0"], "--steps"),
    (["mix", "--step-size", "-1"], "positive"),
    (["nll", "--exact-score", *SEEDS, "--rtol", "nan"], "--rtol"),
    (["nll", "--exact-score", *SEEDS, "--rtol", "-1"], "--rtol"),
    (["nll", "--exact-score", *SEEDS, "--sigma-max", "inf"], "--sigma-max"),
    (["nll", "--exact-score", *SEEDS, "--points", "0"], "--points"),
    (["train2d", "--log-every", "0"], "--log-every"),
    (["train2d", "--checkpoint-every", "0"], "--checkpoint-every"),
    (["train2d", "--ema", "2"], "[0, 1)"),
    (["train2d", "--ema", "-0.5"], "EMA"),
    (["train2d", "--hidden", "-3"], "--hidden"),
    (["train2d", "--sigma-max", "inf"], "--sigma-max"),
    (["train", "mnist", "--record-every", "0"], "--record-every"),
    (["train", "mnist", "--levels", "0"], "--levels"),
    (["train", "mnist", "--ema", "1"], "[0, 1)"),
    (["train", "mnist", "--step-size", "-1"], "--step-size"),
    (["train", "mnist", "--dsm-sigma", "-1"], "--dsm-sigma"),
    (["train", "mnist", "--max-minutes", "0"], "--max-minutes"),
    (["train", "mnist", "--max-minutes", "-1"], "--max-minutes"),
    (["train", "mnist", "--channels", "8,16,-1,32"], "--channels"),
    (["train-sde", "2d", "--steps", "0"], "--steps"),
    (["train-sde", "2d", "--batch", "0"], "--batch"),
    (["train-sde", "2d", "--record-every", "0"], "--record-every"),
    (["train-sde", "2d", "--sigma-max", "inf"], "--sigma-max"),
    (["train-sde", "2d", "--hidden", "-1"], "--hidden"),
    (["train-sde", "mnist", "--minutes", "-1"], "--minutes"),
    (["sample", "--checkpoint", "checkpoints/ncsn_mnist", "--steps-per-level", "0"], "--steps-per-level"),
    (["sample", "--checkpoint", "checkpoints/ncsn_mnist", "--step-size", "-1"], "--step-size"),
    (["sample", "--checkpoint", "checkpoints/ncsn_mnist", "--n", "100000"], "--n"),
    (["sde-mnist", "bpd", "--checkpoint", "checkpoints/sde_mnist_tutorial", "--images", "0"], "--images"),
    (["sde-mnist", "cost", "--checkpoint", "checkpoints/sde_mnist_tutorial", "--budgets", "0,-5"], "--budgets"),
    (["sde-mnist", "inpaint", "--checkpoint", "checkpoints/sde_mnist_tutorial", "--snr", "nan"], "--snr"),
    (["bench", "mixing", "--particles", "0"], "--particles"),
    (["bench", "mixing", "--repeats", "-1"], "--repeats"),
    (["bench", "mnist", "--minutes", "0"], "--minutes"),
    (["bench", "sde", "--seeds", "0"], "--seeds"),
    (["bench", "sde", "--budgets", "20,-1"], "--budgets"),
])
def test_bad_flags_name_the_flag_in_one_line(argv, fragment, tmp_path, capsys):
    needs_out = argv[0] in ("train2d", "train", "train-sde", "sample")
    line = one_error_line([*argv, *(["--out", str(tmp_path / "out")] if needs_out else [])], capsys)
    assert fragment in line, line
    assert not (tmp_path / "out").exists()       # nothing was started


@pytest.mark.parametrize("command", [["train2d", "--out", "X"], ["train", "mnist", "--out", "X"],
                                     ["train-sde", "2d", "--out", "X"], ["sde-mnist", "bpd", "--checkpoint", "x"],
                                     ["sample", "--checkpoint", "x", "--out", "X"]])
@pytest.mark.parametrize("threads", ["-1", "0", "100000"])
def test_threads_out_of_range(command, threads, tmp_path, capsys):
    argv = [str(tmp_path / "o") if a == "X" else a for a in command]
    assert "--threads" in one_error_line([*argv, "--threads", threads], capsys)


def test_zero_means_no_default_in_help():
    from engine.mnist.sampling import SampleConfig
    from engine.training.flags import field_help
    from engine.training.images import ImageTrainConfig
    from engine.training.toy2d import Train2DConfig

    assert "[1, 10000]" in field_help(SampleConfig, "steps_per_level")
    assert "[1, 1000]" in field_help(ImageTrainConfig, "levels")
    assert "(0: only at the end)" in field_help(Train2DConfig, "eval_every")


def test_help_states_the_caps(capsys):
    with pytest.raises(SystemExit):
        cli.main(["mix", "--help"])
    out = capsys.readouterr().out
    assert "[1, 100000]" in out and "[1, 1000]" in out
    with pytest.raises(SystemExit):
        cli.main(["train2d", "--help"])
    assert "[1, 200000]" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_says_so(tmp_path, capsys):
    line = one_error_line(["sample", "--checkpoint", "checkpoints/ncsn_mnist", "--out",
                           str(tmp_path / "g.png"), "--device", "cuda"], capsys)
    assert "no CUDA" in line
    line = one_error_line(["train", "mnist", "--out", str(tmp_path / "r"), "--device", "cuda"], capsys)
    assert "no CUDA" in line


# -- eval: foreign classifier, NaN and 0..255 images -----------------------------------------------

def test_eval_refuses_a_score_model_as_classifier(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((4, 28, 28), dtype=np.float32))
    line = one_error_line(["eval", "--samples", str(tmp_path / "s.npy"), "--classifier",
                           "checkpoints/ncsn_mnist"], capsys)
    assert "not an MNIST classifier" in line


@pytest.mark.parametrize("images,fragment", [
    (np.full((4, 28, 28), np.nan, np.float32), "NaN"),
    (np.full((4, 28, 28), 255.0, np.float32), "divide by 255"),
    (np.array(["a", "b"]), "not numbers"),
    (np.zeros((4, 5), np.float32), "shape"),
])
def test_eval_refuses_images_outside_0_1(images, fragment, tmp_path, capsys):
    np.save(tmp_path / "s.npy", images)
    assert fragment in one_error_line(["eval", "--samples", str(tmp_path / "s.npy")], capsys)


# -- sidecars: version, sizes, kinds ---------------------------------------------------------------

def test_sidecar_with_a_string_version(tmp_path, capsys):
    path = _sidecar(tmp_path, "m", {"model": {"kind": "mlp2d"}})
    meta = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**meta, "version": "2"}))
    line = one_error_line(["mix", "--checkpoint", path], capsys)
    assert "version" in line


@pytest.mark.parametrize("spec", [
    {"kind": "mlp2d", "hidden": 10**7, "depth": 8},            # terabytes
    {"kind": "ncsn_unet", "channels": [10**6] * 4},
    {"kind": "sde_mlp2d", "sde": {"sde": "ve", "sigma_min": 0.01, "sigma_max": 50.0}, "hidden": -4},
    {"kind": "tutorial_unet", "channels": [1024, 1024, 1024, 1024]},   # 10⁸ parameters
    {"kind": "mlp2d", "hidden": "wide"},
])
def test_sidecar_sizes_are_refused_before_allocation(spec, tmp_path, capsys):
    import time

    path = _sidecar(tmp_path, "m", {"model": spec, "sde": {"sde": "ve", "sigma_min": 0.01, "sigma_max": 50.0}})
    start = time.perf_counter()
    line = one_error_line(["mix", "--sampler", "pc", "--checkpoint", path, *SEEDS], capsys)
    assert "cannot build" in line and time.perf_counter() - start < 10


# -- MNIST folder cut short -------------------------------------------------------------------------

def test_idx_header_cut_short(tmp_path, capsys):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (folder / name).write_bytes(b"\x00\x00\x08\x03\x00\x00")
    line = one_error_line(["train", "mnist", "--out", str(tmp_path / "r"), "--mnist-dir", str(folder),
                           "--steps", "1"], capsys)
    assert "truncated" in line


# -- a bug: one line and a log file with the traceback ------------------------------------------------

def test_unexpected_errors_print_one_line_and_a_log_path(tmp_path, capsys, monkeypatch):
    import engine.cli.mix as mix

    monkeypatch.setenv("SCORELAB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(mix, "run", lambda args: {}["no such key"])
    line = one_error_line(["mix"], capsys, code=1)
    assert "unexpected KeyError" in line and "traceback in" in line
    log = line.split("traceback in ")[1].rstrip(").")
    text = open(log).read()
    assert "Traceback" in text and "no such key" in text and "python -m engine mix" in text


def test_a_queued_job_that_refuses_its_flags_says_why(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "queued", "step": 0}))
    one_error_line(["train2d", "--out", str(run), "--log-every", "0"], capsys)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "--log-every" in status["message"]


def test_a_good_small_model_still_loads(tmp_path):
    from engine.models.mlp import build_mlp2d

    net = build_mlp2d(hidden=8, depth=1)
    save_model(tmp_path / "m", net, {"model": {"kind": "mlp2d", "hidden": 8, "depth": 1}})
    from engine.store.checkpoints import load_model

    assert load_model(tmp_path / "m")[0] is not None


def test_the_server_binds_to_loopback_by_default():
    import tomllib

    from engine.paths import PROJECT_ROOT

    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"

"""The MNIST page under AppTest: the shipped NCSN opens with a grid and a PNG download; sampling
a small grid (a background job) shows it with downloads whose bytes decode, at slide size; a
sampling job reports progress level by level with a live grid, leaves the page interactive, and
stops on Cancel with one sentence; damaged job folders read as one sentence."""

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.store.registry import shipped

pytestmark = pytest.mark.skipif(not shipped("ncsn_unet"),
                                reason="the shipped MNIST checkpoints are missing")


@pytest.fixture
def app(open_page):
    return open_page("app_pages/mnist.py")


def _png(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return np.asarray(img)


def test_page_opens_on_the_shipped_model_with_a_grid_and_png_download(app):
    at, stored = app
    assert not at.exception
    assert len(at.get("image")) >= 1
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("PNG" in label for label in labels)
    pngs = [d for d, mime, name in stored if mime == "image/png" and name and name.endswith(".png")]
    assert pngs, "no PNG download was offered"
    grid = _png(pngs[0])
    side = 8 * 30 + 2                  # 64 digits, 8 × 8 with 2-pixel gaps …
    assert grid.shape == (3 * side, 3 * side)  # … each pixel a 3 × 3 block: ≥ 512 px for a slide
    assert np.array_equal(grid[::3, ::3], _png(pngs[0])[::3, ::3])


def _finish(at, timeout=120.0):
    """Rerun the page (as the job fragment's poll does) until no job shows a progress bar."""
    deadline = time.time() + timeout
    while at.get("progress") and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    assert not at.get("progress"), "the sampling job did not finish"


def _sample(at, n: int, T: int | None = None):
    """Ask for n images (T steps per level for Langevin, or as many ODE levels for a continuous-σ
    checkpoint), without the baseline, and press Sample."""
    at.select_slider(key="mnist_n").set_value(n)
    keys = {w.key for w in at.number_input}
    if T is not None and "mnist_T" in keys:
        at.number_input(key="mnist_T").set_value(T)
    elif T is not None:
        at.number_input(key="mnist_ode_steps").set_value(max(T, 2))      # at least 2 levels
    if at.checkbox(key="mnist_compare").value:
        at.checkbox(key="mnist_compare").uncheck()
    at.button(key="mnist_sample").click().run()


def test_sampling_a_small_grid_offers_png_zip_and_npy(app):
    at, stored = app
    _sample(at, 4, T=1)
    _finish(at)
    assert not at.exception and not at.error
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Grid PNG", "ZIP of PNGs", ".npy"} <= set(labels)
    grids = [d for d, mime, name in stored if name == "ncsn_grid.png"]
    side = 2 * 30 + 2                              # 2 × 2 digits with 2-pixel gaps, each pixel
    assert grids and _png(grids[-1]).shape == (9 * side, 9 * side)   # a 9 × 9 block: ≥ 512 px
    (npy,) = {d for d, mime, name in stored if name == "ncsn_samples.npy"}
    images = np.load(io.BytesIO(npy))
    assert images.shape == (4, 28, 28) and images.dtype == np.float32
    from engine.render.images import grid_array
    assert np.array_equal(_png(grids[-1])[::9, ::9], grid_array(images))  # nearest-neighbour
    # Leave the page and come back: the result is still there (session state + the job folder).
    at.switch_page("app_pages/home.py").run()
    at.switch_page("app_pages/mnist.py").run()
    assert not at.exception and not at.get("progress")
    assert {"Grid PNG", "ZIP of PNGs", ".npy"} <= {b.proto.label for b in at.get("download_button")}
    assert not any("earlier settings" in c.value for c in at.caption)
    assert len(at.get("image")) >= 1 and at.get("select_slider")  # the level slider
    metrics = {m.label for m in at.metric}
    assert "Fréchet distance" in metrics or at.warning


def test_a_training_run_shows_its_loss_its_loss_per_sigma_and_its_preview(app, tmp_path):
    import json

    from engine.render.images import grid_png

    at, stored = app
    run = tmp_path / "runs" / "20260101-000000-mnist-ncsn"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"name": "mnist-ncsn", "created": 1.0,
                                                 "argv": ["train", "mnist", "--steps", "20"]}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 20, "total": 20}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "loss": 1.0 / s, "per_sigma": [0.5, None, 0.1]}) + "\n" for s in (10, 20)))
    preview = grid_png(np.zeros((4, 28, 28)))
    (run / "preview.png").write_bytes(preview)
    at.run()
    assert not at.exception, at.exception
    specs = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        specs[spec["layout"]["title"]["text"]] = spec
    loss = specs["Loss"]
    assert list(loss["data"][0]["x"]) == [10, 20] and loss["layout"]["yaxis"]["type"] == "log"
    # No checkpoint yet, so the levels are numbered 1…L; a level without a record is left out.
    per_sigma = specs["Loss per σ (latest records)"]["data"][0]
    assert list(per_sigma["x"]) == [1.0, 3.0] and list(per_sigma["y"]) == [0.5, 0.1]
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert "preview (EMA)" in captions
    assert any(np.asarray(Image.open(io.BytesIO(data))).shape == (2 * 30 + 2, 2 * 30 + 2)
               for data, mime, _ in stored if mime.startswith("image/"))


def test_the_training_form_submits_the_flags_of_one_config_or_one_sentence(app, monkeypatch):
    import argparse
    from pathlib import Path

    from engine.cli.train import add_arguments
    from engine.store.jobs import JobManager
    from engine.training.flags import config_from_args
    from engine.training.images import ImageTrainConfig

    at, _ = app
    submitted = []
    monkeypatch.setattr(JobManager, "submit", lambda self, argv, name, config=None, **kw:
                        submitted.append(argv) or Path("/nonexistent") / name)

    def number(label):
        return next(w for w in at.number_input if w.label.startswith(label))

    start = next(b for b in at.button if b.label == "Start training")
    next(w for w in at.selectbox if w.label == "Objective").set_value("dsm")
    next(w for w in at.number_input if w.label == "Steps").set_value(300)
    number("σ₁").set_value(0.001)                          # below σ_L (default 0.002)
    start.click().run()
    assert not at.exception and submitted == []
    assert [e.value for e in at.error] == ["σ₁ must be larger than σ_L."]

    number("σ₁").set_value(12.0)
    number("Stop after minutes").set_value(2.0)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and not at.error
    (argv,) = submitted
    assert argv[:2] == ["train", "mnist"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(ImageTrainConfig, parser.parse_args([*argv[1:], "--out", "x"]))
    assert config == ImageTrainConfig(objective="dsm", steps=300, sigma_max=12.0, max_minutes=2.0)


# -- sampling as a background job ---------------------------------------------------------------

TINY = {"kind": "ncsn_unet", "channels": [8, 16, 16, 32], "embed_dim": 16}


TINY_RES = {"kind": "ncsn_unet", "arch": "res", "channels": [8, 16, 16], "blocks": 1, "embed_dim": 16,
            "fourier_scale": 1.0}


def _tiny_run(runs, levels=30, continuous=False):
    """A tiny NCSN checkpoint in a training run folder (listed by the page's checkpoint picker);
    `continuous`: trained on continuous σ, sampled by the Heun ODE sampler by default."""
    import torch

    from engine.models.registry import build_model
    from engine.store.checkpoints import save_model

    sig = list(np.geomspace(3.0, 0.05, levels))
    spec = TINY_RES if continuous else TINY
    meta = {"model": spec, "objective": "ncsn",
            "schedule": {"sigmas": sig, "gamma": sig[0] / sig[1], "steps_per_level": 2,
                         "step_size": 2e-4, "sigma_min": sig[-1], "sigma_max": sig[0],
                         "budget_levels": levels, "noise": "continuous" if continuous else "levels"}}
    if continuous:
        meta["sampler"] = {"mode": "heun", "ode_steps": 6}
    torch.manual_seed(0)
    save_model(runs / "20260101-000000-tiny" / "model", build_model(spec), meta)


def _pick_tiny(at, tmp_path, **kw) -> None:
    """Choose a tiny checkpoint (_tiny_run's) in the page's picker."""
    _tiny_run(tmp_path / "runs", **kw)
    at.run()
    picker = at.selectbox(key="mnist_ckpt")
    picker.select(next(o for o in picker.options if "tiny" in o)).run()


def _progress(at) -> tuple[int, str]:
    (bar,) = at.get("progress")
    return bar.proto.value, bar.proto.text


def _poll_until(at, ok, timeout=90.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        if ok():
            return
        time.sleep(0.3)
    raise AssertionError("the page never showed what was expected")


def test_sampling_job_reports_progress_stays_interactive_and_cancels(app, tmp_path):
    from engine.store.runs import read_run

    at, _ = app
    _pick_tiny(at, tmp_path)
    start = time.time()
    _sample(at, 100, T=50)                              # slow enough to watch: ~1 s per level
    assert time.time() - start < 20 and not at.exception   # the click does not wait for sampling
    (run_dir,) = at.session_state["mnist_jobs"]["runs"].values()

    # Progress by level, measured ETA, and the grid after the last level, over two polls.
    _poll_until(at, lambda: _progress(at)[1].startswith("level "))
    first, text = _progress(at)
    assert "of 30" in text and "left" in text and "per level, measured" in text
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any(c.startswith("after level ") for c in captions)
    _poll_until(at, lambda: _progress(at)[0] > first)

    # Another widget reruns the whole page promptly while the job keeps running.
    start = time.time()
    at.checkbox(key="mnist_denoise").uncheck().run()
    assert time.time() - start < 20 and not at.exception
    assert read_run(run_dir).state == "running" and at.get("progress")
    assert any("earlier settings" in c.value for c in at.caption)

    # Sampling again with the new settings supersedes the old job: it is cancelled.
    at.button(key="mnist_sample").click().run()
    (new_dir,) = at.session_state["mnist_jobs"]["runs"].values()
    assert new_dir != run_dir and not at.exception
    deadline = time.time() + 30
    while read_run(run_dir).state != "cancelled" and time.time() < deadline:
        time.sleep(0.3)
    assert read_run(run_dir).state == "cancelled"
    run_dir = new_dir
    _poll_until(at, lambda: _progress(at)[1].startswith("level "))

    # Cancel: the job stops within a level or two, and the page says so in one sentence.
    at.button(key="mnist_jobs_cancel_0").click().run()
    _poll_until(at, lambda: not at.get("progress"), timeout=30)
    info = read_run(run_dir)
    assert info.state == "cancelled" and info.step < 30
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Sampling was cancelled after level ") and warning.endswith("of 30.")
    assert not at.exception and not at.error


@pytest.mark.parametrize("damage", ["no folder", "bad status", "bad arrays", "killed"])
def test_a_damaged_sampling_job_reads_as_one_sentence(app, tmp_path, damage):
    import shutil

    at, _ = app
    _pick_tiny(at, tmp_path, levels=3)
    _sample(at, 4, T=1)
    _finish(at)
    (run_dir,) = at.session_state["mnist_jobs"]["runs"].values()
    run_dir = Path(run_dir)
    assert (run_dir / "samples.npy").exists() and not at.exception
    if damage == "no folder":
        shutil.rmtree(run_dir)
    elif damage == "bad status":
        (run_dir / "status.json").write_text(json.dumps(["not", "an", "object"]))
    elif damage == "bad arrays":
        (run_dir / "samples.npy").write_bytes(b"garbage")
        status = json.loads((run_dir / "status.json").read_text())
        (run_dir / "status.json").write_text(json.dumps({**status, "updated": 1.0}))
    else:                                    # a worker killed mid-run: no final state, no process
        status = json.loads((run_dir / "status.json").read_text())
        (run_dir / "status.json").write_text(json.dumps({**status, "state": "running", "pid": 2**31 - 1}))
        (run_dir / "launch.json").write_text(json.dumps({"pid": 2**31 - 1}))
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error] + [w.value for w in at.warning]
    assert len(shown) == 1 and shown[0].count(".") >= 1 and "Traceback" not in shown[0], shown


def test_a_continuous_sigma_model_samples_by_its_ode_sampler_in_a_job(app, tmp_path):
    at, stored = app
    _pick_tiny(at, tmp_path, continuous=True)
    assert at.radio(key="mnist_sampler_ode").value == "heun"    # the checkpoint's own sampler
    assert at.number_input(key="mnist_ode_steps").value == 6
    _sample(at, 4)
    _finish(at)
    assert not at.exception and not at.error
    assert any("11 score evaluations · Heun, 6 σ levels" in c.value for c in at.caption)
    (npy,) = {d for d, mime, name in stored if name == "ncsn_samples.npy"}
    assert np.load(io.BytesIO(npy)).shape == (4, 28, 28)
    # The next estimate comes from this job's measured speed.
    at.select_slider(key="mnist_n").set_value(16).run()
    del at.session_state["mnist_jobs"]
    at.run()
    assert any("the last such job measured here" in i.value for i in at.info)

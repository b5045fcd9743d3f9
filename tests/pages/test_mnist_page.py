"""The MNIST page under AppTest: the shipped NCSN opens with a grid and a PNG download; sampling
a small grid shows it with downloads whose bytes decode."""

import io

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
    assert grid.shape == (8 * 30 + 2, 8 * 30 + 2)  # 64 digits, 8 × 8 with 2-pixel gaps


def test_sampling_a_small_grid_offers_png_zip_and_npy(app):
    at, stored = app
    at.select_slider(key="mnist_n").set_value(4)
    at.number_input(key="mnist_T").set_value(1)
    if at.checkbox(key="mnist_compare").value:
        at.checkbox(key="mnist_compare").uncheck()
    at.button(key="mnist_sample").click().run()
    assert not at.exception and not at.error
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Grid PNG", "ZIP of PNGs", ".npy"} <= set(labels)
    grids = [d for d, mime, name in stored if name == "ncsn_grid.png"]
    assert grids and _png(grids[-1]).shape == (2 * 30 + 2, 2 * 30 + 2)
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
    monkeypatch.setattr(JobManager, "submit", lambda self, argv, name, config=None:
                        submitted.append(argv) or Path("/nonexistent") / name)

    def number(label):
        return next(w for w in at.number_input if w.label.startswith(label))

    start = next(b for b in at.button if b.label == "Start training")
    next(w for w in at.selectbox if w.label == "Objective").set_value("dsm")
    next(w for w in at.number_input if w.label == "Steps").set_value(300)
    number("σ₁").set_value(0.005)                          # below σ_L = 0.01
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

"""The Latent scores page under AppTest: the shipped implicit and Gaussian VAEs side by side with
their bounds, reconstructions, prior samples and downloads that decode; the latent-2 map; the
training form starts a background `vae train` run whose ELBO terms the page then shows."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from engine.store.registry import shipped

pytestmark = pytest.mark.skipif(len(shipped("vae_mnist")) < 2,
                                reason="the shipped VAE checkpoints are missing")


@pytest.fixture
def app(open_page, tmp_path):
    at, stored = open_page("app_pages/latent.py")
    yield at, stored, tmp_path / "runs"
    from engine.store.jobs import JobManager
    jobs = JobManager(tmp_path / "runs")
    for info in jobs.runs():
        if info.state in ("queued", "starting", "running"):
            jobs.cancel(info.dir)


def test_shipped_encoders_side_by_side_with_bounds_and_downloads(app):
    at, stored, _ = app
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    models = [at.selectbox(key=f"vae_model_{side}").value for side in ("left", "right")]
    assert "mplicit" in models[0] and "Gaussian" in models[1]
    assert len(at.metric) == 2 and all("nats" in m.value for m in at.metric)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("Reconstructions PNG") == 2 and labels.count("Samples ZIP") == 2
    pngs = {name: data for data, mime, name in stored if name and name.endswith(".png")}
    recon = [d for n, d in pngs.items() if n.endswith("_reconstructions.png")]
    assert len(recon) == 2
    for data in recon:
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG" and img.size == (2 * (8 * 30 + 2), 2 * (4 * 30 + 2))
    zips = [d for d, mime, name in stored if name and name.endswith(".zip")]
    assert zips and len(zipfile.ZipFile(io.BytesIO(zips[0])).namelist()) == 16
    table = "\n".join(m.value for m in at.markdown)
    assert "log p(x) ≥ (nats)" in table
    charts = [c.key for c in at.get("plotly_chart")]
    assert {"terms_left", "terms_right", "vae_map"} <= set(charts)   # ELBO terms and the latent map


def test_latent_map_for_another_digit(app):
    at, _, _ = app
    at.number_input(key="vae_map_digit").set_value(7).run()
    assert not at.exception, at.exception
    assert any("test digit #7" in (i.proto.imgs[0].caption if i.proto.imgs else "")
               for i in at.get("image"))


def test_training_form_starts_a_background_run(app):
    at, _, runs = app
    at.selectbox(key="vae_tr_encoder").set_value("gaussian")
    at.selectbox(key="vae_tr_latent").set_value(2)
    at.number_input(key="vae_tr_steps").set_value(20)
    at.button(key="FormSubmitter:vae_train-Start training").click().run()
    assert not at.exception, at.exception
    assert any("Started" in s.value for s in at.success)
    from engine.store.jobs import JobManager
    jobs = JobManager(runs)
    (run,) = jobs.runs()
    argv = json.loads((run.dir / "config.json").read_text())["argv"]
    assert argv[:2] == ["vae", "train"] and argv[argv.index("--steps") + 1] == "20"
    info = jobs.wait(run.dir, timeout=150)
    assert info.state == "finished", info.message
    at.run()
    assert not at.exception, at.exception
    watched = at.selectbox(key="vae_watch")
    assert "vae-gaussian-2" in watched.value and "finished" in watched.value
    assert "vae_run_terms" in [c.key for c in at.get("plotly_chart")]   # the run's ELBO terms
    # The finished run can be compared too; its bound is estimated on demand (K = 100, 200 digits).
    left = at.selectbox(key="vae_model_left")
    run_label = next(o for o in left.options if o.startswith("run "))
    left.set_value(run_label).run()
    assert not at.exception, at.exception
    at.button(key="bound_left").click().run()
    assert not at.exception, at.exception
    assert len(at.metric) == 2 and all("nats" in m.value for m in at.metric)

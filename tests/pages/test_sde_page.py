"""The SDEs page under AppTest: forward/reverse figures at the defaults, the quality sweep and
the likelihood map behind their buttons, and a bad setting as one error; MNIST inpainting and
bits/dim as background jobs (progress, Cancel, slide-size and .npy downloads, damaged job folders
as one sentence)."""

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _page(app_test):
    at = app_test
    at.run()
    at.switch_page("app_pages/sde.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _specs(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_defaults_draw_forward_and_reverse_views_with_weights_near_target(app_test):
    at = _page(app_test)
    specs = _specs(at)
    assert len(specs) >= 4  # snapshots, forward projection, reverse panels, reverse projection
    table = next(m.value for m in at.markdown if "weight error (TV)" in m.value)
    rows = [r for r in table.splitlines() if r.startswith("| predictor") or r.startswith("| reverse")
            or r.startswith("| probability")]
    assert len(rows) == 2
    for row in rows:
        w0 = float(row.split("|")[2].split(",")[0])
        assert w0 == pytest.approx(0.8, abs=0.05), row
    target = next(r for r in table.splitlines() if r.startswith("| target"))
    assert [c.strip() for c in target.split("|")[2:6]] == ["0.800", "0.200", "0", "0"]
    assert any("snr" in e.label for e in at.expander)


def test_quality_sweep_and_likelihood_map_run_from_their_buttons(open_page):
    at, _ = open_page("app_pages/sde.py")
    at.multiselect(key="sde_budgets").set_value([20, 50]).run()
    at.select_slider(key="sde_n").set_value(200).run()
    start = time.time()
    at.button(key="sde_sweep_go").click().run()
    assert time.time() - start < 20                  # a background job: the click returns at once
    seen = _until_done(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning
    assert seen and seen[0][1] in ("Waiting for a free worker.", "Starting (loading the model)…")
    # The job ran the page's settings: bench sde's flags rebuild the page's mixture and SDE.
    from engine.store.runs import read_run
    argv = read_run(at.session_state["sde_sweep"]["run"]).config["argv"]
    flags = dict(a.split("=", 1) if "=" in a else (a, None) for a in argv if a.startswith("--"))
    values = {a: b for a, b in zip(argv, argv[1:]) if a.startswith("--") and "=" not in a}
    assert argv[:2] == ["bench", "sde"] and values["--particles"] == "200"
    assert values["--budgets"] == "20,50" and values["--seeds"] == "1" and values["--sde"] == "ve"
    assert flags["--means"] == "5.0,5.0;-5.0,-5.0" and float(flags["--weights"].split(",")[0]) == 0.8
    names = {t["name"] for s in _specs(at) if s["layout"].get("title", {}).get("text", "").startswith("Weight error")
             for t in s["data"]}
    assert {"reverse SDE (Euler–Maruyama)", "probability-flow ODE (RK45)"} <= names
    if not list((ROOT / "checkpoints").glob("sde2d_*.json")):
        pytest.skip("no shipped 2D SDE checkpoint")
    at.select_slider(key="sde_lik_n").set_value(16).run()
    at.button(key="sde_lik_go").click().run()
    seen = _until_done(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning
    assert seen and all(re.match(r"(Waiting|Starting|\d+% done)", text) for _, text in seen), seen
    maps = [s for s in _specs(at) if any(t["type"] == "heatmap" for t in s["data"])
            and any("ODE log" in a.get("text", "") for a in s["layout"].get("annotations", []))]
    assert len(maps) == 1
    text = next(m.value for m in at.markdown if "Mean |ODE − exact|" in m.value)
    err = float(text.split("**")[1].split()[0])
    assert err < 0.5  # the learned model's ODE density is close to the exact one near the data


def test_impossible_vp_parameters_give_one_error(app_test):
    at = _page(app_test)
    at.radio(key="sde_kind").set_value("vp").run()
    at.select_slider(key="sde_bmin").set_value(1.0).run()
    at.slider(key="sde_bmax").set_value(1.0).run()
    assert not at.exception
    assert len(at.error) == 1 and "β_min" in at.error[0].value


def _mnist_score_shipped() -> bool:
    def usable(meta):
        kind = meta.get("model", {}).get("kind")
        return kind == "tutorial_unet" or (kind == "ncsn_unet" and meta.get("objective") == "ncsn")

    return any(usable(json.loads(p.read_text())) for p in (ROOT / "checkpoints").glob("*.json"))


def _until_done(at, timeout=180.0):
    """Rerun the page (as the job fragment's poll does) until no job shows a progress bar; the
    progress values seen on the way."""
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        bars = at.get("progress")
        if not bars:
            return seen
        seen.append((bars[0].proto.value, bars[0].proto.text))
        time.sleep(0.3)
        at.run()
    raise AssertionError("the job did not finish")


def test_mnist_inpainting_keeps_the_known_pixels(open_page):
    if not _mnist_score_shipped():
        pytest.skip("no MNIST score checkpoint shipped")
    at, stored = open_page("app_pages/sde.py")
    at.select_slider(key="sde_inp_steps").set_value(50).run()
    at.slider(key="sde_inp_n").set_value(1).run()
    start = time.time()
    at.button(key="sde_inp_go").click().run()
    assert time.time() - start < 20                  # a background job: the click returns at once
    _until_done(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning
    from engine.mnist.data import load_mnist
    from engine.mnist.sde_tasks import make_mask
    from engine.store.jobs import read_array

    comp = read_array(Path(at.session_state["sde_inp"]["run"]) / "completions.npy", ndim=3)
    original = load_mnist().test_images[0].astype("float32") / 255.0
    mask = make_mask("bottom") > 0
    assert comp.shape == (1, 28, 28)
    assert abs(comp[0][mask] - original[mask]).max() < 1e-6     # known pixels kept exactly
    assert any("Download" in b.label for b in at.get("download_button"))
    # Downloads: the row at slide size (each pixel a k × k block, ≥ 512 px) and the raw array.
    (png,) = {d for d, mime, name in stored if name == "inpaint_digit0_bottom.png"}
    grid = np.asarray(Image.open(io.BytesIO(png)))
    (npy,) = {d for d, mime, name in stored if name == "inpaint_digit0_bottom.npy"}
    raw = np.load(io.BytesIO(npy))
    assert raw.shape == (1, 28, 28) and np.array_equal(raw, comp)
    from engine.render.images import grid_array
    from engine.lab.sde_views import masked_digit
    digit = masked_digit(0, "bottom", 0)
    small = grid_array([digit["original"], digit["masked"], comp[0]], nrow=3)
    k = grid.shape[1] // small.shape[1]
    assert grid.shape[1] >= 512 and np.array_equal(grid[::k, ::k], small)


def test_bits_per_dim_runs_as_a_job_with_progress_and_references(open_page):
    if not _mnist_score_shipped():
        pytest.skip("no MNIST score checkpoint shipped")
    at, _ = open_page("app_pages/sde.py")
    at.select_slider(key="sde_bpd_n").set_value(1).run()
    at.button(key="sde_bpd_go").click().run()
    seen = _until_done(at, timeout=300)
    assert not at.exception and not at.error and not at.warning
    assert seen and seen[0][1] in ("Waiting for a free worker.", "Starting (loading the model)…")
    line = next(m.value for m in at.markdown if "bits/dim on 1 test digits" in m.value)
    assert 0 < float(line.split()[0]) < 40
    assert any("uniform model" in c.value and "8 bits/dim" in c.value for c in at.caption)


def test_a_cancelled_or_damaged_inpainting_job_is_one_sentence(open_page, tmp_path):
    if not _mnist_score_shipped():
        pytest.skip("no MNIST score checkpoint shipped")
    from engine.store.runs import read_run

    at, _ = open_page("app_pages/sde.py")
    at.select_slider(key="sde_inp_steps").set_value(500).run()
    at.slider(key="sde_inp_n").set_value(8).run()
    at.button(key="sde_inp_go").click().run()
    run = Path(at.session_state["sde_inp"]["run"])
    deadline = time.time() + 120
    while read_run(run).step < 1 and time.time() < deadline:
        time.sleep(0.3)
    at.run()
    (bar,) = at.get("progress")
    assert re.match(r"step \d+ of \d+ · .* left \(.* per step, measured\)", bar.proto.text), bar.proto.text
    at.button(key="sde_inp_job_cancel_0").click().run()
    _until_done(at, timeout=30)
    assert read_run(run).state == "cancelled"
    (warning,) = [w.value for w in at.warning]
    assert re.fullmatch(r"Inpainting was cancelled after step \d+ of \d+\.", warning), warning
    # A finished job whose completions were damaged on disk: one sentence, no traceback.
    (run / "completions.npy").write_bytes(b"not an array")
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 500, "total": 500}))
    at.run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning == "The inpainting job's files cannot be read; press Inpaint again."

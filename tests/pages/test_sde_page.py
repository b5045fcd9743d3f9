"""The SDEs page under AppTest: forward/reverse figures at the defaults, the quality sweep and
the likelihood map behind their buttons, and a bad setting as one error."""

import json
from pathlib import Path

import pytest

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


def test_quality_sweep_and_likelihood_map_run_from_their_buttons(app_test):
    at = _page(app_test)
    at.multiselect(key="sde_budgets").set_value([20, 50]).run()
    at.select_slider(key="sde_n").set_value(200).run()
    at.button(key="sde_sweep_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    names = {t["name"] for s in _specs(at) if s["layout"].get("title", {}).get("text", "").startswith("Weight error")
             for t in s["data"]}
    assert {"reverse SDE (Euler–Maruyama)", "probability-flow ODE (RK45)"} <= names
    if not list((ROOT / "checkpoints").glob("sde2d_*.json")):
        pytest.skip("no shipped 2D SDE checkpoint")
    at.select_slider(key="sde_lik_n").set_value(16).run()
    at.button(key="sde_lik_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
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


def test_mnist_inpainting_keeps_the_known_pixels(app_test):
    def usable(meta):
        kind = meta.get("model", {}).get("kind")
        return kind == "tutorial_unet" or (kind == "ncsn_unet" and meta.get("objective") == "ncsn")

    if not any(usable(json.loads(p.read_text())) for p in (ROOT / "checkpoints").glob("*.json")):
        pytest.skip("no MNIST score checkpoint shipped")
    at = _page(app_test)
    at.select_slider(key="sde_inp_steps").set_value(50).run()
    at.slider(key="sde_inp_n").set_value(1).run()
    at.button(key="sde_inp_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    comp = at.session_state["sde_inp"]["comp"]
    from engine.mnist.data import load_mnist
    from engine.mnist.sde_tasks import make_mask

    original = load_mnist().test_images[0].astype("float32") / 255.0
    mask = make_mask("bottom") > 0
    assert comp.shape == (1, 28, 28)
    assert abs(comp[0][mask] - original[mask]).max() < 1e-6     # known pixels kept exactly
    assert any("Download" in b.label for b in at.get("download_button"))

"""The app shell and the mixing pages (Scores, Langevin vs annealed) through AppTest: every page
runs, sliders reach the figures, the Scores page shows the seeds' point, bad input is one sentence."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _page_files() -> list[str]:
    """The pages app.py lists and whose file exists (other pages are written concurrently)."""
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PAGES":
            entries = ast.literal_eval(node.value)
            return [path for path, *_ in entries if (ROOT / path).exists()]
    raise AssertionError("app.py has no PAGES list")


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def decode(arr) -> np.ndarray:
    """A Plotly typed array {"dtype", "bdata"} (or a plain list) as a NumPy array."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
    return np.asarray(arr, dtype=float)


def picture(source: str) -> np.ndarray:
    """A data-URI image (a heat map drawn as a picture) as an (H, W, 3) float array."""
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"),
                      dtype=float)


def bar_values(spec: dict) -> dict[str, np.ndarray]:
    """The bar traces of a figure by name: their lengths (x for horizontal bars)."""
    return {t["name"]: decode(t["x"] if t.get("orientation") == "h" else t["y"])
            for t in spec["data"] if t["type"] == "bar"}


def open_page(app_test, path: str):
    at = app_test.run()
    assert not at.exception, at.exception
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("path", _page_files())
def test_every_listed_page_runs(app_test, path, tmp_path, monkeypatch):
    monkeypatch.setenv("SCORELAB_RUNS", str(tmp_path))
    at = open_page(app_test, path)
    if path in ("app_pages/home.py", "app_pages/scores.py", "app_pages/langevin.py"):
        assert not at.error, [e.value for e in at.error]
        # The shared sidebar controls (defined in app.py) are there with their defaults.
        assert at.number_input(key="seed").value == 0
        assert at.selectbox(key="device").value == "cpu" or at.selectbox(key="device").value


def test_home_links_every_present_page(app_test):
    at = app_test.run()
    links = {el.proto.page for el in at.get("page_link")}  # URL names: "scores", "langevin", …
    expected = {p.removeprefix("app_pages/").removesuffix(".py") for p in _page_files()}
    assert expected - {"home"} <= links


def test_langevin_defaults_are_the_seeds_experiment_and_weight_slider_reaches_figures(app_test):
    at = open_page(app_test, "app_pages/langevin.py")
    assert not at.error
    # One chart: the weights are bars beside the particles; the animation only on request.
    assert len(charts(at)) == 1
    at.toggle(key="lv_anim").set_value(True).run()
    final, anim = charts(at)
    bars = bar_values(final)
    np.testing.assert_allclose(bars["Target"], [0.8, 0.2])
    # The seeds' point, as the page draws it: annealed recovers 0.8/0.2, plain does not.
    assert abs(bars["Annealed Langevin"][0] - 0.8) < 0.05
    assert abs(bars["Plain Langevin"][0] - 0.8) > 0.2
    # The animation plays client-side: frames plus a play button.
    assert len(anim["frames"]) == 41
    assert anim["layout"]["updatemenus"][0]["buttons"][0]["method"] == "animate"

    at.slider(key="lv_w").set_value(0.6).run()
    assert not at.exception
    final2, _ = charts(at)
    np.testing.assert_allclose(bar_values(final2)["Target"], [0.6, 0.4])
    assert final2["data"] != final["data"]  # new target: new contours and particles


def test_both_samplers_start_from_the_same_particles(app_test):
    at = open_page(app_test, "app_pages/langevin.py")
    at.toggle(key="lv_anim").set_value(True).run()
    anim = charts(at)[1]
    moving = [t for t in anim["data"] if t.get("name") in ("Plain Langevin", "Annealed Langevin")]
    first = [np.stack([decode(t["x"]), decode(t["y"])], 1) for t in moving]
    assert len(first) == 2
    np.testing.assert_array_equal(first[0], first[1])
    assert first[0].min() >= -8 and first[0].max() <= 8  # uniform in [−8, 8]²


def test_bad_schedule_is_one_sentence_and_plain_still_shows(app_test):
    at = open_page(app_test, "app_pages/langevin.py")
    at.slider(key="lv_smax").set_value(1.0)
    at.slider(key="lv_smin").set_value(2.0).run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "σ_max" in message and message.count(". ") <= 1
    assert bar_values(charts(at)[0]).keys() == {"Target", "Plain Langevin"}


def test_diverging_step_size_is_reported_with_a_hint(app_test):
    at = open_page(app_test, "app_pages/langevin.py")
    at.select_slider(key="lv_eps").set_value(5.0).run()
    assert not at.exception
    assert at.error and all("smaller step size" in e.value for e in at.error)


def test_scores_page_far_field_is_blind_to_the_weight_until_sigma_is_large(app_test):
    at = open_page(app_test, "app_pages/scores.py")
    field, diff, probe = charts(at)
    changed_at_0 = float(at.metric[0].value.rstrip(" %"))
    # Probe curves: near either mode the score does not move with w; midway it does.
    curves = {t["name"]: decode(t["y"]) for t in probe["data"]}
    assert np.ptp(curves["near the major mode (4, 4)"]) < 1e-3
    assert np.ptp(curves["near the minor mode (−4, −4)"]) < 1e-3
    assert np.ptp(curves["midway (0, 0)"]) > 5  # 5(2w − 1) from w = 0.01 to 0.99
    assert changed_at_0 < 15

    at.slider(key="scores_sigma").set_value(10.0).run()
    assert not at.exception
    field2, _, _ = charts(at)
    assert field2["layout"]["images"][0]["source"] != field["layout"]["images"][0]["source"]
    assert float(at.metric[0].value.rstrip(" %")) > 50  # overlapping components: w felt everywhere


def test_page_batched_sampling_gives_the_cli_particles():
    """The page runs both samplers as one batch (run_mixes); the particles, frames and numbers
    must be exactly those of run_mix, which `python -m engine mix` prints."""
    import torch

    from engine.lab.mixing import MixConfig, run_mix, run_mixes

    base = MixConfig(weights=(0.7, 0.3), particles=250, steps=20, levels=5, record_every=5,
                     record_particles=50, seed=3)
    configs = (MixConfig(**{**base.__dict__, "sampler": "langevin", "steps": 100}),
               MixConfig(**{**base.__dict__, "sampler": "annealed", "denoise": True}),
               MixConfig(**{**base.__dict__, "sampler": "annealed", "sigma_max": 0.5}))
    batched = run_mixes(configs)
    for config, got in zip(configs[:2], batched[:2]):
        want = run_mix(config)
        assert torch.equal(got.sample.x, want.sample.x)
        assert torch.equal(got.sample.frames, want.sample.frames)
        assert got.sample.frame_steps == want.sample.frame_steps
        assert got.mode_weights == want.mode_weights and got.sample.nfe == want.sample.nfe
    assert isinstance(batched[2], ValueError) and "σ_max" in str(batched[2])


def test_langevin_table_lists_the_bars_and_their_total_variation(app_test):
    at = open_page(app_test, "app_pages/langevin.py")
    bars = bar_values(charts(at)[0])   # the bars beside the final particles
    table = next(m.value for m in at.markdown if "weight error (TV)" in m.value)
    lines = [line for line in table.splitlines() if line.startswith("|")][2:]   # after head, rule
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in lines}
    assert set(rows) == {"Target", "Plain Langevin", "Annealed Langevin"}
    assert [c.strip() for c in rows["Target"]] == ["0.800", "0.200", "0", "0"]
    for name in ("Plain Langevin", "Annealed Langevin"):
        weights = [float(c) for c in rows[name][:2]]
        np.testing.assert_allclose(weights, bars[name], atol=5e-4)
        tv = float(rows[name][2].strip().strip("*"))
        assert tv == pytest.approx(0.5 * np.abs(np.array(bars[name]) - [0.8, 0.2]).sum(), abs=1e-3)


def test_scores_energy_view_is_minus_the_log_density(app_test):
    at = open_page(app_test, "app_pages/scores.py")
    """The energy view is −log p on the reversed scale: the same picture, the colour bar's range
    negated (the heat map is a picture, engine.render.base.heat_image)."""
    density = charts(at)[0]
    at.radio(key="scores_view").set_value("energy −log p").run()
    assert not at.exception
    energy = charts(at)[0]
    bar, bar_e = density["data"][0]["marker"], energy["data"][0]["marker"]
    assert (bar_e["cmin"], bar_e["cmax"]) == (-bar["cmax"], -bar["cmin"])
    assert [c for _, c in bar_e["colorscale"]] == [c for _, c in reversed(bar["colorscale"])]
    np.testing.assert_allclose([s for s, _ in bar_e["colorscale"]],
                               [1 - s for s, _ in reversed(bar["colorscale"])], atol=1e-12)
    pixels = [picture(f["layout"]["images"][0]["source"]) for f in (density, energy)]
    assert np.abs(pixels[0] - pixels[1]).max() <= 2     # lossy WebP: same colours to ±2 of 255
    assert energy["data"][0]["marker"]["colorbar"]["title"]["text"] == "−log p"


def test_no_pages_folder_so_streamlit_never_runs_a_page_without_app_py():
    # Streamlit reads a pages/ folder beside the entrypoint as a legacy multipage app: until some
    # run has called st.navigation, a page URL runs that file alone (no sidebar). The pages live in
    # app_pages/ so every request runs app.py; test_browser checks a first visit to a page URL.
    assert not (ROOT / "pages").exists()
    from streamlit.runtime.pages_manager import PagesManager

    before = PagesManager.uses_pages_directory
    PagesManager.uses_pages_directory = None     # as at a server start
    try:
        PagesManager(str(ROOT / "app.py"))
        assert PagesManager.uses_pages_directory is False
    finally:
        PagesManager.uses_pages_directory = before


def test_controls_come_from_the_url_and_bad_values_fall_back_with_one_line(app_test):
    """ui/url_state: a link's values set the sliders in a fresh session; a value that does not
    parse or is out of range gives the default and one toast; moving a slider writes the URL."""
    at = app_test
    at.query_params["lv_w"] = "0.6"
    at.query_params["lv_n"] = "500"
    at.query_params["lv_steps"] = "9999"        # out of range
    at.query_params["lv_eps"] = "banana"        # does not parse
    at.run()
    at.switch_page("app_pages/langevin.py").run()
    assert not at.exception
    assert at.slider(key="lv_w").value == 0.6 and at.select_slider(key="lv_n").value == 500
    assert at.slider(key="lv_steps").value == 100 and at.select_slider(key="lv_eps").value == 0.1
    assert len(at.toast) == 2 and all("not a valid setting" in t.value for t in at.toast)
    np.testing.assert_allclose(bar_values(charts(at)[-1])["Target"], [0.6, 0.4])
    at.slider(key="lv_a").set_value(3.0).run()
    assert at.query_params["lv_a"] == ["3"] or at.query_params["lv_a"] == "3"

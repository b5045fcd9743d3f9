"""engine.render.mixing: the figure specs are valid Plotly (checked by plotly.py's own validators), and
the geometry drawn from arrays is right (closed forms: circles, arrow lengths, typed arrays)."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go

from engine.render import mixing as render


def decode(arr) -> np.ndarray:
    return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))


def test_contour_lines_of_a_gaussian_are_circles_of_the_right_radius():
    g = np.linspace(-4, 4, 121)
    xx, yy = np.meshgrid(g, g)
    logp = -(xx**2 + yy**2) / 2            # log N(0, I) up to a constant
    for drop in (0.5, 2.0, 4.5):           # log p = top − drop  ⇔  r = √(2·drop)
        lx, ly = render.contour_lines(g, g, logp, [-drop])
        ok = ~np.isnan(lx)
        r = np.hypot(lx[ok], ly[ok])
        np.testing.assert_allclose(r, np.sqrt(2 * drop), atol=2e-3)
        assert ok.sum() > 20               # a whole ring, not a few points


def test_contour_lines_follow_an_axis_aligned_ellipse_and_skip_absent_levels():
    g = np.linspace(-5, 5, 161)
    xx, yy = np.meshgrid(g, g)
    z = -(xx**2 / 4 + yy**2) / 2           # std 2 along x, 1 along y
    lx, ly = render.contour_lines(g, g, z, [-0.5, 10.0])  # level 10 is above the maximum
    ok = ~np.isnan(lx)
    np.testing.assert_allclose(lx[ok] ** 2 / 4 + ly[ok] ** 2, 1.0, atol=5e-3)
    assert np.abs(lx[ok]).max() > 1.99 and np.abs(ly[ok]).max() > 0.99


def test_arrows_point_along_their_vectors_with_one_shared_scale():
    points = np.array([[0.0, 0.0], [5.0, 5.0]])
    vectors = np.array([[2.0, 0.0], [0.0, -1.0]])
    x, y = render.arrow_segments(points, vectors, length=1.0)
    segs = np.stack([x, y], 1).reshape(2, 7, 2)   # base, tip, gap, barb, tip, barb, gap
    np.testing.assert_allclose(segs[0, 1], [1.0, 0.0], atol=1e-6)   # longest arrow has length 1
    np.testing.assert_allclose(segs[1, 1], [5.0, 4.5], atol=1e-6)   # half as long, pointing down
    assert np.isnan(segs[:, 2]).all() and np.isnan(segs[:, 6]).all()


def test_point_arrays_travel_as_float32_typed_arrays():
    pts = np.random.default_rng(0).normal(size=(50, 2))
    spec = render.particles_figure([dict(name="a", color="red", points=pts)], np.linspace(-3, 3, 20),
                                   np.linspace(-3, 3, 20), np.zeros((20, 20)), lo=-3, hi=3).spec
    trace = next(t for t in spec["data"] if t.get("name") == "a")
    assert trace["x"]["dtype"] == "f4"
    np.testing.assert_array_equal(decode(trace["x"]), pts[:, 0].astype(np.float32))


def test_every_builder_gives_a_spec_plotly_accepts():
    rng = np.random.default_rng(1)
    g = np.linspace(-5, 5, 30)
    xx, yy = np.meshgrid(g, g)
    logp = -((xx - 2) ** 2 + (yy - 2) ** 2) / 2
    pts = rng.normal(size=(40, 2))
    frames = rng.normal(size=(5, 10, 2))
    specs = [
        render.field_figure(g, g, logp, pts, pts, title="t", z_title="log p", colorscale="Viridis_r",
                            means=[(2, 2)]),
        render.line_figure(g, {"a": g**2}, title="t", x_title="x", y_title="y", vline=0.5),
        render.particles_figure([dict(name="p", color="red", points=pts, trajectories=frames)],
                                g, g, logp, lo=-5, hi=5, means=[(2, 2)], title="t"),
        render.animation_figure([dict(name="p", color="red", frames=frames),
                                 dict(name="q", color="blue", frames=frames)],
                                [f"step {k}" for k in range(5)], g, g, logp, lo=-5, hi=5,
                                means=[(2, 2)]),
        render.particles_figure([dict(name="p", color="red", points=pts)], g, g, logp, lo=-5, hi=5,
                                means=[(2, 2)], title="t",
                                weights={"labels": ["a", "b"], "bars": {"target": [0.8, 0.2], "got": [0.5, 0.5]},
                                         "colors": {"target": "grey"}, "title": "w"}),
    ]
    for spec in specs:
        fig = go.Figure(spec.spec)   # plotly.py validates every property; raises if invalid
        assert fig.data
    anim = specs[3].spec
    assert len(anim["frames"]) == 5
    assert all(len(f["data"]) == len(anim["data"]) for f in anim["frames"])


def test_the_shared_base_and_the_page_figures_are_valid_plotly():
    from engine.render import base, images, sde

    rng = np.random.default_rng(2)
    traj = rng.normal(size=(3, 2, 2))
    lines = base.path_lines(traj)           # particle 0's 3 points, a gap, particle 1's, a gap
    assert lines.shape == (8, 2) and np.isnan(lines[3]).all() and np.isnan(lines[7]).all()
    np.testing.assert_array_equal(lines[4:7], traj[:, 1].astype(np.float32))
    g = np.linspace(-4, 4, 12)
    logp = -(g[None, :] ** 2 + g[:, None] ** 2) / 2
    run = dict(x=rng.normal(size=(30, 2)), frames=rng.normal(size=(5, 4, 2)),
               frame_steps=[0, 10, 20, 30, 40], frame_sigmas=[20.0, 20.0, 9.0, 4.0, 1.0])
    figs = render.langevin_figures({"a": run, "b": run}, {"g": g, "logp": logp}, lim=4, means=[(1, 1)],
                                   steps=20, colors={"a": "red", "b": "blue"}, label_by="b", n_traj=2)
    assert [s["label"] for s in figs["anim"]["layout"]["sliders"][0]["steps"]] == [
        "step 0 (start)", "step 10 · annealed σ = 20", "step 20 · annealed σ = 9", "step 30 · annealed σ = 4",
        "step 40 · annealed σ = 1"]
    paths = next(t for t in figs["final"]["data"] if t.get("name") == "trajectories")
    assert len(decode(paths["x"])) == 2 * (3 + 1)            # frames at steps 0, 20, 40 only
    maps = dict(grid=g, exact=logp, ode=logp + 0.5)
    for spec in (figs["final"], figs["anim"], sde.likelihood_figure(maps).spec,
                 images.class_counts_figure([1, 2, 3, 4, 5, 6, 7, 8, 9, 0]).spec):
        assert go.Figure(spec).data


def test_weights_table_rows_bold_error_and_extra_columns():
    results = {"run": {"mode_weights": [0.75, 0.25], "weight_error": 0.05, "sliced_wasserstein": 0.123,
                       "nfe": 40}}
    table = render.weights_table([0.8, 0.2], results, labels=["w1", "w2"], corner="sampler",
                                 extra={"nfe": ("NFE", "{:d}")})
    assert table.splitlines() == ["| sampler | w1 | w2 | weight error (TV) | sliced W₂ | NFE |",
                                  "|---|---:|---:|---:|---:|---:|",
                                  "| target | 0.800 | 0.200 | 0 | 0 | – |",
                                  "| run | 0.750 | 0.250 | **0.050** | 0.12 | 40 |"]


def test_contour_lines_are_chained_and_lie_on_the_level_set():
    """Iso-line of −(x² + y²) at −4 is the circle of radius 2; chaining the marching-squares
    segments keeps each crossing point once (about a third of the NaN-separated segments)."""
    g = np.linspace(-3, 3, 61)
    xx, yy = np.meshgrid(g, g)
    x, y = render.contour_lines(g, g, -(xx**2 + yy**2), [-4.0])
    on = ~np.isnan(x)
    np.testing.assert_allclose(np.hypot(x[on], y[on]), 2.0, atol=2e-3)
    assert np.isnan(x).sum() <= 2            # one closed line (or two halves), not one per cell
    cells = on.sum()
    assert 80 < cells < 200                  # ~ one point per crossed cell (perimeter 4π / 0.1)


def test_svg_path_draws_each_nan_separated_piece():
    x = np.array([0, 1, np.nan, 2, 3], np.float32)
    y = np.array([0, 1, np.nan, 2, 4], np.float32)
    assert render.svg_path(x, y) == "M0.00,0.00L1.00,1.00M2.00,2.00L3.00,4.00"


def test_field_figure_arrows_are_one_path_shape_and_axes_are_x1_x2():
    g = np.linspace(-2, 2, 5)
    pts = np.array([[0.0, 0.0], [1.0, 1.0]])
    spec = render.field_figure(g, g, np.zeros((5, 5)), pts, pts, title="t", z_title="log p").spec
    assert [s["type"] for s in spec["layout"]["shapes"]] == ["path"]
    assert spec["layout"]["shapes"][0]["path"].count("M") == 4   # shaft + head per arrow
    assert spec["layout"]["xaxis"]["title"]["text"] == "x₁" and spec["layout"]["yaxis"]["title"]["text"] == "x₂"
    go.Figure(spec)  # valid for Plotly


def test_heat_image_is_the_bilinear_field_on_pixel_centres_with_y_up():
    """z = x₁ on a grey scale from black (z = −1) to white (z = 1): the picture's columns are
    255·(x + 1)/2 at their pixel centres (bilinear interpolation is exact on a linear field);
    z = x₂: the top row is the brightest (y points up), and the picture covers [lo, hi]²."""
    import io

    from PIL import Image

    from engine.render.base import heat_image

    g = np.linspace(-1, 1, 9)
    grey = [[0, "rgb(0,0,0)"], [1, "rgb(255,255,255)"]]
    centres = -1 + (np.arange(64) + 0.5) / 64 * 2
    for z, axis in ((np.tile(g, (9, 1)), 1), (np.tile(g[:, None], (1, 9)), 0)):
        spec = heat_image(z, -1.0, 1.0, grey, pixels=64)
        assert (spec["x"], spec["y"], spec["sizex"], spec["sizey"]) == (-1.0, 1.0, 2.0, 2.0)
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(spec["source"].split(",")[1])))
                            .convert("L"), dtype=float)
        want = 255 * (centres + 1) / 2
        profile = pixels.mean(axis=1 - axis) if axis else pixels.mean(axis=1)[::-1]
        np.testing.assert_allclose(profile, want, atol=3)   # lossy WebP, 8-bit colours


def test_field_figure_colour_bar_spans_the_heat_map():
    g = np.linspace(-2, 2, 5)
    z = np.add.outer(g, g)
    spec = render.field_figure(g, g, z, None, None, title="t", z_title="log p").spec
    marker = spec["data"][0]["marker"]
    assert (marker["cmin"], marker["cmax"]) == (-4.0, 4.0) and marker["showscale"]
    assert marker["colorbar"]["title"]["text"] == "log p"
    assert spec["layout"]["images"][0]["source"].startswith("data:image/webp;base64,")


def test_log_axes_label_whole_decades():
    from engine.render.base import log_axis
    from engine.render.train import per_sigma_figure

    assert log_axis("σ") == {"type": "log", "dtick": 1, "exponentformat": "none", "title": {"text": "σ"}}
    fig = per_sigma_figure({0.1: 1.0, 10.0: 0.01}, title="t", y_title="Fisher divergence")
    assert fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.title.text == "Fisher divergence"


def test_colour_scales_avoid_the_colours_streamlit_replaces_with_its_theme():
    """Streamlit swaps #000001 … #000010 for theme colours in the browser; Magma starts at #000004
    (its colour bar drew a pink end). The scales Score Lab sends keep every other stop."""
    from plotly.colors import get_colorscale

    from engine.render.base import colorscale

    placeholders = {f"#{i:06d}" for i in range(1, 11)}
    for name in ("Magma", "Inferno", "Viridis"):
        original, sent = get_colorscale(name), colorscale(name)
        assert not {c.lower() for _, c in sent} & placeholders
        assert [s for s, _ in sent] == [s for s, _ in original]
        assert sum(a != b for (_, a), (_, b) in zip(original, sent)) == (0 if name == "Viridis" else 1)
    assert colorscale("Magma")[0] == [0.0, "#000000"]

"""Plotly figures for the Train page (no Streamlit here): loss curves, learned vs exact score fields
with an error map (from engine.lab.grids.field_comparison's arrays), run comparisons across
objectives, and the seed experiments' charts. These build validated `go.Figure`s (small figures;
the particle clouds of the mixing pages use engine.render.base.Spec instead)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.render.base import MARGIN, colorbar_trace, f32, heat_image, log_axis
from engine.render.mixing import arrow_segments, density_contours

OBJECTIVE_COLORS = {"esm": "#2ca02c", "ism": "#9467bd", "ssm": "#ff7f0e", "ssm-vr": "#d62728",
                    "dsm": "#8c564b", "ncsn": "#1f77b4"}


# log p_σ from low (grey) to high (white): Plotly's reversed "Greys" at 35 % over white, as one
# scale, so the picture and its colour bar agree.
DENSITY_GREYS = [[0.0, "rgb(166,166,166)"], [1.0, "rgb(255,255,255)"]]


def _density_panel(fig, cmp: dict, col: int, colour_bar: bool = False) -> None:
    """log p_σ as a grey picture under panel `col` (base.heat_image: one WebP image instead of a
    filled contour the browser computes on every redraw), with a horizontal colour bar under the
    panel if asked."""
    lo, hi, logp = float(cmp["xs"][0]), float(cmp["xs"][-1]), np.asarray(cmp["logp"])
    sfx = "" if col == 1 else str(col)
    fig.add_layout_image(heat_image(logp, lo, hi, DENSITY_GREYS), xref=f"x{sfx}", yref=f"y{sfx}")
    if colour_bar:
        bar = colorbar_trace(DENSITY_GREYS, float(logp.min()), float(logp.max()), "log p_σ",
                             orientation="h", x=0.5, xanchor="center", y=-0.12, len=0.3)
        bar["marker"]["colorbar"].update(thickness=10, title=dict(text="log p_σ", side="top"))
        fig.add_trace(go.Scatter(bar), 1, col)


def _points_panel(fig, points, col: int, color: str = "gray", size: int = 2, opacity: float = 0.5,
                  name: str = "data") -> None:
    pts = np.asarray(points).reshape(-1, 2)
    fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name,
                               marker=dict(size=size, color=color, opacity=opacity),
                               hoverinfo="skip"), 1, col)


def _arrows_panel(fig, cmp: dict, key: str, color: str, col: int) -> None:
    xs = cmp["xs"]
    spacing = (float(xs[-1]) - float(xs[0])) / max(int(math.sqrt(len(cmp["arrows"]))) - 1, 1)
    ax_, ay_ = arrow_segments(cmp["arrows"], cmp[key], 0.9 * spacing)
    fig.add_trace(go.Scatter(x=f32(ax_), y=f32(ay_), mode="lines", line=dict(color=color, width=1.3),
                               hoverinfo="skip", name=key), 1, col)


def _square_axes(fig, n: int, lo: float, hi: float) -> None:
    for i in range(1, n + 1):
        suffix = "" if i == 1 else str(i)
        fig.layout[f"xaxis{suffix}"].update(range=[lo, hi], showgrid=False, zeroline=False,
                                            constrain="domain", title=dict(text="x₁", standoff=2))
        fig.layout[f"yaxis{suffix}"].update(range=[lo, hi], showgrid=False, zeroline=False,
                                            scaleanchor=f"x{suffix}", scaleratio=1,
                                            constrain="domain", title=dict(text="x₂", standoff=2))


def fields_figure(cmp: dict, data_points=None, height: int = 420) -> go.Figure:
    """Panels: learned field | exact field | error map ‖s_θ − ∇log p_σ‖ (log colour) with the
    density's contours, so the error's growth in low-density regions is visible."""
    has_exact = "exact" in cmp
    titles = [f"Learned score at σ = {cmp['sigma']:.3g}"]
    if has_exact:
        titles += ["Exact score, over log p_σ", "Error of the learned score (log₁₀)"]
    fig = make_subplots(1, len(titles), subplot_titles=titles, horizontal_spacing=0.06)
    xs, ys = cmp["xs"], cmp["ys"]
    panels = [("learned", "#1f77b4")] + ([("exact", "#2ca02c")] if has_exact else [])
    for col, (key, color) in enumerate(panels, start=1):
        if "logp" in cmp:
            _density_panel(fig, cmp, col, colour_bar=key == "exact")   # the bar under the exact panel
        elif data_points is not None:
            _points_panel(fig, np.asarray(data_points)[:1500], col)
        _arrows_panel(fig, cmp, key, color, col)
    if has_exact:
        # The error map as a picture too, with its colour bar; white iso-lines of log p_σ on top.
        err = np.log10(np.maximum(cmp["err"], 1e-4))
        lo, hi = float(xs[0]), float(xs[-1])
        fig.add_layout_image(heat_image(err, lo, hi, "Magma"), xref="x3", yref="y3")
        fig.add_trace(go.Scatter(colorbar_trace("Magma", float(err.min()), float(err.max()),
                                                "log₁₀ error", x=1.0)), 1, 3)
        if "logp" in cmp:
            lx, ly = density_contours(xs, ys, cmp["logp"], n_levels=8)
            fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(color="white", width=1),
                                     hoverinfo="skip"), 1, 3)
    _square_axes(fig, len(titles), float(xs[0]), float(xs[-1]))
    fig.update_layout(height=height + 40, showlegend=False, margin=dict(MARGIN, b=60))
    return fig


def preview_figure(pv: dict, height: int = 340) -> go.Figure:
    """A run while it trains (engine.lab.learned2d.preview): its samples | its field | the exact
    field (mixtures; otherwise the field over the training data)."""
    cmp = pv["field"]
    has_exact = "exact" in cmp
    step = f"step {pv['step']}" + (f" of {pv['total']}" if pv.get("total") else "")
    titles = [f"Samples · {step}", f"Learned score at σ = {pv['sigma']:.3g}"]
    titles += ["Exact score"] if has_exact else []
    fig = make_subplots(1, len(titles), subplot_titles=titles, horizontal_spacing=0.05)
    for col in range(1, len(titles) + 1):
        if "logp" in cmp:
            _density_panel(fig, cmp, col)
        elif "data_points" in cmp:
            _points_panel(fig, np.asarray(cmp["data_points"])[:1500], col, size=4)
    _points_panel(fig, pv["x"], 1, color=OBJECTIVE_COLORS["ncsn"], size=3, opacity=0.7, name="samples")
    _arrows_panel(fig, cmp, "learned", "#1f77b4", 2)
    if has_exact:
        _arrows_panel(fig, cmp, "exact", "#2ca02c", 3)
    _square_axes(fig, len(titles), float(cmp["xs"][0]), float(cmp["xs"][-1]))
    fig.update_layout(height=height, showlegend=False, margin=MARGIN)
    return fig


CANVAS_LIMIT = 10.0


def canvas_figure(points, n: int = 41, lim: float = CANVAS_LIMIT, height: int = 460) -> go.Figure:
    """A square to draw a data set on: a dense grid of faint dots (trace 0) to select with the box
    or lasso tool, and the points drawn so far (trace 1)."""
    g = np.linspace(-lim, lim, n)
    xx, yy = np.meshgrid(g, g)
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    fig = go.Figure([
        go.Scatter(x=xx.ravel(), y=yy.ravel(), mode="markers", name="canvas",
                   marker=dict(size=6, color="rgba(120,120,120,0.18)"),
                   hovertemplate="(%{x:.1f}, %{y:.1f})<extra></extra>"),
        go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="your points",
                   marker=dict(size=7, color=OBJECTIVE_COLORS["ncsn"]), hoverinfo="skip"),
    ])
    fig.update_layout(height=height, margin=MARGIN, showlegend=False, dragmode="select",
                      title=f"Your data: {len(pts)} points",
                      xaxis=dict(range=[-lim - 0.5, lim + 0.5], zeroline=False, title="x₁"),
                      yaxis=dict(range=[-lim - 0.5, lim + 0.5], zeroline=False, title="x₂",
                                 scaleanchor="x", scaleratio=1))
    return fig


def points_figure(points, title: str, height: int = 220) -> go.Figure:
    """A small scatter of a run's own training points."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    fig = go.Figure(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers",
                               marker=dict(size=5, color=OBJECTIVE_COLORS["ncsn"])))
    fig.update_layout(title=title, height=height, margin=MARGIN,
                      yaxis=dict(scaleanchor="x", scaleratio=1))
    return fig


def loss_curve(records: list[dict], name: str, **style) -> dict:
    """A curve for loss_figure from a run's metric records ({"step", "loss", …} each); style:
    "objective" (its colour) or "color"."""
    return {"name": name, "steps": [r["step"] for r in records], "loss": [r["loss"] for r in records],
            **style}


def loss_figure(curves: list[dict], title: str = "Training loss", height: int = 300,
                log_y: bool = False) -> go.Figure:
    """curves: [{"name", "steps", "loss", "objective"?, "color"?}] → one line each."""
    fig = go.Figure()
    for c in curves:
        fig.add_trace(go.Scatter(x=list(c["steps"]), y=list(c["loss"]), mode="lines", name=c["name"],
                                 line=dict(width=2, color=c.get("color") or
                                           OBJECTIVE_COLORS.get(c.get("objective", "")))))
    fig.update_layout(title=title, height=height, margin=MARGIN, xaxis_title="step",
                      yaxis=log_axis("loss") if log_y else dict(title=dict(text="loss")),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def per_sigma_figure(per_sigma: dict, *, title: str, y_title: str | None = None,
                     log_y: bool = True, mode: str = "lines+markers", height: int = 260) -> go.Figure:
    """A value at each noise level, {σ: value} (None values skipped), against σ on a log axis."""
    pairs = sorted((float(k), v) for k, v in per_sigma.items() if v is not None)
    ys = [max(p[1], 1e-12) for p in pairs] if log_y else [p[1] for p in pairs]
    fig = go.Figure(go.Scatter(x=[p[0] for p in pairs], y=ys, mode=mode,
                               line=dict(color=OBJECTIVE_COLORS["ncsn"])))
    fig.update_layout(title=title, height=height, margin=MARGIN, xaxis=log_axis("noise level σ"),
                      yaxis=log_axis(y_title) if log_y else dict(title=dict(text=y_title)))
    return fig


def fisher_sigma_figure(per_sigma: dict, height: int = 260) -> go.Figure:
    """Fisher divergence under the perturbed data at each trained σ (log–log)."""
    return per_sigma_figure(per_sigma, title="Fisher divergence per σ (perturbed data)",
                            y_title="Fisher divergence", height=height)


def comparison_figure(rows: list[dict], height: int = 320) -> go.Figure:
    """Bars of the clean-data Fisher divergence per run, coloured by objective (log scale)."""
    rows = [r for r in rows if r.get("fisher") is not None]
    fig = go.Figure(go.Bar(
        x=[r["run"] for r in rows], y=[r["fisher"] for r in rows],
        marker_color=[OBJECTIVE_COLORS.get(r.get("objective"), "gray") for r in rows],
        text=[f"{r['fisher']:.3g}" for r in rows], textposition="outside",
        customdata=[[r.get("objective"), r.get("sec_per_step") or 0] for r in rows],
        hovertemplate="%{x}<br>%{customdata[0]}<br>Fisher %{y:.3g}<br>"
                      "%{customdata[1]:.2g} s/step<extra></extra>"))
    fig.update_layout(title="Fisher divergence under the data (lower is better)", height=height,
                      margin=MARGIN, yaxis=log_axis("Fisher divergence"))
    return fig


def cost_figure(rows: list[dict], height: int = 340) -> go.Figure:
    """Seed experiment (a): seconds per step against dimension, one line per objective (log–log)."""
    fig = go.Figure()
    for obj in dict.fromkeys(r["objective"] for r in rows):
        pts = [(r["dim"], r["sec_per_step"]) for r in rows if r["objective"] == obj]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name={"ism": "ISM (exact trace)", "ssm": "SSM", "dsm": "DSM"}.get(obj, obj),
                                 line=dict(width=2.5, color=OBJECTIVE_COLORS.get(obj))))
    fig.update_layout(title="Cost of one training step as the dimension grows", height=height,
                      margin=MARGIN, xaxis=log_axis("data dimension d"),
                      yaxis=log_axis("seconds per step"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig

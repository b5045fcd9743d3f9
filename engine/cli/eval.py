"""python -m engine eval --samples samples.npy [--real-reference]: quality figures as JSON
(classifier class histogram, mean confidence, Fréchet distance to real test digits)."""

from __future__ import annotations

import json


def add_arguments(p) -> None:
    p.add_argument("--samples", required=True, help=".npy array (N, 28, 28) with values in [0, 1]")
    p.add_argument("--real-reference", action="store_true",
                   help="also print the figures of N random real test digits")
    p.add_argument("--classifier", default=None, help="classifier checkpoint (default: the shipped one)")


def run(args) -> int:
    import numpy as np

    from engine.mnist.quality import CLASSIFIER, evaluate_samples, real_reference

    try:
        samples = np.load(args.samples, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"No samples file at {args.samples}.") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{args.samples} is not a readable .npy array ({err}).") from None
    clf = args.classifier or str(CLASSIFIER)
    out = {"samples": args.samples, **evaluate_samples(samples, clf)}
    if args.real_reference:
        out["real_test_digits"] = real_reference(out["n"], classifier_path=clf)
    print(json.dumps(out))
    return 0

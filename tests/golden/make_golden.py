"""Reference outputs of the shipped checkpoints and the exact-score samplers, recorded once
(before the engine reshape) so tests/engine/test_golden.py can prove that the same seed still gives the
same particles and images. Re-run only when a change of outputs is intended and documented:

    python tests/golden/make_golden.py

Changes recorded so far:
- tutorial_pc_samples (re-recorded in the reshape): `python -m engine bench mnist` samples the
  tutorial model with the one shared predictor–corrector sampler (engine/samplers/reverse.py,
  score_sde's: N + 1 time points with Δt = (1 − eps)/N, corrector noise norm ‖z‖ averaged over the
  batch) instead of its own copy (the notebook's: N points including eps, noise norm √D).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.golden.cases import CASES  # noqa: E402

if __name__ == "__main__":
    out = {name: np.asarray(fn(), dtype=np.float64) for name, fn in CASES.items()}
    np.savez_compressed(Path(__file__).with_name("golden.npz"), **out)
    print({k: v.shape for k, v in out.items()})

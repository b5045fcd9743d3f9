"""Reference outputs of the shipped checkpoints and the exact-score samplers, recorded once
(before the engine reshape) so tests/engine/test_golden.py can prove that the same seed still gives the
same particles and images. Re-run only when a change of outputs is intended and documented, and
only for the cases that change (the others keep their recorded arrays):

    python tests/golden/make_golden.py CASE [CASE …]      # no names: every case

Changes recorded so far:
- tutorial_pc_samples (re-recorded in the reshape): `python -m engine bench mnist` samples the
  tutorial model with the one shared predictor–corrector sampler (engine/samplers/reverse.py,
  score_sde's: N + 1 time points with Δt = (1 − eps)/N, corrector noise norm ‖z‖ averaged over the
  batch) instead of its own copy (the notebook's: N points including eps, noise norm √D).
- mix_annealed, mix_plain, mix_batched_pair (re-recorded for issue 9, `make_golden.py mix_annealed
  mix_plain mix_batched_pair`): the fused exact-score kernel draws its own noise (Philox2x32 +
  Box–Muller inside the compiled loop, engine/samplers/mixture_kernel.py) instead of torch.randn,
  so the same seed gives other particles from the same law. The numbers recorded before moved,
  unchanged, to mix_annealed_torch, mix_plain_torch and mix_batched_pair_torch, which run the same
  configs on the torch path (fused=False, torch.randn), still there as the reference.
- ncsn_mnist_samples, ncsn_mnist_samples_t2 (re-recorded for issue 11): checkpoints/ncsn_mnist is a
  new model (the ResUNet trained on continuous σ on a GPU). The first case runs its default sampler
  (Heun on the probability-flow ODE), the second annealed Langevin with T = 2 (`--mode annealed`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.golden.cases import CASES  # noqa: E402

if __name__ == "__main__":
    path = Path(__file__).with_name("golden.npz")
    names = sys.argv[1:] or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"No golden case named {', '.join(unknown)}; the cases: {', '.join(CASES)}.")
    out = dict(np.load(path)) if path.exists() else {}
    out.update({name: np.asarray(CASES[name](), dtype=np.float64) for name in names})
    np.savez_compressed(path, **out)
    print({k: out[k].shape for k in names})

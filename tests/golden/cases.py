"""The golden cases: each a function returning an array, small enough to run in seconds.

Only the CLI and the most stable engine entry points are used here, so the cases survive internal
refactoring; if an entry point moves, update the call — never the recorded numbers.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
CK = ROOT / "checkpoints"


def _cli_sample(checkpoint: str, n: int, seed: int, *extra: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        npy = Path(d) / "s.npy"
        subprocess.run([sys.executable, "-m", "engine", "sample", "--checkpoint", str(CK / checkpoint),
                        "--n", str(n), "--seed", str(seed), "--out", str(Path(d) / "g.png"),
                        "--npy", str(npy), "--threads", "1", *extra],
                       cwd=ROOT, check=True, capture_output=True)
        return np.load(npy)


def mix_annealed():
    from engine.lab.mixing import MixConfig, run_mix
    return run_mix(MixConfig(particles=200, seed=3)).sample.x.numpy()


def mix_plain():
    from engine.lab.mixing import MixConfig, run_mix
    return run_mix(MixConfig(sampler="langevin", particles=200, steps=300, seed=3)).sample.x.numpy()


def mix_batched_pair():
    from engine.lab.mixing import MixConfig, run_mixes
    cfgs = (MixConfig(sampler="langevin", particles=150, steps=200, levels=4, seed=5),
            MixConfig(sampler="annealed", particles=150, steps=50, levels=4, seed=5, denoise=True))
    return np.stack([r.sample.x.numpy() for r in run_mixes(cfgs)])


def _torch_path(configs):
    """The exact-score chains of `configs` (run_mixes' batch) on the torch path (fused=False, noise
    from torch.randn): the particles every mix_* case had before the fused kernel drew its own."""
    from engine.lab.mixing import initial_particles, noise_generator, schedule_for
    from engine.samplers.langevin import mixture_langevin_chains
    x0 = initial_particles(configs[0])
    outs = mixture_langevin_chains(configs[0].mixture, [x0] * len(configs),
                                   [schedule_for(c) for c in configs],
                                   [noise_generator(c) for c in configs], fused=False)
    return np.stack([o.x.numpy() for o in outs])


def mix_annealed_torch():
    from engine.lab.mixing import MixConfig
    return _torch_path((MixConfig(particles=200, seed=3),))[0]


def mix_plain_torch():
    from engine.lab.mixing import MixConfig
    return _torch_path((MixConfig(sampler="langevin", particles=200, steps=300, seed=3),))[0]


def mix_batched_pair_torch():
    from engine.lab.mixing import MixConfig
    return _torch_path((MixConfig(sampler="langevin", particles=150, steps=200, levels=4, seed=5),
                        MixConfig(sampler="annealed", particles=150, steps=50, levels=4, seed=5,
                                  denoise=True)))


def sde_pc_exact():
    from engine.lab.sde_mixing import SDEMixConfig, run_sde_mix
    return run_sde_mix(SDEMixConfig(particles=200, steps=100, seed=2)).sample.x.numpy()


def sde_vp_em_exact():
    from engine.lab.sde_mixing import SDEMixConfig, run_sde_mix
    return run_sde_mix(SDEMixConfig(sampler="sde", sde="vp", particles=200, steps=100, seed=2)).sample.x.numpy()


def sde2d_checkpoint_pc():
    out = subprocess.run([sys.executable, "-m", "engine", "mix", "--sampler", "pc", "--steps", "100",
                          "--particles", "300", "--checkpoint", str(CK / "sde2d_seeds_ve"), "--seed", "4"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    import json
    d = json.loads(out)
    return np.array(d["mode_weights"] + [d["sliced_wasserstein"]])


def nll_checkpoint():
    out = subprocess.run([sys.executable, "-m", "engine", "nll", "--checkpoint", str(CK / "sde2d_seeds_vp"),
                          "--points", "20", "--seed", "1"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    import json
    d = json.loads(out)
    return np.array([v for k, v in sorted(d.items()) if isinstance(v, float) and "second" not in k])


def ncsn_mnist_samples():
    return _cli_sample("ncsn_mnist", 3, 0)


def ncsn_mnist_samples_t2():
    return _cli_sample("ncsn_mnist", 2, 1, "--mode", "annealed", "--steps-per-level", "2")


def dsm_baseline_samples():
    return _cli_sample("dsm_mnist_baseline", 2, 0)


def tutorial_pc_samples():
    from engine.bench.mnist import pc_sample
    from engine.store.checkpoints import load_model
    model, _ = load_model(CK / "sde_mnist_tutorial")
    torch.set_num_threads(1)
    images, _ = pc_sample(model, 2, steps=30, seed=0)
    return images


def tutorial_inpaint():
    from engine.mnist.data import load_mnist, to_float
    from engine.mnist.sde_tasks import inpaint, make_mask
    from engine.models.score import load_score
    loaded = load_score(CK / "sde_mnist_tutorial", reading="time")
    score_fn, sde = loaded.score_fn, loaded.sde
    images = to_float(load_mnist().test_images[:1])
    with torch.no_grad():
        # jump=1, resample=1: replacement only, as recorded (RePaint resampling is the default now).
        out, _ = inpaint(score_fn, sde, images, make_mask("bottom"), completions=1, steps=20, seed=0,
                         jump=1, resample=1)
    return out


CASES = {f.__name__: f for f in (mix_annealed, mix_plain, mix_batched_pair, mix_annealed_torch,
                                 mix_plain_torch, mix_batched_pair_torch, sde_pc_exact,
                                 sde_vp_em_exact, sde2d_checkpoint_pc, nll_checkpoint,
                                 ncsn_mnist_samples, ncsn_mnist_samples_t2, dsm_baseline_samples,
                                 tutorial_pc_samples, tutorial_inpaint)}

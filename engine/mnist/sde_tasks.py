"""The SDE view on MNIST: bits/dim through the probability-flow ODE, inpainting with the
predictor–corrector sampler, and sample quality against cost, for a score model read as a function
of time (engine.models.score.load_score(path, reading="time"): a "tutorial_unet" with the tutorial
VE SDE, or an "ncsn_unet" read as the VE SDE σ(t) = σ_min (σ_max/σ_min)^t over its trained range —
the VE SDE is the continuous limit of the NCSN's noise levels).

Command line: `python -m engine sde-mnist {bpd,inpaint,cost} --checkpoint …` (engine.cli.sde_mnist).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from engine.sde.likelihood import bits_per_dim, dequantize, ode_log_likelihood
from engine.sde.sdes import SDE
from engine.samplers.reverse import SDESamplerConfig, pc_inpaint

MASKS = {
    "bottom": "bottom half hidden",
    "top": "top half hidden",
    "right": "right half hidden",
    "left": "left half hidden",
    "centre": "centre 14×14 square hidden",
    "random": "70% of pixels hidden at random",
}


# Inpainting defaults: PC with RePaint's resampling, chosen on 200 test digits × 2 completions with
# the bottom half hidden (class kept 0.82; plain replacement with 250 steps: 0.75); see README.
INPAINT_STEPS, INPAINT_JUMP, INPAINT_RESAMPLE = 100, 5, 10


def make_mask(kind: str, seed: int = 0) -> np.ndarray:
    """(28, 28) float mask, 1 = known pixel, 0 = to be filled in."""
    m = np.ones((28, 28), dtype=np.float32)
    if kind == "bottom":
        m[14:] = 0
    elif kind == "top":
        m[:14] = 0
    elif kind == "right":
        m[:, 14:] = 0
    elif kind == "left":
        m[:, :14] = 0
    elif kind == "centre":
        m[7:21, 7:21] = 0
    elif kind == "random":
        rng = np.random.default_rng(seed)
        m = (rng.random((28, 28)) > 0.7).astype(np.float32)
    else:
        raise ValueError(f"Unknown mask {kind!r}; choose one of {', '.join(MASKS)}.")
    return m


def inpaint(score_fn, sde: SDE, images: np.ndarray, mask: np.ndarray, completions: int = 4,
            steps: int = INPAINT_STEPS, snr: float = 0.16, seed: int = 0,
            progress=None, corrector_steps: int = 1, jump: int = INPAINT_JUMP,
            resample: int = INPAINT_RESAMPLE) -> tuple[np.ndarray, int]:
    """Complete each image (N, 28, 28) in [0, 1] `completions` times: (N, completions, 28, 28)
    clipped to [0, 1], and the NFE used. resample > 1: RePaint's resampling every `jump` steps
    (engine.samplers.reverse.repaint_path). progress(move, moves) after every sampler move."""
    imgs = torch.from_numpy(np.asarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
    n = imgs.shape[0]
    known = imgs.repeat_interleave(completions, 0)
    m = torch.from_numpy(np.asarray(mask, dtype=np.float32)).reshape(1, 1, 28, 28)
    m = m.expand_as(known).contiguous() if m.shape[0] == 1 else m
    cfg = SDESamplerConfig(sampler="pc", steps=steps, snr=snr, corrector_steps=corrector_steps)
    res = pc_inpaint(score_fn, known, m, sde, cfg, torch.Generator().manual_seed(seed),
                     callback=None if progress is None else (lambda info: progress(info["step"], info["total"])),
                     jump=jump, resample=resample)
    out = res.x.clamp(0, 1).reshape(n, completions, 28, 28).numpy()
    return out, res.nfe


def mnist_bits_per_dim(score_fn, sde: SDE, images_uint8: np.ndarray, seed: int = 0,
                       rtol: float = 1e-5, atol: float = 1e-5, batch: int = 8,
                       eps: float = 1e-5, progress=None) -> dict:
    """bits/dim of uniformly dequantised test digits (data in [0, 1)), Hutchinson trace with a
    fixed Rademacher probe per batch, probability-flow ODE with RK45 from t = eps = 1e-5 (as in
    score_sde and the tutorial: the kernel's std there must be below one pixel level, 1/256 —
    the tutorial SDE's std is 0.003 at 1e-5 but 0.03 at its sampling eps 1e-3, which would
    cost ~3 bits/dim). progress(images_done, images) as the ODE goes (fractions within a batch)."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.from_numpy(np.asarray(images_uint8)).reshape(-1, 1, 28, 28)
    bpds, nfes = [], []
    start = time.perf_counter()
    for i in range(0, len(imgs), batch):
        x = dequantize(imgs[i:i + batch], generator=g)
        within = None if progress is None else (lambda f, i=i, k=len(x): progress(i + f * k, len(imgs)))
        res = ode_log_likelihood(score_fn, x, sde, exact_trace=False, rtol=rtol, atol=atol,
                                 seed=seed + i, dtype=torch.float32, eps=eps, progress=within)
        bpds.append(bits_per_dim(res.log_p.double(), 784))
        nfes.append(res.nfe)
    bpd = torch.cat(bpds)
    return {"bpd": round(float(bpd.mean()), 4),
            "bpd_stderr": round(float(bpd.std() / math.sqrt(len(bpd))), 4) if len(bpd) > 1 else None,
            "images": len(bpd), "nfe_mean": round(sum(nfes) / len(nfes), 1),
            "seconds": round(time.perf_counter() - start, 1),
            "dequantisation": "uniform: x = (k + u)/256, u ~ U[0,1); bpd = −log p/(784 ln 2) + 8",
            "trace": "Hutchinson, one Rademacher probe per batch", "rtol": rtol, "atol": atol,
            "eps": eps, "std_at_eps": round(float(sde.std(torch.tensor(eps))), 5)}


def inpaint_rate(score_fn, sde: SDE, digits: int = 20, mask: str = "bottom", completions: int = 2,
                 steps: int = INPAINT_STEPS, snr: float = 0.16, seed: int = 0, progress=None,
                 corrector_steps: int = 1, jump: int = INPAINT_JUMP,
                 resample: int = INPAINT_RESAMPLE) -> dict:
    """Fraction of completions that the project's classifier assigns to the true class of the
    masked test digit (and, for reference, its accuracy on the masked digits themselves).
    progress(step, steps) after every sampler step."""
    from engine.models.classifier import predict
    from engine.mnist.quality import load_classifier
    from engine.mnist.data import load_mnist

    data = load_mnist()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(data.test_images), digits, replace=False)
    imgs = data.test_images[idx].astype(np.float32) / 255.0
    labels = data.test_labels[idx]
    m = make_mask(mask, seed)
    start = time.perf_counter()
    out, nfe = inpaint(score_fn, sde, imgs, m, completions, steps, snr, seed, progress=progress,
                       corrector_steps=corrector_steps, jump=jump, resample=resample)
    clf, _ = load_classifier()
    probs, _ = predict(clf, out.reshape(-1, 28, 28))
    pred = probs.argmax(1).reshape(digits, completions)
    masked_pred = predict(clf, imgs * m)[0].argmax(1)
    full_pred = predict(clf, imgs)[0].argmax(1)
    return {"rate": round(float((pred == labels[:, None]).mean()), 4),
            "masked_input_accuracy": round(float((masked_pred == labels).mean()), 4),
            "original_accuracy": round(float((full_pred == labels).mean()), 4),
            "digits": digits, "completions": completions, "mask": mask, "steps": steps,
            "snr": snr, "corrector_steps": corrector_steps, "jump": jump, "resample": resample, "nfe": nfe, "seconds": round(time.perf_counter() - start, 1)}


def cost_sweep(score_fn, sde: SDE, n: int = 32, budgets=(50, 100, 200),
               tolerances=(1e-2, 1e-3, 1e-5), seed: int = 0, progress=None) -> list[dict]:
    """Classifier-based quality of n samples per sampler at fixed NFE budgets (reverse SDE with
    N = B, PC with N = B/2) and the ODE at a ladder of tolerances: mean confidence, Fréchet
    distance of classifier features to real test digits, classes present. Last step: the mean.
    progress(runs_done, runs) after every sampler run."""
    from engine.mnist.quality import evaluate_samples
    from engine.samplers.langevin import SamplerDiverged
    from engine.samplers.reverse import sample

    rows = []
    runs = [("sde", b, dict(steps=b)) for b in budgets]
    runs += [("pc", b, dict(steps=max(1, b // 2))) for b in budgets]
    runs += [("ode", f"tol {tol:g}", dict(rtol=tol, atol=tol)) for tol in tolerances]
    for k, (sampler, budget, kw) in enumerate(runs):
        if progress is not None:
            progress(k, len(runs))
        g = torch.Generator().manual_seed(seed)
        x0 = sde.prior_sampling((n, 1, 28, 28), generator=g)
        start = time.perf_counter()
        try:
            with torch.no_grad():
                res = sample(score_fn, x0, sde, SDESamplerConfig(sampler=sampler, **kw), g)
        except SamplerDiverged as err:
            rows.append({"sampler": sampler, "budget": budget, "nfe": None, "error": str(err)})
            continue
        q = evaluate_samples(res.x.clamp(0, 1).numpy())
        rows.append({"sampler": sampler, "budget": budget, "nfe": res.nfe,
                     "mean_confidence": round(q["mean_confidence"], 4),
                     "frechet_distance": round(q["frechet_distance"], 3),
                     "classes_present": q["classes_present"],
                     "seconds": round(time.perf_counter() - start, 1)})
    if progress is not None:
        progress(len(runs), len(runs))
    return rows

"""python -m engine sde-mnist {bpd,inpaint,cost}: the SDE view's MNIST figures as JSON.

    python -m engine sde-mnist bpd --checkpoint checkpoints/ncsn_mnist --images 16
    python -m engine sde-mnist inpaint --checkpoint checkpoints/ncsn_mnist --digits 30 --mask bottom
    python -m engine sde-mnist cost --checkpoint checkpoints/ncsn_mnist --n 32 --budgets 50,100,200

The checkpoint is read as a function of time (a tutorial_unet, or an ncsn_unet as a VE SDE).
"""

from __future__ import annotations

import json
from contextlib import nullcontext

from engine.cli.main import number, number_list
from engine.mnist.sampling import SampleConfig
from engine.mnist.sde_tasks import INPAINT_JUMP, INPAINT_RESAMPLE, INPAINT_STEPS, MASKS
from engine.progress import reporter
from engine.samplers.reverse import SDESamplerConfig
from engine.store.jobs import LevelReporter, also_to, save_array
from engine.training.flags import field_help

TEST_DIGITS = 10_000


def add_arguments(p) -> None:
    p.add_argument("what", choices=["bpd", "inpaint", "cost"],
                   help="bits/dim of test digits, inpainting rate, or quality against NFE")
    p.add_argument("--n", type=int, default=32,
                   help=field_help(SampleConfig, "n", "cost: samples per sampler and budget"))
    p.add_argument("--budgets", default="50,100,200", type=number_list(int, 1, 100_000),
                   help="cost: NFE budgets (allowed: each in [1, 100000])")
    p.add_argument("--checkpoint", required=True,
                   help="a time-conditional MNIST score model, or an NCSN read as a VE SDE")
    p.add_argument("--images", type=number(int, 1, TEST_DIGITS), default=16,
                   help=f"bpd: test digits (allowed: [1, {TEST_DIGITS}])")
    p.add_argument("--digits", type=number(int, 1, TEST_DIGITS), default=20,
                   help=f"inpaint: test digits (allowed: [1, {TEST_DIGITS}])")
    p.add_argument("--completions", type=number(int, 1, 100), default=2,
                   help="inpaint: completions per digit (allowed: [1, 100])")
    p.add_argument("--mask", default="bottom", choices=list(MASKS),
                   help="inpaint: which pixels are hidden ("
                   + "; ".join(f"{k}: {v}" for k, v in MASKS.items()).replace("%", "%%") + ")")
    p.add_argument("--steps", type=int, default=INPAINT_STEPS,
                   help=field_help(SDESamplerConfig, "steps", "inpaint: N time steps"))
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--jump", type=number(int, 1, 100_000), default=INPAINT_JUMP,
                   help="inpaint: RePaint resampling, go back up every this many steps (allowed: [1, 100000])")
    p.add_argument("--resample", type=number(int, 1, 100), default=INPAINT_RESAMPLE,
                   help="inpaint: passes over each jump (1: plain replacement, no resampling; allowed: [1, 100])")
    p.add_argument("--snr", type=float, default=0.16, help=field_help(SDESamplerConfig, "snr"))
    p.add_argument("--seed", type=int, default=0,
                   help=field_help(SampleConfig, "seed", "seed of the digits chosen, the samples and the noise"))
    p.add_argument("--index", type=number(int, 0, TEST_DIGITS - 1), default=None,
                   help="inpaint: complete this one test digit --completions times (what the SDEs "
                        f"page shows) instead of measuring a rate (allowed: [0, {TEST_DIGITS - 1}])")
    p.add_argument("--run-dir", default=None,
                   help="a job folder (the app's background jobs): progress, result.json and, for "
                        "--index, completions.npy go there; a cancel stops it at the next step")
    p.add_argument("--threads", type=int, default=1)


def run(args) -> int:
    import torch

    from engine.models.score import load_score
    from engine.store.runs import mark_failed

    try:
        SampleConfig(n=args.n, seed=args.seed).validate()
        SDESamplerConfig(sampler="pc", steps=args.steps, snr=args.snr).validate()
        torch.set_num_threads(args.threads)
        from engine.device import pick_device

        loaded = load_score(args.checkpoint, device=pick_device(args.device), reading="time")
    except ValueError as err:
        if args.run_dir:
            mark_failed(args.run_dir, str(err))      # the page's job says why, in one sentence
        raise
    score_fn, sde = loaded.score_fn, loaded.sde
    job = (LevelReporter(args.run_dir, unit={"bpd": "image", "cost": "sampler run"}.get(args.what, "step"))
           if args.run_dir else None)

    def report(bar):           # the terminal's bar, and the job folder's status
        return also_to(job, bar.callback())
    with job or nullcontext():
        out, arrays = compute(args, score_fn, sde, report)
    if job is not None and job.stopped:
        return 0
    out["checkpoint"] = str(args.checkpoint)
    out["sde"] = sde.describe()
    if job is not None:
        for name, array in arrays.items():
            save_array(job.dir / f"{name}.npy", array)
        job.finished(f"sde-mnist {args.what} done.", **out)
    print(json.dumps(out))
    return 0


def compute(args, score_fn, sde, report) -> tuple[dict, dict]:
    """(the JSON figures, {name: array} for a job folder)."""
    import numpy as np
    import torch

    from engine.mnist import sde_tasks

    arrays = {}
    if args.what == "bpd":
        from engine.mnist.data import load_mnist

        data = load_mnist()
        idx = np.random.default_rng(args.seed).choice(len(data.test_images), args.images, replace=False)
        with reporter("bits/dim", args.images, unit="image") as bar:
            out = sde_tasks.mnist_bits_per_dim(score_fn, sde, data.test_images[idx], seed=args.seed,
                                               progress=report(bar))
        out["split"] = "test"
    elif args.what == "cost":
        budgets = tuple(int(b) for b in args.budgets.split(",") if b.strip())
        with reporter("cost", 0, unit="sampler run") as bar:
            rows = sde_tasks.cost_sweep(score_fn, sde, args.n, budgets, seed=args.seed,
                                        progress=report(bar))
        out = {"rows": rows, "n": args.n}
    elif args.index is not None:
        from engine.mnist.data import load_mnist

        data = load_mnist()
        digit = data.test_images[args.index].astype(np.float32) / 255.0
        mask = sde_tasks.make_mask(args.mask, args.seed)
        with torch.no_grad(), reporter("inpaint", args.steps, unit="step") as bar:
            comp, nfe = sde_tasks.inpaint(score_fn, sde, digit[None], mask, args.completions,
                                          args.steps, args.snr, args.seed, progress=report(bar),
                                          jump=args.jump, resample=args.resample)
        arrays["completions"] = comp[0]
        out = {"index": args.index, "label": int(data.test_labels[args.index]), "mask": args.mask,
               "completions": args.completions, "steps": args.steps, "snr": args.snr, "jump": args.jump,
               "resample": args.resample, "nfe": nfe}
    else:
        with torch.no_grad(), reporter("inpaint", args.steps, unit="step") as bar:
            out = sde_tasks.inpaint_rate(score_fn, sde, args.digits, args.mask, args.completions,
                                         args.steps, args.snr, args.seed, progress=report(bar),
                                         jump=args.jump, resample=args.resample)
    return out, arrays

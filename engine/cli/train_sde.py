"""python -m engine train-sde {2d,mnist} --out RUN_DIR [flags]: train a time-conditional score model
s(x, t) with the continuous objective (engine.training.sde). The flags of each target are the
fields of its config (engine.training.flags); the run folder follows engine.store.runs (status,
metrics, cancel file, SIGTERM)."""

from __future__ import annotations

import os
import sys

from engine.training.flags import add_config_arguments, config_from_args
from engine.training.sde import SDETrain2DConfig, SDETrainMnistConfig

CONFIGS = {"2d": SDETrain2DConfig, "mnist": SDETrainMnistConfig}


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="what", metavar="{2d,mnist}", required=True, parser_class=type(p))
    for what, cls in CONFIGS.items():
        q = sub.add_parser(what, help=f"train on {'a 2D Gaussian mixture' if what == '2d' else 'MNIST'}")
        q.add_argument("--out", required=True, help="run folder to write")
        add_config_arguments(q, cls)
        q.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: $SCORELAB_THREADS, else 1)")
        q.add_argument("--resume", action="store_true", help="continue from RUN_DIR/state")
        if what == "mnist":
            q.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                           help="where to train: auto picks CUDA or MPS when present (default: auto)")


def run(args) -> int:
    import torch

    from engine.store.runs import RunWriter, mark_failed
    from engine.training.sde import train_2d, train_mnist

    try:
        cfg = config_from_args(CONFIGS[args.what], args)
        cfg.validate()
    except ValueError as err:
        mark_failed(args.out, str(err))   # a job the app queued says why it did not start
        raise
    torch.set_num_threads(args.threads or int(os.environ.get("SCORELAB_THREADS", "1") or 1))
    writer = RunWriter(args.out, total=cfg.steps)
    writer.status("running", step=0, total=cfg.steps)
    try:
        if args.what == "2d":
            result = train_2d(cfg, args.out, writer, resume=args.resume)
        else:
            from engine.device import pick_device

            result = train_mnist(cfg, args.out, writer, resume=args.resume, device=pick_device(args.device))
    except (ValueError, OSError) as err:
        writer.status("failed", message=str(err))
        raise
    print(result.progress.message, file=sys.stderr if result.state == "failed" else sys.stdout)
    return 1 if result.state == "failed" else 0

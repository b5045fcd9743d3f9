"""python -m engine train mnist --out RUN_DIR [--steps N] [--objective ncsn|dsm] [--resume] …

Trains an MNIST score model into a run folder (engine.store.runs protocol); the flags are the
fields of engine.training.images.ImageTrainConfig (engine.training.flags). Under `torchrun
--nproc_per_node K python -m engine train mnist …` the same code trains with DDP.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from engine.store.checkpoints import atomic_write_json
from engine.training.flags import add_config_arguments, config_from_args
from engine.training.images import ImageTrainConfig


def add_arguments(p) -> None:
    p.add_argument("dataset", choices=["mnist"], help="what to train on (mnist)")
    p.add_argument("--out", required=True, help="run folder (created; holds model, metrics, preview)")
    add_config_arguments(p, ImageTrainConfig)   # one flag per config field
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to train: auto (CUDA or MPS when present, else the CPU), cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: $SCORELAB_THREADS, else torch's)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/state")


def run(args) -> int:
    import torch

    from engine.device import pick_device
    from engine.store.runs import RunWriter, mark_failed
    from engine.training.images import train_mnist

    try:
        cfg = config_from_args(ImageTrainConfig, args)
        cfg.validate()
        device = pick_device(args.device)
    except ValueError as err:
        mark_failed(args.out, str(err))   # a job the app queued says why it did not start
        raise
    threads = args.threads or int(os.environ.get("SCORELAB_THREADS", "0") or 0)
    if threads:
        torch.set_num_threads(threads)
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
    log = (lambda line: print(line, flush=True)) if rank == 0 else (lambda line: None)
    log(f"train mnist: loading MNIST and choosing the noise schedule (device {device})…")
    try:
        result = train_mnist(cfg, str(out), device, resume=args.resume, writer=writer, log=log)
    except Exception as err:
        if writer is not None:
            writer.status("failed", message=str(err).split("\n")[0])
        raise
    if rank == 0:
        p = result.progress
        print(f"{p.state}: step {p.step}, {p.seconds:.0f} s, checkpoint {out / 'model.json'}")
    return 0 if result.state != "failed" else 1

"""python -m engine sample --checkpoint PATH --n N --out grid.png [--npy samples.npy] [--seed S]
[--steps-per-level T] [--step-size EPS] [--no-denoise] [--mode auto|annealed|plain]"""

from __future__ import annotations

import json
from pathlib import Path

from engine.mnist.sampling import SampleConfig
from engine.training.flags import field_help


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="an image checkpoint (NAME, NAME.json or NAME.safetensors)")
    p.add_argument("--n", type=int, default=64, help=field_help(SampleConfig, "n"))
    p.add_argument("--out", required=True, help="grid PNG to write")
    p.add_argument("--npy", default=None, help="also write the (N, 28, 28) array in [0, 1]")
    p.add_argument("--seed", type=int, default=0, help=field_help(SampleConfig, "seed", ""))
    p.add_argument("--steps-per-level", type=int, default=None,
                   help=field_help(SampleConfig, "steps_per_level"))
    p.add_argument("--step-size", type=float, default=None, help=field_help(SampleConfig, "step_size"))
    p.add_argument("--no-denoise", action="store_true", help="skip the final Tweedie denoising step")
    p.add_argument("--mode", choices=["auto", "annealed", "plain"], default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])


def run(args) -> int:
    import numpy as np
    import torch

    from engine.store.checkpoints import load_model
    from engine.device import pick_device
    from engine.mnist.sampling import sample_images
    from engine.render.images import grid_png

    cfg = SampleConfig(n=args.n, steps_per_level=args.steps_per_level, step_size=args.step_size,
                       denoise=not args.no_denoise, mode=args.mode, seed=args.seed)
    cfg.validate()                      # before any loading: one sentence per bad flag
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, meta = load_model(args.checkpoint, device=device)
    if meta.get("model", {}).get("kind") != "ncsn_unet":
        raise ValueError(f"{args.checkpoint} is not an MNIST score checkpoint (it holds "
                         f"{meta.get('model', {}).get('kind')!r}).")
    out = sample_images(model, meta, cfg, device=device)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(grid_png(out.images, nrow=int(np.ceil(np.sqrt(args.n)))))
    if args.npy:
        np.save(args.npy, out.images.astype(np.float32), allow_pickle=False)
    print(json.dumps({"out": args.out, "npy": args.npy, "n": args.n, "seconds": round(out.seconds, 2),
                      "cpu_seconds": round(out.cpu_seconds, 2),
                      "nfe": out.nfe, **out.schedule}))
    return 0

"""python -m engine sample --checkpoint PATH (--out grid.png | --run-dir DIR) [--npy samples.npy]
[every SampleConfig flag: --n, --seed, --steps-per-level, --step-size, --no-denoise, --mode, …]

With --run-dir (how the pages run it as a background job, engine.store.jobs) the folder gets
status.json (level k of L, measured seconds per level, ETA), current.npy after every level (the
grid sharpening live), and at the end samples.npy (N, 28, 28), frames.npy (F, N, 28, 28),
grid.png (at slide size) and result.json; a cancel stops it after the level in progress."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from engine.mnist.sampling import SampleConfig
from engine.training.flags import add_config_arguments, config_from_args


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="an image checkpoint (NAME, NAME.json or NAME.safetensors)")
    p.add_argument("--out", default=None, help="grid PNG to write (at slide size: at least 512 px wide)")
    p.add_argument("--run-dir", default=None,
                   help="a job folder: progress, the live images and every result go there")
    p.add_argument("--npy", default=None, help="also write the (N, 28, 28) array in [0, 1]")
    add_config_arguments(p, SampleConfig)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to sample (default auto: CUDA or MPS when present, else the CPU)")


def run(args) -> int:
    import numpy as np
    import torch

    from engine import progress
    from engine.device import pick_device
    from engine.mnist.sampling import sample_images
    from engine.render.images import slide_grid_png
    from engine.store.checkpoints import load_model
    from engine.store.jobs import LevelReporter, also_to, save_array
    from engine.store.runs import mark_failed

    cfg = config_from_args(SampleConfig, args)
    try:
        cfg.validate()                      # before any loading: one sentence per bad flag
        if not args.out and not args.run_dir:
            raise ValueError("Say where the samples go: --out grid.png, or --run-dir DIR for a job folder.")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        device = pick_device(args.device)
        model, meta = load_model(args.checkpoint, device=device)
        if meta.get("model", {}).get("kind") != "ncsn_unet":
            raise ValueError(f"{args.checkpoint} is not an MNIST score checkpoint (it holds "
                             f"{meta.get('model', {}).get('kind')!r}).")
    except ValueError as err:
        if args.run_dir:
            mark_failed(args.run_dir, str(err))
        raise
    job = LevelReporter(args.run_dir) if args.run_dir else None
    # stderr: a bar, or periodic lines; the job folder: status, current.npy, cancel
    with progress.reporter("sample", 0, unit="level") as terminal, job or nullcontext():
        out = sample_images(model, meta, cfg, device=device, progress=also_to(job, terminal.callback()))
    if job is not None and job.stopped:
        print(json.dumps({"cancelled": True, "levels_done": job.done}))
        return 0
    nrow = int(np.ceil(np.sqrt(cfg.n)))
    summary = {"n": cfg.n, "seconds": round(out.seconds, 2), "cpu_seconds": round(out.cpu_seconds, 2),
               "nfe": out.nfe, "device": str(device), **out.schedule}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_bytes(slide_grid_png(out.images, nrow=nrow))
    if args.npy:
        np.save(args.npy, out.images.astype(np.float32), allow_pickle=False)
    if job is not None:
        run_dir = Path(args.run_dir)
        save_array(run_dir / "samples.npy", out.images)
        save_array(run_dir / "frames.npy", out.frames)
        (run_dir / "grid.png").write_bytes(slide_grid_png(out.images, nrow=nrow))
        job.finished(f"{cfg.n} images in {out.seconds:.1f} s.", **summary,
                     frame_levels=out.frame_levels, frame_sigmas=out.frame_sigmas,
                     checkpoint=str(args.checkpoint))
    print(json.dumps({"out": args.out, "npy": args.npy, "run_dir": args.run_dir, **summary}))
    return 0

"""python -m engine bench mnist --minutes M: the NCSN against the score-SDE tutorial's model at the
same training budget, judged by the shipped classifier (or two given checkpoints: --checkpoint,
--tutorial-checkpoint).

Both are trained here for M minutes each (by default M minutes of this process's CPU time, which is
fair on a shared machine; --budget wall uses wall-clock minutes), one after the other, with one
thread. Then 64 images are sampled from each — the NCSN by annealed Langevin with its checkpointed
schedule, the tutorial model by its 500-step predictor–corrector sampler (snr 0.16, last step
returns the mean) — and the classifier figures and sampling times are printed, with those of 64
real test digits for reference.

The tutorial's recipe (Yang Song's MNIST notebook): VE SDE dx = σ^t dw with σ = 25
(engine.sde.sdes.TutorialVESDE), the continuous objective engine.losses.sde_loss (default
weighting, t ~ U(1e-5, 1); the notebook has no ½, which changes Adam's steps only through its ε),
batch 32, Adam 1e-4, no EMA, trained on the one loop (engine.training.loop); the network is
engine.models.unet "tutorial_unet". Its sampler is engine.samplers.reverse.predictor_corrector.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time

import numpy as np
import torch

from engine import losses


def add_arguments(p) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    p.add_argument("--budget", choices=["cpu", "wall"], default="cpu",
                   help="count CPU minutes of this process (default) or wall-clock minutes")
    p.add_argument("--n", type=int, default=64, help="images sampled from each model")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and samples")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--pc-steps", type=int, default=500, help="steps N of the tutorial's predictor–corrector sampler")
    p.add_argument("--snr", type=float, default=0.16, help="the corrector's signal-to-noise ratio r")
    p.add_argument("--out", default=None, help="folder for both checkpoints and grids (default: a temp folder)")
    p.add_argument("--only", choices=["both", "ncsn", "tutorial"], default="both",
                   help="train and sample both models, or one of them")
    p.add_argument("--checkpoint", default=None,
                   help="judge this NCSN checkpoint (e.g. checkpoints/ncsn_mnist) instead of training one")
    p.add_argument("--speed-reps", type=int, default=3,
                   help="alternating timing runs of both samplers on 64 images (the fastest counts)")
    p.add_argument("--tutorial-checkpoint", default=None,
                   help="judge this tutorial-model checkpoint instead of training one")


def train_tutorial(minutes: float, budget: str = "cpu", seed: int = 0, batch: int = 32,
                   lr: float = 1e-4, sigma: float = 25.0, log=print):
    """The tutorial's recipe on the one training loop (no EMA, batches from shuffled epochs) for
    `minutes` of CPU or wall time; returns (model, info)."""
    from engine.mnist.data import load_mnist, to_float
    from engine.models.registry import build_model
    from engine.sde.sdes import TutorialVESDE
    from engine.training.loop import LoopConfig, Task, train_loop

    data = torch.from_numpy(to_float(load_mnist().train_images))
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_model({"kind": "tutorial_unet", "sigma": sigma})
    sde = TutorialVESDE(sigma)
    epoch = {"order": torch.randperm(len(data), generator=g), "pos": 0}

    def batch_loss(net):
        if epoch["pos"] + batch > len(data):
            epoch["order"], epoch["pos"] = torch.randperm(len(data), generator=g), 0
        x = data[epoch["order"][epoch["pos"]:epoch["pos"] + batch]]
        epoch["pos"] += batch
        return losses.sde_loss(net, sde, x, generator=g, eps=1e-5, reduce=False), None

    config = LoopConfig(steps=10**12, lr=lr, record_every=200,
                        max_minutes=minutes if budget == "wall" else None,
                        max_cpu_minutes=minutes if budget == "cpu" else None)
    out = train_loop(Task(model=model, batch_loss=batch_loss, meta=lambda p: {}), config,
                     log=lambda line: log(f"tutorial {line}"))
    p = out.progress
    return out.model, {"steps": p.step, "epochs": p.step * batch / len(data), "batch": batch, "lr": lr,
                       "wall_seconds": p.seconds, "cpu_seconds": p.cpu_seconds, "final_loss": p.loss}


@torch.no_grad()
def pc_sample(model, n: int, steps: int = 500, snr: float = 0.16, sigma: float = 25.0,
              eps: float = 1e-3, seed: int = 0, progress=None) -> tuple[np.ndarray, float]:
    """The predictor–corrector sampler (engine.samplers.reverse) on the tutorial VE SDE: `steps`
    times from t = 1 to eps, one Langevin corrector step (snr) then one reverse-SDE Euler–Maruyama
    step each, the last returning the mean; images clipped to [0, 1]. Returns (images, seconds).
    progress(step, steps) after every step."""
    from engine.samplers.reverse import SDESamplerConfig, predictor_corrector
    from engine.sde.sdes import TutorialVESDE

    sde = TutorialVESDE(sigma, eps)
    g = torch.Generator().manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    x_init = sde.prior_sampling((n, 1, 28, 28), generator=g)
    out = predictor_corrector(model, x_init, sde, SDESamplerConfig(sampler="pc", steps=steps, snr=snr), g,
                              callback=None if progress is None else (lambda i: progress(i["step"], steps)))
    images = out.x.clamp(0, 1)[:, 0].numpy()
    pc_sample.last_cpu_seconds = time.process_time() - c0
    return images, time.perf_counter() - t0


def run(args) -> int:
    from engine.mnist.quality import evaluate_samples, real_reference
    from engine.mnist.sampling import SampleConfig, sample_images
    from engine.progress import phase, reporter
    from engine.render.images import grid_png
    from engine.training.images import ImageTrainConfig, train_mnist
    from engine.store.checkpoints import load_model, save_model

    if args.speed_reps < 1:
        raise ValueError("--speed-reps must be at least 1.")
    if args.minutes <= 0 and not (args.checkpoint and args.tutorial_checkpoint):
        raise ValueError("--minutes must be positive.")
    torch.set_num_threads(args.threads)
    out_dir = args.out or tempfile.mkdtemp(prefix="scorelab-bench-")
    os.makedirs(out_dir, exist_ok=True)
    log = lambda m: print(m, flush=True)  # noqa: E731
    given = [m for m, path in (("NCSN", args.checkpoint), ("tutorial", args.tutorial_checkpoint)) if path]
    budget = f"{args.minutes:g} {args.budget}-minutes per model trained here"
    report = {"budget": budget + (f" ({' and '.join(given)} given as checkpoints)" if given else ""),
              "threads": args.threads,
              "n": args.n, "out": out_dir}
    if args.only in ("both", "ncsn"):
        if args.checkpoint:
            model, meta = load_model(args.checkpoint)
        else:
            cfg = ImageTrainConfig(steps=1_000_000, batch=64, lr=1e-3, preview_every=0, record_every=100,
                                   checkpoint_every=10**9, seed=args.seed,
                                   max_minutes=args.minutes if args.budget == "wall" else None,
                                   max_cpu_minutes=args.minutes if args.budget == "cpu" else None)
            run_dir = os.path.join(out_dir, "ncsn")
            phase(f"bench mnist: training the NCSN for {args.minutes:g} {args.budget}-minutes…")
            train_mnist(cfg, run_dir, torch.device("cpu"), log=log)
            model, meta = load_model(os.path.join(run_dir, "model"))
        with reporter("ncsn sample", 0, unit="level") as bar:
            model_ncsn, meta_ncsn = model, meta
            samples = sample_images(model, meta, SampleConfig(n=args.n, seed=args.seed),
                                    progress=bar.callback())
        with open(os.path.join(out_dir, "ncsn.png"), "wb") as f:
            f.write(grid_png(samples.images))
        report["ncsn"] = {"checkpoint": args.checkpoint, "train_steps": meta.get("step"),
                          "train_wall_seconds": round(meta.get("wall_seconds", 0.0), 1),
                          "train_cpu_seconds": round(meta.get("cpu_seconds", 0.0), 1),
                          "trained_on": meta.get("device", "cpu"),
                          "sampler": _describe(samples.schedule),
                          "nfe": samples.nfe, "sample_seconds": round(samples.seconds, 2),
                          "sample_cpu_seconds": round(samples.cpu_seconds, 2),
                          **evaluate_samples(samples.images)}
        log(json.dumps({"ncsn": report["ncsn"]}))
    if args.only in ("both", "tutorial"):
        if args.tutorial_checkpoint:
            model, tmeta = load_model(args.tutorial_checkpoint)
            info = {"steps": tmeta.get("steps"), "wall_seconds": tmeta.get("wall_seconds", 0.0),
                    "cpu_seconds": tmeta.get("cpu_seconds", 0.0), "device": tmeta.get("device", "cpu")}
        else:
            phase(f"bench mnist: training the tutorial model for {args.minutes:g} {args.budget}-minutes…")
            model, info = train_tutorial(args.minutes, args.budget, seed=args.seed, log=log)
            save_model(os.path.join(out_dir, "tutorial"), model,
                       {"model": {"kind": "tutorial_unet", **{k: v for k, v in model.config.items()
                                                              if k in ("channels", "embed_dim", "sigma")}},
                        "objective": "ve_sde", "train": info})
        with reporter("tutorial sample", args.pc_steps, unit="step") as bar:
            model_tutorial = model
            images, seconds = pc_sample(model, args.n, steps=args.pc_steps, snr=args.snr, seed=args.seed,
                                        progress=bar.callback())
        with open(os.path.join(out_dir, "tutorial.png"), "wb") as f:
            f.write(grid_png(images))
        report["tutorial"] = {"checkpoint": args.tutorial_checkpoint, "train_steps": info["steps"],
                              "train_wall_seconds": round(info["wall_seconds"] or 0.0, 1),
                              "train_cpu_seconds": round(info["cpu_seconds"] or 0.0, 1),
                              "trained_on": info.get("device", "cpu"),
                              "sampler": f"predictor-corrector, {args.pc_steps} steps, snr {args.snr}",
                              "nfe": 2 * args.pc_steps, "sample_seconds": round(seconds, 2),
                              "sample_cpu_seconds": round(pc_sample.last_cpu_seconds, 2),
                              **evaluate_samples(images)}
        log(json.dumps({"tutorial": report["tutorial"]}))
    if args.only == "both":
        report["speed"] = sampling_speed(model_ncsn, meta_ncsn, model_tutorial, args)
    report["real_test_digits"] = real_reference(args.n, seed=args.seed)
    print(_table(report))
    print(json.dumps(report))
    return 0


def _describe(info: dict) -> str:
    if info.get("mode") == "heun":
        return f"Heun probability-flow ODE, {info['ode_steps']} σ levels (Karras grid)"
    return f"{info['mode']} Langevin, L={info['levels']}, T={info['steps_per_level']}, denoise"


def sampling_speed(ncsn_model, ncsn_meta, tutorial_model, args, images: int = 64) -> dict:
    """The NCSN's default sampler and the tutorial's PC loop on the same `images` images,
    alternating `--speed-reps` times in this run; the fastest run of each counts (other work on a
    shared machine only ever adds time). tutorial_over_ncsn > 1: the NCSN is faster."""
    from engine.mnist.sampling import SampleConfig, sample_images
    from engine.progress import phase

    best = {"ncsn": math.inf, "tutorial": math.inf}
    nfe = 0
    for rep in range(args.speed_reps):
        phase(f"bench mnist: timing both samplers on {images} images ({rep + 1} of {args.speed_reps})…")
        start = time.perf_counter()
        nfe = sample_images(ncsn_model, ncsn_meta, SampleConfig(n=images, seed=args.seed, frames=1)).nfe
        best["ncsn"] = min(best["ncsn"], time.perf_counter() - start)
        _, seconds = pc_sample(tutorial_model, images, steps=args.pc_steps, snr=args.snr, seed=args.seed)
        best["tutorial"] = min(best["tutorial"], seconds)
    return {"images": images, "reps": args.speed_reps, "ncsn_seconds": round(best["ncsn"], 2),
            "tutorial_seconds": round(best["tutorial"], 2),
            "tutorial_over_ncsn": round(best["tutorial"] / best["ncsn"], 2),
            "nfe": f"{nfe} vs {2 * args.pc_steps}"}


def _table(report: dict) -> str:
    rows = [("model", "train steps", "train CPU s", "train wall s", "sample s", "sample CPU s", "NFE",
             "Fréchet dist.", "mean conf.", "classes", "class counts")]
    for name in ("ncsn", "tutorial", "real_test_digits"):
        r = report.get(name)
        if not r:
            continue
        rows.append((name, str(r.get("train_steps", "")), str(r.get("train_cpu_seconds", "")),
                     str(r.get("train_wall_seconds", "")), str(r.get("sample_seconds", "")),
                     str(r.get("sample_cpu_seconds", "")),
                     str(r.get("nfe", "")), f"{r['frechet_distance']:.1f}",
                     f"{r['mean_confidence']:.3f}", f"{r['classes_present']}/10",
                     " ".join(str(c) for c in r["class_counts"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"budget: {report['budget']}, {report['n']} samples each"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    if "speed" in report:
        sp = report["speed"]
        lines.append(f"sampling {sp['images']} images (fastest of {sp['reps']} alternating runs): NCSN "
                     f"{sp['ncsn_seconds']} s, tutorial PC {sp['tutorial_seconds']} s → the NCSN is "
                     f"{sp['tutorial_over_ncsn']}× faster (NFE {sp['nfe']})")
    return "\n".join(lines)

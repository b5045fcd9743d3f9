"""Training MNIST score models: the NCSN (many σ, annealed) and the single-σ DSM baseline.

Loss per example (λ(σ) = σ², the ε-parametrisation):  ½‖σ·s_θ(x + σz, σ) + z‖² summed over the
784 pixels, averaged over the batch. The NCSN draws one level per example, uniformly among the L
levels; the baseline uses one fixed σ. Images are in [0, 1].

The same code runs on one process or under `torchrun` (WORLD_SIZE > 1): torch.distributed with
gloo on CPU (nccl on CUDA), DistributedDataParallel, each rank drawing batches from its own shard of
the training set, rank 0 writing the run folder. Checkpoints are atomic: RUN_DIR/model (the EMA
weights, what sampling uses) and RUN_DIR/state (weights, EMA, Adam state) for --resume.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from engine.store.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, save_model
from engine.models.registry import build_model
from engine.samplers.schedules import (code_to_paper_step, geometric_sigmas, largest_pairwise_distance, levels_for,
                    ratio_from_overlap, step_size_rule)


@dataclass(frozen=True)
class ImageTrainConfig:
    objective: str = "ncsn"            # "ncsn" (annealed, many σ) | "dsm" (single σ baseline)
    steps: int = 6000
    batch: int = 64
    lr: float = 1e-3
    sigma_min: float = 0.01
    sigma_max: float | None = None     # None: largest pairwise distance of the training images
    gamma: float | None = None         # None: the overlap rule for D = 784
    levels: int | None = None          # None: from σ_max, σ_min and γ
    steps_per_level: int = 5           # T, for the step-size rule
    step_size: float | None = None     # ε (paper form); None: the step-size rule
    dsm_sigma: float = 0.1             # the baseline's single σ
    ema: float = 0.999
    channels: tuple = (16, 32, 64, 128)
    embed_dim: int = 256
    sigma_embed: bool = True
    seed: int = 0
    record_every: int = 50
    preview_every: int = 500
    checkpoint_every: int = 250
    mnist_dir: str | None = None
    max_minutes: float | None = None   # stop (and save) after this much wall time
    max_cpu_minutes: float | None = None  # … or after this much CPU time of this process


def compute_schedule(train_x: np.ndarray, cfg: ImageTrainConfig) -> dict:
    """The NCSNv2 choices from the data (each overridable by the config)."""
    dim = int(np.prod(train_x.shape[1:]))
    gamma = cfg.gamma or ratio_from_overlap(dim)
    if cfg.objective == "dsm":
        sigma_max = cfg.sigma_max or largest_pairwise_distance(train_x, max_points=4000, seed=0)
        eps_code = step_size_rule(cfg.dsm_sigma, gamma, cfg.steps_per_level)
        budget_levels = levels_for(sigma_max, cfg.sigma_min, gamma)
        return {"dim": dim, "sigmas": [cfg.dsm_sigma], "sigma_max": cfg.dsm_sigma,
                "sigma_min": cfg.dsm_sigma, "gamma": gamma, "levels": 1,
                "steps_per_level": cfg.steps_per_level,
                "step_size": cfg.step_size or code_to_paper_step(eps_code),
                "step_size_code": eps_code, "budget_levels": budget_levels,
                "data_largest_distance": sigma_max}
    sigma_max = cfg.sigma_max or largest_pairwise_distance(train_x, max_points=4000, seed=0)
    levels = cfg.levels or levels_for(sigma_max, cfg.sigma_min, gamma)
    sigmas = geometric_sigmas(sigma_max, cfg.sigma_min, levels)
    if cfg.levels:  # the ratio actually used
        gamma = (sigma_max / cfg.sigma_min) ** (1 / max(levels - 1, 1))
    eps_code = step_size_rule(cfg.sigma_min, gamma, cfg.steps_per_level)
    return {"dim": dim, "sigmas": list(sigmas), "sigma_max": sigma_max, "sigma_min": cfg.sigma_min,
            "gamma": gamma, "levels": levels, "steps_per_level": cfg.steps_per_level,
            "step_size": cfg.step_size or code_to_paper_step(eps_code), "step_size_code": eps_code,
            "budget_levels": levels}


def model_spec(cfg: ImageTrainConfig) -> dict:
    return {"kind": "ncsn_unet", "channels": list(cfg.channels), "embed_dim": cfg.embed_dim,
            "sigma_embed": cfg.sigma_embed}


def ncsn_loss(model, x: torch.Tensor, sigmas: torch.Tensor, level_idx: torch.Tensor,
              noise: torch.Tensor) -> torch.Tensor:
    """Per-example ½‖σ s_θ(x + σ z, σ) + z‖² (summed over pixels), shape (B,)."""
    sigma = sigmas[level_idx]
    x_noisy = x + sigma[:, None, None, None] * noise
    s = model(x_noisy, sigma)
    return 0.5 * ((sigma[:, None, None, None] * s + noise) ** 2).flatten(1).sum(1)


# -- distributed helpers ---------------------------------------------------------------------------

@dataclass
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(world=dist.get_world_size(), rank=dist.get_rank(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def _all_flag(flag: bool, d: Dist, device) -> bool:
    """True on every rank if it is True on any (rank 0 decides about cancelling)."""
    if d.world == 1:
        return flag
    import torch.distributed as dist
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


# -- state save/restore ------------------------------------------------------------------------------

def _state_tensors(model, ema, opt) -> tuple[dict, dict]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.model.state_dict().items()})
    opt_meta = {"param_groups": [], "steps": {}}
    sd = opt.state_dict()
    for i, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val) and val.ndim > 0:
                tensors[f"opt.{i}.{name}"] = val
            else:
                opt_meta["steps"].setdefault(str(i), {})[name] = float(val)
    opt_meta["param_groups"] = [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
    return tensors, opt_meta


def _restore_state(tensors: dict, meta: dict, model, ema, opt) -> None:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.model.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    ema.updates = int(meta.get("ema_updates", 0))
    sd = opt.state_dict()
    state = {}
    opt_meta = meta.get("optimizer", {})
    for i in range(len(sd["param_groups"][0]["params"])):
        st = {}
        for name, val in opt_meta.get("steps", {}).get(str(i), {}).items():
            st[name] = torch.tensor(val)
        for key in ("exp_avg", "exp_avg_sq"):
            if f"opt.{i}.{key}" in tensors:
                st[key] = tensors[f"opt.{i}.{key}"]
        if st:
            state[i] = st
    sd["state"] = state
    opt.load_state_dict(sd)


# -- the loop ----------------------------------------------------------------------------------------

@dataclass
class TrainOutcome:
    state: str
    step: int
    seconds: float
    final_loss: float | None = None
    history: list = field(default_factory=list)


def train_mnist(cfg: ImageTrainConfig, run_dir, device: torch.device, resume: bool = False,
                writer=None, log=print) -> TrainOutcome:
    from engine.models.unet import Ema
    from engine.mnist.data import load_mnist, to_float

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
    model = build_model(model_spec(cfg)).to(device)
    ema = Ema(model, cfg.ema)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start_step, wall_before, cpu_before = 0, 0.0, 0.0
    state_path = os.path.join(run_dir, "state")
    if resume and os.path.exists(state_path + ".json"):
        tensors, meta = load_checkpoint(state_path, device=device)
        if meta.get("model") != model_spec(cfg):
            raise CheckpointError("The run folder holds a different model than the one asked for.")
        _restore_state(tensors, meta, model, ema, opt)
        start_step = int(meta.get("step", 0))
        wall_before = float(meta.get("wall_seconds", 0.0))
        cpu_before = float(meta.get("cpu_seconds", 0.0))
        if d.main:
            log(f"resumed at step {start_step}")

    net = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    train = torch.from_numpy(train_np).to(device)
    shard = torch.arange(d.rank, len(train), d.world, device=device)  # this rank's share
    per_rank = max(1, cfg.batch // d.world)
    sigmas = torch.tensor(schedule["sigmas"], dtype=torch.float32, device=device)
    L = len(sigmas)
    g = torch.Generator(device="cpu").manual_seed(cfg.seed * 1000 + d.rank + 7919 * start_step)

    level_sum = np.zeros(L)
    level_cnt = np.zeros(L)
    loss_sum, loss_cnt = 0.0, 0
    t0 = time.time()
    spec = model_spec(cfg)
    history = []

    def meta_for(step: int, state: str) -> dict:
        return {"model": spec, "objective": cfg.objective, "schedule": schedule,
                "data": {"name": "mnist", "source": data.source, "train_images": len(train),
                         "scale": "[0, 1] (uint8 / 255)"},
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                "step": step, "wall_seconds": wall_before + time.time() - t0, "state": state,
                "cpu_seconds": cpu_before + time.process_time() - cpu0,
                "device": str(device), "world_size": d.world,
                "loss": "½‖σ s_θ(x+σz, σ) + z‖² summed over pixels, mean over the batch"}

    def save(step: int, state: str) -> None:
        if not d.main:
            return
        save_model(os.path.join(run_dir, "model"), ema.model, meta_for(step, state))
        tensors, opt_meta = _state_tensors(model, ema, opt)
        save_checkpoint(state_path, tensors, {**meta_for(step, state), "optimizer": opt_meta,
                                              "ema_updates": ema.updates})

    step = start_step
    final_state = "finished"
    last_loss = None
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes else None
    cpu0 = time.process_time()
    while step < cfg.steps:
        stop = writer.stop_requested if (writer is not None and d.main) else False
        if deadline is not None and time.time() > deadline:
            stop = True
        if cfg.max_cpu_minutes and time.process_time() - cpu0 > cfg.max_cpu_minutes * 60:
            stop = True
        if _all_flag(stop, d, device):
            final_state = "cancelled" if writer is not None and writer.stop_requested else "finished"
            break
        idx = shard[torch.randint(len(shard), (per_rank,), generator=g).to(device)]
        x = train[idx]
        noise = torch.randn(x.shape, generator=g).to(device)
        lvl = torch.randint(L, (per_rank,), generator=g).to(device)
        per_example = ncsn_loss(net, x, sigmas, lvl, noise)
        loss = per_example.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        step += 1
        lv = lvl.cpu().numpy()
        np.add.at(level_sum, lv, per_example.detach().cpu().numpy())
        np.add.at(level_cnt, lv, 1)
        loss_sum += float(loss.detach())
        loss_cnt += 1
        if step % cfg.record_every == 0 or step == cfg.steps:
            last_loss = loss_sum / max(loss_cnt, 1)
            rec = {"step": step, "loss": last_loss, "seconds": wall_before + time.time() - t0,
                   "per_sigma": [float(level_sum[i] / level_cnt[i]) if level_cnt[i] else None
                                 for i in range(L)]}
            history.append(rec)
            if d.main:
                if writer is not None:
                    writer.metric(rec)
                    writer.status("running", step=step, total=cfg.steps,
                                  message=f"step {step}/{cfg.steps}, loss {last_loss:.2f}")
                log(f"step {step:6d}  loss {last_loss:8.3f}  {time.time() - t0:7.1f}s")
            level_sum[:] = 0
            level_cnt[:] = 0
            loss_sum, loss_cnt = 0.0, 0
        if step % cfg.checkpoint_every == 0:
            save(step, "running")
        if d.main and cfg.preview_every and step % cfg.preview_every == 0:
            write_preview(ema.model, meta_for(step, "running"), os.path.join(run_dir, "preview.png"),
                          step, device)
    save(step, final_state)
    if d.main and cfg.preview_every:
        write_preview(ema.model, meta_for(step, final_state), os.path.join(run_dir, "preview.png"),
                      step, device)
    if d.world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return TrainOutcome(state=final_state, step=step, seconds=wall_before + time.time() - t0,
                        final_loss=last_loss, history=history)


def write_preview(model, meta: dict, path: str, step: int, device) -> None:
    """A 4×4 grid sampled from the EMA weights with the run's schedule (seed 0)."""
    from engine.mnist.sampling import SampleConfig, sample_images
    from engine.render.images import grid_png

    was_training = model.training
    try:
        out = sample_images(model, meta, SampleConfig(n=16, seed=0, frames=1),
                            device=device)
        data = grid_png(out.images, nrow=4)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except Exception as err:  # a preview must never stop training
        print(f"preview failed at step {step}: {err}")
    finally:
        model.train(was_training)

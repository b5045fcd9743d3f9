"""Training 2D score models: a frozen config in; checkpoints and metric records out.

`train(config, run_dir)` is the whole loop, used by `python -m engine train2d` (which the app
launches as a background job) and by the tests in-process. It writes into RUN_DIR (engine.store.runs):
status.json (state, step, loss), metrics.jsonl (loss records every `log_every` steps, Fisher
divergence records every `eval_every` steps) and the checkpoint RUN_DIR/model.{safetensors,json},
saved atomically every `checkpoint_every` steps and at the end (also when cancelled).

Fisher divergence (mixtures only, where the exact score is known), on a fixed evaluation set:
* "fisher": ½ E_p ||s_θ(x, σ_eval) − ∇log p(x)||² under the clean data, σ_eval = the smallest σ the
  model was trained at (0 for ESM/ISM/SSM; σ for DSM; σ_L for NCSN) — one number comparable across
  objectives, which shows DSM/NCSN's bias from estimating a noisy score;
* "fisher_sigma": {σ: ½ E_{p_σ} ||s_θ(x̃, σ) − ∇log p_σ(x̃)||²} under the perturbed data, for each σ
  the model was trained at (DSM's σ, NCSN's levels);
* "fisher_floor" (DSM/NCSN): the same "fisher" number for the exact noisy score ∇log p_σ_eval —
  the part of a DSM/NCSN model's error that is bias, not learning.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from engine import losses
from engine.store.checkpoints import atomic_write_json, save_model
from engine.metrics import fisher_divergence
from engine.models.mlp import make_score_net
from engine.samplers.schedules import geometric_sigmas
from engine.targets import SAMPLE_SETS, GaussianMixture, TargetError, sample_set

DATA_CHOICES = ("mixture", *SAMPLE_SETS)
CONDITIONINGS = ("embed", "divide")


@dataclass(frozen=True)
class Train2DConfig:
    data: str = "mixture"                                    # "mixture" or a sample set name
    means: tuple[tuple[float, ...], ...] = ((5.0, 5.0), (-5.0, -5.0))
    weights: tuple[float, ...] = (0.8, 0.2)
    stds: tuple[float, ...] | None = None
    objective: str = "ncsn"                                  # esm ism ssm ssm-vr dsm ncsn
    steps: int = 2000
    batch: int = 128
    lr: float = 1e-3
    hidden: int = 128
    depth: int = 2
    activation: str = "softplus"
    conditioning: str = "embed"                              # NCSN: embed | divide
    sigma: float = 1.0                                       # DSM's single σ
    sigma_max: float = 20.0                                  # NCSN levels (geometric)
    sigma_min: float = 1.0
    levels: int = 10
    projection: str = "gaussian"                             # SSM / SSM-VR: gaussian | rademacher
    n_projections: int = 1
    perturb: float = 0.0                                     # tiny N(0, perturb²) added to each batch
    n_data: int = 10000                                      # size of the fixed training set
    eval_points: int = 2000
    eval_every: int = 250
    log_every: int = 10
    checkpoint_every: int = 1000
    seed: int = 0

    # -- derived ---------------------------------------------------------------------------------
    @property
    def mixture(self) -> GaussianMixture | None:
        if self.data != "mixture":
            return None
        return GaussianMixture.create(self.means, self.weights, self.stds)

    @property
    def sigmas(self) -> tuple[float, ...]:
        """The σ the model is trained at: NCSN's levels, DSM's σ, nothing (clean data) otherwise."""
        if self.objective == "ncsn":
            return geometric_sigmas(self.sigma_max, self.sigma_min, self.levels)
        if self.objective == "dsm":
            return (float(self.sigma),)
        return ()

    @property
    def eval_sigma(self) -> float:
        return min(self.sigmas) if self.sigmas else 0.0

    def validate(self) -> None:
        """ValueError with one sentence for impossible settings."""
        if self.objective not in losses.OBJECTIVES:
            raise ValueError(f"Unknown objective {self.objective!r}; choose one of "
                             f"{', '.join(losses.OBJECTIVES)}.")
        if self.data not in DATA_CHOICES:
            raise TargetError(f"Unknown data {self.data!r}; choose one of {', '.join(DATA_CHOICES)}.")
        if self.objective == "esm" and self.data != "mixture":
            raise ValueError("Explicit score matching needs the exact score, so it only trains on a "
                             "Gaussian mixture; choose another objective for this data set.")
        if self.steps < 1 or self.batch < 1 or self.n_data < 1:
            raise ValueError("Steps, batch size and data size must be at least 1.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError("The learning rate must be a positive number.")
        if self.hidden < 1 or self.depth < 1:
            raise ValueError("The network needs at least one hidden layer of width ≥ 1.")
        if self.objective == "dsm" and not self.sigma > 0:
            raise ValueError("DSM needs a positive noise level σ.")
        if self.objective in ("ssm", "ssm-vr"):
            if self.projection not in losses.PROJECTIONS:
                raise ValueError(f"Unknown projection {self.projection!r}; choose gaussian or rademacher.")
            if self.n_projections < 1:
                raise ValueError("Use at least one projection per point.")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"Unknown conditioning {self.conditioning!r}; choose embed or divide.")
        if self.perturb < 0:
            raise ValueError("The data perturbation must be zero or positive.")
        self.sigmas  # noqa: B018 — validates the σ schedule (ScheduleError is a ValueError)
        self.mixture  # noqa: B018 — validates means/weights/stds

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Train2DConfig":
        d = dict(d)
        d["means"] = tuple(tuple(m) for m in d.get("means", ()))
        d["weights"] = tuple(d.get("weights", ()))
        if d.get("stds") is not None:
            d["stds"] = tuple(d["stds"])
        known = Train2DConfig.__dataclass_fields__
        return Train2DConfig(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainResult:
    model: torch.nn.Module
    meta: dict
    losses: list[float] = field(default_factory=list)
    state: str = "finished"


def training_data(config: Train2DConfig) -> torch.Tensor:
    """The fixed training set (n_data points), deterministic in the seed."""
    g = torch.Generator().manual_seed(config.seed)
    if config.data == "mixture":
        return config.mixture.sample(config.n_data, generator=g)
    return sample_set(config.data, config.n_data, g)


def evaluation_data(config: Train2DConfig) -> torch.Tensor:
    g = torch.Generator().manual_seed(config.seed + 99991)
    if config.data == "mixture":
        return config.mixture.sample(config.eval_points, generator=g)
    return sample_set(config.data, config.eval_points, g)


def model_score_fn(model: torch.nn.Module, sigma_floor: float = 0.0):
    """score_fn(x, σ) for samplers/metrics: no grad, σ clamped to the smallest trained level."""
    def score_fn(x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        if getattr(model, "noise_conditional", False) and not isinstance(sigma, torch.Tensor):
            sigma = max(float(sigma), sigma_floor)
        with torch.no_grad():
            return model(x.to(torch.float32), sigma).to(x.dtype)
    return score_fn


def evaluate(model, config: Train2DConfig, x_eval: torch.Tensor) -> dict:
    """Fisher divergences (see the module docstring); {} when the data has no exact score."""
    mixture = config.mixture
    if mixture is None:
        return {}
    score_fn = model_score_fn(model, config.eval_sigma)
    fisher = fisher_divergence(lambda x, s: score_fn(x, config.eval_sigma), mixture.score, x_eval, 0.0)
    per_sigma = {}
    g = torch.Generator().manual_seed(config.seed + 4242)
    for sigma in config.sigmas:
        x_noisy = x_eval + sigma * torch.randn(x_eval.shape, generator=g)
        per_sigma[f"{sigma:.4g}"] = fisher_divergence(score_fn, mixture.score, x_noisy, sigma)
    out = {"fisher": fisher, "fisher_sigma": per_sigma}
    if config.eval_sigma > 0:
        # What even the perfect noisy score ∇log p_σ scores on this number: DSM/NCSN's bias floor.
        out["fisher_floor"] = fisher_divergence(lambda x, s: mixture.score(x, config.eval_sigma),
                                                mixture.score, x_eval, 0.0)
    return out


def loss_on_batch(model, config: Train2DConfig, x: torch.Tensor, g: torch.Generator):
    """(scalar loss, per-level means or None) for one minibatch."""
    obj = config.objective
    if config.perturb > 0:
        x = x + config.perturb * torch.randn(x.shape, generator=g)
    if obj == "esm":
        return losses.esm_loss(model, x, config.mixture.score), None
    if obj == "ism":
        return losses.ism_loss(model, x), None
    if obj in ("ssm", "ssm-vr"):
        return losses.ssm_loss(model, x, n_projections=config.n_projections,
                               projection=config.projection, variance_reduced=(obj == "ssm-vr"),
                               generator=g), None
    if obj == "dsm":
        return losses.dsm_loss(model, x, config.sigma, generator=g), None
    per, levels = losses.ncsn_loss(model, x, config.sigmas, generator=g, reduce=False)
    return per.mean(), losses.per_level_means(per, levels, len(config.sigmas))


def checkpoint_meta(model, config: Train2DConfig, step: int, wall: float, train_seconds: float,
                    final_metrics: dict, state: str) -> dict:
    target = {"data": config.data}
    if config.mixture is not None:
        target.update(config.mixture.to_dict())
    return {
        "task": "score2d",
        "model": model.spec(),
        "objective": config.objective,
        "sigmas": list(config.sigmas),
        "eval_sigma": config.eval_sigma,
        "target": target,
        "steps": step,
        "total_steps": config.steps,
        "wall_time": round(wall, 3),
        "sec_per_step": round(train_seconds / max(step, 1), 6),
        "metrics": final_metrics,
        "state": state,
        "config": config.to_dict(),
    }


def train(config: Train2DConfig, run_dir=None, progress=None, writer=None) -> TrainResult:
    """Run the training loop. With run_dir: write the run folder (status, metrics, checkpoint).
    progress(step, total, loss) is called every log_every steps (the CLI's progress bar)."""
    from engine.store.runs import RunWriter

    config.validate()
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed + 1)
    data = training_data(config)
    x_eval = evaluation_data(config)
    data_scale = float(data.std()) if config.objective == "ncsn" else 1.0
    model = make_score_net(config.objective, data.shape[1], config.hidden, config.depth,
                           config.activation, config.conditioning, data_scale=round(data_scale, 4))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    if run_dir is not None and writer is None:
        writer = RunWriter(run_dir, total=config.steps)
    run_dir = Path(run_dir) if run_dir is not None else None

    start = time.time()
    train_seconds = 0.0
    history: list[float] = []
    last_eval: dict = {}
    step = 0
    state = "finished"
    message = ""

    def save(state_now: str):
        if run_dir is None:
            return
        meta = checkpoint_meta(model, config, step, time.time() - start, train_seconds,
                               {"loss": history[-1] if history else None, **last_eval}, state_now)
        save_model(run_dir / "model", model, meta)

    if writer:
        writer.status("running", step=0, total=config.steps, message="Training started.")
    window: list[float] = []
    try:
        while step < config.steps:
            if writer and writer.stop_requested:
                state, message = "cancelled", f"Cancelled at step {step}; the model so far is saved."
                break
            t0 = time.perf_counter()
            idx = torch.randint(0, data.shape[0], (config.batch,), generator=g)
            loss, per_level = loss_on_batch(model, config, data[idx], g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            train_seconds += time.perf_counter() - t0
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"The loss became {value} at step {step}; try a smaller "
                                         f"learning rate.")
            window.append(value)
            if step % config.log_every == 0 or step == config.steps:
                mean_loss = sum(window) / len(window)
                window = []
                history.append(mean_loss)
                record = {"step": step, "loss": mean_loss, "time": round(time.time() - start, 3),
                          "sec_per_step": train_seconds / step}
                if per_level is not None:
                    record["loss_per_level"] = per_level
                if writer:
                    writer.metric(record)
                    writer.status("running", step=step, loss=mean_loss,
                                  sec_per_step=train_seconds / step, message="")
                if progress:
                    progress(step, config.steps, mean_loss)
            if config.eval_every and (step % config.eval_every == 0 or step == config.steps):
                last_eval = evaluate(model, config, x_eval)
                if writer and last_eval:
                    writer.metric({"step": step, **last_eval})
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
                save("running")
    except Exception as err:  # the run folder must say why it stopped
        if writer:
            writer.status("failed", step=step, message=_one_line(err))
        raise
    if not last_eval or (config.eval_every and step % config.eval_every != 0):
        last_eval = evaluate(model, config, x_eval)
    wall = time.time() - start
    meta = checkpoint_meta(model, config, step, wall, train_seconds,
                           {"loss": history[-1] if history else None, **last_eval}, state)
    if run_dir is not None:
        save_model(run_dir / "model", model, meta)
    if writer:
        if state == "finished":
            message = f"Finished {step} steps in {wall:.1f} s."
        writer.status(state, step=step, message=message, wall_time=wall,
                      sec_per_step=train_seconds / max(step, 1),
                      final={"loss": history[-1] if history else None, **last_eval})
    return TrainResult(model=model.eval(), meta=meta, losses=history, state=state)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def cli_argv(c: Train2DConfig) -> list[str]:
    """The `python -m engine train2d` flags (without --out) that reproduce this config."""
    argv = ["train2d", "--data", c.data, "--objective", c.objective, "--steps", str(c.steps),
            "--batch", str(c.batch), "--lr", f"{c.lr!r}", "--hidden", str(c.hidden),
            "--depth", str(c.depth), "--activation", c.activation, "--seed", str(c.seed),
            "--n-data", str(c.n_data), "--eval-every", str(c.eval_every), "--log-every", str(c.log_every),
            "--checkpoint-every", str(c.checkpoint_every), "--quiet"]
    if c.data == "mixture":
        argv += ["--means", ";".join(",".join(f"{v!r}" for v in m) for m in c.means),
                 "--weights", ",".join(f"{w!r}" for w in c.weights)]
        if c.stds:
            argv += ["--stds", ",".join(f"{s!r}" for s in c.stds)]
    if c.objective == "dsm":
        argv += ["--sigma", f"{c.sigma!r}"]
    if c.objective == "ncsn":
        argv += ["--sigma-max", f"{c.sigma_max!r}", "--sigma-min", f"{c.sigma_min!r}",
                 "--levels", str(c.levels), "--conditioning", c.conditioning]
    if c.objective in ("ssm", "ssm-vr"):
        argv += ["--projection", c.projection, "--projections", str(c.n_projections)]
    if c.perturb > 0:
        argv += ["--perturb", f"{c.perturb!r}"]
    return argv


def write_run_config(run_dir, name: str, argv: list[str], config: Train2DConfig) -> None:
    """config.json for a run started from the command line (the job manager writes its own)."""
    path = Path(run_dir) / "config.json"
    if path.exists():
        return
    atomic_write_json(path, {"name": name, "argv": argv, "config": config.to_dict(),
                             "created": time.time(), "threads": int(os.environ.get("SCORELAB_THREADS", 1))})


# -- seed experiment (a): cost of the exact trace as the dimension grows -----------------------

def time_objectives(dims=(2, 8, 32, 128), objectives=("ism", "ssm", "dsm"), steps: int = 5,
                    batch: int = 128, hidden: int = 128, seed: int = 0) -> list[dict]:
    """Seconds per training step of each objective on d-dimensional Gaussian data N(0, I_d), for the
    same MLP width: exact-trace ISM needs d backward passes, SSM one extra, DSM none."""
    out = []
    for d in dims:
        for obj in objectives:
            torch.manual_seed(seed)
            g = torch.Generator().manual_seed(seed)
            cfg = Train2DConfig(objective=obj, sigma=0.1, hidden=hidden, batch=batch)
            model = make_score_net(obj, d, hidden, 2)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            x_all = torch.randn(steps + 1, batch, d, generator=g)
            times = []
            for i in range(steps + 1):
                t0 = time.perf_counter()
                loss, _ = loss_on_batch(model, cfg, x_all[i], g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if i:  # the first step pays for allocation warm-up
                    times.append(time.perf_counter() - t0)
            out.append({"dim": d, "objective": obj, "sec_per_step": sorted(times)[len(times) // 2]})
    return out


def run_summary(meta: dict) -> dict:
    """A flat row for comparison tables from a checkpoint's meta."""
    m = meta.get("metrics", {}) or {}
    return {"objective": meta.get("objective"), "data": (meta.get("target") or {}).get("data"),
            "steps": meta.get("steps"), "loss": m.get("loss"), "fisher": m.get("fisher"),
            "fisher_floor": m.get("fisher_floor"),
            "sec_per_step": meta.get("sec_per_step"), "wall_time": meta.get("wall_time")}


def print_progress(step: int, total: int, loss: float, stream=None, width: int = 30) -> None:
    """A one-line bar redrawn in a terminal; plain lines every 10% in a log file."""
    stream = stream or sys.stderr
    if stream.isatty():
        done = int(width * step / max(total, 1))
        stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {step}/{total}  loss {loss:.4g}")
        if step >= total:
            stream.write("\n")
    else:
        tenth = max(total // 10, 1)
        if step % tenth and step < total:
            return
        stream.write(f"step {step}/{total}  loss {loss:.4g}\n")
    stream.flush()


"""Training 2D score models: a frozen config in; checkpoints and metric records out.

`train(config, run_dir)` sets up the data, the MLP and the objective (engine.losses) and runs the
one training loop (engine.training.loop), used by `python -m engine train2d` (which the app
launches as a background job) and by the tests in-process. It writes into RUN_DIR (engine.store.runs):
status.json, metrics.jsonl (loss records every `log_every` steps, with NCSN's loss_per_level; Fisher
divergence records every `eval_every` steps and at the end) and the checkpoint RUN_DIR/model, saved
atomically every `checkpoint_every` steps and whenever training stops.

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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from engine import losses
from engine.losses import OBJECTIVES, PROJECTIONS
from engine.metrics import fisher_divergence
from engine.models.mlp import make_score_net
from engine.models.score import score_fn_of
from engine.samplers.schedules import geometric_sigmas
from engine.store.checkpoints import atomic_write_json
from engine.targets import SAMPLE_SETS, GaussianMixture, TargetError, sample_set
from engine.training.flags import check_fields, config_argv, option
from engine.training.loop import LoopConfig, Progress, Task, resume_point, train_loop

DATA_CHOICES = ("mixture", "points", *SAMPLE_SETS)
MAX_POINTS = 2000          # a drawn or uploaded data set (--data points)
POINTS_RANGE = 100.0       # |coordinate| of a drawn or uploaded point
POINTS_FILE = "points.csv"  # the run folder's copy of a --data points set
CONDITIONINGS = ("embed", "divide")
ACTIVATIONS = ("softplus", "silu", "elu", "tanh")


@dataclass(frozen=True)
class Train2DConfig:
    """Every field is a `python -m engine train2d` flag (engine.training.flags).

    The defaults (NCSN, 5000 steps of batch 256, EMA 0.999: ~8 CPU seconds) are what annealed
    Langevin needs to recover the mixture's weights as well as the exact score does, for every
    training seed. The spread over seeds came from sampling the last Adam iterate: at lr 1e-3 the
    weights still wander, and with them the score between the modes at the middle σ levels, where
    the particles choose their mode (2000 steps, batch 128, no EMA: weight errors 0.004–0.063 over
    five seeds; with the EMA and these steps, ≤ 0.015 over ten; README, train2d)."""
    data: str = option("mixture", "a Gaussian mixture (--means/--weights/--stds), your own points "
                       "(--points) or a 2D sample set", choices=DATA_CHOICES)
    points: tuple[tuple[float, ...], ...] | None = option(
        None, f"with --data points: the training set itself, e.g. '0,1;2,3;4,5' (at most {MAX_POINTS})",
        kind="points")
    means: tuple[tuple[float, ...], ...] = option(((5.0, 5.0), (-5.0, -5.0)),
                                                  "mixture means, e.g. '5,5;-5,-5'", kind="points")
    weights: tuple[float, ...] = option((0.8, 0.2), "mixture weights, e.g. 0.8,0.2", kind="numbers")
    stds: tuple[float, ...] | None = option(None, "one isotropic std per component, e.g. 1,1",
                                            kind="numbers")
    objective: str = option("ncsn", "score-matching objective (SEEDS §2, §4)", choices=OBJECTIVES)
    steps: int = option(5000, low=1, high=200_000, label="number of steps")
    batch: int = option(256, low=1, high=8192, label="batch size")
    lr: float = option(1e-3, low=0, high=1, low_open=True, label="learning rate")
    hidden: int = option(128, "hidden width of the MLP", low=1, high=4096)
    depth: int = option(2, "number of hidden layers", low=1, high=32)
    activation: str = option("softplus", "the network's nonlinearity", choices=ACTIVATIONS)
    conditioning: str = option("embed", "NCSN: learned σ embedding (then /σ), or the seeds' s(x)/σ",
                               choices=CONDITIONINGS)
    sigma: float = option(1.0, "DSM: the single noise level",
                          low=0, low_open=True, label="noise level σ")
    sigma_max: float = option(20.0, "NCSN: largest σ (geometric levels)",
                              low=0, low_open=True, label="σ_max")
    sigma_min: float = option(1.0, "NCSN: smallest σ", low=0, low_open=True, label="σ_min")
    levels: int = option(10, "NCSN: number of geometric levels",
                         low=1, high=1000, label="number of noise levels")
    projection: str = option("gaussian", "SSM directions", choices=PROJECTIONS)
    n_projections: int = option(1, "SSM: projections per point", flag="--projections", low=1, high=100)
    perturb: float = option(0.0, "std of a tiny Gaussian perturbation of each batch (e.g. 0.01)", low=0)
    ema: float = option(0.999, "EMA decay of the weights, what is saved and evaluated (0: none)",
                        low=0, high=1, high_open=True, label="EMA decay")
    n_data: int = option(10000, "size of the fixed training set", low=1, high=1_000_000)
    eval_points: int = option(2000, "size of the fixed evaluation set", low=1, high=100_000)
    eval_every: int = option(250, "Fisher divergence every N steps (0: only at the end)", low=0)
    log_every: int = option(10, "a loss record every N steps", low=1)
    checkpoint_every: int = option(500, "save the model every N steps (and when training stops; the "
                                   "Train page previews each one)", low=1)
    seed: int = option(0, "seed of the initial weights and of the batches", low=0, high=2**32 - 1)

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
        """ValueError with one sentence for impossible settings (each field's range:
        engine.training.flags.check_fields)."""
        check_fields(self)
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
        if self.data == "points":
            check_points(self.points)
        self.loop_config().validate()
        self.sigmas  # noqa: B018 — validates the σ schedule (ScheduleError is a ValueError)
        self.mixture  # noqa: B018 — validates means/weights/stds

    def loop_config(self) -> LoopConfig:
        return LoopConfig(steps=self.steps, lr=self.lr, ema=self.ema, record_every=self.log_every,
                          checkpoint_every=self.checkpoint_every)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Train2DConfig":
        d = dict(d)
        d["means"] = tuple(tuple(m) for m in d.get("means", ()))
        d["weights"] = tuple(d.get("weights", ()))
        if d.get("points") is not None:
            d["points"] = tuple(tuple(p) for p in d["points"])
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
    message: str = ""


def training_data(config: Train2DConfig) -> torch.Tensor:
    """The fixed training set (n_data points), deterministic in the seed."""
    g = torch.Generator().manual_seed(config.seed)
    if config.data == "mixture":
        return config.mixture.sample(config.n_data, generator=g)
    if config.data == "points":
        return torch.tensor(config.points, dtype=torch.float32)
    return sample_set(config.data, config.n_data, g)


def evaluation_data(config: Train2DConfig) -> torch.Tensor:
    g = torch.Generator().manual_seed(config.seed + 99991)
    if config.data == "mixture":
        return config.mixture.sample(config.eval_points, generator=g)
    if config.data == "points":
        return torch.tensor(config.points, dtype=torch.float32)
    return sample_set(config.data, config.eval_points, g)


def check_points(points) -> None:
    """ValueError (one sentence) unless `points` is a usable drawn/uploaded 2D training set."""
    if not points or len(points) < 2:
        raise ValueError("Training on your own points needs at least 2 points (--points '0,1;2,3').")
    if len(points) > MAX_POINTS:
        raise ValueError(f"At most {MAX_POINTS} points can be trained on; got {len(points)}.")
    if any(len(p) != 2 for p in points):
        raise ValueError("Every point needs exactly two coordinates (x, y).")
    if not all(math.isfinite(v) and abs(v) <= POINTS_RANGE for p in points for v in p):
        raise ValueError(f"Point coordinates must be finite numbers between −{POINTS_RANGE:g} and "
                         f"{POINTS_RANGE:g}.")


def save_points(run_dir, points) -> Path:
    """RUN_DIR/points.csv: the drawn/uploaded training set kept with the run (x,y per line)."""
    path = Path(run_dir) / POINTS_FILE
    text = "x,y\n" + "".join(f"{x:.6g},{y:.6g}\n" for x, y in points)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def evaluate(model, config: Train2DConfig, x_eval: torch.Tensor) -> dict:
    """Fisher divergences (see the module docstring); {} when the data has no exact score."""
    mixture = config.mixture
    if mixture is None:
        return {}
    score_fn = score_fn_of(model, {"model": model.spec(), "sigmas": list(config.sigmas)})
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


def loss_terms(model, config: Train2DConfig, x: torch.Tensor, g: torch.Generator):
    """(per-example loss terms, NCSN level of each example or None) for one minibatch."""
    obj = config.objective
    if config.perturb > 0:
        x = x + config.perturb * torch.randn(x.shape, generator=g)
    if obj == "esm":
        return losses.esm_loss(model, x, config.mixture.score, reduce=False), None
    if obj == "ism":
        return losses.ism_loss(model, x, reduce=False), None
    if obj in ("ssm", "ssm-vr"):
        return losses.ssm_loss(model, x, n_projections=config.n_projections,
                               projection=config.projection, variance_reduced=(obj == "ssm-vr"),
                               generator=g, reduce=False), None
    if obj == "dsm":
        return losses.dsm_loss(model, x, config.sigma, generator=g, reduce=False), None
    return losses.ncsn_loss(model, x, config.sigmas, generator=g, reduce=False)


def checkpoint_meta(model, config: Train2DConfig, p: Progress) -> dict:
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
        "steps": p.step,
        "total_steps": config.steps,
        "wall_time": round(p.seconds, 3),
        "cpu_time": round(p.cpu_seconds, 3),
        "sec_per_step": round(p.sec_per_step, 6),
        "metrics": {"loss": p.loss, **p.evaluation},
        "state": p.state,
        "config": config.to_dict(),
    }


def train(config: Train2DConfig, run_dir=None, progress=None, writer=None,
          resume: bool = False) -> TrainResult:
    """Train on the one loop (engine.training.loop). With run_dir: write the run folder (status,
    metrics, checkpoints; resume=True continues from its state checkpoint). progress(step, total,
    loss) is called at every loss record (the CLI's bar is the loop's: engine.progress)."""
    from engine.store.runs import RunWriter

    config.validate()
    start = resume_point(run_dir) if (resume and run_dir is not None) else None
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed + 1 + (7919 * start.step if start else 0))
    data = training_data(config)
    x_eval = evaluation_data(config)
    data_scale = float(data.std()) if config.objective == "ncsn" else 1.0
    model = make_score_net(config.objective, data.shape[1], config.hidden, config.depth,
                           config.activation, config.conditioning, data_scale=round(data_scale, 4))
    if run_dir is not None and writer is None:
        writer = RunWriter(run_dir, total=config.steps)
    if run_dir is not None and config.data == "points":
        save_points(run_dir, config.points)

    def batch_loss(net):
        idx = torch.randint(0, data.shape[0], (config.batch,), generator=g)
        return loss_terms(net, config, data[idx], g)

    task = Task(model=model, batch_loss=batch_loss, meta=lambda p: checkpoint_meta(model, config, p),
                n_levels=len(config.sigmas) if config.objective == "ncsn" else 0,
                evaluate=lambda m, p: evaluate(m, config, x_eval), eval_every=config.eval_every)
    out = train_loop(task, config.loop_config(), run_dir, writer, start=start, progress=progress)
    return TrainResult(model=out.model, meta=checkpoint_meta(model, config, out.progress),
                       losses=[r["loss"] for r in out.records], state=out.state,
                       message=out.progress.message)


def cli_argv(c: Train2DConfig) -> list[str]:
    """The `python -m engine train2d` flags (without --out) that reproduce this config."""
    return ["train2d", *config_argv(c), "--quiet"]


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
                loss = loss_terms(model, cfg, x_all[i], g)[0].mean()
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

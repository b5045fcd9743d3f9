"""The one training loop. Every score model of Score Lab trains through `train_loop`; the per-task
setups (training/toy2d.py, images.py, sde.py, bench/mnist.py) only build a model and a `Task`.

A Task gives `batch_loss(net)`: the per-example loss terms of one fresh minibatch (engine.losses
with reduce=False) and, for multi-level objectives, each example's noise level; `meta(progress)`:
the checkpoint meta; optionally `evaluate(model, progress)` every `eval_every` steps and at the end.
The loop does the rest, the same way for every task:

* Adam on the mean of the terms, optional gradient-norm clipping and linear learning-rate warm-up;
* an EMA of the weights (engine.models.ema; decay 0 = none): checkpoints and evaluations use it;
* stops on the step count, a time budget (wall and/or CPU minutes of this process: state
  "finished"), a cancel (RunWriter.stop_requested — the run folder's cancel file or SIGTERM — or
  Ctrl-C: "cancelled"), or a non-finite loss ("failed", checked before the update, so the saved
  weights are the last finite ones); the final status says why in one sentence;
* metric records, one set of names for every task (engine.store.runs.METRIC_FIELDS), and status updates;
* atomic checkpoints RUN_DIR/model (the EMA weights: what sampling uses) and RUN_DIR/state
  (weights, EMA, Adam state, step and clocks) every `checkpoint_every` steps and whenever it stops;
* resume from RUN_DIR/state (`resume_point`): step, clocks, weights, EMA and optimizer continue,
  and records past the checkpoint's step (written before a crash) are dropped, so no step repeats;
* torchrun/DDP (engine.training.distributed): rank 0 writes, all ranks agree on stopping;
* progress (engine.progress, shown when a command enabled it): a step bar with the loss and the
  ETA from the step count or the time budget, whichever ends first; an evaluation with an
  `evaluate_label` (e.g. a preview grid) is announced before it starts and timed when it ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from engine import progress as show
from engine.losses import per_level_means
from engine.models.ema import Ema
from engine.store.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, save_model
from engine.store.runs import drop_metrics_after
from engine.training.distributed import Dist
from engine.training.flags import check_fields, option

@dataclass(frozen=True)
class LoopConfig:
    steps: int = option(1, "stop at this step (counting resumed steps)", low=1, label="number of steps")
    lr: float = option(1e-3, low=0, high=10, low_open=True, label="learning rate")
    ema: float = option(0.0, "EMA decay; 0 trains without an EMA",
                        low=0, high=1, high_open=True, label="EMA decay")
    grad_clip: float = option(0.0, "max global gradient norm; 0 = no clipping", low=0)
    lr_warmup: int = option(0, "linear learning-rate warm-up over this many steps", low=0)
    record_every: int = option(50, "a loss record (metrics, progress) every N steps", low=1)
    checkpoint_every: int = option(0, "0: only when the loop stops", low=0)
    max_minutes: float | None = option(None, "wall-clock budget of this process", low=0, low_open=True)
    max_cpu_minutes: float | None = option(None, "CPU-time budget of this process", low=0, low_open=True)

    def validate(self) -> None:
        check_fields(self)


@dataclass
class Progress:
    """Where a run stands; what `meta`, `evaluate` and the caller see."""
    total: int
    step: int = 0
    state: str = "running"
    message: str = ""
    loss: float | None = None            # the last recorded loss
    seconds: float = 0.0                 # wall seconds in all (resumed runs included)
    cpu_seconds: float = 0.0             # CPU seconds in all
    train_seconds: float = 0.0           # inside training steps, this process
    steps_here: int = 0                  # steps taken by this process
    evaluation: dict = field(default_factory=dict)   # the last evaluate() result

    @property
    def sec_per_step(self) -> float:
        return self.train_seconds / max(self.steps_here, 1)


@dataclass
class Task:
    model: nn.Module
    batch_loss: Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor | None]]
    meta: Callable[[Progress], dict]
    n_levels: int = 0                    # > 0: records carry loss_per_level
    net: nn.Module | None = None         # what batch_loss gets (a DDP wrapper); default: model
    evaluate: Callable[[nn.Module, Progress], dict] | None = None
    eval_every: int = 0
    evaluate_label: str = ""             # a slow evaluate, announced: "preview grid: sampling 16 images"


@dataclass
class LoopResult:
    model: nn.Module                     # the EMA model (or the model without EMA), eval mode
    progress: Progress
    records: list[dict]                  # the loss records of this process

    @property
    def state(self) -> str:
        return self.progress.state


@dataclass
class ResumePoint:
    step: int
    tensors: dict
    meta: dict


def resume_point(run_dir, device="cpu") -> ResumePoint | None:
    """RUN_DIR/state if there is one (the setup seeds its data stream from `step`)."""
    path = Path(run_dir) / "state"
    if not path.with_suffix(".json").exists():
        return None
    tensors, meta = load_checkpoint(path, device=device)
    return ResumePoint(step=int(meta.get("step", 0)), tensors=tensors, meta=meta)


# -- state checkpoint: model.*, ema.*, opt.<i>.<name> tensors; scalars in the meta ----------------

def _state_tensors(model, ema: Ema | None, opt) -> tuple[dict, dict]:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict()["weights"].items()})
    opt_meta = {"param_groups": [], "steps": {}}
    sd = opt.state_dict()
    for i, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val) and val.ndim > 0:
                tensors[f"opt.{i}.{name}"] = val
            else:
                opt_meta["steps"].setdefault(str(i), {})[name] = float(val)
    opt_meta["param_groups"] = [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
    return tensors, {"optimizer": opt_meta, "ema_updates": ema.updates if ema is not None else 0}


def _restore_state(point: ResumePoint, model, ema: Ema | None, opt) -> None:
    tensors, meta = point.tensors, point.meta
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({"weights": {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")},
                             "updates": meta.get("ema_updates", 0)})
    sd = opt.state_dict()
    state = {}
    opt_meta = meta.get("optimizer", {})
    for i in range(len(sd["param_groups"][0]["params"])):
        st = {name: torch.tensor(val) for name, val in opt_meta.get("steps", {}).get(str(i), {}).items()}
        for key in ("exp_avg", "exp_avg_sq"):
            if f"opt.{i}.{key}" in tensors:
                st[key] = tensors[f"opt.{i}.{key}"]
        if st:
            state[i] = st
    sd["state"] = state
    opt.load_state_dict(sd)


# -- the loop ------------------------------------------------------------------------------------

CARRY_ON, BUDGET, CANCELLED, FAILED = 0, 1, 2, 3      # stop codes; ranks agree on the largest


def train_loop(task: Task, config: LoopConfig, run_dir=None, writer=None, start: ResumePoint | None = None,
               dist: Dist = Dist(), device="cpu", log=None, progress=None) -> LoopResult:
    """Train task.model (see the module docstring). With run_dir: checkpoints there; with writer
    (engine.store.runs.RunWriter): status, metrics and cancelling. log(line) and
    progress(step, total, loss) are called at every loss record."""
    config.validate()
    return _Loop(task, config, run_dir, writer, dist, device, log, progress).run(start)


class _Loop:
    def __init__(self, task, config, run_dir, writer, dist, device, log, progress):
        self.task, self.config, self.dist, self.device = task, config, dist, device
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writer = writer if dist.main else None          # rank 0 writes
        self.log = log if dist.main else None
        self.progress = progress if dist.main else None
        self.model = task.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.ema = Ema(self.model, config.ema) if config.ema > 0 else None
        self.averaged = self.ema.model if self.ema is not None else self.model
        self.p = Progress(total=config.steps)
        self.before = (0.0, 0.0)                              # wall, CPU seconds of earlier processes
        self.window: list[float] = []
        self.level_terms: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.records: list[dict] = []
        self.evaluated_at = -1
        self.t0, self.c0 = time.time(), time.process_time()
        self.bar = None

    def run(self, start: ResumePoint | None) -> LoopResult:
        p, config = self.p, self.config
        if start is not None:
            self.resume(start)
        elif self.dist.main and self.run_dir is not None:
            drop_metrics_after(self.run_dir, 0)   # a fresh start (e.g. killed before its first
            #                                       checkpoint, then resumed) keeps no old records
        self.status("running", message="Training started.")
        self.bar = show.reporter("train", config.steps, "step", initial=p.step) if self.dist.main else None
        self.show()
        code = CARRY_ON
        try:
            while p.step < config.steps:
                code = self.dist.agree(self.stop_code(), self.device)
                if code:
                    break
                code = self.step()
                if code:
                    break
                self.show()
                if p.step % config.record_every == 0 or p.step == config.steps:
                    self.record()
                if self.task.eval_every and p.step % self.task.eval_every == 0:
                    self.evaluate()
                if config.checkpoint_every and p.step % config.checkpoint_every == 0 and p.step < config.steps:
                    self.save("running")
            if self.evaluated_at != p.step:
                self.evaluate()
        except Exception as err:  # the run folder must say why it stopped
            lines = str(err).strip().splitlines()
            self.status("failed", message=lines[0] if lines else type(err).__name__)
            raise
        finally:
            if self.bar is not None:
                self.bar.close()
        return self.finish(code)

    def show(self) -> None:
        """The progress bar: step, loss (mean since the last record) and ETA."""
        if self.bar is None:
            return
        loss = sum(self.window) / len(self.window) if self.window else self.p.loss
        self.bar.update(self.p.step, eta=self.eta(), loss=loss)

    def eta(self) -> float | None:
        """Seconds until the loop stops: the steps left at this process's mean wall time per step
        (evaluations included), or sooner where a time budget ends first."""
        config, p = self.config, self.p
        wall, cpu = time.time() - self.t0, time.process_time() - self.c0
        etas = []
        if p.steps_here:
            etas.append(wall / p.steps_here * (config.steps - p.step))
        if config.max_minutes:
            etas.append(max(0.0, 60 * config.max_minutes - wall))
        if config.max_cpu_minutes and cpu > 0:   # CPU seconds left, at this process's wall per CPU second
            etas.append(max(0.0, 60 * config.max_cpu_minutes - cpu) * wall / cpu)
        return min(etas) if etas else None

    def resume(self, start: ResumePoint) -> None:
        if start.meta.get("model") != self.task.meta(self.p).get("model"):
            raise CheckpointError("The run folder holds a different model than the one asked for.")
        _restore_state(start, self.model, self.ema, self.opt)
        self.p.step = start.step
        self.before = (float(start.meta.get("wall_seconds", 0.0)), float(start.meta.get("cpu_seconds", 0.0)))
        if self.dist.main and self.run_dir is not None:
            drop_metrics_after(self.run_dir, start.step)
        if self.log:
            self.log(f"resumed at step {start.step}")

    def step(self) -> int:
        """One update; FAILED (nothing applied) when the loss is not finite on some rank."""
        p, config, opt = self.p, self.config, self.opt
        t_step = time.perf_counter()
        try:
            per_example, levels = self.task.batch_loss(self.task.net or self.model)
            loss = per_example.mean()
            self.value = float(loss.detach())
            if self.dist.agree(CARRY_ON if math.isfinite(self.value) else FAILED, self.device):
                return FAILED
            if config.lr_warmup:
                for group in opt.param_groups:
                    group["lr"] = config.lr * min(1.0, (p.step + 1) / config.lr_warmup)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            opt.step()
            if self.ema is not None:
                self.ema.update(self.model)
        except KeyboardInterrupt:  # Ctrl-C: save like a cancel
            return CANCELLED
        p.train_seconds += time.perf_counter() - t_step
        p.step += 1
        p.steps_here += 1
        self.window.append(self.value)
        if levels is not None:
            self.level_terms.append((per_example.detach(), levels))
        return CARRY_ON

    def record(self) -> None:
        p = self.p
        self.clocks()
        p.loss = sum(self.window) / len(self.window)
        self.window = []
        record = {"step": p.step, "loss": p.loss, "seconds": round(p.seconds, 3),
                  "sec_per_step": p.sec_per_step}
        if self.task.n_levels:
            per = torch.cat([t for t, _ in self.level_terms])
            levels = torch.cat([lv for _, lv in self.level_terms])
            record["loss_per_level"] = per_level_means(per, levels, self.task.n_levels)
            self.level_terms = []
        self.records.append(record)
        if self.writer is not None:
            self.writer.metric(record)
        self.status("running", loss=p.loss, sec_per_step=p.sec_per_step, message=f"loss {p.loss:.4g}")
        if self.log and not show.enabled():   # the progress bar shows the loss already
            self.log(f"step {p.step:6d}  loss {p.loss:10.4g}  {p.seconds:8.1f}s")
        if self.progress:
            self.progress(p.step, p.total, p.loss)

    def evaluate(self) -> None:
        self.evaluated_at = self.p.step
        if self.task.evaluate is None or not self.dist.main:
            return
        self.clocks()
        label, t = self.task.evaluate_label, time.perf_counter()
        if label:
            show.phase(f"step {self.p.step}: {label}…")
        result = self.task.evaluate(self.averaged, self.p)
        if label:
            show.phase(f"step {self.p.step}: {label.split(':')[0]} done in "
                       f"{show.format_seconds(time.perf_counter() - t)}")
        if result:
            self.p.evaluation = result
            if self.writer is not None:
                self.writer.metric({"step": self.p.step, **result})

    def stop_code(self) -> int:
        config = self.config
        if self.writer is not None and self.writer.stop_requested:
            return CANCELLED
        if config.max_minutes and time.time() - self.t0 > 60 * config.max_minutes:
            return BUDGET
        if config.max_cpu_minutes and time.process_time() - self.c0 > 60 * config.max_cpu_minutes:
            return BUDGET
        return CARRY_ON

    def clocks(self) -> None:
        self.p.seconds = self.before[0] + time.time() - self.t0
        self.p.cpu_seconds = self.before[1] + time.process_time() - self.c0

    def status(self, state: str, **fields) -> None:
        if self.writer is not None:
            self.writer.status(state, step=self.p.step, total=self.p.total, **fields)

    def save(self, state: str) -> None:
        """Atomic RUN_DIR/model (the EMA weights) and RUN_DIR/state (everything to resume)."""
        if self.run_dir is None or not self.dist.main:
            return
        p = self.p
        self.clocks()
        p.state = state
        meta = self.task.meta(p)
        save_model(self.run_dir / "model", self.averaged, meta)
        tensors, loop_meta = _state_tensors(self.model, self.ema, self.opt)
        save_checkpoint(self.run_dir / "state", tensors, {**meta, **loop_meta, "step": p.step,
                                                          "wall_seconds": p.seconds,
                                                          "cpu_seconds": p.cpu_seconds})

    def finish(self, code: int) -> LoopResult:
        p = self.p
        self.clocks()
        state = {FAILED: "failed", CANCELLED: "cancelled"}.get(code, "finished")
        p.message = {
            FAILED: f"The loss became {self.value} at step {p.step + 1}; the model before that step "
                    f"is saved (try a smaller learning rate).",
            CANCELLED: f"Cancelled at step {p.step}; the model so far is saved.",
            BUDGET: f"Stopped by the time budget at step {p.step} ({p.seconds / 60:.1f} min).",
        }.get(code, f"Finished {p.step} steps in {p.seconds:.1f} s.")
        self.save(state)
        p.state = state
        self.status(state, message=p.message, wall_time=p.seconds, sec_per_step=p.sec_per_step,
                    final={"loss": p.loss, **p.evaluation})
        return LoopResult(model=self.averaged.eval(), progress=p, records=self.records)

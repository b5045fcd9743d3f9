"""Training the score-based VAE on the one loop (engine.training.loop): a config and a Task.

One step, on a fresh minibatch of dynamically binarised MNIST:
* implicit encoder — the score net s_ψ(z, x) by sliced score matching (SSM-VR by default) on fresh
  encoder samples z ~ q_φ(z|x), detached, plus the encoder/decoder by the surrogate −ELBO with
  +stopgrad(s_ψ)ᵀz (engine.vae.objective). The two terms reach disjoint parameters (the SSM term
  sees z detached, the ELBO term s detached), so the loop's one Adam step on their sum is the score
  step and the encoder/decoder step together: the reference code's alternation with the score net
  one step behind, and the loop's checkpoints and resume cover both. (The reference code uses
  RMSProp 1e-3, batch 128; the loop is Adam.)
* Gaussian encoder — the usual VAE with the analytic entropy.
Every `eval_every` steps the ELBO terms of a fixed set of binarised test digits go to the run's
metrics (reconstruction, prior, entropy — the k-NN estimate for the implicit encoder — and elbo).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from engine.store.checkpoints import atomic_write_json
from engine.training.flags import check_fields, config_argv, option
from engine.training.loop import LoopConfig, LoopResult, Progress, Task, resume_point, train_loop
from engine.vae.data import binarize, intensities, test_digits
from engine.vae.evaluate import elbo_summary
from engine.vae.models import ENCODERS, LatentVAE
from engine.vae.objective import elbo_terms, score_matching_terms

SCORE_OBJECTIVES = ("ssm-vr", "ssm")


@dataclass(frozen=True)
class VAEConfig:
    """Every field is a `python -m engine vae train` flag (engine.training.flags)."""
    encoder: str = option("implicit", "implicit z = g(x, ε) with a learned score, or Gaussian",
                          choices=ENCODERS)
    latent: int = option(8, "latent size", low=1, high=256, label="latent size")
    hidden: int = option(256, "hidden width of the encoder and decoder MLPs", low=1, high=4096)
    noise_dim: int = option(8, "implicit encoder: size of the noise ε", flag="--noise", low=1, high=1024)
    score_hidden: int = option(256, "implicit encoder: hidden width of the score net s(z, x)",
                               low=1, high=4096)
    score_objective: str = option("ssm-vr", "score net objective", choices=SCORE_OBJECTIVES)
    projections: int = option(1, "SSM projections per sample", low=1, high=64)
    particles: int = option(1, "implicit encoder: encoder samples per digit in the score net's SSM term",
                            low=1, high=64)
    steps: int = option(5000, low=1, high=1_000_000, label="number of steps")
    batch: int = option(128, low=1, high=8192, label="batch size")
    lr: float = option(1e-3, low=0, high=1, low_open=True, label="learning rate")
    max_minutes: float | None = option(None, "wall-clock budget in minutes (stops early)",
                                       low=0, low_open=True)
    eval_every: int = option(250, "ELBO terms on the test digits every N steps", low=1, high=1_000_000)
    eval_digits: int = option(256, "test digits for the live ELBO terms", low=1, high=10_000)
    log_every: int = option(50, "a loss record every N steps", low=1, high=1_000_000)
    checkpoint_every: int = option(1000, "a checkpoint every N steps", low=1, high=1_000_000)
    seed: int = option(0, "seed of the initial weights and of the batches", low=0, high=2**31 - 1, label="seed")

    def validate(self) -> None:
        """One sentence naming the flag for any value out of range (engine.training.flags)."""
        check_fields(self)
        self.loop_config().validate()

    def loop_config(self) -> LoopConfig:
        return LoopConfig(steps=self.steps, lr=self.lr, record_every=self.log_every,
                          checkpoint_every=self.checkpoint_every, max_minutes=self.max_minutes)

    def to_dict(self) -> dict:
        return asdict(self)

    def build(self) -> LatentVAE:
        return LatentVAE(self.encoder, self.latent, self.hidden, self.noise_dim, self.score_hidden)


def batch_loss_terms(model: LatentVAE, x: torch.Tensor, config: VAEConfig, g) -> torch.Tensor:
    """Per-example loss of one step: −ELBO surrogate, plus the score net's SSM term (implicit)."""
    per = elbo_terms(model, x, g)["loss"]
    if model.score is not None:
        sm = score_matching_terms(model, x.repeat(config.particles, 1), g,
                                  config.score_objective == "ssm-vr", config.projections)
        per = per + sm.reshape(config.particles, -1).mean(0)
    return per


def checkpoint_meta(model: LatentVAE, config: VAEConfig, p: Progress) -> dict:
    return {"task": "vae", "model": model.spec(), "encoder": config.encoder, "latent": config.latent,
            "objective": config.score_objective if config.encoder == "implicit" else "analytic",
            "steps": p.step, "total_steps": config.steps, "wall_time": round(p.seconds, 3),
            "cpu_time": round(p.cpu_seconds, 3), "sec_per_step": round(p.sec_per_step, 6),
            "metrics": {"loss": p.loss, **p.evaluation}, "state": p.state,
            "data": {"name": "MNIST", "train": "binarised afresh every batch",
                     "test": "binarised once with seed 0"},
            "config": config.to_dict()}


def train(config: VAEConfig, run_dir=None, writer=None, resume: bool = False,
          progress=None) -> LoopResult:
    """Train into RUN_DIR (model, state, metrics) on the one loop; see the module docstring."""
    config.validate()
    start = resume_point(run_dir) if (resume and run_dir is not None) else None
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed + 1 + (7919 * start.step if start else 0))
    data = intensities("train")
    x_eval = test_digits(config.eval_digits)
    model = config.build()

    def batch_loss(net):
        idx = torch.randint(0, data.shape[0], (config.batch,), generator=g)
        return batch_loss_terms(net, binarize(data[idx], g), config, g), None

    task = Task(model=model, batch_loss=batch_loss, meta=lambda p: checkpoint_meta(model, config, p),
                evaluate=lambda m, p: elbo_summary(m, x_eval), eval_every=config.eval_every)
    return train_loop(task, config.loop_config(), run_dir, writer, start=start, progress=progress)


def cli_argv(config: VAEConfig) -> list[str]:
    """The `python -m engine vae train` flags (without --out) that rebuild this config."""
    return ["vae", "train", *config_argv(config)]


def write_run_config(run_dir, argv: list[str], config: VAEConfig) -> None:
    """config.json for a run started from the command line (the job manager writes its own)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        atomic_write_json(path, {"name": f"vae-{config.encoder}-{config.latent}", "argv": argv,
                                 "config": config.to_dict(), "created": time.time(),
                                 "threads": int(os.environ.get("SCORELAB_THREADS", 1))})

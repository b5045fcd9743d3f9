"""Training time-conditional score models s_θ(x, t) with the continuous objective of a forward SDE
(engine.losses.sde_loss, default or likelihood weighting):

* `train_2d`: a Gaussian mixture, the VE / VP / sub-VP SDE and the time-conditional MLP
  (engine.models.time_mlp, "sde_mlp2d");
* `train_mnist`: MNIST with the tutorial's VE SDE dx = σ^t dw (engine.sde.sdes.TutorialVESDE) and
  U-Net ("tutorial_unet"), with a learning-rate warm-up.

Both are thin setups on the one loop (engine.training.loop: EMA, gradient clipping at norm 1,
checkpoints RUN_DIR/model (EMA weights; meta['sde'] names the SDE) and RUN_DIR/state, time budget,
cancel, resume). The command is `python -m engine train-sde {2d,mnist}` (engine/cli/train_sde.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from engine import losses
from engine.losses import WEIGHTINGS
from engine.models.time_mlp import build_sde_mlp2d
from engine.sde.sdes import SDE, SDEOptions, TutorialVESDE
from engine.targets import GaussianMixture
from engine.training.flags import check_fields, option
from engine.training.loop import LoopConfig, LoopResult, Task, resume_point, train_loop

EPS_TRAIN = 1e-5        # t ~ U(EPS_TRAIN, 1) in the loss (score_sde's default)


@dataclass(frozen=True)
class ContinuousTrainConfig:
    """What both targets share: the optimisation, and the loop's settings (clipping at norm 1,
    a checkpoint every 20 records)."""
    steps: int = option(4000, low=1, high=1_000_000, label="number of steps")
    batch: int = option(256, low=1, high=8192, label="batch size")
    lr: float = option(2e-3, low=0, high=1, low_open=True, label="learning rate")
    lr_warmup: int = option(0, "linear learning-rate warm-up steps", low=0)
    weighting: str = option("default", "λ(t) = std(t)² (default) or g(t)² (likelihood)",
                            choices=WEIGHTINGS)
    ema: float = option(0.999, "EMA decay of the weights",
                        low=0, high=1, high_open=True, label="EMA decay")
    seed: int = option(0, "seed of the initial weights and of the batches", low=0, high=2**32 - 1)
    record_every: int = option(50, "a loss record every N steps (a checkpoint every 20 records)", low=1)
    max_minutes: float | None = option(None, "stop and save after this wall time", flag="--minutes",
                                       low=0, low_open=True)

    def validate(self) -> None:
        """ValueError with one sentence for impossible settings (each field's range:
        engine.training.flags.check_fields; the SDE and the mixture check themselves)."""
        check_fields(self)
        self.loop_config().validate()

    def loop_config(self) -> LoopConfig:
        return LoopConfig(steps=self.steps, lr=self.lr, ema=self.ema, grad_clip=1.0,
                          lr_warmup=self.lr_warmup, record_every=self.record_every,
                          checkpoint_every=20 * self.record_every, max_minutes=self.max_minutes)


@dataclass(frozen=True)
class SDETrain2DConfig(ContinuousTrainConfig, SDEOptions):
    """Every field is a `python -m engine train-sde 2d` flag (engine.training.flags)."""
    means: tuple[tuple[float, ...], ...] = option(((5.0, 5.0), (-5.0, -5.0)),
                                                  "mixture means, e.g. '5,5;-5,-5'", kind="points")
    weights: tuple[float, ...] = option((0.8, 0.2), "mixture weights, e.g. 0.8,0.2", kind="numbers")
    stds: tuple[float, ...] | None = option(None, "one isotropic std per component", kind="numbers")
    hidden: int = option(128, "hidden width of the MLP", low=1, high=4096)
    layers: int = option(3, "hidden layers of the MLP", low=1, high=32)

    def validate(self) -> None:
        super().validate()
        self.make_sde()
        self.mixture  # noqa: B018 — validates means/weights/stds

    @property
    def mixture(self) -> GaussianMixture:
        return GaussianMixture.create(self.means, self.weights, self.stds)


@dataclass(frozen=True)
class SDETrainMnistConfig(ContinuousTrainConfig):
    """Every field is a `python -m engine train-sde mnist` flag (engine.training.flags)."""
    steps: int = option(20000, low=1, high=1_000_000, label="number of steps")
    batch: int = option(64, low=1, high=4096, label="batch size")
    lr: float = option(1e-3, low=0, high=1, low_open=True, label="learning rate")
    lr_warmup: int = option(500, "linear learning-rate warm-up steps", low=0)
    sigma: float = option(25.0, "the tutorial VE SDE dx = σ^t dw",
                          low=1, high=1e6, low_open=True, label="noise level σ")
    channels: tuple[int, ...] = option((32, 64, 128, 256), "U-Net channels, four integers", kind="ints",
                                       low=1, high=1024)

    def validate(self) -> None:
        super().validate()
        if len(self.channels) != 4:
            raise ValueError("--channels must be four positive integers like 32,64,128,256.")


def _train(model, sde: SDE, draw, cfg, meta, out_dir, writer, resume: bool,
           device: torch.device = torch.device("cpu")) -> LoopResult:
    """The continuous objective on batches draw(g) (on `device`), on the one loop."""
    model.to(device)
    start = resume_point(out_dir, device) if (resume and out_dir is not None) else None
    g = torch.Generator().manual_seed(cfg.seed + (7919 * start.step if start else 0))

    def batch_loss(net):
        return losses.sde_loss(net, sde, draw(g), generator=g, weighting=cfg.weighting,
                               eps=EPS_TRAIN, reduce=False), None

    task = Task(model=model, batch_loss=batch_loss, meta=meta)
    return train_loop(task, cfg.loop_config(), out_dir, writer, start=start, device=device)


def train_2d(cfg: SDETrain2DConfig, out_dir=None, writer=None, resume: bool = False) -> LoopResult:
    """A 2D time-conditional score model of a mixture; result.model holds the EMA weights."""
    cfg.validate()
    sde = cfg.make_sde()
    mixture = cfg.mixture
    data_scale = float(torch.tensor(mixture.means).abs().max()) + float(torch.tensor(mixture.stds).max())
    spec = {"kind": "sde_mlp2d", "sde": sde.describe(), "dim": mixture.dim, "hidden": cfg.hidden,
            "layers": cfg.layers, "data_scale": round(data_scale, 4)}
    torch.manual_seed(cfg.seed)
    model = build_sde_mlp2d(**{k: v for k, v in spec.items() if k != "kind"})

    def meta(p):
        return {"model": spec, "sde": sde.describe(), "data": {"mixture": mixture.to_dict()},
                "train": asdict(cfg), "steps": p.step, "state": p.state, "loss": p.loss,
                "objective": f"continuous DSM, weighting {cfg.weighting}"}

    return _train(model, sde, lambda g: mixture.sample(cfg.batch, generator=g), cfg, meta,
                  out_dir, writer, resume)


def train_mnist(cfg: SDETrainMnistConfig, out_dir=None, writer=None, resume: bool = False,
                device: torch.device = torch.device("cpu")) -> LoopResult:
    """The score-SDE tutorial's model on MNIST (on `device`); result.model holds the EMA weights."""
    from engine.mnist.data import load_mnist, to_float
    from engine.models.unet import build_tutorial_unet

    cfg.validate()
    data = load_mnist()
    images = torch.from_numpy(to_float(data.train_images)).to(device)
    sde = TutorialVESDE(cfg.sigma)
    spec = {"kind": "tutorial_unet", "channels": list(cfg.channels), "sigma": cfg.sigma}
    torch.manual_seed(cfg.seed)
    model = build_tutorial_unet(channels=tuple(cfg.channels), sigma=cfg.sigma)

    def draw(g):
        return images[torch.randint(0, images.shape[0], (cfg.batch,), generator=g).to(device)]

    def meta(p):
        return {"model": spec, "sde": sde.describe(), "data": {"mnist": data.source, "scale": "[0,1]"},
                "train": asdict(cfg), "steps": p.step, "state": p.state, "loss": p.loss,
                "objective": f"continuous DSM (tutorial), weighting {cfg.weighting}",
                "device": str(device)}

    return _train(model, sde, draw, cfg, meta, out_dir, writer, resume, device)

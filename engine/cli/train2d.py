"""python -m engine train2d: train a 2D score model in the foreground into a run folder.

Writes exactly what a job started from the Train page writes (RUN_DIR/config.json, status.json,
metrics.jsonl, model.safetensors + model.json); the page launches this very command.
Progress bar on stderr; a one-line JSON summary on stdout at the end.
"""

from __future__ import annotations

import json
import os
import signal
import sys

# A cancel can arrive while torch is still importing (seconds on a busy machine), before RunWriter
# installs its handler: SIGTERM's default action would kill the worker without a final state
# ("interrupted"). Until then, note it; the job manager's cancel file then stops the loop at once.
_EARLY_SIGTERM = False


def _note_sigterm(signum, frame):
    global _EARLY_SIGTERM
    _EARLY_SIGTERM = True


if __name__ != "__main__":
    try:
        signal.signal(signal.SIGTERM, _note_sigterm)
    except ValueError:  # imported outside the main thread
        pass

from engine.losses import OBJECTIVES, PROJECTIONS
from engine.targets import parse_numbers, parse_points
from engine.training.toy2d import (CONDITIONINGS, DATA_CHOICES, Train2DConfig, cli_argv, print_progress, train,
                      write_run_config)


def add_arguments(p) -> None:
    p.add_argument("--data", default="mixture", choices=DATA_CHOICES,
                   help="a Gaussian mixture (--means/--weights/--stds) or a 2D sample set")
    p.add_argument("--means", default="5,5;-5,-5", help="mixture means, e.g. '5,5;-5,-5'")
    p.add_argument("--weights", default="0.8,0.2", help="mixture weights, e.g. 0.8,0.2")
    p.add_argument("--stds", default=None, help="one isotropic std per component, e.g. 1,1")
    p.add_argument("--objective", default="ncsn", choices=OBJECTIVES)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=128, help="hidden width of the MLP")
    p.add_argument("--depth", type=int, default=2, help="number of hidden layers")
    p.add_argument("--activation", default="softplus", choices=["softplus", "silu", "elu", "tanh"])
    p.add_argument("--conditioning", default="embed", choices=CONDITIONINGS,
                   help="NCSN: learned σ embedding (then /σ), or the seeds' s(x)/σ")
    p.add_argument("--sigma", type=float, default=1.0, help="DSM: the single noise level")
    p.add_argument("--sigma-max", type=float, default=20.0, help="NCSN: largest σ")
    p.add_argument("--sigma-min", type=float, default=1.0, help="NCSN: smallest σ")
    p.add_argument("--levels", type=int, default=10, help="NCSN: number of geometric levels")
    p.add_argument("--projection", default="gaussian", choices=PROJECTIONS, help="SSM directions")
    p.add_argument("--projections", type=int, default=1, help="SSM: projections per point")
    p.add_argument("--perturb", type=float, default=0.0,
                   help="std of a tiny Gaussian perturbation of the data (e.g. 0.01)")
    p.add_argument("--n-data", type=int, default=10000, help="size of the fixed training set")
    p.add_argument("--eval-every", type=int, default=250, help="Fisher divergence every N steps")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="run name (default: the objective)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: $SCORELAB_THREADS or 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="run folder to write")


def config_from_args(args) -> Train2DConfig:
    means = parse_points(args.means)
    weights = parse_numbers(args.weights, "weights")
    stds = parse_numbers(args.stds, "standard deviations") if args.stds else None
    config = Train2DConfig(
        data=args.data, means=tuple(means), weights=tuple(weights),
        stds=tuple(stds) if stds else None, objective=args.objective, steps=args.steps,
        batch=args.batch, lr=args.lr, hidden=args.hidden, depth=args.depth,
        activation=args.activation, conditioning=args.conditioning, sigma=args.sigma,
        sigma_max=args.sigma_max, sigma_min=args.sigma_min, levels=args.levels,
        projection=args.projection, n_projections=args.projections, perturb=args.perturb,
        n_data=args.n_data, eval_every=args.eval_every, log_every=args.log_every,
        checkpoint_every=args.checkpoint_every, seed=args.seed)
    config.validate()
    return config


def run(args) -> int:
    import torch

    from engine.store.runs import RunWriter

    threads = args.threads or int(os.environ.get("SCORELAB_THREADS", "1") or 1)
    torch.set_num_threads(max(1, threads))
    try:
        config = config_from_args(args)
    except ValueError as err:
        # The run folder (when the app launched us) must say why nothing happened.
        RunWriter(args.out, handle_sigterm=False).status("failed", step=0, message=str(err))
        raise
    # status.json (running, our pid) BEFORE config.json: a job manager scanning the same root must
    # never see this folder as a queued run and launch it a second time.
    writer = RunWriter(args.out, total=config.steps)
    writer.status("running", step=0, total=config.steps, message="Starting.")
    write_run_config(args.out, args.name or config.objective, cli_argv(config), config)
    if _EARLY_SIGTERM:
        writer._on_sigterm(signal.SIGTERM, None)
    progress = None if args.quiet else print_progress
    try:
        result = train(config, args.out, progress=progress, writer=writer)
    except (FloatingPointError, RuntimeError) as err:
        print(f"\nerror: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 1
    summary = {"state": result.state, "out": str(args.out), "objective": config.objective,
               "steps": result.meta["steps"], "wall_time": result.meta["wall_time"],
               "sec_per_step": result.meta["sec_per_step"], **result.meta["metrics"]}
    if result.state != "finished":
        print(file=sys.stderr)
    print(json.dumps(summary))
    return 0

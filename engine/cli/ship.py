"""python -m engine ship --ncsn RUN_DIR [--baseline RUN_DIR]: copy trained MNIST models into
checkpoints/ with an example grid and their quality figures, and record them in the manifest."""

from __future__ import annotations


from engine.mnist.sampling import SampleConfig
from engine.training.flags import field_help


def add_arguments(p) -> None:
    p.add_argument("--ncsn", default=None, help="run folder of the NCSN to ship as checkpoints/ncsn_mnist")
    p.add_argument("--baseline", default=None,
                   help="run folder of the single-σ DSM model to ship as checkpoints/dsm_mnist_baseline")
    p.add_argument("--tutorial", default=None,
                   help="run folder of a `train-sde mnist` tutorial model to ship as checkpoints/tutorial_mnist")
    p.add_argument("--tutorial-command", default=None, help="the training command, recorded in the manifest")
    p.add_argument("--ncsn-command", default=None, help="the training command, recorded in the manifest")
    p.add_argument("--baseline-command", default=None, help="the training command, recorded in the manifest")
    p.add_argument("--n", type=int, default=64, help=field_help(SampleConfig, "n", "images in the example grid"))
    p.add_argument("--seed", type=int, default=0, help=field_help(SampleConfig, "seed", "sampling seed of the grid"))
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")


def run(args) -> int:
    SampleConfig(n=args.n, seed=args.seed).validate()
    if not (args.ncsn or args.baseline or args.tutorial):
        raise ValueError("Name a run folder to ship with --ncsn, --baseline or --tutorial.")
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    from engine.mnist.ship import ship_models
    from engine.progress import phase

    phase(f"ship: sampling a {args.n}-image example grid of each model and scoring it…")
    ship_models(args.ncsn, args.baseline, args.n, args.seed, args.ncsn_command, args.baseline_command,
                tutorial=args.tutorial, tutorial_command=args.tutorial_command)
    return 0

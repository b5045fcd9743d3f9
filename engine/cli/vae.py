"""python -m engine vae {train,eval,check-entropy}: the score-based VAE (SEEDS.md §6, engine.vae).

    vae train --encoder {implicit,gaussian} --latent N --steps N --out DIR   (a run folder: status,
        metrics with the ELBO terms, model + state checkpoints; --resume continues)
    vae eval --checkpoint PATH [--k 1000 --digits 1000]    JSON: the importance-sampled lower bound
        on log p(x) of binarised test digits (nats) with its standard error, and the ELBO terms
    vae ship --run DIR --name NAME --title TEXT             checkpoints/NAME with its bound (as eval)
    vae check-entropy                                       JSON: the score-based entropy gradient of
        a Gaussian encoder against the analytic one, cosine and relative error per parameter group
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from engine.training.flags import add_config_arguments, config_from_args
from engine.vae.training import VAEConfig


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="what", metavar="{train,eval,ship,check-entropy}", required=True,
                           parser_class=type(p))
    t = sub.add_parser("train", help="train a VAE into a run folder")
    add_config_arguments(t, VAEConfig)
    t.add_argument("--out", required=True, help="run folder to write")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/state")
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    e = sub.add_parser("eval", help="log-likelihood bound and ELBO terms of a checkpoint, as JSON")
    e.add_argument("--checkpoint", required=True,
                   help="a checkpoint NAME (without suffix) or a run folder (its model)")
    e.add_argument("--k", type=int, default=1000, help="importance samples per digit (K ≥ 100)")
    e.add_argument("--digits", type=int, default=1000, help="binarised test digits")
    e.add_argument("--seed", type=int, default=0, help="seed of the digits' binarisation and the samples")
    s = sub.add_parser("ship", help="copy a trained run into checkpoints/ with its bound and history")
    s.add_argument("--run", required=True, help="the run folder")
    s.add_argument("--name", required=True, help="checkpoint name, e.g. vae_implicit_8")
    s.add_argument("--title", required=True, help="what the page calls it")
    s.add_argument("--command", default="", help="the command that trained it (recorded)")
    s.add_argument("--k", type=int, default=1000, help="importance samples per digit, as in eval")
    s.add_argument("--digits", type=int, default=1000, help="binarised test digits, as in eval")
    c = sub.add_parser("check-entropy", help="score-based vs analytic entropy gradient, as JSON")
    c.add_argument("--steps", type=int, default=1500, help="score net training steps")
    c.add_argument("--seed", type=int, default=0, help="seed of the digits, weights and samples")
    for q in (t, e, s, c):
        q.add_argument("--threads", type=int, default=int(os.environ.get("SCORELAB_THREADS", "1") or 1))


def checkpoint_path(text: str) -> Path:
    """A run folder means its model checkpoint."""
    path = Path(text)
    return path / "model" if path.is_dir() else path


def run(args) -> int:
    import torch

    torch.set_num_threads(max(1, args.threads))
    if args.what == "train":
        return _train(args)
    if args.what == "eval":
        from engine.progress import reporter
        from engine.store.checkpoints import load_model
        from engine.vae.data import test_digits
        from engine.vae.evaluate import evaluate_bound

        model, meta = load_model(checkpoint_path(args.checkpoint))
        if meta.get("task") != "vae":
            raise ValueError(f"{args.checkpoint} is not a VAE checkpoint.")
        with reporter("bound", args.digits, unit="digit") as bar:
            result = evaluate_bound(model, test_digits(args.digits), k=args.k, seed=args.seed,
                                    progress=bar.callback())
        print(json.dumps({"checkpoint": str(args.checkpoint), "encoder": meta.get("encoder"),
                          "latent": meta.get("latent"), "steps": meta.get("steps"),
                          **result.to_dict()}))
        return 0
    if args.what == "ship":
        from engine.vae.ship import ship_vae

        print(json.dumps(ship_vae(args.run, args.name, args.title, args.command, args.k, args.digits)))
        return 0
    from engine.progress import reporter
    from engine.vae.check import entropy_gradient_check

    with reporter("score net", args.steps) as bar:
        result = entropy_gradient_check(score_steps=args.steps, seed=args.seed, progress=bar.callback())
    print(json.dumps(result))
    return 0


def _train(args) -> int:
    from engine import progress
    from engine.store.runs import RunWriter, mark_failed
    from engine.vae.training import cli_argv, train, write_run_config

    try:
        config = config_from_args(VAEConfig, args)
        config.validate()
    except ValueError as err:
        mark_failed(args.out, str(err))   # the run folder (when the app queued us) says why
        raise
    writer = RunWriter(args.out, total=config.steps)
    writer.status("running", step=0, total=config.steps, message="Starting.")
    write_run_config(args.out, cli_argv(config), config)
    if args.quiet:                             # the loop's progress bar (engine.progress)
        progress.disable()
    result = train(config, args.out, writer, resume=args.resume)
    p = result.progress
    if result.state == "failed":
        print(f"error: {p.message}", file=sys.stderr)
        return 1
    print(json.dumps({"state": result.state, "out": str(args.out), "encoder": config.encoder,
                      "latent": config.latent, "steps": p.step, "wall_time": round(p.seconds, 1),
                      "sec_per_step": round(p.sec_per_step, 5), **p.evaluation}))
    return 0

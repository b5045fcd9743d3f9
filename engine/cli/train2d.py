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

from engine.training.flags import add_config_arguments, config_from_args as _config_from_flags
from engine.training.toy2d import Train2DConfig, cli_argv, train, write_run_config


def add_arguments(p) -> None:
    add_config_arguments(p, Train2DConfig)      # one flag per config field
    p.add_argument("--name", default=None, help="run name (default: the objective)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: $SCORELAB_THREADS or 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/state")
    p.add_argument("--out", required=True, help="run folder to write")


def config_from_args(args) -> Train2DConfig:
    config = _config_from_flags(Train2DConfig, args)
    config.validate()
    return config


def run(args) -> int:
    import torch

    from engine.store.runs import RunWriter, mark_failed

    try:
        config = config_from_args(args)
    except ValueError as err:
        mark_failed(args.out, str(err))   # the run folder (when the app launched us) says why
        raise
    threads = args.threads or int(os.environ.get("SCORELAB_THREADS", "1") or 1)
    torch.set_num_threads(max(1, threads))
    # status.json (running, our pid) BEFORE config.json: a job manager scanning the same root must
    # never see this folder as a queued run and launch it a second time.
    writer = RunWriter(args.out, total=config.steps)
    writer.status("running", step=0, total=config.steps, message="Starting.")
    write_run_config(args.out, args.name or config.objective, cli_argv(config), config)
    if _EARLY_SIGTERM:
        signal.raise_signal(signal.SIGTERM)    # again, now that RunWriter handles it
    if args.quiet:                             # the loop's progress bar (engine.progress)
        from engine import progress
        progress.disable()
    result = train(config, args.out, writer=writer, resume=args.resume)
    if result.state != "finished":
        print(file=sys.stderr)
    if result.state == "failed":
        print(f"error: {result.message}", file=sys.stderr)
        return 1
    summary = {"state": result.state, "out": str(args.out), "objective": config.objective,
               "steps": result.meta["steps"], "wall_time": result.meta["wall_time"],
               "sec_per_step": result.meta["sec_per_step"], **result.meta["metrics"]}
    print(json.dumps(summary))
    return 0

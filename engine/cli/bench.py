"""python -m engine bench TOPIC: measurements, not tests (each prints ratios against a reference
measured in the same run).

  mixing  engine/bench/mixing.py  exact-score Langevin throughput (fused kernel, torch, NumPy); Langevin page rerun time
  mnist   engine/bench/mnist.py   the NCSN vs the score-SDE tutorial model at the same training budget
  sde     engine/bench/sde.py     quality vs number of score evaluations for every SDE sampler
  browser engine/bench/browser.py Scores/Langevin slider latency and bytes per move vs a trivial page

Each topic module has add_arguments(parser) and run(args), like the CLI commands.
"""

from __future__ import annotations

import importlib

TOPICS = {  # topic → (module, one-line help)
    "mixing": ("engine.bench.mixing", "exact-score Langevin throughput vs NumPy, and the page rerun time"),
    "mnist": ("engine.bench.mnist", "the NCSN vs the score-SDE tutorial model at the same training budget"),
    "sde": ("engine.bench.sde", "quality vs number of score evaluations for every SDE sampler"),
    "browser": ("engine.bench.browser", "slider latency and bytes per move in headless Chromium vs a trivial page"),
}


# Every number a bench takes is a count, a size or a budget: positive and at most this much
# (a seed: any value in [0, 2³² − 1]). Stated in each flag's --help, checked when parsing.
MAX_INT, MAX_FLOAT = 1_000_000, 10_000.0


def _bound_numbers(parser) -> None:
    from engine.cli.main import number, number_list

    for action in parser._actions:
        if action.dest == "budgets":
            action.type = number_list(int, 0, MAX_INT, low_open=True)
        elif action.type not in (int, float):
            continue
        elif action.dest == "seed":
            action.type = number(int, 0, 2**32 - 1)
        else:
            action.type = number(action.type, 0, MAX_INT if action.type is int else MAX_FLOAT,
                                 low_open=True)
        action.help = f"{action.help or ''} (allowed: {action.type.range_text})".strip()


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="topic", metavar="TOPIC", required=True, parser_class=type(p))
    for topic, (module_name, help_text) in TOPICS.items():
        parser = sub.add_parser(topic, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(parser)
        _bound_numbers(parser)


def run(args) -> int:
    return int(importlib.import_module(TOPICS[args.topic][0]).run(args) or 0)

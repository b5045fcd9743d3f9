"""python -m engine bench TOPIC: measurements, not tests (each prints ratios against a reference
measured in the same run).

  mixing  engine/bench/mixing.py  exact-score Langevin throughput vs plain NumPy; Langevin page rerun time
  mnist   engine/bench/mnist.py   the NCSN vs the score-SDE tutorial model at the same training budget
  sde     engine/bench/sde.py     quality vs number of score evaluations for every SDE sampler

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


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="topic", metavar="TOPIC", required=True, parser_class=type(p))
    for topic, (module_name, help_text) in TOPICS.items():
        parser = sub.add_parser(topic, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(parser)


def run(args) -> int:
    return int(importlib.import_module(TOPICS[args.topic][0]).run(args) or 0)

"""CLI: python -m engine COMMAND [flags].  Each command lives in a module (mostly engine/cli_*.py) with
`add_arguments(parser)` and `run(args) -> int`; errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import importlib
import sys

# command → (module, one-line help). Modules are imported only when their command runs.
COMMANDS = {
    "mix": ("engine.cli.mix", "run one sampling experiment on a 2D Gaussian mixture, print JSON"),
    "bench": ("engine.cli.bench", "measure sampler throughput and page update time"),
    "train2d": ("engine.cli.train2d", "train a 2D score model into a run folder"),
    "train": ("engine.cli.train", "train an image score model (train mnist …)"),
    "sample": ("engine.cli.sample", "sample an image grid from a checkpoint"),
    "eval": ("engine.cli.eval", "quality figures of MNIST samples as JSON"),
    "nll": ("engine.cli.nll", "probability-flow ODE negative log-likelihood"),
    "sde-mnist": ("engine.cli.sde_mnist", "MNIST through the SDE view: bpd | inpaint | cost, as JSON"),
    "ship": ("engine.cli.ship", "copy trained MNIST runs into checkpoints/ and update the manifest"),
    "train-sde": ("engine.cli.train_sde", "train a time-conditional score model s(x, t) (2d | mnist)"),
    "vae": ("engine.cli.vae", "score-based VAE on MNIST: train | eval | check-entropy"),
}


class CliError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse's default prints the whole usage block
        raise CliError(f"{self.prog}: {message} (see --help)")


def available_commands() -> dict:
    found = {}
    for name, (module, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = (module, help_text)
    return found


def _attach_negative_values(argv: list[str]) -> list[str]:
    """'--means -5,-5;5,5' → '--means=-5,-5;5,5': argparse would read the value as a flag."""
    out = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (tok.startswith("--") and "=" not in tok and nxt is not None and len(nxt) > 1
                and nxt[0] == "-" and (nxt[1].isdigit() or nxt[1] == ".")):
            out.append(f"{tok}={nxt}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def main(argv=None) -> int:
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    commands = available_commands()
    parser = OneLineParser(prog="python -m engine", description="Score Lab engine")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules = {}
    for name, (module_name, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv and argv[0] == name:
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return int(modules[args.command].run(args) or 0)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:  # user-facing engine errors carry one clear sentence
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

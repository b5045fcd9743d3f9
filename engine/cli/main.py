"""CLI: python -m engine COMMAND [flags].  Each command lives in a module of engine/cli/ with
`add_arguments(parser)` and `run(args) -> int`.

Errors are handled here, once for every command: a user mistake (a ValueError subclass: bad flag,
config range, checkpoint, schedule, target), a diverging sampler or ODE (SamplerDiverged,
LikelihoodError), a missing file or data set (OSError) prints one line `error: …` and exits 2
(3 for a diverging sampler); anything else prints one line naming a log file that holds the
traceback (exit 1) — never the traceback itself. Flags every command shares (--threads,
--device) are checked here too. Progress of long work (engine.progress) is enabled for the command
it runs: a bar on a terminal, plain periodic lines otherwise, on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

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


MAX_THREADS = 256


def number(kind, low=None, high=None, low_open: bool = False):
    """An argparse `type` for a flag with no config field behind it (bench, eval, sde-mnist …):
    the value must be a finite `kind` in the range; argparse prints the one line. Its
    `range_text` is what the flag's --help states."""
    from engine.training.flags import _num

    lo = "" if low is None else f"{'(' if low_open else '['}{_num(low)}, "
    text = f"{lo}{'∞)' if high is None else f'{_num(high)}]'}" if low is not None else f"≤ {_num(high)}"

    def convert(value: str):
        try:
            v = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a {'whole number' if kind is int else 'number'}") from None
        ok = v == v and v not in (float("inf"), float("-inf"))
        ok = ok and (low is None or (v > low if low_open else v >= low)) and (high is None or v <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be in {text}; got {value}")
        return v

    convert.__name__ = kind.__name__
    convert.range_text = text
    return convert


def number_list(kind, low, high, low_open: bool = False):
    """An argparse `type` for a comma-separated list ('50,100,200') of numbers in a range; the text
    is returned unchanged (the command splits it)."""
    one = number(kind, low, high, low_open)

    def convert(value: str):
        items = [v for v in value.split(",") if v.strip()]
        if not items:
            raise argparse.ArgumentTypeError("needs at least one number, e.g. 50,100,200")
        for v in items:
            one(v.strip())
        return value

    convert.__name__ = "list"
    convert.range_text = f"each in {one.range_text}"
    return convert


def log_dir() -> Path:
    """Where tracebacks of unexpected errors go: $SCORELAB_LOG_DIR, else <tmp>/scorelab-logs."""
    return Path(os.environ.get("SCORELAB_LOG_DIR") or Path(tempfile.gettempdir()) / "scorelab-logs")


def write_traceback_log(err: BaseException, argv) -> Path | None:
    """The traceback of an unexpected error in a fresh log file (None if it cannot be written)."""
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        path.write_text(f"python -m engine {' '.join(map(str, argv))}\n\n{text}")
        return path
    except OSError:
        return None


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


# A sampler or ODE that blew up (one sentence with a hint): exit code 3. Looked up where they live,
# without importing torch for every command.
DIVERGED = (("engine.samplers.langevin", "SamplerDiverged"), ("engine.sde.likelihood", "LikelihoodError"))


def _diverged(err: BaseException) -> bool:
    return any(isinstance(err, getattr(sys.modules[mod], name))
               for mod, name in DIVERGED if mod in sys.modules)


def check_shared_flags(args) -> None:
    """--threads N (1 … MAX_THREADS) and --device (an unavailable explicit device is an error)."""
    threads = getattr(args, "threads", None)
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise CliError(f"--threads must be in [1, {MAX_THREADS}]; got {threads}.")
    device = getattr(args, "device", None)
    if isinstance(device, str):
        from engine.device import pick_device
        pick_device(device)   # DeviceUnavailable (a ValueError) for e.g. --device cuda without CUDA


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help ends every flag's text with its default, where it has one (not for switches, nor
    for None: such a flag's help says in words what happens without it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (action.option_strings and "%(default)" not in text and "(default:" not in text
                and default not in (None, "", argparse.SUPPRESS) and not isinstance(default, bool)):
            text += " (default: %(default)s)"
        return text


class OneLineParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)   # subcommands' parsers too
        super().__init__(*args, **kwargs)

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


SHARED_HELP = {"--threads": f"torch CPU threads (allowed: [1, {MAX_THREADS}])",
               "--device": "where torch computes: auto (CUDA or MPS when present, else the CPU), cpu, "
                           "cuda or mps"}


def _shared_help(parser) -> None:
    """The shared flags' help where a command gives none (subcommands included)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _shared_help(sub)
        elif not action.help and action.option_strings and action.option_strings[0] in SHARED_HELP:
            action.help = SHARED_HELP[action.option_strings[0]]


def _parser(argv) -> tuple[OneLineParser, dict]:
    """The parser, with the flags of the command named first in argv (only its module is imported)."""
    parser = OneLineParser(prog="python -m engine", description="Score Lab engine")
    # dest "_command": a command's own flag may be called --command (vae ship)
    sub = parser.add_subparsers(dest="_command", metavar="COMMAND", parser_class=OneLineParser)
    modules = {}
    for name, (module_name, help_text) in available_commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv and argv[0] == name:
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
            _shared_help(p)
    return parser, modules


def main(argv=None) -> int:
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        for tok in argv:   # argparse (3.11) would read '--flag=--' as an empty list
            if tok.startswith("--") and tok.endswith("=--"):
                raise CliError(f"{tok[:-3]}: '--' is not a value (see --help)")
        parser, modules = _parser(argv)
        args = parser.parse_args(argv)
        if not args._command:
            parser.print_help()
            return 2
        check_shared_flags(args)
        from engine import progress
        progress.enable()               # long work shows its progress on stderr (engine.progress)
        try:
            return int(modules[args._command].run(args) or 0)
        finally:
            progress.disable()
    except (CliError, ValueError, OSError) as err:  # user-facing errors carry one clear sentence
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; ask for less work (fewer particles, images or a smaller "
              "batch).", file=sys.stderr)
        return 2
    except SystemExit:
        raise
    except BaseException as err:
        if _diverged(err):
            print(f"error: {one_line(err)}", file=sys.stderr)
            return 3
        # a bug: one line here, the traceback in a log file
        log = write_traceback_log(err, argv)
        where = f"traceback in {log}" if log else "no log could be written"
        print(f"error: unexpected {type(err).__name__}: {one_line(err)[:300]} ({where}).",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

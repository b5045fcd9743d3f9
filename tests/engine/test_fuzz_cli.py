"""Fuzz: every CLI command, driven in-process through engine.cli.main.main with generated bad
values, exits non-zero with exactly one line on stderr, no traceback, within a time bound.

The flags come from the commands' own parsers (subcommands included), and the allowed ranges from
their --help ("(allowed: [1, 100000])", "> 0", …): so a range stated in --help is a range enforced.
Every numeric flag also gets NaN, ±inf and text. Sidecars with generated junk model specs go
through the commands that load checkpoints. A few cases run as real subprocesses (end to end).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.cli import main as cli  # noqa: E402

SECONDS_PER_CASE = 20     # a refused flag answers at once; anything slower is treated as a hang
# More examples (and fresh ones, not derandomized) for a deeper run: SCORELAB_FUZZ_EXAMPLES=2000.
EXAMPLES = int(os.environ.get("SCORELAB_FUZZ_EXAMPLES", "0") or 0)
DEEP = dict(max_examples=EXAMPLES, derandomize=False) if EXAMPLES else {}
MAX_THREADS_RANGE = ("[", 1, cli.MAX_THREADS, "]")
REQUIRED = {"--checkpoint": "checkpoints/ncsn_mnist", "--name": "x", "--title": "x"}


def _range(help_text: str | None):
    """(low bracket, low, high, high bracket) from the '(allowed: …)' that ends a flag's help."""
    i = (help_text or "").rfind("(allowed: ")
    if i < 0:
        return None
    text = help_text[i + len("(allowed: "):].rstrip()[:-1].replace("each in ", "").strip()
    if text[0] in "[(":
        lo, hi = text[1:-1].split(",")
        return text[0], float(lo), float(hi), text[-1]
    if text == "positive":
        return "(", 0.0, math.inf, ")"
    if text.startswith(("≥", ">")):
        return "[" if text[0] == "≥" else "(", float(text[1:]), math.inf, ")"
    return "(", -math.inf, float(text[1:]), "]" if text[0] == "≤" else ")"


def _numeric(action) -> str | None:
    t = action.type
    if t is int or getattr(t, "__name__", "") == "int":
        return "int"
    if t is float or getattr(t, "__name__", "") == "float":
        return "float"
    if getattr(t, "__name__", "") == "list":
        return "list"
    return None


def _walk(parser, prefix):
    """(argv prefix, required flags, action) for every numeric flag of parser and its subparsers;
    a positional with choices gets its first choice ('train mnist', 'sde-mnist bpd')."""
    required = [a.option_strings[0] for a in parser._actions if a.required and a.option_strings]
    positional = [a.choices[0] if isinstance(a.choices, list) else next(iter(a.choices))
                  for a in parser._actions if not a.option_strings and a.choices
                  and not isinstance(a, argparse._SubParsersAction)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*prefix, name])
        elif action.option_strings and _numeric(action):
            yield [*prefix, *positional], required, action


def _cases():
    """(argv prefix, required flags, flag, int | float | list, range or None) of every command."""
    out = []
    for command in cli.available_commands():
        parser, _ = cli._parser([command])
        for prefix, required, action in _walk(parser, []):
            flag = action.option_strings[0]
            rng = MAX_THREADS_RANGE if flag == "--threads" else _range(action.help)
            out.append((tuple(prefix), tuple(required), flag, _numeric(action), rng))
    return out


CASES = _cases()


def run_in_process(argv) -> tuple[int, str, str, float]:
    err, out = io.StringIO(), io.StringIO()

    def too_slow(signum, frame):
        raise TimeoutError(f"{argv} ran past {SECONDS_PER_CASE} s")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(SECONDS_PER_CASE)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli.main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def assert_one_line_refusal(argv, code, out, err, seconds, flag=None):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, (argv, out)
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    assert "Traceback" not in err and not lines[0].startswith("error: unexpected "), (argv, err)
    assert seconds < SECONDS_PER_CASE
    if flag is not None:
        assert flag in lines[0], (argv, lines[0])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    np.save(d / "samples.npy", np.random.default_rng(0).random((4, 28, 28), dtype=np.float32))
    return d


def _argv_for(prefix, required, flag, workdir, value):
    argv = list(prefix)
    for req in required:
        if req == flag:
            continue
        if req in ("--out", "--run"):
            argv += [req, str(workdir / "never-created")]
        elif req == "--samples":
            argv += [req, str(workdir / "samples.npy")]
        else:
            argv += [req, REQUIRED.get(req, "x")]
    if prefix[0] == "nll":
        argv += ["--exact-score", "--means", "5,5;-5,-5", "--weights", "0.8,0.2"]
    if prefix[0] == "ship":
        argv += ["--ncsn", str(workdir / "no-run")]
    return [*argv, f"{flag}={value}"]


def test_every_command_has_numeric_flags_to_fuzz():
    commands = {c[0][0] for c in CASES}
    assert {"mix", "nll", "sample", "sde-mnist", "bench", "train", "train2d", "train-sde",
            "ship"} <= commands, commands
    stated = [c for c in CASES if c[4] is not None]
    assert len(stated) > 60, len(stated)      # ranges stated in --help


def _outside(kind: str, rng) -> list[str]:
    """The values just outside each finite end of a stated range."""
    lo_b, lo, hi, hi_b = rng
    values = []
    if math.isfinite(lo):
        below = lo if lo_b == "(" else (lo - 1 if kind != "float" else lo - max(1.0, abs(lo)))
        values.append(str(int(below)) if kind != "float" else repr(below))
    if math.isfinite(hi):
        above = hi if hi_b == ")" else (hi + 1 if kind != "float" else hi * 2 + 1)
        values.append(str(int(above)) if kind != "float" else repr(above))
    return values


BOUNDARY = [(case, value) for case in CASES if case[4] is not None for value in _outside(case[3], case[4])]


def _refused(case, value, workdir, name_flag=True):
    prefix, required, flag, kind, rng = case
    argv = _argv_for(prefix, required, flag, workdir, value)
    code, out, err, seconds = run_in_process(argv)
    # A value outside a range stated in --help is refused by a sentence that names the flag.
    assert_one_line_refusal(argv, code, out, err, seconds, flag if name_flag else None)
    assert not (workdir / "never-created").exists(), argv
    shutil.rmtree(workdir / "never-created", ignore_errors=True)


def test_every_range_stated_in_help_is_enforced(workdir):
    """Both ends of every stated range, every command (deterministic, a few hundred runs)."""
    assert len(BOUNDARY) > 150
    for case, value in BOUNDARY:
        _refused(case, value, workdir)


def _junk(kind: str, rng):
    """Hypothesis: text, NaN/±inf, or any number outside the stated range."""
    text = st.sampled_from(["abc", "", "1;2", "0x10", "--", "½", "1e400"])
    special = st.sampled_from(["nan", "inf", "-inf", "NaN"]) if kind == "float" else st.sampled_from(["1.5", "1e99"])
    options = [text, special]
    if rng is not None:
        lo_b, lo, hi, hi_b = rng
        num = st.integers if kind != "float" else (lambda **kw: st.floats(allow_nan=False, allow_infinity=False, **kw))
        if math.isfinite(lo):
            bound = int(lo) - (lo_b == "[") if kind != "float" else lo
            options.append(num(max_value=bound, **({} if kind != "float" else {"exclude_max": lo_b == "["})).map(str))
        if math.isfinite(hi):
            bound = int(hi) + (hi_b == "]") if kind != "float" else hi
            options.append(num(min_value=bound, **({} if kind != "float" else {"exclude_min": hi_b == "]"})).map(str))
    return st.one_of(options)


@settings(**{**dict(max_examples=150, derandomize=True), **DEEP}, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_bad_values_are_refused_in_one_line(data, workdir):
    case = data.draw(st.sampled_from(CASES), label="flag")
    value = data.draw(_junk(case[3], case[4]), label="value")
    _refused(case, value, workdir, name_flag=False)


# -- sidecars with junk model specs ----------------------------------------------------------------

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                 st.text(max_size=5), st.lists(st.integers(-10**9, 10**9), max_size=5))
SPEC = st.fixed_dictionaries(
    {"kind": st.sampled_from(["mlp2d", "ncsn2d", "sde_mlp2d", "ncsn_unet", "tutorial_unet",
                              "mnist_classifier", "nope", 7])},
    optional={k: JUNK for k in ("hidden", "depth", "layers", "dim", "channels", "embed_dim", "width",
                                "features", "sde")})


@settings(**{**dict(max_examples=40, derandomize=True), **DEEP}, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=SPEC, version=st.sampled_from([1, "1", None, 1.5]), command=st.sampled_from(["mix", "sample", "pc"]))
def test_junk_sidecars_are_refused_in_one_line(spec, version, command, workdir):
    from engine.store.checkpoints import FORMAT

    (workdir / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (workdir / "junk.json").write_text(json.dumps({"format": FORMAT, "version": version, "model": spec},
                                                  default=str))
    ckpt = str(workdir / "junk")
    argv = {"mix": ["mix", "--checkpoint", ckpt, "--particles", "5", "--steps", "2", "--levels", "2"],
            "pc": ["mix", "--sampler", "pc", "--checkpoint", ckpt, "--particles", "5", "--steps", "2"],
            "sample": ["sample", "--checkpoint", ckpt, "--n", "1", "--out", str(workdir / "g.png")]}[command]
    code, out, err, seconds = run_in_process(argv)
    assert_one_line_refusal(argv, code, out, err, seconds)


# -- end to end: a real shell -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["train-sde", "2d", "--out", "{tmp}/r", "--steps", "0"],
    ["nll", "--exact-score", "--means", "5,5;-5,-5", "--weights", "0.8,0.2", "--rtol", "nan"],
    ["mix", "--levels", "200000"],
])
def test_a_real_shell_sees_one_line(argv, tmp_path):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "engine", *argv], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert time.perf_counter() - start < 120

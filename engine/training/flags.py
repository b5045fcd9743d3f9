"""Training configs ↔ command-line flags, from ONE table: the fields of the config dataclass.

Every field of a frozen training config is the flag `--field-name` (underscores → dashes) unless
its `option(...)` metadata says otherwise: another flag name, a help text, choices, a `kind` for
tuple values ("points" '5,5;-5,-5', "numbers" '0.8,0.2', "ints" '16,32,64,128'), or `flag=None`
for a field that is not a flag. A bool field is a switch: `--x` when its default is False,
`--no-x` when it is True. Four functions read the table, so they cannot drift apart:

    add_config_arguments(parser, Config)   the argparse flags (defaults = the field defaults)
    config_from_args(Config, args)         parsed flags → Config (tuple values parsed)
    config_argv(config)                    Config → the flags that rebuild it (for background jobs)
    check_fields(config)                   every field's type and allowed range, one place

The allowed range of a number sits next to its field (`low`/`high`, `low_open`/`high_open` for an
open end); it is printed in --help and checked by `check_fields`, which every config's validate()
calls first. NaN and ±inf are refused for every float field; an int field refuses bools and
floats; `None` is allowed only where the field's type says `| None` (its help says what None
means). A bad value raises ConfigError with one sentence naming the flag and the range. Configs
that the pages build too (engine.lab, engine.samplers, engine.mnist.sampling) use the same
`option(...)`; their flag is `--field-name` as well.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing

from engine.targets import parse_numbers, parse_points


class ConfigError(ValueError):
    """A config value outside its allowed range: one sentence naming the flag."""


def option(default, help: str = "", *, flag: str | None = "", choices=None, kind: str | None = None,
           low=None, high=None, low_open: bool = False, high_open: bool = False, label: str = ""):
    """A config field with its command-line flag, allowed range and (for error sentences) a label
    in words, e.g. "learning rate" (see the module docstring)."""
    return dataclasses.field(default=default, metadata={
        "flag": flag, "help": help, "choices": choices, "kind": kind, "label": label,
        "low": low, "high": high, "low_open": low_open, "high_open": high_open})


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def allowed_range(f: dataclasses.Field) -> str:
    """'[1, 100000]', '(0, 1)', '≥ 0', '> 0' … of a field ('' when unbounded)."""
    low, high = f.metadata.get("low"), f.metadata.get("high")
    lo_open, hi_open = f.metadata.get("low_open"), f.metadata.get("high_open")
    if low is not None and high is not None:
        return f"{'(' if lo_open else '['}{_num(low)}, {_num(high)}{')' if hi_open else ']'}"
    if low is not None:
        return f"{'>' if lo_open else '≥'} {_num(low)}"
    if high is not None:
        return f"{'<' if hi_open else '≤'} {_num(high)}"
    return ""


def flag_name(f: dataclasses.Field, hint=None) -> str:
    """The field's command-line flag (also what a page's error names)."""
    flag = f.metadata.get("flag", "")
    if flag:
        return flag
    if hint is bool and f.default is True:
        return "--no-" + f.name.replace("_", "-")
    return "--" + f.name.replace("_", "-")


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    hints = {}
    for name, hint in typing.get_type_hints(cls).items():
        optional = False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = typing.get_args(hint)
            optional = type(None) in args
            hint = next(a for a in args if a is not type(None))
        hints[name] = (hint, optional)
    return hints


def _check_number(value, scalar, f, label: str) -> None:
    if scalar is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{label} must be a whole number; got {value!r}.")
    if scalar is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be a number; got {value!r}.")
        if not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number; got {value!r}.")
    low, high = f.metadata.get("low"), f.metadata.get("high")
    bad = ((low is not None and (value <= low if f.metadata.get("low_open") else value < low))
           or (high is not None and (value >= high if f.metadata.get("high_open") else value > high)))
    if bad:
        raise ConfigError(f"{label} must be {_phrase(f)}; got {value!r}.")


def _phrase(f: dataclasses.Field) -> str:
    """'positive', 'zero or positive', or 'in [1, 1000]' / '≥ 1' …"""
    low, high = f.metadata.get("low"), f.metadata.get("high")
    if low == 0 and high is None:
        return "positive" if f.metadata.get("low_open") else "zero or positive"
    rng = allowed_range(f)
    return f"in {rng}" if rng[0] in "[(" else rng


def check_fields(config) -> None:
    """ConfigError (one sentence naming the flag and the allowed range) for the first field whose
    value has the wrong type, is NaN/inf, or lies outside its range; tuples are checked per item."""
    hints = _hints(type(config))
    for f in dataclasses.fields(config):
        hint, optional = hints[f.name]
        value = getattr(config, f.name)
        words = f.metadata.get("label") or ""
        label = f"The {words} ({flag_name(f, hint)})" if words else flag_name(f, hint)
        if value is None:
            if optional:
                continue
            raise ConfigError(f"{label} needs a value.")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"Unknown {words or f.name.replace('_', ' ')} {value!r} "
                              f"({flag_name(f, hint)}); choose one of {', '.join(map(str, choices))}.")
        if hint in (int, float):
            _check_number(value, hint, f, label)
        elif typing.get_origin(hint) is tuple:
            args = typing.get_args(hint)
            item = args[0] if args else None
            if item in (int, float):
                if not isinstance(value, tuple):
                    raise ConfigError(f"{label} must be a list of numbers; got {value!r}.")
                for v in value:
                    _check_number(v, item, f, label)


def _parse_ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"Cannot read {what} from {text!r}; write them like 16,32,64,128.") from None


PARSE = {"points": lambda text, what: tuple(parse_points(text)),
         "numbers": lambda text, what: tuple(parse_numbers(text, what)),
         "ints": _parse_ints}
FORMAT = {"points": lambda v: ";".join(",".join(repr(float(c)) for c in p) for p in v),
          "numbers": lambda v: ",".join(repr(float(c)) for c in v),
          "ints": lambda v: ",".join(str(int(c)) for c in v)}


def _flags(cls) -> list[tuple[dataclasses.Field, str, type]]:
    """(field, flag, scalar type) for every field of cls that is a flag."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("flag", "") is None:
            continue
        hint = hints[f.name][0]          # "float | None" → float
        out.append((f, flag_name(f, hint), hint))
    return out


def help_text(f: dataclasses.Field, text: str | None = None) -> str:
    """The field's help (or `text`; else its label in words) with its allowed range: what --help
    shows (the CLI's formatter adds the default)."""
    text = (f.metadata.get("help", "") or f.metadata.get("label", "")) if text is None else text
    rng = allowed_range(f)
    return f"{text} (allowed: {rng})".strip() if rng else text


def field_help(cls, name: str, text: str | None = None) -> str:
    """help_text of the field `name` of cls (for commands whose flags are written by hand)."""
    return help_text(next(f for f in dataclasses.fields(cls) if f.name == name), text)


def add_config_arguments(parser, cls) -> None:
    for f, flag, hint in _flags(cls):
        text = help_text(f)
        kind = f.metadata.get("kind")
        if hint is bool:
            parser.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true",
                                help=text)
        elif kind:
            default = None if f.default is None else FORMAT[kind](f.default)
            parser.add_argument(flag, dest=f.name, default=default, help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=hint, default=f.default,
                                choices=f.metadata.get("choices"), help=text)


def config_from_args(cls, args):
    values = {}
    for f, flag, _ in _flags(cls):
        value = getattr(args, f.name)
        kind = f.metadata.get("kind")
        if kind and isinstance(value, str):
            value = PARSE[kind](value, flag.lstrip("-").replace("-", " "))
        values[f.name] = value
    return cls(**values)


def config_argv(config) -> list[str]:
    argv = []
    for f, flag, hint in _flags(type(config)):
        value = getattr(config, f.name)
        if hint is bool:
            if value != f.default:
                argv.append(flag)
        elif value is not None:
            kind = f.metadata.get("kind")
            text = FORMAT[kind](value) if kind else (repr(value) if hint is float else str(value))
            argv += [f"{flag}={text}"] if text.startswith("-") else [flag, text]  # '-5,…' is no flag
    return argv

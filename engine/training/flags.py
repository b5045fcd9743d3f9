"""Training configs ↔ command-line flags, from ONE table: the fields of the config dataclass.

Every field of a frozen training config is the flag `--field-name` (underscores → dashes) unless
its `option(...)` metadata says otherwise: another flag name, a help text, choices, a `kind` for
tuple values ("points" '5,5;-5,-5', "numbers" '0.8,0.2', "ints" '16,32,64,128'), or `flag=None`
for a field that is not a flag. A bool field is a switch: `--x` when its default is False,
`--no-x` when it is True. Three functions read the table, so they cannot drift apart:

    add_config_arguments(parser, Config)   the argparse flags (defaults = the field defaults)
    config_from_args(Config, args)         parsed flags → Config (tuple values parsed)
    config_argv(config)                    Config → the flags that rebuild it (for background jobs)
"""

from __future__ import annotations

import dataclasses
import types
import typing

from engine.targets import parse_numbers, parse_points


def option(default, help: str = "", *, flag: str | None = "", choices=None, kind: str | None = None):
    """A config field with its command-line flag (see the module docstring)."""
    return dataclasses.field(default=default, metadata={"flag": flag, "help": help,
                                                       "choices": choices, "kind": kind})


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
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        flag = f.metadata.get("flag", "")
        if flag is None:
            continue
        if not flag:
            flag = "--" + f.name.replace("_", "-")
            if hints[f.name] is bool and f.default is True:
                flag = "--no-" + f.name.replace("_", "-")
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):  # "float | None" → float
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out.append((f, flag, hint))
    return out


def add_config_arguments(parser, cls) -> None:
    for f, flag, hint in _flags(cls):
        help_text = f.metadata.get("help", "")
        kind = f.metadata.get("kind")
        if hint is bool:
            parser.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true",
                                help=help_text)
        elif kind:
            default = None if f.default is None else FORMAT[kind](f.default)
            parser.add_argument(flag, dest=f.name, default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=hint, default=f.default,
                                choices=f.metadata.get("choices"), help=help_text)


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

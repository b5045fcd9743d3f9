"""--help of every command and subcommand: each flag says what it does and shows its default."""

import argparse

import pytest

from engine.cli import main as cli


def _parsers():
    """(command words, parser) of every command and subcommand."""
    out = []

    def walk(parser, words):
        out.append((words, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])

    for command in cli.available_commands():
        parser, _ = cli._parser([command])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        walk(sub.choices[command], [command])
    return out


PARSERS = _parsers()


def _flags(parser):
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _words(help_text: str) -> str:
    """The help without the '(allowed: …)' range that flags.help_text adds."""
    i = help_text.rfind("(allowed: ")
    return (help_text[:i] if i >= 0 else help_text).strip()


@pytest.mark.parametrize("words,parser", PARSERS, ids=[" ".join(w) for w, _ in PARSERS])
def test_every_flag_has_help_and_shows_its_default(words, parser):
    formatter = parser._get_formatter()
    for action in _flags(parser):
        flag = action.option_strings[0]
        assert _words(action.help or ""), f"{' '.join(words)} {flag} has no help text"
        shown = formatter._expand_help(action)
        if action.default not in (None, "") and not isinstance(action.default, bool):
            assert f"default: {action.default}" in shown, f"{' '.join(words)} {flag}: {shown!r}"


def test_the_rendered_help_shows_defaults():
    text = next(p for w, p in PARSERS if w == ["train", ]).format_help()
    assert "(default: 6000)" in " ".join(text.split())          # --steps of train mnist

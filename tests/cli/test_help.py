"""Every command's --help: an example that uses only options the command has, the option sets listed, and flags
shown without a value placeholder."""

from __future__ import annotations

import io
import shlex
import sys

import pytest
import typer

from bertwise.cli.help_texts import CHOICES, EXAMPLES, tidy_help
from bertwise.cli.main import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def help_text(monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    from bertwise.cli.main import main

    out = io.StringIO()
    monkeypatch.setattr(sys, "argv", ["bertwise", *args, "--help"])
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("COLUMNS", "200")  # one option a line, so that what is asserted is not wrapped
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 0
    return out.getvalue()


def test_every_command_has_an_example() -> None:
    assert sorted(EXAMPLES) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_the_help_shows_the_examples_and_no_bool_placeholder(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    text = help_text(monkeypatch, name)
    assert "Examples:" in text
    for example in EXAMPLES[name]:
        assert example in text
    assert "<bool>" not in text


@pytest.mark.parametrize("name", COMMANDS)
def test_the_examples_use_only_options_the_command_has(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    known = {option for param in command.params for option in (*param.opts, *param.secondary_opts)}
    for example in EXAMPLES[name]:
        words = shlex.split(example.split("|")[-1])  # the bertwise part of a pipe
        assert words[:2] == ["bertwise", name]
        used = {word.split("=")[0] for word in words if word.startswith("--")}
        assert used <= known, f"{example}: {used - known} not among {name}'s options"


def test_option_sets_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    text = help_text(monkeypatch, "compare")
    for name in ("device", "precision", "priority", "protocol"):
        assert "|".join(CHOICES[name]) in text
    assert "<bool>" not in help_text(monkeypatch)  # the root: --version and --help


def test_tidying_keeps_what_a_command_declared() -> None:
    command = typer.main.get_command(app)
    predict = command.commands["predict"]  # type: ignore[attr-defined]
    source = next(param for param in predict.params if param.name == "source")
    tidy_help(command)
    tidy_help(command)  # twice: nothing doubles
    assert source.metavar == "INPUT"
    assert predict.epilog.count("Examples:") == 1

"""CLI conventions: --version, -h, completion, help on every option, root summaries equal to the
commands' docstrings, one --format everywhere, tables readable at 80 columns in a pipe, and
progress bars only on a terminal."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.core
from rich.cells import cell_len
from typer.testing import CliRunner

import joulecast
from joulecast.cli import common
from joulecast.cli.main import COMMANDS, app
from joulecast.hardware.spec import gpu_ids
from joulecast.models.registry import model_ids

EXE = shutil.which("joulecast") or str(Path(sys.executable).with_name("joulecast"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


@pytest.fixture(scope="module")
def root() -> typer.core.TyperGroup:
    """The whole command tree (every command module imported, as each command run does)."""
    for module in {m for m, _ in COMMANDS.values()}:
        importlib.import_module(f"joulecast.cli.{module}")
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return group


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, typer.core.TyperGroup):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def lookup(root: typer.core.TyperGroup, path: tuple[str, ...]) -> Any:
    command: Any = root
    for name in path:
        assert isinstance(command, typer.core.TyperGroup)
        command = command.commands[name]
    return command


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout == f"joulecast {joulecast.__version__}\n"


@pytest.mark.parametrize("args", [[], ["estimate"], ["sweep"], ["gpus"], ["mig"]])
def test_h_is_an_alias_of_help(args: list[str]) -> None:
    short, long = run(*args, "-h"), run(*args, "--help")
    assert short.returncode == 0 and short.stdout == long.stdout and "Usage" in short.stdout


def test_every_command_help_works(root: typer.core.TyperGroup) -> None:
    paths = list(walk(root))
    assert len(paths) > len(COMMANDS)
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_has_help_text(root: typer.core.TyperGroup, command: str) -> None:
    missing = [
        (" ".join(path), param.name)
        for path in walk(root.commands[command], (command,))
        for param in lookup(root, path).params
        if isinstance(param, typer.core.TyperOption) and not (param.help or "").strip()
    ]
    assert missing == []
    root_options = [p for p in root.params if isinstance(p, typer.core.TyperOption)]
    assert all((p.help or "").strip() for p in root_options)


def test_root_summaries_are_the_commands_docstrings(root: typer.core.TyperGroup) -> None:
    """COMMANDS (what `joulecast --help` lists without importing any command) agrees with each
    command's own docstring, first line."""
    for name, (_, summary) in COMMANDS.items():
        command = root.commands[name]
        callback_doc = (command.callback.__doc__ or "") if command.callback else ""
        own = (command.help or callback_doc).strip().splitlines()[0]
        assert own == summary, name
    listed = " ".join(run("--help", COLUMNS="400").stdout.split())
    for _, summary in COMMANDS.values():
        assert summary in listed


def test_shell_completion() -> None:
    script = run("--show-completion", "bash")
    assert script.returncode == 0 and "_JOULECAST_COMPLETE=complete_bash" in script.stdout
    env = {"_JOULECAST_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    options = run(**env, COMP_WORDS="joulecast estimate --gp")
    assert options.stdout.split() == ["--gpu", "--gpu-spec"]
    commands = run(**{**env, "COMP_CWORD": "1"}, COMP_WORDS="joulecast sw")
    assert commands.stdout.split() == ["sweep"]


def test_format_is_one_option_everywhere(root: typer.core.TyperGroup) -> None:
    for name in ("estimate", "sweep", "gpus", "models"):
        (fmt,) = [p for p in root.commands[name].params if p.name == "fmt"]
        assert fmt.opts == ["--format"]
        assert [str(c) for c in fmt.type.choices] == ["table", "json", "csv"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["gpus"], gpu_ids()),
        (["models"], model_ids()),
        (["estimate", "--model", "llama-3.1-8b", "--batch", "8", "--seq", "512"], ()),
        (["sweep", "--example", "--gpu", "h100-sxm", "--power-caps", "300,700"], ()),
    ],
)
def test_tables_fit_80_columns_in_a_pipe(args: list[str], ids: tuple[str, ...]) -> None:
    r = run(*args, COLUMNS="80")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    tokens = {word for line in lines for word in line.split()}
    assert set(ids) <= tokens  # never cut, folded or truncated
    assert "…" not in r.stdout


def test_progress_shows_only_on_a_terminal_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    with common.Steps(3, "sweeping") as steps:
        for label in "abc":
            steps.start(label)
            assert steps._progress is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with common.Steps(3, "sweeping") as steps:
        steps.start("a")
        assert steps._progress is None  # quick loops never show one
        monkeypatch.setattr(common, "PROGRESS_AFTER_S", 0.0)
        steps.start("b")
        assert steps._progress is not None and steps._progress.live.transient

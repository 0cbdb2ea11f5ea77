"""Entry point of the ``joulecast`` command.

Each command lives in its own module and registers itself on :data:`app`. Only the module of the
command being run is imported, so ``joulecast estimate`` never loads the calibration, MIG or
plotting code, and ``joulecast --help`` loads none of them: it lists :data:`COMMANDS`, whose
one-line summaries a test keeps equal to the commands' own docstrings.

User mistakes raise a :class:`~joulecast.errors.JoulecastError`; :func:`main` prints its
one-line message and exits 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from joulecast.errors import JoulecastError

app = typer.Typer(
    name="joulecast",
    help="Forecast time, power and energy of AI workloads on GPUs, without a GPU.",
    no_args_is_help=True,
    # --install-completion / --show-completion: typer imports its completion code anyway, so
    # offering them costs `joulecast --help` nothing measurable (benchmarks/bench_cli.py).
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

# command -> (module under joulecast.cli, one-line summary shown by `joulecast --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "estimate": (
        "estimate",
        "Estimate time, average power and energy of one forward pass (or decode step).",
    ),
    "serve": (
        "serve",
        "Serve an LLM on 1-8 GPUs: joules per token and request, ITL, TTFT, throughput.",
    ),
    "plan": (
        "plan",
        "Find the least-energy deployment (GPU, count, parallelism, batch, clock) within limits.",
    ),
    "fleet": (
        "fleet",
        "Place several models on a GPU inventory at least energy (mixed-integer program).",
    ),
    "diffusion": (
        "diffusion",
        "Generate images or videos on 1-8 GPUs: energy per image/video, latency, throughput.",
    ),
    "sweep": (
        "sweep",
        "Sweep SM clocks and power caps (and GPUs): time, power, energy and EDP of one pass.",
    ),
    "gpus": ("gpus", "List the GPUs joulecast knows, with their key figures."),
    "models": ("models", "List the models joulecast can build, with total and active parameters."),
    "mig": ("mig", "Split measured board power among MIG instances (per-tenant energy)."),
    "host": ("host", "The machine issuing the kernels: list the shipped hosts, or fit yours."),
    "measure": ("measure", "Measure time, energy and power on this GPU (command, model, kernels)."),
    "calibrate": (
        "calibrate",
        "Fit the time and power coefficients (and DVFS curves) from measurements.",
    ),
    "validate": (
        "calibrate",
        "Accuracy on every valid measured row: in-sample, leave-one-model-out, baseline, DVFS.",
    ),
}


# Commands with sub-commands: a bare `joulecast mig` shows their help screen.
GROUPS = ("mig", "host")


def _print_version(value: bool) -> None:
    if value:
        from joulecast import __version__

        typer.echo(f"joulecast {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Forecast time, power and energy of AI workloads on GPUs, without a GPU."""


def command_name(argv: Sequence[str]) -> str | None:
    """The sub-command named on a command line (the root takes no option with a value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def register(name: str | None) -> None:
    """Import the module of command ``name``; for anything else, list every command by its
    summary alone (root help, or click's "no such command" with the known names)."""
    if name in COMMANDS:
        importlib.import_module(f"joulecast.cli.{COMMANDS[name][0]}")
        return
    for command, (_, summary) in COMMANDS.items():
        app.command(command, help=summary)(_not_loaded)


def _not_loaded() -> None:  # pragma: no cover - listed in help, never run
    raise JoulecastError("internal error: command module not loaded")


def _wants_help(argv: Sequence[str]) -> bool:
    return not argv or "--help" in argv or "-h" in argv or command_name(argv) in (*GROUPS, None)


def _completion_words() -> list[str] | None:
    """The words being completed when a shell asks for completions (typer's scripts pass them
    in ``COMP_WORDS`` or ``_TYPER_COMPLETE_ARGS``), without the program name; else ``None``."""
    if "_JOULECAST_COMPLETE" not in os.environ:
        return None
    line = os.environ.get("_TYPER_COMPLETE_ARGS") or os.environ.get("COMP_WORDS") or ""
    return line.split()[1:]


def main() -> None:
    """Run the CLI; user errors become a one-line message and exit status 2."""
    argv = sys.argv[1:]
    # Completing `joulecast estimate --gp<TAB>` needs the estimate module's options.
    register(command_name(_completion_words() or argv))
    # Rich help screens load rich's Markdown machinery: only when a help screen may be shown.
    app.rich_markup_mode = "rich" if _wants_help(argv) else None
    try:
        code = app(args=argv, prog_name="joulecast", standalone_mode=False)
    except JoulecastError as exc:
        _fail(str(exc))
    except FileNotFoundError as exc:
        _fail(f"file not found: {exc.filename}")
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            # Rich help screens were printed when the error was made; plain ones are its text.
            text = exc.format_message()
            if text.strip():
                typer.echo(text)
            sys.exit(0)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        _fail(where + exc.format_message().strip().splitlines()[0], getattr(exc, "exit_code", 2))
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 2) -> None:
    line = " ".join(message.split("\n"))  # one line, whatever the message quotes
    typer.echo(f"error: {line}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    # Under `python -m joulecast.cli.main` this file runs as __main__, while the command modules
    # register on the importable joulecast.cli.main: run that one.
    from joulecast.cli.main import main as _main

    _main()

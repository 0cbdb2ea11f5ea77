"""Entry point of the ``joulecast`` command.

Each command lives in its own module and registers itself on :data:`app`. User mistakes raise a
:class:`~joulecast.errors.JoulecastError`; :func:`main` prints its one-line message and exits 2.
"""

from __future__ import annotations

import sys

import typer

from joulecast.errors import JoulecastError

app = typer.Typer(
    name="joulecast",
    help="Forecast time, power and energy of AI workloads on GPUs, without a GPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so that `import joulecast` stays light; each module adds its commands.
    from joulecast.cli import gpus  # noqa: F401

    for optional in ("estimate", "calibrate", "validate", "sweep", "models", "mig"):
        try:
            __import__(f"joulecast.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"joulecast.cli.{optional}":
                raise


@app.callback()
def _root() -> None:
    """Forecast time, power and energy of AI workloads on GPUs, without a GPU."""


def main() -> None:
    """Run the CLI; user errors become a one-line message and exit status 2."""
    _register()
    try:
        app()
    except JoulecastError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except FileNotFoundError as exc:
        typer.echo(f"error: file not found: {exc.filename}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

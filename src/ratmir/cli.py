"""The ``ratmir`` command line: thin wrappers that parse options and call the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    name="ratmir",
    help="Region Attention Transformer (RAT) for medical image restoration.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ratmir {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """Region Attention Transformer (RAT) for medical image restoration."""


@app.command()
def demo(
    task: Annotated[str, typer.Option(help="Task to demonstrate (only 'ct' so far).")] = "ct",
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo"),
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
) -> None:
    """Restore a real CT slice with a randomly initialised RAT (a smoke run, not a result)."""
    from .demo import run_demo

    report = run_demo(task=task, out=out, seed=seed)
    typer.echo(report.read_text())


def main() -> None:
    app()


if __name__ == "__main__":
    main()

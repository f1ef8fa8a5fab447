"""``ratmir models``: the pretrained models that ship in the package (list, show, package)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

models_app = typer.Typer(help="Pretrained models in the package: list them, show a model card, package a run.",
                         invoke_without_command=True)


@models_app.callback()
def _models(ctx: typer.Context) -> None:
    """List the packaged models (``ratmir models show NAME`` prints one's model card)."""
    if ctx.invoked_subcommand is None:
        list_command()


@models_app.command("list")
def list_command() -> None:
    """One line per packaged model: name, task, architecture, size, region backend, test score."""
    from .models.hub import packaged_models

    models = packaged_models()
    if not models:
        typer.echo("no packaged models are installed")
        return
    typer.echo(f"{'name':<16} {'task':<10} {'model':<7} {'params':>8} {'size':>8}  {'regions':<13} test split")
    for name, m in models.items():
        test = m.summary.get("test", {})
        score = (f"{test['convention']} {test['psnr']:.2f} dB (input {test['input_psnr']:.2f})"
                 if {"convention", "psnr", "input_psnr"} <= set(test) else "-")
        typer.echo(f"{name:<16} {m.task:<10} {m.architecture:<7} {m.parameters / 1e6:>7.2f}M "
                   f"{m.bytes / 2**20:>6.2f}MB  {m.regions_backend or '-':<13} {score}")
    typer.echo("model card: ratmir models show NAME; use: ratmir restore FILES --model NAME --out OUT")


@models_app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="A packaged model (see `ratmir models`).")]) -> None:
    """Print the model card of NAME (training data, recipe, budget, scores, intended use, limits)."""
    from .models.hub import model_card

    card = model_card(name)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(card))
    else:
        typer.echo(card, nl=not card.endswith("\n"))


@models_app.command("package")
def package_command(
    run: Annotated[Path, typer.Argument(help="The RUN folder of the model to package.")],
    name: Annotated[str, typer.Option(help="Its name in the package (e.g. ct).")],
    data: Annotated[Path, typer.Option(help="The dataset it was trained on (its test split is scored).")],
    baseline: Annotated[Optional[Path], typer.Option(help="RUN folder of the comparison model (scored paired).")]
    = None,
    baseline_name: Annotated[Optional[str], typer.Option(help="Package the comparison model too, under this name.")]
    = None,
    config: Annotated[Optional[Path], typer.Option(help="The config that retrains RUN (named in the card).")] = None,
    baseline_config: Annotated[Optional[Path], typer.Option(help="The config that retrains the baseline.")] = None,
    folder: Annotated[Optional[Path], typer.Option(help="Weights folder (default: the package's).")] = None,
    machine: Annotated[str, typer.Option(help="Where the runs trained, for the card (e.g. '2 CPU cores').")] = "",
    checkpoint: Annotated[str, typer.Option(help="Which weights of each run: 'final' (model.safetensors) or 'best' "
                                          "(checkpoints/best.pt, the highest validation PSNR).")] = "final",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """For maintainers: score RUN (and the baseline) on the test split, write the model card(s) and
    copy the weights into the package with their SHA-256."""
    from .engine.packaging import PackageRequest, package_run

    entries = package_run(PackageRequest(run=run, name=name, data=data, baseline=baseline,
                                         baseline_name=baseline_name, config=config,
                                         baseline_config=baseline_config, folder=folder, machine=machine,
                                         progress=progress, checkpoint=checkpoint))
    for entry in entries:
        typer.echo(f"packaged {entry.name}: {entry.bytes} bytes, sha256 {entry.sha256}")

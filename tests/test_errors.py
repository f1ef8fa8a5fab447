"""One error path for the command line (ratmir.errors + cli): every user error is one line on
stderr with the documented exit code, nothing is written or overwritten by a refused command,
and non-finite scores are counted wherever results are summarised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ratmir_testdata import write_tiny_ct_model
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.engine.evaluate import summary_lines
from ratmir.engine.stats import mean_std
from ratmir.errors import EXIT_FAILED, EXIT_USAGE, OutputExistsError, UsageError, describe
from ratmir.io import write_png

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")


def cli(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def assert_error(result, code: int, *fragments: str) -> str:
    """Exit ``code`` and exactly one 'Error: ...' line holding every fragment, no traceback."""
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def snapshot(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


# -- the mapping ---------------------------------------------------------------------------------

def test_describe_maps_exceptions_to_exit_codes() -> None:
    assert describe(UsageError("bad")) == (EXIT_USAGE, "bad")
    assert describe(OutputExistsError("there")) == (EXIT_USAGE, "there")
    assert describe(ValueError("x must be >= 1,\n  got 0")) == (EXIT_USAGE, "x must be >= 1, got 0")
    assert describe(FileNotFoundError(2, "No such file or directory", "a.png")) == (
        EXIT_USAGE, "[Errno 2] No such file or directory: 'a.png'")
    assert describe(PermissionError(13, "Permission denied", "in/c.dcm")) == (
        EXIT_USAGE, "[Errno 13] Permission denied: 'in/c.dcm'")
    code, line = describe(RuntimeError("boom"))
    assert code == EXIT_FAILED and line.startswith("internal error RuntimeError: boom") and "--debug" in line


def test_debug_switch_shows_the_traceback(tmp_path) -> None:
    assert_error(cli("demo", "--task", "mri", "--out", tmp_path / "d"), 2, "task must be one of", "'mri'")
    for result in (cli("--debug", "demo", "--task", "mri", "--out", tmp_path / "d"),
                   cli("demo", "--task", "mri", "--out", tmp_path / "d", env={"RATMIR_DEBUG": "1"})):
        assert isinstance(result.exception, ValueError) and "task must be one of" in str(result.exception)
    assert not (tmp_path / "d").exists()


def test_prepare_and_regions_errors_take_the_one_path(tmp_path) -> None:
    """prepare keeps its documented exit 1, regions exit 2; both show the traceback under --debug."""
    prepare = ("prepare", "ct", "--out", tmp_path / "p", "--val-fraction", "0.9")
    regions = ("regions", tmp_path / "nothing-here", "--out", tmp_path / "r", "--backend", "grid", "--workers", "0")
    assert_error(cli(*prepare), 1, "val_fraction")
    assert_error(cli(*regions), 2, "workers must be >= 1")
    assert isinstance(cli("--debug", *prepare).exception.__cause__, ValueError)
    assert isinstance(cli("--debug", *regions).exception, ValueError)
    assert not (tmp_path / "p").exists() and not (tmp_path / "r").exists()


# -- train: the whole config is checked before RUN is written ----------------------------------

@pytest.mark.parametrize("override, fragments", [
    ("model.name=ratt", ("model.name must be one of", "got 'ratt'", "did you mean 'rat'")),
    ("model.options.widht=8", ("unknown key 'model.options.widht'", "did you mean 'width'")),
    ("model.options.width=0", ("model.options for 'rat'", "width")),
    ("data.val_split=valid", ("data.val_split is 'valid'", "split must be one of ['test', 'train', 'val']")),
    ("data.patch_size=64", ("data.patch_size is 64", "is 32x32")),
    ("data.batch_size=0", ("data.batch_size must be >= 1, got 0",)),
    ("train.iterations=[1", ("override 'train.iterations=[1'", "is not valid YAML")),
    ("train.device=gpu", ("train.device must be 'auto' or a torch device", "got 'gpu'")),
])
def test_train_config_errors_write_nothing(tiny_dataset, tmp_path, override, fragments) -> None:
    run = tmp_path / "run"
    result = cli("train", SMOKE, "--out", run, "--set", f"data.root={tiny_dataset}", "--set", override,
                 "--no-progress")
    assert_error(result, 2, *fragments)
    assert not run.exists()


@NO_CUDA
def test_train_on_cuda_without_cuda(tiny_dataset, tmp_path) -> None:
    result = cli("train", SMOKE, "--out", tmp_path / "run", "--set", f"data.root={tiny_dataset}",
                 "--set", "train.device=cuda")
    assert_error(result, 2, "train.device is 'cuda' but CUDA is not available")
    assert not (tmp_path / "run").exists()


def test_corrected_rerun_needs_no_force(tiny_dataset, tmp_path) -> None:
    args = ["train", SMOKE, "--out", tmp_path / "run", "--set", f"data.root={tiny_dataset}", "--no-progress",
            "--set", "train.iterations=2", "--set", "train.val_every=2", "--set", "train.checkpoint_every=2"]
    assert_error(cli(*args, "--set", "data.val_split=holdout"), 2, "data.val_split is 'holdout'")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    before = snapshot(tmp_path / "run")
    # a different config on the finished RUN: refused, RUN untouched
    assert_error(cli(*args, "--set", "train.seed=3"), 2, "holds a run with a different config",
                 "train.seed: 0 -> 3", "--force")
    assert snapshot(tmp_path / "run") == before


# -- restore ---------------------------------------------------------------------------------------

@pytest.fixture()
def png_inputs(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_png(tmp_path / "in" / f"{name}.png", rng.integers(0, 4000, (32, 32), dtype=np.uint16))
    return tmp_path / "in"


def _restore(inputs: Path, model: Path, out: Path, *extra: object):
    return cli("restore", inputs, "--model", model, "--out", out, "--regions", "grid", *extra)


def test_restore_refuses_existing_outputs(png_inputs, tmp_path) -> None:
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    out = tmp_path / "out"
    assert _restore(png_inputs, model, out).exit_code == 0
    before, inputs = snapshot(out), snapshot(png_inputs)
    assert sorted(p.name for p in before) == [".ratmir-restore.json", "a.png", "b.png"]  # outputs and manifest
    other = write_tiny_ct_model(tmp_path / "other.safetensors", seed=1)
    assert_error(_restore(png_inputs, other, out), 2, "2 output file(s) already exist", str(out / "a.png"),
                 "--overwrite")
    assert snapshot(out) == before and snapshot(png_inputs) == inputs
    result = _restore(png_inputs, other, out, "--overwrite")
    assert result.exit_code == 0 and "2 written, 0 failed" in result.output, result.output
    assert snapshot(out) != before and snapshot(png_inputs) == inputs


def test_restore_usage_errors(png_inputs, tmp_path) -> None:
    model = write_tiny_ct_model(tmp_path / "model.safetensors")
    (tmp_path / "empty").mkdir()
    assert_error(_restore(tmp_path / "empty", model, tmp_path / "o1"), 2, "no images found in", "expected DICOM")
    afile = tmp_path / "afile"
    afile.write_bytes(b"keep me")
    assert_error(_restore(png_inputs, model, afile), 2, f"--out {afile} is a file", "expected a folder")
    assert afile.read_bytes() == b"keep me"
    assert_error(_restore(png_inputs, model, tmp_path / "o2", "--batch-size", "0"), 2,
                 "batch_size must be >= 1, got 0")
    assert_error(_restore(png_inputs, model, tmp_path / "o3", "--tile", "32", "--overlap", "32"), 2,
                 "overlap must be smaller than tile (32), got 32")
    assert_error(_restore(png_inputs, model, tmp_path / "o4", "--device", "gpu"), 2,
                 "device must be a torch device", "got 'gpu'")
    assert_error(_restore(png_inputs, tmp_path / "missing.safetensors", tmp_path / "o5"), 2, "no model weights at")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


@NO_CUDA
def test_restore_and_evaluate_on_cuda_without_cuda(png_inputs, tiny_dataset, tmp_path) -> None:
    model = write_tiny_ct_model(tmp_path / "run" / "model.safetensors")
    assert_error(_restore(png_inputs, model, tmp_path / "o", "--device", "cuda"), 2,
                 "device is 'cuda' but CUDA is not available")
    assert_error(cli("evaluate", tmp_path / "run", "--data", tiny_dataset, "--device", "cuda"), 2,
                 "device is 'cuda' but CUDA is not available")
    assert not (tmp_path / "o").exists() and not (tmp_path / "run" / "evaluation").exists()


# -- evaluate and report -------------------------------------------------------------------------

def test_evaluate_refuses_to_overwrite_and_leaves_no_stale_file(tiny_dataset, tmp_path) -> None:
    write_tiny_ct_model(tmp_path / "run" / "model.safetensors")
    args = ["evaluate", tmp_path / "run", "--data", tiny_dataset, "--tile", "0", "--figures", "1"]
    assert cli(*args, "--region-metrics").exit_code == 0
    evaluation = tmp_path / "run" / "evaluation"
    before = snapshot(evaluation)
    assert {p.name for p in before} == {"per_image.csv", "regions.csv", "summary.json", "test00.png"}
    assert_error(cli(*args), 2, f"{evaluation} already holds figures, per_image.csv, regions.csv", "--overwrite")
    assert snapshot(evaluation) == before
    assert_error(cli(*args, "--figures", "-1"), 2, "figures must be >= 0, got -1")
    result = cli(*args, "--overwrite", "--figures", "0")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in evaluation.iterdir()) == ["per_image.csv", "summary.json"]  # no stale files


def test_nonfinite_scores_are_counted_and_shown(tiny_dataset, tmp_path) -> None:
    # an LQ image equal to its HQ image: the input's PSNR is +inf for that image
    lq, hq = (tiny_dataset / "test" / kind / "test00.tiff" for kind in ("lq", "hq"))
    lq.write_bytes(hq.read_bytes())
    write_tiny_ct_model(tmp_path / "run" / "model.safetensors")
    result = cli("evaluate", tmp_path / "run", "--data", tiny_dataset, "--tile", "0", "--figures", "0")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "evaluation" / "summary.json").read_text())
    stats = summary["results"]["input"]["ct_window"]["psnr"]
    assert stats["n"] == 2 and stats["nonfinite"] == 1 and np.isfinite(stats["mean"]) and stats["std"] == 0.0
    assert summary["results"]["model"]["ct_window"]["psnr"]["nonfinite"] == 0
    assert "1 of 2 PSNR values non-finite, not in mean/std" in result.output
    report = cli("report", tmp_path / "run", "--out", tmp_path / "report")
    assert report.exit_code == 0, report.output
    assert "(1 non-finite)" in report.output and "count in the number of images but not in mean" in report.output
    csv_text = (tmp_path / "report" / "report.csv").read_text()
    before = snapshot(tmp_path / "report")
    assert_error(cli("report", tmp_path / "run", "--out", tmp_path / "report"), 2,
                 f"{tmp_path / 'report'} already holds a report (report.md, report.csv, psnr.png)", "--overwrite")
    assert snapshot(tmp_path / "report") == before
    assert cli("report", tmp_path / "run", "--out", tmp_path / "report", "--overwrite").exit_code == 0
    assert "psnr_nonfinite" in csv_text.splitlines()[0]


def test_mean_std_counts_nonfinite() -> None:
    stats = mean_std([1.0, 3.0, float("inf"), float("nan")])
    assert stats == {"mean": 2.0, "std": 1.0, "n": 4, "nonfinite": 2}
    empty = mean_std([float("inf")])
    assert np.isnan(empty["mean"]) and empty["n"] == 1 and empty["nonfinite"] == 1
    line = summary_lines({"results": {"model": {"c": {"psnr": stats, "ssim": mean_std([0.5, 0.5])}}}})[0]
    assert line == " model: c 2.00±1.00 dB / 0.5000 [2 of 4 PSNR values non-finite, not in mean/std]"

"""The demo: one folder per task under one parent, resumable, refusing folders made otherwise,
and one index page over the tasks (tiny models and budgets; the real demo trains longer)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.demo import DEMO_FILE, DemoConfig, DemoFolderError, check_demo_folder, demo_settings, run_demo, write_index
from ratmir.demo_report import render_index, render_report, task_result

TINY_MODELS = {
    "rat": {"width": 8, "enc_blocks": [1], "dec_blocks": [1], "middle_layers": 1, "layers_per_group": 1,
            "num_heads": 2},
    "dncnn": {"features": 8, "depth": 3},
    "redcnn": {"features": 8},
}


def _tiny(task: str, out, **kw) -> DemoConfig:
    kw = {"iterations": 2, "limit": 1, "patch_size": 32, "batch_size": 2, "progress": False, **kw}
    return DemoConfig(task=task, out=out, models=TINY_MODELS, **kw)


def _snapshot(folder) -> dict[str, tuple[str, int, int]]:
    """Every file under ``folder``: content hash, mtime (ns) and mode."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns,
                                         p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # three tiny demos: ~20 s on 2 idle cores
def test_two_tasks_in_one_parent_do_not_touch_each_other(tmp_path) -> None:
    pet = run_demo(_tiny("pet", tmp_path))
    assert pet == tmp_path / "pet" / "report.md"
    before = _snapshot(tmp_path / "pet")
    assert "report.md" in before and "data/dataset.json" in before and "runs/rat/model.safetensors" in before

    pathology = run_demo(_tiny("pathology", tmp_path))
    assert pathology == tmp_path / "pathology" / "report.md" and pet.is_file()
    assert _snapshot(tmp_path / "pet") == before  # not a byte, mtime or mode changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.md", "pathology", "pet"]

    for task, report in (("pet", pet), ("pathology", pathology)):
        text = report.read_text()
        assert f"# ratmir demo: {task}" in text and "| rat |" in text and "| dncnn |" in text
        assert "1 train / 1 val / 1 test images" in text and "## Verdict" in text and "| total |" in text
    index = (tmp_path / "index.md").read_text()
    assert "[pet](pet/report.md)" in index and "[pathology](pathology/report.md)" in index
    assert "| ct | not run yet (`make demo TASK=ct`)" in index
    links = [line.split("](", 1)[1].rstrip(")") for line in index.splitlines() if line.startswith("![")]
    assert {link.split("/")[0] for link in links} == {"pet", "pathology"}
    assert all((tmp_path / link).is_file() for link in links)  # figure links resolve from index.md

    # rerun with the same settings: every stage resumes, the times of the earlier run are kept
    run_demo(_tiny("pet", tmp_path))
    text = pet.read_text()
    assert "| prepare |" in text and "done by an earlier run" in text
    # other settings: refused in one line before anything is written
    before = _snapshot(tmp_path / "pet")
    with pytest.raises(DemoFolderError, match=r"limit: 1 -> 2") as err:
        run_demo(_tiny("pet", tmp_path, limit=2))
    assert "\n" not in str(err.value)
    assert _snapshot(tmp_path / "pet") == before


def test_cli_reports_a_folder_made_otherwise_in_one_line(tmp_path) -> None:
    made = _tiny("pet", tmp_path, iterations=3)
    (tmp_path / "pet").mkdir()
    (tmp_path / "pet" / DEMO_FILE).write_text(json.dumps(demo_settings(made)))
    result = CliRunner().invoke(app, ["demo", "--task", "pet", "--out", str(tmp_path), "--iterations", "2"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "iterations: 3 -> 2" in lines[0]
    assert "Traceback" not in result.output


def test_all_checks_every_folder_before_running(tmp_path) -> None:
    (tmp_path / "pathology").mkdir(parents=True)
    (tmp_path / "pathology" / "notes.txt").write_text("someone else's")
    result = CliRunner().invoke(app, ["demo", "--task", "all", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is not a demo folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pathology"]  # ct was not started


def test_other_version_and_other_dataset_are_refused(tmp_path) -> None:
    config = _tiny("pet", tmp_path)
    folder = tmp_path / "pet"
    folder.mkdir()
    (folder / DEMO_FILE).write_text(json.dumps({**demo_settings(config), "ratmir_version": "0.0.1"}))
    with pytest.raises(DemoFolderError, match=r"ratmir_version: '0.0.1' ->"):
        check_demo_folder(config)
    # a matching stamp but a dataset prepared with another seed (e.g. copied in by hand)
    (folder / DEMO_FILE).write_text(json.dumps(demo_settings(config)))
    assert check_demo_folder(config) is True
    (folder / "data").mkdir()
    (folder / "data" / "dataset.json").write_text(json.dumps({"task": "pet", "limit": 1, "seed": 7,
                                                              "ct_noise_hu": None}))
    with pytest.raises(DemoFolderError, match=r"seed: 7 -> 0"):
        run_demo(config)
    assert check_demo_folder(replace(config, task="ct")) is False  # another task: its own, new folder


def test_index_and_split_sizes_are_generic(tmp_path) -> None:
    assert "not run yet" in write_index(tmp_path).read_text()
    manifest = {"splits": {"train": ["a", "b"], "val": ["c"], "test": ["d"]}, "sources": [], "missing_sources": []}
    rows = [{"method": m, "convention": "pet", "psnr_mean": p, "psnr_std": 0.0, "ssim_mean": 0.5, "ssim_std": 0.0}
            for m, p in (("input (LQ)", 20.0), ("rat", 21.0), ("dncnn", 22.0))]
    result = task_result(settings=demo_settings(_tiny("pet", tmp_path)), manifest=manifest, data=tmp_path / "d",
                         rows=rows, baseline="dncnn", timings=[("prepare", 1.0, "")], figures=[], restored=[])
    assert result["dataset"]["splits"] == {"train": 2, "val": 1, "test": 1}
    assert "the baseline (dncnn) wins" in result["verdict"][1]
    index = render_index({"ct": None, "pet": result})
    assert "| [pet](pet/report.md) | 2 train / 1 val / 1 test | 2 | +1.00 dB PSNR, +0.0000 SSIM | 1 |" in index


def test_earlier_flat_layout_is_named_not_touched(tmp_path) -> None:
    from ratmir.demo import earlier_layout

    (tmp_path / "report.md").write_text("old demo")
    (tmp_path / "data-ct").mkdir()
    (tmp_path / "ct").mkdir()  # a task folder of this layout is not a leftover
    assert [p.name for p in earlier_layout(tmp_path)] == ["data-ct", "report.md"]
    (tmp_path / "pet").mkdir()
    (tmp_path / "pet" / DEMO_FILE).write_text(json.dumps(demo_settings(_tiny("pet", tmp_path, seed=3))))
    result = CliRunner().invoke(app, ["demo", "--task", "pet", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Note: data-ct, report.md" in result.output and "seed: 3 -> 0" in result.output
    assert (tmp_path / "report.md").read_text() == "old demo"


def test_report_table_counts_nonfinite_scores(tmp_path) -> None:
    manifest = {"splits": {"train": ["a"], "val": ["b"], "test": ["c", "d"]}, "sources": [], "missing_sources": []}
    rows = [{"method": m, "convention": "pet", "psnr_mean": p, "psnr_std": 0.5, "ssim_mean": 0.5, "ssim_std": 0.0,
             "psnr_nonfinite": k, "ssim_nonfinite": 0} for m, p, k in (("input (LQ)", 20.0, 0), ("rat", 21.0, 1))]
    result = task_result(settings=demo_settings(_tiny("pet", tmp_path)), manifest=manifest, data=tmp_path / "d",
                         rows=rows, baseline="dncnn", timings=[("prepare", 1.0, "")], figures=[], restored=[])
    report = render_report(result)
    assert "| input (LQ) | pet | 20.00 ± 0.50 | 0.5000 ± 0.0000 |" in report
    assert "| rat | pet | 21.00 ± 0.50 (1 non-finite) | 0.5000 ± 0.0000 |" in report


def test_figures_are_comparison_figures(tiny_dataset, tmp_path) -> None:
    from ratmir.demo import comparison_figures
    from ratmir_testdata import write_tiny_ct_model

    weights = {name: write_tiny_ct_model(tmp_path / "runs" / name / "model.safetensors", seed=seed)
               for seed, name in enumerate(("rat", "redcnn"))}
    paths = comparison_figures(data=tiny_dataset, weights=weights, folder=tmp_path / "figures", task="ct", count=5)
    assert [p.name for p in paths] == ["test00.png", "test01.png"]  # every test image when fewer than count
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_demo_trains_with_the_short_budget_recipe(tmp_path) -> None:
    """Adam (0.9, 0.999) and a warm-up (benchmarks/recipes.py), capped at a quarter of a short run,
    stated in the experiment and recorded in demo.json's settings."""
    from ratmir.demo import _experiment

    config = DemoConfig(task="ct", out=tmp_path)
    optim = _experiment(config, data=tmp_path, model="rat").optim
    assert optim.betas == (0.9, 0.999) and optim.warmup == 60 and optim.lr == 1e-3
    assert demo_settings(config)["warmup"] == 60 and demo_settings(config)["betas"] == [0.9, 0.999]
    assert demo_settings(config)["regions_backend"] == "medsam"  # as the packaged models, not prepare's default
    short = DemoConfig(task="ct", out=tmp_path, iterations=100)
    assert _experiment(short, data=tmp_path, model="rat").optim.warmup == 25
    assert _experiment(DemoConfig(task="ct", out=tmp_path, warmup=0), data=tmp_path, model="rat").optim.warmup == 0
    assert _experiment(config, data=tmp_path, model="redcnn").optim.warmup == 0  # the baselines: no warm-up

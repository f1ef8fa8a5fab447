from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ratmir.cli import app
from ratmir.engine import ConfigError
from ratmir.engine.study import run_study
from ratmir.engine.study_spec import load_study

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["train.iterations=4", "train.val_every=4", "train.checkpoint_every=2", "train.log_every=2"]


def write_spec(folder: Path, data_root: Path, **extra) -> Path:
    spec = {
        "name": "tiny", "seeds": [0, 1], "reference": "rat",
        "datasets": {"tiny": {"root": str(data_root)}},
        "common": TINY,
        "experiments": [
            {"name": "rat", "config": str(CONFIGS / "smoke.yaml"), "dataset": "tiny",
             "region_sources": ["dataset", "none", "shuffled"]},
            {"name": "dncnn", "config": str(CONFIGS / "smoke.yaml"), "dataset": "tiny",
             "set": ["model.name=dncnn", "model.options={features: 4, depth: 3}"]},
        ],
        "evaluate": {"tile": 0, "max_images": 2},
        "report": {"resamples": 200, "figures": 1},
        **extra,
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for folder in ("runs", "units") for p in
            (out / folder).rglob("*") if p.is_file() and p.suffix in (".safetensors", ".pt", ".json", ".csv")}


def test_jobs_take_units_from_one_queue(tmp_path) -> None:
    """--jobs runs each unit once, in worker processes that take the next unit when free; a shard's
    jobs only take that shard's units, and the run that finds every unit finished writes the report."""
    from ratmir_testdata import write_tiny_dataset

    spec = write_spec(tmp_path, write_tiny_dataset(tmp_path / "data", test=2), seeds=[0, 1, 2])
    out = tmp_path / "study"
    first = run_study(spec, out=out, shard=(0, 2), jobs=2, progress=False)
    assert sorted(first.ran) == ["rat/seed0", "rat/seed1", "rat/seed2"] and not first.failed  # seed-major units
    assert first.report is None and len(first.missing) == 3
    second = run_study(spec, out=out, jobs=2, progress=False)
    assert sorted(second.ran) == ["dncnn/seed0", "dncnn/seed1", "dncnn/seed2"]
    assert sorted(second.skipped) == sorted(first.ran) and second.report is not None and not second.missing
    # the study grows by an experiment: only its units train, and the report has it
    grown = yaml.safe_load(spec.read_text())
    grown["experiments"].append({**grown["experiments"][1], "name": "dncnn_wide",
                                 "set": ["model.name=dncnn", "model.options={features: 6, depth: 3}"]})
    spec.write_text(yaml.safe_dump(grown))
    third = run_study(spec, out=out, jobs=2, progress=False)
    assert sorted(third.ran) == ["dncnn_wide/seed0", "dncnn_wide/seed1", "dncnn_wide/seed2"]
    assert len(third.skipped) == 6 and "| dncnn_wide − rat |" in third.report.read_text()


def test_a_study_folder_grows_but_refuses_changed_parts(tmp_path) -> None:
    """New experiment, dataset or seed names join a study folder; a changed definition of a
    recorded one, or of the shared settings, is refused naming it; a record that holds only the
    whole-spec fingerprint is upgraded when the spec is the same."""
    from ratmir.engine.study import _check_study_folder

    out = tmp_path / "study"
    out.mkdir()
    spec = write_spec(tmp_path, tmp_path / "data")

    def check(path: Path) -> None:
        _check_study_folder(load_study(path, out=out), out)

    # a record made before the parts were kept: upgraded, as the spec is the same
    (out / "study.json").write_text(json.dumps({"spec": "x", "fingerprint": load_study(spec, out=out).fingerprint(out=out)}))
    check(spec)
    record = json.loads((out / "study.json").read_text())
    assert set(record["experiments"]) == {"rat", "dncnn"} and record["seeds"] == [0, 1]
    base = yaml.safe_load(spec.read_text())

    def variant(name: str, change) -> Path:
        data = yaml.safe_load(yaml.safe_dump(base))
        change(data)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    grown = variant("grown", lambda d: (d["experiments"].append({**d["experiments"][1], "name": "dncnn2"}),
                                        d.update(seeds=[0, 1, 2])))
    check(grown)
    record = json.loads((out / "study.json").read_text())
    assert set(record["experiments"]) == {"rat", "dncnn", "dncnn2"} and record["seeds"] == [0, 1, 2]
    check(spec)  # the original spec, a part of the grown study, still runs here
    assert set(json.loads((out / "study.json").read_text())["experiments"]) == {"rat", "dncnn", "dncnn2"}
    for name, change, named in (
        ("changed_arm", lambda d: d["experiments"][1]["set"].append("optim.lr=1.0e-4"), "experiment 'dncnn'"),
        ("changed_common", lambda d: d["common"].append("optim.lr=1.0e-4"), "the common settings"),
        ("changed_data", lambda d: d["datasets"]["tiny"].update(root=str(tmp_path / "other")), "dataset 'tiny'"),
    ):
        with pytest.raises(ConfigError, match=named):
            check(variant(name, change))
    assert set(json.loads((out / "study.json").read_text())["experiments"]) == {"rat", "dncnn", "dncnn2"}
    # a whole-spec record of another spec is refused as before
    (out / "study.json").write_text(json.dumps({"spec": "other.yaml", "fingerprint": "x"}))
    with pytest.raises(ConfigError, match="different spec"):
        check(spec)


@pytest.mark.slow  # ~40 s on 2 busy cores: 7 tiny trainings, 13 evaluations, 4 reports
def test_tiny_study_end_to_end_and_resume(tmp_path, monkeypatch) -> None:
    from ratmir_testdata import write_tiny_dataset

    spec = write_spec(tmp_path, write_tiny_dataset(tmp_path / "data", test=3))  # 2 of 3 test images scored
    out = tmp_path / "study"
    # two shards, as two machines would run them: the report comes with the last one
    first = run_study(spec, out=out, shard=(0, 2), progress=False)
    assert first.ran == ["rat/seed0", "rat/seed1"] and first.report is None
    assert first.missing == ["dncnn/seed0", "dncnn/seed1"]
    second = run_study(spec, out=out, shard=(1, 2), progress=False)
    assert second.ran == ["dncnn/seed0", "dncnn/seed1"] and second.report is not None

    report = out / "report"
    summary = list(csv.DictReader(open(report / "summary.csv")))
    # rat, dncnn and the input with the dataset's maps + rat with 2 other sources, x 3 CT conventions
    assert len(summary) == (3 + 2) * 3
    assert {(r["method"], r["region_source"]) for r in summary} == {
        ("rat", "dataset"), ("rat", "none"), ("rat", "shuffled"), ("dncnn", "dataset"), ("input (LQ)", "dataset")}
    assert all(r["seeds"] == "2" and r["images"] == "2" for r in summary)
    scored = {r["name"] for r in csv.DictReader(open(out / "units" / "rat" / "seed0" / "evaluation" / "none" /
                                                       "per_image.csv"))}
    assert scored == {"test00", "test02"}  # evenly spaced through the split
    paired = list(csv.DictReader(open(report / "paired.csv")))
    # (dncnn, input) vs rat + (none, shuffled) vs dataset maps, x 2 metrics x 3 conventions
    assert len(paired) == 4 * 2 * 3
    row = next(r for r in paired if r["method"] == "dncnn" and r["metric"] == "psnr" and r["convention"] == "ct_full")
    assert float(row["ci_low"]) <= float(row["mean_diff"]) <= float(row["ci_high"]) and row["resamples"] == "200"
    text = (report / "report.md").read_text()
    assert "| dncnn − rat |" in text and "| rat @ none − rat @ dataset |" in text and "differences.png" in text
    # every setting each arm trained with, read from its committed unit file
    assert "| rat | rat {width: 8," in text and "| 0.9, 0.999 |" in text and "4 it., patch 32, batch 2" in text
    # the layer scales each RAT left training with (dncnn has none: no row)
    scales = text.split("## Layer scales after training")[1]
    assert "| rat | 0.0" in scales and "| dncnn |" not in scales
    record = json.loads((out / "units" / "rat" / "seed0" / "study_train.json").read_text())
    assert record["layer_scales"]["lambda_ra/middle0"] > 0
    assert (report / "differences.png").stat().st_size > 0 and len(list((report / "figures").glob("*.png"))) == 1

    # a rerun touches nothing
    before = mtimes(out)
    again = run_study(spec, out=out, progress=False)
    assert again.ran == [] and len(again.skipped) == 4 and mtimes(out) == before

    # a deleted unit is retrained, alone
    import shutil

    shutil.rmtree(out / "units" / "dncnn" / "seed1")
    shutil.rmtree(out / "runs" / "dncnn" / "seed1")
    again = run_study(spec, out=out, progress=False)
    assert again.ran == ["dncnn/seed1"] and again.report is not None
    after = mtimes(out)
    mine = ("runs/dncnn/seed1", "units/dncnn/seed1")
    assert {k: v for k, v in after.items() if not k.startswith(mine)} == \
        {k: v for k, v in before.items() if not k.startswith(mine)}

    # an interrupted training resumes from its last checkpoint
    from ratmir.engine import trainer

    shutil.rmtree(out / "runs" / "rat" / "seed1")
    shutil.rmtree(out / "units" / "rat" / "seed1")
    real_save = trainer.atomic_save

    def crash_after_2(obj, path):
        real_save(obj, path)
        if Path(path).name == "last.pt" and obj["iteration"] == 2:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(trainer, "atomic_save", crash_after_2)
    crashed = run_study(spec, out=out, progress=False)  # the other units are checked, then it goes on
    assert not crashed.ok and crashed.failed[0].startswith("rat/seed1: RuntimeError: simulated crash")
    assert crashed.report is None and crashed.missing == ["rat/seed1"]
    assert "simulated crash" in (out / "runs" / "rat" / "seed1" / "study_error.txt").read_text()
    monkeypatch.setattr(trainer, "atomic_save", real_save)
    again = run_study(spec, out=out, progress=False)
    assert again.ran == ["rat/seed1"]
    done = json.loads((out / "units" / "rat" / "seed1" / "study_train.json").read_text())
    assert done["resumed_from"] == 2 and done["iterations"] == 4


@pytest.mark.slow  # ~30 s: 6 tiny trainings, 9 evaluations
def test_fresh_clone_with_committed_units_skips_them(tmp_path) -> None:
    """Only study.json, units/ and report/ are committed: a clone on a new machine (no runs/)
    skips every finished unit, rewrites the report from the unit files, and trains only the
    units that are not committed (all of a half-evaluated unit's sources are scored again, from
    the weights trained here); with every unit committed it needs neither weights nor datasets."""
    import shutil

    from ratmir_testdata import write_tiny_dataset

    data = write_tiny_dataset(tmp_path / "data", test=2)
    spec = write_spec(tmp_path, data)
    out = tmp_path / "machine1" / "study"
    first = run_study(spec, out=out, progress=False)
    assert first.report is not None and len(first.ran) == 4
    figures = sorted(p.name for p in (out / "report" / "figures").glob("*.png"))
    clone = tmp_path / "machine2" / "study"
    clone.mkdir(parents=True)
    for kept in ("study.json", "units", "report"):  # what git carries
        (shutil.copytree if (out / kept).is_dir() else shutil.copy)(out / kept, clone / kept)
    shutil.rmtree(clone / "units" / "dncnn" / "seed1")  # a unit another machine had not finished
    shutil.rmtree(clone / "units" / "rat" / "seed1" / "evaluation" / "none")  # one evaluated only in part
    scored = clone / "units" / "rat" / "seed1" / "evaluation" / "dataset" / "summary.json"
    scored.write_text(json.dumps({**json.loads(scored.read_text()), "stale": True}))
    again = run_study(spec, out=clone, progress=False)
    assert sorted(again.ran) == ["dncnn/seed1", "rat/seed1"] and len(again.skipped) == 2 and again.report
    assert not (clone / "runs" / "rat" / "seed0").exists()  # finished units were not retrained
    assert "stale" not in json.loads(scored.read_text())  # scored again, from the weights trained here
    text = (clone / "report" / "report.md").read_text()
    assert "| dncnn − rat |" in text
    # the first machine's figures are kept: this one has no weights of the finished units to draw them
    assert sorted(p.name for p in (clone / "report" / "figures").glob("*.png")) == figures
    old = {r["method"]: r for r in csv.DictReader(open(out / "report" / "summary.csv"))
           if r["region_source"] == "dataset" and r["convention"] == "ct_full"}
    new = {r["method"]: r for r in csv.DictReader(open(clone / "report" / "summary.csv"))
           if r["region_source"] == "dataset" and r["convention"] == "ct_full"}
    assert new["rat"]["psnr_mean"] == old["rat"]["psnr_mean"]  # deterministic CPU training, same scores

    # every unit committed: a third machine rewrites the report without weights or datasets
    third = tmp_path / "machine3" / "study"
    third.mkdir(parents=True)
    for kept in ("study.json", "units", "report"):
        (shutil.copytree if (clone / kept).is_dir() else shutil.copy)(clone / kept, third / kept)
    (third / "report" / "report.md").unlink()
    data.rename(tmp_path / "elsewhere")
    last = run_study(spec, out=third, progress=False)
    assert last.ran == [] and len(last.skipped) == 4 and last.report is not None and last.differs == {}
    assert not (third / "runs").exists() and "| dncnn − rat |" in last.report.read_text()
    assert "Every unit's recorded settings (study_train.json) equal what the spec trains" in last.report.read_text()

    # a unit whose record holds other settings (copied from another study, trained before a default
    # changed) is still skipped, but named with each differing setting, on stderr and in the report
    record = third / "units" / "dncnn" / "seed1" / "study_train.json"
    trained = json.loads(record.read_text())
    trained["config"]["optim"]["lr"] = 5e-4
    del trained["config"]["optim"]["warmup"]
    record.write_text(json.dumps(trained))
    result = CliRunner().invoke(app, ["study", str(spec), "--out", str(third), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Warning: dncnn/seed1 was trained with settings the spec does not ask for (2): optim.lr: recorded " \
           "0.0005, spec 0.0002; optim.warmup: recorded (not recorded), spec 0" in result.output
    text = (third / "report" / "report.md").read_text()
    assert "- dncnn/seed1: optim.lr: recorded 0.0005, spec 0.0002; optim.warmup: recorded (not" in text
    assert "Every unit's recorded" not in text


def test_spec_errors_and_cli(tiny_dataset, tmp_path) -> None:
    spec = write_spec(tmp_path, tiny_dataset)
    s = load_study(spec, out=tmp_path / "o")
    assert [f"{e.name}/{seed}" for e, seed in s.units()] == ["rat/0", "dncnn/0", "rat/1", "dncnn/1"]
    assert s.overrides(s.experiments[0], 1)[-2:] == ["train.seed=1", "name=rat"]
    bad = tmp_path / "bad.yaml"
    for text, message in (
        ("seeds: [0, 0]\nexperiments: []", "distinct"),
        ("seeds: [0]\nexperiments: [{name: a, config: nope.yaml}]", "file not found"),
        ("seeds: [0]\nexperimnts: []", "did you mean 'experiments'"),
        (f"seeds: [0]\nreference: b\nexperiments: [{{name: a, config: {CONFIGS / 'smoke.yaml'}}}]", "reference"),
        (f"seeds: [0]\nexperiments: [{{name: a, config: {CONFIGS / 'smoke.yaml'}, region_sources: [x]}}]",
         "region source must be one of"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_study(bad, out=tmp_path / "o")
    # a study folder made from another spec is refused
    out = tmp_path / "study"
    (out).mkdir()
    (out / "study.json").write_text(json.dumps({"spec": "other.yaml", "fingerprint": "x"}))
    res = CliRunner().invoke(app, ["study", str(spec), "--out", str(out), "--no-progress"])
    assert res.exit_code == 2 and "different spec" in res.output
    res = CliRunner().invoke(app, ["study", str(spec), "--out", str(out), "--shard", "3"])
    assert res.exit_code == 2 and "I/N" in res.output


@pytest.mark.parametrize("path", sorted((CONFIGS / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_study_specs_load(path: Path, tmp_path) -> None:
    from ratmir.engine import load_config
    from ratmir.regions import BACKEND_NAMES

    if "medsam" in path.read_text() and "medsam" not in BACKEND_NAMES:
        pytest.skip("this spec needs the medsam region backend (issue 9)")
    spec = load_study(path, out=tmp_path)
    assert len(spec.seeds) >= 2 and spec.reference in [e.name for e in spec.experiments]
    for e in spec.experiments:  # every experiment's config and overrides are valid
        load_config(e.config, overrides=[o for o in spec.overrides(e, spec.seeds[0]) if not o.startswith("data.root")])


def test_paper_configs_use_the_authors_adam_betas() -> None:
    from ratmir.engine import load_config

    for name in ("ct.yaml", "pet.yaml", "pathology.yaml", "ablations/ct_wmsa.yaml", "baselines/ct_redcnn.yaml"):
        assert load_config(CONFIGS / name).optim.betas == (0.5, 0.999), name


def test_report_numbers_from_known_scores(tmp_path, monkeypatch) -> None:
    """The report of hand-written per-image scores: method b = a + 1 dB on every image and seed."""
    import numpy as np

    from ratmir.engine.evaluate import write_csv
    from ratmir.engine.study import evaluation_dir, train_record
    from ratmir.engine.study_report import write_study_report

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({
        "seeds": [0, 1, 2], "reference": "a", "report": {"resamples": 500, "figures": 0},
        "experiments": [{"name": "a", "config": str(CONFIGS / "smoke.yaml"), "region_sources": ["dataset", "none"]},
                        {"name": "b", "config": str(CONFIGS / "smoke.yaml")}]}))
    out = tmp_path / "out"
    spec = load_study(spec_path, out=out)
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, (3, 6))  # seeds x images
    for e in spec.experiments:
        for s in spec.seeds:
            train_record(out, e.name, s).parent.mkdir(parents=True)
            train_record(out, e.name, s).write_text(json.dumps({"seconds": 60.0}))
            for source in e.region_sources:
                shift = {"a": 0.0, "b": 1.0}[e.name] - (0.5 if source.name == "none" else 0.0)
                rows = [{"name": f"im{i}", "method": m, "convention": "ct_full",
                         "psnr": base[s, i] + shift if m == "model" else 20.0 + i, "ssim": 0.5, "rmse": 1.0}
                        for i in range(6) for m in ("model", "input")]
                folder = evaluation_dir(out, e.name, s, source.name)
                folder.mkdir(parents=True)
                write_csv(folder / "per_image.csv", rows)
                (folder / "summary.json").write_text(json.dumps({"seconds": 30.0}))
    report = write_study_report(spec, out=out)
    summary = {(r["method"], r["region_source"]): r for r in csv.DictReader(open(out / "report" / "summary.csv"))}
    assert summary[("a", "dataset")]["psnr_nonfinite"] == "0" and "non-finite" not in report.read_text()
    assert float(summary[("a", "dataset")]["psnr_mean"]) == pytest.approx(base.mean())
    assert float(summary[("a", "dataset")]["psnr_std_seeds"]) == pytest.approx(base.mean(1).std())
    assert float(summary[("a", "dataset")]["psnr_std_images"]) == pytest.approx(base.mean(0).std())
    assert float(summary[("input (LQ)", "dataset")]["psnr_mean"]) == pytest.approx(22.5)
    paired = {(r["method"], r["metric"]): r for r in csv.DictReader(open(out / "report" / "paired.csv"))}
    b = paired[("b", "psnr")]
    assert float(b["mean_diff"]) == pytest.approx(1.0) and float(b["ci_low"]) == pytest.approx(1.0)
    assert float(b["p_value"]) == pytest.approx(2 / 2**6) and b["images_better"] == "6"  # exact, n = 6
    assert float(paired[("a @ none", "psnr")]["mean_diff"]) == pytest.approx(-0.5)
    assert float(paired[("b", "ssim")]["p_value"]) == 1.0  # all differences zero
    text = report.read_text()
    assert "| b − a | +1.000 [+1.000, +1.000] | 0.0312 | 6/6 | 3/3 | higher |" in text
    assert paired[("a @ none", "psnr")]["verdict"] == "lower" and paired[("b", "ssim")]["verdict"] == "unresolved"
    assert "Compute: 10.5 min" in text  # 6 trainings x 60 s + 9 evaluations x 30 s
    assert f"Command: `ratmir study {spec_path} --out {out}`" in text  # tmp_path: not under the cwd
    monkeypatch.chdir(tmp_path)  # under the working directory: relative, naming no machine's folders
    assert "Command: `ratmir study spec.yaml --out out`" in write_study_report(spec, out=out).read_text()

    # an infinite PSNR (output identical to its reference) is counted and shown, not silently dropped
    folder = evaluation_dir(out, "b", 0, "dataset")
    rows = list(csv.DictReader(open(folder / "per_image.csv")))
    rows[0]["psnr"] = "inf"
    write_csv(folder / "per_image.csv", rows)
    text = write_study_report(spec, out=out).read_text()
    summary = {(r["method"], r["region_source"]): r for r in csv.DictReader(open(out / "report" / "summary.csv"))}
    assert summary[("b", "dataset")]["psnr_nonfinite"] == "1" and summary[("a", "dataset")]["psnr_nonfinite"] == "0"
    assert "(1 non-finite)" in next(line for line in text.splitlines() if line.startswith("| b |"))
    assert "not in mean ± std" in text


def test_unit_with_an_interrupted_evaluation_is_evaluated_again(tiny_dataset, tmp_path) -> None:
    from ratmir.engine.study import evaluation_dir, run_unit

    spec_path = write_spec(tmp_path, tiny_dataset, seeds=[0])
    spec = load_study(spec_path, out=tmp_path / "o")
    rat = spec.experiments[0]
    assert run_unit(spec, tmp_path / "o", rat, 0, progress=False)
    folder = evaluation_dir(tmp_path / "o", rat.name, 0, rat.region_sources[0].name)
    (folder / "summary.json").unlink()  # stopped after per_image.csv, before its summary
    assert (folder / "per_image.csv").is_file()
    assert run_unit(spec, tmp_path / "o", rat, 0, progress=False)
    assert json.loads((folder / "summary.json").read_text())["n_images"] == 2


def test_units_train_without_torchruns_process_group(monkeypatch) -> None:
    import os

    from ratmir.engine.distributed import init_distributed, shutdown
    from ratmir.engine.study import _single_process

    for key, value in dict(WORLD_SIZE="2", RANK="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                           MASTER_PORT="29577").items():
        monkeypatch.setenv(key, value)
    with _single_process():
        info, device = init_distributed("cpu")
        try:
            assert not info.enabled and info.rank == 0 and info.world_size == 1
        finally:
            shutdown(info)
    assert (os.environ["WORLD_SIZE"], os.environ["RANK"], os.environ["MASTER_ADDR"]) == ("2", "1", "127.0.0.1")


def test_fingerprint_is_the_same_in_another_checkout(tmp_path) -> None:
    """A clone of the repository in another directory (another machine) keeps the committed
    study.json: paths enter the fingerprint relative to the study folder or the spec's folder."""
    prints = []
    for checkout in ("machine1/repo", "machine2/elsewhere/repo"):
        root = tmp_path / checkout
        (root / "configs").mkdir(parents=True)
        (root / "configs" / "smoke.yaml").write_text((CONFIGS / "smoke.yaml").read_text())
        spec = root / "configs" / "study.yaml"
        spec.write_text(yaml.safe_dump({
            "seeds": [0], "datasets": {"made": {"prepare": {"task": "ct"}}},
            "experiments": [{"name": "rat", "config": "smoke.yaml", "dataset": "made"}]}))
        prints.append(load_study(spec, out=root / "studies" / "s").fingerprint(out=root / "studies" / "s"))
    assert prints[0] == prints[1]
    # what determines the runs still changes it
    other = load_study(spec, out=tmp_path / "o")
    assert other.fingerprint(out=tmp_path / "o") == prints[1]
    spec.write_text(spec.read_text().replace("seeds:\n- 0", "seeds:\n- 1"))
    assert load_study(spec, out=tmp_path / "o").fingerprint(out=tmp_path / "o") != prints[1]


def test_only_the_datasets_of_unfinished_units_are_made(tiny_dataset, tmp_path) -> None:
    """ensure_datasets makes the named datasets and what they derive from, nothing else: a study
    grown by one arm does not remake the other arms' derived datasets."""
    from ratmir.engine.study import ensure_datasets

    spec_path = write_spec(tmp_path, tiny_dataset, datasets={  # keys in order: safe_dump sorts them
        "tiny": {"root": str(tiny_dataset)},
        "tiny_grid": {"from": "tiny", "regions": {"backend": "grid", "options": {"block_size": 8}}},
        "tiny_grid2": {"from": "tiny_grid", "regions": {"backend": "grid", "options": {"block_size": 4}}}})
    spec = load_study(spec_path, out=tmp_path / "study")
    folder = tmp_path / "study" / "datasets"
    ensure_datasets(spec, names={"tiny"}, progress=False)
    assert not folder.exists()
    ensure_datasets(spec, names={"tiny_grid2"}, progress=False)  # and the dataset it derives from
    assert sorted(p.parent.name for p in folder.glob("*/dataset.json")) == ["tiny_grid", "tiny_grid2"]

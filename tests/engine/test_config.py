from __future__ import annotations

from pathlib import Path

import pytest

from ratmir.engine.config import ConfigError, ExperimentConfig, apply_overrides, from_dict, load_config, to_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("*.yaml") if "studies" not in p.parts),
                         ids=lambda p: p.name)  # configs/studies/: study specs (tests/engine/test_study.py)
def test_shipped_configs_parse(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg


def test_overrides_and_relative_root(tmp_path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("task: pet\ndata: {root: data/pet}\ntrain: {iterations: 10}\n")
    cfg = load_config(path, overrides=["train.iterations=40", "model.options.width=16", "optim.grad_clip=0.5",
                                       "data.patch_size=null", "optim.betas=[0.8, 0.9]"])
    assert cfg.task == "pet" and cfg.train.iterations == 40 and cfg.model.options == {"width": 16}
    assert cfg.optim.grad_clip == 0.5 and cfg.data.patch_size is None and cfg.optim.betas == (0.8, 0.9)
    assert cfg.data.root == str((tmp_path / "data/pet").resolve())
    assert load_config(None).optim.lr == 2e-4  # defaults are the paper's
    path.write_text("optim: {lr: 1e-3}\n")  # YAML 1.1 reads 1e-3 as a string
    assert load_config(path).optim.lr == 1e-3


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("train: {iteratons: 5}", r"unknown key 'train.iteratons' \(did you mean 'iterations'\?\)"),
        ("optimizer: {lr: 1}", r"unknown key 'optimizer' \(did you mean 'optim'\?\)"),
        ("train: {iterations: '5'}", r"train.iterations must be int, got str"),
        ("train: {iterations: 5.5}", r"train.iterations must be int, got float"),
        ("data: {augment: 1}", r"data.augment must be bool, got int"),
        ("optim: {betas: [0.9]}", r"optim.betas must be a list of 2 values"),
        ("train: 3", r"train must be a mapping"),
        ("task: mri", r"task must be one of \('ct', 'pet', 'pathology'\), got 'mri'"),
        ("train: {amp: fp16}", r"train.amp must be 'none' or 'bf16'"),
        ("train: {ema: 1.5}", r"train.ema must be in \(0, 1\)"),
        ("loss: {name: l2}", r"loss.name must be"),
        ("train: [", r"not valid YAML"),
    ],
)
def test_errors(tmp_path, yaml_text, match) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["train.iterations"])
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"train": 3}, ["train.iterations=4"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/exp.yaml")


def test_base_inheritance(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("task: pet\ndata: {root: d, batch_size: 3}\ntrain: {iterations: 7}\n")
    (tmp_path / "sub" / "child.yaml").write_text("base: ../base.yaml\ndata: {batch_size: 5}\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml")
    assert cfg.task == "pet" and cfg.data.batch_size == 5 and cfg.train.iterations == 7
    assert cfg.data.root == str((tmp_path / "d").resolve())  # relative to the file that set it
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "loop.yaml")


def test_paper_settings() -> None:
    ct = load_config(CONFIGS / "ct.yaml")
    assert (ct.optim.lr, ct.optim.lr_min, ct.train.iterations, ct.data.patch_size, ct.data.batch_size) == (
        2e-4, 1e-6, 200_000, 256, 8)
    assert (ct.loss.name, ct.loss.gamma, ct.loss.delta) == ("focal_region", 1e-3, 1.0)
    assert load_config(CONFIGS / "pet.yaml").data.patch_size == 192
    assert load_config(CONFIGS / "ablations" / "ct_wmsa.yaml").model.options == {"attention": "window"}
    assert load_config(CONFIGS / "baselines" / "ct_redcnn.yaml").model.name == "redcnn"

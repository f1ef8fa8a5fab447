"""The packaged-model registry: listing, SHA-256 checks at load, model cards, names as weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from ratmir_testdata import write_tiny_ct_model

from ratmir.models import load_pretrained
from ratmir.models.hub import (PretrainedModelError, add_packaged_model, get_packaged_model, model_card,
                               packaged_model_path, packaged_models, resolve_weights)


def _packaged(tmp_path):
    folder = tmp_path / "weights"
    weights = write_tiny_ct_model(tmp_path / "tiny.safetensors")
    entry = add_packaged_model(weights, name="tiny-ct", card="# tiny\n", summary={"iterations": 3}, folder=folder)
    return folder, entry


def test_add_list_verify_and_card(tmp_path) -> None:
    folder, entry = _packaged(tmp_path)
    assert entry.task == "ct" and entry.architecture == "dncnn" and entry.parameters > 0
    assert set(packaged_models(folder=folder)) == {"tiny-ct"}
    assert get_packaged_model("tiny-ct", folder=folder).summary == {"iterations": 3}
    path = packaged_model_path("tiny-ct", folder=folder)
    assert path == folder / "tiny-ct.safetensors" and load_pretrained(path).architecture == "dncnn"
    assert model_card("tiny-ct", folder=folder) == "# tiny\n"
    assert not list(folder.glob("*.tmp"))


def test_a_changed_byte_is_one_clear_error(tmp_path) -> None:
    folder, entry = _packaged(tmp_path)
    path = folder / entry.file
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # a weight's last byte: still a readable safetensors file
    path.write_bytes(bytes(data))
    with pytest.raises(PretrainedModelError, match="does not match its recorded SHA-256") as err:
        packaged_model_path("tiny-ct", folder=folder)
    assert "\n" not in str(err.value) and entry.sha256 in str(err.value)
    path.unlink()
    with pytest.raises(PretrainedModelError, match="weights file .* is missing"):
        packaged_model_path("tiny-ct", folder=folder)


def test_unknown_names_and_bad_names(tmp_path) -> None:
    folder, _ = _packaged(tmp_path)
    with pytest.raises(PretrainedModelError, match="no packaged model named 'mri'.*tiny-ct"):
        packaged_model_path("mri", folder=folder)
    with pytest.raises(ValueError, match="model name"):
        add_packaged_model(tmp_path / "tiny.safetensors", name="../evil", card="", folder=folder)
    assert packaged_models(folder=tmp_path / "empty") == {}
    import json

    index = json.loads((folder / "index.json").read_text())
    index["models"]["tiny-ct"].pop("sha256")
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(PretrainedModelError, match="entry 'tiny-ct' has keys .* expected"):
        packaged_models(folder=folder)
    (folder / "index.json").write_text("{not json")
    with pytest.raises(PretrainedModelError, match="unreadable"):
        packaged_models(folder=folder)


def test_resolve_weights_paths_first_then_names(tmp_path, monkeypatch) -> None:
    from ratmir.models import hub

    folder, _ = _packaged(tmp_path)
    monkeypatch.setattr(hub, "WEIGHTS_DIR", folder)
    weights = write_tiny_ct_model(tmp_path / "run" / "model.safetensors")
    assert resolve_weights(tmp_path / "run") == weights and resolve_weights(weights) == weights
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert resolve_weights("tiny-ct") == folder / "tiny-ct.safetensors"  # a name, checked by its hash
    with pytest.raises(FileNotFoundError, match="name of a packaged model: tiny-ct"):
        resolve_weights("no-such-model")
    (work / "tiny-ct").mkdir()  # a folder of the same name without weights: ambiguous, said so
    with pytest.raises(FileNotFoundError, match="both a packaged model and the folder"):
        resolve_weights("tiny-ct")
    write_tiny_ct_model(work / "tiny-ct" / "model.safetensors")
    assert resolve_weights("tiny-ct") == Path("tiny-ct") / "model.safetensors"  # the user's own run comes first


def test_every_packaged_model_loads_offline_with_its_hash() -> None:
    models = packaged_models()
    for name, entry in models.items():
        path = packaged_model_path(name)  # checks the SHA-256
        model = load_pretrained(path)
        assert model.architecture == entry.architecture
        assert f"`{name}`" in model_card(name) and "Not for clinical use" in model_card(name)
        assert path.stat().st_size <= 5 * 2**20

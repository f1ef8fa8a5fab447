"""The pretrained models that ship inside the package (``ratmir models``).

Each model is a ``.safetensors`` file written by :func:`ratmir.models.save_pretrained` with a
Markdown model card beside it, both in ``ratmir/models/weights/``; ``index.json`` there lists
them with the SHA-256 of every weights file, checked each time a model is opened, so a file
changed by one byte is refused with one line instead of restoring with the wrong weights.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .._files import atomic_path, file_sha256, write_text_atomic
from ..errors import UsageError
from .pretrained import read_metadata

WEIGHTS_DIR = Path(__file__).parent / "weights"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})
INDEX_FILE = "index.json"
INDEX_FORMAT = 1


class PretrainedModelError(UsageError):
    """A packaged model that is unknown, missing or whose weights fail their SHA-256 (exit 2)."""


@dataclass(frozen=True)
class PackagedModel:
    """One entry of ``index.json``: what ``ratmir models`` lists without opening the weights."""

    name: str
    task: str
    architecture: str
    file: str  # weights file name inside the weights folder
    sha256: str
    bytes: int
    card: str  # model card file name inside the weights folder
    parameters: int = 0  # values stored in the weights file (parameters and buffers)
    regions_backend: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # e.g. test scores, iterations, seconds

    def weights_path(self, folder: Path) -> Path:
        return folder / self.file


def _read_index(folder: Path) -> dict[str, Any]:
    path = folder / INDEX_FILE
    if not path.is_file():
        return {"format": INDEX_FORMAT, "models": {}}
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PretrainedModelError(f"{path} is unreadable ({exc}); reinstall ratmir") from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or not isinstance(index.get("models"), dict):
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise PretrainedModelError(f"{path} is not a ratmir model index of format {INDEX_FORMAT} (found {found!r})")
    return index


def packaged_models(*, folder: str | os.PathLike | None = None) -> dict[str, PackagedModel]:
    """The packaged models by name (``folder``: another weights folder, for tests and maintainers)."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    models = {}
    for name, entry in _read_index(folder)["models"].items():
        try:
            models[name] = PackagedModel(name=name, **entry)
        except TypeError:
            expected = sorted(f.name for f in fields(PackagedModel) if f.name != "name")
            raise PretrainedModelError(f"{folder / INDEX_FILE}: entry {name!r} has keys {sorted(entry)}, expected "
                                       f"{expected}; reinstall ratmir") from None
    return models


def get_packaged_model(name: str, *, folder: str | os.PathLike | None = None) -> PackagedModel:
    """The index entry of ``name``; an unknown name is one line listing the known ones."""
    models = packaged_models(folder=folder)
    if name not in models:
        known = ", ".join(sorted(models)) or "none are installed"
        raise PretrainedModelError(f"no packaged model named {name!r} (packaged models: {known}; see `ratmir models`)")
    return models[name]


def packaged_model_path(name: str, *, folder: str | os.PathLike | None = None) -> Path:
    """The weights file of packaged model ``name``, after checking its size and SHA-256 against the index."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    entry = get_packaged_model(name, folder=folder)
    path = entry.weights_path(folder)
    if not path.is_file():
        raise PretrainedModelError(f"packaged model {name!r}: its weights file {path} is missing; reinstall ratmir")
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise PretrainedModelError(
            f"packaged model {name!r}: {path} does not match its recorded SHA-256 (expected {entry.sha256}, got "
            f"{actual}; {path.stat().st_size} bytes, expected {entry.bytes}): the file was changed or damaged; "
            "reinstall ratmir")
    return path


def model_card(name: str, *, folder: str | os.PathLike | None = None) -> str:
    """The Markdown model card of packaged model ``name``."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    entry = get_packaged_model(name, folder=folder)
    path = folder / entry.card
    if not path.is_file():
        raise PretrainedModelError(f"packaged model {name!r}: its model card {path} is missing; reinstall ratmir")
    return path.read_text()


def is_packaged(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file in the package's weights folder."""
    return Path(path).resolve().parent == WEIGHTS_DIR.resolve()


def is_model_name(text: str) -> bool:
    """Whether ``text`` is a model name: lower-case ASCII letters, digits, '-' and '_' (so never a path).

    >>> [is_model_name(t) for t in ("ct", "pet-dncnn", "runs/ct", "model.safetensors", "CT", "nul")]
    [True, True, False, False, False, False]
    """
    return bool(_NAME.fullmatch(text)) and text not in _RESERVED


def is_installed(entry: PackagedModel, *, folder: str | os.PathLike | None = None) -> bool:
    """Whether the weights file of ``entry`` is present (its hash is checked when it is opened)."""
    return entry.weights_path(Path(folder) if folder is not None else WEIGHTS_DIR).is_file()


def resolve_weights(path: str | os.PathLike) -> Path:
    """A weights file, a RUN folder holding ``model.safetensors``, or the name of a packaged model
    (``ratmir models``: ``ct``, ``pet``, ``pathology``...; its SHA-256 is checked). A file or RUN folder
    of that name in the working folder comes first."""
    path = Path(path)
    weights = path / "model.safetensors" if path.is_dir() else path
    if weights.is_file():
        return weights
    if is_model_name(str(path)) and str(path) in packaged_models():
        if path.exists():
            raise FileNotFoundError(f"{str(path)!r} is both a packaged model and the folder {path.resolve()}, which "
                                    f"holds no model.safetensors; give the folder's weights file, or run from "
                                    "another folder to use the packaged model")
        return packaged_model_path(str(path))
    names = ", ".join(sorted(packaged_models())) or "none installed"
    raise FileNotFoundError(f"no model weights at {weights} (expected a RUN folder, a .safetensors file or the name "
                            f"of a packaged model: {names})")


def stored_values(path: str | os.PathLike) -> int:
    """The number of values (parameters and buffers) in a ``.safetensors`` file, read from its header."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())


def add_packaged_model(weights: str | os.PathLike, *, name: str, card: str, summary: dict[str, Any] | None = None,
                       folder: str | os.PathLike | None = None) -> PackagedModel:
    """Copy ``weights`` (a file written by ``ratmir train``) into the weights folder as ``NAME.safetensors``
    with ``card`` as ``NAME.md`` and record both in ``index.json`` (each written atomically); replaces an
    entry of the same name. For maintainers: ``ratmir models package``."""
    if not is_model_name(name):
        raise ValueError(f"a model name must be lower-case letters, digits, '-' or '_', starting with a letter or "
                         f"digit, and no device name (e.g. 'ct'), got {name!r}")
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    meta = read_metadata(weights)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.safetensors"
    with atomic_path(target) as tmp:
        shutil.copyfile(weights, tmp)
    write_text_atomic(folder / f"{name}.md", card)
    entry = PackagedModel(name=name, task=meta.get("task", "?"), architecture=meta["architecture"],
                          file=target.name, sha256=file_sha256(target), bytes=target.stat().st_size,
                          card=f"{name}.md", parameters=stored_values(target),
                          regions_backend=meta.get("regions_backend"), summary=dict(summary or {}))
    index = _read_index(folder)
    record = asdict(entry)
    record.pop("name")
    index["models"][name] = record
    index["models"] = dict(sorted(index["models"].items()))
    write_text_atomic(folder / INDEX_FILE, json.dumps(index, indent=1) + "\n")
    return entry

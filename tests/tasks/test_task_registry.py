from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ratmir.tasks import TASK_NAMES, CTDegradation, get_task


def test_registry_lists_the_three_tasks() -> None:
    assert TASK_NAMES == ("ct", "pet", "pathology")
    assert [get_task(n).channels for n in TASK_NAMES] == [1, 1, 3]
    assert [get_task(n).units for n in TASK_NAMES] == ["HU", "kBq/mL", "RGB 8-bit levels"]
    for name in TASK_NAMES:
        json.dumps(get_task(name).record())


@pytest.mark.parametrize("name", TASK_NAMES)
def test_normalise_round_trip_numpy_and_torch(name: str) -> None:
    task = get_task(name)
    low, high = task.normalisation.low, task.normalisation.high
    x = np.linspace(low, high, 11, dtype=np.float32)
    np.testing.assert_allclose(task.denormalise(task.normalise(x)), x, atol=1e-3 * (high - low))
    t = torch.from_numpy(x)
    assert torch.allclose(task.denormalise(task.normalise(t)), t, atol=1e-3 * (high - low))
    assert float(task.normalise(torch.tensor(high * 2 + 1))) == 1.0


def test_degrade_through_registry() -> None:
    hu = np.zeros((32, 32), dtype=np.float32)
    pair = get_task("ct").degrade(hu, config=CTDegradation(n_views=45, incident_photons=1e4))
    assert pair.lq.shape == hu.shape
    pair = get_task("pathology").degrade(np.zeros((8, 8, 3), np.uint8))
    assert pair.lq.shape == (8, 8, 3)
    with pytest.raises(TypeError, match="config for task 'pet' must be a PETAcquisition, got CTDegradation"):
        get_task("pet").degrade(None, config=CTDegradation())


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match=r"task must be one of \('ct', 'pet', 'pathology'\), got 'mri'"):
        get_task("mri")

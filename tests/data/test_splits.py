from __future__ import annotations

import pytest

from ratmir.data.splits import assign_splits, carve_validation, evenly_spaced, split_blocks, split_subjects


def test_subject_split_is_disjoint_and_seeded() -> None:
    subjects = [f"p{i}" for i in range(8)]
    train, test = split_subjects(subjects, test_fraction=0.25, seed=3)
    assert train.isdisjoint(test) and train | test == set(subjects) and len(test) == 2
    assert split_subjects(subjects, test_fraction=0.25, seed=3) == (train, test)
    assert len(split_subjects(["a", "b"], test_fraction=0.1, seed=0)[1]) == 1  # at least one each


def test_block_split_keeps_a_gap() -> None:
    positions = [1.5 * z for z in range(40)]  # one volume, 1.5 mm slices
    train, test = split_blocks(positions, test_fraction=0.25, gap=10.0)
    assert len(test) == 10 and train and set(train).isdisjoint(test)
    assert min(positions[i] for i in test) - max(positions[i] for i in train) >= 10.0
    assert max(train) < min(test)  # contiguous blocks
    dropped = set(range(40)) - set(train) - set(test)
    assert dropped and all(max(train) < i < min(test) for i in dropped)


def test_block_split_refuses_when_the_gap_does_not_fit() -> None:
    with pytest.raises(ValueError, match="gap"):
        split_blocks([0.0, 5.0], test_fraction=0.5, gap=10.0)


def test_assign_splits_by_group() -> None:
    # group "slices": 4 patients, one image each; group "vol": one volume of 20 slices at 2 mm
    subjects = ["a", "b", "c", "d"] + ["vol"] * 20
    groups = ["slices"] * 4 + ["vol"] * 20
    positions = [0.0] * 4 + [2.0 * z for z in range(20)]
    result = assign_splits(subjects=subjects, groups=groups, positions=positions, gaps={"vol": 6.0},
                           test_fraction=0.25, seed=0)
    train_subjects = {subjects[i] for i in result.train if groups[i] == "slices"}
    test_subjects = {subjects[i] for i in result.test if groups[i] == "slices"}
    assert train_subjects.isdisjoint(test_subjects) and len(test_subjects) == 1
    vol_train = [positions[i] for i in result.train if groups[i] == "vol"]
    vol_test = [positions[i] for i in result.test if groups[i] == "vol"]
    assert min(vol_test) - max(vol_train) >= 6.0
    assert set(result.train).isdisjoint(result.test)
    assert result.rules["vol"]["rule"].startswith("contiguous") and result.rules["slices"]["rule"] == "by subject"


def test_a_subject_in_two_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="appears in groups"):
        assign_splits(subjects=["a", "a"], groups=["x", "y"], positions=[0, 1], gaps={}, test_fraction=0.25, seed=0)


def test_evenly_spaced() -> None:
    assert evenly_spaced([1, 2, 3], limit=None) == [1, 2, 3]
    assert evenly_spaced(list(range(10)), limit=3) == [0, 4, 9]  # round(4.5) == 4
    assert evenly_spaced(list(range(10)), limit=1) == [4]


def test_validation_is_carved_from_training_subjects_only() -> None:
    # group "slices": 6 one-image patients; group "vol": one volume of 40 slices at 2 mm
    subjects = [f"p{i}" for i in range(6)] + ["vol"] * 40
    groups = ["slices"] * 6 + ["vol"] * 40
    positions = [0.0] * 6 + [2.0 * z for z in range(40)]
    result = assign_splits(subjects=subjects, groups=groups, positions=positions, gaps={"vol": 6.0},
                           test_fraction=0.25, seed=0, val_fraction=0.25)
    train, val, test = (set(result.indices(s)) for s in ("train", "val", "test"))
    assert val and train.isdisjoint(val) and test.isdisjoint(val) and train.isdisjoint(test)
    test_subjects = {subjects[i] for i in test if groups[i] == "slices"}
    val_subjects = {subjects[i] for i in val if groups[i] == "slices"}
    assert val_subjects and val_subjects.isdisjoint(test_subjects)
    assert val_subjects.isdisjoint(subjects[i] for i in train)  # one-image patients go to val whole
    vol = {s: [positions[i] for i in idx if groups[i] == "vol"] for s, idx in (("train", train), ("val", val),
                                                                                 ("test", test))}
    assert max(vol["train"]) + 6.0 <= min(vol["val"]) and max(vol["val"]) + 6.0 <= min(vol["test"])
    assert result.rules["vol"]["val"]["blocks_of"] == ["vol"]
    assert result.rules["slices"]["val"]["whole_subjects"] == sorted(val_subjects)
    without = assign_splits(subjects=subjects, groups=groups, positions=positions, gaps={"vol": 6.0},
                            test_fraction=0.25, seed=0)
    assert without.val == () and without.test == result.test


def test_validation_leaves_a_subject_in_train_when_no_block_fits() -> None:
    rules: dict = {}
    train, val = carve_validation([0, 1], subjects=["a", "a"], groups=["g", "g"], positions=[0.0, 1.0],
                                  gaps={"g": 5.0}, val_fraction=0.2, seed=0, rules=rules)
    assert (train, val) == ([0, 1], []) and rules["g"]["val"]["blocks_of"] == []
    with pytest.raises(ValueError, match="val_fraction"):
        carve_validation([0], subjects=["a"], groups=["g"], positions=[0.0], gaps={}, val_fraction=0.0, seed=0,
                         rules={})

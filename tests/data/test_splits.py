from __future__ import annotations

import pytest

from ratmir.data.splits import assign_splits, evenly_spaced, split_blocks, split_subjects


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

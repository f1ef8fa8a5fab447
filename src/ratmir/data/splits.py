"""Train/validation/test splits: test never shares a patient or a volume with the others
(pure functions).

Samples are split group by group (a group is one family of sources, e.g. the pydicom CT slices,
or one user's folder of series):

- a group with two or more **subjects** (patients, volumes, slides) is split by subject: a
  seeded choice of whole subjects goes to ``test``, the rest to ``train``;
- a group with a single subject (one volume, one slide) is split into **contiguous blocks** of
  positions (slice positions in mm, tile rows in pixels): the highest positions go to ``test``,
  the lowest to ``train``, and every sample closer than ``gap`` to the test block is dropped, so
  no train sample neighbours a test sample.

The **validation** split (for choosing ``best.pt`` and for the validation metrics) is then carved
from the training part of each group (:func:`carve_validation`), so it never touches a test
subject: a training subject with several positions gives its highest contiguous block of
``val_fraction`` of them (again ``gap`` apart from what stays in train); training subjects with a
single position (one slice, one image) go to validation whole, a seeded ``val_fraction`` of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import check_number

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitResult:
    """Indices into the sample list per split, the dropped gap samples and how each group was split."""

    train: tuple[int, ...]
    test: tuple[int, ...]
    dropped: tuple[int, ...]
    rules: dict[str, dict]
    val: tuple[int, ...] = ()

    def indices(self, split: str) -> tuple[int, ...]:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


def _test_count(n: int, *, test_fraction: float) -> int:
    return min(n - 1, max(1, round(test_fraction * n)))


def split_subjects(subjects: Sequence[str], *, test_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """(train subjects, test subjects): a seeded choice of ``round(test_fraction * n)`` whole
    subjects (at least one, and at least one left for training) goes to test."""
    check_number("test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False)
    unique = sorted(set(subjects))
    if len(unique) < 2:
        raise ValueError(f"splitting by subject needs at least 2 subjects, got {len(unique)} ({unique})")
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = _test_count(len(unique), test_fraction=test_fraction)
    test = {unique[i] for i in order[:n_test]}
    return set(unique) - test, test


def split_blocks(positions: Sequence[float], *, test_fraction: float, gap: float) -> tuple[list[int], list[int]]:
    """(train indices, test indices) of ``positions`` cut into two contiguous blocks.

    Test takes the ``round(test_fraction * n)`` highest distinct positions; train takes the
    positions at least ``gap`` below the lowest test position; those in between are dropped.
    """
    check_number("test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False)
    check_number("gap", gap, low=0.0)
    values = np.asarray(positions, dtype=np.float64)
    distinct = np.unique(values)
    if distinct.size < 2:
        raise ValueError(f"splitting one subject into blocks needs at least 2 distinct positions, got {distinct.size}")
    boundary = distinct[distinct.size - _test_count(distinct.size, test_fraction=test_fraction)]
    test = [int(i) for i in np.flatnonzero(values >= boundary)]
    train = [int(i) for i in np.flatnonzero(values <= boundary - gap)]
    if not train:
        span = float(distinct[-1] - distinct[0])
        raise ValueError(f"cannot cut {distinct.size} positions spanning {span:g} into a train and a test block "
                         f"{gap:g} apart (test_fraction {test_fraction}); expected a span > gap: give more "
                         f"slices/tiles or another subject")
    return train, test


def assign_splits(*, subjects: Sequence[str], groups: Sequence[str], positions: Sequence[float],
                  gaps: Mapping[str, float], test_fraction: float, seed: int,
                  val_fraction: float = 0.0) -> SplitResult:
    """Split samples ``i`` (``subjects[i]``, ``groups[i]``, ``positions[i]``), group by group.

    ``gaps[group]`` is the block gap used when that group has one subject (and for validation
    blocks). A subject may belong to one group only. ``val_fraction > 0`` carves a validation
    split from the training part (:func:`carve_validation`).
    """
    if not len(subjects) == len(groups) == len(positions):
        raise ValueError(f"subjects, groups and positions must have one length, got "
                         f"{len(subjects)}, {len(groups)}, {len(positions)}")
    owner: dict[str, str] = {}
    for subject, group in zip(subjects, groups):
        if owner.setdefault(subject, group) != group:
            raise ValueError(f"subject {subject!r} appears in groups {owner[subject]!r} and {group!r}; expected one")
    train: list[int] = []
    test: list[int] = []
    rules: dict[str, dict] = {}
    for group in sorted(set(groups)):
        members = [i for i, g in enumerate(groups) if g == group]
        names = sorted({subjects[i] for i in members})
        if len(names) >= 2:
            train_s, test_s = split_subjects(names, test_fraction=test_fraction, seed=seed)
            train += [i for i in members if subjects[i] in train_s]
            test += [i for i in members if subjects[i] in test_s]
            rules[group] = {"rule": "by subject", "train_subjects": sorted(train_s), "test_subjects": sorted(test_s)}
        else:
            if group not in gaps:
                raise ValueError(f"group {group!r} has one subject ({names[0]!r}) and needs a block gap; "
                                 f"gaps has {sorted(gaps)}")
            try:
                tr, te = split_blocks([positions[i] for i in members], test_fraction=test_fraction, gap=gaps[group])
            except ValueError as err:
                raise ValueError(f"{group!r} holds one subject ({names[0]!r}): {err}") from None
            train += [members[i] for i in tr]
            test += [members[i] for i in te]
            lo_test = min(positions[members[i]] for i in te)
            hi_train = max(positions[members[i]] for i in tr)
            rules[group] = {"rule": "contiguous blocks of one subject", "subject": names[0], "gap": gaps[group],
                            "train_positions": [min(positions[members[i]] for i in tr), hi_train],
                            "test_positions": [lo_test, max(positions[members[i]] for i in te)]}
    val: list[int] = []
    if val_fraction > 0:
        train, val = carve_validation(train, subjects=subjects, groups=groups, positions=positions, gaps=gaps,
                                      val_fraction=val_fraction, seed=seed, rules=rules)
    kept = set(train) | set(val) | set(test)
    dropped = tuple(i for i in range(len(subjects)) if i not in kept)
    return SplitResult(train=tuple(sorted(train)), test=tuple(sorted(test)), dropped=dropped, rules=rules,
                       val=tuple(sorted(val)))


def carve_validation(train: Sequence[int], *, subjects: Sequence[str], groups: Sequence[str],
                     positions: Sequence[float], gaps: Mapping[str, float], val_fraction: float, seed: int,
                     rules: dict[str, dict]) -> tuple[list[int], list[int]]:
    """(train, val): the validation split carved from the training indices ``train``.

    Per group: every training subject with >= 2 distinct positions gives its highest contiguous
    block of ``val_fraction`` of them to val, samples closer than ``gaps[group]`` to that block
    are dropped (the subject stays wholly in train when the block does not fit or the group has
    no gap); training subjects with one position go to val whole (a seeded ``val_fraction`` of
    them, when there are >= 2). ``rules[group]["val"]`` records what was done.
    """
    check_number("val_fraction", val_fraction, low=0.0, high=1.0, low_inclusive=False)
    kept: list[int] = []
    val: list[int] = []
    for group in sorted({groups[i] for i in train}):
        members = [i for i in train if groups[i] == group]
        by_subject: dict[str, list[int]] = {}
        for i in members:
            by_subject.setdefault(subjects[i], []).append(i)
        single = sorted(s for s, idx in by_subject.items() if len({positions[i] for i in idx}) < 2)
        record: dict[str, object] = {"val_fraction": val_fraction, "blocks_of": [], "whole_subjects": []}
        for subject, idx in sorted(by_subject.items()):
            if subject in single:
                continue
            try:
                if group not in gaps:
                    raise ValueError("no gap")
                tr, va = split_blocks([positions[i] for i in idx], test_fraction=val_fraction, gap=gaps[group])
            except ValueError:
                kept += idx
                continue
            kept += [idx[i] for i in tr]
            val += [idx[i] for i in va]
            record["blocks_of"].append(subject)
        if len(single) >= 2:
            stay, to_val = split_subjects(single, test_fraction=val_fraction, seed=seed)
            record["whole_subjects"] = sorted(to_val)
        else:
            stay, to_val = set(single), set()
        kept += [i for s in single for i in by_subject[s] if s in stay]
        val += [i for s in single for i in by_subject[s] if s in to_val]
        rules.setdefault(group, {})["val"] = record
    return sorted(kept), sorted(val)


def evenly_spaced(indices: Sequence[int], *, limit: int | None) -> list[int]:
    """At most ``limit`` of ``indices``, spread evenly (first and last kept); all when ``limit`` is None."""
    indices = list(indices)
    if limit is None or len(indices) <= limit:
        return indices
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    picks = np.linspace(0, len(indices) - 1, limit) if limit > 1 else [math.floor((len(indices) - 1) / 2)]
    return [indices[int(round(p))] for p in picks]

"""Fixtures for the region tests: a tiny random SAM (shared fixtures are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_sam():
    pytest.importorskip("segment_anything")
    from tiny_sam import build_tiny_sam  # tests/regions is on sys.path (pytest rootdir import mode)

    return build_tiny_sam()

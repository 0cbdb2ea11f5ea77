"""Shared fixtures: the reference-data folder (tests that need it skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulecast.datapaths import find_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = find_data_dir()
    if path is None:
        pytest.skip("reference measurements absent: set JOULECAST_DATA to the shared data folder")
    return path

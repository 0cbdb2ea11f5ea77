"""Fixtures of the model front-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from joulecast.datapaths import find_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The reference-data folder, or skip when it is absent."""
    path = find_data_dir()
    if path is None:
        pytest.skip("reference data not found: set JOULECAST_DATA or provide ../shared/data")
    return path

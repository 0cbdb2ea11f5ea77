"""Where the reference measurements live.

The measurements are not shipped with the package. They are looked up in ``$JOULECAST_DATA`` or,
failing that, in ``../shared/data`` relative to the current directory and to the project root.
"""

from __future__ import annotations

import os
from pathlib import Path

from joulecast.errors import DataNotFoundError

ENV_VAR = "JOULECAST_DATA"


def find_data_dir() -> Path | None:
    """Return the reference-data folder, or ``None`` when it is absent."""
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    project_root = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), project_root):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


def require_data_dir() -> Path:
    """Return the reference-data folder or raise a one-line error saying how to point at it."""
    path = find_data_dir()
    if path is None:
        raise DataNotFoundError(
            f"reference measurements not found: set {ENV_VAR} to the folder holding "
            "energaizer/, aiconfigurator/ and mlenergy/"
        )
    return path

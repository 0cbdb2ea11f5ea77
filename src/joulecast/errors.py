"""User-facing errors.

Every mistake a user can make (bad file, unknown GPU, impossible size) raises a subclass of
:class:`JoulecastError` whose message is one readable line. The CLI prints that line and exits
non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class JoulecastError(Exception):
    """Base class of every error caused by user input."""


class UnknownNameError(JoulecastError, KeyError):
    """An id (GPU, model, profile) that is not in a registry."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known_list = sorted(known)
        close = difflib.get_close_matches(name.lower(), [k.lower() for k in known_list], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        shown = ", ".join(known_list[:12]) + (", ..." if len(known_list) > 12 else "")
        super().__init__(f"unknown {kind} '{name}'{hint} (known: {shown})")
        self.name = name

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class WorkloadError(JoulecastError, ValueError):
    """A workload description that cannot be read or is physically impossible."""


class SpecError(JoulecastError, ValueError):
    """A GPU or model specification that is missing fields or is inconsistent."""


class ClockError(JoulecastError, ValueError):
    """A clock or power cap the part cannot run at."""


class CalibrationError(JoulecastError, ValueError):
    """Calibration input that cannot be fitted."""


class DataNotFoundError(JoulecastError, FileNotFoundError):
    """The reference measurement folder is missing."""


class TelemetryError(JoulecastError, ValueError):
    """Telemetry that cannot be attributed (missing columns, bad timestamps)."""

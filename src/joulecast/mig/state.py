"""SQLite file of the live service's cumulative energies.

The service's in-memory counters are authoritative; the file is their copy, written after every
poll with ``MAX(old, new)`` so a restart resumes them. Whatever happens to the file, the service
keeps running: a file that is not a usable database is moved aside with a warning (never silently
overwritten), a deleted file is written anew from memory, and a failed write is retried on the
next poll. Rows that are not a finite, non-negative energy are skipped with a warning after the
file is copied aside.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

from joulecast.errors import JoulecastError
from joulecast.mig.limits import MAX_ENERGY_COUNTER_J

#: (gpu_uuid, gpu_instance_id, profile, component)
EnergyKey = tuple[str, str, str, str]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS energy (gpu_uuid TEXT, gpu_instance_id TEXT, profile TEXT, "
    "component TEXT, energy_j REAL, PRIMARY KEY (gpu_uuid, gpu_instance_id, profile, component))"
)
# A stored value that is not a usable energy (NULL from an old NaN, Inf, text) is replaced.
_UPSERT = (
    "INSERT INTO energy VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET energy_j = CASE "
    "WHEN typeof(energy.energy_j) IN ('real', 'integer') AND energy.energy_j >= 0 "
    f"AND energy.energy_j <= {MAX_ENERGY_COUNTER_J:g} "
    "THEN MAX(energy.energy_j, excluded.energy_j) ELSE excluded.energy_j END"
)
_COLUMNS = [
    ("gpu_uuid", 1),
    ("gpu_instance_id", 2),
    ("profile", 3),
    ("component", 4),
    ("energy_j", 0),
]
_LOG_EVERY = 60


class _Unusable(Exception):
    """The file is not a database of ours (not SQLite, corrupt, or another schema)."""


def _unusable(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def _aside(path: Path, tag: str) -> Path:
    """A free name beside ``path`` for a copy kept for inspection."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for k in range(1000):
        cand = path.with_name(f"{path.name}.{tag}-{stamp}" + (f".{k}" if k else ""))
        if not cand.exists():
            return cand
    raise JoulecastError(f"--state {path}: too many files set aside next to it")


class StateStore:
    """Cumulative energies persisted in SQLite.

    Args:
        path: The SQLite file (its folder is created when missing).
        log: Where warnings go.

    Raises:
        JoulecastError: When the path is a folder, its folder cannot be created, or an unusable
            file cannot be moved aside.
    """

    def __init__(self, path: Path, log: logging.Logger) -> None:
        self.path = path
        self._log = log
        self._db: sqlite3.Connection | None = None
        self.errors = 0
        self.total_errors = 0
        if path.is_dir():
            raise JoulecastError(f"--state {path} is a folder, not a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JoulecastError(
                f"--state {path}: cannot create folder {path.parent} ({exc.strerror})"
            ) from None

    def load(self) -> dict[EnergyKey, float]:
        """Open (or create) the file and read the stored energies.

        Returns:
            Energy per key; unusable rows are left out (and warned about).
        """
        try:
            try:
                rows = self._open().execute("SELECT * FROM energy").fetchall()
            except _Unusable as exc:
                self._move_aside(exc)
                rows = self._open().execute("SELECT * FROM energy").fetchall()
        except (sqlite3.Error, _Unusable) as exc:
            raise JoulecastError(f"--state {self.path}: cannot open ({exc})") from None
        out: dict[EnergyKey, float] = {}
        bad: list[str] = []
        for r in rows:
            value = r[4] if len(r) == 5 else None
            ok = isinstance(value, int | float) and math.isfinite(value) and value >= 0
            if ok and all(isinstance(c, str) for c in r[:4]):
                out[(r[0], r[1], r[2], r[3])] = float(value)  # type: ignore[arg-type]
            else:
                bad.append("/".join(str(c) for c in r[:4]))
        if bad:
            copy = _aside(self.path, "bad-rows")
            try:
                shutil.copy2(self.path, copy)
            except OSError as exc:
                raise JoulecastError(
                    f"--state {self.path}: has unusable rows and cannot be copied aside "
                    f"({exc.strerror})"
                ) from None
            self._log.warning(
                "state %s: %d row(s) without a usable energy (%s) start from 0; the file as it "
                "was is kept in %s",
                self.path,
                len(bad),
                ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else ""),
                copy,
            )
        return out

    def save(self, energy: Mapping[EnergyKey, float]) -> bool:
        """Write every counter (``MAX`` of stored and given); failures are logged, not raised.

        Returns:
            Whether the write reached the file.
        """
        try:
            db = self._db if self._db is not None else self._reopen()
            db.executemany(_UPSERT, [(*k, v) for k, v in energy.items()])
            db.commit()
        except (sqlite3.Error, OSError, JoulecastError, _Unusable) as exc:
            self.errors += 1
            self.total_errors += 1
            if self.errors == 1 or self.errors % _LOG_EVERY == 0:
                self._log.warning(
                    "state %s: cannot save (%s); counters are kept in memory and written again "
                    "next poll (%d failures so far)",
                    self.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    self.errors,
                )
            self._drop()
            return False
        if self.errors:
            self._log.warning("state %s: saving again after %d failures", self.path, self.errors)
            self.errors = 0
        return True

    def close(self) -> None:
        """Close the file (a last write is the caller's :meth:`save`)."""
        self._drop()

    def _open(self) -> sqlite3.Connection:
        """Connect and check the schema.

        Raises:
            _Unusable: Not SQLite, corrupt, or a table ``energy`` of another shape.
            sqlite3.Error: Anything else (permissions, locks, I/O).
        """
        self._drop()
        db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=2.0)
        try:
            db.execute(_SCHEMA)
            db.commit()
            cols = [(r[1], r[5]) for r in db.execute("PRAGMA table_info(energy)").fetchall()]
            if cols != _COLUMNS:
                raise _Unusable("table energy has another schema")
        except sqlite3.Error as exc:
            db.close()
            if _unusable(exc):
                raise _Unusable(str(exc)) from None
            raise
        except _Unusable:
            db.close()
            raise
        self._db = db
        return db

    def _reopen(self) -> sqlite3.Connection:
        """Open again after a failure; a file that is no longer ours is moved aside."""
        try:
            return self._open()
        except _Unusable as exc:
            self._move_aside(exc)
            return self._open()

    def _move_aside(self, exc: Exception) -> None:
        self._drop()
        if not self.path.exists():
            return
        dest = _aside(self.path, "unusable")
        try:
            self.path.rename(dest)
        except OSError as err:
            raise JoulecastError(
                f"--state {self.path}: not a usable database ({exc}) and cannot be moved aside "
                f"({err.strerror})"
            ) from None
        self._log.warning(
            "state %s: not a usable database (%s); moved to %s and starting a new file "
            "(counters restart from what is in memory)",
            self.path,
            exc,
            dest,
        )

    def _drop(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

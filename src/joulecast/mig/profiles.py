"""MIG profile names: compute slices, memory share and the GPU's total slice count."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from joulecast.errors import TelemetryError

# `1c.3g.40gb` is a compute-instance profile inside a 3g GPU instance; the GI size is what counts.
_PROFILE_RE = re.compile(r"^(?:\d+c\.)?(\d+)g\.(\d+)gb(?:\+\w+)?$", re.IGNORECASE)

# Memory is cut in eighths on every MIG part; the share follows the compute size, not the name,
# because names are unreliable (`7g.79gb`, dcgm-exporter #687).
_MEMORY_EIGHTHS_7 = {1: 1, 2: 2, 3: 4, 4: 4, 7: 8}
_MEMORY_QUARTERS_4 = {1: 1, 2: 2, 4: 4}
# A30 profiles (4 compute slices); every other MIG part has 7.
_A30_NAMES = {"1g.6gb", "2g.12gb", "4g.24gb", "1g.6gb+me", "2g.12gb+me"}


@dataclass(frozen=True)
class MigProfile:
    """A parsed MIG profile.

    Attributes:
        name: Profile name as reported (kept verbatim, including quirks like ``7g.79gb``).
        compute_slices: Number of compute slices (the leading ``Ng``).
        total_slices: Compute slices of the whole GPU (7, or 4 on A30).
        memory_fraction: Share of the GPU's memory system held by the instance.
    """

    name: str
    compute_slices: int
    total_slices: int
    memory_fraction: float

    @property
    def compute_fraction(self) -> float:
        """Share of the GPU's SMs held by the instance."""
        return self.compute_slices / self.total_slices


def total_slices_for(names: Iterable[str]) -> int:
    """Return the compute-slice count implied by a set of profile names (4 on A30, else 7)."""
    cleaned = {n.strip().lower() for n in names}
    return 4 if cleaned and cleaned <= _A30_NAMES else 7


def parse_profile(name: str, total_slices: int = 7) -> MigProfile:
    """Parse a MIG profile name such as ``3g.40gb``, ``1g.10gb+me``, ``1c.3g.40gb`` or ``7g.79gb``.

    Args:
        name: Profile name.
        total_slices: Compute slices of the GPU (7, or 4 on A30).

    Returns:
        The parsed profile.

    Raises:
        TelemetryError: If the name is not a MIG profile or its size does not fit the GPU.
    """
    m = _PROFILE_RE.match(name.strip())
    if m is None:
        raise TelemetryError(
            f"unknown MIG profile '{name}'; expected names like 3g.40gb, 1g.10gb+me or 7g.80gb"
        )
    slices = int(m.group(1))
    table = _MEMORY_QUARTERS_4 if total_slices == 4 else _MEMORY_EIGHTHS_7
    if slices not in table:
        raise TelemetryError(
            f"unknown MIG profile '{name}': {slices} compute slices is not a MIG size on a "
            f"{total_slices}-slice GPU"
        )
    denominator = 4 if total_slices == 4 else 8
    return MigProfile(
        name=name.strip(),
        compute_slices=slices,
        total_slices=total_slices,
        memory_fraction=table[slices] / denominator,
    )

"""Shared settings of the property-based (fuzz) tests in ``tests/test_fuzz_*.py``.

Each test runs ``JOULECAST_FUZZ_EXAMPLES`` examples (default 300, bounded in time; e.g. 10,000
for a long run), with no per-example deadline: sizes are bounded, so no example can hang.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=int(os.environ.get("JOULECAST_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def one_line(exc: BaseException) -> bool:
    """Whether an error's message is one short line, as users see it."""
    text = str(exc)
    return "\n" not in text and 0 < len(text) < 1000

"""The least-absolute-error programme behind the oracle power bound."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from joulecast.calibration.power_bound import _least_absolute


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_recovers_exact_non_negative_coefficients(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(40, 5))
    c = rng.uniform(0.0, 2.0, size=5)
    c[rng.integers(5)] = 0.0  # a zero coefficient stays at the bound
    got = _least_absolute(x, x @ c)
    assert np.allclose(x @ got, x @ c, atol=1e-7)
    assert (got >= 0).all()


def test_one_outlier_does_not_move_the_fit() -> None:
    """Minimising absolute (not squared) errors: one wild row is absorbed, not averaged in."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, size=(30, 3))
    c = np.array([1.0, 0.5, 2.0])
    y = x @ c
    y[7] += 50.0
    got = _least_absolute(x, y)
    assert np.allclose(got, c, atol=1e-6)


def test_negative_optimum_is_clipped_at_zero() -> None:
    x = np.column_stack([np.ones(10), np.arange(10.0)])
    y = 5.0 - 0.3 * np.arange(10.0)  # wants a negative slope
    got = _least_absolute(x, y)
    assert got[1] == 0.0

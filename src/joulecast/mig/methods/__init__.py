"""Attribution methods: a ladder from slice split to online regression, behind one interface.

Every method returns, per sample and instance, a non-negative *weight* in watts-like units that the
engine turns into shares of the measured dynamic power (reconciliation), plus a static-power
estimate. Only the online method also predicts watts that mean something before reconciliation.

Modules, by method family:

- :mod:`~joulecast.mig.methods.base`: names, model features, inputs, outputs, the interface.
- :mod:`~joulecast.mig.methods.static`: static (idle) power estimates.
- :mod:`~joulecast.mig.methods.ratio`: fixed-weight splits (slice, Kepler, CEEMS, activity,
  prototype, offline).
- :mod:`~joulecast.mig.methods.sensor`: power-sensor delay and averaging.
- :mod:`~joulecast.mig.methods.regimes`: workload change points.
- :mod:`~joulecast.mig.methods.regression`: the non-negative window regression.
- :mod:`~joulecast.mig.methods.online`: the online method (and its unreconciled variant).
- :mod:`~joulecast.mig.methods.registry`: every method by name.
"""

from joulecast.mig.methods.base import (
    METHOD_NAMES,
    MODEL_FEATURES,
    PRIOR_W_PER_UNIT,
    Method,
    MethodName,
    MethodOutput,
    ModelInputs,
    UnknownMethodError,
    model_inputs,
)
from joulecast.mig.methods.online import OnlineConfig, online_fit, online_raw
from joulecast.mig.methods.ratio import (
    activity_split,
    ceems_split,
    kepler_split,
    offline_split,
    prototype_split,
    slice_split,
)
from joulecast.mig.methods.regimes import detect_regimes
from joulecast.mig.methods.registry import METHODS, get_method
from joulecast.mig.methods.regression import WindowFit, contention_shares, fit_window
from joulecast.mig.methods.sensor import estimate_sensor, sensor_filter
from joulecast.mig.methods.static import estimate_idle_floor, settled_idle_power

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "MODEL_FEATURES",
    "PRIOR_W_PER_UNIT",
    "Method",
    "MethodName",
    "MethodOutput",
    "ModelInputs",
    "OnlineConfig",
    "UnknownMethodError",
    "WindowFit",
    "activity_split",
    "ceems_split",
    "contention_shares",
    "detect_regimes",
    "estimate_idle_floor",
    "estimate_sensor",
    "fit_window",
    "get_method",
    "kepler_split",
    "model_inputs",
    "offline_split",
    "online_fit",
    "online_raw",
    "prototype_split",
    "sensor_filter",
    "settled_idle_power",
    "slice_split",
]

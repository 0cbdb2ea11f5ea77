"""Per-tenant power attribution on MIG-partitioned GPUs.

Read telemetry (:mod:`~joulecast.mig.readers`), attribute board energy to instances with one of
several methods (:mod:`~joulecast.mig.methods`) under a static-power policy, with exact
conservation (:mod:`~joulecast.mig.attribute`); a synthetic generator with known truth
(:mod:`~joulecast.mig.synth`), a live service (:mod:`~joulecast.mig.service`) and a predictive
mode (:mod:`~joulecast.mig.predict`).
"""

from joulecast.mig.attribute import AttributionResult, GpuResult, InstanceResult, attribute
from joulecast.mig.frame import GpuTelemetry, Telemetry
from joulecast.mig.methods import METHOD_NAMES
from joulecast.mig.readers import read_telemetry

__all__ = [
    "METHOD_NAMES",
    "AttributionResult",
    "GpuResult",
    "GpuTelemetry",
    "InstanceResult",
    "Telemetry",
    "attribute",
    "read_telemetry",
]

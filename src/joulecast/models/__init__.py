"""Model front end: architectures as data, parameter counts and graph builders."""

from joulecast.models.build import (
    MemoryBreakdown,
    build_workload,
    memory_breakdown,
    memory_required_bytes,
)
from joulecast.models.params import ParamCounts, count_params
from joulecast.models.registry import (
    ModelConfig,
    load_model_config,
    model_config_from_hf_json,
    model_ids,
)

__all__ = [
    "MemoryBreakdown",
    "ModelConfig",
    "ParamCounts",
    "build_workload",
    "count_params",
    "load_model_config",
    "memory_breakdown",
    "memory_required_bytes",
    "model_config_from_hf_json",
    "model_ids",
]

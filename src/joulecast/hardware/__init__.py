"""GPU specifications (one data file per part)."""

from joulecast.hardware.spec import (
    GPUSpec,
    MemoryTechnology,
    gpu_from_file,
    gpu_ids,
    load_gpu,
    resolve_gpu,
)

__all__ = ["GPUSpec", "MemoryTechnology", "gpu_from_file", "gpu_ids", "load_gpu", "resolve_gpu"]

"""Impossible requests fail with one line saying what would work."""

from __future__ import annotations

import pytest

from joulecast.diffusion import estimate_generation
from joulecast.errors import JoulecastError, WorkloadError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "flux", "height": 1000}, "not a multiple of 16.*try 992 or 1008"),
        ({"model": "sana-1.6b", "width": 1000}, "multiple of 32.*try 992 or 1024"),
        ({"model": "wan-1.3b", "frames": 80}, "4n\\+1 frames.*try 77 or 81"),
        ({"model": "flux", "frames": 5}, "generates images"),
        ({"model": "flux", "num_gpus": 4, "ulysses": 3, "ring": 1}, "1x4, 2x2, 4x1"),
        ({"model": "flux", "num_gpus": 4, "ulysses": 2, "ring": 1}, "must equal num_gpus"),
        ({"model": "sd3.5-large", "num_gpus": 4, "ulysses": 4}, "38 attention heads.*1 or 2"),
        ({"model": "wan-1.3b", "num_gpus": 8, "ulysses": 8}, "12 attention heads"),
        ({"model": "cogvideox-2b", "num_gpus": 4}, "do not split over 4 GPUs"),
        ({"model": "flux", "num_gpus": 9}, "num_gpus must be an integer from 1 to 8"),
        ({"model": "flux", "batch": 0}, "batch must be"),
    ],
)
def test_bad_requests(kwargs: dict[str, object], message: str) -> None:
    model = str(kwargs.pop("model"))
    with pytest.raises(WorkloadError, match=message) as err:
        estimate_generation(model, "h100-sxm", **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_default_degrees_respect_the_heads() -> None:
    est = estimate_generation("sd3.5-large", "h100-sxm", num_gpus=8)
    assert (est.ulysses, est.ring) == (2, 4)
    assert estimate_generation("flux", "h100-sxm", num_gpus=8).ulysses == 8


def test_weights_must_fit_every_gpu() -> None:
    with pytest.raises(JoulecastError, match="weights need"):
        estimate_generation("hunyuanvideo", "a10")

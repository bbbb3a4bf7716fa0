"""Shared fixtures: the backend parameter runs a test on NumPy, and on CuPy when a GPU is present."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from netgraph import gpu_available

settings.register_profile(
    "default",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.load_profile("default")

if os.environ.get("NETGRAPH_REQUIRE_GPU") and not gpu_available():
    raise pytest.UsageError("NETGRAPH_REQUIRE_GPU is set but CuPy sees no CUDA device")

DEVICES = ["CPU", pytest.param("GPU", marks=pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU/CuPy"))]


@pytest.fixture(params=DEVICES)
def device(request) -> str:  # a constant per test, safe under hypothesis
    """ "CPU", and "GPU" when CuPy and a CUDA device are present."""
    return request.param

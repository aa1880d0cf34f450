"""Test-wide settings and fixtures. The suite's matrices are tiny, and BLAS threads only add contention on a shared
2-core box."""

import os
import sys

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture
def no_matplotlib(monkeypatch):
    """As if the plot extra were not installed: every import of matplotlib fails."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)

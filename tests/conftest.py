"""Test-wide settings: the suite's matrices are tiny, and BLAS threads only add contention on a shared 2-core box."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

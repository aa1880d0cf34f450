"""Level-1 BLAS helpers for in-place vector updates: `axpy` (y += a·x) and `scal` (x *= a).

When SciPy and threadpoolctl are installed they run as single BLAS calls (one pass over memory instead of two or
three NumPy passes); otherwise they are plain NumPy. Either way the result is deterministic. Shared by the update
rules and the regularization gradient, so it sits below both.
"""

import os

import numpy as np


def _level1_blas():
    """SciPy's BLAS `axpy`/`scal` getter, with SciPy's own OpenBLAS pool held to one thread; None when unavailable.

    Pip-installed SciPy ships its own OpenBLAS beside NumPy's. Two multi-threaded pools spinning on two
    cores make training many times slower, so SciPy's pool is limited to one thread; vector updates
    are memory-bound and gain nothing from a second thread anyway.
    """
    if os.environ.get("NNCLI_NO_BLAS_LEVEL1"):
        return None
    try:
        from scipy.linalg import get_blas_funcs
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    for lib in ThreadpoolController().lib_controllers:
        if os.path.basename(os.path.dirname(lib.filepath)) == "scipy.libs":
            lib.set_num_threads(1)
    return get_blas_funcs


_GET_BLAS = _level1_blas()
_ROUTINES = {}


def _blas(name, x):
    """The BLAS routine `name` for x's dtype when x can be updated in place (contiguous float32/64), else None."""
    if _GET_BLAS is None or not x.flags.c_contiguous:
        return None
    key = name, x.dtype
    f = _ROUTINES.get(key)
    if f is None and x.dtype in (np.float32, np.float64):  # native byte order only
        f = _ROUTINES[key] = _GET_BLAS(name, (x,))
    return f


def axpy(a, x, y, scratch=None):
    """y += a·x in place (x, y: same shape and dtype). NumPy fallback uses `scratch` to avoid allocating."""
    f = _blas("axpy", y)
    if f is not None and x.dtype == y.dtype and x.flags.c_contiguous:
        f(x.reshape(-1), y.reshape(-1), a=a)
        return y
    if a == 1:
        y += x
        return y
    t = np.multiply(x, a, out=scratch) if scratch is not None else a * x
    y += t
    return y


def scal(a, x):
    """x *= a in place."""
    f = _blas("scal", x)
    if f is not None:
        f(a, x.reshape(-1))
    else:
        x *= a
    return x

"""BLAS calls NumPy does not expose, on NumPy's own OpenBLAS: `axpy` (y += a·x), `scal` (x *= a) and `gemm`
(C = α·AᵀB + β·C, or α·AB + β·C).

numpy.matmul has no α or β and NumPy has no level-1 routines, so an update like v ← μ·v − lr·xᵀ·dout costs a
product written out and then two or three passes over it. The OpenBLAS library NumPy already loaded has them,
called here through ctypes: one pass, in the same thread pool NumPy's own matmul uses. (A second BLAS library,
such as SciPy's bundled OpenBLAS, brings a second pool; two pools spinning on two cores made an epoch up to 12×
slower, see ../shared/PERF-NOTES.md.) When the library cannot be found (a NumPy built against another BLAS) or
NNCLI_NO_BLAS=1 is set, `axpy` and `scal` run in plain NumPy and `HAVE_GEMM` is False; either way a run is
deterministic.
"""

import ctypes
import os
import sys
from pathlib import Path

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _numpy_openblas():
    """The OpenBLAS shared library NumPy's wheel ships and has loaded, or None.

    Only a library already mapped into this process is used (checked in /proc/self/maps where there is one), so
    loading it never starts a second BLAS."""
    if os.environ.get("NNCLI_NO_BLAS"):
        return None
    root = Path(np.__file__).parent
    candidates = sorted({*root.parent.glob("numpy.libs/*openblas*"), *root.glob(".dylibs/*openblas*")})
    maps = Path("/proc/self/maps")
    if sys.platform.startswith("linux") and maps.exists():  # the maps list resolved paths (a symlinked venv)
        mapped = {line.split(maxsplit=5)[-1] for line in maps.read_text().splitlines() if line.count(" ") >= 5}
        candidates = [path for path in candidates if os.path.realpath(path) in mapped]
    for path in candidates:
        try:
            return ctypes.CDLL(str(path))
        except OSError:
            continue
    return None


def _routines(lib):
    """{(name, dtype): ctypes function} for axpy, scal and gemm in float32 and float64, with their argument types;
    {} when the library lacks them. OpenBLAS names them cblas_sgemm, or with a prefix and an ILP64 suffix
    (scipy_cblas_sgemm64_ in NumPy 2 wheels, cblas_sgemm64_ in NumPy 1.26's)."""
    if lib is None:
        return {}
    for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
        if hasattr(lib, f"{prefix}cblas_sgemm{suffix}"):
            break
    else:
        return {}
    n = ctypes.c_int64 if suffix else ctypes.c_int
    p, e = ctypes.c_void_p, ctypes.c_int
    found = {}
    for letter, dtype, real in (("s", np.float32, ctypes.c_float), ("d", np.float64, ctypes.c_double)):
        signatures = {
            "axpy": [n, real, p, n, p, n],
            "scal": [n, real, p, n],
            "gemm": [e, e, e, n, n, n, real, p, n, p, n, real, p, n],
        }
        for name, argtypes in signatures.items():
            f = getattr(lib, f"{prefix}cblas_{letter}{name}{suffix}")
            f.argtypes, f.restype = argtypes, None
            found[name, np.dtype(dtype)] = f
    return found


_ROUTINES = _routines(_numpy_openblas())
HAVE_GEMM = bool(_ROUTINES)


def _address(a):
    """The address of a's first element (0.4 µs; a.ctypes.data costs 2–3 µs, per operand of every call)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only memory: the slower way
        return a.ctypes.data


def _routine(name, *arrays):
    """The BLAS routine `name` for the arrays' common dtype when every one is C-contiguous, else None."""
    f = _ROUTINES.get((name, arrays[0].dtype))
    if f is None or any(a.dtype != arrays[0].dtype or not a.flags.c_contiguous for a in arrays):
        return None
    return f


def axpy(a, x, y, scratch=None):
    """y += a·x in place (x, y: same shape and dtype). The NumPy fallback uses `scratch` to avoid allocating."""
    f = _routine("axpy", x, y)
    if f is not None and x.shape == y.shape:
        f(y.size, a, _address(x), 1, _address(y), 1)
        return y
    if a == 1:
        y += x
        return y
    t = np.multiply(x, a, out=scratch) if scratch is not None else a * x
    y += t
    return y


def scal(a, x):
    """x *= a in place."""
    f = _routine("scal", x)
    if f is not None:
        f(x.size, a, _address(x), 1)
    else:
        x *= a
    return x


def gemm(alpha, a, b, beta, c, trans_a=False):
    """c ← α·aᵀ·b + β·c (`trans_a`) or α·a·b + β·c, in place, as one BLAS call; every array C-contiguous and of one
    dtype, c of the product's shape. Callers check HAVE_GEMM: without it this is plain NumPy with temporaries."""
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    if c.shape != (m, b.shape[1]) or b.shape[0] != k:
        raise ValueError(f"gemm: shapes {a.shape}{'ᵀ' if trans_a else ''} · {b.shape} do not give {c.shape}")
    f = _routine("gemm", a, b, c)
    if f is None:
        c *= beta
        c += alpha * ((a.T if trans_a else a) @ b)
        return c
    n = c.shape[1]
    f(
        ROW_MAJOR,
        TRANS if trans_a else NO_TRANS,
        NO_TRANS,
        m,
        n,
        k,
        alpha,
        _address(a),
        a.shape[1],
        _address(b),
        n,
        beta,
        _address(c),
        n,
    )
    return c

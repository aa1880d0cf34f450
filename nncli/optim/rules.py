"""Update rules. Each keeps its own state and updates the flat parameter vector in place.

`step(w, dw, lr)` with w, dw the network's flat `theta` and `grad` (P,). State arrays have the
shape of w and are exposed by `state()` / restored by `load_state()` for exact resume.

SGD and the momentum rules are written with two vector operations, `axpy` (y += a·x) and `scal`
(x *= a). When SciPy and threadpoolctl are installed they run as single BLAS calls (one pass over
memory instead of two or three NumPy passes); otherwise they are plain NumPy. Either way a run is
deterministic: the same seed gives bit-identical weights.
"""

import math
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


class SGD:
    """Vanilla gradient descent: w −= lr·dw."""

    state_names = ()

    def __init__(self, size, dtype=np.float64, **_):
        self.t = 0
        self._scratch = np.zeros(size, dtype)
        for name in self.state_names:
            setattr(self, name, np.zeros(size, dtype))

    def step(self, w, dw, lr):
        self.t += 1
        axpy(-lr, dw, w, self._scratch)

    def state(self):
        """Arrays and counters needed to continue exactly where this optimizer stopped."""
        return {name: getattr(self, name) for name in self.state_names}, {"t": self.t}

    def load_state(self, arrays, counters):
        for name in self.state_names:
            getattr(self, name)[...] = arrays[name]
        self.t = int(counters["t"])


class Momentum(SGD):
    """Momentum: v = μ·v − lr·dw; w += v."""

    state_names = ("v",)

    def __init__(self, size, dtype=np.float64, momentum=0.9, **_):
        super().__init__(size, dtype)
        self.mu = momentum

    def step(self, w, dw, lr):
        self.t += 1
        scal(self.mu, self.v)
        axpy(-lr, dw, self.v, self._scratch)
        axpy(1, self.v, w)


class Nesterov(Momentum):
    """Nesterov momentum: v = μ·v − lr·dw; w += μ·v − lr·dw (the look-ahead form, equal to w += −μ·v_prev + (1 + μ)·v)."""

    def step(self, w, dw, lr):
        self.t += 1
        scal(self.mu, self.v)
        axpy(-lr, dw, self.v, self._scratch)
        axpy(self.mu, self.v, w, self._scratch)
        axpy(-lr, dw, w, self._scratch)


class RMSProp(SGD):
    """RMSProp: cache = d·cache + (1 − d)·dw²; w −= lr·dw / (√cache + eps)."""

    state_names = ("cache",)

    def __init__(self, size, dtype=np.float64, decay_rate=0.99, eps=1e-8, **_):
        super().__init__(size, dtype)
        self.decay_rate, self.eps = decay_rate, eps

    def step(self, w, dw, lr):
        self.t += 1
        s = self._scratch
        self.cache *= self.decay_rate
        np.multiply(dw, dw, out=s)
        s *= 1 - self.decay_rate
        self.cache += s
        np.sqrt(self.cache, out=s)
        s += self.eps
        np.divide(dw, s, out=s)
        s *= lr
        w -= s


class Adam(SGD):
    """Adam: m, v running means of dw and dw² with bias correction; w −= lr·m̂ / (√v̂ + eps)."""

    state_names = ("m", "v")

    def __init__(self, size, dtype=np.float64, beta1=0.9, beta2=0.999, eps=1e-8, **_):
        super().__init__(size, dtype)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def step(self, w, dw, lr):
        self.t += 1
        s = self._scratch
        self.m *= self.beta1
        np.multiply(dw, 1 - self.beta1, out=s)
        self.m += s
        self.v *= self.beta2
        np.multiply(dw, dw, out=s)
        s *= 1 - self.beta2
        self.v += s
        # w −= lr·(m / (1 − β1^t)) / (√(v / (1 − β2^t)) + eps)
        np.divide(self.v, 1 - self.beta2 ** self.t, out=s)
        np.sqrt(s, out=s)
        s += self.eps
        np.divide(self.m, s, out=s)
        s *= lr / (1 - self.beta1 ** self.t)
        w -= s


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name, size, dtype=np.float64, **hyper):
    """Build the update rule named in a config; unused hyperparameters are ignored."""
    return OPTIMIZERS[name](size, dtype, **hyper)


def global_norm(dw):
    """‖dw‖₂ as a Python float. Σdw² overflows float32 long before the norm does (entries near 1e19 suffice), so
    an infinite float32 result is summed again in float64."""
    with np.errstate(over="ignore"):  # an overflow is caught right below
        norm = float(np.sqrt(np.dot(dw, dw)))
    if math.isinf(norm) and dw.dtype != np.float64:
        wide = dw.astype(np.float64)
        norm = float(np.sqrt(np.dot(wide, wide)))
    return norm


def clip_by_global_norm(dw, max_norm):
    """Scale dw in place so its L2 norm is at most max_norm; return the norm before clipping.

    A non-finite norm (an inf or NaN gradient) leaves dw as it is: scaling would turn it into zeros or NaN and
    hide the divergence that the next loss then reports."""
    norm = global_norm(dw)
    if max_norm is not None and math.isfinite(norm) and norm > max_norm:
        dw *= max_norm / norm
    return norm

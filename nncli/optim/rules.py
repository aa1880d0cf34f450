"""Update rules, cs231n's `update(w, dw, config)` as objects: each keeps its own state and updates the flat
parameter vector in place. `OPTIMIZERS` is the registry the config's `optimizer.name` is checked against.

`step(w, dw, lr)` with w, dw the network's flat `theta` and `grad` (P,). State arrays have the
shape of w and are exposed by `state()` / restored by `load_state()` for exact resume.

SGD and the momentum rules are written with two vector operations, `axpy` (y += a·x) and `scal`
(x *= a), single BLAS calls on NumPy's own OpenBLAS (one pass over memory instead of two or three
NumPy passes; plain NumPy where that library is not found, see nncli.blas). Either way a run is
deterministic: the same seed gives bit-identical weights. SGD and momentum also fold into the
backward pass (nncli.optim.fused), which updates the weights' part of the vector and leaves the rest,
from `start` on, to `step`.
"""

import inspect

import numpy as np

from nncli.blas import axpy, scal


class SGD:
    """Vanilla gradient descent: w −= lr·dw."""

    state_names = ()

    def __init__(self, size, dtype=np.float64):
        self.t = 0
        self._scratch = np.zeros(size, dtype)
        for name in self.state_names:
            setattr(self, name, np.zeros(size, dtype))

    def step(self, w, dw, lr, start=0):
        """One update; w and dw are theta[start:] and grad[start:], the part of the vector this step updates."""
        self.t += 1
        axpy(-lr, dw, w, self._scratch[start:])

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

    def __init__(self, size, dtype=np.float64, momentum=0.9):
        super().__init__(size, dtype)
        self.mu = momentum

    def step(self, w, dw, lr, start=0):
        self.t += 1
        v = self.v[start:]
        scal(self.mu, v)
        axpy(-lr, dw, v, self._scratch[start:])
        axpy(1, v, w)


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

    def __init__(self, size, dtype=np.float64, decay_rate=0.99, eps=1e-8):
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

    def __init__(self, size, dtype=np.float64, beta1=0.9, beta2=0.999, eps=1e-8):
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
        np.divide(self.v, 1 - self.beta2**self.t, out=s)
        np.sqrt(s, out=s)
        s += self.eps
        np.divide(self.m, s, out=s)
        s *= lr / (1 - self.beta1**self.t)
        w -= s


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "rmsprop": RMSProp, "adam": Adam}


def hyperparameters(name):
    """The hyperparameters the update rule `name` takes (its constructor's keywords after size and dtype)."""
    return tuple(inspect.signature(OPTIMIZERS[name].__init__).parameters)[3:]


def make_optimizer(name, size, dtype=np.float64, **hyper):
    """Build the update rule `name` for `size` parameters; a hyperparameter the rule does not take is an error."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown update rule {name!r}; the rules are {', '.join(OPTIMIZERS)}")
    takes = hyperparameters(name)
    unknown = sorted(set(hyper) - set(takes))
    if unknown:
        raise ValueError(
            f"{name} takes no hyperparameter {', '.join(map(repr, unknown))}; it takes {', '.join(takes) or 'none'}"
        )
    return OPTIMIZERS[name](size, dtype, **hyper)


def optimizer_from_config(optimizer, size, dtype=np.float64):
    """The update rule an `optimizer` config section names, with the hyperparameters that rule takes from it.

    Each hyperparameter is a key of the config's optimizer section (config/schema.py, where a new one is added;
    tests/test_registries.py checks that every registered rule's are there)."""
    takes = hyperparameters(optimizer.name)
    missing = [h for h in takes if not hasattr(optimizer, h)]
    if missing:
        raise ValueError(f"{optimizer.name} takes {', '.join(missing)}, which the optimizer config has no key for")
    return make_optimizer(optimizer.name, size, dtype, **{h: getattr(optimizer, h) for h in takes})

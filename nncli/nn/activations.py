"""Activation gates and their registry, `ACTIVATIONS`: the one list of the nonlinearities a config may name.

An activation is a `Gate` subclass registered with `@activation`. Its class attributes say everything the rest of
nncli needs: `name` (the config value), `rule` (the local gradient rule in words, for the backprop trace),
`kinked` (a non-differentiable point at 0: gradient checks step around it, using `kinks()`), `health` (what the
diagnostics watch: "dead" units, whose `kinks()` (input > 0) is never true in an epoch, as ReLUs die; or
"saturated" units, where a static `saturated(out)` is true of the gate's last `out`, as sigmoid and tanh
saturate; None: nothing), and its constructor's keywords after `inplace` (the `model.*` config keys it takes,
e.g. LeakyReLU's `negative_slope`). Adding an activation is one class.
"""

import inspect

import numpy as np

from nncli.nn.fast import relu_backward_into, relu_into
from nncli.nn.layers import Gate

ACTIVATIONS = {}


def activation(cls):
    """Register the activation gate `cls` under `cls.name` (a class decorator)."""
    if not isinstance(getattr(cls, "name", None), str) or not isinstance(getattr(cls, "rule", None), str):
        raise TypeError(f"{cls.__name__}: an activation needs a `name` and a `rule`")
    if getattr(cls, "health", None) not in ("dead", "saturated", None):
        raise TypeError(f"{cls.__name__}: health must be 'dead', 'saturated' or None")
    ACTIVATIONS[cls.name] = cls
    return cls


def hyperparameters(name):
    """The config keys the activation `name` takes (its constructor's keywords other than `inplace`)."""
    return tuple(p for p in inspect.signature(ACTIVATIONS[name].__init__).parameters if p not in ("self", "inplace"))


def make_activation(name, inplace=False, **keys):
    """The activation gate `name`, given the model config's keys; each takes the ones it needs (`negative_slope`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; the activations are {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=inplace, **{k: keys[k] for k in hyperparameters(name) if k in keys})


@activation
class ReLU(Gate):
    """out = max(0, x); the max gate routes the gradient to x where x > 0, else nowhere."""

    name = "relu"
    kinked = True
    health = "dead"
    rule = "max gate max(0, x): routes the upstream gradient to x where x > 0, 0 elsewhere"

    def forward(self, x):
        out = self._output(x)
        zeros = self._buffer("zeros", x.shape, x.dtype, fill=0)
        relu_into(x, zeros, out)
        self.out = out
        return out

    def backward(self, dout):
        mask = self._buffer("mask", dout.shape, dout.dtype)
        return relu_backward_into(dout, self.out, mask, self._input_grad(dout))

    def kinks(self):
        return self.out > 0


@activation
class LeakyReLU(Gate):
    """out = x for x > 0, negative_slope·x otherwise; the gradient is scaled the same way."""

    name = "leaky_relu"
    kinked = True
    health = "dead"
    rule = "leaky ReLU: passes the upstream gradient where x > 0, scales it by negative_slope elsewhere"

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, x):
        self.positive = x > 0
        out = self._output(x)
        np.multiply(x, np.where(self.positive, 1.0, self.negative_slope).astype(x.dtype), out=out)
        return out

    def backward(self, dout):
        slope = np.where(self.positive, 1.0, self.negative_slope).astype(dout.dtype)
        return np.multiply(dout, slope, out=self._input_grad(dout))

    def kinks(self):
        return self.positive


@activation
class Sigmoid(Gate):
    """out = σ(x) = 1 / (1 + e^(-x)), computed without overflow; dx = dout·σ(x)·(1 − σ(x))."""

    name = "sigmoid"
    health = "saturated"
    rule = "sigmoid: dx = dout·σ(x)·(1 − σ(x))"

    @staticmethod
    def saturated(out):
        """Where σ is flat: its output within 0.01 of 0 or 1."""
        return (out < 0.01) | (out > 0.99)

    def forward(self, x):
        e = np.exp(-np.abs(x))  # e ≤ 1, so nothing overflows for any finite x
        out = self._output(x)
        np.divide(np.where(x >= 0, 1, e), 1 + e, out=out)
        self.out = out
        return out

    def backward(self, dout):
        return np.multiply(dout, self.out * (1 - self.out), out=self._input_grad(dout))


@activation
class Tanh(Gate):
    """out = tanh(x); dx = dout·(1 − out²)."""

    name = "tanh"
    health = "saturated"
    rule = "tanh: dx = dout·(1 − out²)"

    @staticmethod
    def saturated(out):
        """Where tanh is flat: |out| above 0.99."""
        return np.abs(out) > 0.99

    def forward(self, x):
        self.out = np.tanh(x, out=self._output(x))
        return self.out

    def backward(self, dout):
        return np.multiply(dout, 1 - self.out * self.out, out=self._input_grad(dout))


@activation
class ELU(Gate):
    """out = x for x > 0, alpha·(e^x − 1) otherwise; dx = dout where x > 0, dout·(out + alpha) elsewhere."""

    name = "elu"
    kinked = True
    health = "dead"
    rule = "ELU: passes the upstream gradient where x > 0, multiplies it by out + alpha elsewhere"

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x):
        self.positive = x > 0
        value = np.where(self.positive, x, self.alpha * np.expm1(np.minimum(x, 0)))  # expm1(≤ 0) never overflows
        out = self.out = self._output(x)
        out[...] = value
        return out

    def backward(self, dout):
        local = np.where(self.positive, 1, self.out + self.alpha).astype(dout.dtype, copy=False)
        return np.multiply(dout, local, out=self._input_grad(dout))

    def kinks(self):
        return self.positive

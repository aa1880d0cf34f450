"""The elementary gates of the backprop notes, for circuits of scalars, vectors and matrices.

Each gate's backward applies its local rule to the upstream gradient:
add passes dout to both inputs unchanged, multiply gives each input the other input times
dout, max routes dout to the larger input. Where a value feeds two gates (a fork), a copy gate
adds the gradients that come back: `dz = dz_from_a + dz_from_b`.

Each gate states its `rule` in words and its Jacobian's `structure`. An elementwise gate's Jacobian is diagonal
and never built: its backward multiplies dout by the local derivative, entry by entry. Inputs of different
shapes broadcast as in NumPy, and the gradient of a broadcast input is summed back to its own shape.
A gate with a non-differentiable point (max, min, relu, abs) counts the entries sitting exactly on it
(`ties()`) and says which subgradient it used there (`subgradient`).

`record(gates)` watches any gates (these or the layers of a network) run, for the backprop trace.
"""

from contextlib import contextmanager

import numpy as np

from nncli.backprop.tensor_gates import (  # noqa: F401  (the vector gates, re-exported with the scalar ones)
    DIAGONAL,
    Abs,
    Dot,
    Exp,
    Log,
    MatMul,
    Negate,
    Norm2,
    Power,
    Reciprocal,
    Sum,
    Transpose,
    Unary,
    activation_gate,
)
from nncli.backprop.tensor_gates import unbroadcast as _unbroadcast


class Add:
    """out = a + b; da = dout, db = dout (summed back over any broadcast axes)."""

    rule = "add gate: passes the upstream gradient to both inputs unchanged"
    structure = "identity (elementwise), never materialized"

    def forward(self, a, b):
        self.shapes = np.shape(a), np.shape(b)
        return np.add(a, b)

    def backward(self, dout):
        if not hasattr(self, "shapes"):
            return dout, dout
        return _unbroadcast(dout, self.shapes[0]), _unbroadcast(dout, self.shapes[1])


class Subtract(Add):
    """out = a − b; da = dout, db = −dout."""

    rule = "subtract gate: passes the upstream gradient to a unchanged and to b negated"

    def forward(self, a, b):
        self.shapes = np.shape(a), np.shape(b)
        return np.subtract(a, b)

    def backward(self, dout):
        return _unbroadcast(dout, self.shapes[0]), _unbroadcast(np.negative(dout), self.shapes[1])


class Multiply:
    """out = a·b; da = b·dout, db = a·dout (each input gets the other input times dout)."""

    rule = "multiply gate: each input gets the other input times the upstream gradient"
    structure = DIAGONAL

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.multiply(a, b)

    def backward(self, dout):
        da, db = np.multiply(self.b, dout), np.multiply(self.a, dout)
        return _unbroadcast(da, np.shape(self.a)), _unbroadcast(db, np.shape(self.b))


class Divide(Multiply):
    """out = a / b; da = dout / b, db = −dout·a / b²."""

    rule = "divide gate: a gets dout / b, b gets −dout·a / b²"

    def domain(self, a, b):
        return "division by zero" if np.any(np.equal(b, 0)) else None

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.divide(a, b)

    def backward(self, dout):
        da = np.divide(dout, self.b)
        db = -da * np.divide(self.a, self.b)
        return _unbroadcast(da, np.shape(self.a)), _unbroadcast(db, np.shape(self.b))


class Max:
    """out = max(a, b); the gradient goes to the larger input (to a on a tie), the other gets 0."""

    rule = "max gate: routes the upstream gradient to the larger input, 0 to the other"
    structure = DIAGONAL
    subgradient = "on a tie the whole gradient goes to the first input"
    pick = staticmethod(np.greater_equal)

    def forward(self, a, b):
        self.shapes = np.shape(a), np.shape(b)
        self.a_wins = self.pick(a, b)
        self.tied = np.equal(a, b)
        return np.where(self.a_wins, a, b)

    def backward(self, dout):
        da, db = np.where(self.a_wins, dout, 0.0), np.where(self.a_wins, 0.0, dout)
        if not hasattr(self, "shapes") or self.shapes == ((), ()):
            return da, db
        return _unbroadcast(da, self.shapes[0]), _unbroadcast(db, self.shapes[1])

    def ties(self):
        return int(np.count_nonzero(self.tied))

    def kinks(self):
        return self.a_wins


class Min(Max):
    """out = min(a, b); the gradient goes to the smaller input (to a on a tie), the other gets 0."""

    rule = "min gate: routes the upstream gradient to the smaller input, 0 to the other"
    pick = staticmethod(np.less_equal)


class Copy:
    """A value used k times (a fork): forward hands the same value to each use; backward adds their gradients."""

    rule = "copy gate: adds the gradients that come back from each use"
    structure = "identity for each use, never materialized"

    def forward(self, a):
        return a

    def backward(self, *douts):
        return np.sum(douts, axis=0) if len(douts) > 1 else douts[0]


class Tape:
    """A record of every forward and backward call of some gates, in the order they ran.

    Each entry is a `Call`; values are copied as they pass, because the engine's gates reuse their buffers and
    activations overwrite their input and upstream gradient in place.
    """

    def __init__(self):
        self.calls = []

    def of(self, gate, phase):
        """The calls of `gate` in `phase` ("forward" or "backward")."""
        return [c for c in self.calls if c.gate is gate and c.phase == phase]


class Call:
    """One gate call: `phase`, the input (x or dout) and the result (out or dx), copies; after a backward,
    `grads` holds copies of the gate's parameter gradients (`dW`, `db`) as that backward left them."""

    def __init__(self, gate, phase, value, result, grads=None):
        self.gate, self.phase, self.value, self.result, self.grads = gate, phase, value, result, grads or {}


def _copy(a):
    return None if a is None else np.array(a, copy=True)


@contextmanager
def record(gates):
    """Within the block, every `forward(x)` and `backward(dout)` of `gates` is recorded on the yielded `Tape`.

    The gates still run their own code on their own buffers (the wrappers only copy what passes through), so a
    network's `loss()` inside the block is exactly the engine's forward and backward pass.
    """
    tape = Tape()

    def wrap(gate):
        forward, backward = gate.forward, gate.backward

        def recorded_forward(x, *args, **kwargs):
            value = _copy(x)  # before an in-place activation overwrites it with its output
            out = forward(x, *args, **kwargs)
            tape.calls.append(Call(gate, "forward", value, _copy(out)))
            return out

        def recorded_backward(dout, *args, **kwargs):
            upstream = _copy(dout)  # before an in-place gate overwrites it
            dx = backward(dout, *args, **kwargs)
            grads = {p: _copy(getattr(gate, "d" + p)) for p in getattr(gate, "params", ())}
            tape.calls.append(Call(gate, "backward", upstream, _copy(dx), grads))
            return dx

        gate.forward, gate.backward = recorded_forward, recorded_backward

    for gate in gates:
        wrap(gate)
    try:
        yield tape
    finally:
        for gate in gates:
            del gate.forward, gate.backward

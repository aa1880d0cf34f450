"""The elementary gates of the backprop notes, for circuits of scalars or arrays.

Each gate's backward applies its local rule to the upstream gradient:
add passes dout to both inputs unchanged, multiply gives each input the other input times
dout, max routes dout to the larger input. Where a value feeds two gates (a fork), the
caller adds the gradients that come back: `dz = dz_from_a + dz_from_b`.

`record(gates)` watches any gates (these or the layers of a network) run, for the backprop trace.
"""

from contextlib import contextmanager

import numpy as np


class Add:
    """out = a + b; da = dout, db = dout."""

    rule = "add gate: passes the upstream gradient to both inputs unchanged"

    def forward(self, a, b):
        return np.add(a, b)

    def backward(self, dout):
        return dout, dout


class Multiply:
    """out = a·b; da = b·dout, db = a·dout (each input gets the other input times dout)."""

    rule = "multiply gate: each input gets the other input times the upstream gradient"

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.multiply(a, b)

    def backward(self, dout):
        return np.multiply(self.b, dout), np.multiply(self.a, dout)


class Max:
    """out = max(a, b); the gradient goes to the larger input (to a on a tie), the other gets 0."""

    rule = "max gate: routes the upstream gradient to the larger input, 0 to the other"

    def forward(self, a, b):
        self.a_wins = np.greater_equal(a, b)
        return np.maximum(a, b)

    def backward(self, dout):
        return np.where(self.a_wins, dout, 0.0), np.where(self.a_wins, 0.0, dout)


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

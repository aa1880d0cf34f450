"""The elementary gates of the backprop notes, for circuits of scalars or arrays.

Each gate's backward applies its local rule to the upstream gradient:
add passes dout to both inputs unchanged, multiply gives each input the other input times
dout, max routes dout to the larger input. Where a value feeds two gates (a fork), the
caller adds the gradients that come back: `dz = dz_from_a + dz_from_b`.
"""

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

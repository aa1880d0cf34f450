"""Layers as gates of the computational graph: the base `Gate`, `Affine` and `Dropout` (activations: activations.py).

Each gate has `forward(x)`, which returns its output and keeps what backward needs, and
`backward(dout)`, which takes the upstream gradient dL/dout and returns dL/dx (the chain rule:
local gradient times upstream gradient), filling the gradients of its own parameters on the way.

Shapes: x (N, D) for a batch of N rows. Outputs and input gradients live in buffers the gate
reuses across calls of the same or smaller batch size, so a training step allocates nothing;
an array a gate returns stays valid until that gate runs again.
"""

import numpy as np

from nncli.nn.fast import sum_rows


def reuse(buf, shape, dtype):
    """A (N, ...) view of `buf` when it is big enough, else a fresh buffer of `shape` (its `.base` is then None)."""
    if buf is not None and buf.dtype == dtype and buf.shape[1:] == shape[1:] and buf.shape[0] >= shape[0]:
        return buf[: shape[0]]
    return np.empty(shape, dtype)


class Gate:
    """Base of every layer: no parameters, no kinks, buffers created on first use.

    `health` names what the diagnostics watch in a gate's units ("dead" or "saturated", see activations.py).
    """

    params = ()
    kinked = False
    health = None

    def __init__(self, inplace=False):
        # In-place gates overwrite their input (forward) and upstream gradient (backward); the
        # network turns this on for activations, whose inputs and dout it owns and never reads again.
        self.inplace = inplace
        self._buffers = {}
        self._views = {}

    def _buffer(self, name, shape, dtype, fill=None):
        """A reusable work array: kept at its largest size, returned as a view of the first N rows.

        `fill` sets a constant array (zeros, ones) once, when the buffer is created.
        """
        key = name, shape, dtype
        view = self._views.get(key)  # the common case: same batch shape as a previous step, one dict lookup
        if view is None:
            view = reuse(self._buffers.get(name), shape, dtype)
            if view.base is None:
                if fill is not None:
                    view.fill(fill)
                self._buffers[name] = view
                self._views = {
                    k: v for k, v in self._views.items() if k[0] != name
                }  # drop views of the replaced buffer
            self._views[key] = view
        return view

    def _output(self, x):
        return x if self.inplace else self._buffer("out", x.shape, x.dtype)

    def _input_grad(self, dout):
        return dout if self.inplace else self._buffer("dx", dout.shape, dout.dtype)

    def kinks(self):
        """Which side of each non-differentiable point the last forward's units were on, or None."""
        return None


class Affine(Gate):
    """Fully connected layer: out = x·W + b, with W (D, M) and b (M,).

    Backward: dx = dout·Wᵀ, dW = xᵀ·dout, db = Σ_rows dout. W, b, dW and db may be views
    into the network's flat buffers; the gate writes the gradients into dW and db in place.
    """

    params = ("W", "b")

    def __init__(self, W, b, dW=None, db=None):
        super().__init__()
        self.W, self.b = W, b
        self.dW = np.zeros_like(W) if dW is None else dW
        self.db = np.zeros_like(b) if db is None else db

    def forward(self, x):
        self.x = x
        out = self._buffer("out", (x.shape[0], self.W.shape[1]), x.dtype)
        np.matmul(x, self.W, out=out)
        out += self.b
        return out

    def backward(self, dout, need_dx=True, update=None):
        """Fill db and dW; return dx (or None when `need_dx` is False, e.g. for the first layer).

        `update` (nncli.optim.fused) takes the place of dW: called as update(self, dout) once dx is formed, it
        updates W from xᵀ·dout itself."""
        ones = self._buffer("ones", (dout.shape[0],), dout.dtype, fill=1)
        sum_rows(dout, ones, self.db)
        dx = np.matmul(dout, self.W.T, out=self._buffer("dx", self.x.shape, dout.dtype)) if need_dx else None
        if update is None:
            np.matmul(self.x.T, dout, out=self.dW)
        else:
            update(self, dout)
        return dx


class Dropout(Gate):
    """Inverted dropout: in training, drop each unit with probability p and scale survivors by 1/(1 − p).

    In eval mode (`train=False`) it is the identity, so inference needs no rescaling. The mask
    comes from `rng`, the network's seeded generator, so runs are reproducible.
    """

    rule = "inverted dropout: multiplies the upstream gradient by the same mask (0 or 1/(1 − p)) as the forward"

    def __init__(self, p, rng, inplace=False):
        super().__init__(inplace)
        if not 0 <= p < 1:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p, self.rng = p, rng
        self.train = True

    def forward(self, x):
        self.active = self.train and self.p > 0
        if not self.active:
            return x
        self.mask = self._buffer("mask", x.shape, x.dtype)
        self.rng.random(out=self.mask, dtype=x.dtype)
        # mask = [u ≥ p] / (1 − p), computed in place
        np.greater_equal(self.mask, self.p, out=self.mask)
        self.mask *= 1 / (1 - self.p)
        return np.multiply(x, self.mask, out=self._output(x))

    def backward(self, dout):
        if not self.active:
            return dout
        return np.multiply(dout, self.mask, out=self._input_grad(dout))

"""Normalization gates and their registry, `NORMS`: batch normalization and layer normalization.

Both normalize their input x (N, H), the output of a hidden affine, to x̂ = (x − μ) / σ with σ = √(var + eps), then
scale and shift it per unit: out = γ·x̂ + β, γ and β (H,) learned (γ starts at 1, β at 0). They differ in what the
statistics are taken over: batch norm, each unit over the batch's rows (so a row's output depends on the other
rows, and evaluation uses running averages instead); layer norm, each row over its own units (the same in
training and evaluation).

Backward, in the simplified closed form rather than the staged graph (nncli.nn.reference holds that one, and the
tests hold the two together): with dx̂ = γ·dout and means over the same axis as the statistics,

    dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ,      dγ = Σ_rows dout·x̂,      dβ = Σ_rows dout.

Every sum and mean is a GEMV against a vector of ones (nncli.nn.fast.sum_rows) or, for a sum of products, one
einsum that never forms the product; every array lives in a buffer reused across steps, like the other gates.
"""

import numpy as np

from nncli.nn.fast import column_dots, row_dots, sum_rows
from nncli.nn.layers import Gate

NORMS = {}


def norm(cls):
    """Register the normalization gate `cls` under `cls.name` (a class decorator)."""
    NORMS[cls.name] = cls
    return cls


class Normalization(Gate):
    """What both norms share: the parameters γ and β (views into the network's flat buffers), eps, and the output."""

    params = ("gamma", "beta")

    def __init__(self, gamma, beta, dgamma=None, dbeta=None, eps=1e-5, inplace=False):
        super().__init__(inplace)
        self.gamma, self.beta, self.eps = gamma, beta, float(eps)
        self.dgamma = np.zeros_like(gamma) if dgamma is None else dgamma
        self.dbeta = np.zeros_like(beta) if dbeta is None else dbeta
        self.train = True

    def _ones(self, name, n, dtype):
        """A vector of n ones (a view of the largest made so far), the GEMV's other factor for a sum."""
        return self._buffer(name, (n,), dtype, fill=1)


@norm
class BatchNorm(Normalization):
    """Batch normalization: each unit normalized by the batch's mean and variance in training, by running averages
    of them in evaluation (`train = False`): running = momentum·running + (1 − momentum)·batch, starting at mean 0
    and variance 1 (the variance is the batch's own, divided by N, as in the course's assignment).

    A training batch of one row has no spread: x̂ = 0, so out = β and dx = 0, exactly (no NaN, since eps > 0); such
    a batch says nothing about the variance, so it leaves the running averages as they were.
    """

    name = "batchnorm"
    rule = (
        "batch norm: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ with dx̂ = γ·dout, means over the batch "
        "(each row's output depends on every row); dγ = Σ_rows dout·x̂, dβ = Σ_rows dout"
    )

    def __init__(self, gamma, beta, dgamma=None, dbeta=None, eps=1e-5, momentum=0.9, inplace=False):
        super().__init__(gamma, beta, dgamma, dbeta, eps, inplace)
        self.momentum = float(momentum)
        self.running_mean = np.zeros_like(gamma)
        self.running_var = np.ones_like(gamma)

    def forward(self, x):
        if not self.train:
            scale = self.gamma / np.sqrt(self.running_var + self.eps)
            out = np.multiply(x, scale, out=self._output(x))
            out += self.beta - self.running_mean * scale
            return out
        n = x.shape[0]
        ones = self._ones("ones_rows", n, x.dtype)
        mean = sum_rows(x, ones, self._buffer("mean", x.shape[1:], x.dtype))
        mean /= n
        xc = np.subtract(x, mean, out=self._buffer("xc", x.shape, x.dtype))
        var = column_dots(xc, xc, self._buffer("var", x.shape[1:], x.dtype))
        var /= n
        self.xc, self.inv_std = xc, 1 / np.sqrt(var + self.eps)
        if n > 1:
            self.running_mean *= self.momentum
            self.running_mean += (1 - self.momentum) * mean
            self.running_var *= self.momentum
            self.running_var += (1 - self.momentum) * var
        out = np.multiply(xc, self.gamma * self.inv_std, out=self._output(x))  # γ·x̂ = (x − μ)·(γ/σ): one pass
        out += self.beta
        return out

    @property
    def xhat(self):
        """x̂ = (x − μ)/σ of the last training batch (N, H), a new array: the gate keeps only x − μ and 1/σ, so
        forward and backward each make one pass fewer over (N, H)."""
        return self.xc * self.inv_std

    def backward(self, dout):
        """mean(dx̂) = γ·dβ / N and mean(dx̂·x̂) = γ·dγ / N, so dx = (γ/σ)·(dout − (dβ + x̂·dγ) / N); with x̂ = xc/σ
        (xc = x − μ): dγ = Σ_rows dout·xc / σ and dx = (γ/σ)·(dout − dβ/N − xc·dγ/(σN))."""
        n = dout.shape[0]
        ones = self._ones("ones_rows", n, dout.dtype)
        sum_rows(dout, ones, self.dbeta)
        column_dots(dout, self.xc, self.dgamma)
        self.dgamma *= self.inv_std
        scratch = np.multiply(
            self.xc, self.dgamma * (self.inv_std / n), out=self._buffer("scratch", dout.shape, dout.dtype)
        )
        dx = np.subtract(dout, scratch, out=self._input_grad(dout))
        dx -= self.dbeta / n
        dx *= self.gamma * self.inv_std
        return dx


@norm
class LayerNorm(Normalization):
    """Layer normalization: each row normalized by the mean and variance of its own units, in training and in
    evaluation alike, so it keeps no running statistics and a row's output never depends on the other rows."""

    name = "layernorm"
    rule = (
        "layer norm: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ with dx̂ = γ·dout, means over each row's units; "
        "dγ = Σ_rows dout·x̂, dβ = Σ_rows dout"
    )

    def __init__(self, gamma, beta, dgamma=None, dbeta=None, eps=1e-5, momentum=None, inplace=False):
        super().__init__(gamma, beta, dgamma, dbeta, eps, inplace)

    def _scale_shift(self, xhat, x):
        """out = γ·x̂ + β, into x itself when the gate works in place."""
        out = np.multiply(xhat, self.gamma, out=self._output(x))
        out += self.beta
        return out

    def _param_grads(self, dout):
        """dβ = Σ_rows dout, dγ = Σ_rows dout·x̂; returns the scratch array holding dout·x̂."""
        ones = self._ones("ones_rows", dout.shape[0], dout.dtype)
        sum_rows(dout, ones, self.dbeta)
        scratch = np.multiply(dout, self.xhat, out=self._buffer("scratch", dout.shape, dout.dtype))
        sum_rows(scratch, ones, self.dgamma)
        return scratch

    def _row_means(self, a, name, weights=None):
        """mean over each row's units of a (or of a·weights, per unit), (N, 1), as the GEMV a·ones / H."""
        if weights is None:
            weights = self._ones("ones_units", a.shape[1], a.dtype)
        out = np.matmul(a, weights, out=self._buffer(name, a.shape[:1], a.dtype))
        out /= a.shape[1]
        return out[:, None]

    def forward(self, x):
        mean = self._row_means(x, "mean")
        xhat = np.subtract(x, mean, out=self._buffer("xhat", x.shape, x.dtype))
        var = row_dots(xhat, xhat, self._buffer("var", x.shape[:1], x.dtype))[:, None]
        var /= x.shape[1]
        self.inv_std = 1 / np.sqrt(var + self.eps)
        xhat *= self.inv_std
        self.xhat = xhat
        return self._scale_shift(xhat, x)

    def backward(self, dout):
        """mean(dx̂) and mean(dx̂·x̂) over each row's units are the GEMVs dout·γ / H and (dout·x̂)·γ / H, so dx̂ = γ·dout
        is formed only once, inside dx = (γ·dout − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ."""
        scratch = self._param_grads(dout)
        m2 = self._row_means(scratch, "m2", self.gamma)
        m1 = self._row_means(dout, "m1", self.gamma)
        np.multiply(self.xhat, m2, out=scratch)
        scratch += m1
        dx = np.multiply(dout, self.gamma, out=self._input_grad(dout))
        dx -= scratch
        dx *= self.inv_std
        return dx


def make_norm(name, gamma, beta, dgamma=None, dbeta=None, eps=1e-5, momentum=0.9, inplace=False):
    """The normalization gate `name` ("batchnorm" or "layernorm") over the parameters γ, β and their gradients."""
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; the norms are none, {', '.join(NORMS)}")
    return NORMS[name](gamma, beta, dgamma, dbeta, eps=eps, momentum=momentum, inplace=inplace)

"""The gates a typed circuit needs beyond add, multiply and max: elementwise functions, and the vector gates.

An elementwise gate (`Unary`) keeps what its derivative needs from the forward pass and multiplies dout by that
derivative entry by entry: its Jacobian is diagonal and never built (the notes' 4096-wide ReLU remark). The
vector gates apply their vectorized rule: for q = W @ x, dW = dq·xᵀ and dx = Wᵀ·dq.
"""

import numpy as np

from nncli.nn.activations import ReLU, Sigmoid, Tanh

DIAGONAL = "diagonal (elementwise), never materialized"


def unbroadcast(grad, shape):
    """`grad` summed over the axes NumPy broadcast an input of `shape` along, so it has that input's shape."""
    grad = np.asarray(grad)
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    kept = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=kept, keepdims=True).reshape(shape) if kept else grad.reshape(shape)


class Unary:
    """An elementwise gate out = g(x); dx = dout·g'(x), with g'(x) from `local()` (kept from the forward pass)."""

    structure = DIAGONAL

    def forward(self, x):
        self.x = np.asarray(x, np.float64)
        self.out = self.apply(self.x)
        return self.out

    def backward(self, dout):
        return np.multiply(dout, self.local())


class Negate(Unary):
    """out = −x (the ×−1 gate); dx = −dout."""

    rule = "×−1 gate: multiplies the upstream gradient by −1"

    def apply(self, x):
        return np.negative(x)

    def local(self):
        return -1.0


class Exp(Unary):
    """out = eˣ; dx = dout·eˣ (the output itself)."""

    rule = "exp gate: multiplies the upstream gradient by its own output eˣ"

    def apply(self, x):
        return np.exp(x)

    def local(self):
        return self.out


class Log(Unary):
    """out = ln x for x > 0; dx = dout / x."""

    rule = "log gate: divides the upstream gradient by its input"

    def domain(self, x):
        return "log needs inputs > 0" if np.any(np.less_equal(x, 0)) else None

    def apply(self, x):
        return np.log(x)

    def local(self):
        return 1.0 / self.x


class Reciprocal(Unary):
    """out = 1/x; dx = −dout / x²."""

    rule = "1/x gate: multiplies the upstream gradient by −1/x²"

    def domain(self, x):
        return "1/x of 0" if np.any(np.equal(x, 0)) else None

    def apply(self, x):
        return 1.0 / x

    def local(self):
        return -self.out * self.out


class Power(Unary):
    """out = x**p for a constant p; dx = dout·p·x**(p−1)."""

    def __init__(self, p):
        self.p = float(p)
        self.rule = f"power gate x**{p:g}: multiplies the upstream gradient by {p:g}·x**{p - 1:g}"

    def domain(self, x):
        if not self.p.is_integer() and np.any(np.less(x, 0)):
            return f"a negative number to the non-integer power {self.p:g}"
        if self.p < 1 and np.any(np.equal(x, 0)):
            return f"0 to the power {self.p:g} has no derivative"
        return None

    def apply(self, x):
        return np.power(x, self.p)

    def local(self):
        return self.p * np.power(self.x, self.p - 1)


class Abs(Unary):
    """out = |x|; dx = dout·sign(x), 0 at x = 0 (a subgradient)."""

    rule = "abs gate: passes the upstream gradient where x > 0, negated where x < 0"
    subgradient = "the gradient at x = 0 is taken to be 0"

    def apply(self, x):
        return np.abs(x)

    def local(self):
        return np.sign(self.x)

    def ties(self):
        return int(np.count_nonzero(self.x == 0))

    def kinks(self):
        return self.x > 0


class Activation(Unary):
    """One of the engine's activation gates (nncli.nn.activations), run on a copy of its input: its own rule."""

    def __init__(self, cls):
        self.gate, self.rule = cls(), cls.rule
        if cls is ReLU:
            self.subgradient = "the gradient at x = 0 is taken to be 0"

    def apply(self, x):
        return np.array(self.gate.forward(np.array(x, np.float64, ndmin=1)), copy=True).reshape(np.shape(x))

    def backward(self, dout):
        dout = np.array(dout, np.float64, ndmin=1)  # a copy: the engine's gates may work in place
        return np.array(self.gate.backward(dout), copy=True).reshape(np.shape(self.x))

    def ties(self):
        return int(np.count_nonzero(self.x == 0)) if hasattr(self, "subgradient") else 0

    def kinks(self):
        return self.x > 0


def activation_gate(name):
    """The elementwise gate of the engine's activation `name` (sigmoid, tanh, relu)."""
    return Activation({"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}[name])


class MatMul:
    """q = A @ B (matrix product; a vector is a row on the left, a column on the right); dA = dq·Bᵀ, dB = Aᵀ·dq."""

    rule = "matrix multiply gate: dA = dq·Bᵀ, dB = Aᵀ·dq (for q = W @ x: dW = dq xᵀ, dx = Wᵀ dq)"
    structure = "dense, never materialized: the rule is two matrix products"

    def forward(self, a, b):
        self.a, self.b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return np.matmul(self.a, self.b)

    def backward(self, dout):
        a2 = self.a if self.a.ndim == 2 else self.a[None, :]
        b2 = self.b if self.b.ndim == 2 else self.b[:, None]
        dq = np.reshape(dout, (a2.shape[0], b2.shape[1]))
        return (dq @ b2.T).reshape(self.a.shape), (a2.T @ dq).reshape(self.b.shape)


class Transpose:
    """out = xᵀ; dx = doutᵀ (a permutation: every gradient goes back to where its entry came from)."""

    rule = "transpose gate: transposes the upstream gradient back"
    structure = "a permutation, never materialized"

    def forward(self, x):
        return np.transpose(x)

    def backward(self, dout):
        return np.transpose(dout)


class Sum:
    """out = Σ x; dx = dout in every entry (sum distributes, like add)."""

    rule = "sum gate: gives every entry the upstream gradient unchanged"
    structure = "a row of ones, never materialized"

    def forward(self, x):
        self.shape = np.shape(x)
        return np.sum(x)

    def backward(self, dout):
        return np.full(self.shape, float(dout))


class Norm2(Unary):
    """out = ‖x‖² = Σ x²; dx = 2·x·dout."""

    rule = "squared norm gate ‖x‖²: gives each entry 2·x times the upstream gradient"
    structure = "a row 2·xᵀ, never materialized"

    def apply(self, x):
        return np.sum(x * x)

    def local(self):
        return 2.0 * self.x


class Dot:
    """out = a · b = Σ a·b (same shapes); da = dout·b, db = dout·a."""

    rule = "dot gate: each input gets the other input times the upstream gradient"
    structure = "a row (the other input), never materialized"

    def forward(self, a, b):
        self.a, self.b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return np.sum(self.a * self.b)

    def backward(self, dout):
        return np.multiply(dout, self.b), np.multiply(dout, self.a)

"""Numerical gradient checks: every backward pass against centered differences, in float64.

For a scalar function f and a coordinate x_i: (f(x + h·e_i) − f(x − h·e_i)) / 2h with h = 1e-5, compared to
the analytic gradient by the relative error |a − n| / max(|a|, |n|, s), the number reported and compared to the
tolerance. The floor s keeps 0/0 away and rounding out: the difference quotient itself is only good to about
noise = 4·eps·|f|/2h, so s = noise / tolerance is the smallest gradient it resolves to the tolerance; below s
the check is in effect |a − n| ≤ noise (without s, tiny true gradients, 1e-7, would "fail" on rounding alone).
A coordinate whose error is at or above the tolerance is checked again with h/10, and again down to h/1000 for as
long as the error keeps shrinking tenfold or more: the difference quotient's own truncation error falls about
100-fold with each step (it is large where the function curves sharply, as a batch norm over two rows does when
their values nearly agree), while a wrong gradient's error stays put and ends the retries. The smallest error counts.
A gradient passes when its worst error is below the tolerance and at least one coordinate was checked. Small
tensors are checked at every coordinate, large ones at a seeded random sample. A coordinate whose ±h step
moves some unit across a non-differentiable point (a ReLU input or SVM margin crossing 0, a weight crossing 0
under L1) is a kink: counted and reported, not judged, because no finite difference is meaningful there.
"""

from dataclasses import dataclass

import numpy as np

from nncli.nn.regularization import add_regularization_grad, l1_kinks, regularization_loss

H = 1e-5
LAYER_TOLERANCE = 1e-7
NETWORK_TOLERANCE = 1e-6


def rel_error(a, n, floor=0.0):
    """|a − n| / max(|a|, |n|, floor) elementwise, 0 where all three are 0."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    denom = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
    return np.divide(np.abs(a - n), denom, out=np.zeros_like(denom), where=denom > 0)


@dataclass
class GradCheck:
    """The outcome of checking one gradient: the worst relative error (with its floor) over the coordinates checked.

    `checked == 0` (every coordinate sat at a kink) means nothing was verified: status "not checked", not passed.
    """

    name: str
    shape: tuple
    max_rel_error: float
    checked: int
    kinks: int
    tolerance: float

    @property
    def passed(self):
        return self.checked > 0 and self.max_rel_error < self.tolerance

    @property
    def status(self):
        """One of "pass", "FAIL" or "not checked" (every coordinate was skipped at a kink: nothing verified)."""
        return "not checked" if self.checked == 0 else "pass" if self.passed else "FAIL"

    def as_dict(self):
        return {
            "name": self.name,
            "shape": list(self.shape),
            "max_rel_error": self.max_rel_error,
            "checked": self.checked,
            "kinks": self.kinks,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "status": self.status,
        }


def check_gradient(name, f, x, analytic, *, kinks=None, tolerance=LAYER_TOLERANCE, max_coords=200, rng=None, h=H):
    """Check `analytic` = df/dx against centered differences of the scalar `f()`, perturbing x in place.

    `kinks()`, if given, returns the kink signature of the state left by the last f() call.
    """
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError(f"{name}: x must be contiguous so it can be perturbed in place")
    coords = np.arange(x.size)
    if x.size > max_coords:
        coords = np.sort((rng or np.random.default_rng(0)).choice(x.size, max_coords, replace=False))
    analytic = np.asarray(analytic).reshape(-1)
    f()
    base = kinks() if kinks else None
    worst, checked, kinked = 0.0, 0, 0
    for i in coords:  # the finite-difference check itself: one coordinate at a time by definition
        error = _coordinate_error(f, flat, i, analytic[i], h, tolerance, kinks, base)
        step = h
        while error is not None and error >= tolerance and step > h / 1000:  # see the module docstring
            step /= 10
            finer = _coordinate_error(f, flat, i, analytic[i], step, tolerance, kinks, base)
            shrunk = finer is not None and finer < error / 10  # truncation: about 100× smaller for a 10× smaller step
            error = min(error, finer) if finer is not None else error
            if not shrunk:
                break
        if error is None:
            kinked += 1
            continue
        worst = max(worst, error)
        checked += 1
    f()
    return GradCheck(name, tuple(x.shape), worst, checked, kinked, tolerance)


def _coordinate_error(f, flat, i, analytic, h, tolerance, kinks, base):
    """The relative error of `analytic` against the centered difference at coordinate i with step h, or None when
    the ±h step crosses a kink."""
    old = flat[i]
    flat[i] = old + h
    f_plus = f()
    crossed = kinks is not None and not np.array_equal(kinks(), base)
    flat[i] = old - h
    f_minus = f()
    crossed = crossed or (kinks is not None and not np.array_equal(kinks(), base))
    flat[i] = old
    if crossed:
        return None
    numeric = (f_plus - f_minus) / (2 * h)
    noise = 4 * np.finfo(np.float64).eps * max(abs(f_plus), abs(f_minus), 1.0) / (2 * h)
    return float(rel_error(analytic, numeric, noise / tolerance))


def check_layer(name, layer, x, rng, tolerance=LAYER_TOLERANCE):
    """Check a gate's dx and parameter gradients on L = Σ(out · G) for a random upstream gradient G."""
    reset = _rng_reset(getattr(layer, "rng", None))
    upstream = rng.standard_normal(layer.forward(x).shape)

    def f():
        reset()
        return float(np.sum(layer.forward(x) * upstream))

    f()
    dx = np.array(layer.backward(upstream.copy()), copy=True)
    analytic = {p: getattr(layer, "d" + p).copy() for p in layer.params}
    kinks = layer.kinks if layer.kinked else None
    results = [check_gradient(f"{name}: dx", f, x, dx, kinks=kinks, tolerance=tolerance, rng=rng)]
    for p in layer.params:
        results.append(
            check_gradient(
                f"{name}: d{p}", f, getattr(layer, p), analytic[p], kinks=kinks, tolerance=tolerance, rng=rng
            )
        )
    return results


def check_loss(name, loss_fn, scores, y, kinks=None, tolerance=LAYER_TOLERANCE):
    """Check dscores of a loss function on given scores and labels."""
    _, dscores = loss_fn(scores, y)
    dscores = dscores.copy()
    kink_fn = (lambda: kinks(scores, y)) if kinks else None
    return [
        check_gradient(
            f"{name}: dscores", lambda: loss_fn(scores, y)[0], scores, dscores, kinks=kink_fn, tolerance=tolerance
        )
    ]


def check_regularizer(name, W, l2=0.0, l1=0.0, tolerance=LAYER_TOLERANCE):
    """Check the (sub)gradient of the L2/L1 penalty on a weight matrix."""
    analytic = add_regularization_grad(W, np.zeros_like(W), l2, l1)
    return [
        check_gradient(
            f"{name}: dW",
            lambda: regularization_loss(W, l2, l1),
            W,
            analytic,
            kinks=(lambda: l1_kinks(W, l1)) if l1 else None,
            tolerance=tolerance,
        )
    ]


def check_network(net, X, y, tolerance=NETWORK_TOLERANCE, max_coords=200, rng=None):
    """Check the total loss's gradient on every parameter of `net` and on its input X (train mode, fixed dropout masks)."""
    reset = _rng_reset(net.rng)
    X = np.array(X, dtype=net.dtype)

    def f():
        reset()
        return net.forward_loss(X, y, train=True)

    reset()
    net.loss(X, y, train=True, need_dx=True)
    analytic = {name: g.copy() for name, g in net.grads.items()}
    analytic["x"] = net.dx.copy()
    kinks = lambda: net.kinks(y)  # noqa: E731
    targets = {"x": X, **net.params}
    return [
        check_gradient(
            name, f, targets[name], analytic[name], kinks=kinks, tolerance=tolerance, max_coords=max_coords, rng=rng
        )
        for name in ["x", *net.params]
    ]


def _rng_reset(rng):
    """A function that rewinds `rng` to its current state, so repeated forwards draw the same dropout masks."""
    if rng is None:
        return lambda: None
    state = rng.bit_generator.state

    def reset():
        rng.bit_generator.state = state

    return reset


def away_from_zero(rng, shape, low=0.1):
    """Random values with |v| ≥ low, so a ±h step never crosses a ReLU-family kink at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, 1.0, size=shape)

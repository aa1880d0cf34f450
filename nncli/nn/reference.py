"""The lecture's math written the obvious way: pure functions, a new array on every line, nothing reused.

This is what the optimized engine (`layers`, `normalization`, `losses`, `regularization`, `network`)
computes with buffers, in-place updates and BLAS; the tests hold the two to agree in float64, and check every
backward here against numerical gradients. Read this module to see the math, the others to see it made fast.

A layer is a pair in cs231n's style: `*_forward(x, ...) -> (out, cache)`, where the cache is whatever the
backward needs, and `*_backward(dout, cache) -> dx` (or `(dx, dw, db)`), with dout = dL/dout of the same
shape as out. A loss returns `(loss, dscores)`, a penalty `(loss, dw)`. (The update rules' plain versions are in
nncli.optim.reference.)
Shapes: x (N, D) for N rows; w (D, M); b (M,); scores (N, C); y (N,) class ids in 0..C-1.
"""

import numpy as np


def affine_forward(x, w, b):
    """out = x @ w + b: (N, D) @ (D, M) + (M,) -> (N, M)."""
    out = x @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    """dx = dout @ w.T (N, D), dw = x.T @ dout (D, M), db = dout summed over the rows (M,)."""
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def relu_forward(x):
    """out = max(0, x)."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0: the max gate routes the gradient to the winner."""
    x = cache
    return dout * (x > 0)


def leaky_relu_forward(x, negative_slope=0.01):
    """out = x where x > 0, else negative_slope * x."""
    return np.where(x > 0, x, negative_slope * x), (x, negative_slope)


def leaky_relu_backward(dout, cache):
    """dx = dout where x > 0, else negative_slope * dout."""
    x, negative_slope = cache
    return dout * np.where(x > 0, 1.0, negative_slope)


def sigmoid_forward(x):
    """out = 1 / (1 + exp(-x)) (it overflows to 0 with a warning for x below about -709)."""
    out = 1 / (1 + np.exp(-x))
    return out, out


def sigmoid_backward(dout, cache):
    """dx = dout * out * (1 - out): the sigmoid's derivative written with its own output."""
    out = cache
    return dout * out * (1 - out)


def tanh_forward(x):
    """out = tanh(x)."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dx = dout * (1 - out**2)."""
    out = cache
    return dout * (1 - out**2)


def elu_forward(x, alpha=1.0):
    """out = x where x > 0, else alpha * (exp(x) - 1)."""
    return np.where(x > 0, x, alpha * np.expm1(x)), (x, alpha)


def elu_backward(dout, cache):
    """dx = dout where x > 0, else dout * alpha * exp(x)."""
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, alpha * np.exp(x))


def dropout_forward(x, mask):
    """Inverted dropout with a given mask: out = x * mask, mask = [u >= p] / (1 - p) for u ~ U(0, 1), shape of x.

    The mask is an argument, not drawn here, so a test can replay the very mask the engine drew.
    """
    return x * mask, mask


def dropout_backward(dout, cache):
    """dx = dout * mask: a dropped unit passes no gradient, a kept one its scaled share."""
    mask = cache
    return dout * mask


def norm_forward(x, gamma, beta, axis, eps=1e-5):
    """Normalize x over `axis` (0: each unit over the batch, batch norm in training; 1: each row over its units,
    layer norm), then scale and shift per unit: out = gamma * (x - mean) / sqrt(var + eps) + beta."""
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    var = (xc**2).mean(axis=axis, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = xc / std
    return gamma * xhat + beta, (xc, std, xhat, gamma, axis)


def norm_backward(dout, cache):
    """The backward of `norm_forward` gate by gate through its staged graph (mean, subtract, square, mean, + eps,
    sqrt, divide, scale, shift), without the closed form nncli.nn.normalization uses. Returns (dx, dgamma, dbeta)."""
    xc, std, xhat, gamma, axis = cache
    n = xc.shape[axis]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dxc = dxhat / std  # xhat = xc / std: one path to xc ...
    dstd = -(dxhat * xc / std**2).sum(axis=axis, keepdims=True)  # ... and one through std
    dvar = dstd / (2 * std)  # std = sqrt(var + eps)
    dxc += 2 * xc * dvar / n  # var = mean(xc**2): the second path to xc; the two add (a fork)
    dx = dxc - dxc.sum(axis=axis, keepdims=True) / n  # xc = x - mean(x)
    return dx, dgamma, dbeta


def batchnorm_eval(x, gamma, beta, running_mean, running_var, eps=1e-5):
    """Batch norm in evaluation: the running averages stand in for the batch's statistics."""
    return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta


def softmax_loss(scores, y):
    """Cross-entropy of the softmax, averaged over the batch.

    p = exp(s - max s) / Σ_j exp(s_j - max s) row by row (the shift changes nothing but keeps exp from
    overflowing); L = -mean_i log p_i,y_i; dscores = (p - onehot(y)) / N, (N, C).
    """
    n, rows = len(y), np.arange(len(y))
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[rows, y].mean()
    onehot = np.zeros_like(scores)
    onehot[rows, y] = 1
    dscores = (np.exp(log_probs) - onehot) / n
    return float(loss), dscores


def svm_loss(scores, y):
    """Multiclass SVM (hinge) loss, averaged over the batch.

    margins = s_j - s_y + 1 for j ≠ y; L = mean_i Σ_j max(0, margin_ij). Each positive margin sends +1/N to
    its class score and -1/N to the correct class score: dscores (N, C).
    """
    n, rows = len(y), np.arange(len(y))
    margins = scores - scores[rows, y][:, None] + 1
    margins[rows, y] = 0
    loss = np.maximum(margins, 0).sum() / n
    positive = (margins > 0).astype(scores.dtype)
    dscores = positive.copy()
    dscores[rows, y] = -positive.sum(axis=1)
    return float(loss), dscores / n


def l2_loss(f, y):
    """Squared L2 norm of the residual, halved and averaged over the batch: L = mean_i ½‖f_i − y_i‖²,
    df = (f − y) / N, (N, K)."""
    r = f - y
    return float(0.5 * (r**2).sum() / len(y)), r / len(y)


def l1_loss(f, y):
    """L1 norm of the residual, averaged over the batch: L = mean_i ‖f_i − y_i‖₁, df = sign(f − y) / N."""
    r = f - y
    return float(np.abs(r).sum() / len(y)), np.sign(r) / len(y)


def huber_loss(f, y, delta=1.0):
    """Huber: ½r² for |r| ≤ δ, δ(|r| − ½δ) beyond, summed over outputs, averaged over the batch;
    df = r inside, ±δ outside, / N."""
    r = f - y
    inside = np.abs(r) <= delta
    loss = np.where(inside, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).sum() / len(y)
    return float(loss), np.where(inside, r, delta * np.sign(r)) / len(y)


def logistic_loss(s, y):
    """Binary cross-entropy of a sigmoid per attribute: p = 1 / (1 + e^(−s)); L = −mean_i Σ_k [y log p +
    (1 − y) log(1 − p)]; ds = (p − y) / N. (log p = −log(1 + e^(−s)), computed with logaddexp to stay finite.)"""
    log_p, log_not_p = -np.logaddexp(0, -s), -np.logaddexp(0, s)
    loss = -(y * log_p + (1 - y) * log_not_p).sum() / len(y)
    return float(loss), (np.exp(log_p) - y) / len(y)


def l2_regularization(w, l2):
    """L2 penalty on a weight matrix: loss = 0.5 * l2 * Σ w**2, dw = l2 * w."""
    return float(0.5 * l2 * (w**2).sum()), l2 * w


def l1_regularization(w, l1):
    """L1 penalty on a weight matrix: loss = l1 * Σ |w|, dw = l1 * sign(w) (a subgradient: 0 at w = 0)."""
    return float(l1 * np.abs(w).sum()), l1 * np.sign(w)


# The (forward, backward) pair of each activation, under its name in nncli.nn.layers.ACTIVATIONS.
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "elu": (elu_forward, elu_backward),
}

# Each data loss under its name in nncli.nn.losses.LOSSES.
LOSSES = {
    "softmax": softmax_loss,
    "svm": svm_loss,
    "l2": l2_loss,
    "l1": l1_loss,
    "huber": huber_loss,
    "logistic": logistic_loss,
}


def net_loss(
    params,
    X,
    y,
    activation="relu",
    loss="softmax",
    l2=0.0,
    l1=0.0,
    masks=None,
    negative_slope=0.01,
    alpha=1.0,
    norm="none",
    eps=1e-5,
):
    """Total loss of a fully connected net on a batch (in training), and its gradient on every parameter.

    params: a flat dict W1 (D, h1), b1 (h1,), …, WL (h_(L-1), C), bL (C,), and with a norm gamma1, beta1 (h1,), …;
    the net is [affine (→ norm) → activation (→ dropout)] for each hidden layer, then an affine to the scores.
    norm: "none", "batchnorm" (statistics over the batch) or "layernorm" (over each row's units).
    masks: one dropout mask per hidden layer, (N, h_i) (see `dropout_forward`), or None for no dropout.
    Loss = data loss + Σ_W (L2 + L1 penalties), biases, gamma and beta unpenalized. Returns (loss, {name: gradient}).
    """
    act_forward, act_backward = ACTIVATIONS[activation]
    hyper = {"leaky_relu": {"negative_slope": negative_slope}, "elu": {"alpha": alpha}}.get(activation, {})
    num_layers = len([name for name in params if name.startswith("W")])
    masks = masks or [1.0] * (num_layers - 1)  # no dropout: every unit kept, at scale 1
    axis = {"batchnorm": 0, "layernorm": 1}.get(norm)
    h, caches = X, []
    for i in range(1, num_layers):
        h, affine_cache = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        norm_cache = None
        if axis is not None:
            h, norm_cache = norm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], axis, eps)
        h, act_cache = act_forward(h, **hyper)
        h, drop_cache = dropout_forward(h, masks[i - 1])
        caches.append((affine_cache, norm_cache, act_cache, drop_cache))
    scores, scores_cache = affine_forward(h, params[f"W{num_layers}"], params[f"b{num_layers}"])
    total, dscores = LOSSES[loss](scores, y)

    grads = {}
    dh, grads[f"W{num_layers}"], grads[f"b{num_layers}"] = affine_backward(dscores, scores_cache)
    for i in range(num_layers - 1, 0, -1):
        affine_cache, norm_cache, act_cache, drop_cache = caches[i - 1]
        dh = dropout_backward(dh, drop_cache)
        dh = act_backward(dh, act_cache)
        if norm_cache is not None:
            dh, grads[f"gamma{i}"], grads[f"beta{i}"] = norm_backward(dh, norm_cache)
        dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, affine_cache)
    for i in range(1, num_layers + 1):
        for penalty, strength in ((l2_regularization, l2), (l1_regularization, l1)):
            reg_loss, dw = penalty(params[f"W{i}"], strength)
            total += reg_loss
            grads[f"W{i}"] = grads[f"W{i}"] + dw
    return total, grads

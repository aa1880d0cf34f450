"""The update rules written the obvious way, in cs231n's style: `update(w, dw, config) -> (w, config)`, with the
hyperparameters and the state in `config`, a new array on every line.

This is what nncli.optim.rules computes on the flat parameter buffer in place with BLAS; the tests hold the two to
agree in float64 (nncli.nn.reference holds the layers' and losses' plain versions).
"""

import numpy as np


def sgd(w, dw, config=None):
    """Vanilla gradient descent: w = w - learning_rate * dw.

    config: learning_rate (default 1e-2).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    next_w = w - config["learning_rate"] * dw
    return next_w, config


def sgd_momentum(w, dw, config=None):
    """Momentum: v = momentum * v - learning_rate * dw; w = w + v.

    config: learning_rate (1e-2), momentum (0.9); state v, the velocity (shape of w, starts at 0).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("v", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["v"] = v
    return next_w, config


def nesterov(w, dw, config=None):
    """Nesterov momentum, the look-ahead form: v = momentum * v - learning_rate * dw;
    w = w + momentum * v - learning_rate * dw (equal to w = w - momentum * v_prev + (1 + momentum) * v).

    config: learning_rate (1e-2), momentum (0.9); state v (shape of w, starts at 0).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("v", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + config["momentum"] * v - config["learning_rate"] * dw
    config["v"] = v
    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: cache = decay_rate * cache + (1 - decay_rate) * dw**2; w = w - learning_rate * dw / (√cache + eps).

    config: learning_rate (1e-2), decay_rate (0.99), eps (1e-8); state cache (shape of w, starts at 0).
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("eps", 1e-8)
    cache = config.get("cache", np.zeros_like(w))
    cache = config["decay_rate"] * cache + (1 - config["decay_rate"]) * dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["eps"])
    config["cache"] = cache
    return next_w, config


def adam(w, dw, config=None):
    """Adam: running means m of dw and v of dw**2, bias-corrected by the step count t (from 1);
    w = w - learning_rate * m̂ / (√v̂ + eps) with m̂ = m / (1 - beta1**t), v̂ = v / (1 - beta2**t).

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999), eps (1e-8); state m, v (shape of w), t.
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("eps", 1e-8)
    beta1, beta2 = config["beta1"], config["beta2"]
    t = config.get("t", 0) + 1
    m = beta1 * config.get("m", np.zeros_like(w)) + (1 - beta1) * dw
    v = beta2 * config.get("v", np.zeros_like(w)) + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["eps"])
    config.update(m=m, v=v, t=t)
    return next_w, config


# Each update rule under its name in nncli.optim.rules.OPTIMIZERS (the config's optimizer.name).
UPDATE_RULES = {"sgd": sgd, "momentum": sgd_momentum, "nesterov": nesterov, "rmsprop": rmsprop, "adam": adam}

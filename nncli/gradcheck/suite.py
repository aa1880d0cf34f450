"""The built-in gradient-check suite, read off the registries: every activation, norm and loss, the affine and
dropout gates, L2/L1 and whole nets (with each norm too); and the check of a config's own model on samples of its
data."""

import functools

import numpy as np

from nncli.data.dataset import load_dataset
from nncli.gradcheck.numerical import away_from_zero, check_layer, check_loss, check_network, check_regularizer
from nncli.nn.activations import ACTIVATIONS, make_activation
from nncli.nn.layers import Affine, Dropout
from nncli.nn.losses import LOSSES
from nncli.nn.network import Network, build_network
from nncli.nn.normalization import NORMS, make_norm
from nncli.nn.weights import class_weights


def targets(task, rng, samples, outputs):
    """Random targets of a loss's task: class ids (N,), real values (N, K), or 0/1 attributes (N, K)."""
    if task == "classification":
        return rng.integers(outputs, size=samples)
    if task == "regression":
        return rng.standard_normal((samples, outputs))
    return (rng.random((samples, outputs)) < 0.5).astype(np.float64)


def check_network_avoiding_kinks(make_net, input_dim, num_classes, rng, samples=8, attempts=5, task=None, **kw):
    """Check a fresh net on random data, retrying with new data when kinks are hit; keep the run with fewest kinks."""
    best = None
    for _ in range(attempts):
        X = rng.standard_normal((samples, input_dim))
        y = targets(task or "classification", rng, samples, num_classes)
        results = check_network(make_net(), X, y, rng=rng, **kw)
        kinks = sum(r.kinks for r in results)
        if best is None or kinks < best[0]:
            best = (kinks, results)
        if kinks == 0:
            break
    return best[1]


def weighted_loss_checks(rng, scores):
    """Every loss that takes class weights, with random weights (C,) or (K, 2): their weighted mean's gradient."""
    results = []
    for name, loss in LOSSES.items():
        if loss.weighted is None:
            continue
        y = targets(loss.task, rng, len(scores), scores.shape[1])
        shape = (scores.shape[1], 2) if loss.task == "attributes" else scores.shape[1]
        fn = functools.partial(loss.weighted, class_weights=rng.uniform(0.2, 5.0, shape))
        for r in check_loss(f"{name}_loss", fn, scores.copy(), y, kinks=loss.kinks):
            r.name += " (class-weighted)"
            results.append(r)
    return results


def builtin_checks(seed=0):
    """Check every registered activation, norm and loss, the affine and dropout gates, the regularizers, and two- and
    three-layer nets (plain and with each norm, in training mode), in float64."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5))
    results = check_layer("affine", Affine(rng.standard_normal((5, 3)), rng.standard_normal(3)), x, rng)
    kinked_x = away_from_zero(rng, (4, 5))
    for name in ACTIVATIONS:
        gate = make_activation(name)  # each with its default parameters
        results += check_layer(name, gate, (kinked_x if gate.kinked else x).copy(), rng)
    results += check_layer("dropout", Dropout(0.5, np.random.default_rng(seed)), x.copy(), rng)
    results += norm_checks(rng)
    scores = rng.standard_normal((6, 4))
    for name, loss in LOSSES.items():
        y = targets(loss.task, rng, 6, 4)
        results += check_loss(f"{name}_loss", loss.fn, scores.copy(), y, kinks=loss.kinks)
    results += weighted_loss_checks(rng, scores)
    W = rng.standard_normal((5, 3))
    results += check_regularizer("l2", W.copy(), l2=0.1)
    results += check_regularizer("l1", W.copy(), l1=0.1)
    results += check_regularizer("l2+l1", W.copy(), l2=0.1, l1=0.1)
    return results + net_checks(rng)


def norm_checks(rng, samples=4, width=5):
    """Every registered norm gate in training mode (batch statistics), over a random gamma and beta so every term of
    its gradient counts."""
    results = []
    for name in NORMS:
        gamma, beta = rng.uniform(0.5, 2.0, width), rng.standard_normal(width)
        x = 3 * rng.standard_normal((samples, width)) + rng.standard_normal(width)
        results += check_layer(name, make_norm(name, gamma, beta), x, rng)
    return results


def net_checks(rng):
    """A two- and a three-layer net, plain and with each norm (training mode, L2); then every loss that is not a class
    score's, in a two-layer net with both penalties."""
    results = []
    for norm in ("none", *NORMS):
        for label, hidden in [("two-layer net", [7]), ("three-layer net", [7, 6])]:

            def make_net(hidden=hidden, norm=norm):
                return Network(5, hidden, 3, norm=norm, l2=0.01, dtype=np.float64, rng=rng.integers(2**32))

            label = label if norm == "none" else f"{label}, {norm}"
            for r in check_network_avoiding_kinks(make_net, 5, 3, rng):
                r.name = f"{label}: {r.name}"
                results.append(r)
    for name, loss in LOSSES.items():
        if loss.task == "classification":
            continue

        def make_net(name=name):
            return Network(5, [7], 3, loss=name, l2=0.01, l1=0.01, dtype=np.float64, rng=rng.integers(2**32))

        for r in check_network_avoiding_kinks(make_net, 5, 3, rng, task=loss.task):
            r.name = f"two-layer net, {name} loss, L2+L1: {r.name}"
            results.append(r)
    return results


def check_config(config, X, y, num_classes, seed=0, class_weights=None):
    """Check the model a config describes (widths, activation, loss, regularization, class weights) on samples
    (X, y) of its data."""
    X = np.asarray(X, np.float64)
    net = build_network(config, X.shape[1], num_classes, rng=seed, dtype=np.float64, class_weights=class_weights)
    return check_network(net, X, y, rng=np.random.default_rng(seed))


def check_config_on_data(config, samples=8):
    """Check a config's model on its first `samples` training rows, loaded in float64 (what `nncli gradcheck
    CONFIG` runs)."""
    data = load_dataset(config.data, config.seed, np.float64, LOSSES[config.loss].task)
    rows = np.arange(min(samples, len(data.train)))
    weights = class_weights(config.loss_weights, data.task, data.classes, data.train.y, data.source)
    return check_config(config, data.train.batch(rows), data.train.y[rows], data.num_classes, class_weights=weights)

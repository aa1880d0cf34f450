"""Divergence: a loss, weight or score that is no longer finite ends the run (its last finite checkpoints stay)."""

import math

import numpy as np


class Diverged(Exception):
    """A training loss, the weights or the validation loss became non-finite; the message says where and when."""


def first_nonfinite(net):
    """Where a non-finite value sits, scanning the layers from the input: a parameter, its gradient, or an activation."""
    for i, affine in enumerate(net.affines, start=1):
        if i > 1 and not np.isfinite(affine.x).all():
            return f"the activations entering layer {i}"
        for name in (f"W{i}", f"b{i}"):
            if not np.isfinite(net.params[name]).all():
                return f"{name} (layer {i})"
            if not np.isfinite(net.grads[name]).all():
                return f"the gradient of {name} (layer {i})"
    return f"the scores (layer {len(net.affines)})"


def validate(net, val, tally, epoch, lr):
    """{val_loss, val_<metric>…} of `net`'s weights after epoch `epoch` + 1, counted in `tally` (a fresh Tally of
    the task; {} without a validation split `val`); Diverged when the loss is not finite (finite weights whose
    scores overflow on new data)."""
    if val is None:
        return {}
    metrics = net.evaluate(val.chunks(reuse=True), tally)
    loss = metrics["loss"]
    if not math.isfinite(loss):
        raise Diverged(
            f"the validation loss became {loss} after epoch {epoch + 1} (the scores overflow); "
            f"the learning rate ({lr:g}) is probably too high"
        )
    return {f"val_{name}": value for name, value in metrics.items()}

"""Learning-rate schedules: the rate for an epoch (counted from 0) as a pure function, so resuming is exact."""

import math


def learning_rate(lr, epoch, epochs, name="constant", every=10, gamma=0.5, min_lr=0.0):
    """The learning rate of `epoch` out of `epochs`.

    constant: lr · step: lr·gamma^⌊epoch/every⌋ · exponential: lr·gamma^epoch ·
    cosine: min_lr + (lr − min_lr)·(1 + cos(π·epoch/epochs))/2, from lr down towards min_lr.
    """
    if name == "constant":
        return lr
    if name == "step":
        return lr * gamma ** (epoch // every)
    if name == "exponential":
        return lr * gamma**epoch
    if name == "cosine":
        return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    raise ValueError(f"unknown schedule {name!r}")


SCHEDULES = ("constant", "step", "exponential", "cosine")

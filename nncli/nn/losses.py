"""Losses on class scores, averaged over the batch, and their registry `LOSSES` (the config's `loss` values).

Each loss function returns (loss, dscores); scores: (N, C) unnormalized class scores; y: (N,) integer class ids
in 0..C-1. A `Loss` entry adds what the rest of nncli needs to know about it: the local rule in words (backprop
trace), its kinks (gradient checks), the loss a fresh net should start at (diagnostics), and whether its scores
are read as probabilities (predict).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nncli.nn.fast import row_starts


def softmax(scores):
    """Class probabilities, computed with the max shift so exp never overflows: (N, C)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def softmax_loss(scores, y, dscores=None):
    """Cross-entropy of the softmax: L = mean_i(log Σ_j e^(s_ij) − s_i,y_i), dL/ds = (p − onehot(y)) / N.

    The log-sum-exp uses the max shift for stability. `dscores` may be a buffer to write the
    gradient into; it may be `scores` itself when the scores are not needed afterwards.
    Every NumPy call costs microseconds on a (N, C) this small, so the step uses as few as it can.
    """
    n = scores.shape[0]
    if dscores is None or not dscores.flags.c_contiguous:  # the flat indexing below needs one block
        dscores = np.empty_like(scores, order="C")
    picked = y + row_starts(n, scores.shape[1])  # flat positions of s_i,y_i
    np.subtract(scores, np.maximum.reduce(scores, axis=1, keepdims=True), out=dscores)
    correct = np.take(dscores, picked)  # s_i,y_i − max_i
    np.exp(dscores, out=dscores)
    sums = np.add.reduce(dscores, axis=1, keepdims=True)
    loss = (float(np.log(sums).sum()) - float(correct.sum())) / n
    sums *= n
    dscores /= sums  # now p / N
    dscores.reshape(-1)[picked] -= 1 / n
    return loss, dscores


def svm_margins(scores, y):
    """Hinge margins s_j − s_y + 1 with the correct class set to 0: (N, C)."""
    rows = np.arange(scores.shape[0])
    margins = scores - scores[rows, y][:, None] + 1.0
    margins[rows, y] = 0
    return margins


def svm_loss(scores, y, dscores=None):
    """Multiclass SVM hinge loss: L = mean_i Σ_(j≠y_i) max(0, s_j − s_y_i + 1).

    Each positive margin sends +1 to its class score and −1 to the correct class score.
    """
    n = scores.shape[0]
    rows = np.arange(n)
    margins = svm_margins(scores, y)
    positive = margins > 0
    loss = float(np.maximum(margins, 0).sum() / n)
    if dscores is None:
        dscores = np.empty_like(scores)
    dscores[...] = positive
    dscores[rows, y] = -positive.sum(axis=1)
    dscores /= n
    return loss, dscores


def svm_kinks(scores, y):
    """Which side of 0 each margin is on (the hinge's non-differentiable point)."""
    return svm_margins(scores, y) > 0


@dataclass(frozen=True)
class Loss:
    """A registered data loss: `fn(scores, y, dscores=None) -> (loss, dscores)` and what nncli says about it.

    `kinks(scores, y)` marks which side of its non-differentiable points each score is on (None: smooth);
    `initial(C)` is the loss of a fresh net with small weights, `initial_formula` the same in words;
    `probabilities` says whether the scores are read through a softmax in predictions.
    """

    name: str
    fn: Callable
    rule: str
    initial: Callable
    initial_formula: str
    probabilities: bool
    kinks: Callable | None = None


LOSSES = {}


def register_loss(loss):
    """Add `loss` (a `Loss`) to the registry under its name."""
    LOSSES[loss.name] = loss
    return loss


register_loss(
    Loss(
        "softmax",
        softmax_loss,
        rule="softmax loss: dscores = (p − onehot(y)) / N, p the softmax probabilities",
        initial=math.log,
        initial_formula="ln C",
        probabilities=True,
    )
)
register_loss(
    Loss(
        "svm",
        svm_loss,
        rule="SVM loss: each positive margin sends +1/N to its class score and −1/N to the correct class score",
        initial=lambda num_classes: num_classes - 1.0,  # every margin s_j − s_y + 1 ≈ 1
        initial_formula="C − 1",
        probabilities=False,
        kinks=svm_kinks,
    )
)

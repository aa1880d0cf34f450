"""Losses on class scores, averaged over the batch; each returns (loss, dscores).

scores: (N, C) unnormalized class scores; y: (N,) integer class ids in 0..C-1.
"""

import numpy as np


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
    """
    n = scores.shape[0]
    rows = np.arange(n)
    if dscores is None:
        dscores = np.empty_like(scores)
    np.subtract(scores, scores.max(axis=1, keepdims=True), out=dscores)
    correct = dscores[rows, y]
    np.exp(dscores, out=dscores)
    sums = dscores.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - correct))
    sums *= n
    dscores /= sums  # now p / N
    dscores[rows, y] -= 1 / n
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


LOSSES = {"softmax": softmax_loss, "svm": svm_loss}

"""Losses on the network's outputs, averaged over the batch, and their registry `LOSSES` (the config's `loss`).

Each loss function returns (loss, dscores). The loss decides the task (`Loss.task`):
  classification  softmax, svm: scores (N, C) unnormalized class scores; y (N,) integer class ids in 0..C-1
  regression      l2, l1, huber: outputs (N, K), one per target; y (N, K) float targets (standardized by the data)
  attributes      logistic: scores (N, K), one per 0/1 attribute; y (N, K) of 0.0 and 1.0
Per-output losses are summed over the outputs and averaged over the batch, as the notes write them (½‖f − y‖²).
Class weights (config `loss_weights`) turn the batch mean into a weighted mean, Σ_i w_(y_i) L_i / Σ_i w_(y_i)
(nncli/nn/weights.py); the unweighted functions are left exactly as they are, so the common case does no more work.
A `Loss` entry adds what the rest of nncli needs to know about it: the local rule in words (backprop trace), its
kinks (gradient checks), the loss a fresh net should start at (diagnostics), and whether its scores are read as
probabilities (predict).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nncli.nn.fast import row_starts
from nncli.nn.weights import weighted_logistic_loss, weighted_softmax_loss, weighted_svm_loss


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


def l2_loss(outputs, y, dscores=None):
    """L = mean_i ½‖f_i − y_i‖², dL/df = (f − y) / N."""
    n = outputs.shape[0]
    dscores = np.subtract(outputs, y, out=_buffer(outputs, dscores))
    loss = 0.5 * float(np.vdot(dscores, dscores)) / n
    dscores /= n
    return loss, dscores


def l1_loss(outputs, y, dscores=None):
    """L = mean_i ‖f_i − y_i‖₁, dL/df = sign(f − y) / N (0 where f = y, the kink)."""
    n = outputs.shape[0]
    dscores = np.subtract(outputs, y, out=_buffer(outputs, dscores))
    loss = float(np.abs(dscores).sum()) / n
    np.sign(dscores, out=dscores)
    dscores /= n
    return loss, dscores


def huber_loss(outputs, y, dscores=None, delta=1.0):
    """Per output r = f − y: ½r² where |r| ≤ δ, else δ(|r| − ½δ); dL/df = clip(r, −δ, δ) / N. Quadratic near the
    target, linear beyond δ: L2's smooth minimum with L1's tolerance of outliers."""
    n = outputs.shape[0]
    r = np.subtract(outputs, y, out=_buffer(outputs, dscores))
    a = np.abs(r)
    loss = float(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).sum()) / n
    np.clip(r, -delta, delta, out=r)
    r /= n
    return loss, r


def logistic_loss(scores, y, dscores=None):
    """Binary cross-entropy of each attribute's sigmoid: L = mean_i Σ_k [log(1 + e^(s_ik)) − y_ik s_ik],
    dL/ds = (σ(s) − y) / N. log(1 + e^s) is computed as max(s, 0) + log1p(e^(−|s|)), which never overflows."""
    n = scores.shape[0]
    loss = float((np.maximum(scores, 0) + np.log1p(np.exp(-np.abs(scores))) - y * scores).sum()) / n
    dscores = _buffer(scores, dscores)
    np.logaddexp(0, -scores, out=dscores)  # σ(s) = e^(−log(1 + e^(−s))), without overflow either way
    np.negative(dscores, out=dscores)
    np.exp(dscores, out=dscores)
    dscores -= y
    dscores /= n
    return loss, dscores


def sigmoid(scores):
    """σ(s) = 1 / (1 + e^(−s)), computed without overflow: the attributes' probabilities."""
    return np.exp(-np.logaddexp(0, -scores))


def _buffer(like, out):
    return np.empty_like(like) if out is None or out.shape != like.shape else out


def l1_kinks(outputs, y):
    """Which side of the target each output is on (|f − y|'s non-differentiable point)."""
    return outputs > y


def _huber_initial(delta):
    """E[huber(z)] for z ~ N(0, 1): a fresh net's output ≈ 0 against a standardized target."""
    inside = math.erf(delta / math.sqrt(2))
    density = math.exp(-(delta**2) / 2) / math.sqrt(2 * math.pi)
    quadratic = 0.5 * (inside - 2 * delta * density)  # ½E[z²; |z| ≤ δ]
    tail = 1 - inside
    linear = delta * (2 * density - 0.5 * delta * tail)  # δ·E[|z| − ½δ; |z| > δ]
    return quadratic + linear


@dataclass(frozen=True)
class Loss:
    """A registered data loss: `fn(scores, y, dscores=None) -> (loss, dscores)` and what nncli says about it.

    `kinks(scores, y)` marks which side of its non-differentiable points each score is on (None: smooth);
    `initial(C)` is the loss of a fresh net with small weights, `initial_formula` the same in words;
    `probabilities` says whether the scores are read as probabilities in predictions (a softmax for a
    classification loss, a sigmoid per attribute); `task` is what the loss is for (see the module docstring).
    """

    name: str
    fn: Callable
    rule: str
    initial: Callable
    initial_formula: str
    probabilities: bool
    kinks: Callable | None = None
    task: str = "classification"
    options: tuple[str, ...] = ()  # keyword arguments of fn taken from the config as `<loss>_<option>`
    weighted: Callable | None = None  # fn with `class_weights=` (config `loss_weights`); None: no classes to weigh


LOSSES = {}


def loss_options(config):
    """{option: value} of the config's loss (huber: {"delta": config.huber_delta})."""
    return {name: getattr(config, f"{config.loss}_{name}") for name in LOSSES[config.loss].options}


def register_loss(loss):
    """Add `loss` (a `Loss`) to the registry under its name."""
    LOSSES[loss.name] = loss
    return loss


register_loss(
    Loss(
        "softmax",
        softmax_loss,
        weighted=weighted_softmax_loss,
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
        weighted=weighted_svm_loss,
        rule="SVM loss: each positive margin sends +1/N to its class score and −1/N to the correct class score",
        initial=lambda num_classes: num_classes - 1.0,  # every margin s_j − s_y + 1 ≈ 1
        initial_formula="C − 1",
        probabilities=False,
        kinks=svm_kinks,
    )
)
register_loss(
    Loss(
        "l2",
        l2_loss,
        rule="L2 loss: dscores = (f − y) / N, each output's residual",
        initial=lambda outputs: 0.5 * outputs,  # f ≈ 0 against standardized targets: ½E[y²] = ½ per output
        initial_formula="½ per output (standardized targets)",
        probabilities=False,
        task="regression",
    )
)
register_loss(
    Loss(
        "l1",
        l1_loss,
        rule="L1 loss: dscores = sign(f − y) / N, ±1/N whichever side of the target each output is",
        initial=lambda outputs: math.sqrt(2 / math.pi) * outputs,  # E|y| for y ~ N(0, 1)
        initial_formula="√(2/π) ≈ 0.80 per output (standardized targets)",
        probabilities=False,
        kinks=l1_kinks,
        task="regression",
    )
)
register_loss(
    Loss(
        "huber",
        huber_loss,
        rule="Huber loss: dscores = clip(f − y, −δ, δ) / N, the residual capped at δ",
        initial=lambda outputs, delta=1.0: _huber_initial(delta) * outputs,
        initial_formula="E[huber(z)], z ~ N(0, 1), per output (≈ 0.42 at δ = 1; standardized targets)",
        probabilities=False,
        task="regression",
        options=("delta",),
    )
)
register_loss(
    Loss(
        "logistic",
        logistic_loss,
        weighted=weighted_logistic_loss,
        rule="logistic loss: dscores = (σ(s) − y) / N, each attribute's probability minus its 0/1 label",
        initial=lambda attributes: math.log(2) * attributes,  # σ(0) = ½ for every attribute
        initial_formula="ln 2 per attribute",
        probabilities=True,
        task="attributes",
    )
)

"""Class weights for imbalanced data (config `loss_weights`): the weighted-mean losses and the weights asked for.

With weights the batch mean of a loss becomes a weighted mean, L = Σ_i w_(y_i) L_i / Σ_i w_(y_i), and its gradient
is exactly that expression's: dL/ds_i = (w_(y_i) / Σ w) · dL_i/ds_i. Equal weights give the plain mean back. A
logistic loss weighs each attribute apart: w_ik is the weight of sample i's label (0 or 1) on attribute k, and each
attribute's mean is weighted over the batch before the attributes are summed, as the plain loss sums their means.
The functions here are used only when weights are set (nncli.nn.losses registers them as `Loss.weighted`).
"""

import numpy as np

from nncli.errors import DataError, show_value


def _shares(w):
    """Each sample's weight over the batch's total (per column): w / Σw, the weighted mean's coefficients."""
    return w / w.sum(axis=0)


def _out(like, out):
    return np.empty_like(like) if out is None or out.shape != like.shape else out


def weighted_softmax_loss(scores, y, dscores=None, class_weights=None):
    """Softmax cross-entropy as a weighted mean: L = Σ_i a_i (log Σ_j e^(s_ij) − s_i,y_i), a_i = w_(y_i) / Σ w,
    `class_weights` w (C,); dL/ds_i = a_i (p_i − onehot(y_i)). scores (N, C), y (N,) class ids."""
    rows = np.arange(scores.shape[0])
    share = _shares(class_weights[y])
    shifted = scores - scores.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float((share * (logsum[:, 0] - shifted[rows, y])).sum())
    dscores = _out(scores, dscores)
    np.exp(shifted - logsum, out=dscores, casting="same_kind")  # p
    dscores *= share[:, None]
    dscores[rows, y] -= share
    return loss, dscores


def weighted_svm_loss(scores, y, dscores=None, class_weights=None):
    """Multiclass SVM hinge loss as a weighted mean: L = Σ_i a_i Σ_(j≠y_i) max(0, s_j − s_y_i + 1), a_i =
    w_(y_i) / Σ w; each positive margin sends +a_i to its class score and −a_i to the correct class score."""
    rows = np.arange(scores.shape[0])
    share = _shares(class_weights[y])
    margins = scores - scores[rows, y][:, None] + 1.0
    margins[rows, y] = 0
    positive = margins > 0
    loss = float((np.maximum(margins, 0) * share[:, None]).sum())
    dscores = _out(scores, dscores)
    np.multiply(positive, share[:, None], out=dscores, casting="same_kind")
    dscores[rows, y] = -positive.sum(axis=1) * share
    return loss, dscores


def weighted_logistic_loss(scores, y, dscores=None, class_weights=None):
    """Binary cross-entropy, each attribute's a weighted mean: L = Σ_k Σ_i a_ik l_ik, a_ik = w_ik / Σ_i w_ik, where
    w_ik = class_weights[k, y_ik] ((K, 2): each attribute's negatives' and positives' weight); dL/ds = a (σ(s) − y).
    """
    share = _shares(np.where(y > 0.5, class_weights[:, 1], class_weights[:, 0]))  # (N, K)
    per = np.maximum(scores, 0) + np.log1p(np.exp(-np.abs(scores))) - y * scores
    loss = float((share * per).sum())
    dscores = _out(scores, dscores)
    np.exp(-np.logaddexp(0, -scores), out=dscores, casting="same_kind")  # σ(s), without overflow
    dscores -= y
    dscores *= share
    return loss, dscores


def class_weights(spec, task, classes, y, source=None):
    """What `loss_weights` `spec` asks for, fitted on the training split's labels `y`: a weight per class (C,), or
    for attributes each attribute's negatives' and positives' weights (K, 2); None when `spec` is None.

    "balanced" is scikit-learn's n / (C · count_c) per class; for attributes, n / (2 · count) for each attribute's
    positives and for its negatives (a class never seen counts as 1). {label: weight} weights the classes named,
    the others 1; for attributes, {attribute: weight} weights that attribute's positives, its negatives 1. A label
    matches as written in the data or as its text ({1: 5} and {"1": 5} both name class 1); one the data (`source`)
    does not have is a DataError naming it and the labels there are.
    """
    if spec is None:
        return None
    attributes = task == "attributes"
    if spec == "balanced":
        n = len(y)
        if attributes:
            positives = np.asarray(y, np.float64).sum(axis=0)
            return n / (2 * np.maximum(np.stack([n - positives, positives], axis=1), 1))
        counts = np.bincount(np.asarray(y), minlength=len(classes))
        return n / (len(classes) * np.maximum(counts, 1))
    index = {str(c): i for i, c in enumerate(classes)}
    unknown = [label for label in spec if str(label) not in index]
    if unknown:
        shown = ", ".join(show_value(c) for c in classes[:20]) + (", …" if len(classes) > 20 else "")
        where = f"{source}: " if source else ""
        raise DataError(
            f"{where}loss_weights names {', '.join(show_value(u) for u in unknown)}, which the data does not have; "
            f"its {'attributes' if attributes else 'classes'} are {shown}"
        )
    weights = np.ones((len(classes), 2) if attributes else len(classes))
    for label, weight in spec.items():
        if attributes:
            weights[index[str(label)], 1] = weight
        else:
            weights[index[str(label)]] = weight
    return weights

"""Class labels: ids 0..C-1 in sorted label order, the mapping of new labels onto a checkpoint's classes, and the
stratified split that holds out the same share of every class."""

import numpy as np

from nncli.errors import DataError


def class_ids(y_raw, source):
    """Map labels to ids 0..C-1 in sorted label order: (classes list, y (N,) int64). Mixed ints and strings sort as strings."""
    labels = _label_array(y_raw, source)
    values, y = np.unique(labels, return_inverse=True)
    if len(values) < 2:
        raise DataError(
            f"{source}: the labels hold {len(values)} class ({', '.join(map(str, values.tolist()))}); "
            f"classification needs at least two classes"
        )
    return values.tolist(), y.astype(np.int64).ravel()


def encode_labels(y_raw, classes, source=None):
    """Map labels to the ids of `classes` (classes[i] is the label of id i); a label not in `classes` is a DataError."""
    labels = _label_array(y_raw, source)
    known = np.asarray(classes)
    if known.dtype.kind == "U":
        labels = labels.astype(str)
    order = np.argsort(known, kind="stable")
    ranked = known[order]
    if labels.dtype.kind == ranked.dtype.kind:  # int labels never equal str classes (and numpy 1.x cannot compare them)
        pos = np.minimum(np.searchsorted(ranked, labels), len(ranked) - 1)
        hit = ranked[pos] == labels
    else:
        pos, hit = np.zeros(len(labels), np.int64), np.zeros(len(labels), bool)
    if not hit.all():
        unseen = np.unique(labels[~hit]).tolist()
        shown = ", ".join(map(repr, unseen[:5])) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
        raise DataError(
            f"{source or 'labels'}: label{'s' if len(unseen) > 1 else ''} {shown} "
            f"{'are' if len(unseen) > 1 else 'is'} not among the training classes "
            f"({', '.join(map(repr, list(classes)))})"
        )
    return order[pos].astype(np.int64)


def stratified_split(y, classes, val_fraction, test_fraction, rng, source="data"):
    """Index arrays (train, val, test), each in random order, holding round(fraction * n) of every class's n samples.

    A requested split gets at least one sample of every class and training keeps at least one, so a class with
    fewer than 1 + (val_fraction > 0) + (test_fraction > 0) samples is a DataError.
    """
    counts = np.bincount(y, minlength=len(classes))

    def share(fraction):
        return np.maximum(1, np.floor(fraction * counts + 0.5)).astype(np.int64) if fraction > 0 else 0 * counts

    n_val, n_test = share(val_fraction), share(test_fraction)
    short = np.flatnonzero(counts - n_val - n_test < 1)
    if len(short):
        c = short[0]
        need = 1 + (val_fraction > 0) + (test_fraction > 0)
        raise DataError(
            f"{source}: class {classes[c]!r} has {counts[c]} sample(s), too few to split with "
            f"val_fraction {val_fraction} and test_fraction {test_fraction}: each class needs at "
            f"least {need} (one for training and one for each held-out split)"
        )
    order = rng.permutation(len(y))
    by_class = order[np.argsort(y[order], kind="stable")]  # grouped by class, random within each class
    rank = np.arange(len(y)) - np.repeat(np.cumsum(counts) - counts, counts)
    c = y[by_class]
    part = np.zeros(len(y), np.int8)  # 0 train, 1 val, 2 test
    part[by_class[rank < n_val[c]]] = 1
    part[by_class[(rank >= n_val[c]) & (rank < n_val[c] + n_test[c])]] = 2
    return order[part[order] == 0], order[part[order] == 1], order[part[order] == 2]


def _label_array(y_raw, source):
    """Labels as a 1-D array of int64 or str: bools and whole floats become ints, bytes and mixed values strings."""
    y = np.asarray(y_raw)
    if y.ndim == 2 and y.shape[1] == 1 or y.ndim == 0:
        y = y.reshape(-1)
    if y.ndim != 1:
        several = " (several 0/1 attributes take loss logistic, several real targets l2)" if y.ndim == 2 else ""
        raise DataError(f"{source}: labels must hold one value per sample, got an array of shape {y.shape}{several}")
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        if np.isfinite(y).all() and (y == np.round(y)).all():
            return y.astype(np.int64)
        bad = y[~(np.isfinite(y) & (y == np.round(y)))][0]
        raise DataError(f"{source}: labels must be integers or strings, found {bad}")
    if y.dtype.kind == "S":
        return np.char.decode(y, "utf-8", "replace")
    if y.dtype.kind in "UO":
        return y.astype(str)
    raise DataError(f"{source}: labels must be integers or strings, got dtype {y.dtype}")

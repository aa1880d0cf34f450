"""Evaluate a checkpoint: checkpoint → network → data → its task's report (classification: loss, accuracy,
per-class precision/recall, confusion matrix; regression and attributes: evaluation.reports)."""

import functools

import numpy as np

from nncli.config import config_from_dict
from nncli.data.arrays import release_pages
from nncli.errors import CheckpointError, DataError
from nncli.evaluation.reports import attributes_report, in_units, regression_report
from nncli.evaluation.splits import SPLITS, checkpoint_data
from nncli.nn.losses import LOSSES, loss_options
from nncli.nn.network import build_network
from nncli.training.checkpoint import load_checkpoint

__all__ = ["SPLITS", "checkpoint_data", "checked_scores", "evaluate_checkpoint", "load_model"]


def load_model(path):
    """Rebuild the network stored in a checkpoint: returns (network, checkpoint, config)."""
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt.config, source=f"{path} (embedded config)")
    sizes = ckpt.layer_sizes
    net = build_network(config, sizes[0], sizes[-1])
    if list(net.sizes) != list(sizes):
        raise DataError(f"{path}: the embedded config's model.hidden does not match the stored layer sizes {sizes}")
    net.load_parameters(ckpt.params, ckpt.running)
    return net, ckpt, config


def checked_scores(net, X, checkpoint, where, first=0):
    """Class scores (N, C) of the rows X, in the network's dtype; a NaN or infinite score (an overflow: weights or
    inputs far beyond any trained range) is a CheckpointError or DataError naming the sample, never a wrong answer.

    `where` names the rows for the message ("data.csv"), `first` is the position of X's first row in it."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, as an error
        scores = net.predict_scores(X)
    bad = ~np.isfinite(scores).all(axis=1)
    if not bad.any():
        return scores
    row = int(np.argmax(bad))
    weight = max(float(np.abs(p).max()) for p in net.params.values())
    with np.errstate(invalid="ignore"):
        value = float(np.abs(np.asarray(X[row], dtype=np.float64)).max())
    said = (
        f"the network's class scores are NaN or infinite (they overflow {np.dtype(net.dtype).name}) on sample "
        f"{first + row} (0-based) of {where}: the largest weight is {weight:.3g} in magnitude, the largest input "
        f"to the network on that sample {value:.3g}"
    )
    if not weight < value:
        raise CheckpointError(f"checkpoint {checkpoint}: {said}; no trained network holds weights that large")
    raise DataError(f"{said}; that input is far outside the range the network was trained on")


def classification_report(y, pred, num_classes):
    """Confusion matrix (rows: true class, columns: predicted) and per-class precision, recall and support."""
    return per_class(confusion_counts(y, pred, num_classes))


def confusion_counts(y, pred, num_classes):
    """The (C, C) confusion matrix of true classes y and predictions pred: counts, rows true, columns predicted."""
    return np.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class(confusion):
    """(confusion, precision, recall, support) of a confusion matrix; a class never predicted has precision 0."""
    tp = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    return confusion, precision, recall, support


def evaluate_checkpoint(path, data_path=None, split=None, labels=None):
    """Evaluate a checkpoint; returns a JSON-ready dict: checkpoint, split, samples, then by the checkpoint's task
    classification  loss, accuracy, balanced_accuracy (mean per-class recall), epoch, position, classes,
                    per_class precision/recall/support, confusion
    regression      task, loss, rmse, mae, r2, per_target with residual quantiles (evaluation.reports), in the
                    targets' units; epoch, position, classes (the target names)
    attributes      task, loss, accuracy, exact_match, micro_f1, per_attribute accuracy/precision/recall/support
    """
    if split is not None and split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    net, ckpt, config = load_model(path)
    data, split = checkpoint_data(ckpt, config, data_path, split, labels)
    chunks = scored_chunks(net, config, data, path, f"the {split} split" if split != "file" else data_path)
    head = {"checkpoint": str(path), "split": split, "samples": int(len(data.y))}
    meta = {"epoch": ckpt.epoch, "position": ckpt.position, "classes": list(ckpt.classes)}
    if "class_weights" in ckpt.meta:  # eval's loss is the plain mean; training's (val_loss) the weighted one
        meta["loss_note"] = "plain mean over the samples; the run's val_loss is weighted by its loss_weights"
    if ckpt.task == "classification":
        return {**head, **_classification(chunks, net.sizes[-1], ckpt.classes, meta)}
    report = (regression_report if ckpt.task == "regression" else attributes_report)(chunks, ckpt)
    return {**head, "task": ckpt.task, **report, **meta}


def _classification(chunks, num_classes, classes, meta):
    """The classification report's keys after `samples`, as they have always been, plus balanced_accuracy."""
    total, seen = 0.0, 0
    confusion = np.zeros((num_classes, num_classes), np.int64)  # counted a chunk at a time: no (N,) predictions held
    for loss, scores, yb in chunks:
        total += loss * len(yb)
        confusion += confusion_counts(yb, scores.argmax(axis=1), num_classes)
        seen += len(yb)
    confusion, precision, recall, support = per_class(confusion)
    correct = int(np.trace(confusion))
    return {
        "loss": total / max(seen, 1),
        "accuracy": correct / seen if seen else 0.0,
        "balanced_accuracy": float(recall[support > 0].mean()) if seen else 0.0,  # classes present only
        **meta,
        "per_class": [
            {"class": c, "precision": float(p), "recall": float(r), "support": int(s)}
            for c, p, r, s in zip(classes, precision, recall, support)
        ],
        "confusion": confusion.tolist(),
    }


def scored_chunks(net, config, data, checkpoint, where):
    """Yield (mean data loss, scores, targets) of a Split a chunk at a time; non-finite scores refused."""
    loss_fn = functools.partial(LOSSES[config.loss].fn, **loss_options(config))
    seen = 0
    for xb, yb in data.chunks(reuse=True):
        scores = checked_scores(net, xb, checkpoint, where, seen)
        yield float(loss_fn(scores, yb)[0]), scores, yb
        seen += len(yb)
        release_pages(data.X)


def regression_outputs(net, ckpt, config, checkpoint, split=None):
    """(predicted, true, split name) of the regression checkpoint at path `checkpoint` on a split rebuilt from its
    config (default as eval picks it): both (N, K) float64 in the targets' units."""
    data, split = checkpoint_data(ckpt, config, split=split)
    pairs = [(s, y) for _, s, y in scored_chunks(net, config, data, checkpoint, f"the {split} split")]
    predicted, true = (in_units(np.concatenate(part), ckpt) for part in zip(*pairs))
    return predicted, true, split

"""Evaluate a checkpoint: checkpoint → network → data → loss, accuracy, per-class precision/recall, confusion matrix."""

import numpy as np

from nncli.config import config_from_dict
from nncli.data.dataset import Split, encode_labels, load_dataset, load_features, standardize
from nncli.errors import DataError, DataFileMissing, Hint
from nncli.nn.network import build_network
from nncli.training.checkpoint import load_checkpoint

SPLITS = ("train", "val", "test")


def load_model(path):
    """Rebuild the network stored in a checkpoint: returns (network, checkpoint, config)."""
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt.config, source=f"{path} (embedded config)")
    sizes = ckpt.layer_sizes
    net = build_network(config, sizes[0], sizes[-1])
    if list(net.sizes) != list(sizes):
        raise DataError(f"{path}: the embedded config's model.hidden does not match the stored layer sizes {sizes}")
    for name, value in ckpt.params.items():
        net.params[name][...] = value
    return net, ckpt, config


def classification_report(y, pred, num_classes):
    """Confusion matrix (rows: true class, columns: predicted) and per-class precision, recall and support."""
    confusion = np.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    tp = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    return confusion, precision, recall, support


def checkpoint_data(ckpt, config, data_path=None, split=None, labels=None):
    """The Split a checkpoint is evaluated on: a labelled file given by the user, or a split rebuilt from its config."""
    if data_path is not None:
        X, y_raw, _ = load_features(
            data_path, config.data, require_labels=True, labels=labels, feature_names=ckpt.meta.get("feature_names")
        )
        y = encode_labels(y_raw, ckpt.classes, source=str(data_path))
        if X.shape[1] != ckpt.layer_sizes[0]:
            raise DataError(f"{data_path}: has {X.shape[1]} features, the checkpoint expects {ckpt.layer_sizes[0]}")
        if ckpt.norm_mean is not None:
            X = standardize(X, ckpt.norm_mean, ckpt.norm_std)
        return Split(np.ascontiguousarray(X, dtype=config.train.dtype), y), split or "file"
    if labels is not None:
        raise DataError(
            f"labels {labels} goes with data_path (.npy or IDX features); without data_path the "
            f"checkpoint's own data split is evaluated"
        )
    try:
        data = load_dataset(config.data, config.seed, np.dtype(config.train.dtype))
    except DataFileMissing as err:
        raise DataFileMissing(
            f"{err}; the checkpoint's config names this file", hints=(Hint.WHERE_TRAINED, Hint.DATA_FILE)
        ) from None
    if split is None:
        split = "test" if data.test is not None else "val" if data.val is not None else "train"
    chosen = getattr(data, split)
    if chosen is None:
        present = [name for name in SPLITS if getattr(data, name) is not None]
        raise DataError(
            f"the checkpoint's data has no {split} split (data.{split}_fraction is 0), only {' and '.join(present)}",
            hints=(Hint.SPLIT, Hint.DATA_FILE),
        )
    return chosen, split


def evaluate_checkpoint(path, data_path=None, split=None, labels=None):
    """Evaluate a checkpoint; returns a JSON-ready dict (loss, accuracy, samples, split, per-class metrics, confusion)."""
    if split is not None and split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    net, ckpt, config = load_model(path)
    data, split = checkpoint_data(ckpt, config, data_path, split, labels)
    loss, accuracy = net.evaluate(data.chunks())
    pred = np.concatenate([net.predict(xb) for xb, _ in data.chunks()] or [np.zeros(0, np.int64)])
    confusion, precision, recall, support = classification_report(data.y, pred, net.sizes[-1])
    return {
        "checkpoint": str(path),
        "split": split,
        "samples": int(len(data.y)),
        "loss": loss,
        "accuracy": accuracy,
        "epoch": ckpt.epoch,
        "position": ckpt.position,
        "classes": list(ckpt.classes),
        "per_class": [
            {"class": c, "precision": float(p), "recall": float(r), "support": int(s)}
            for c, p, r, s in zip(ckpt.classes, precision, recall, support)
        ],
        "confusion": confusion.tolist(),
    }

"""Predict: checkpoint → network → new data → one CSV row per sample (predicted label, per-class probabilities or scores).

The input is read like eval's (`nncli.data.dataset.load_features`), picked by the checkpoint's feature names when it
has them, standardized with the checkpoint's training statistics, and run through the network `chunk` rows at a
time, so the scores, probabilities and text in flight stay bounded whatever the file's size. A label column in the
input is allowed and ignored. Labels are written in the original vocabulary (`ckpt.classes`).
"""

import csv
import io

import numpy as np

from nncli.data.dataset import load_features, standardize
from nncli.errors import DataError
from nncli.evaluation.evaluate import checked_scores, load_model
from nncli.nn.losses import LOSSES, softmax
from nncli.training.atomic import atomic_write, check_output


def prediction_header(classes, loss):
    """['predicted', 'p_<label>', …] for a loss read as probabilities (softmax), else ['predicted', 'score_<label>',
    …] (the SVM)."""
    prefix = "p_" if LOSSES[loss].probabilities else "score_"
    return ["predicted", *(f"{prefix}{c}" for c in classes)]


def _features(path, ckpt, config, labels):
    """The input's features (N, D) float64, checked against the checkpoint's input dimension D."""
    names, D = ckpt.meta.get("feature_names"), ckpt.layer_sizes[0]
    X, y, _ = load_features(path, config.data, require_labels=False, labels=labels, feature_names=names)
    if (
        X.shape[1] == D - 1
        and y is not None
        and names is None
        and config.data.target is None
        and str(path).lower().endswith(".csv")
    ):
        # Trained without column names, so the last of these D columns was taken for a label: read it again with a
        # target no column is named ("\0"), which makes every column a feature.
        everything = config.data.model_copy(update={"target": "\0"})
        X, _, _ = load_features(path, everything, require_labels=False, labels=labels)
    if X.shape[1] != D:
        label = " besides a label column (a CSV's last column, or data.target)" if y is not None else ""
        raise DataError(
            f"{path}: has {X.shape[1]} feature{'s' if X.shape[1] != 1 else ''}{label}, the checkpoint expects {D}"
        )
    return X


def predict_file(checkpoint, input_path, labels=None, chunk=4096):
    """Predictions for every sample of `input_path`: (header, rows), rows a generator of CSV rows in input order.

    Each row is [label, v_1, …, v_C]: the predicted label in the checkpoint's original labels, then the softmax
    probabilities (they sum to 1) or the SVM class scores. `labels` is a labels file for .npy/IDX input (never
    needed: predict reads no labels). Errors in the input (missing file, wrong feature count…) raise at once; a
    NaN or infinite score (an overflow) raises when its chunk is reached, naming the sample (`checked_scores`).
    """
    net, ckpt, config = load_model(checkpoint)
    X = _features(input_path, ckpt, config, labels)
    classes = np.asarray(ckpt.classes, dtype=object)

    probabilities = LOSSES[config.loss].probabilities

    def rows():
        for start in range(0, len(X), chunk):
            xb = X[start : start + chunk]
            if ckpt.norm_mean is not None:
                xb = standardize(xb, ckpt.norm_mean, ckpt.norm_std)
            values = checked_scores(net, xb, checkpoint, input_path, start).astype(np.float64)
            if probabilities:
                values = softmax(values)
            for label, v in zip(classes[values.argmax(axis=1)], values.tolist()):
                yield [label, *(f"{x:.6g}" for x in v)]

    return prediction_header(ckpt.classes, config.loss), rows()


def write_csv(stream, header, rows):
    """Write `header` then every row of `rows` as CSV to the text stream `stream`; returns the number of rows."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def predict_to_file(checkpoint, input_path, out_path, labels=None, force=False):
    """Write the predictions CSV to `out_path` atomically (never half a file); an existing file only with force.

    Returns the number of samples written.
    """
    check_output(out_path, force)
    header, rows = predict_file(checkpoint, input_path, labels)  # input errors surface before anything is written
    written = []

    def write(f):
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        written.append(write_csv(text, header, rows))
        text.flush()
        text.detach()  # leave the binary file open for the fsync

    atomic_write(out_path, write)
    return written[0]

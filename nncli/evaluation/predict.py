"""Predict: checkpoint → network → new data → one CSV row per sample (predicted label, per-class probabilities or
scores; per target a value in its units; per attribute 0/1 and a probability).

The input is read like eval's (`nncli.data.dataset.load_features`), picked by the checkpoint's feature names when it
has them, standardized with the checkpoint's training statistics, and run through the network `chunk` rows at a
time, so the scores, probabilities and text in flight stay bounded whatever the file's size. A label column in the
input is allowed and ignored. Labels are written in the original vocabulary (`ckpt.classes`).

An input of "-" is a CSV read from standard input (spooled to a temporary file, then read like any other), and
`id_column` copies one CSV column, as text, into the output's first column.
"""

import contextlib
import csv
import io
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from nncli.data.arrays import release_pages
from nncli.data.csvfile import header_names
from nncli.data.dataset import load_features, standardize
from nncli.errors import DataError
from nncli.evaluation.evaluate import checked_scores, load_model
from nncli.evaluation.reports import in_units
from nncli.nn.losses import LOSSES, sigmoid, softmax
from nncli.training.atomic import atomic_write, check_output


def prediction_header(classes, loss):
    """The columns after any id column, by the loss's task:
    classification  ['predicted', 'p_<label>', …] (softmax probabilities) or ['predicted', 'score_<label>', …]
    regression      ['predicted_<target>', …], in the targets' units
    attributes      ['<attr>', …] (0 or 1) then ['p_<attr>', …] (σ of its score)"""
    task = LOSSES[loss].task
    if task == "regression":
        return [f"predicted_{c}" for c in classes]
    if task == "attributes":
        return [str(c) for c in classes] + [f"p_{c}" for c in classes]
    prefix = "p_" if LOSSES[loss].probabilities else "score_"
    return ["predicted", *(f"{prefix}{c}" for c in classes)]


def prediction_cells(scores, ckpt, probabilities, class_text):
    """A chunk's cells as `prediction_header` names them, from its scores (n, K) float64: (text (n, a) of CSV-ready
    strings, numbers (n, b) float64), the text cells first in each row. `class_text`: the classes as CSV cells
    (`csv_cells`, made once per file)."""
    if ckpt.task == "regression":
        return np.empty((len(scores), 0), object), in_units(scores, ckpt)
    if ckpt.task == "attributes":  # σ(s) > ½, as eval counts them
        return np.array(["0", "1"], object)[(scores > 0).astype(np.intp)], sigmoid(scores)
    values = softmax(scores) if probabilities else scores
    return class_text[values.argmax(axis=1)][:, None], values


def csv_cells(values):
    """Each value's text as a CSV cell, in an object array (the classes, which predicted ids index; an id column)."""
    return np.array([csv_cell(str(v)) for v in values], object)


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def csv_cell(text):
    """`text` as one cell of a comma-separated line, quoted as csv.writer quotes it (QUOTE_MINIMAL)."""
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if _NEEDS_QUOTES.search(text) else text


def csv_lines(text, numbers):
    """The CSV lines (one string, each line ending in a newline) of a chunk's cells: the text cells as they are,
    each number as f"{x:.6g}". One `%` over the whole chunk: formatting cell by cell in Python (csv.writer and an
    f-string per value) cost more than the network's products."""
    n, width = len(numbers), text.shape[1] + numbers.shape[1]
    cells = np.empty((n, width), object)
    cells[:, : text.shape[1]] = text
    cells[:, text.shape[1] :] = numbers  # Python floats, formatted by %.6g exactly as by f"{x:.6g}"
    line = ",".join(["%s"] * text.shape[1] + ["%.6g"] * numbers.shape[1]) + "\n"
    return (line * n) % tuple(cells.ravel())


def _features(path, ckpt, config, labels):
    """The input's features (N, D) float64, checked against the checkpoint's input dimension D."""
    names, D = ckpt.meta.get("feature_names"), ckpt.layer_sizes[0]
    data_cfg = config.data
    if names is None and data_cfg.target is None and str(path).lower().endswith(".csv") and _width(path, data_cfg) == D:
        # Trained without column names (a built-in, an array file): D columns are all features, none a label; a
        # target no column is named ("\0") makes every column a feature.
        data_cfg = data_cfg.model_copy(update={"target": "\0"})
    X, y, _ = load_features(
        path, data_cfg, require_labels=False, labels=labels, feature_names=names, encoding=ckpt.encoding
    )
    if X.shape[1] != D:
        label = " besides a label column (a CSV's last column, or data.target)" if y is not None else ""
        raise DataError(
            f"{path}: has {X.shape[1]} feature{'s' if X.shape[1] != 1 else ''}{label}, the checkpoint expects {D}"
        )
    return X


def _width(path, data_cfg):
    """How many columns the CSV's header has (None when it cannot be read: the reader then says why)."""
    try:
        return len(header_names(path, data_cfg.delimiter)[0])
    except DataError:
        return None


STDIN = "-"


@contextlib.contextmanager
def readable(input_path, stream=None):
    """The path to read for `input_path`: itself, or for "-" a temporary copy of `stream` (default stdin's bytes);
    a DataError about the copy names "stdin" instead of the temporary file."""
    if str(input_path) != STDIN:
        yield input_path
        return
    with tempfile.TemporaryDirectory(prefix="nncli-stdin-") as tmp:
        path = Path(tmp) / "stdin.csv"
        with open(path, "wb") as f:
            shutil.copyfileobj(stream if stream is not None else sys.stdin.buffer, f)
        try:
            yield path
        except DataError as e:
            raise DataError(e.message.replace(str(path), "stdin"), hints=e.hints) from None


def _ids(path, column, rows, delimiter=None):
    """The text of CSV column `column`, one per data record (blank lines skipped, as the reader does), the cells
    split by `delimiter` (default: detected from the header, as the reader does)."""
    if not str(path).lower().endswith(".csv"):
        raise DataError(f"{path}: an id column ({column!r}) is copied from a CSV input, and this is not a .csv file")
    _, delimiter = header_names(path, delimiter)
    with open(path, newline="", encoding="utf-8-sig") as f:
        records = (r for r in csv.reader(f, delimiter=delimiter, skipinitialspace=True) if r and r != [""])
        header = [name.strip() for name in next(records, [])]
        if column not in header:
            raise DataError(f"{path}: no id column {column!r}; the columns are {', '.join(header)}")
        at = header.index(column)
        ids = [record[at].strip() for record in records]
    if len(ids) != rows:
        raise DataError(f"{path}: {len(ids)} values in id column {column!r} for {rows} samples")
    return ids


def predict_file(checkpoint, input_path, labels=None, chunk=4096, id_column=None):
    """Predictions for every sample of `input_path`: (header, chunks), chunks a generator of (rows, CSV text of
    those rows) in input order, `chunk` rows at a time.

    Each row is label, v_1, …, v_C: the predicted label in the checkpoint's original labels, then the softmax
    probabilities (they sum to 1) or the SVM class scores; for regression one predicted value per target in its
    units, for attributes 0/1 per attribute then its probability (`prediction_header`). `labels` is a labels file
    for .npy/IDX input (never needed: predict reads no labels). Errors in the input (missing file, wrong feature
    count…) raise at once; a NaN or infinite score (an overflow) raises when its chunk is reached, naming the
    sample (`checked_scores`).
    With `id_column` (a column of a CSV input) each row starts with that column's text.
    """
    net, ckpt, config = load_model(checkpoint)
    X = _features(input_path, ckpt, config, labels)
    ids = None if id_column is None else _ids(input_path, id_column, len(X), config.data.delimiter)
    probabilities = LOSSES[config.loss].probabilities
    class_text = csv_cells(ckpt.classes)

    def chunks():
        for start in range(0, len(X), chunk):
            xb = X[start : start + chunk]
            if ckpt.norm_mean is not None:
                xb = standardize(xb, ckpt.norm_mean, ckpt.norm_std)
            values = checked_scores(net, xb, checkpoint, input_path, start).astype(np.float64)
            text, numbers = prediction_cells(values, ckpt, probabilities, class_text)
            if ids is not None:
                lead = csv_cells(ids[start : start + chunk])[:, None]
                text = np.concatenate([lead, text], axis=1)
            yield len(xb), csv_lines(text, numbers)
            release_pages(X)

    header = prediction_header(ckpt.classes, config.loss)
    return header if id_column is None else [id_column, *header], chunks()


def write_csv(stream, header, chunks):
    """Write `header` as a CSV line then every chunk's lines to the text stream `stream`; returns the number of
    rows. `chunks` yields (rows, text), as `predict_file` makes them."""
    csv.writer(stream, lineterminator="\n").writerow(header)
    count = 0
    for rows, text in chunks:
        stream.write(text)
        count += rows
    return count


def predict_to_file(checkpoint, input_path, out_path, labels=None, force=False, id_column=None):
    """Write the predictions CSV to `out_path` atomically (never half a file); an existing file only with force.

    Returns the number of samples written.
    """
    check_output(out_path, force)
    header, chunks = predict_file(checkpoint, input_path, labels, id_column=id_column)  # input errors surface first
    written = []

    def write(f):
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        written.append(write_csv(text, header, chunks))
        text.flush()
        text.detach()  # leave the binary file open for the fsync

    atomic_write(out_path, write)
    return written[0]

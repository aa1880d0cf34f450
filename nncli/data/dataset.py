"""Data: read a source, map its labels to class ids, split it stratified, standardize it on the training split.

The trainer calls `load_dataset(cfg.data, seed, dtype)`. Eval and predict read one file with `load_features`, then
apply the checkpoint's label mapping and statistics with `encode_labels` and `standardize`.

Sources: a built-in name (`nncli.data.builtin.BUILTINS`) or a CSV, NPZ, NPY or IDX file (read by files.py).

Randomness: one `np.random.default_rng(seed)` first generates a built-in dataset, then draws the split. It is the
root of the seed tree, so it is independent of the trainer's `SeedSequence(seed).spawn` children.
"""

import os
from dataclasses import dataclass

import numpy as np

from nncli.data.csvfile import label_values
from nncli.data.encoding import Encoding, fit, parse, screen
from nncli.data.files import read_source
from nncli.data.labels import class_ids, encode_labels, stratified_split
from nncli.data.profile import check_target
from nncli.data.scaling import check_scale, moments, standardize
from nncli.data.table import Table
from nncli.data.targets import (
    check_missing_targets,
    check_task,
    output_names,
    random_split,
    split_targets,
    target_moments,
    target_names,
    target_values,
)
from nncli.errors import DataError, Hint, LabelsMissing
from nncli.nn.tally import Tally

__all__ = [
    "Dataset",
    "Split",
    "class_ids",
    "dataset_from_arrays",
    "encode_labels",
    "load_dataset",
    "load_features",
    "standardize",
    "stratified_split",
]

BLOCK_ROWS = 512  # rows of a lazy split read and standardized at a time (float64 temporaries of ~3 MiB at 784 features)


@dataclass
class Split:
    """One split: features X (N, D) and class ids y (N,) int64.

    In memory (`index` is None) X is standardized already and in the training dtype. A split of a memory-mapped
    .npy file is lazy: its rows are X[index] of the raw file, and `batch` reads, standardizes with `mean`/`std` and
    converts to `dtype` only the rows asked for, so a file larger than RAM trains in memory bounded by the batch.
    """

    X: np.ndarray
    y: np.ndarray
    index: np.ndarray | None = None
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    dtype: np.dtype | None = None

    def __len__(self):
        return len(self.y)

    def batch(self, idx, out=None):
        """Rows `idx` (positions 0..N-1 of this split) ready for the network: (len(idx), D).

        `out`, a preallocated (len(idx), D) array of the training dtype, is filled and returned instead of a new array.
        """
        if self.index is None:
            # mode="clip" skips numpy's buffered bounds-checked copy into `out` (several times faster);
            # idx are positions 0..N-1 of this split, so nothing is ever clipped
            return self.X.take(idx, axis=0, out=out, mode="clip")
        rows = self.index[idx]
        out = np.empty((len(rows), self.X.shape[1]), self.dtype) if out is None else out
        for start in range(0, len(rows), BLOCK_ROWS):  # the float64 temporaries stay at a block's size
            block = self.X[rows[start : start + BLOCK_ROWS]]
            if self.mean is not None:
                block = block - self.mean  # float64, as the training split was standardized
                block /= self.std
            out[start : start + BLOCK_ROWS] = block
        return out

    def chunks(self, size=4096, reuse=False):
        """Yield (X, y) over the whole split in order, `size` rows at a time: evaluation in bounded memory. With
        `reuse` every X is written into one buffer, valid until the next chunk (for callers that use each once)."""
        buffer = np.empty((min(size, len(self)), self.X.shape[1]), self.dtype or self.X.dtype) if reuse else None
        for start in range(0, len(self), size):
            idx = np.arange(start, min(start + size, len(self)))
            yield self.batch(idx, None if buffer is None else buffer[: len(idx)]), self.y[idx]


@dataclass
class Dataset:
    """Train/val/test splits plus what eval and predict need to treat new data the same way.

    classes[i] is the original label of class id i (ints stay ints, strings stay strings). mean and std (D,) are the
    training split's per-feature statistics (None when standardization is off), with a constant feature's std set to 1
    (and a one-hot input's mean 0, std 1). A CSV's `encoding` turns its columns into inputs (encoding.py); `cleaning`
    counts its missing cells and dropped rows.
    """

    train: Split
    val: Split | None
    test: Split | None
    classes: list
    feature_names: list[str] | None
    mean: np.ndarray | None
    std: np.ndarray | None
    source: str
    encoding: Encoding | None = None
    cleaning: dict | None = None
    task: str = "classification"
    target_mean: np.ndarray | None = None  # regression, with data.standardize_target: the training split's (K,)
    target_std: np.ndarray | None = None

    def tally(self):
        """A fresh Tally of this data's task, reporting regression metrics in the targets' own units."""
        return Tally(self.task, self.num_classes, self.target_mean, self.target_std)

    @property
    def num_features(self):
        return self.train.X.shape[1]

    @property
    def num_classes(self):
        return len(self.classes)


def load_dataset(data_cfg, seed: int, dtype=np.float32, task="classification") -> Dataset:
    """Load `data_cfg.source`, split it (seeded; stratified by class for classification), encode and standardize it;
    the same cfg and seed give the same arrays.

    val_source/test_source (with optional val_labels/test_labels for .npy/IDX) replace the fractional val/test
    splits. Splits of a .npy file stay memory-mapped (see `Split`); all others are in memory in `dtype`. A CSV's
    missing cells and text columns are handled by an Encoding fitted on the training split (encoding.py); `task`
    (the loss's) says whether y is class ids or real or 0/1 targets (targets.py).
    """
    source = os.fspath(data_cfg.source)
    check_task(data_cfg, task)
    rng = np.random.default_rng(seed)
    wanted = None if task == "classification" else target_names(data_cfg)
    read = _read_training(source, data_cfg, rng, wanted)
    return _assembled(read, data_cfg, rng, np.dtype(dtype), task, source)


def dataset_from_arrays(X, y, data_cfg, seed: int, dtype=np.float32, task="classification", feature_names=None):
    """The Dataset of in-memory features X (N, D) and labels or targets y (N,) or (N, K), split, standardized and
    checked by the same code as `load_dataset`: a file holding the same rows (a CSV of every feature and then the
    label) gives the same splits, statistics and arrays for the same `data_cfg` (its source only names the arrays
    in messages; val_source and test_source are not used) and seed."""
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    names = None if feature_names is None else [str(name) for name in feature_names]
    read = X, y, names, None, None, None
    return _assembled(read, data_cfg, rng, np.dtype(dtype), task, os.fspath(data_cfg.source))


def _split_rows(y_raw, table, data_cfg, fractions, rng, task, targets):
    """(y, classes, (train, val, test) index arrays): class ids and a stratified split for classification, real
    or 0/1 targets and a random split otherwise."""
    source = os.fspath(data_cfg.source)
    if task == "classification":
        check_target(y_raw, source, None if table is None else table.label_name)  # before 1-sample classes
        classes, y = class_ids(y_raw, source)
        return y, classes, stratified_split(y, classes, *fractions, rng, source)
    y = target_values(y_raw, task, source)
    classes = output_names(task, y, targets, data_cfg.y_key)
    return y, classes, random_split(len(y), *fractions, rng, source)


def _assembled(read, data_cfg, rng, dtype, task, source):
    """The Dataset of what `_read_training` read: split, encoded, standardized, and any val/test file added."""
    X, y_raw, names, table, cleaning, targets = read
    explicit = {part: getattr(data_cfg, f"{part}_source", None) for part in ("val", "test")}
    fractions = [0.0 if explicit[part] else getattr(data_cfg, f"{part}_fraction") for part in ("val", "test")]
    y, classes, (train_idx, val_idx, test_idx) = _split_rows(y_raw, table, data_cfg, fractions, rng, task, targets)
    t_mean = t_std = None
    if task == "regression" and data_cfg.standardize_target:
        t_mean, t_std = target_moments(y, train_idx)
    encoding = None
    if table is not None:
        encoding = fit(table, train_idx, data_cfg.missing, data_cfg.na_values, data_cfg.unknown_category)
        X, names = encoding.transform(table), encoding.names
    mean, std = moments(X, train_idx) if data_cfg.standardize else (None, None)
    if mean is not None and encoding is not None:
        mean[encoding.one_hot], std[encoding.one_hot] = 0.0, 1.0  # indicators stay 0 or 1
    check_scale(X, mean, std, dtype, source, names)

    def labels(y):  # class ids as they are; real targets standardized and in the training dtype
        if task == "classification":
            return y
        return ((y - t_mean) / t_std if t_mean is not None else y).astype(dtype)

    def split(X, y, rows):
        if isinstance(X, np.memmap):
            return Split(X, labels(y[rows]), rows, mean, std, dtype)
        return Split(_prepare(X[rows], mean, std, dtype), labels(y[rows]))

    parts = {"val": split(X, y, val_idx) if fractions[0] > 0 else None}
    parts["test"] = split(X, y, test_idx) if fractions[1] > 0 else None
    for part, path in explicit.items():
        if path:
            Xp, yp = _held_out_file(
                path, part, data_cfg, (X, classes, names, targets), (mean, std, dtype), rng, encoding, task
            )
            parts[part] = split(Xp, yp, np.arange(len(Xp)))
    train = split(X, y, train_idx)
    data = Dataset(train, parts["val"], parts["test"], classes, names, mean, std, source, encoding, cleaning)
    data.task, data.target_mean, data.target_std = task, t_mean, t_std
    return data


def _held_out_file(path, part, data_cfg, training, scaling, rng, encoding, task):
    """(X, y) of a val_source or test_source file, checked against the training data's features and classes."""
    X, classes, names, targets = training
    source = os.fspath(data_cfg.source)
    extra = getattr(data_cfg, f"{part}_labels", None)
    Xp, yp_raw, _, _ = _read(os.fspath(path), data_cfg, extra, True, names, rng, encoding, targets)
    if Xp.shape[1] != X.shape[1]:
        raise DataError(f"{path}: has {Xp.shape[1]} features, the training data {source} has {X.shape[1]}")
    check_scale(Xp, *scaling, path, names)
    if task == "classification":
        return Xp, encode_labels(yp_raw, classes, source=path)
    yp = target_values(yp_raw, task, path)
    if yp.shape[1] != len(classes):
        raise DataError(f"{path}: has {yp.shape[1]} targets, the training data {source} has {len(classes)}")
    return Xp, yp


def _read_training(source, data_cfg, rng, wanted):
    """(X or None, raw labels or targets, names, parsed feature Table or None, cleaning, target names) of the
    training source; `wanted` is None for class labels, else the target columns asked for ([]: the last)."""
    listed = None if data_cfg.categorical == "auto" else data_cfg.categorical
    X, y_raw, names = read_source(source, data_cfg, data_cfg.labels, True, None, rng, listed or (), wanted)
    if not isinstance(X, Table):
        return X, y_raw, names, None, None, None
    targets = X.targets
    kinds = {n: "categorical" if n in listed else "numeric" for n in X.names} if listed is not None else {}
    kinds.update(dict.fromkeys(targets or (), "numeric"))
    table = parse(X, kinds or None, data_cfg.na_values, listed=listed is not None)
    table, y_raw, cleaning = _screened(table, targets, data_cfg.missing, data_cfg.na_values, True)
    return None, y_raw, names, table, cleaning, targets


def load_features(
    path_or_source,
    data_cfg,
    require_labels: bool,
    *,
    labels=None,
    feature_names=None,
    seed=0,
    encoding=None,
    targets=None,
):
    """Read one file (or built-in) for eval or predict: (X (N, D) float64, raw labels (N,) or None, feature names or
    None).

    For a CSV without the label column (and require_labels False) every column, or `feature_names` (the training
    columns, picked by name), is a feature, encoded by `encoding` (the checkpoint's; default every column numeric).
    Rows with a missing cell are dropped when the encoding says so and labels are required (eval); predict, which
    answers every row, refuses them. `labels` is the labels file for .npy/IDX features (default data.labels when the
    file is data.source). A built-in is generated with `seed`. The whole file is read into memory, except a .npy's
    features: they stay memory-mapped in the file's dtype, for the caller to read a chunk at a time.
    Features without their labels file, when labels are required, raise LabelsMissing with the hint to pass `labels`.
    `targets` (a regression or attributes checkpoint's target columns) are read from a CSV as the raw labels.
    """
    source = os.fspath(path_or_source)
    if labels is None and source == os.fspath(data_cfg.source):
        labels = data_cfg.labels
    rng = np.random.default_rng(seed)
    try:
        X, y_raw, names, _ = _read(source, data_cfg, labels, require_labels, feature_names, rng, encoding, targets)
    except LabelsMissing as err:
        raise LabelsMissing(err.message, hints=(Hint.LABELS_FILE,)) from None
    return (X if isinstance(X, np.memmap) else np.asarray(X, dtype=np.float64)), y_raw, names


def _read(source, data_cfg, labels, require_labels, names, rng, encoding=None, targets=None):
    """read_source, then a CSV's Table encoded by `encoding` (default: every column numeric, missing refused):
    (X, raw labels or None, feature names or None, cleaning or None)."""
    text = () if encoding is None else encoding.text_columns
    wanted = targets if require_labels and targets is not None else None
    X, y_raw, read_names = read_source(source, data_cfg, labels, require_labels, names, rng, text, wanted)
    if not isinstance(X, Table):
        return X, y_raw, read_names, None
    targets = X.targets or []
    if encoding is None:
        encoding = Encoding.numeric([n for n in X.names if n not in targets], data_cfg.na_values)
    table = parse(X, {**encoding.kinds(), **dict.fromkeys(targets, "numeric")}, encoding.na_values)
    missing, purpose = encoding.missing, None
    if missing == "drop" and not require_labels:
        missing, purpose = "error", "predict"  # predict answers every row: it cannot leave one out
    table, y_raw, cleaning = _screened(table, targets, missing, encoding.na_values, require_labels, purpose)
    return encoding.transform(table), y_raw, table.names, cleaning


def _screened(table, targets, missing, na_values, labels, purpose=None):
    """(feature table, raw labels or targets (None without a label column), cleaning) of a parsed Table:
    missing targets refused, rows screened by `missing` (see encoding.screen), the targets split off."""
    if targets:
        check_missing_targets(table, targets, missing)
    table, cleaning = screen(table, missing, na_values, labels=labels and not targets, purpose=purpose)
    if targets:
        table, y = split_targets(table, targets)
        return table, y, cleaning
    return table, None if table.label is None else label_values(table.label), cleaning


def _prepare(X, mean, std, dtype):
    """Rows already in memory: standardized (when mean is given) and converted to a C-contiguous `dtype` array."""
    if mean is not None:
        X = standardize(X, mean, std)
    return np.ascontiguousarray(X, dtype=dtype)

"""Data files: which reader a source needs, and the readers (CSV in csvfile.py; NPZ, memory-mapped NPY, IDX here),
each checking what it reads and naming the file, row and column of a problem in a DataError.

  .csv   header row; label column `data.target` (default the last), features `data.features` (default the rest)
  .npz   arrays `data.x_key` (features) and `data.y_key` (labels), read without unpickling
  .npy   features, memory-mapped (never copied whole); labels from the file `data.labels` (.npy or IDX)
  IDX    MNIST format (.idx, *-ubyte, optionally .gz); images flattened to rows, values as stored (pixels 0–255;
         data.standardize, on by default, puts them on a common scale); labels from `data.labels`
"""

import os
import zipfile
from pathlib import Path

import numpy as np

from nncli.data import arrays
from nncli.data import builtin as datasets
from nncli.data.arrays import UnreadableArray
from nncli.data.builtin import BUILTINS, data_file
from nncli.data.csvfile import read_csv
from nncli.errors import DataError, DataFileMissing, LabelsMissing

FORMATS = ".csv, .npz, .npy (labels from data.labels), IDX (.idx or *-ubyte, optionally .gz; labels from data.labels)"
CHUNK_BYTES = 8 * 2**20  # rows read at a time when scanning a memory-mapped file (its pages then released)
FILE_KEYS = ("source", "labels", "val_source", "val_labels", "test_source", "test_labels")  # data: keys naming files


def row_chunks(X, rows=None):
    """Blocks of about CHUNK_BYTES: slices of X, or sorted pieces of `rows` (for locality in a memory-mapped file)."""
    step = max(1, CHUNK_BYTES // max(1, X.shape[1] * X.itemsize))
    if rows is None:
        for start in range(0, len(X), step):
            yield start, X[start : start + step]
    else:
        rows = np.sort(rows)
        for start in range(0, len(rows), step):
            yield start, X[rows[start : start + step]]


def read_source(source, cfg, labels, require_labels, feature_names, rng, text_columns=(), targets=None):
    """(X (N, D), raw labels or None, feature names or None) from a built-in or a file; X may be a memmap (.npy).

    A CSV (iris too) gives a Table in place of X and None for the labels, which are the Table's label column
    (`text_columns`: the categorical columns, kept as text; `targets`: regression or attribute target columns, read
    as the Table's last columns, see csvfile.read_csv)."""
    if source in BUILTINS:
        kwargs = datasets.generator_kwargs(source, cfg)
        if source == "iris":
            return read_csv(data_file("iris.csv"), "species", None, True), None, None
        if source == "digits":
            return (*datasets.digits(), None)
        return (*datasets.GENERATORS[source](**kwargs, rng=rng), None)
    kind = _format(source)
    if not Path(source).is_file():
        raise file_missing(source)
    if kind == "csv":
        chosen = cfg.features or feature_names
        target = cfg.target if isinstance(cfg.target, str) and targets is None else None
        return read_csv(source, target, chosen, require_labels, cfg.delimiter, text_columns, targets), None, None
    if kind == "npz":
        X, y = _read_npz(source, cfg.x_key, cfg.y_key, require_labels)
    else:
        X = _read_npy_features(source) if kind == "npy" else _read_idx_images(source)
        y = None
        if labels:
            y = read_label_file(os.fspath(labels))
        elif require_labels:
            raise LabelsMissing(
                f"{source}: {kind} features need a labels file, a .npy or IDX file holding one label per "
                f"sample (data.labels in a config)"
            )
    if y is not None and len(y) != len(X):
        raise DataError(
            f"{source}: {len(X)} samples but {len(y)} labels" + (f" in {labels}" if kind in ("npy", "idx") else "")
        )
    return X, y, None


def file_missing(path, what="data file"):
    """The error for a data or labels file that does not exist; a relative path is placed in the current directory."""
    where = "" if Path(path).is_absolute() else f" (relative paths start from the current directory, {Path.cwd()})"
    return DataFileMissing(f"{what} not found: {path}{where}")


def missing_files(data_cfg):
    """A warning for each file the data config names that does not exist: the config is valid without it (a file
    may be made later, or elsewhere), but training needs it."""
    warnings = []
    for key in FILE_KEYS:
        path = getattr(data_cfg, key)
        if path is not None and not (key == "source" and path in BUILTINS) and not Path(path).is_file():
            warnings.append(f"data.{key}: {file_missing(path)}; the config is valid, but training needs the file")
    return warnings


def is_idx(path):
    """True for a name the IDX reader takes (.idx or *-ubyte, optionally .gz)."""
    return _kind(path) == "idx"


def _kind(path):
    """The file kind by name: 'csv', 'npz', 'npy', 'idx', or None."""
    name = Path(path).name.lower()
    bare = name[:-3] if name.endswith(".gz") else name
    if bare.endswith((".idx", "ubyte")):
        return "idx"
    return name[-3:] if name.endswith((".csv", ".npz", ".npy")) else None


def _format(source):
    """The file kind of a data source; an unsupported name is a DataError listing formats and built-ins."""
    if _kind(source):
        return _kind(source)
    raise DataError(
        f"data source {source!r} is not a built-in dataset ({', '.join(BUILTINS)}) or a supported data file ({FORMATS})"
    )


def _features_2d(X, source):
    """A numeric feature array as (N, D) (a view, so a memmap stays a memmap), checked to be non-empty and finite."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: features must be numbers, got dtype {X.dtype}")
    if X.ndim == 0 or len(X) == 0:
        raise DataError(f"{source}: holds no samples")
    X = X.reshape(len(X), -1)
    if X.dtype.kind == "f":
        for start, block in row_chunks(X):
            finite = np.isfinite(block)
            arrays.release_pages(X)
            if not finite.all():
                r, c = np.argwhere(~finite)[0]
                raise DataError(
                    f"{source}: sample {start + r} (0-based), feature {c} is {block[r, c]}; "
                    f"features must be finite numbers"
                )
    return X


def _unreadable(path, err, what=""):
    """The DataError for an UnreadableArray from `path` (`what`: e.g. 'labels file ')."""
    if err.pickled:
        problem = f"{err.problem}, which nncli never unpickles; save plain numbers"
        err = UnreadableArray(problem, err.member)
    return DataError(f"{what}{path}: {err}")


def _signature(path):
    """'npy', 'npz' or None: which NumPy file `path` starts like."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    return "npy" if head == arrays.NPY_MAGIC else "npz" if head[:2] == b"PK" else None


def _read_npz(path, x_key, y_key, require_labels):
    """Arrays x_key and y_key (None if absent and not required) from an .npz archive, never unpickling."""
    kind = _signature(path)
    if kind != "npz":
        what = "holds a single array, not" if kind == "npy" else "not a NumPy file: it is not"
        raise DataError(f"{path}: {what} an .npz archive of named arrays")
    try:
        with zipfile.ZipFile(path) as archive:
            keys = arrays.npz_names(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read {path} as an .npz archive: {err}") from None
    for key, option, needed in ((x_key, "x_key", True), (y_key, "y_key", require_labels)):
        if needed and key not in keys:
            raise DataError(
                f"{path}: no array {key!r} (data.{option}); the archive holds {', '.join(keys) or 'nothing'}"
            )
    try:
        found = arrays.load_npz(path, [x_key, y_key])
    except UnreadableArray as err:
        raise _unreadable(path, err) from None
    return _features_2d(found[x_key], path), found.get(y_key)


def _read_npy_features(path):
    """A .npy feature array, memory-mapped read-only and viewed as (N, D): no copy of the data is made."""
    if _signature(path) == "npz":
        raise DataError(f"{path}: is an .npz archive, not a single .npy array; name it .npz")
    try:
        X = arrays.open_npy(path)
    except UnreadableArray as err:
        raise _unreadable(path, err) from None
    return _features_2d(X, path)


def _read_idx(path, what=""):
    """The array stored in an IDX file (optionally gzipped), read by the bounded reader."""
    try:
        return arrays.load_idx(path)
    except UnreadableArray as err:
        raise _unreadable(path, err, what) from None


def _read_idx_images(path):
    """IDX images (N, rows, cols) as (N, rows*cols) float64, values as stored (pixels 0–255, like the same pixels
    in a .npy or CSV file, so a checkpoint predicts the same whatever format its input comes in)."""
    images = _read_idx(path)
    return _features_2d(images.reshape(len(images), -1).astype(np.float64), path)


def read_label_file(path):
    """Labels (N,) from a .npy or IDX file named by data.labels, read within the memory budget."""
    if not Path(path).is_file():
        raise file_missing(path, "labels file")
    if _kind(path) == "idx":
        return _read_idx(path, "labels file ")
    if _kind(path) != "npy":
        raise DataError(f"labels file {path}: must be .npy or IDX (.idx or *-ubyte, optionally .gz)")
    if _signature(path) == "npz":
        raise DataError(f"labels file {path}: is an .npz archive, not a single .npy array")
    try:
        return arrays.load_npy(path)
    except UnreadableArray as err:
        raise _unreadable(path, err, "labels file ") from None

"""Data files: which reader a source needs, and the readers (CSV in csvfile.py; NPZ, memory-mapped NPY, IDX here),
each checking what it reads and naming the file, row and column of a problem in a DataError.

  .csv   header row; label column `data.target` (default the last), features `data.features` (default the rest)
  .npz   arrays `data.x_key` (features) and `data.y_key` (labels), read without unpickling
  .npy   features, memory-mapped (never copied whole); labels from the file `data.labels` (.npy or IDX)
  IDX    MNIST format (.idx, *-ubyte, optionally .gz); images flattened to rows, values as stored (pixels 0–255;
         data.standardize, on by default, puts them on a common scale); labels from `data.labels`
"""

import gzip
import os
import zipfile
from pathlib import Path

import numpy as np

from nncli.data import builtin as datasets
from nncli.data.builtin import BUILTINS, data_file
from nncli.data.csvfile import read_csv
from nncli.errors import DataError, DataFileMissing, LabelsMissing

FORMATS = ".csv, .npz, .npy (labels from data.labels), IDX (.idx or *-ubyte, optionally .gz; labels from data.labels)"
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CHUNK_BYTES = 32 * 2**20  # rows read at a time when scanning a memory-mapped file
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


def read_source(source, cfg, labels, require_labels, feature_names, rng):
    """(X (N, D), raw labels or None, feature names or None) from a built-in or a file; X may be a memmap (.npy)."""
    if source in BUILTINS:
        kwargs = datasets.generator_kwargs(source, cfg)
        if source == "iris":
            return read_csv(data_file("iris.csv"), "species", None, True)
        if source == "digits":
            return (*datasets.digits(), None)
        return (*datasets.GENERATORS[source](**kwargs, rng=rng), None)
    kind = _format(source)
    if not Path(source).is_file():
        raise file_missing(source)
    if kind == "csv":
        return read_csv(source, cfg.target, cfg.features or feature_names, require_labels)
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
            bad = ~np.isfinite(block)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise DataError(
                    f"{source}: sample {start + r} (0-based), feature {c} is {block[r, c]}; "
                    f"features must be finite numbers"
                )
    return X


def _load_problem(path, err):
    """Why np.load refused `path`, in words that fit: NumPy blames pickles for any file it does not recognise."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        head = b""
    if head and not head.startswith((b"\x93NUMPY", b"PK")):
        return "not a NumPy file (it does not start with the .npy or .npz signature)"
    if any(word in str(err) for word in ("pickle", "Object arrays", "Python objects")):
        return "it holds Python objects (dtype=object), which nncli never unpickles; save plain numbers"
    return str(err)


def _read_npz(path, x_key, y_key, require_labels):
    """Arrays x_key and y_key (None if absent and not required) from an .npz archive, never unpickling."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {path} as an .npz archive: {_load_problem(path, err)}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an .npz archive of named arrays")
    with archive:
        keys = archive.files
        for key, option, needed in ((x_key, "x_key", True), (y_key, "y_key", require_labels)):
            if needed and key not in keys:
                raise DataError(
                    f"{path}: no array {key!r} (data.{option}); the archive holds {', '.join(keys) or 'nothing'}"
                )
        try:
            X = archive[x_key]
            y = archive[y_key] if y_key in keys else None
        except (ValueError, OSError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: cannot read its arrays: {_load_problem(path, err)}") from None
    return _features_2d(X, path), y


def _read_npy_features(path):
    """A .npy feature array, memory-mapped read-only and viewed as (N, D): no copy of the data is made."""
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read {path} as a .npy array: {_load_problem(path, err)}") from None
    if not isinstance(X, np.ndarray):
        raise DataError(f"{path}: is an .npz archive, not a single .npy array; name it .npz")
    return _features_2d(X, path)


def _read_idx(path):
    """The array stored in an IDX file (optionally gzipped): magic 0 0 <type> <ndim>, ndim big-endian uint32 sizes, data."""
    try:
        with (gzip.open if path.lower().endswith(".gz") else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file (its first bytes {raw[:4].hex()} are not 00 00 <type> <ndim>)")
    ndim, start = raw[3], 4 + 4 * raw[3]
    if len(raw) < start:
        raise DataError(f"{path}: IDX header is cut short")
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - start != expected:
        raise DataError(
            f"{path}: IDX header promises {'x'.join(map(str, shape))} values of {dtype.name} "
            f"({expected} bytes) but the file holds {len(raw) - start} bytes of data"
        )
    return np.frombuffer(raw, dtype, offset=start).reshape(shape)


def _read_idx_images(path):
    """IDX images (N, rows, cols) as (N, rows*cols) float64, values as stored (pixels 0–255, like the same pixels
    in a .npy or CSV file, so a checkpoint predicts the same whatever format its input comes in)."""
    images = _read_idx(path)
    return _features_2d(images.reshape(len(images), -1).astype(np.float64), path)


def read_label_file(path):
    """Labels (N,) from a .npy or IDX file named by data.labels."""
    if not Path(path).is_file():
        raise file_missing(path, "labels file")
    if _kind(path) == "idx":
        return _read_idx(path)
    if _kind(path) != "npy":
        raise DataError(f"labels file {path}: must be .npy or IDX (.idx or *-ubyte, optionally .gz)")
    try:
        y = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read labels file {path}: {_load_problem(path, err)}") from None
    if not isinstance(y, np.ndarray):
        raise DataError(f"labels file {path}: is an .npz archive, not a single .npy array")
    return y

"""Data: read a source, map its labels to class ids, split it stratified, standardize it on the training split.

The trainer calls `load_dataset(cfg.data, seed, dtype)`. Eval and predict read one file with `load_features`, then
apply the checkpoint's label mapping and statistics with `encode_labels` and `standardize`.

Sources: a built-in name (`nncli.datasets.BUILTINS`) or a file, by extension:
  .csv   header row; label column `data.target` (default the last), features `data.features` (default the rest)
  .npz   arrays `data.x_key` (features) and `data.y_key` (labels), read without unpickling
  .npy   features, memory-mapped (never copied whole); labels from the file `data.labels` (.npy or IDX)
  IDX    MNIST format (.idx, *-ubyte, optionally .gz); images flattened to rows, uint8 pixels scaled to [0, 1];
         labels from `data.labels`

Randomness: one `np.random.default_rng(seed)` first generates a built-in dataset, then draws the split. It is the
root of the seed tree, so it is independent of the trainer's `SeedSequence(seed).spawn` children.
"""

import csv
import gzip
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import datasets
from .datasets import BUILTINS, GENERATOR_OPTIONS, data_file
from .errors import DataError

FORMATS = ".csv, .npz, .npy (labels from data.labels), IDX (.idx or *-ubyte, optionally .gz; labels from data.labels)"
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CHUNK_BYTES = 32 * 2**20  # rows read at a time when scanning a memory-mapped file


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
        rows = self.X[self.index[idx]]
        if self.mean is not None:
            rows = (rows - self.mean) / self.std
        if out is None:
            return np.ascontiguousarray(rows, dtype=self.dtype)
        out[...] = rows
        return out

    def chunks(self, size=4096):
        """Yield (X, y) over the whole split in order, `size` rows at a time: evaluation in bounded memory."""
        for start in range(0, len(self), size):
            idx = np.arange(start, min(start + size, len(self)))
            yield self.batch(idx), self.y[idx]


@dataclass
class Dataset:
    """Train/val/test splits plus what eval and predict need to treat new data the same way.

    classes[i] is the original label of class id i (ints stay ints, strings stay strings). mean and std (D,) are the
    training split's per-feature statistics (None when standardization is off), with a constant feature's std set to 1.
    """

    train: Split
    val: Split | None
    test: Split | None
    classes: list
    feature_names: list[str] | None
    mean: np.ndarray | None
    std: np.ndarray | None
    source: str

    @property
    def num_features(self):
        return self.train.X.shape[1]

    @property
    def num_classes(self):
        return len(self.classes)


def load_dataset(data_cfg, seed: int, dtype=np.float32) -> Dataset:
    """Load `data_cfg.source`, split it (stratified, seeded) and standardize it; the same cfg and seed give the same arrays.

    val_source/test_source (with optional val_labels/test_labels for .npy/IDX) replace the fractional val/test
    splits. Splits of a .npy file stay memory-mapped (see `Split`); all others are in memory in `dtype`.
    """
    dtype = np.dtype(dtype)
    source = os.fspath(data_cfg.source)
    if source not in BUILTINS:
        stray = [key for key in GENERATOR_OPTIONS if getattr(data_cfg, key, None) is not None]
        if stray:
            raise DataError(f"data.{stray[0]} is a built-in generator option; data.source {source!r} is a file")
    rng = np.random.default_rng(seed)
    X, y_raw, names = _read(source, data_cfg, data_cfg.labels, True, None, rng)
    classes, y = class_ids(y_raw, source)
    explicit = {part: getattr(data_cfg, f"{part}_source", None) for part in ("val", "test")}
    val_fraction = 0.0 if explicit["val"] else data_cfg.val_fraction
    test_fraction = 0.0 if explicit["test"] else data_cfg.test_fraction
    train_idx, val_idx, test_idx = stratified_split(y, classes, val_fraction, test_fraction, rng, source)
    mean, std = _moments(X, train_idx) if data_cfg.standardize else (None, None)

    def split(X, y, rows):
        if isinstance(X, np.memmap):
            return Split(X, y[rows], rows, mean, std, dtype)
        return Split(_prepare(X[rows], mean, std, dtype), y[rows])

    parts = {"val": split(X, y, val_idx) if val_fraction > 0 else None,
             "test": split(X, y, test_idx) if test_fraction > 0 else None}
    for part, path in explicit.items():
        if path:
            labels = getattr(data_cfg, f"{part}_labels", None)
            Xp, yp_raw, _ = _read(os.fspath(path), data_cfg, labels, True, names, rng)
            if Xp.shape[1] != X.shape[1]:
                raise DataError(f"{path}: has {Xp.shape[1]} features, the training data {source} has {X.shape[1]}")
            parts[part] = split(Xp, encode_labels(yp_raw, classes, source=path), np.arange(len(Xp)))
    return Dataset(split(X, y, train_idx), parts["val"], parts["test"], classes, names, mean, std, source)


def load_features(path_or_source, data_cfg, require_labels: bool, *, labels=None, feature_names=None, seed=0):
    """Read one file (or built-in) for eval or predict: (X (N, D) float64, raw labels (N,) or None, feature names or None).

    For a CSV without the label column (and require_labels False) every column, or `feature_names` (the training
    columns, picked by name), is a feature. `labels` is the labels file for .npy/IDX features (default data.labels
    when the file is data.source). A built-in is generated with `seed`. The whole file is read into memory.
    """
    source = os.fspath(path_or_source)
    if labels is None and source == os.fspath(data_cfg.source):
        labels = data_cfg.labels
    X, y_raw, names = _read(source, data_cfg, labels, require_labels, feature_names, np.random.default_rng(seed))
    return np.asarray(X, dtype=np.float64), y_raw, names


def class_ids(y_raw, source):
    """Map labels to ids 0..C-1 in sorted label order: (classes list, y (N,) int64). Mixed ints and strings sort as strings."""
    labels = _label_array(y_raw, source)
    values, y = np.unique(labels, return_inverse=True)
    if len(values) < 2:
        raise DataError(f"{source}: the labels hold {len(values)} class ({', '.join(map(str, values.tolist()))}); "
                        f"classification needs at least two classes")
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
        raise DataError(f"{source or 'labels'}: label {shown} not among the training classes "
                        f"({', '.join(map(repr, list(classes)))})")
    return order[pos].astype(np.int64)


def standardize(X, mean, std):
    """(X - mean) / std in float64, with the training split's per-feature mean and std (D,)."""
    return (np.asarray(X, dtype=np.float64) - mean) / std


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
        raise DataError(f"{source}: class {classes[c]!r} has {counts[c]} sample(s), too few to split with "
                        f"val_fraction {val_fraction} and test_fraction {test_fraction}: each class needs at "
                        f"least {need} (one for training and one for each held-out split)")
    order = rng.permutation(len(y))
    by_class = order[np.argsort(y[order], kind="stable")]  # grouped by class, random within each class
    rank = np.arange(len(y)) - np.repeat(np.cumsum(counts) - counts, counts)
    c = y[by_class]
    part = np.zeros(len(y), np.int8)  # 0 train, 1 val, 2 test
    part[by_class[rank < n_val[c]]] = 1
    part[by_class[(rank >= n_val[c]) & (rank < n_val[c] + n_test[c])]] = 2
    return order[part[order] == 0], order[part[order] == 1], order[part[order] == 2]


def _prepare(X, mean, std, dtype):
    """Rows already in memory: standardized (when mean is given) and converted to a C-contiguous `dtype` array."""
    if mean is not None:
        X = standardize(X, mean, std)
    return np.ascontiguousarray(X, dtype=dtype)


def _row_chunks(X, rows=None):
    """Blocks of about CHUNK_BYTES: slices of X, or sorted pieces of `rows` (for locality in a memory-mapped file)."""
    step = max(1, CHUNK_BYTES // max(1, X.shape[1] * X.itemsize))
    if rows is None:
        for start in range(0, len(X), step):
            yield start, X[start:start + step]
    else:
        rows = np.sort(rows)
        for start in range(0, len(rows), step):
            yield start, X[rows[start:start + step]]


def _moments(X, rows):
    """Per-feature mean and std (D,) of X[rows], in chunks (Chan's parallel update); a constant feature gets std 1."""
    n, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    low, high = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
    for _, block in _row_chunks(X, rows):
        block = np.asarray(block, dtype=np.float64)
        k, block_mean = len(block), block.mean(axis=0)
        delta = block_mean - mean
        m2 += ((block - block_mean) ** 2).sum(axis=0) + delta**2 * n * k / (n + k)
        mean += delta * k / (n + k)
        n += k
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
    std = np.sqrt(m2 / n)
    std[low == high] = 1.0
    return mean, std


def _read(source, cfg, labels, require_labels, feature_names, rng):
    """(X (N, D), raw labels or None, feature names or None) from a built-in or a file; X may be a memmap (.npy)."""
    if source in BUILTINS:
        kwargs = datasets.generator_kwargs(source, cfg)
        if source == "iris":
            return _read_csv(data_file("iris.csv"), "species", None, True)
        if source == "digits":
            return (*datasets.digits(), None)
        return (*datasets.GENERATORS[source](**kwargs, rng=rng), None)
    kind = _format(source)
    if not Path(source).is_file():
        raise DataError(f"data file not found: {source}")
    if kind == "csv":
        return _read_csv(source, cfg.target, cfg.features or feature_names, require_labels)
    if kind == "npz":
        X, y = _read_npz(source, cfg.x_key, cfg.y_key, require_labels)
    else:
        X = _read_npy_features(source) if kind == "npy" else _read_idx_images(source)
        y = None
        if labels:
            y = _read_label_file(os.fspath(labels))
        elif require_labels:
            raise DataError(f"{source}: {kind} features need a labels file: set data.labels to a .npy or IDX file "
                            f"holding one label per sample")
    if y is not None and len(y) != len(X):
        raise DataError(f"{source}: {len(X)} samples but {len(y)} labels"
                        + (f" in {labels}" if kind in ("npy", "idx") else ""))
    return X, y, None


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
    raise DataError(f"data source {source!r} is not a built-in dataset ({', '.join(BUILTINS)}) "
                    f"or a supported data file ({FORMATS})")


def _label_array(y_raw, source):
    """Labels as a 1-D array of int64 or str: bools and whole floats become ints, bytes and mixed values strings."""
    y = np.asarray(y_raw)
    if y.ndim == 2 and y.shape[1] == 1 or y.ndim == 0:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must hold one value per sample, got an array of shape {y.shape}")
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


def _features_2d(X, source):
    """A numeric feature array as (N, D) (a view, so a memmap stays a memmap), checked to be non-empty and finite."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: features must be numbers, got dtype {X.dtype}")
    if X.ndim == 0 or len(X) == 0:
        raise DataError(f"{source}: holds no samples")
    X = X.reshape(len(X), -1)
    if X.dtype.kind == "f":
        for start, block in _row_chunks(X):
            bad = ~np.isfinite(block)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                raise DataError(f"{source}: sample {start + r} (0-based), feature {c} is {block[r, c]}; "
                                f"features must be finite numbers")
    return X


def _read_csv(path, target, features, require_labels):
    """Read a CSV with a header row: (X (N, D) float64, raw labels or None, feature names).

    The label column is `target` when given, else the last column unless it is one of `features`. Without
    require_labels a missing label column means every column (or every chosen feature) is a feature.
    Errors name the file, the line as numbered in the file, and the column.
    """
    header, rows, lines, line = None, [], [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, skipinitialspace=True)
            for record in reader:
                first, line = line + 1, reader.line_num
                if not record or record == [""]:
                    continue
                if header is None:
                    header = [name.strip() for name in record]
                elif len(record) != len(header):
                    raise DataError(f"{path}: line {first} has {len(record)} fields, the header has {len(header)}")
                else:
                    rows.append(record)
                    lines.append(first)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; a CSV data file must be UTF-8") from None
    except csv.Error as err:
        raise DataError(f"{path}: line {line + 1}: {err}") from None
    if header is None or not rows:
        raise DataError(f"{path}: no data rows (a CSV needs a header row and at least one sample)")
    if len(set(header)) != len(header):
        twice = sorted({name for name in header if header.count(name) > 1})
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, twice))} appear more than once in the header")

    def missing(name, what):
        return DataError(f"{path}: no {what} column {name!r}; the columns are {', '.join(header)}")

    chosen = list(features or ())
    for name in chosen:
        if name not in header:
            raise missing(name, "feature")
    label = target if target is not None else header[-1]
    if label not in header or (target is None and label in chosen):
        label = None
    if label is None and require_labels:
        if target is not None:
            raise missing(target, "target")
        raise DataError(f"{path}: the last column {header[-1]!r} is a feature; set data.target to the label column")
    if label in chosen:
        raise DataError(f"{path}: column {label!r} is both data.target and one of data.features")
    names = list(features) if features else [n for n in header if n != label]
    if not names:
        raise DataError(f"{path}: no feature columns (the columns are {', '.join(header)})")
    table = np.char.strip(np.array(rows, dtype=str))
    columns = [_numeric_column(table[:, header.index(name)], path, name, lines) for name in names]
    y = None if label is None else _label_column(table[:, header.index(label)], path, label, lines)
    return np.column_stack(columns), y, names


def _numeric_column(text, path, name, lines):
    """One CSV feature column as float64; a non-numeric or non-finite value is a DataError naming line and column."""
    try:
        values = text.astype(np.float64)
    except ValueError:
        i = next(i for i, s in enumerate(text) if not _is_number(s))  # only on the error path
        what = "is empty" if text[i] == "" else f"{str(text[i])!r} is not a number"
        raise DataError(f"{path}: line {lines[i]}, column {name!r}: {what}; features must be numbers") from None
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = bad[0]
        raise DataError(f"{path}: line {lines[i]}, column {name!r}: {text[i]} is not a finite number")
    return values


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_column(text, path, name, lines):
    """One CSV label column: int64 when every value is an integer, else the strings as written."""
    empty = np.flatnonzero(text == "")
    if len(empty):
        raise DataError(f"{path}: line {lines[empty[0]]}, column {name!r}: the label is empty")
    try:
        return text.astype(np.int64)
    except (ValueError, OverflowError):
        return text


def _read_npz(path, x_key, y_key, require_labels):
    """Arrays x_key and y_key (None if absent and not required) from an .npz archive, never unpickling."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {path} as an .npz archive: {err}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an .npz archive of named arrays")
    with archive:
        keys = archive.files
        for key, option, needed in ((x_key, "x_key", True), (y_key, "y_key", require_labels)):
            if needed and key not in keys:
                raise DataError(f"{path}: no array {key!r} (data.{option}); the archive holds {', '.join(keys) or 'nothing'}")
        try:
            X = archive[x_key]
            y = archive[y_key] if y_key in keys else None
        except (ValueError, OSError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: cannot read its arrays: {err}") from None
    return _features_2d(X, path), y


def _read_npy_features(path):
    """A .npy feature array, memory-mapped read-only and viewed as (N, D): no copy of the data is made."""
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read {path} as a .npy array: {err}") from None
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
        raise DataError(f"{path}: IDX header promises {'x'.join(map(str, shape))} values of {dtype.name} "
                        f"({expected} bytes) but the file holds {len(raw) - start} bytes of data")
    return np.frombuffer(raw, dtype, offset=start).reshape(shape)


def _read_idx_images(path):
    """IDX images (N, rows, cols) as (N, rows*cols) float64; uint8 pixels are scaled to [0, 1]."""
    images = _read_idx(path)
    X = images.reshape(len(images), -1).astype(np.float64)
    if images.dtype == np.uint8:
        X /= 255.0
    return _features_2d(X, path)


def _read_label_file(path):
    """Labels (N,) from a .npy or IDX file named by data.labels."""
    if not Path(path).is_file():
        raise DataError(f"labels file not found: {path}")
    if _kind(path) == "idx":
        return _read_idx(path)
    if _kind(path) != "npy":
        raise DataError(f"labels file {path}: must be .npy or IDX (.idx or *-ubyte, optionally .gz)")
    try:
        y = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read labels file {path}: {err}") from None
    if not isinstance(y, np.ndarray):
        raise DataError(f"labels file {path}: is an .npz archive, not a single .npy array")
    return y

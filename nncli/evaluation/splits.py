"""Which rows a checkpoint is evaluated on, so a report is never labelled with a split it is not.

Without a file, the split is rebuilt from the checkpoint's config (the same data, seed and fractions). A file given
alone is evaluated whole ("file"). A file given with a split is evaluated on that split only when it is the data the
checkpoint was trained on: its SHA-256 must equal the one the trainer recorded (meta["data_sha256"], written by
`nncli.data.fingerprint.data_fingerprint`); the split is then rebuilt from it exactly as training drew it. A
checkpoint without the record (written by an older nncli) or a file with other contents is refused with what to do.
"""

import os

import numpy as np

from nncli.data.csvfile import header_names
from nncli.data.dataset import Split, encode_labels, load_dataset, load_features, standardize
from nncli.data.fingerprint import file_sha256
from nncli.data.targets import target_values
from nncli.errors import CheckpointError, DataError, DataFileMissing, Hint, LabelsMissing, show_value
from nncli.nn.losses import LOSSES

SPLITS = ("train", "val", "test")
OTHER_DATA = (Hint.WHOLE_FILE, Hint.OWN_SPLIT)  # what to do when a file cannot be shown to hold the split


def checkpoint_data(ckpt, config, data_path=None, split=None, labels=None):
    """The Split a checkpoint is evaluated on and its name: the split rebuilt from its config (default test when
    there is one, else val), the whole of a labelled file given by the user ("file"), or that file's `split` when
    its content hash shows it is the training data (else DataError naming the file and what to do)."""
    if data_path is not None and split is None:
        return whole_file(ckpt, config, data_path, labels), "file"
    if data_path is None and labels is not None:
        raise DataError(
            f"labels {labels} goes with data_path (.npy or IDX features); without data_path the "
            f"checkpoint's own data split is evaluated"
        )
    data_cfg = config.data
    try:
        if data_path is None:
            check_unchanged(ckpt, data_cfg)
        else:
            data_cfg, role, labels = same_data(ckpt, data_cfg, data_path, labels, split)
            if role != "source":  # a split read from a file of its own (data.val_source, data.test_source): all of it
                return whole_file(ckpt, config, data_path, labels), split
        data = load_dataset(data_cfg, config.seed, np.dtype(config.train.dtype), LOSSES[config.loss].task)
    except DataFileMissing as err:
        if data_path is not None:
            raise
        raise DataFileMissing(
            f"{err}; the checkpoint's config names this file", hints=(Hint.WHERE_TRAINED, Hint.DATA_FILE)
        ) from None
    return _pick(data, split)


def _pick(data, split):
    """The named split of a Dataset (default test, else val, else train); DataError if the data has none."""
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


def whole_file(ckpt, config, data_path, labels=None):
    """Every row of a labelled file, mapped to the checkpoint's classes (or its targets, regression ones
    standardized with its target statistics) and its features standardized with its statistics."""
    csv_file = str(data_path).lower().endswith(".csv")
    targets = None
    if ckpt.task != "classification" and csv_file:
        targets = list(ckpt.classes)
        if os.path.isfile(data_path):  # else the reader's own message for a missing file
            check_target_columns(data_path, targets, config.data.delimiter)
    X, y_raw, _ = load_features(
        data_path,
        config.data,
        require_labels=True,
        labels=labels,
        feature_names=ckpt.meta.get("feature_names"),
        encoding=ckpt.encoding,
        targets=targets,
    )
    if ckpt.task == "classification":
        y = encode_labels(y_raw, ckpt.classes, source=str(data_path))
    else:
        y = file_targets(ckpt, y_raw, data_path, config.train.dtype)
    if X.shape[1] != ckpt.layer_sizes[0]:
        raise DataError(f"{data_path}: has {X.shape[1]} features, the checkpoint expects {ckpt.layer_sizes[0]}")
    if isinstance(X, np.memmap):  # lazy: each chunk is read, standardized and converted when it is scored
        rows = np.arange(len(X), dtype=np.int32 if len(X) < 2**31 else np.intp)  # 4 bytes a row where that will do
        return Split(X, y, rows, ckpt.norm_mean, ckpt.norm_std, np.dtype(config.train.dtype))
    if ckpt.norm_mean is not None:
        X = standardize(X, ckpt.norm_mean, ckpt.norm_std)
    return Split(np.ascontiguousarray(X, dtype=config.train.dtype), y)


def check_target_columns(path, targets, delimiter=None):
    """Refuse a CSV whose header lacks any of the checkpoint's target columns, naming every one missing."""
    header, _ = header_names(path, delimiter)
    missing = [name for name in targets if name not in header]
    if missing:
        raise DataError(
            f"{path}: has no target column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; the "
            f"checkpoint predicts {', '.join(map(repr, targets))} and eval compares them with the file's; the "
            f"columns are {', '.join(header)}"
        )


def file_targets(ckpt, y_raw, path, dtype):
    """A file's regression or attribute targets (N, K) as the Tally expects them: regression ones standardized
    with the checkpoint's target statistics, in the training dtype."""
    y = target_values(y_raw, ckpt.task, str(path))
    if y.shape[1] != len(ckpt.classes):
        raise DataError(
            f"{path}: has {y.shape[1]} target{'s' if y.shape[1] != 1 else ''}, the checkpoint predicts "
            f"{len(ckpt.classes)} ({', '.join(map(str, ckpt.classes))})"
        )
    if ckpt.target_mean is not None:
        y = (y - ckpt.target_mean) / ckpt.target_std
    return np.ascontiguousarray(y, dtype=dtype)


def recorded_hashes(ckpt):
    """The checkpoint's {data key: SHA-256} of its training files, or None when it records none (older nncli)."""
    recorded = ckpt.meta.get("data_sha256")
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise CheckpointError(f"meta.data_sha256 must map data keys to SHA-256 hex strings, got {show_value(recorded)}")
    return recorded


def check_unchanged(ckpt, data_cfg):
    """Refuse to rebuild a split from files whose contents differ from those the checkpoint was trained on."""
    for key, digest in (recorded_hashes(ckpt) or {}).items():
        path = getattr(data_cfg, key, None)
        what = "labels file" if key.endswith("labels") else "data file"
        if path is not None and file_sha256(os.fspath(path), what) != digest:
            raise DataError(
                f"{path} (data.{key}) has changed since the checkpoint was trained: its SHA-256 differs from the "
                f"one recorded then, so its splits are not the ones trained on",
                hints=(Hint.DATA_FILE,),
            )


def same_data(ckpt, data_cfg, data_path, labels, split):
    """(data config reading `data_path` in place of the trained file, the data key it stands for, its labels file),
    after checking that `data_path` (and its labels file) has the content recorded at training; else DataError."""
    role = f"{split}_source" if split != "train" and getattr(data_cfg, f"{split}_source", None) else "source"
    labels_key = "labels" if role == "source" else f"{split}_labels"
    trained = getattr(data_cfg, role)
    if labels is None and os.path.abspath(data_path) == os.path.abspath(trained):
        labels = getattr(data_cfg, labels_key, None)
    recorded = recorded_hashes(ckpt)
    if recorded is None:
        raise DataError(
            f"the checkpoint records no content hash of its training data (it was written by an older nncli), so "
            f"whether {data_path} is that data, and which of its rows are the {split} split, cannot be checked",
            hints=OTHER_DATA,
        )
    if role not in recorded:
        raise DataError(
            f"the checkpoint was trained on the built-in dataset {os.fspath(trained)!r}, not a file: {data_path} "
            f"holds no {split} split of it",
            hints=OTHER_DATA,
        )
    if file_sha256(data_path) != recorded[role]:
        raise DataError(
            f"{data_path}: is not the data the checkpoint was trained on (data.{role} {os.fspath(trained)}): its "
            f"SHA-256 differs from the one recorded at training, so it holds no {split} split of that training",
            hints=OTHER_DATA,
        )
    if labels_key in recorded:
        if labels is None:
            raise LabelsMissing(f"{data_path}: needs its labels file (data.{labels_key})", hints=(Hint.LABELS_FILE,))
        if file_sha256(labels, "labels file") != recorded[labels_key]:
            raise DataError(
                f"labels file {labels}: is not the one the checkpoint was trained with (data.{labels_key}): its "
                f"SHA-256 differs from the one recorded at training",
                hints=OTHER_DATA,
            )
    explicit = {part: getattr(data_cfg, f"{part}_source", None) for part in ("val", "test")}
    rebuilt = data_cfg.model_copy(
        update={
            "source": os.path.abspath(data_path),  # never a built-in's name
            "labels": labels,
            **{f"{part}_{kind}": None for part in explicit for kind in ("source", "labels")},
            **{
                f"{part}_fraction": 0.0 if explicit[part] else getattr(data_cfg, f"{part}_fraction")
                for part in explicit
            },
        }
    )
    return rebuilt, role, labels

"""Checkpoints: a trained network's parameters, config, class labels (or target names) and training state in one .npz.

Format 3 (loads with `np.load(path, allow_pickle=False)`; nothing in it is ever unpickled):
  W1, b1, …, WL, bL    (fan_in, fan_out) and (fan_out,), float32 or float64
  meta                 0-d unicode array holding one JSON object: format_version, nncli_version, config,
                       task (classification, regression or attributes: what the loss is for), classes (the
                       outputs' names: class id i is classes[i], or target/attribute i), layer_sizes [D, h1, …, C],
                       epoch, metrics,
                       and optionally state (free-form trainer state for exact resume) and encoding (how a CSV's
                       columns become the inputs: kinds, categories, fill values; nncli.data.encoding)
  norm_mean, norm_std  optional, (D,) each, both or neither: the standardization of the inputs
  target_mean, target_std  optional, (C,) each, both or neither: the standardization of regression targets
  opt_<name>           optional optimizer state, (P,) with P the total number of parameters

Format 2 is format 3 without task and target statistics: every format-2 checkpoint is a classifier.
Format 1 is format 2 but for networks trained on IDX images, whose pixels nncli then read as value/255 (format 2
reads every file's values as stored): loading one rescales norm_mean and norm_std by 255, or W1 by 1/255 without
standardization, so it takes raw pixels and predicts exactly as before.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nncli import __version__
from nncli.data.arrays import UnreadableArray, load_npz
from nncli.data.encoding import Encoding
from nncli.data.encoding_meta import encoding_from_meta
from nncli.data.files import is_idx
from nncli.data.fingerprint import file_sha256
from nncli.errors import CheckpointError, DataError, show_value
from nncli.training.atomic import atomic_save_npz, jsonable

FORMAT_VERSION = 3
TASKS = ("classification", "regression", "attributes")
META_TYPES = {"nncli_version": str, "config": dict, "classes": list, "layer_sizes": list, "epoch": int, "metrics": dict}
FLOAT_TYPES = (np.float32, np.float64)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NPY_MAGIC = b"\x93NUMPY"


@dataclass
class Checkpoint:
    """A loaded checkpoint: `params` W1, b1, W2, b2, … in layer order; `optimizer_state` without the 'opt_' prefix."""

    params: dict[str, np.ndarray]
    meta: dict
    norm_mean: np.ndarray | None = None
    norm_std: np.ndarray | None = None
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    encoding: Encoding | None = None
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None

    @property
    def task(self):
        """What the network's outputs are: classification (formats 1 and 2 are), regression or attributes."""
        return self.meta.get("task", "classification")

    @property
    def layer_sizes(self):
        """[D, h1, …, C]: input dimension, hidden widths, number of classes."""
        return list(self.meta["layer_sizes"])

    @property
    def classes(self):
        """The original class labels; class id i is classes[i]."""
        return list(self.meta["classes"])

    @property
    def config(self):
        """The resolved config the network was trained with, as a dict."""
        return self.meta["config"]

    @property
    def epoch(self):
        """Number of epochs trained when this checkpoint was written."""
        return self.meta["epoch"]

    @property
    def position(self):
        """Where in training the weights are, for people: 'epoch 2', or 'epoch 2 + 5 steps of epoch 3' for the
        checkpoint.npz a stop inside an epoch writes (resume finishes that epoch)."""
        state = self.meta.get("state")
        steps = state.get("step", 0) if isinstance(state, dict) else 0
        if not steps:
            return f"epoch {self.epoch}"
        return f"epoch {self.epoch} + {steps} step{'s' if steps != 1 else ''} of epoch {self.epoch + 1}"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_meta(array):
    """The meta dict stored in the 0-d string array `array`, checked key by key."""
    if array.ndim != 0 or array.dtype.kind != "U":
        raise CheckpointError(
            f"array 'meta' must be a 0-d unicode string holding JSON, got dtype {array.dtype} with shape {array.shape}"
        )
    try:
        meta = json.loads(str(array[()]))
    except (ValueError, RecursionError, MemoryError) as e:  # ValueError: also a number of more than 4300 digits
        raise CheckpointError(f"'meta' is not valid JSON ({str(e)[:200]})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"'meta' must hold a JSON object, got a {type(meta).__name__}")

    if "format_version" not in meta:
        raise CheckpointError("meta is missing 'format_version'")
    version = meta["format_version"]
    if not _is_int(version) or version < 1:
        raise CheckpointError(
            f"meta.format_version must be a positive integer "
            f"(this nncli reads formats 1 to {FORMAT_VERSION}), got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(f"written by a newer nncli (format {version}, this is {FORMAT_VERSION}); upgrade nncli")

    missing = [key for key in META_TYPES if key not in meta]
    if missing:
        raise CheckpointError(f"meta is missing {', '.join(map(repr, missing))}")
    for key, kind in META_TYPES.items():
        if not isinstance(meta[key], kind) or (kind is int and not _is_int(meta[key])):
            raise CheckpointError(f"meta.{key} must be of type {kind.__name__}, got {show_value(meta[key])}")
    if meta.get("task", "classification") not in TASKS:
        raise CheckpointError(f"meta.task must be one of {', '.join(TASKS)}, got {show_value(meta['task'])}")
    if "class_weights" in meta:
        _check_class_weights(meta["class_weights"], meta.get("task", "classification"), len(meta["classes"]))
    if "state" in meta and not isinstance(meta["state"], dict):
        raise CheckpointError(f"meta.state must be a dict when present, got {show_value(meta['state'])}")

    sizes, classes = meta["layer_sizes"], meta["classes"]
    if len(sizes) < 2 or not all(_is_int(n) and n >= 1 for n in sizes):
        raise CheckpointError(
            f"meta.layer_sizes must list at least two positive integers [D, …, C], got {show_value(sizes)}"
        )
    if meta["epoch"] < 0:
        raise CheckpointError(f"meta.epoch must be >= 0, got {meta['epoch']}")
    bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, (str, int, float))]
    if bad:
        raise CheckpointError(f"meta.classes must hold strings or numbers, got {bad[0]!r}")
    if len(classes) != sizes[-1]:
        raise CheckpointError(f"meta.classes has {len(classes)} labels but layer_sizes ends in {sizes[-1]} classes")
    if len(set(classes)) != len(classes):
        raise CheckpointError(f"meta.classes has duplicate labels: {show_value(classes)}")
    return meta


def _check_class_weights(weights, task, outputs):
    """meta.class_weights: a finite positive weight per class (C,), or per attribute [negatives, positives]."""
    shape = (outputs, 2) if task == "attributes" else (outputs,)
    try:
        w = np.asarray(weights, np.float64)
    except (TypeError, ValueError):
        w = None
    if w is None or w.shape != shape or not (np.isfinite(w) & (w > 0)).all():
        raise CheckpointError(
            f"meta.class_weights must hold finite weights > 0 of shape {shape}, got {show_value(weights)}"
        )


def _check_float(name, array, shape, why, finite=True):
    if array.dtype.type not in FLOAT_TYPES:
        raise CheckpointError(f"array {name!r} must be float32 or float64, got {array.dtype}")
    if array.shape != shape:
        raise CheckpointError(f"array {name!r} has shape {array.shape}, {why} requires {shape}")
    if finite and not np.isfinite(array).all():  # the trainer never saves such weights: damaged or hand-made
        raise CheckpointError(
            f"array {name!r} holds {np.count_nonzero(~np.isfinite(array))} NaN or infinite "
            f"value(s); its predictions would be meaningless"
        )


def _check_norm_std(std, name="norm_std"):
    """Values are divided by a std: every one must be positive (the trainer stores 1 for a constant column)."""
    if std is not None and not (std > 0).all():
        bad = np.flatnonzero(~(std > 0))
        raise CheckpointError(
            f"array {name!r} holds {len(bad)} value(s) that are not positive "
            f"({'feature' if name == 'norm_std' else 'target'} {bad[0]}: {std[bad[0]]}); "
            f"nothing can be divided by them: the file is damaged or hand-made"
        )


def _parse(arrays):
    """Check the arrays of a checkpoint against format 1 and return it as a Checkpoint."""
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise CheckpointError(f"member {name!r} is not a .npy array")
    if "meta" not in arrays:
        raise CheckpointError("has no 'meta' array (not an nncli checkpoint?)")
    meta = _parse_meta(arrays["meta"])

    sizes = meta["layer_sizes"]
    layers = len(sizes) - 1
    shapes = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        shapes[f"W{i}"], shapes[f"b{i}"] = (fan_in, fan_out), (fan_out,)
    num_params = sum(int(np.prod(shape)) for shape in shapes.values())
    shapes["norm_mean"] = shapes["norm_std"] = (sizes[0],)
    shapes["target_mean"] = shapes["target_std"] = (sizes[-1],)

    for name in arrays:
        if name != "meta" and name not in shapes and not (name.startswith("opt_") and len(name) > 4):
            raise CheckpointError(
                f"unknown array {name!r} (layer_sizes {sizes} has {layers} layers: "
                f"W1..W{layers}, b1..b{layers}; optional norm_mean, norm_std, target_mean, target_std, opt_<name>)"
            )
    params = {}
    for name in (f"{p}{i}" for i in range(1, layers + 1) for p in "Wb"):
        if name not in arrays:
            raise CheckpointError(f"missing array {name!r} (layer_sizes {sizes} has {layers} layers)")
        _check_float(name, arrays[name], shapes[name], f"layer_sizes {sizes}")
        params[name] = arrays[name]

    for mean, std, what in (("norm_mean", "norm_std", "input dimension"), ("target_mean", "target_std", "outputs")):
        if (mean in arrays) != (std in arrays):
            raise CheckpointError(f"has one of {mean}, {std} but not the other; both or neither are allowed")
        for name in (mean, std):
            if name in arrays:
                _check_float(name, arrays[name], shapes[name], f"{what} {shapes[name][0]}")
        _check_norm_std(arrays.get(std), std)
    if "target_mean" in arrays and meta.get("task") != "regression":
        raise CheckpointError("holds target_mean and target_std, which only a regression checkpoint (meta.task) has")

    optimizer_state = {}
    for name in arrays:
        if name.startswith("opt_"):
            # optimizer state may legitimately overflow (RMSProp's cache of dw²) while the weights stay finite
            _check_float(name, arrays[name], (num_params,), f"one value per parameter ({num_params})", finite=False)
            optimizer_state[name[4:]] = arrays[name]
    norm_mean, norm_std = arrays.get("norm_mean"), arrays.get("norm_std")
    if meta["format_version"] == 1 and is_idx((meta["config"].get("data") or {}).get("source", "")):
        # format 1 read IDX pixels as value/255; format 2 reads them as stored: the same model, expressed for raw pixels
        if norm_mean is not None:
            norm_mean, norm_std = norm_mean * 255, norm_std * 255
        else:
            params["W1"] = params["W1"] / 255
    encoding = encoding_from_meta(meta["encoding"], sizes[0]) if "encoding" in meta else None
    targets = arrays.get("target_mean"), arrays.get("target_std")
    return Checkpoint(params, meta, norm_mean, norm_std, optimizer_state, encoding, *targets)


def _read_arrays(path):
    """Every array in the .npz at `path`, read eagerly, pickles refused; else CheckpointError (the bare problem)."""
    if not path.exists():
        raise CheckpointError("no such file")
    if path.is_dir():
        raise CheckpointError("is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except OSError as e:
        raise CheckpointError(f"cannot be read ({e.strerror})") from None
    if not head:
        raise CheckpointError("is empty")
    if head == NPY_MAGIC:
        raise CheckpointError("is a single .npy array, not an .npz checkpoint")
    if head[:4] not in ZIP_MAGIC:
        raise CheckpointError("is not an .npz checkpoint (not a zip archive)")

    try:
        return load_npz(path)  # bounded: every declared size checked before anything is allocated or decompressed
    except UnreadableArray as e:
        if e.pickled:
            raise CheckpointError(
                f"array {e.member!r} holds a pickled object array; refusing to load it (pickles can run code)"
            ) from None
        raise CheckpointError(str(e)) from None


def load_checkpoint(path):
    """Load and check a checkpoint; any problem is a CheckpointError naming the file. Never unpickles."""
    path = Path(path)
    try:
        return _parse(_read_arrays(path))
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None


def save_checkpoint(path, params, meta, norm_mean=None, norm_std=None, optimizer_state=None, targets=(None, None)):
    """Write a checkpoint atomically; `meta` gets format_version and nncli_version when absent.

    params: W1, b1, … (see the module docstring); optimizer_state: name → (P,) array, stored as opt_<name>;
    targets: (target_mean, target_std) of a regression run's standardized targets, or Nones.
    Non-finite metric values are stored as null. Raises ValueError, writing nothing, if the result would
    not load: that is a bug in the caller, not a user error.
    """
    meta = jsonable({"format_version": FORMAT_VERSION, "nncli_version": __version__, **meta})
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"checkpoint {path}: meta is not JSON-serializable ({e})") from e
    arrays = {name: np.asarray(value) for name, value in params.items()}
    arrays["meta"] = np.array(text)
    if norm_mean is not None:
        arrays["norm_mean"] = np.asarray(norm_mean)
    if norm_std is not None:
        arrays["norm_std"] = np.asarray(norm_std)
    for name, value in zip(("target_mean", "target_std"), targets):
        if value is not None:
            arrays[name] = np.asarray(value)
    for name, value in (optimizer_state or {}).items():
        arrays[f"opt_{name}"] = np.asarray(value)
    try:
        _parse(arrays)
    except CheckpointError as e:
        raise ValueError(f"refusing to write checkpoint {path}, it would not load: {e}") from e
    atomic_save_npz(path, arrays)


def sha256_of(path):
    """Hex SHA-256 of the checkpoint at `path` (data.fingerprint's chunked hash); CheckpointError if unreadable."""
    try:
        return file_sha256(path, "checkpoint")
    except DataError as e:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({e})") from None

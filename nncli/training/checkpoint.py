"""Checkpoints: a trained network's parameters, config, class labels (or target names) and training state in one .npz.

Format 4 (loads with `np.load(path, allow_pickle=False)`; nothing in it is ever unpickled):
  W1, b1, …, WL, bL    (fan_in, fan_out) and (fan_out,), float32 or float64
  gamma_i, beta_i      (h_i,) per hidden layer when meta.config.model.norm is batchnorm or layernorm
  running_mean_i, running_var_i  (h_i,) per hidden layer with batchnorm: the averages evaluation normalizes with
  meta                 0-d unicode array holding one JSON object (nncli.training.checkpoint_meta): format_version,
                       nncli_version, config, task (classification, regression or attributes: what the loss is
                       for), classes (the outputs' names: class id i is classes[i], or target/attribute i),
                       layer_sizes [D, h1, …, C], epoch, metrics,
                       and optionally state (free-form trainer state for exact resume) and encoding (how a CSV's
                       columns become the inputs: kinds, categories, fill values; nncli.data.encoding)
  norm_mean, norm_std  optional, (D,) each, both or neither: the standardization of the inputs
  target_mean, target_std  optional, (C,) each, both or neither: the standardization of regression targets
  opt_<name>           optional optimizer state, (P,) with P the total number of parameters (gamma and beta included)

Format 3 is format 4 without normalization layers: it reads as model.norm none, as its config says by omission.
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
from nncli.errors import CheckpointError, DataError
from nncli.training.atomic import atomic_save_npz, jsonable
from nncli.training.checkpoint_meta import FORMAT_VERSION, norm_of, parse_meta

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
    running: dict[str, np.ndarray] = field(default_factory=dict)

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


def _check_statistics(arrays, shapes, meta):
    """The standardization of the inputs (norm_mean, norm_std) and of regression targets: pairs, positive stds."""
    for mean, std, what in (("norm_mean", "norm_std", "input dimension"), ("target_mean", "target_std", "outputs")):
        if (mean in arrays) != (std in arrays):
            raise CheckpointError(f"has one of {mean}, {std} but not the other; both or neither are allowed")
        for name in (mean, std):
            if name in arrays:
                _check_float(name, arrays[name], shapes[name], f"{what} {shapes[name][0]}")
        _check_norm_std(arrays.get(std), std)
    if "target_mean" in arrays and meta.get("task") != "regression":
        raise CheckpointError("holds target_mean and target_std, which only a regression checkpoint (meta.task) has")


def _layer_shapes(sizes, norm):
    """The parameter arrays of a network of `sizes` with `norm` (W_i, b_i, then gamma_i, beta_i per hidden layer),
    and the running averages a batch norm keeps (running_mean_i, running_var_i), each name → shape."""
    params, running = {}, {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"], params[f"b{i}"] = (fan_in, fan_out), (fan_out,)
    for i, width in enumerate(sizes[1:-1], start=1):
        if norm != "none":
            params[f"gamma{i}"] = params[f"beta{i}"] = (width,)
        if norm == "batchnorm":
            running[f"running_mean{i}"] = running[f"running_var{i}"] = (width,)
    return params, running


def _layout(sizes, norm):
    """What a user reads when an array is missing or unknown: the arrays a checkpoint of this network holds."""
    layers, hidden = len(sizes) - 1, len(sizes) - 2
    names = [f"W1..W{layers}", f"b1..b{layers}"]
    if norm != "none" and hidden:
        names += [f"gamma1..gamma{hidden}", f"beta1..beta{hidden}"]
    if norm == "batchnorm" and hidden:
        names += [f"running_mean1..running_mean{hidden}", f"running_var1..running_var{hidden}"]
    of = f"layer_sizes {sizes}" + (f" with model.norm {norm}" if norm != "none" else "")
    return of, f"{of} has {layers} layers: {', '.join(names)}"


def _required(arrays, shapes, layout, finite=True):
    """The arrays named in `shapes`, each present, float and of its shape; `layout` is `_layout`'s pair."""
    found = {}
    for name, shape in shapes.items():
        if name not in arrays:
            raise CheckpointError(f"missing array {name!r} ({layout[1]})")
        _check_float(name, arrays[name], shape, layout[0], finite)
        found[name] = arrays[name]
    return found


def _parse(arrays):
    """Check the arrays of a checkpoint against its format (1 to 4) and return it as a Checkpoint."""
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise CheckpointError(f"member {name!r} is not a .npy array")
    if "meta" not in arrays:
        raise CheckpointError("has no 'meta' array (not an nncli checkpoint?)")
    meta = parse_meta(arrays["meta"])

    sizes, norm = meta["layer_sizes"], norm_of(meta)
    param_shapes, running_shapes = _layer_shapes(sizes, norm)
    num_params = sum(int(np.prod(shape)) for shape in param_shapes.values())
    statistics = {"norm_mean": (sizes[0],), "norm_std": (sizes[0],), "target_mean": (sizes[-1],)}
    statistics["target_std"] = (sizes[-1],)
    layout = _layout(sizes, norm)
    known = {**param_shapes, **running_shapes, **statistics}
    for name in arrays:
        if name != "meta" and name not in known and not (name.startswith("opt_") and len(name) > 4):
            raise CheckpointError(
                f"unknown array {name!r} ({layout[1]}; optional norm_mean, norm_std, target_mean, target_std, opt_<name>)"
            )
    params = _required(arrays, param_shapes, layout)
    running = _required(arrays, running_shapes, layout)
    negative = [name for name in running if name.startswith("running_var") and (running[name] < 0).any()]
    if negative:
        raise CheckpointError(f"array {negative[0]!r} holds negative variances: the file is damaged or hand-made")
    _check_statistics(arrays, statistics, meta)

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
    return Checkpoint(params, meta, norm_mean, norm_std, optimizer_state, encoding, *targets, running)


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


def save_checkpoint(
    path, params, meta, norm_mean=None, norm_std=None, optimizer_state=None, targets=(None, None), running=None
):
    """Write a checkpoint atomically; `meta` gets format_version and nncli_version when absent.

    params: W1, b1, …, gamma1, beta1, … (see the module docstring); optimizer_state: name → (P,) array, stored as
    opt_<name>; targets: (target_mean, target_std) of a regression run's standardized targets, or Nones;
    running: a batch norm's running_mean_i and running_var_i.
    Non-finite metric values are stored as null. Raises ValueError, writing nothing, if the result would
    not load: that is a bug in the caller, not a user error.
    """
    meta = jsonable({"format_version": FORMAT_VERSION, "nncli_version": __version__, **meta})
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise ValueError(f"checkpoint {path}: meta is not JSON-serializable ({e})") from e
    arrays = {name: np.asarray(value) for name, value in {**params, **(running or {})}.items()}
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

"""The meta array of a checkpoint (see nncli.training.checkpoint for the format): read from its JSON and checked key
by key, so a damaged or hand-made file is refused naming the key, never half-loaded."""

import json

import numpy as np

from nncli.errors import CheckpointError, show_value
from nncli.nn.normalization import NORMS

FORMAT_VERSION = 4
TASKS = ("classification", "regression", "attributes")
META_TYPES = {"nncli_version": str, "config": dict, "classes": list, "layer_sizes": list, "epoch": int, "metrics": dict}


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_meta(array):
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
    if not is_int(version) or version < 1:
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
        if not isinstance(meta[key], kind) or (kind is int and not is_int(meta[key])):
            raise CheckpointError(f"meta.{key} must be of type {kind.__name__}, got {show_value(meta[key])}")
    if meta.get("task", "classification") not in TASKS:
        raise CheckpointError(f"meta.task must be one of {', '.join(TASKS)}, got {show_value(meta['task'])}")
    if "class_weights" in meta:
        _check_class_weights(meta["class_weights"], meta.get("task", "classification"), len(meta["classes"]))
    if "state" in meta and not isinstance(meta["state"], dict):
        raise CheckpointError(f"meta.state must be a dict when present, got {show_value(meta['state'])}")

    sizes, classes = meta["layer_sizes"], meta["classes"]
    if len(sizes) < 2 or not all(is_int(n) and n >= 1 for n in sizes):
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


def norm_of(meta):
    """The checkpoint's normalization (meta.config.model.norm, "none" when absent: every format before 4)."""
    model = meta["config"].get("model")
    norm = model.get("norm", "none") if isinstance(model, dict) else "none"
    if norm != "none" and norm not in NORMS:
        raise CheckpointError(f"meta.config.model.norm must be one of none, {', '.join(NORMS)}, got {show_value(norm)}")
    return norm

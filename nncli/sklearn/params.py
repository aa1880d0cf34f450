"""The estimators' constructor parameters as config keys, both ways: the parameters become one config (validated by
the same model, so with the same messages), and a config becomes the parameters of an estimator that trains it.

Every parameter stands for one config key (KEYS); `early_stopping` (True or False) with `monitor`, `patience` and
`min_delta` stands for the train.early_stopping section; `options` holds any other key, dotted
({"model.negative_slope": 0.1, "optimizer.beta2": 0.99}). The defaults are the config's, read from the schema.
"""

import numpy as np

from nncli.config import config_from_dict, config_to_dict, flatten
from nncli.errors import ConfigError
from nncli.optim.schedules import SCHEDULES

ARRAYS = "fit(X, y)"  # data.source of an estimator's config: fit's arrays, which no file holds (messages name it)

KEYS = {
    "hidden": "model.hidden",
    "activation": "model.activation",
    "init": "model.init",
    "norm": "model.norm",
    "dropout": "model.dropout",
    "loss": "loss",
    "class_weight": "loss_weights",
    "l2": "regularization.l2",
    "l1": "regularization.l1",
    "optimizer": "optimizer.name",
    "lr": "optimizer.lr",
    "momentum": "optimizer.momentum",
    "schedule": "optimizer.schedule",
    "clip_norm": "optimizer.clip_norm",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "shuffle": "train.shuffle",
    "dtype": "train.dtype",
    "validation_fraction": "data.val_fraction",
    "standardize": "data.standardize",
    "standardize_target": "data.standardize_target",
    "seed": "seed",
}
EARLY_STOPPING = ("monitor", "patience", "min_delta")
FIXED = {"train.diagnostics": False}  # an estimator records no per-layer diagnostics: nothing would show them
NOT_OPTIONS = ("name", "output.", "data.", "train.early_stopping", *FIXED)  # a file's data, a run's place


def _get(tree, key):
    for part in key.split("."):
        tree = tree[part]
    return tree


def _put(tree, key, value):
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def plain(value):
    """`value` in the plain types a YAML config holds: numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value


def _defaults():
    """The config's defaults as constructor parameters (hidden as a tuple: sklearn's defaults are immutable)."""
    tree = config_to_dict(config_from_dict({"data": {"source": ARRAYS}, "train": {"early_stopping": {}}}))
    values = {name: _get(tree, key) for name, key in KEYS.items()}
    values.update(hidden=tuple(values["hidden"]), schedule=values["schedule"]["name"], early_stopping=False)
    values.update({name: tree["train"]["early_stopping"][name] for name in EARLY_STOPPING})
    return values


DEFAULTS = _defaults()
DEFAULT_FLAT = flatten(config_to_dict(config_from_dict({"data": {"source": ARRAYS}})))


def config_dict(params, source=ARRAYS):
    """The nested config dict (plain YAML types) that the estimator parameters `params` stand for."""
    raw = {}
    _put(raw, "data.source", source)
    for name, key in KEYS.items():
        if name in params:
            _put(raw, key, plain(params[name]))
    schedule = raw["optimizer"]["schedule"]
    if isinstance(schedule, str):
        raw["optimizer"]["schedule"] = {"name": schedule}
    stopping = params["early_stopping"]
    if not isinstance(stopping, (bool, np.bool_)):
        raise ConfigError(f"early_stopping: expected True or False, got {stopping!r}", "the estimator's parameters")
    if stopping:
        raw["train"]["early_stopping"] = {name: plain(params[name]) for name in EARLY_STOPPING}
    for key, value in FIXED.items():
        _put(raw, key, value)
    options = params.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"options: expected a mapping of dotted config keys, got {options!r}", "the estimator")
    for key, value in options.items():
        _put(raw, str(key), plain(value))
    return raw


def params_of(config, names):
    """The parameters (of those in `names`) of an estimator that trains `config`: every named key, early stopping,
    and in `options` every other key that differs from its default (data and output describe a file's run)."""
    tree = config_to_dict(config)
    params = {name: _get(tree, key) for name, key in KEYS.items() if name in names}
    params["hidden"] = tuple(params["hidden"])
    schedule = params["schedule"]
    defaults = {p.name: p.default for p in SCHEDULES[schedule["name"]].params}
    changed = {key: value for key, value in schedule.items() if key != "name" and value != defaults.get(key)}
    params["schedule"] = {"name": schedule["name"], **changed} if changed else schedule["name"]
    stopping = tree["train"]["early_stopping"]
    params["early_stopping"] = stopping is not None
    params.update({name: (stopping or {}).get(name, DEFAULTS[name]) for name in EARLY_STOPPING})
    named = {KEYS[name] for name in names if name in KEYS}
    options = {
        key: value
        for key, value in flatten(tree).items()
        if (key not in DEFAULT_FLAT or value != DEFAULT_FLAT[key])
        and not key.startswith(NOT_OPTIONS)
        and not any(key == k or key.startswith(f"{k}.") for k in named)
    }
    params["options"] = options or None
    return params

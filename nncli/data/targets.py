"""Targets that are not class ids: real values (regression) and 0/1 attributes, one column each.

A regression or attributes run's y is (N, K) float, K = the number of target columns (`data.target`, one name or
a list; default the last column). Regression targets are standardized on the training split
(`data.standardize_target`, on by default) and every number shown is mapped back to their units; attributes stay
0 and 1. Splits are drawn at random in the fractions asked (there are no classes to stratify by).
"""

import os
from dataclasses import replace

import numpy as np

from nncli.data.builtin import BUILTINS, GENERATOR_OPTIONS, TARGETS
from nncli.errors import DataError
from nncli.nn.losses import LOSSES

DRAWS = {"classification": "class labels", "regression": "real targets", "attributes": "0/1 attributes"}


def task_losses(task):
    """The registered losses for `task`, as "l2, l1, huber"."""
    return ", ".join(name for name, loss in LOSSES.items() if loss.task == task)


def target_names(data_cfg):
    """`data.target` as a list ([] when unset: the reader takes the last column)."""
    target = data_cfg.target
    return [] if target is None else [target] if isinstance(target, str) else list(target)


def check_task(data_cfg, task):
    """Refuse a data section that cannot work, before anything is read: a generator option for a file, a built-in
    that draws another kind of target than the loss's task (naming both) or is given a data.target, or a data.target
    list that is empty, repeats a column, or names several columns for a classification loss."""
    source, target = os.fspath(data_cfg.source), data_cfg.target
    if source not in BUILTINS:
        stray = [key for key in GENERATOR_OPTIONS if getattr(data_cfg, key, None) is not None]
        if stray:
            raise DataError(f"data.{stray[0]} is a built-in generator option; data.source {source!r} is a file")
    if source in BUILTINS and TARGETS.get(source, "classification") != task:
        drawn, article = TARGETS.get(source, "classification"), "an" if task == "attributes" else "a"
        raise DataError(
            f"data.source {source!r} draws {DRAWS[drawn]} ({drawn}), but the loss is {article} {task} loss "
            f"({task_losses(task)}); use loss {task_losses(drawn).replace(', ', ' or ')} with this data"
        )
    if target is not None and source in BUILTINS:
        raise DataError(
            f"data.target names a column of a CSV file; data.source {source!r} is a built-in, whose targets are drawn"
        )
    if target is not None and source not in BUILTINS and not source.lower().endswith(".csv"):
        raise DataError(
            f"data.target names a column of a CSV file; data.source {source!r} is not a CSV (its labels are "
            f"data.y_key in an .npz, or the data.labels file)"
        )
    if target is None or isinstance(target, str):
        return
    names = list(target)
    if not names:
        raise DataError("data.target is an empty list; name one target column or more (or leave data.target out)")
    repeated = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if repeated is not None:
        raise DataError(f"data.target names column {repeated!r} twice; each target column is one output")
    if task == "classification":
        raise DataError(
            f"data.target is a list ({', '.join(map(repr, names))}), but a classification loss "
            f"({task_losses(task)}) learns one label column: set data.target: {names[0]}, or use loss logistic "
            f"for several 0/1 attributes, l2 (or l1, huber) for several real targets"
        )


def check_missing_targets(table, targets, missing):
    """With any data.missing but drop, a parsed target cell that is missing is a DataError (targets are never
    filled); with drop, `screen` leaves its row out like any row with a missing cell."""
    if missing == "drop":
        return
    for name in targets:
        j = table.names.index(name)
        absent = np.isnan(table.cells[j])
        if absent.any():
            row = int(np.argmax(absent))
            raise DataError(
                f"{table.path}: line {table.line(row)}, column {name!r}: the target is missing; a row without its "
                f"target cannot be filled, only dropped (data.missing: drop)"
            )


def split_targets(table, targets):
    """(table of the feature columns, y (N, K) float64 of the parsed target columns)."""
    y = np.column_stack([table.cells[table.names.index(name)] for name in targets])
    keep = [j for j, name in enumerate(table.names) if name not in targets]
    text = None if table.text is None else [table.text[j] for j in keep]
    names, cells = [table.names[j] for j in keep], [table.cells[j] for j in keep]
    return replace(table, names=names, cells=cells, text=text, block=None, targets=None), y


def output_names(task, y, targets, y_key="y"):
    """The names of the K outputs: the CSV's target columns, else 'y' or y[0], y[1], …"""
    if targets:
        return list(targets)
    k = y.shape[1] if y.ndim == 2 else 1
    return [y_key] if k == 1 else [f"{y_key}[{i}]" for i in range(k)]


def target_values(y_raw, task, source):
    """Targets as (N, K) float64, checked: finite numbers for regression, only 0 and 1 for attributes."""
    y = np.asarray(y_raw)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: {task} targets must be numbers, one column per target, got "
            f"{'text' if y.dtype.kind in 'USO' else f'an array of shape {y.shape}'}"
        )
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise DataError(f"{source}: a target is {y[~np.isfinite(y)][0]}; targets must be finite numbers")
    if task == "attributes" and not np.isin(y, (0.0, 1.0)).all():
        bad = y[~np.isin(y, (0.0, 1.0))][0]
        raise DataError(f"{source}: an attribute is {bad:g}; attributes (loss logistic) are 0 or 1")
    return y


def random_split(n, val_fraction, test_fraction, rng, source="data"):
    """Index arrays (train, val, test) in random order, round(fraction · n) samples in each held-out split (at least
    one when asked for), the rest for training (at least one)."""

    def share(fraction):
        return max(1, int(np.floor(fraction * n + 0.5))) if fraction > 0 else 0

    n_val, n_test = share(val_fraction), share(test_fraction)
    if n - n_val - n_test < 1:
        raise DataError(
            f"{source}: {n} sample(s) are too few to split with val_fraction {val_fraction} and test_fraction "
            f"{test_fraction}: training needs at least one"
        )
    order = rng.permutation(n)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def target_moments(y, rows):
    """Per-target mean and std (K,) over the training rows; a constant target gets std 1."""
    mean, std = y[rows].mean(axis=0), y[rows].std(axis=0)
    std[std == 0] = 1.0
    return mean, std

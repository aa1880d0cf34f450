"""Looking at finished work: what a checkpoint holds, which runs a folder has, how two runs differ.

Everything here reads JSON and npz arrays only; nothing is unpickled or executed.
"""

import os
from pathlib import Path

from pydantic import BaseModel

from nncli.config import Config, flatten
from nncli.config.safe_yaml import read_yaml_file
from nncli.errors import ConfigError, RunError
from nncli.training import rundir
from nncli.training.checkpoint import load_checkpoint, sha256_of
from nncli.training.rundir import read_metrics

# best_val_accuracy (classification, attributes) and best_val_rmse (regression): the value in the best epoch's row
# (the one the run's monitor picked), or without a summary the best value in metrics.jsonl; — when not recorded
RUN_COLUMNS = ("name", "status", "epochs", "best_val_accuracy", "best_val_rmse", "wall_seconds")

VAL_KEYS = ("val_accuracy", "val_rmse")


def describe_checkpoint(path):
    """A checkpoint's format, provenance, task, layers, recorded metrics, a regression run's target statistics (None
    when not standardized) and (for a CSV) how its columns become the inputs, as a JSON-ready dict. `encoding` is
    None for data without columns to encode, or from an older nncli.

    `layers` lists the trained parameters (W_i, b_i, gamma_i, beta_i: kind "parameter", what `parameters` counts),
    then a batch norm's running_mean_i and running_var_i (kind "running statistic": evaluation normalizes with them,
    no optimizer updates them)."""
    ckpt = load_checkpoint(path)
    return {
        "path": str(path),
        "sha256": sha256_of(path),
        "format_version": ckpt.meta["format_version"],
        "nncli_version": ckpt.meta["nncli_version"],
        "epoch": ckpt.epoch,
        "position": ckpt.position,
        "task": ckpt.task,
        "classes": ckpt.classes,
        "target_mean": None if ckpt.target_mean is None else ckpt.target_mean.tolist(),
        "target_std": None if ckpt.target_std is None else ckpt.target_std.tolist(),
        "layers": _arrays(ckpt.params, "parameter") + _arrays(ckpt.running, "running statistic"),
        "parameters": int(sum(p.size for p in ckpt.params.values())),
        "standardized": ckpt.norm_mean is not None,
        "metrics": ckpt.meta["metrics"],
        "encoding": None if ckpt.encoding is None else _encoding(ckpt.encoding),
        "config": ckpt.config,
    }


def _arrays(arrays, kind):
    """One `layers` entry per array: name, shape, count, dtype and kind."""
    return [
        {"name": name, "shape": list(a.shape), "count": int(a.size), "dtype": str(a.dtype), "kind": kind}
        for name, a in arrays.items()
    ]


def _encoding(encoding):
    """The Encoding's record with each column's number of inputs: what `inspect` shows."""
    record = encoding.to_meta()
    for column, entry in zip(encoding.columns, record["columns"]):
        entry["inputs"] = column.width
    return record


def _defaults(model=Config, prefix=""):
    """{dotted.key: default} of every config key that has one (a required section, data, gives its own keys')."""
    flat = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                flat.update(_defaults(field.annotation, f"{prefix}{name}."))
            continue
        value = field.get_default(call_default_factory=True)
        flat.update(flatten({name: value.model_dump(mode="json") if isinstance(value, BaseModel) else value}, prefix))
    return flat


def _with_defaults(flat):
    """A flattened config with the defaults of the keys it lacks, except where it gives that key's section itself
    (train.early_stopping as a dict, or as null)."""
    missing = {
        k: v
        for k, v in _defaults().items()
        if k not in flat and not any(f.startswith(k + ".") or k.startswith(f + ".") for f in flat)
    }
    return {**missing, **flat}


def read_summary(run_dir):
    """A finished run's summary.json as a dict; RunError naming the problem for anything else (a file, a folder of
    runs, a run still going or killed, an unreadable summary)."""
    if not Path(run_dir).is_dir():
        kind = "a file, not a run directory" if Path(run_dir).exists() else "no such run directory"
        raise RunError(f"{run_dir}: {kind}")
    return rundir.read_summary(run_dir)  # checked key by key: a summary of the wrong shape is named, not used


def list_runs(folder, sort="name"):
    """One row per run directory under `folder` (any depth), sorted by a RUN_COLUMNS key."""
    if not Path(folder).is_dir():
        raise RunError(
            f"{folder}: {'is not a folder' if Path(folder).exists() else 'no such folder'}; "
            "give the folder that holds the run directories"
        )
    if sort not in RUN_COLUMNS:
        raise RunError(f"sort must be one of {', '.join(RUN_COLUMNS)}, got {sort!r}")
    run_dirs = sorted(Path(top) for top, _, files in os.walk(folder) if {"summary.json", "metrics.jsonl"} & set(files))
    rows = [_run_row(run_dir) for run_dir in run_dirs]
    descending = sort in ("best_val_accuracy", "epochs")  # best_val_rmse: smaller is better

    def key(row):  # missing values last; numbers best-first where larger is better
        value = row[sort]
        if value is None or isinstance(value, str):
            return (value is None, str(value))
        return (False, -value if descending else value)

    rows.sort(key=key)
    return rows


def run_checkpoint(path):
    """The checkpoint a path names: the file itself, or a run directory's best.npz (the weights its monitor picked).
    A directory without one is a RunError saying what it holds instead."""
    path = Path(path)
    if not path.is_dir():
        return path
    best = path / "best.npz"
    if best.is_file():
        return best
    if (path / "seeds.json").exists():
        raise RunError(f"{path}: a seed study, not one run; give one of its runs, e.g. {path / 'seed-0'}")
    if (path / "checkpoint.npz").is_file():
        raise RunError(f"{path}: has no best.npz yet; its latest weights are {path / 'checkpoint.npz'}")
    raise RunError(f"{path}: a directory without best.npz, not a run directory; give a checkpoint (.npz)")


def run_name(run_dir):
    """A run's name as its config gives it (config.yaml's name, written when training starts), whatever the run's
    state; the directory's name when config.yaml is missing or unreadable."""
    try:
        config = read_yaml_file(Path(run_dir) / "config.yaml", "a run's config.yaml is a few hundred bytes")
    except ConfigError:
        return Path(run_dir).name
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else Path(run_dir).name


def _run_row(run_dir):
    """A run's row from summary.json; a run without a readable one (still running, or killed) from its metrics."""
    try:
        summary = read_summary(run_dir)
        best = summary.get("best") or {}
        return {
            "path": str(run_dir),
            "name": run_name(run_dir),
            "status": summary.get("status"),
            "epochs": summary.get("epochs_run"),
            "best_val_accuracy": best.get("val_accuracy"),
            "best_val_rmse": best.get("val_rmse"),
            "wall_seconds": summary.get("wall_seconds"),
        }
    except (RunError, AttributeError):  # AttributeError: JSON that is not an object
        exists = (run_dir / "summary.json").exists()
        status = "summary.json unreadable" if exists else "no summary (running or killed)"
    try:
        rows = read_metrics(run_dir)
    except RunError:
        rows = []
    accuracies, rmses = ([r[key] for r in rows if isinstance(r.get(key), (int, float))] for key in VAL_KEYS)
    return {
        "path": str(run_dir),
        "name": run_name(run_dir),
        "status": status,
        "epochs": len(rows),
        "best_val_accuracy": max(accuracies, default=None),
        "best_val_rmse": min(rmses, default=None),
        "wall_seconds": None,
    }


def diff_runs(run_a, run_b):
    """Config keys that differ between two runs, and their best and final metrics side by side. A key a run's
    config lacks because its nncli did not have it yet (model.norm before normalization) counts as its default,
    which is what that run did: a run without a norm diffs as model.norm none, not as a missing key."""
    configs, summaries = [], []
    for run in (run_a, run_b):
        summaries.append(read_summary(run))
        ckpt = Path(run) / "checkpoint.npz"
        configs.append(load_checkpoint(ckpt).config if ckpt.exists() else {})
    flat = [_with_defaults(flatten(c)) if c else {} for c in configs]
    keys = sorted(k for k in set(flat[0]) | set(flat[1]) if flat[0].get(k) != flat[1].get(k))
    keys = [k for k in keys if k != "output.dir"]  # each run's own path: the column headers
    metrics = {}
    for which in ("best", "final"):
        a, b = (s.get(which) or {} for s in summaries)
        for key in sorted(set(a) | set(b)):
            if key != "seconds":
                metrics[f"{which}.{key}"] = (a.get(key), b.get(key))
    return {
        "config": {k: (flat[0].get(k), flat[1].get(k)) for k in keys},
        "metrics": metrics,
        "epochs": (len(read_metrics(run_a)), len(read_metrics(run_b))),
        "status": tuple(s.get("status") for s in summaries),
    }

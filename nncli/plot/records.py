"""What plots read: a run directory's metrics.jsonl, or a sweep directory's sweep.yaml and trials.csv, and which
of the two a path is."""

import csv
import json
from pathlib import Path

import numpy as np

from nncli.config.safe_yaml import read_yaml_file
from nncli.errors import RunError, show_value
from nncli.nn.metrics import monitors
from nncli.studies.space import parse_space
from nncli.studies.sweep_results import STATES, read_trial_row
from nncli.training.rundir import read_metrics, runs_inside


def run_rows(run_dir):
    """A run's metrics.jsonl rows, one per epoch; refused when there are none."""
    rows = read_metrics(run_dir)
    if not rows:
        raise RunError(f"{run_dir}: no metrics.jsonl rows to plot (is it an nncli run directory?)")
    return rows


def is_sweep_dir(path):
    """True for a directory `nncli sweep` writes: it holds sweep.yaml and trials.csv."""
    path = Path(path)
    return (path / "sweep.yaml").is_file() and (path / "trials.csv").is_file()


def plot_target(path):
    """What `nncli plot PATH` draws: "sweep" or "run"; anything else is refused with what is expected."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such run or sweep directory")
    if is_sweep_dir(path):
        return "sweep"
    if (path / "metrics.jsonl").is_file():
        return "run"
    if (path / "seeds.json").exists():
        raise RunError(runs_inside(path) + "; plot one of those")
    raise RunError(
        f"{path}: neither a run directory (metrics.jsonl, written by nncli train) nor a sweep directory "
        f"(sweep.yaml and trials.csv, written by nncli sweep); nothing to plot"
    )


def _read_sweep_yaml(sweep_dir):
    """sweep.yaml as a dict, its space as Params (read by the sweep file's own parser), metric defaulted."""
    path = Path(sweep_dir) / "sweep.yaml"
    sweep = read_yaml_file(path, "sweep.yaml is written by nncli sweep") or {}
    if not isinstance(sweep, dict):
        raise RunError(f"{path}: not a mapping (it is written by nncli sweep)")
    problems = []
    sweep["space"] = {p.key: p for p in parse_space(sweep.get("space"), problems)}
    if sweep.get("metric", "val_accuracy") not in monitors():
        problems.append(f"metric: {show_value(sweep['metric'])} is not one of {', '.join(monitors())}")
    if problems:
        raise RunError(f"{path}: " + "; ".join(problems))
    sweep.setdefault("metric", "val_accuracy")
    return sweep


def read_sweep(sweep_dir):
    """(sweep, trials) of a sweep directory: the parsed sweep.yaml (its space as {key: space.Param}, in the order
    of trials.csv's columns) and one dict per trials.csv row, each with number, state, mean, std, epochs,
    params {dotted key: value} and error. Values are decoded with the space (numbers for ranges, the matching
    choice for choices, so [256, 128] comes back as a list)."""
    sweep = _read_sweep_yaml(sweep_dir)
    path = Path(sweep_dir) / "trials.csv"
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or ()
        missing = [c for c in ("number", "state", "mean", "std", "epochs", *sweep["space"]) if c not in columns]
        if missing:
            raise RunError(f"{path}: missing column(s) {', '.join(missing)}")
        space = sweep["space"] = {key: sweep["space"][key] for key in columns if key in sweep["space"]}
        trials = [
            dict(
                read_trial_row(row, reader.line_num, path),
                error=row.get("error") or "",
                params={key: _decode(row[key], param) for key, param in space.items()},
            )
            for row in reader
        ]
    return sweep, trials


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _decode(text, param):
    """The swept value a trials.csv cell holds; None when empty (a trial that failed before sampling it)."""
    if text in (None, ""):
        return None
    if param.kind in ("int", "log_int"):
        value = _number(text)
        return None if value is None else int(value)
    if param.kind != "choice":
        return _number(text)
    for choice in param.args:
        if text in (str(choice), json.dumps(choice)):
            return choice
    try:
        return json.loads(text)
    except ValueError:
        return text


def choice_label(value):
    """How a swept value reads on an axis or in a table: a string as it is, anything else as JSON ([256, 128])."""
    return value if isinstance(value, str) else json.dumps(value)


def trial_counts(trials):
    """{state: how many trials ended so}, for complete, pruned and failed."""
    return {state: sum(t["state"] == state for t in trials) for state in STATES.values()}


def best_trial(trials, maximize):
    """The complete trial with the best mean (largest when `maximize`), or None."""
    done = [t for t in trials if t["state"] == "complete" and t["mean"] is not None]
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda t: t["mean"])

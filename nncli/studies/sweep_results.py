"""A sweep's results as files: trials.csv (one row per finished trial, in trial order) and best.yaml (the best
complete trial's config, ready for nncli train), rewritten after every trial the coordinator tells."""

import csv
import io
import json
import math

from nncli.config import dump_config_yaml
from nncli.errors import RunError
from nncli.training.atomic import atomic_write_text

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}  # Optuna's finished states, as we say them


def trial_rows(study, sweep):
    """One dict per finished trial: number, state, mean, std, epochs, params {key: value}, error; best first,
    then pruned, then failed."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name not in STATES:
            continue
        result = t.user_attrs.get("result", {})
        params = {p.key: p.decode(t.params[p.key]) for p in sweep.space if p.key in t.params}
        rows.append(
            {
                "number": t.number,
                "state": STATES[t.state.name],
                "mean": result.get("mean"),
                "std": result.get("std"),
                "epochs": result.get("epochs"),
                "params": params,
                "error": result.get("error"),
            }
        )
    sign = -1 if sweep.maximize else 1
    order = {"complete": 0, "pruned": 1, "failed": 2}
    return sorted(
        rows, key=lambda r: (order[r["state"]], sign * r["mean"] if r["mean"] is not None else 0, r["number"])
    )


def _trials_csv(rows, sweep):
    """trials.csv's text: the rows in trial order, list and mapping values as JSON, missing values empty."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["number", "state", "mean", "std", "epochs", *(p.key for p in sweep.space), "error"])
    for r in sorted(rows, key=lambda r: r["number"]):
        values = [
            json.dumps(v) if isinstance(v, (list, dict)) else v
            for v in (r["params"].get(p.key, "") for p in sweep.space)
        ]
        writer.writerow(
            [
                r["number"],
                r["state"],
                r["mean"] if r["mean"] is not None else "",
                r["std"] if r["std"] is not None else "",
                r["epochs"] or 0,
                *values,
                r["error"] or "",
            ]
        )
    return text.getvalue()


def _float_cell(text, column, where):
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RunError(f"{where}: {column} {text[:40]!r} is not a number (trials.csv is written by nncli sweep)")
    return value


def read_trial_row(row, line, path):
    """A trials.csv row (a csv.DictReader dict, at `line` of `path`) checked: number, state, mean, std, epochs.

    Raises RunError naming the file, the line and the cell when it is not a row nncli sweep writes.
    """
    where = f"{path}: line {line}"
    if None in row or None in row.values():
        raise RunError(f"{where}: has {'more' if None in row else 'fewer'} cells than the header")
    number, state, epochs = row["number"], row["state"], row["epochs"] or "0"
    if not (number.isdigit() and number.isascii() and len(number) < 10):
        raise RunError(f"{where}: number {number[:40]!r} is not a trial number")
    if state not in STATES.values():
        raise RunError(f"{where}: state {state[:40]!r} is not one of {', '.join(STATES.values())}")
    if not (epochs.isdigit() and epochs.isascii() and len(epochs) < 10):
        raise RunError(f"{where}: epochs {epochs[:40]!r} is not a whole number")
    mean, std = (_float_cell(row[k], k, where) for k in ("mean", "std"))
    if state == "complete" and mean is None:
        raise RunError(f"{where}: a complete trial has no mean")
    return {"number": int(number), "state": state, "mean": mean, "std": std, "epochs": int(epochs)}


def write_results(study, sweep, out):
    """Rewrite trials.csv (in trial order) and best.yaml; return the trial rows, best first."""
    rows = trial_rows(study, sweep)
    atomic_write_text(out / "trials.csv", _trials_csv(rows, sweep))
    if rows and rows[0]["state"] == "complete":
        best = rows[0]
        name = f"{sweep.stem}-best"
        config = sweep.config(best["params"], name=name, output={"dir": f"runs/{name}"})
        spread = f" ± {best['std']:.4f}" if best["std"] is not None else ""
        header = [
            f"best of sweep {sweep.path} (trial {best['number']}: {sweep.metric} "
            f"{best['mean']:.4f}{spread} over seeds {sweep.seeds})"
        ]
        atomic_write_text(out / "best.yaml", dump_config_yaml(config, header))
    return rows

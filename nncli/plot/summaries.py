"""Runs and sweeps in a terminal, no matplotlib needed: sparklines of a run's curves, and a sweep's best trial
per category or bucket of each swept key."""

import numpy as np

from nncli.nn.metrics import METRICS, SPLITS, maximized
from nncli.plot.records import best_trial, choice_label, read_sweep, run_rows, trial_counts

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values, width=40):
    """One character per value (per bucket mean once there are more than `width`), scaled between min and max."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    if len(values) > width:  # the whole curve in `width` characters, not its first `width` epochs
        values = [float(np.mean(bucket)) for bucket in np.array_split(values, width)]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(BARS[min(int((v - lo) / span * (len(BARS) - 1) + 0.5), len(BARS) - 1)] for v in values)


def sparklines(run_dir):
    """{metric: (sparkline, first, last)} for every curve recorded in a run's metrics.jsonl."""
    rows = run_rows(run_dir)
    curves = {}
    for key in [f"{split}_{metric}" for metric in METRICS for split in SPLITS] + ["lr"]:
        values = [row.get(key) for row in rows if row.get(key) is not None]
        if values:
            curves[key] = (sparkline(values), values[0], values[-1])
    return curves


def sweep_summary(sweep_dir, buckets=4):
    """The sweep in numbers, for a terminal: metric, direction, state counts, the best trial, and per swept key
    a list of (bucket or category label, trials, best complete value, its trial number or None).

    Ranges are cut into `buckets` equal bins between the space's bounds (one bin per decade for log_uniform/log_int
    when that gives at most 2·buckets bins; one bin per integer when an int range is that small); choices are
    their own categories.
    """
    sweep, trials = read_sweep(sweep_dir)
    metric = sweep["metric"]
    maximize = maximized(metric)
    shown = [t for t in trials if t["state"] in ("complete", "pruned")]
    keys = {}
    for key, param in sweep["space"].items():
        groups = _groups(param.kind, param.args, [t["params"][key] for t in shown], buckets)
        table = []
        for label, members in groups:
            picked = [t for t, inside in zip(shown, members) if inside]
            top = best_trial(picked, maximize)
            table.append((label, len(picked), top["mean"] if top else None, top["number"] if top else None))
        keys[key] = {"kind": param.kind, "rows": table}
    return {
        "metric": metric,
        "maximize": maximize,
        "counts": trial_counts(trials),
        "best": best_trial(trials, maximize),
        "seeds": list(sweep.get("seeds") or []),
        "keys": keys,
    }


def _groups(kind, args, values, buckets):
    """[(label, [value falls in this group, per trial])] for one swept key; each value falls in one group."""
    if kind == "choice":
        labels = [choice_label(c) for c in args]
        return [(label, [v is not None and choice_label(v) == label for v in values]) for label in labels]
    lo, hi = float(args[0]), float(args[1])
    if kind == "int" and hi - lo + 1 <= 6:
        return [(str(int(k)), [v is not None and int(v) == k for v in values]) for k in range(int(lo), int(hi) + 1)]
    log = kind.startswith("log") and lo > 0
    decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1) if log else []
    if log and 3 <= len(decades) <= 2 * buckets + 1:  # 2 to 2·buckets bins
        edges = 10.0**decades  # one bin per decade reads best, cut at the searched bounds
        edges[0], edges[-1] = lo, hi
    else:
        edges = np.geomspace(lo, hi, buckets + 1) if log else np.linspace(lo, hi, buckets + 1)
    fmt = (lambda e: f"{e:.1e}") if log else (lambda e: f"{e:g}")
    groups = []
    for i in range(len(edges) - 1):
        last = i == len(edges) - 2
        inside = [v is not None and (v >= edges[i] or i == 0) and (v < edges[i + 1] or last) for v in values]
        groups.append((f"{fmt(edges[i])} – {fmt(edges[i + 1])}", inside))
    return groups

"""Pictures of a run: loss, accuracy and learning-rate curves, the best checkpoint's confusion matrix and, for
two-dimensional data, its decision regions over the data points (the course's spiral picture).

Matplotlib is optional (`pip install 'nncli[plot]'`); without it `sparklines` gives a terminal summary.
"""

from pathlib import Path

import numpy as np

from nncli.errors import OutputError, RunError, require, show_value
from nncli.nn.metrics import maximized, monitors
from nncli.training.rundir import read_metrics, runs_inside

BARS = "▁▂▃▄▅▆▇█"
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}  # what --out may ask for


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
    rows = _rows(run_dir)
    curves = {}
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"):
        values = [row.get(key) for row in rows if row.get(key) is not None]
        if values:
            curves[key] = (sparkline(values), values[0], values[-1])
    return curves


def _rows(run_dir):
    rows = read_metrics(run_dir)
    if not rows:
        raise RunError(f"{run_dir}: no metrics.jsonl rows to plot (is it an nncli run directory?)")
    return rows


def _pyplot():
    matplotlib = require(
        "matplotlib", "plot", "plotting", " (nncli plot --text shows a summary in the terminal without it)"
    )
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(run_dir, out_path=None):
    """Draw the run's curves, confusion matrix and (2-D data) decision regions into one PNG; return its path."""
    from nncli.evaluation.evaluate import checkpoint_data, evaluate_checkpoint, load_model

    plt = _pyplot()
    run_dir = Path(run_dir)
    rows = _rows(run_dir)
    best = run_dir / "best.npz"
    net, ckpt, config = load_model(best)
    report = evaluate_checkpoint(best)
    two_d = net.sizes[0] == 2
    fig, axes = plt.subplots(1, 4 if two_d else 3, figsize=(20 if two_d else 15, 4.5))
    epochs = [r["epoch"] for r in rows]
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        for split in ("train", "val"):
            values = [r.get(f"{split}_{metric}") for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, label=split)
        ax.set(title=metric, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole: no 1.25 ticks on a short run
        ax.legend()
    lr_ax = axes[0].twinx()
    lr_ax.plot(epochs, [r["lr"] for r in rows], color="gray", linestyle=":", label="lr")
    lr_ax.set_ylabel("learning rate (dotted)")
    confusion = np.array(report["confusion"])
    axes[2].imshow(confusion, cmap="Blues")
    labels = [str(c) for c in report["classes"]]
    axes[2].set(
        title=f"confusion matrix, best epoch {ckpt.epoch} ({report['split']})",
        xlabel="predicted",
        ylabel="true",
        xticks=range(len(labels)),
        yticks=range(len(labels)),
    )
    axes[2].set_xticklabels(labels)
    axes[2].set_yticklabels(labels)
    for (i, j), count in np.ndenumerate(confusion):
        axes[2].text(
            j, i, str(count), ha="center", va="center", color="white" if count > confusion.max() / 2 else "black"
        )
    if two_d:
        data, _ = checkpoint_data(ckpt, config, split="train")
        X = np.concatenate([xb for xb, _ in data.chunks()])
        _decision_regions(axes[3], net, X, data.y)
    fig.suptitle(f"{config.name}: {run_dir}")
    fig.tight_layout()
    return _save(plt, fig, Path(out_path or run_dir / "plot.png"))


def _decision_regions(ax, net, X, y, steps=300):
    """Colour the plane by the predicted class on a grid (vectorized: one batched forward), points on top."""
    pad = 0.5
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, steps)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, steps)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    regions = net.predict(grid).reshape(gx.shape)
    ax.contourf(gx, gy, regions, alpha=0.3, cmap="viridis", levels=np.arange(net.sizes[-1] + 1) - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="viridis", edgecolors="k", linewidths=0.3)
    ax.set(title="decision regions (training data, standardized)")


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


def read_sweep(sweep_dir):
    """(sweep, trials) of a sweep directory: the parsed sweep.yaml (its space as {key: sweep_space.Param}, read by
    the sweep file's own parser) and one dict per trials.csv row, each with
    number, state, mean, std, epochs, params {dotted key: value} and error. Values are decoded with the space
    (numbers for ranges, the matching choice for choices, so [256, 128] comes back as a list)."""
    import csv

    from nncli.config.safe_yaml import read_yaml_file
    from nncli.studies.space import parse_space

    sweep_dir = Path(sweep_dir)
    sweep = read_yaml_file(sweep_dir / "sweep.yaml", "sweep.yaml is written by nncli sweep") or {}
    if not isinstance(sweep, dict):
        raise RunError(f"{sweep_dir / 'sweep.yaml'}: not a mapping (it is written by nncli sweep)")
    problems = []
    space = {p.key: p for p in parse_space(sweep.get("space"), problems)}
    if sweep.get("metric", "val_accuracy") not in monitors():
        problems.append(f"metric: {show_value(sweep['metric'])} is not one of {', '.join(monitors())}")
    if problems:
        raise RunError(f"{sweep_dir / 'sweep.yaml'}: " + "; ".join(problems))
    sweep.setdefault("metric", "val_accuracy")
    with open(sweep_dir / "trials.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [
            c for c in ("number", "state", "mean", "std", "epochs", *space) if c not in (reader.fieldnames or ())
        ]
        if missing:
            raise RunError(f"{sweep_dir / 'trials.csv'}: missing column(s) {', '.join(missing)}")
        space = {key: space[key] for key in reader.fieldnames if key in space}  # the columns' order
        sweep["space"] = space
        trials = [
            {
                "number": int(row["number"]),
                "state": row["state"],
                "mean": _number(row["mean"]),
                "std": _number(row["std"]),
                "epochs": int(row["epochs"] or 0),
                "error": row.get("error") or "",
                "params": {key: _decode(row[key], param) for key, param in space.items()},
            }
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
    import json

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


def _label(value):
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _counts(trials):
    return {state: sum(t["state"] == state for t in trials) for state in ("complete", "pruned", "failed")}


def _best(trials, maximize):
    done = [t for t in trials if t["state"] == "complete" and t["mean"] is not None]
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda t: t["mean"])


def sweep_figure(sweep_dir):
    """The sweep picture as a matplotlib Figure: the metric against each swept key, one panel per key.

    Ranges on a linear x-axis (log for log_uniform/log_int), choices as categories; complete trials filled,
    pruned ones hollow when trials.csv gives them a value (nncli sweep leaves theirs empty: a trial stopped early
    has none comparable), failed left out (counted in the title); ± std error bars when each trial ran several seeds.
    """
    plt = _pyplot()
    sweep, trials = read_sweep(sweep_dir)
    space, metric = sweep["space"], sweep["metric"]
    maximize, counts = maximized(metric), _counts(trials)
    shown = [t for t in trials if t["state"] in ("complete", "pruned") and t["mean"] is not None]
    if not shown:
        raise RunError(
            f"{sweep_dir}: trials.csv holds no complete or pruned trial to plot yet ({counts['failed']} failed)"
        )
    with_std = len(sweep.get("seeds") or [0]) > 1
    best = _best(trials, maximize)
    cols = min(len(space), 3)
    rows = -(-len(space) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(space) :]:
        fig.delaxes(ax)
    for ax, (key, param) in zip(axes.flat, space.items()):
        kind, args = param.kind, param.args
        if kind == "choice":
            labels = [_label(c) for c in args]
            where = [
                labels.index(_label(t["params"][key])) if _label(t["params"][key]) in labels else None for t in shown
            ]
            total = {i: where.count(i) for i in set(where)}
            seen, xs = {}, []
            for i in where:  # trials of one category side by side, centred on it
                seen[i] = seen.get(i, 0) + 1
                xs.append(None if i is None else i + 0.08 * (seen[i] - 1 - (total[i] - 1) / 2))
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=20 if max(map(len, labels)) > 8 else 0)
            ax.set_xlim(-0.6, len(labels) - 0.4)
        else:
            xs = [t["params"][key] for t in shown]
            lo, hi = float(args[0]), float(args[1])
            if kind.startswith("log") and lo > 0:
                ax.set_xscale("log")
                ax.set_xlim(lo / 1.3, hi * 1.3)  # the whole searched range
            else:
                ax.set_xlim(lo - 0.05 * (hi - lo or 1), hi + 0.05 * (hi - lo or 1))
        for state, face in (("complete", None), ("pruned", "none")):
            picked = [(x, t) for x, t in zip(xs, shown) if t["state"] == state and x is not None]
            if not picked:
                continue
            x, ts = zip(*picked)
            yerr = [t["std"] or 0.0 for t in ts] if with_std else None
            ax.errorbar(
                x,
                [t["mean"] for t in ts],
                yerr=yerr,
                fmt="o",
                color="C0",
                markerfacecolor=face,
                capsize=3,
                linestyle="none",
                label=state,
            )
        if best is not None and xs[shown.index(best)] is not None:
            x = xs[shown.index(best)]
            ax.plot(
                [x],
                [best["mean"]],
                marker="*",
                markersize=14,
                color="C3",
                linestyle="none",
                label=f"best (trial {best['number']})",
            )
        ax.set(title=key, xlabel=f"{key} ({kind})", ylabel=metric)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize="small")
    seeds = sweep.get("seeds") or []
    fig.suptitle(
        f"{Path(sweep_dir).name}: {metric} ({'max' if maximize else 'min'}imized"
        + (f", mean ± std over {len(seeds)} seeds" if with_std else "")
        + f"); {counts['complete']} complete, "
        f"{counts['pruned']} pruned, {counts['failed']} failed (not shown)"
    )
    fig.tight_layout()
    return fig


def plot_sweep(sweep_dir, out_path=None):
    """Draw `sweep_figure` into a PNG (default SWEEP_DIR/plot.png); return its path."""
    plt = _pyplot()
    fig = sweep_figure(sweep_dir)
    return _save(plt, fig, Path(out_path or Path(sweep_dir) / "plot.png"))


def _save(plt, fig, out_path):
    """Write the figure atomically (a crash never leaves half a picture) in the format its name says (PNG unless
    .svg or .pdf) and free it; return the path."""
    from nncli.training.atomic import atomic_write

    kind = FORMATS.get(out_path.suffix.lower())
    if kind is None:
        raise OutputError(f"{out_path}: a picture's name must end in {', '.join(FORMATS)}")
    try:
        atomic_write(out_path, lambda f: fig.savefig(f, format=kind, dpi=100))
    finally:
        plt.close(fig)
    return out_path


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
            top = _best(picked, maximize)
            table.append((label, len(picked), top["mean"] if top else None, top["number"] if top else None))
        keys[key] = {"kind": param.kind, "rows": table}
    return {
        "metric": metric,
        "maximize": maximize,
        "counts": _counts(trials),
        "best": _best(trials, maximize),
        "seeds": list(sweep.get("seeds") or []),
        "keys": keys,
    }


def _groups(kind, args, values, buckets):
    """[(label, [value falls in this group, per trial])] for one swept key; each value falls in one group."""
    if kind == "choice":
        labels = [_label(c) for c in args]
        return [(label, [v is not None and _label(v) == label for v in values]) for label in labels]
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

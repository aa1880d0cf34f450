"""The picture of a sweep: the metric against each swept key, one panel per key, drawn from the sweep directory's
files (sweep.yaml and trials.csv) alone, so a finished sweep plots without Optuna or its study.db."""

from pathlib import Path

from nncli.errors import RunError
from nncli.nn.metrics import maximized
from nncli.plot.figures import pyplot, save_figure
from nncli.plot.records import best_trial, choice_label, read_sweep, trial_counts


def sweep_figure(sweep_dir):
    """The sweep picture as a matplotlib Figure: the metric against each swept key, one panel per key.

    Ranges on a linear x-axis (log for log_uniform/log_int), choices as categories; complete trials filled,
    pruned ones hollow when trials.csv gives them a value (nncli sweep leaves theirs empty: a trial stopped early
    has none comparable), failed left out (counted in the title); ± std error bars when each trial ran several seeds.
    """
    plt = pyplot()
    sweep, trials = read_sweep(sweep_dir)
    space, metric = sweep["space"], sweep["metric"]
    maximize, counts = maximized(metric), trial_counts(trials)
    shown = [t for t in trials if t["state"] in ("complete", "pruned") and t["mean"] is not None]
    if not shown:
        raise RunError(
            f"{sweep_dir}: trials.csv holds no complete or pruned trial to plot yet ({counts['failed']} failed)"
        )
    seeds = sweep.get("seeds") or []
    with_std = len(seeds) > 1
    best = best_trial(trials, maximize)
    cols = min(len(space), 3)
    rows = -(-len(space) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(space) :]:
        fig.delaxes(ax)
    for ax, (key, param) in zip(axes.flat, space.items()):
        values = [t["params"][key] for t in shown]
        xs = _choice_axis(ax, param.args, values) if param.kind == "choice" else _range_axis(ax, param, values)
        _draw_trials(ax, xs, shown, best, with_std)
        ax.set(title=key, xlabel=f"{key} ({param.kind})", ylabel=metric)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize="small")
    fig.suptitle(
        f"{Path(sweep_dir).name}: {metric} ({'max' if maximize else 'min'}imized"
        + (f", mean ± std over {len(seeds)} seeds" if with_std else "")
        + f"); {counts['complete']} complete, "
        f"{counts['pruned']} pruned, {counts['failed']} failed (not shown)"
    )
    fig.tight_layout()
    return fig


def _choice_axis(ax, choices, values):
    """Categories on the x-axis, one tick per choice; returns each value's x (None for a value not among them),
    trials of one category side by side, centred on it."""
    labels = [choice_label(c) for c in choices]
    where = [labels.index(choice_label(v)) if choice_label(v) in labels else None for v in values]
    total = {i: where.count(i) for i in set(where)}
    seen, xs = {}, []
    for i in where:
        seen[i] = seen.get(i, 0) + 1
        xs.append(None if i is None else i + 0.08 * (seen[i] - 1 - (total[i] - 1) / 2))
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20 if max(map(len, labels)) > 8 else 0)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    return xs


def _range_axis(ax, param, values):
    """The whole searched range on the x-axis, logarithmic for log_uniform/log_int; returns the values as xs."""
    lo, hi = float(param.args[0]), float(param.args[1])
    if param.kind.startswith("log") and lo > 0:
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.3, hi * 1.3)
    else:
        ax.set_xlim(lo - 0.05 * (hi - lo or 1), hi + 0.05 * (hi - lo or 1))
    return values


def _draw_trials(ax, xs, shown, best, with_std):
    """The trials at their xs (complete filled, pruned hollow, ± std bars `with_std`) and the best one starred."""
    for state, face in (("complete", None), ("pruned", "none")):
        picked = [(x, t) for x, t in zip(xs, shown) if t["state"] == state and x is not None]
        if not picked:
            continue
        x, ts = zip(*picked)
        ax.errorbar(
            x,
            [t["mean"] for t in ts],
            yerr=[t["std"] or 0.0 for t in ts] if with_std else None,
            fmt="o",
            color="C0",
            markerfacecolor=face,
            capsize=3,
            linestyle="none",
            label=state,
        )
    if best is not None and xs[shown.index(best)] is not None:
        ax.plot(
            [xs[shown.index(best)]],
            [best["mean"]],
            marker="*",
            markersize=14,
            color="C3",
            linestyle="none",
            label=f"best (trial {best['number']})",
        )


def plot_sweep(sweep_dir, out_path=None):
    """Draw `sweep_figure` into a PNG (default SWEEP_DIR/plot.png, or the format `out_path` names); return its path."""
    plt = pyplot()
    fig = sweep_figure(sweep_dir)
    return save_figure(plt, fig, out_path or Path(sweep_dir) / "plot.png")

"""Pictures of a run: loss, accuracy and learning-rate curves, the best checkpoint's confusion matrix and, for
two-dimensional data, its decision regions over the data points (the course's spiral picture).

Matplotlib is optional (`pip install 'nncli[plot]'`); without it `sparklines` gives a terminal summary.
"""

from pathlib import Path

import numpy as np

from .errors import NncliError, RunError
from .rundir import read_metrics

BARS = "▁▂▃▄▅▆▇█"


class MissingExtra(NncliError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def sparkline(values):
    """One character per value, scaled between the series' min and max."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
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
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("plotting needs matplotlib: pip install 'nncli[plot]' "
                           "(nncli plot --text shows the curves in the terminal without it)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_run(run_dir, out_path=None):
    """Draw the run's curves, confusion matrix and (2-D data) decision regions into one PNG; return its path."""
    from .evaluate import checkpoint_data, evaluate_checkpoint, load_model

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
        ax.legend()
    lr_ax = axes[0].twinx()
    lr_ax.plot(epochs, [r["lr"] for r in rows], color="gray", linestyle=":", label="lr")
    lr_ax.set_ylabel("learning rate (dotted)")
    confusion = np.array(report["confusion"])
    axes[2].imshow(confusion, cmap="Blues")
    labels = [str(c) for c in report["classes"]]
    axes[2].set(title=f"confusion matrix, best epoch {ckpt.epoch} ({report['split']})", xlabel="predicted",
                ylabel="true", xticks=range(len(labels)), yticks=range(len(labels)))
    axes[2].set_xticklabels(labels)
    axes[2].set_yticklabels(labels)
    for (i, j), count in np.ndenumerate(confusion):
        axes[2].text(j, i, str(count), ha="center", va="center",
                     color="white" if count > confusion.max() / 2 else "black")
    if two_d:
        data, _ = checkpoint_data(ckpt, config, split="train")
        X = np.concatenate([xb for xb, _ in data.chunks()])
        _decision_regions(axes[3], net, X, data.y)
    fig.suptitle(f"{config.name}: {run_dir}")
    fig.tight_layout()
    out_path = Path(out_path or run_dir / "plot.png")
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


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

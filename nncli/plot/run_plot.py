"""The picture of a run: loss, accuracy and learning-rate curves, the best checkpoint's confusion matrix and, for
two-dimensional data, its decision regions over the data points (the course's spiral picture)."""

from pathlib import Path

import numpy as np

from nncli.plot.figures import pyplot, save_figure
from nncli.plot.records import run_rows


def plot_run(run_dir, out_path=None):
    """Draw the run's curves, confusion matrix and (2-D data) decision regions into one PNG (default
    RUN_DIR/plot.png, or the format `out_path` names); return its path."""
    from nncli.evaluation.evaluate import checkpoint_data, evaluate_checkpoint, load_model

    plt = pyplot()
    run_dir = Path(run_dir)
    rows = run_rows(run_dir)
    best = run_dir / "best.npz"
    net, ckpt, config = load_model(best)
    report = evaluate_checkpoint(best)
    two_d = net.sizes[0] == 2
    fig, axes = plt.subplots(1, 4 if two_d else 3, figsize=(20 if two_d else 15, 4.5))
    _curves(axes[:2], rows)
    _confusion_matrix(axes[2], report, ckpt.epoch)
    if two_d:
        data, _ = checkpoint_data(ckpt, config, split="train")
        X = np.concatenate([xb for xb, _ in data.chunks()])
        _decision_regions(axes[3], net, X, data.y)
    fig.suptitle(f"{config.name}: {run_dir}")
    fig.tight_layout()
    return save_figure(plt, fig, out_path or run_dir / "plot.png")


def _curves(axes, rows):
    """Loss and accuracy per epoch, train and val, on two axes; the learning rate dotted over the loss."""
    epochs = [r["epoch"] for r in rows]
    for ax, metric in zip(axes, ("loss", "accuracy")):
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


def _confusion_matrix(ax, report, epoch):
    """The evaluation report's confusion matrix (rows: true class, columns: predicted), each count written in."""
    confusion = np.array(report["confusion"])
    ax.imshow(confusion, cmap="Blues")
    labels = [str(c) for c in report["classes"]]
    ax.set(
        title=f"confusion matrix, best epoch {epoch} ({report['split']})",
        xlabel="predicted",
        ylabel="true",
        xticks=range(len(labels)),
        yticks=range(len(labels)),
    )
    ax.set_xticklabels(labels)
    ax.set_yticklabels(labels)
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > confusion.max() / 2 else "black")


def _decision_regions(ax, net, X, y, steps=300):
    """Colour the plane by the predicted class on a grid (vectorized: one batched forward), points on top.

    X: (N, 2) training inputs as the network sees them (standardized), y: (N,) their classes.
    """
    pad = 0.5
    xs = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, steps)
    ys = np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, steps)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    regions = net.predict(grid).reshape(gx.shape)
    ax.contourf(gx, gy, regions, alpha=0.3, cmap="viridis", levels=np.arange(net.sizes[-1] + 1) - 0.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, s=12, cmap="viridis", edgecolors="k", linewidths=0.3)
    ax.set(title="decision regions (training data, standardized)")

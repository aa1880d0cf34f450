"""The picture of a run: loss, accuracy (or its task's metric) and learning-rate curves, the best checkpoint's
confusion matrix and, for two-dimensional data, its decision regions over the data points (the course's spiral
picture); for regression predicted vs true and the residuals, for attributes the accuracy of each."""

from pathlib import Path

import numpy as np

from nncli.nn.metrics import task_metrics
from nncli.plot.figures import pyplot, save_figure
from nncli.plot.records import run_rows


def plot_run(run_dir, out_path=None):
    """Draw the run's curves and its best checkpoint's picture into one PNG (default RUN_DIR/plot.png, or the
    format `out_path` names); return its path. The picture is the task's: classification a confusion matrix
    (and, for 2-D data, the decision regions), regression predicted against true and a histogram of the
    residuals on the val split (else the split eval picks), attributes each attribute's accuracy."""
    from nncli.evaluation.evaluate import checkpoint_data, evaluate_checkpoint, load_model, regression_outputs

    plt = pyplot()
    run_dir = Path(run_dir)
    rows = run_rows(run_dir)
    best = run_dir / "best.npz"
    net, ckpt, config = load_model(best)
    panels = 4 if ckpt.task == "regression" or (ckpt.task == "classification" and net.sizes[0] == 2) else 3
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.5))
    _curves(axes[:2], rows, task_metrics(ckpt.task)[1])
    if ckpt.task == "regression":
        split = "val" if config.data.val_fraction > 0 or config.data.val_source else None
        _regression_panels(axes[2:], *regression_outputs(net, ckpt, config, best, split), ckpt)
    elif ckpt.task == "attributes":
        _attribute_accuracy(axes[2], evaluate_checkpoint(best), ckpt.epoch)
    else:
        _confusion_matrix(axes[2], evaluate_checkpoint(best), ckpt.epoch)
    if panels == 4 and ckpt.task == "classification":
        data, _ = checkpoint_data(ckpt, config, split="train")
        X = np.concatenate([xb for xb, _ in data.chunks()])
        _decision_regions(axes[3], net, X, data.y)
    fig.suptitle(f"{config.name}: {run_dir}")
    fig.tight_layout()
    return save_figure(plt, fig, out_path or run_dir / "plot.png")


def _curves(axes, rows, metric):
    """Loss and `metric` (accuracy, rmse…) per epoch, train and val, on two axes; the learning rate dotted over
    the loss."""
    epochs = [r["epoch"] for r in rows]
    for ax, name in zip(axes, ("loss", metric)):
        for split in ("train", "val"):
            values = [r.get(f"{split}_{name}") for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, label=split)
        ax.set(title=name, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole: no 1.25 ticks on a short run
        ax.legend()
    lr_ax = axes[0].twinx()
    lr_ax.plot(epochs, [r["lr"] for r in rows], color="gray", linestyle=":", label="lr")
    lr_ax.set_ylabel("learning rate (dotted)")


def _regression_panels(axes, predicted, true, split, ckpt):
    """Predicted against true (the diagonal is a perfect fit) and a histogram of the residuals predicted − true,
    one colour per target: in the target's units for one target, standardized by the training split's target
    statistics for several (their units may differ by orders of magnitude)."""
    names = list(ckpt.classes)
    scaled = len(names) > 1 and ckpt.target_mean is not None
    if scaled:
        predicted, true = ((v - ckpt.target_mean) / ckpt.target_std for v in (predicted, true))
    units = "standardized" if scaled else "target units"
    scatter, hist = axes
    for k, name in enumerate(names):
        scatter.scatter(true[:, k], predicted[:, k], s=10, alpha=0.6, label=name)
        hist.hist(predicted[:, k] - true[:, k], bins=30, alpha=0.6, label=name)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    scatter.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1)
    scatter.set(
        title=f"predicted vs true, best epoch {ckpt.epoch} ({split})", xlabel=f"true ({units})", ylabel="predicted"
    )
    hist.set(title=f"residuals predicted − true ({split})", xlabel=units, ylabel="samples")
    for ax in axes:
        ax.legend()


def _attribute_accuracy(ax, report, epoch):
    """Each attribute's accuracy on the split eval picks, as bars."""
    names = [str(row["attribute"]) for row in report["per_attribute"]]
    ax.bar(range(len(names)), [row["accuracy"] for row in report["per_attribute"]])
    ax.set(title=f"accuracy per attribute, best epoch {epoch} ({report['split']})", ylim=(0, 1))
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)


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

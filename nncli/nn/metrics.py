"""The metrics a run records per epoch, each with the direction that counts as better.

A monitor (what picks best.npz, drives early stopping, ranks sweep trials) is a split and a metric,
`val_accuracy`; whether it is maximized is read here and nowhere else.
"""

from dataclasses import dataclass

SPLITS = ("train", "val")  # the splits every epoch is measured on (test: only a checkpoint's evaluation)


TASKS = ("classification", "regression", "attributes")  # what a loss is for (nncli.nn.losses.Loss.task)


@dataclass(frozen=True)
class Metric:
    """A per-epoch number: its name, whether larger is better, what it measures, and the tasks that have it
    (computed by nncli.nn.tally.Tally)."""

    name: str
    maximize: bool
    description: str
    tasks: tuple[str, ...] = TASKS


METRICS = {
    "loss": Metric("loss", False, "mean data loss (without regularization) over the split"),
    "accuracy": Metric(
        "accuracy",
        True,
        "classification: fraction of samples whose top-scoring class is the true class; attributes: fraction of "
        "attributes predicted right, over samples and attributes",
        ("classification", "attributes"),
    ),
    "rmse": Metric(
        "rmse", False, "root mean squared error, in the targets' units, over samples and targets", ("regression",)
    ),
    "mae": Metric(
        "mae", False, "mean absolute error, in the targets' units, over samples and targets", ("regression",)
    ),
    "r2": Metric("r2", True, "coefficient of determination R², averaged over the targets", ("regression",)),
    "exact_match": Metric("exact_match", True, "fraction of samples with every attribute right", ("attributes",)),
    "micro_f1": Metric("micro_f1", True, "F1 of the positive labels pooled over all attributes", ("attributes",)),
}


def task_metrics(task):
    """The metric names a run of `task` records, in order."""
    return [name for name, metric in METRICS.items() if task in metric.tasks]


def monitors(splits=SPLITS, task=None):
    """Every `split_metric` name, split by split (train_loss, train_accuracy, …), of one task or of all."""
    names = METRICS if task is None else task_metrics(task)
    return [f"{split}_{metric}" for split in splits for metric in names]


def maximized(monitor):
    """Whether a larger value of `monitor` (`val_accuracy`, `train_loss`, …) is better."""
    return METRICS[monitor.split("_", 1)[1]].maximize

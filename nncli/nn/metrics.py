"""The metrics a run records per epoch, each with the direction that counts as better.

A monitor (what picks best.npz, drives early stopping, ranks sweep trials) is a split and a metric,
`val_accuracy`; whether it is maximized is read here and nowhere else.
"""

from dataclasses import dataclass

SPLITS = ("train", "val")  # the splits every epoch is measured on (test: only a checkpoint's evaluation)


@dataclass(frozen=True)
class Metric:
    """A per-epoch number: its name, whether larger is better, and what it measures."""

    name: str
    maximize: bool
    description: str


METRICS = {
    "loss": Metric("loss", False, "mean data loss (without regularization) over the split"),
    "accuracy": Metric("accuracy", True, "fraction of samples whose top-scoring class is the true class"),
}


def monitors(splits=SPLITS):
    """Every `split_metric` name, split by split: train_loss, train_accuracy, val_loss, val_accuracy."""
    return [f"{split}_{metric}" for split in splits for metric in METRICS]


def maximized(monitor):
    """Whether a larger value of `monitor` (`val_accuracy`, `train_loss`, …) is better."""
    return METRICS[monitor.split("_", 1)[1]].maximize

"""The training loop: config → data → network → minibatch updates → run directory.

Reports progress through callbacks and never prints; the CLI decides how to show it.
"""

import math
import sys
import time

import numpy as np

from . import __version__
from .atomic import atomic_write_text
from .checkpoint import save_checkpoint
from .config import config_to_dict, dump_config_yaml
from .data import load_dataset
from .network import build_network
from .optim import clip_by_global_norm, make_optimizer
from .rundir import MetricsLog, prepare_run_dir, write_summary
from .schedules import learning_rate


class Diverged(Exception):
    """Training produced a non-finite loss; the run stopped with its last finite checkpoints intact."""


def seed_streams(seed):
    """Independent generators for (init + dropout, shuffling) derived from the one config seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]


def monitor_of(config, has_val):
    """The metric that picks best.npz (and drives early stopping): name and whether larger is better."""
    es = config.train.early_stopping
    name = es.monitor if es is not None else ("val_loss" if has_val else "train_loss")
    if name.startswith("val_") and not has_val:
        name = name.replace("val_", "train_")
    return name, name.endswith("accuracy")


class Trainer:
    """Trains one config into one run directory. `on_start(trainer)` and `on_epoch(row)` observe progress."""

    def __init__(self, config, run_dir=None, *, force=False, command=None, on_start=None, on_epoch=None):
        self.config = config
        self.dtype = np.dtype(config.train.dtype)
        self.data = load_dataset(config.data, config.seed, self.dtype)
        init_rng, self.shuffle_rng = seed_streams(config.seed)
        self.net = build_network(config, self.data.num_features, self.data.num_classes, init_rng)
        opt = config.optimizer
        self.optimizer = make_optimizer(opt.name, self.net.num_params, self.dtype, momentum=opt.momentum,
                                        decay_rate=opt.decay_rate, beta1=opt.beta1, beta2=opt.beta2, eps=opt.eps)
        self.run_dir = prepare_run_dir(run_dir or config.output.dir, force)
        self.command = command or " ".join(["nncli", *sys.argv[1:]])
        self.on_start, self.on_epoch = on_start, on_epoch
        self.monitor, self.maximize = monitor_of(config, self.data.val is not None)

    def run(self):
        """Train for the configured epochs (or until early stopping); return the summary dict."""
        header = [f"nncli {__version__}", f"command: {self.command}"]
        atomic_write_text(self.run_dir / "config.yaml", dump_config_yaml(self.config, header))
        if self.on_start:
            self.on_start(self)
        train, cfg = self.data.train, self.config.train
        batch = len(train.y) if cfg.batch_size == "full" else min(cfg.batch_size, len(train.y))
        xb = np.empty((batch, self.data.num_features), self.dtype)
        es = cfg.early_stopping
        best_value, best_row, stale, rows, status = None, None, 0, [], "completed"
        started = time.perf_counter()
        with MetricsLog(self.run_dir) as log:
            for epoch in range(cfg.epochs):
                t0 = time.perf_counter()
                lr = learning_rate(self.config.optimizer.lr, epoch, cfg.epochs, **self.config.optimizer.schedule.model_dump())
                try:
                    with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
                        train_loss, train_acc = self._epoch(train, xb, batch, lr, epoch)
                except Diverged as err:
                    status, self.error = "diverged", str(err)
                    break
                row = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc}
                if self.data.val is not None:
                    row["val_loss"], row["val_accuracy"] = self.net.evaluate(self.data.val.chunks())
                row["lr"], row["seconds"] = lr, time.perf_counter() - t0
                log.write(row)
                rows.append(row)
                self._save("checkpoint.npz", row)
                value = row[self.monitor]
                gain = None if best_value is None else (value - best_value if self.maximize else best_value - value)
                stale = 0 if gain is None or gain > (es.min_delta if es else 0.0) else stale + 1
                if gain is None or gain > 0:
                    best_value, best_row = value, row
                    self._save("best.npz", row)
                if self.on_epoch:
                    self.on_epoch(row)
                if es is not None and stale >= es.patience:
                    status = "early_stopped"
                    break
        seconds = time.perf_counter() - started
        samples = len(train.y) * len(rows)
        summary = {
            "status": status, "name": self.config.name, "epochs_run": len(rows), "epochs": cfg.epochs,
            "monitor": self.monitor, "best_epoch": best_row["epoch"] if best_row else None,
            "best": best_row, "final": rows[-1] if rows else None, "wall_seconds": seconds,
            "samples_per_second": samples / seconds if seconds > 0 else None,
        }
        if status == "diverged":
            summary["error"] = self.error
        write_summary(self.run_dir, summary)
        return summary

    def _epoch(self, split, xb, batch, lr, epoch):
        """One pass over the training split in minibatches; returns the running mean loss and accuracy."""
        net, opt = self.net, self.optimizer
        n = len(split.y)
        order = self.shuffle_rng.permutation(n) if self.config.train.shuffle else np.arange(n)
        total_loss, correct = 0.0, 0
        for step, start in enumerate(range(0, n, batch)):
            idx = order[start:start + batch]
            x = split.batch(idx, out=xb[: len(idx)])
            y = split.y[idx]
            loss = net.loss(x, y)
            if not math.isfinite(loss):
                raise Diverged(f"loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                               f"the learning rate ({lr:g}) is probably too high")
            total_loss += loss * len(idx)
            correct += int(np.count_nonzero(net.scores.argmax(axis=1) == y))
            clip_by_global_norm(net.grad, self.config.optimizer.clip_norm)
            opt.step(net.theta, net.grad, lr)
        return total_loss / n, correct / n

    def _save(self, name, row):
        save_checkpoint(
            self.run_dir / name, dict(self.net.params),
            {"config": config_to_dict(self.config), "classes": list(self.data.classes),
             "layer_sizes": self.net.sizes, "epoch": row["epoch"], "metrics": row,
             "feature_names": self.data.feature_names},
            norm_mean=self.data.mean, norm_std=self.data.std)


def train(config, run_dir=None, **kwargs):
    """Train `config` into `run_dir` (default: config.output.dir); return the summary dict."""
    return Trainer(config, run_dir, **kwargs).run()


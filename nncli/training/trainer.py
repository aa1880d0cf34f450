"""The training loop: config → data → network → minibatch updates → run directory.

Reports progress through callbacks and never prints; the CLI decides how to show it. A run can stop at any step
(Ctrl-C, SIGTERM, divergence, kill -9) and resume bit-identically from its checkpoint.npz: the checkpoint holds the
weights, the optimizer state, both random generators, the early-stopping and best.npz bookkeeping, and, when the
stop fell inside an epoch, how far into that epoch it got.
"""

import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from nncli import __version__
from nncli.config import changed_keys, config_to_dict, dump_config_yaml
from nncli.data.dataset import load_dataset
from nncli.errors import ConfigError, RunError
from nncli.nn.metrics import maximized
from nncli.nn.network import build_network
from nncli.optim.clipping import clip_by_global_norm
from nncli.optim.rules import optimizer_from_config
from nncli.optim.schedules import learning_rate
from nncli.training.atomic import atomic_write_text
from nncli.training.checkpoint import load_checkpoint, save_checkpoint
from nncli.training.diagnostics import Diagnostics, initial_loss_warning
from nncli.training.rundir import MetricsLog, RunLock, prepare_run_dir, read_metrics, rewrite_metrics, write_summary

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
PARAMETER_COPIES = 5  # theta, grad, update scratch and up to two optimizer state vectors
FREE_ON_RESUME = ("train.epochs", "output.dir")  # config keys a resume may change without --force


class Diverged(Exception):
    """Training produced a non-finite loss; the run stopped with its last finite checkpoints intact."""


class Interrupted(Exception):
    """A stop was requested (SIGINT/SIGTERM); raised at the end of the current step."""

    def __init__(self, step, partial):
        super().__init__(step)
        self.step, self.partial = step, partial


def seed_streams(seed):
    """Independent generators for (init + dropout, shuffling) derived from the one config seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]


def monitor_of(config, has_val):
    """The metric that picks best.npz (and drives early stopping): name and whether larger is better."""
    es = config.train.early_stopping
    name = es.monitor if es is not None else ("val_loss" if has_val else "train_loss")
    if name.startswith("val_") and not has_val:
        name = name.replace("val_", "train_")
    return name, maximized(name)


def check_model_fits(config, input_dim, num_classes):
    """Refuse, before allocating anything, a model whose parameters and training state cannot fit in memory."""
    sizes = [input_dim, *config.model.hidden, num_classes]
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    need = params * np.dtype(config.train.dtype).itemsize * PARAMETER_COPIES
    try:
        have = os_memory_bytes()
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise ConfigError(
            f"model.hidden: {config.model.hidden} gives {params:,} parameters, which need about "
            f"{need / 2**30:,.1f} GiB to train in {config.train.dtype}; this machine has "
            f"{have / 2**30:,.1f} GiB"
        )


def os_memory_bytes():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def first_nonfinite(net):
    """Where a non-finite value sits, scanning the layers from the input: a parameter, its gradient, or an activation."""
    for i, affine in enumerate(net.affines, start=1):
        if i > 1 and not np.isfinite(affine.x).all():
            return f"the activations entering layer {i}"
        for name in (f"W{i}", f"b{i}"):
            if not np.isfinite(net.params[name]).all():
                return f"{name} (layer {i})"
            if not np.isfinite(net.grads[name]).all():
                return f"the gradient of {name} (layer {i})"
    return f"the scores (layer {len(net.affines)})"


class Trainer:
    """Trains one config into one run directory. `on_start(trainer)` and `on_epoch(row)` observe progress;
    `on_epoch` may return a status string (a sweep's "pruned") to end the run after that epoch.

    With `resume=True` the run directory's checkpoint.npz is continued; `force` then accepts config changes
    other than train.epochs (without resume it replaces an earlier run).
    """

    def __init__(
        self,
        config,
        run_dir=None,
        *,
        force=False,
        resume=False,
        command=None,
        on_start=None,
        on_epoch=None,
        on_warning=None,
    ):
        if run_dir is not None and str(run_dir) != config.output.dir:
            config = config.model_copy(deep=True)
            config.output.dir = str(run_dir)  # the resolved config records where the run really is
        self.config = config
        self.dtype = np.dtype(config.train.dtype)
        self.data = load_dataset(config.data, config.seed, self.dtype)
        check_model_fits(config, self.data.num_features, self.data.num_classes)
        init_rng, self.shuffle_rng = seed_streams(config.seed)
        self.net = build_network(config, self.data.num_features, self.data.num_classes, init_rng)
        self.optimizer = optimizer_from_config(config.optimizer, self.net.num_params, self.dtype)
        self.run_dir = Path(run_dir or config.output.dir)
        self.command = command or " ".join(["nncli", *sys.argv[1:]])
        self.on_start, self.on_epoch, self.on_warning = on_start, on_epoch, on_warning
        self.diagnostics = Diagnostics(self.net) if config.train.diagnostics else None
        self.warnings = []
        self.monitor, self.maximize = monitor_of(config, self.data.val is not None)
        self.stop_signal = None
        self.lock = RunLock(self.run_dir)
        try:
            self.progress = self._restore(force) if resume else self._fresh(force)
        except BaseException:
            self.lock.release()
            raise

    def _fresh(self, force):
        prepare_run_dir(self.run_dir, force)
        self.rows = []
        return {
            "epochs_done": 0,
            "step": 0,
            "partial": [0.0, 0],
            "best_value": None,
            "best_row": None,
            "stale": 0,
            "wall_seconds": 0.0,
            "epoch_rng": self.shuffle_rng.bit_generator.state,
        }

    def _restore(self, force):
        """Load checkpoint.npz and metrics of an earlier run into this trainer; return its progress state."""
        path = self.run_dir / "checkpoint.npz"
        if not path.exists():
            raise RunError(f"{self.run_dir}: nothing to resume (no checkpoint.npz); start it with nncli train CONFIG")
        ckpt = load_checkpoint(path)
        # where the run lives (a moved or copied directory) and how long it runs may change freely
        changed = [k for k in changed_keys(ckpt.config, config_to_dict(self.config)) if k not in FREE_ON_RESUME]
        if changed and not force:
            raise ConfigError(
                [f"{key}: differs from the run being resumed" for key in changed]
                + ["only train.epochs may change on resume; pass --force to accept the others"]
            )
        if self.config.train.epochs < ckpt.epoch:
            raise ConfigError(
                f"train.epochs: {self.config.train.epochs} is fewer than the {ckpt.epoch} epochs this "
                f"run has already trained; resume with train.epochs ≥ {ckpt.epoch}"
            )
        if list(ckpt.layer_sizes) != self.net.sizes or "state" not in ckpt.meta:
            raise RunError(f"{path}: does not match this config's model or holds no training state")
        state = ckpt.meta["state"]
        for name, value in ckpt.params.items():
            self.net.params[name][...] = value
        fresh_optimizer = "optimizer.name" in changed  # forced: the old rule's state means nothing to the new one
        if not fresh_optimizer:
            self.optimizer.load_state(ckpt.optimizer_state, state["optimizer"])
        self.net.rng.bit_generator.state = state["net_rng"]
        self.shuffle_rng.bit_generator.state = state["epoch_rng"]
        rows = [row for row in read_metrics(self.run_dir) if row["epoch"] <= ckpt.epoch]
        if ckpt.epoch and (not rows or rows[-1]["epoch"] != ckpt.epoch):
            rows.append(ckpt.meta["metrics"])  # killed between writing the checkpoint and its metrics row
        rewrite_metrics(self.run_dir, rows)
        self.rows = rows
        if self.diagnostics is not None and "diagnostics" in state:
            self.diagnostics.load_state(state["diagnostics"], rows)
        self.warnings = list(state.get("warnings", []))
        if fresh_optimizer:
            self._warn(
                [
                    f"optimizer.name changed from {ckpt.config['optimizer']['name']} to "
                    f"{self.config.optimizer.name}: the new optimizer starts with fresh state"
                ]
            )
        self._warn([self._schedule_shift(ckpt.config["train"]["epochs"], ckpt.epoch)])
        es = self.config.train.early_stopping
        if es is not None and state.get("stale", 0) >= es.patience and self.config.train.epochs > ckpt.epoch:
            self._warn(
                [
                    f"{self.monitor} has not improved for {state['stale']} epochs (patience {es.patience}), so "
                    f"early stopping ends this run again at epoch {ckpt.epoch}; raise "
                    f"train.early_stopping.patience (with --force) to train on"
                ]
            )
        return dict(state, epochs_done=ckpt.epoch)

    def _schedule_shift(self, old_epochs, done):
        """A warning when a changed train.epochs moves the cosine schedule (which spans the whole run), else None."""
        opt, epochs = self.config.optimizer, self.config.train.epochs
        if opt.schedule.name != "cosine" or old_epochs == epochs or done >= epochs:
            return None
        old, new = (learning_rate(opt.lr, done, n, **opt.schedule.model_dump()) for n in (old_epochs, epochs))
        return (
            f"train.epochs changed from {old_epochs} to {epochs}: the cosine schedule spans the whole run, so "
            f"epoch {done + 1} runs at lr {new:.3g} (the {old_epochs}-epoch curve gives {old:.3g} there)"
        )

    def run(self):
        """Train for the configured epochs (or until early stopping or a stop signal); return the summary dict."""
        handlers = self._install_signal_handlers()
        try:
            return self._run()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self.lock.release()

    def _install_signal_handlers(self):
        """First SIGINT/SIGTERM: finish the current step, checkpoint, stop. A second SIGINT stops at once."""

        def request_stop(signum, frame):
            self.stop_signal = signum
            signal.signal(signal.SIGINT, signal.default_int_handler)

        try:
            return {s: signal.signal(s, request_stop) for s in EXIT_CODES}
        except ValueError:  # not the main thread: no signal handling
            return {}

    def _run(self):
        header = [f"nncli {__version__}", f"command: {self.command}"]
        atomic_write_text(self.run_dir / "config.yaml", dump_config_yaml(self.config, header))
        if self.on_start:
            self.on_start(self)
        train, cfg, p = self.data.train, self.config.train, self.progress
        rows = self.rows
        batch = len(train.y) if cfg.batch_size == "full" else min(cfg.batch_size, len(train.y))
        xb = np.empty((batch, self.data.num_features), self.dtype)
        es = cfg.early_stopping
        status, started = "completed", time.perf_counter()
        if es is not None and es.monitor != self.monitor and p["epochs_done"] == 0 and p["step"] == 0:
            self._warn(
                [
                    f"train.early_stopping.monitor: {es.monitor} needs a validation split and this data has "
                    f"none (data.val_fraction 0); early stopping and best.npz follow {self.monitor} instead"
                ]
            )
        if self.diagnostics is not None and p["epochs_done"] == 0 and p["step"] == 0:
            first = np.arange(min(len(train), 512))
            self.net.forward_loss(train.batch(first), train.y[first], train=False)  # no dropout: no RNG draws
            self._warn([initial_loss_warning(self.net.data_loss, self.config.loss, self.data.num_classes)])
        with MetricsLog(self.run_dir) as log:
            for epoch in range(p["epochs_done"], cfg.epochs):
                if es is not None and p["stale"] >= es.patience:
                    status = "early_stopped"
                    break
                t0 = time.perf_counter()
                lr = learning_rate(
                    self.config.optimizer.lr, epoch, cfg.epochs, **self.config.optimizer.schedule.model_dump()
                )
                p["epoch_rng"] = self.shuffle_rng.bit_generator.state
                try:
                    with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
                        train_loss, train_acc = self._epoch(train, xb, batch, lr, epoch, p["step"], p["partial"])
                        val = self._validate(epoch, lr)
                except Diverged as err:
                    status, self.error = "diverged", f"{err}; first non-finite value in {first_nonfinite(self.net)}"
                    break
                except Interrupted as stop:
                    status, p["step"], p["partial"] = "interrupted", stop.step, stop.partial
                    p["wall_seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    self._save("checkpoint.npz", rows[-1] if rows else {"epoch": 0})
                    break
                p["step"], p["partial"] = 0, [0.0, 0]
                row = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc, **val}
                if self.diagnostics is not None:
                    row["layers"], found = self.diagnostics.end_epoch(row)
                    self._warn(found)
                row["lr"], row["seconds"] = lr, time.perf_counter() - t0
                value = row[self.monitor]
                gain = self._gain(value, p["best_value"])
                p["stale"] = 0 if gain is None or gain > (es.min_delta if es else 0.0) else p["stale"] + 1
                if gain is None or gain > 0:
                    p["best_value"], p["best_row"] = value, row
                    self._save("best.npz", row)
                p["epochs_done"] = epoch + 1
                p["epoch_rng"] = self.shuffle_rng.bit_generator.state
                p["wall_seconds"] += time.perf_counter() - started
                started = time.perf_counter()
                self._save("checkpoint.npz", row)  # the commit point: resume continues from here
                log.write(row)
                rows.append(row)
                stopping = self.stop_signal is not None  # arrived during the epoch's last step: it completed first
                if self.on_epoch and (stop := self.on_epoch(row)):
                    status = stop
                    break
                if stopping and epoch + 1 < cfg.epochs:
                    status = "interrupted"
                    break
        if status not in ("diverged", "interrupted"):
            p["wall_seconds"] += time.perf_counter() - started
        seconds = p["wall_seconds"]
        summary = {
            "status": status,
            "name": self.config.name,
            "epochs_run": len(rows),
            "epochs": cfg.epochs,
            "monitor": self.monitor,
            "best_epoch": p["best_row"]["epoch"] if p["best_row"] else None,
            "best": p["best_row"],
            "final": rows[-1] if rows else None,
            "wall_seconds": seconds,
            "samples_per_second": len(train.y) * len(rows) / seconds if seconds > 0 else None,
        }
        summary["warnings"] = self.warnings
        if status == "diverged":
            summary["error"] = self.error
        if status == "interrupted":
            summary["signal"] = signal.Signals(self.stop_signal).name
            summary["exit_code"] = EXIT_CODES[self.stop_signal]
        write_summary(self.run_dir, summary)
        return summary

    def _epoch(self, split, xb, batch, lr, epoch, start_step=0, partial=(0.0, 0)):
        """One pass over the training split in minibatches; returns the running mean loss and accuracy.

        `start_step` and `partial` (loss sum, correct count so far) continue an epoch that was interrupted.
        """
        net, opt, clip_norm, diagnostics = self.net, self.optimizer, self.config.optimizer.clip_norm, self.diagnostics
        n = len(split.y)
        order = self.shuffle_rng.permutation(n) if self.config.train.shuffle else np.arange(n)
        yb = np.empty(batch, split.y.dtype)
        total_loss, correct = partial
        for step, start in enumerate(range(start_step * batch, n, batch), start=start_step):
            idx = order[start : start + batch]
            x = split.batch(idx, out=xb[: len(idx)])
            y = split.y.take(idx, out=yb[: len(idx)], mode="clip")  # idx is a slice of a permutation: in range
            loss = net.loss(x, y)
            if diagnostics is not None:
                diagnostics.after_forward()
                if start + batch >= n:
                    diagnostics.before_last_update()
            if not math.isfinite(loss):
                raise Diverged(
                    f"loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                    f"the learning rate ({lr:g}) is probably too high"
                )
            total_loss += loss * len(idx)
            correct += int(np.count_nonzero(net.scores.argmax(axis=1) == y))
            if clip_norm is not None:
                clip_by_global_norm(net.grad, clip_norm)
            opt.step(net.theta, net.grad, lr)
            if self.stop_signal is not None and start + batch < n:  # after the last step, the epoch completes first
                raise Interrupted(step + 1, [total_loss, correct])
        if not np.isfinite(net.theta).all():  # the last update overflowed: no later loss would show it this epoch
            raise Diverged(
                f"the weights became non-finite in the last update of epoch {epoch + 1}; "
                f"the learning rate ({lr:g}) is probably too high"
            )
        return total_loss / n, correct / n

    def _validate(self, epoch, lr):
        """{val_loss, val_accuracy} of the epoch's final weights ({} without a validation split); Diverged when the
        loss is not finite (finite weights whose scores overflow on new data)."""
        if self.data.val is None:
            return {}
        loss, accuracy = self.net.evaluate(self.data.val.chunks())
        if not math.isfinite(loss):
            raise Diverged(
                f"the validation loss became {loss} after epoch {epoch + 1} (the scores overflow); "
                f"the learning rate ({lr:g}) is probably too high"
            )
        return {"val_loss": loss, "val_accuracy": accuracy}

    def _gain(self, value, best):
        """How much `value` improves on the best so far; None for the first value. (A non-finite metric never gets
        here: a non-finite loss ends the run as diverged first.)"""
        if best is None:
            return None
        return value - best if self.maximize else best - value

    def _warn(self, messages):
        for message in messages:
            if message:
                self.warnings.append(message)
                if self.on_warning:
                    self.on_warning(message)

    def _save(self, name, row):
        arrays, counters = self.optimizer.state()
        state = dict(
            self.progress, optimizer=counters, net_rng=self.net.rng.bit_generator.state, warnings=self.warnings
        )
        if self.diagnostics is not None:
            state["diagnostics"] = self.diagnostics.state()
        save_checkpoint(
            self.run_dir / name,
            dict(self.net.params),
            {
                "config": config_to_dict(self.config),
                "classes": list(self.data.classes),
                "layer_sizes": self.net.sizes,
                "epoch": row["epoch"],
                "metrics": row,
                "feature_names": self.data.feature_names,
                "state": state,
            },
            norm_mean=self.data.mean,
            norm_std=self.data.std,
            optimizer_state=arrays,
        )


def train(config, run_dir=None, **kwargs):
    """Train `config` into `run_dir` (default: config.output.dir); return the summary dict."""
    return Trainer(config, run_dir, **kwargs).run()

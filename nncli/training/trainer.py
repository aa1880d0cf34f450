"""The training loop: config → data → network → minibatch updates → run directory.

Reports progress through callbacks and never prints; the CLI decides how to show it. A run can stop at any step
(Ctrl-C, SIGTERM, divergence, kill -9) and resume bit-identically from its checkpoint.npz: the checkpoint holds the
weights, the optimizer state, both random generators, the early-stopping and best.npz bookkeeping, and, when the
stop fell inside an epoch, how far into that epoch it got.
"""

import contextlib
import math
import sys
import time
from pathlib import Path

import numpy as np

from nncli import __version__
from nncli.config import config_from_dict, config_to_dict, dump_config_yaml
from nncli.data.dataset import load_dataset
from nncli.data.fingerprint import data_fingerprint
from nncli.errors import OutputError
from nncli.nn.losses import LOSSES
from nncli.nn.network import build_network
from nncli.nn.weights import class_weights
from nncli.optim.clipping import clip_by_global_norm
from nncli.optim.fused import fused_update
from nncli.optim.rules import optimizer_from_config
from nncli.optim.schedules import learning_rate
from nncli.training.atomic import atomic_write_text
from nncli.training.diagnostics import Diagnostics, initial_loss_warning
from nncli.training.divergence import Diverged, first_nonfinite, validate
from nncli.training.lock import RunLock
from nncli.training.preflight import check_model_fits, monitor_fallback, monitor_of, seed_streams
from nncli.training.resume import restore
from nncli.training.rundir import MetricsLog, metric_columns, new_run_id, prepare_run_dir, write_failure, write_summary
from nncli.training.signals import Interrupted, stop_requests, stopped_by
from nncli.training.snapshot import write_trainer_checkpoint
from nncli.training.state import TrainState
from nncli.training.tensorboard import tensorboard_log


class Trainer:
    """Trains one config into one run directory. `on_start(trainer)` and `on_epoch(row)` observe progress;
    `on_epoch` may return a status string (a sweep's "pruned") to end the run after that epoch.

    With `resume=True` the run directory's checkpoint.npz is continued; `force` then accepts config changes
    other than train.epochs (without resume it replaces an earlier run). Given `data` (a Dataset, such as
    nncli.data.dataset.dataset_from_arrays makes) the loop runs in memory: no run directory, lock, checkpoint,
    metrics or summary file is written (`write_checkpoint` writes one on demand), and `run` may be called again
    after raising config.train.epochs to train on.
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
        data=None,
    ):
        if run_dir is not None and str(run_dir) != config.output.dir:
            config = config.model_copy(deep=True)
            config.output.dir = str(run_dir)  # the resolved config records where the run really is
        self.config = config
        self.dtype = np.dtype(config.train.dtype)
        task, in_memory = LOSSES[config.loss].task, data is not None
        self.data = data if in_memory else load_dataset(config.data, config.seed, self.dtype, task)
        self.data_sha256 = None if in_memory else data_fingerprint(config.data)  # eval --data --split checks it
        check_model_fits(config, self.data.num_features, self.data.num_classes)
        init_rng, self.shuffle_rng = seed_streams(config.seed)
        data = self.data
        weights = class_weights(config.loss_weights, data.task, data.classes, data.train.y, data.source)
        self.net = build_network(config, self.data.num_features, self.data.num_classes, init_rng, class_weights=weights)
        self.optimizer = optimizer_from_config(config.optimizer, self.net.num_params, self.dtype)
        self.run_dir = None if in_memory else Path(run_dir or config.output.dir)
        self.command = command or " ".join(["nncli", *sys.argv[1:]])
        self.on_start, self.on_epoch, self.on_warning = on_start, on_epoch, on_warning
        self.diagnostics = Diagnostics(self.net) if config.train.diagnostics else None
        self.warnings = []
        self.monitor, self.maximize = monitor_of(config, self.data.val is not None)
        self.stop_signal = None  # set by SIGINT/SIGTERM: the loop stops after the current step
        self.saved = None  # (epoch, step) of the last checkpoint.npz written or resumed from
        self.rows, self.run_id, self.lock = [], None, None if in_memory else RunLock(self.run_dir)
        self.progress = TrainState(epoch_rng=self.shuffle_rng.bit_generator.state)
        if not in_memory:
            self._open_run_dir(force, resume)

    def _open_run_dir(self, force, resume):
        """Continue the run directory's checkpoint (resume), or prepare the directory for a new run."""
        try:
            if resume:
                self.progress, notes, self.run_id = restore(self, force)
                self._warn(notes)
            else:
                prepare_run_dir(self.run_dir, force)
                self.run_id = new_run_id(self.run_dir)
        except BaseException:
            self.lock.release()
            raise

    def __getstate__(self):
        """Pickled (an in-memory trainer inside a pickled estimator) with its config as a plain dict: the config's
        schedule models are made at import, so pickle cannot find them by name."""
        return {**self.__dict__, "config": config_to_dict(self.config)}

    def __setstate__(self, state):
        self.__dict__.update(state, config=config_from_dict(state["config"]))

    def run(self):
        """Train for the configured epochs (or until early stopping or a stop signal); return the summary dict."""
        if self.run_dir is None:  # a stop ends one call of `run`: an in-memory trainer may be run again
            self.stop_signal = None
        try:
            with stop_requests(self._request_stop):
                return self._run()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _request_stop(self, signum):
        self.stop_signal = signum

    def _run(self):
        """Record the resolved config, train the remaining epochs, and write and return the summary. A write that
        fails (a full disk, …) ends the run with an OutputError saying what is intact and how to go on."""
        header = [f"nncli {__version__}", f"command: {self.command}"]
        self._started = time.perf_counter()  # wall time since the state's wall_seconds were last brought up to date
        p = self.progress
        if self.run_dir is None:  # in memory: nothing is written
            return self._finish(self._started_epochs(contextlib.nullcontext(None)))
        self.saved = (p.epochs_done, p.step) if (self.run_dir / "checkpoint.npz").exists() else None
        try:
            atomic_write_text(self.run_dir / "config.yaml", dump_config_yaml(self.config, header))
            status = self._started_epochs(
                MetricsLog(self.run_dir, metric_columns(self.data.task)), tensorboard_log(self)
            )
            return self._finish(status)
        except OutputError as e:
            raise write_failure(e, self.run_dir, self.saved) from None

    def _started_epochs(self, metrics_log, events_log=contextlib.nullcontext(None)):
        """on_start, the first step's warnings (a new run's only), then the epochs, each row written to
        `metrics_log` and `events_log` (context managers; None inside: no file)."""
        if self.on_start:
            self.on_start(self)
        if self.progress.epochs_done == 0 and self.progress.step == 0:
            self._warn_before_first_step()
        with metrics_log as log, events_log as self.events:
            return self._epochs(log)

    def _warn_before_first_step(self):
        """What a new run warns about once: a validation monitor without validation data, and (with diagnostics)
        an initial loss far from what the loss should start at."""
        self._warn([monitor_fallback(self.config, self.monitor)])
        if self.diagnostics is not None:
            train = self.data.train
            first = np.arange(min(len(train), 512))
            self.net.forward_loss(train.batch(first), train.y[first], train=False)  # no dropout: no RNG draws
            loss = (self.config.loss, self.net.loss_options)
            raw = self.data.task == "regression" and self.data.target_mean is None  # targets in their own units
            targets = np.asarray(train.y[first], np.float64) if raw else None
            self._warn([initial_loss_warning(self.net.data_loss, loss, self.data.num_classes, targets)])

    def _epochs(self, log):
        """Train epoch after epoch from where the state stands; return how the run ended: "completed",
        "early_stopped", "diverged", "interrupted", or the status `on_epoch` returned."""
        cfg, opt, p = self.config.train, self.config.optimizer, self.progress
        train, es = self.data.train, cfg.early_stopping
        batch = len(train.y) if cfg.batch_size == "full" else min(cfg.batch_size, len(train.y))
        xb = np.empty((batch, self.data.num_features), self.dtype)
        for epoch in range(p.epochs_done, cfg.epochs):
            if es is not None and p.stale >= es.patience:
                return "early_stopped"
            t0 = time.perf_counter()
            lr = learning_rate(opt.lr, epoch, cfg.epochs, **opt.schedule.model_dump())
            p.epoch_rng = self.shuffle_rng.bit_generator.state
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected and reported below
                    trained = self._epoch(train, xb, batch, lr, epoch, p.step, p.partial)
                    val = validate(self.net, self.data.val, self.data.tally(), epoch, lr)
            except Diverged as err:
                self.error = f"{err}; first non-finite value in {first_nonfinite(self.net)}"
                return "diverged"
            except Interrupted as stop:
                p.step, p.partial = stop.step, stop.partial
                self._clock()
                self._save("checkpoint.npz", self.rows[-1] if self.rows else {"epoch": 0})
                return "interrupted"
            p.step, p.partial = 0, [0.0, 0]
            row = self._row(epoch, trained, val, lr, t0)
            if self.events is not None:  # before the commit: resume drops the event of an epoch not committed
                self.events.epoch(row)
            self._commit(row, log)
            stopping = self.stop_signal is not None  # arrived during the epoch's last step: it completed first
            if self.on_epoch and (status := self.on_epoch(row)):
                return status
            if stopping and epoch + 1 < cfg.epochs:
                return "interrupted"
        return "completed"

    def _row(self, epoch, trained, val, lr, t0):
        """The metrics row of epoch `epoch` + 1: the task's metrics on train (`trained`) and val, per-layer
        diagnostics, lr and seconds."""
        row = {"epoch": epoch + 1, **{f"train_{name}": value for name, value in trained.items()}, **val}
        if self.diagnostics is not None:
            row["layers"], found = self.diagnostics.end_epoch(row)
            self._warn(found)
        row["lr"], row["seconds"] = lr, time.perf_counter() - t0
        return row

    def _commit(self, row, log):
        """Book a completed epoch: best.npz when the monitor improved, early stopping's count of epochs without an
        improvement of min_delta, then checkpoint.npz (the commit point resume continues from) and the metrics row.
        """
        p, es = self.progress, self.config.train.early_stopping
        value = row[self.monitor]
        gain = self._gain(value, p.best_value)
        p.stale = 0 if gain is None or gain > (es.min_delta if es else 0.0) else p.stale + 1
        if gain is None or gain > 0:
            p.best_value, p.best_row = value, row
            self._save("best.npz", row)
        p.epochs_done = row["epoch"]
        p.epoch_rng = self.shuffle_rng.bit_generator.state
        self._clock()
        self._save("checkpoint.npz", row)
        if log is not None:
            log.write(row)
        self.rows.append(row)

    def _clock(self):
        """Add the wall time since the last call (or the start of `run`) to the state's wall_seconds."""
        now = time.perf_counter()
        self.progress.wall_seconds += now - self._started
        self._started = now

    def _finish(self, status):
        """Write summary.json for a run that ended with `status`, and return it. The time of a diverged epoch is
        not counted (its checkpoint is not written); an interrupted run's was counted at its checkpoint."""
        if status not in ("diverged", "interrupted"):
            self._clock()
        p, rows, seconds = self.progress, self.rows, self.progress.wall_seconds
        summary = {
            "status": status,
            "name": self.config.name,
            "epochs_run": len(rows),
            "epochs": self.config.train.epochs,
            "monitor": self.monitor,
            "best_epoch": p.best_row["epoch"] if p.best_row else None,
            "best": p.best_row,
            "final": rows[-1] if rows else None,
            "wall_seconds": seconds,
            "samples_per_second": len(self.data.train.y) * len(rows) / seconds if seconds > 0 else None,
            "warnings": self.warnings,
        }
        if status == "diverged":
            summary["error"] = self.error
        if status == "interrupted":
            summary.update(stopped_by(self.stop_signal))
        if self.run_dir is not None:
            write_summary(self.run_dir, summary)
        return summary

    def _epoch(self, split, xb, batch, lr, epoch, start_step=0, partial=(0.0, 0)):
        """One pass over the training split in minibatches; returns the task's running metrics (a Tally's).

        `start_step` and `partial` (the Tally's running sums so far) continue an epoch that was interrupted.
        """
        net, opt, clip_norm, diagnostics = self.net, self.optimizer, self.config.optimizer.clip_norm, self.diagnostics
        n = len(split.y)
        order = self.shuffle_rng.permutation(n) if self.config.train.shuffle else np.arange(n)
        yb = np.empty((batch, *split.y.shape[1:]), split.y.dtype)
        tally = self.data.tally()
        if start_step:
            tally.restore(partial, min(start_step * batch, n))
        fused = fused_update(opt, net, lr, clip_norm)  # None: every step is the plain one
        for step, start in enumerate(range(start_step * batch, n, batch), start=start_step):
            idx = order[start : start + batch]
            x = split.batch(idx, out=xb[: len(idx)])
            y = split.y.take(idx, axis=0, out=yb[: len(idx)], mode="clip")  # idx: a slice of a permutation
            last = start + batch >= n
            fold = None if last else fused  # the epoch's last step runs unfused: `grad` then holds its real gradient
            loss = net.loss(x, y, update=fold)
            if diagnostics is not None:
                diagnostics.after_forward()
                if last:
                    diagnostics.before_last_update()
            if not math.isfinite(loss):
                raise Diverged(
                    f"loss became {loss} at epoch {epoch + 1}, step {step + 1}; "
                    f"the learning rate ({lr:g}) is probably too high"
                )
            tally.add(loss, net.scores, y)  # the total loss, regularization included, as train_loss has always been
            if fold is not None:
                fold.finish()  # the weights were updated during the backward pass
            else:
                if clip_norm is not None:
                    clip_by_global_norm(net.grad, clip_norm)
                opt.step(net.theta, net.grad, lr)
            if self.stop_signal is not None and not last:  # after the last step, the epoch completes first
                raise Interrupted(step + 1, tally.state())
        if not np.isfinite(net.theta).all():  # the last update overflowed: no later loss would show it this epoch
            raise Diverged(
                f"the weights became non-finite in the last update of epoch {epoch + 1}; "
                f"the learning rate ({lr:g}) is probably too high"
            )
        return tally.metrics()

    def _gain(self, value, best):
        """How much `value` improves on the best so far; None for the first value (a non-finite one never gets here)."""
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
        """Write RUN_DIR/`name` (nothing in memory): the weights, the resolved config and data facts, and the state to
        resume from."""
        if self.run_dir is None:
            return
        self.write_checkpoint(self.run_dir / name, row, name)
        if name == "checkpoint.npz":
            self.saved = (row["epoch"], self.progress.step)

    def write_checkpoint(self, path, row, name=None):
        """Write a checkpoint of the weights as they stand to `path`, with `row` as its metrics; `name` is the file's
        role in its run directory (checkpoint.npz, best.npz), None outside one."""
        write_trainer_checkpoint(self, path, row, name)


def train(config, run_dir=None, **kwargs):
    """Train `config` into `run_dir` (default: config.output.dir); return the summary dict."""
    return Trainer(config, run_dir, **kwargs).run()

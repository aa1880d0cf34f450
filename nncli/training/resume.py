"""Resuming a run: what a resume request names, and a Trainer restored from the run's checkpoint.npz.

A run resumes in its own directory from its own config.yaml; KEY=VALUE overrides may raise train.epochs (to extend
a finished run) and, only when forced, change anything else. Restoring loads the weights, the optimizer state, both
random generators, the loop state and the metrics rows, so the resumed run continues bit-identically.
"""

from dataclasses import dataclass
from pathlib import Path

from nncli.config import config_to_dict, flatten, load_config
from nncli.errors import CheckpointError, ConfigError, Hint, ResumeRefused, RunError, UsageError, show_value
from nncli.optim.schedules import SCHEDULES, learning_rate
from nncli.training.atomic import atomic_write_json
from nncli.training.checkpoint import load_checkpoint
from nncli.training.checkpoint_meta import norm_of
from nncli.training.rundir import (
    RUN_FILES,
    has_trained,
    metric_columns,
    new_run_id,
    read_metrics,
    read_run_id,
    rewrite_metrics,
)
from nncli.training.state import Fits, TrainState

# config keys a resume may change without force: how long to train, and what is written beside the run
FREE_ON_RESUME = ("train.epochs", "output.dir", "output.tensorboard")


def resolve_run(config=None, overrides=(), out_dir=None, resume=None, study_config=None):
    """What a train request names: (the loaded Config, its overrides, the run directory or None for output.dir).

    A fresh run loads the config file `config` with `overrides`. A resumed one (`resume`, a run directory) loads
    RESUME/config.yaml instead and stays in that directory: `out_dir`, when given, must be the same directory, and
    `config`, when given, must be one more KEY=VALUE override (it is placed first). A seed study is resumed through
    `study_config(resume)`, the path of the config it continues from (nncli.studies.seeds.study_config_path).
    """
    overrides = list(overrides)
    if resume is None:
        if config is None:
            raise UsageError("missing CONFIG, the config file to train", hints=(Hint.TRAIN_OR_RESUME,))
        return load_config(config, overrides), overrides, out_dir
    resume = Path(resume)
    if out_dir is not None and Path(out_dir).resolve() != resume.resolve():
        raise UsageError(
            f"the output directory {out_dir} is not the run being resumed, {resume}: a run resumes in its own directory; "
            f"copy {resume} to {out_dir} first to continue it there"
        )
    if config is not None and "=" not in str(config):
        raise UsageError(
            f"resuming {resume} takes no CONFIG (the run's own config.yaml is used), got {str(config)!r}; "
            f"changes go as KEY=VALUE overrides"
        )
    if config is not None:
        overrides.insert(0, str(config))
    if study_config is not None:
        path = study_config(resume)
    elif not (path := resume / "config.yaml").exists():
        if (resume / "seeds.json").exists():
            raise RunError(f"{resume} is a seed study", hints=(Hint.SEEDS,))
        raise RunError(f"{resume}: nothing to resume (no config.yaml)", hints=(Hint.START_FRESH,))
    return load_config(path, overrides), overrides, resume


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: `epochs_done` epochs and `step` steps of the next, of `epochs`; `stopped` says
    why early stopping has already ended it (None: it has not)."""

    run_dir: Path
    epochs_done: int
    step: int
    epochs: int
    stopped: str | None = None

    @property
    def finished(self):
        """Nothing left to train: every epoch done, or early stopping has ended the run."""
        return self.epochs_done >= self.epochs or self.stopped is not None

    def words(self):
        """'resuming runs/x at epoch 38 + 12 steps, 62 epochs to go', or why there is nothing to do."""
        done, step, epochs = self.epochs_done, self.step, self.epochs
        if self.stopped is not None:
            return f"nothing to do: early stopping ended {self.run_dir} at epoch {done} ({self.stopped})"
        if self.finished:
            return f"nothing to do: {self.run_dir} has already trained its {epochs} epochs (train.epochs {epochs})"
        at = f"epoch {done}" + (f" + {step} step{'s' if step != 1 else ''}" if step else "")
        left = epochs - done
        return f"resuming {self.run_dir} at {at}, {left} epoch{'s' if left != 1 else ''} to go"


def resume_point(trainer):
    """The ResumePoint of a Trainer opened with resume=True."""
    p, es = trainer.progress, trainer.config.train.early_stopping
    stopped = None
    if es is not None and p.stale >= es.patience:
        epochs = f"{p.stale} epoch{'s' if p.stale != 1 else ''}"
        stopped = f"{trainer.monitor} has not improved for {epochs}, patience {es.patience}"
    return ResumePoint(trainer.run_dir, p.epochs_done, p.step, trainer.config.train.epochs, stopped)


def restore(trainer, force):
    """Load the checkpoint.npz and metrics of `trainer`'s run directory into it (weights, optimizer state, both
    generators, metrics rows, warnings, diagnostics); return its TrainState, the warnings this resume adds and the
    run's id.

    Refuses a config that differs from the run's in more than FREE_ON_RESUME unless `force` (a forced change of
    optimizer.name starts the new optimizer's state fresh), a checkpoint of another run or another point of this
    one (best.npz copied over it, an older copy), and a training state that does not check field by field.
    """
    path = trainer.run_dir / "checkpoint.npz"
    if not path.exists():
        raise _nothing_to_resume(trainer.run_dir)
    ckpt = load_checkpoint(path)
    if (norm := norm_of(ckpt.meta)) != trainer.config.model.norm:  # even forced: no weights of one norm fit another
        raise RunError(
            f"{path}: model.norm: the run was trained with {norm}, this config says {trainer.config.model.norm}; "
            f"a run resumes with the normalization it was trained with: train the other one as a new run"
        )
    changed = _changes(ckpt, trainer.config, force, trainer.run_dir)
    if list(ckpt.layer_sizes) != trainer.net.sizes or set(ckpt.params) != set(trainer.net.params):
        raise RunError(f"{path}: does not match this config's model (model.hidden, model.norm)")
    if "state" not in ckpt.meta:
        raise RunError(f"{path}: holds no training state")
    run_id = _run_of(ckpt, trainer.run_dir, path)
    state, carried = _state_of(ckpt, trainer, path, fresh_optimizer := "optimizer.name" in changed)
    trainer.net.load_parameters(ckpt.params, ckpt.running)
    if not fresh_optimizer:  # forced: the old rule's state means nothing to the new one
        trainer.optimizer.load_state(ckpt.optimizer_state, carried.optimizer)
    trainer.net.rng.bit_generator.state = carried.net_rng
    trainer.shuffle_rng.bit_generator.state = state.epoch_rng
    trainer.rows = _metrics_rows(trainer.run_dir, ckpt, metric_columns(trainer.data.task))
    if trainer.diagnostics is not None and carried.diagnostics is not None:
        trainer.diagnostics.load_state(carried.diagnostics, trainer.rows)
    trainer.warnings = carried.warnings
    notes = [_schedule_shift(trainer.config, ckpt.config["train"]["epochs"], ckpt.epoch)]
    if fresh_optimizer:
        notes.insert(
            0,
            f"optimizer.name changed from {ckpt.config['optimizer']['name']} to {trainer.config.optimizer.name}: "
            f"the new optimizer starts with fresh state",
        )
    notes.append(_stopped_again(trainer.config, trainer.monitor, state.stale, ckpt.epoch))
    return state, notes, run_id


def _nothing_to_resume(run_dir):
    """The RunError for a run directory without checkpoint.npz; a run stopped before its first checkpoint (nothing
    trained to lose) is said to start again as it is."""
    if has_trained(run_dir):
        return RunError(f"{run_dir}: nothing to resume (no checkpoint.npz)", hints=(Hint.START_FRESH,))
    return RunError(
        f"{run_dir}: nothing to resume (the run stopped before its first checkpoint, so nothing was trained); "
        f"start it again: its directory is reused as it is",
        hints=(Hint.START_FRESH,),
    )


def _run_of(ckpt, run_dir, path):
    """The run id the resumed run goes on with: its checkpoint's, which must be this directory's (run.json) and
    written as checkpoint.npz; a checkpoint of a run older than run ids gets a new one."""
    run, recorded = ckpt.meta.get("run"), read_run_id(run_dir)
    if run is None:
        return recorded or new_run_id(run_dir)
    if not isinstance(run, dict) or not isinstance(run.get("id"), str) or run.get("file") not in RUN_FILES:
        raise CheckpointError(f"checkpoint {path}: meta.run must be {{id, file}}, got {show_value(run)}")
    if run["file"] != "checkpoint.npz":
        raise RunError(
            f"{path} was written as {run['file']} (epoch {ckpt.epoch}), not as the checkpoint a resume continues "
            f"from: a copy of {run['file']} resumes with stale state; put the run's own checkpoint.npz back"
        )
    if recorded is None:
        atomic_write_json(run_dir / "run.json", {"run_id": run["id"]})  # run.json deleted: the checkpoint knows
    elif recorded != run["id"]:
        raise RunError(
            f"{path} belongs to another run (run id {run['id'][:12]}…, this directory's run.json says "
            f"{recorded[:12]}…): a checkpoint resumes only the run that wrote it"
        )
    return run["id"]


def _state_of(ckpt, trainer, path, fresh_optimizer):
    """The checkpoint's training state, checked field by field against this run, with the optimizer arrays its
    rule needs (unless the optimizer starts fresh)."""
    train = trainer.config.train
    samples = len(trainer.data.train.y)
    batch = samples if train.batch_size == "full" else min(train.batch_size, samples)
    fits = Fits(ckpt.epoch, -(-samples // batch), samples, tuple(trainer.net.sizes[1:-1]))
    try:
        state, carried = TrainState.from_meta(ckpt.meta["state"], fits)
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    missing = [f"opt_{n}" for n in trainer.optimizer.state_names if n not in ckpt.optimizer_state]
    if missing and not fresh_optimizer:
        raise CheckpointError(
            f"checkpoint {path}: has no {', '.join(missing)} array, which its optimizer "
            f"({trainer.config.optimizer.name}) needs to resume"
        )
    return state, carried


def _changes(ckpt, config, force, run_dir):
    """The config keys that differ from the checkpoint's, besides FREE_ON_RESUME; refused unless `force`."""
    # where the run lives (a moved or copied directory) and how long it runs may change freely
    old, new = flatten(ckpt.config), flatten(config_to_dict(config))
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in FREE_ON_RESUME)
    if changed and not force:
        raise ResumeRefused(
            run_dir,
            [(key, old.get(key), new.get(key)) for key in changed],
            "train.epochs and output.tensorboard",
            hints=(Hint.ACCEPT_CHANGES,),
        )
    if config.train.epochs < ckpt.epoch:
        raise ConfigError(
            f"train.epochs: {config.train.epochs} is fewer than the {ckpt.epoch} epochs this "
            f"run has already trained; resume with train.epochs ≥ {ckpt.epoch}"
        )
    return changed


def _metrics_rows(run_dir, ckpt, columns):
    """The metrics rows of epochs 1 to the checkpoint's, rewritten to metrics.jsonl/.csv. A missing last row (killed
    between writing the checkpoint and its row) is repaired from the checkpoint, which holds it; rows beyond the
    checkpoint (an older checkpoint) or more than one missing (a deleted or cut file) are refused."""
    rows, path = read_metrics(run_dir), run_dir / "metrics.jsonl"
    if len(rows) > ckpt.epoch:
        raise RunError(
            f"{run_dir}/checkpoint.npz is of epoch {ckpt.epoch} but {path} records epochs 1 to {len(rows)}: "
            f"the checkpoint is older than the run it sits in (a restored copy?); put its latest checkpoint.npz back"
        )
    if len(rows) == ckpt.epoch - 1 and ckpt.epoch:
        rows.append(ckpt.meta["metrics"])
    elif len(rows) != ckpt.epoch:
        have = f"epochs 1 to {len(rows)}" if rows else "no rows"
        raise RunError(
            f"{path} holds {have} but checkpoint.npz is of epoch {ckpt.epoch}: the rows of the epochs between are "
            f"lost (the file was deleted or cut), so epochs_run would be wrong; restore the file or start again"
        )
    rewrite_metrics(run_dir, rows, columns)
    return rows


def _schedule_shift(config, old_epochs, done):
    """A warning when a changed train.epochs moves a schedule that spans the whole run (cosine), else None."""
    opt, epochs = config.optimizer, config.train.epochs
    if not SCHEDULES[opt.schedule.name].spans_run or old_epochs == epochs or done >= epochs:
        return None
    old, new = (learning_rate(opt.lr, done, n, **opt.schedule.model_dump()) for n in (old_epochs, epochs))
    return (
        f"train.epochs changed from {old_epochs} to {epochs}: the {opt.schedule.name} schedule spans the whole run, so "
        f"epoch {done + 1} runs at lr {new:.3g} (the {old_epochs}-epoch curve gives {old:.3g} there)"
    )


def _stopped_again(config, monitor, stale, done):
    """A warning when more epochs were asked of a run that early stopping has already ended, else None."""
    es = config.train.early_stopping
    if es is None or stale < es.patience or config.train.epochs <= done:
        return None
    return (
        f"{monitor} has not improved for {stale} epochs (patience {es.patience}), so early stopping ends this "
        f"run again at epoch {done}; raise train.early_stopping.patience (forcing the change) to train on"
    )

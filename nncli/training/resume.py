"""Resuming a run: what a resume request names, and a Trainer restored from the run's checkpoint.npz.

A run resumes in its own directory from its own config.yaml; KEY=VALUE overrides may raise train.epochs (to extend
a finished run) and, only when forced, change anything else. Restoring loads the weights, the optimizer state, both
random generators, the loop state and the metrics rows, so the resumed run continues bit-identically.
"""

from dataclasses import replace
from pathlib import Path

from nncli.config import changed_keys, config_to_dict, load_config
from nncli.errors import ConfigError, Hint, RunError
from nncli.optim.schedules import learning_rate
from nncli.training.checkpoint import load_checkpoint
from nncli.training.rundir import read_metrics, rewrite_metrics
from nncli.training.state import TrainState

FREE_ON_RESUME = ("train.epochs", "output.dir")  # config keys a resume may change without force


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
            raise ConfigError("missing CONFIG: the config file to train, or the run directory to resume")
        return load_config(config, overrides), overrides, out_dir
    resume = Path(resume)
    if out_dir is not None and Path(out_dir).resolve() != resume.resolve():
        raise ConfigError(
            f"{out_dir} is not {resume}: a run resumes in its own directory; "
            f"copy {resume} to {out_dir} first to continue it there"
        )
    if config is not None and "=" not in str(config):
        raise ConfigError(
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


def restore(trainer, force):
    """Load the checkpoint.npz and metrics of `trainer`'s run directory into it (weights, optimizer state, both
    generators, metrics rows, warnings, diagnostics); return its TrainState and the warnings this resume adds.

    Refuses a config that differs from the run's in more than FREE_ON_RESUME unless `force`; a forced change of
    optimizer.name starts the new optimizer's state fresh.
    """
    path = trainer.run_dir / "checkpoint.npz"
    if not path.exists():
        raise RunError(f"{trainer.run_dir}: nothing to resume (no checkpoint.npz)", hints=(Hint.START_FRESH,))
    ckpt = load_checkpoint(path)
    changed = _changes(ckpt, trainer.config, force)
    if list(ckpt.layer_sizes) != trainer.net.sizes or "state" not in ckpt.meta:
        raise RunError(f"{path}: does not match this config's model or holds no training state")
    state, carried = TrainState.from_meta(ckpt.meta["state"])
    for name, value in ckpt.params.items():
        trainer.net.params[name][...] = value
    fresh_optimizer = "optimizer.name" in changed  # forced: the old rule's state means nothing to the new one
    if not fresh_optimizer:
        trainer.optimizer.load_state(ckpt.optimizer_state, carried.optimizer)
    trainer.net.rng.bit_generator.state = carried.net_rng
    trainer.shuffle_rng.bit_generator.state = state.epoch_rng
    trainer.rows = _metrics_rows(trainer.run_dir, ckpt)
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
    return replace(state, epochs_done=ckpt.epoch), notes


def _changes(ckpt, config, force):
    """The config keys that differ from the checkpoint's, besides FREE_ON_RESUME; refused unless `force`."""
    # where the run lives (a moved or copied directory) and how long it runs may change freely
    changed = [k for k in changed_keys(ckpt.config, config_to_dict(config)) if k not in FREE_ON_RESUME]
    if changed and not force:
        raise ConfigError(
            [f"{key}: differs from the run being resumed" for key in changed]
            + ["only train.epochs may change on resume"],
            hints=(Hint.ACCEPT_CHANGES,),
        )
    if config.train.epochs < ckpt.epoch:
        raise ConfigError(
            f"train.epochs: {config.train.epochs} is fewer than the {ckpt.epoch} epochs this "
            f"run has already trained; resume with train.epochs ≥ {ckpt.epoch}"
        )
    return changed


def _metrics_rows(run_dir, ckpt):
    """The metrics rows up to the checkpoint's epoch, rewritten to metrics.jsonl/.csv (later rows are dropped)."""
    rows = [row for row in read_metrics(run_dir) if row["epoch"] <= ckpt.epoch]
    if ckpt.epoch and (not rows or rows[-1]["epoch"] != ckpt.epoch):
        rows.append(ckpt.meta["metrics"])  # killed between writing the checkpoint and its metrics row
    rewrite_metrics(run_dir, rows)
    return rows


def _schedule_shift(config, old_epochs, done):
    """A warning when a changed train.epochs moves the cosine schedule (which spans the whole run), else None."""
    opt, epochs = config.optimizer, config.train.epochs
    if opt.schedule.name != "cosine" or old_epochs == epochs or done >= epochs:
        return None
    old, new = (learning_rate(opt.lr, done, n, **opt.schedule.model_dump()) for n in (old_epochs, epochs))
    return (
        f"train.epochs changed from {old_epochs} to {epochs}: the cosine schedule spans the whole run, so "
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

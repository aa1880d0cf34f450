"""The sweep's Optuna study in study.db: opened by the coordinating process only, told results in slot order.

Opening refuses a sweep directory made by a different sweep file (unless forced) and, always, a swept key whose
distribution changed, since Optuna keeps one per parameter for the life of a study. Resume: trials a stopped
coordinator left running are told from their result.json when the worker finished them, else marked failed,
their run directories removed and their params re-queued as new trials that keep their slot and pruning (slots.py);
a result.json that is not a valid result is named in the re-queued trial's error and trained again.
"""

import shutil
from pathlib import Path

import yaml

from nncli.config import changed_keys, config_to_dict
from nncli.config.safe_yaml import ConfigDumper, read_yaml_file
from nncli.errors import ConfigError, Hint, require, show_value
from nncli.studies.slots import AGAINST, SLOT, number_legacy_trials, slot_of
from nncli.studies.sweep_file import sweep_changes
from nncli.studies.trial import DamagedResult, read_result, trial_dir
from nncli.training.atomic import atomic_write_text


def _storage(path):
    """Optuna's SQLite storage in WAL mode with synchronous=NORMAL: every commit survives the process being killed
    (a power cut may lose the last few), and a commit costs no fsync, which dominated small trials."""
    import optuna
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(f"sqlite:///{Path(path).resolve()}")

    def pragmas(connection, record):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()
    return storage


def _at(resolved, key):
    """A resolved sweep file's value at `key`: a top-level key, or space.<dotted config key>."""
    top, _, rest = key.partition(".")
    value = resolved.get(top)
    return (value or {}).get(rest) if rest else value


def _fixed_distributions(optuna, study, sweep):
    """Problems for swept keys whose distribution differs from the one the study has recorded for them: Optuna keeps
    one per parameter for the life of a study (kind, log scale and choice list; a range's bounds may change)."""
    recorded = {}
    for trial in study.get_trials(deepcopy=False):
        recorded.update(trial.distributions)
    problems = []
    for param in sweep.space:
        if param.key in recorded:
            try:
                optuna.distributions.check_distribution_compatibility(recorded[param.key], param.distribution())
            except ValueError as e:
                problems.append(
                    f"space.{param.key}: its distribution (kind, log scale or choice list) cannot change "
                    f"once its sweep has started ({e}); keep the old one"
                )
    return problems


def open_study(sweep, out, force):
    """Create or reopen the study; refuse a sweep directory made by a different sweep file unless `force`."""
    optuna = require("optuna", "sweep", "nncli sweep")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recorded = out / "sweep.yaml"
    resolved = sweep.as_dict()
    base = config_to_dict(sweep.config({}))
    study = optuna.create_study(
        study_name=sweep.stem,
        storage=_storage(out / "study.db"),
        load_if_exists=True,
        direction="maximize" if sweep.maximize else "minimize",
    )
    fixed = _fixed_distributions(optuna, study, sweep)
    if fixed:  # before sweep.yaml is rewritten: the directory stays usable with the old file
        raise ConfigError(fixed, str(sweep.path), "sweep file", hints=(Hint.ELSEWHERE,))
    old = read_yaml_file(recorded, "sweep.yaml is written by nncli sweep") or {} if recorded.exists() else None
    if old is not None and not force:
        changed = [
            f"{k}: {show_value(_at(old, k))} in {out}, now {show_value(_at(resolved, k))}"
            for k in sweep_changes(old, resolved)
        ]
        changed += [
            f"base: {k}: differs from the sweep in {out}"
            for k in changed_keys(study.user_attrs.get("base_config", base), base)
        ]
        if changed:
            raise ConfigError(changed, str(sweep.path), "sweep file", hints=(Hint.ACCEPT_CHANGES, Hint.ELSEWHERE))
    atomic_write_text(recorded, yaml.dump(resolved, Dumper=ConfigDumper, sort_keys=False, allow_unicode=True))
    study.set_user_attr("base_config", base)
    return study


def tell(study, trial, result):
    """Record a worker's result in the study: the per-epoch curve, then complete / pruned / failed."""
    from optuna.trial import TrialState

    for epoch, value in result.get("intermediate", {}).items():
        trial.report(value, int(epoch))
    trial.set_user_attr("result", {k: result.get(k) for k in ("mean", "std", "epochs", "values", "error")})
    trial.set_user_attr("curves", result.get("curves") or [])  # per seed {epoch: metric}, for the pruner
    if result["state"] == "complete":
        study.tell(trial, result["mean"])
    else:
        study.tell(trial, state=TrialState.PRUNED if result["state"] == "pruned" else TrialState.FAIL)


def recover(study, sweep, out):
    """Settle trials a stopped coordinator left running: tell finished ones, re-queue the rest in their slots."""
    import optuna
    from optuna.trial import TrialState

    number_legacy_trials(study, sweep)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        try:
            done, damage = read_result(trial_dir(out, frozen.number) / "result.json", frozen.number), None
        except DamagedResult as e:  # repaired by training the trial again
            done, damage = None, str(e)
        if done is not None:
            tell(study, trial, done)
            continue
        slot = slot_of(study, frozen)
        params = frozen.system_attrs.get("fixed_params") or frozen.params  # a kill can land while Optuna asks
        proposed = slot is not None and all(p.key in params for p in sweep.space)
        trial.set_user_attr("interrupted", True)  # does not count towards `trials`; its re-run holds its slot
        trial.set_user_attr(
            "result",
            {
                "error": f"interrupted{'; ' + damage if damage else ''}; its params were re-queued as a new trial"
                if proposed
                else "interrupted while its params were being proposed; nothing to re-queue"
            },
        )
        study.tell(trial, state=TrialState.FAIL)
        shutil.rmtree(trial_dir(out, frozen.number), ignore_errors=True)
        if proposed:
            kept = {SLOT: slot, AGAINST: frozen.user_attrs.get(AGAINST)}
            study.enqueue_trial(params, user_attrs=kept, skip_if_exists=False)


def counted(study):
    """Trials that count towards `trials`: finished, and not failed by an interruption (those are re-queued)."""
    return sum(t.state.is_finished() and not t.user_attrs.get("interrupted") for t in study.get_trials(deepcopy=False))

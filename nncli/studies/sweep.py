"""Hyperparameter sweeps: Optuna proposes configs, workers train them, the sweep directory keeps every result.

Layout of a sweep directory: sweep.yaml (the resolved sweep file), study.db (Optuna's SQLite storage, opened by the
coordinating process only), trials.csv and best.yaml (rewritten after every finished trial), and one directory per
trial, trial-0007/seed-0/, each a normal run directory.

How a sweep runs, and why it is reproducible:
- The coordinator asks Optuna for trial n only after telling it the result of trial n - window (window = 2 x
  workers), and tells results strictly in trial order. The sequence of ask/tell calls is therefore fixed, and the
  sampler (seeded per trial from sampler_seed and n) sees the same history however fast each worker was: the same
  sweep file, sampler seed and worker count give the same params and, trials being deterministic per config and
  seed, the same results, on local processes or on a Dask cluster.
- A trial trains its seeds one after another in one worker. The value of a seed is the best value of the metric
  over its epochs (maximum accuracy, minimum loss, as the course's Solver keeps its best validation accuracy); the
  trial's value is the mean over seeds, and its curve, reported to Optuna, is the per-epoch mean over the seeds.
- Median pruning happens inside the worker, which never opens study.db: at submission the trial gets the
  per-seed curves of the trials completed so far, and after each epoch (but the last) of seed s, Optuna's
  MedianPruner, on an in-memory study of the completed trials' seed-s curves, compares this seed's best value so far
  with their median at that epoch (seed against seed: each seed draws its own val split). A pruned seed prunes the
  trial; its remaining seeds are skipped.
- A trial that diverges or raises is told failed with its error; a worker that dies has its trial retried once.
- Where trials run is an executor's business (executors.py): a fresh local process per trial, or a task on a
  Dask distributed cluster.
- Resume: trials left running in study.db are told from their result.json when the worker finished them, else
  marked failed, their run directories removed and their params re-queued as new trials.
"""

import csv
import io
import json
import os
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import yaml

from nncli.config.safe_yaml import ConfigDumper, read_yaml_file
from nncli.config.schema import changed_keys, config_from_dict, config_to_dict, dump_config_yaml
from nncli.errors import ConfigError, NncliError, RunError, require, show_value
from nncli.studies.executors import DaskExecutor, LocalExecutor, WorkerLost
from nncli.studies.space import sweep_changes
from nncli.studies.stats import mean_and_std
from nncli.training.atomic import atomic_write_json, atomic_write_text
from nncli.training.rundir import holds_run

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
LOCK_WAIT_SECONDS = 10


def trial_dir(out, number):
    return Path(out) / f"trial-{number:04d}"


class _MedianPrune:
    """Optuna's MedianPruner on an in-memory study of the completed trials' curves ({epoch: metric})."""

    def __init__(self, prune, maximize):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=prune["startup_trials"], n_warmup_steps=prune["warmup_epochs"]
        )
        study = optuna.create_study(direction="maximize" if maximize else "minimize", pruner=pruner)
        for curve in prune["curves"]:
            values = {int(e): v for e, v in curve.items()}
            study.add_trial(optuna.trial.create_trial(value=values[max(values)], intermediate_values=values))
        self.trial = study.ask()

    def __call__(self, epoch, value):
        self.trial.report(value, epoch)
        return self.trial.should_prune()


def _limit_blas():
    """One BLAS thread per worker: N workers on N cores must not each start N threads."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _train(config, run_dir, on_epoch, number):
    """Train one seed, waiting briefly for a run directory still locked by a dying earlier attempt."""
    import time

    from nncli.training.trainer import train

    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return train(config, run_dir, force=True, command=f"nncli sweep (trial {number})", on_epoch=on_epoch)
        except RunError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _train_seed(task, i, seed, out):
    """Train seed number `i` of a trial into out/seed-K; returns (summary, {epoch: metric}).

    Pruning compares this seed with the same seed of the completed trials (each seed has its own split).
    """
    metric, prune = task["metric"], None
    if task["prune"]:
        curves = [c[i] for c in task["prune"]["curves"] if c and len(c) > i]
        prune = _MedianPrune(dict(task["prune"], curves=curves), task["maximize"])
    curve = {}
    try:
        config = config_from_dict(dict(task["config"], seed=seed, name=f"{out.name}-seed-{seed}"))
    except Exception as e:  # a crashing trial is a result, not the end of the sweep
        return _failure(e), curve

    def on_epoch(row):
        curve[row["epoch"]] = row[metric]
        if task.get("parent_pid") and os.getppid() != task["parent_pid"]:
            return "orphaned"
        if prune is not None and row["epoch"] < config.train.epochs and prune(row["epoch"], row[metric]):
            return "pruned"
        return None

    try:
        return _train(config, out / f"seed-{seed}", on_epoch, task["number"]), curve
    except Exception as e:
        return _failure(e), curve


def _failure(e):
    return {"status": "failed", "error": str(e) if isinstance(e, NncliError) else f"{type(e).__name__}: {e}"}


def run_trial(task):
    """Train one trial (every seed) in a worker; returns the result dict, also written to the trial's result.json.

    `task`: number, config (resolved dict), seeds, trial_dir, metric, maximize, prune (None or options + curves),
    parent_pid (local workers stop when their coordinator is gone).
    """
    _limit_blas()
    out = Path(task["trial_dir"])
    out.mkdir(parents=True, exist_ok=True)  # before any seed: a trial that fails at once still records why
    (out / "result.json").unlink(missing_ok=True)
    result = {
        "number": task["number"],
        "params": task["params"],
        "state": "complete",
        "values": [],
        "curves": [],
        "epochs": 0,
        "error": None,
    }
    for i, seed in enumerate(task["seeds"]):
        summary, curve = _train_seed(task, i, seed, out)
        if summary["status"] in ("interrupted", "orphaned"):
            return dict(result, state="interrupted")
        result["epochs"] = max(result["epochs"], len(curve)) if summary["status"] != "pruned" else len(curve)
        if summary["status"] in ("diverged", "failed"):
            result.update(state="failed", error=f"seed {seed}: {summary['error']}")
            break
        result["curves"].append(curve)
        best = max if task["maximize"] else min
        result["values"].append(best(curve.values()))
        if summary["status"] == "pruned":
            result["state"] = "pruned"
            break
    values = result["values"]
    result["mean"] = result["std"] = None
    if values and result["state"] == "complete":
        result["mean"], result["std"] = mean_and_std([float(v) for v in values])  # std None: one seed, no spread
    epochs = sorted({e for c in result["curves"] for e in c})
    result["intermediate"] = {e: float(np.mean([c[e] for c in result["curves"] if e in c])) for e in epochs}
    atomic_write_json(out / "result.json", result)
    return result


class _Lock:
    """One coordinator per sweep directory: a POSIX record lock on .lock, dropped by the OS when the process dies.

    Not flock: a forked worker would share an flock, keeping a killed sweep's directory locked while it lives.
    """

    def __init__(self, out):
        import fcntl

        self.file = open(Path(out) / ".lock", "a+", encoding="utf-8")
        try:
            fcntl.lockf(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise RunError(f"{out} is in use by another nncli sweep; wait for it or choose another --out") from None

    def release(self):
        self.file.close()


def _sampler(sweep, index):
    """The Optuna sampler for the `index`-th ask, seeded from (sampler_seed, index) so a resumed sweep continues
    the sequence instead of replaying it. The grid sampler keeps sampler_seed: it shuffles the grid with it."""
    import optuna

    seed = int(np.random.SeedSequence([sweep.sampler_seed, index]).generate_state(1)[0])
    if sweep.method == "grid":

        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, *args):  # it would call study.stop(), which only optimize() allows
                pass

        return Grid({p.key: p.encoded for p in sweep.space}, seed=sweep.sampler_seed)  # its order of the grid
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, sweep.trials // 3)))


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
                    f"once its sweep has started ({e})"
                )
    return problems


def _open_study(sweep, out, force):
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
        raise ConfigError(
            fixed + ["keep the old distribution, or start a new sweep with --out DIR"], str(sweep.path), "sweep file"
        )
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
            raise ConfigError(
                changed + ["pass --force to continue it with the new settings, or --out DIR to start afresh"],
                str(sweep.path),
                "sweep file",
            )
    atomic_write_text(recorded, yaml.dump(resolved, Dumper=ConfigDumper, sort_keys=False, allow_unicode=True))
    study.set_user_attr("base_config", base)
    return study


def _tell(study, trial, result):
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


def _recover(study, sweep, out):
    """Settle trials a stopped coordinator left running: tell finished ones, re-queue the rest."""
    import optuna
    from optuna.trial import TrialState

    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        path = trial_dir(out, frozen.number) / "result.json"
        done = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        if done and done.get("number") == frozen.number and done.get("state") in ("complete", "pruned", "failed"):
            _tell(study, trial, done)
            continue
        trial.set_user_attr("interrupted", True)  # does not count towards `trials`
        proposed = all(p.key in frozen.params for p in sweep.space)  # a kill can land while Optuna asks
        trial.set_user_attr(
            "result",
            {
                "error": "interrupted; its params were re-queued as a new trial"
                if proposed
                else "interrupted while its params were being proposed; nothing to re-queue"
            },
        )
        study.tell(trial, state=TrialState.FAIL)
        shutil.rmtree(trial_dir(out, frozen.number), ignore_errors=True)
        if proposed:
            study.enqueue_trial(frozen.params, skip_if_exists=False)


def counted(study):
    """Trials that count towards `trials`: finished, and not failed by an interruption (those are re-queued)."""
    return sum(t.state.is_finished() and not t.user_attrs.get("interrupted") for t in study.get_trials(deepcopy=False))


def run_sweep(sweep, *, workers=None, scheduler=None, force=False, on_trial=None):
    """Run (or resume, or just report) a sweep; returns its trial rows (see `trial_rows`), best first.

    `on_trial(row)` is called as each trial is told. KeyboardInterrupt propagates after the workers are stopped;
    everything finished is already in study.db, trials.csv and the trial directories.
    """
    out = Path(sweep.output)
    what = "a training run" if holds_run(out) else "a seed study" if (out / "seeds.json").exists() else None
    if what or (out.exists() and not out.is_dir()):
        raise RunError(
            f"{out} {'holds ' + what if what else 'is a file'}; a sweep needs a directory of its own: "
            f"choose another --out (or output in the sweep file)"
        )
    out.mkdir(parents=True, exist_ok=True)
    lock = _Lock(out)
    try:
        study = _open_study(sweep, out, force)
        _recover(study, sweep, out)
        remaining = sweep.trials - counted(study)
        if remaining > 0:
            executor = DaskExecutor(scheduler) if scheduler else LocalExecutor(workers or os.cpu_count() or 1)
            try:
                _search(study, sweep, out, executor, remaining, workers or executor.workers, on_trial)
            finally:
                executor.close()
        rows = write_results(study, sweep, out)
    finally:
        lock.release()
    return rows


def _search(study, sweep, out, executor, remaining, workers, on_trial):
    """Ask, submit, and tell in trial order, keeping at most 2 x workers trials between ask and tell."""
    from optuna.trial import TrialState

    distributions = {p.key: p.distribution() for p in sweep.space}
    window, pending, retried = 2 * workers, deque(), set()

    def submit(trial, params):
        curves = [t.user_attrs.get("curves") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        task = {
            "number": trial.number,
            "params": params,
            "seeds": sweep.seeds,
            "metric": sweep.metric,
            "config": config_to_dict(sweep.config(params)),
            "maximize": sweep.maximize,
            "trial_dir": str(trial_dir(out, trial.number).resolve()),
            "parent_pid": os.getpid() if isinstance(executor, LocalExecutor) else None,
            "prune": dict(sweep.prune, curves=curves) if sweep.prune else None,
        }
        return executor.submit(run_trial, task)

    while remaining > 0 or pending:
        if remaining > 0 and len(pending) < window:
            asked = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
            study.sampler = _sampler(sweep, asked)
            trial = study.ask(distributions)
            params = {p.key: p.decode(trial.params[p.key]) for p in sweep.space}
            pending.append([trial, params, submit(trial, params)])
            remaining -= 1
            continue
        trial, params, future = pending[0]
        executor.wait(future)
        try:
            result = executor.result(future)
        except WorkerLost as e:
            if trial.number not in retried:
                retried.add(trial.number)
                pending[0][2] = submit(trial, params)
                continue
            result = {"state": "failed", "error": f"{e}, twice"}
        except Exception as e:
            result = {"state": "failed", "error": str(e)}
        if result["state"] == "interrupted":
            raise KeyboardInterrupt  # the worker was stopped by a signal meant for the whole sweep
        pending.popleft()
        _tell(study, trial, result)
        rows = write_results(study, sweep, out)
        if on_trial:
            on_trial(next(r for r in rows if r["number"] == trial.number))


def trial_rows(study, sweep):
    """One dict per finished trial: number, state, mean, std, epochs, params {key: value}, error; best first,
    then pruned, then failed."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name not in STATES:
            continue
        result = t.user_attrs.get("result", {})
        params = {p.key: p.decode(t.params[p.key]) for p in sweep.space if p.key in t.params}
        rows.append(
            {
                "number": t.number,
                "state": STATES[t.state.name],
                "mean": result.get("mean"),
                "std": result.get("std"),
                "epochs": result.get("epochs"),
                "params": params,
                "error": result.get("error"),
            }
        )
    sign = -1 if sweep.maximize else 1
    order = {"complete": 0, "pruned": 1, "failed": 2}
    return sorted(
        rows, key=lambda r: (order[r["state"]], sign * r["mean"] if r["mean"] is not None else 0, r["number"])
    )


def write_results(study, sweep, out):
    """Rewrite trials.csv (in trial order) and best.yaml; return the trial rows, best first."""
    rows = trial_rows(study, sweep)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["number", "state", "mean", "std", "epochs", *(p.key for p in sweep.space), "error"])
    for r in sorted(rows, key=lambda r: r["number"]):
        values = [
            json.dumps(v) if isinstance(v, (list, dict)) else v
            for v in (r["params"].get(p.key, "") for p in sweep.space)
        ]
        writer.writerow(
            [
                r["number"],
                r["state"],
                r["mean"] if r["mean"] is not None else "",
                r["std"] if r["std"] is not None else "",
                r["epochs"] or 0,
                *values,
                r["error"] or "",
            ]
        )
    atomic_write_text(out / "trials.csv", text.getvalue())
    if rows and rows[0]["state"] == "complete":
        best = rows[0]
        name = f"{sweep.stem}-best"
        config = sweep.config(best["params"], name=name, output={"dir": f"runs/{name}"})
        spread = f" ± {best['std']:.4f}" if best["std"] is not None else ""
        header = [
            f"best of sweep {sweep.path} (trial {best['number']}: {sweep.metric} "
            f"{best['mean']:.4f}{spread} over seeds {sweep.seeds})"
        ]
        atomic_write_text(out / "best.yaml", dump_config_yaml(config, header))
    return rows

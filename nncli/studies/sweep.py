"""Hyperparameter sweeps: Optuna proposes configs, workers train them, the sweep directory keeps every result.

Layout of a sweep directory: sweep.yaml (the resolved sweep file), study.db (Optuna's SQLite storage, opened by the
coordinating process only: optuna_study.py), trials.csv and best.yaml (rewritten after every finished trial:
sweep_results.py), and one directory per trial, trial-0007/seed-0/, each a normal run directory (trial.py).

How a sweep runs, and why it is reproducible:
- The coordinator asks Optuna for trial n only after telling it the result of trial n - window (window = 2 x
  workers), and tells results strictly in trial order. The sequence of ask/tell calls is therefore fixed, and the
  sampler (seeded per trial from sampler_seed and n) sees the same history however fast each worker was: the same
  sweep file, sampler seed and worker count give the same params and, trials being deterministic per config and
  seed, the same results, on local processes or on a Dask cluster.
- A worker trains a trial's seeds and prunes it without opening study.db (trial.py says how).
- A trial that diverges or raises is told failed with its error; a worker that dies has its trial retried once.
- Where trials run is an executor's business (executors.py): a fresh local process per trial, or a task on a
  Dask distributed cluster.
- Resume: trials left running in study.db are settled first (optuna_study.recover), then the search goes on.
"""

import os
from collections import deque
from pathlib import Path

from nncli.config import config_to_dict
from nncli.errors import Hint, RunError
from nncli.studies.executors import DaskExecutor, LocalExecutor, WorkerLost
from nncli.studies.optuna_study import counted, open_study, recover, sampler, tell
from nncli.studies.sweep_results import write_results
from nncli.studies.trial import run_trial, trial_dir
from nncli.training.rundir import holds_run


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
            raise RunError(
                f"{out} is in use by another nncli sweep until it finishes", hints=(Hint.ELSEWHERE,)
            ) from None

    def release(self):
        self.file.close()


def run_sweep(sweep, *, workers=None, scheduler=None, force=False, on_trial=None):
    """Run (or resume, or just report) a sweep; returns its trial rows (see `sweep_results.trial_rows`), best first.

    `on_trial(row)` is called as each trial is told. KeyboardInterrupt propagates after the workers are stopped;
    everything finished is already in study.db, trials.csv and the trial directories.
    """
    out = Path(sweep.output)
    what = "a training run" if holds_run(out) else "a seed study" if (out / "seeds.json").exists() else None
    if what or (out.exists() and not out.is_dir()):
        raise RunError(
            f"{out} {'holds ' + what if what else 'is a file'}; a sweep needs a directory of its own "
            f"(output in the sweep file names it)",
            hints=(Hint.ELSEWHERE,),
        )
    out.mkdir(parents=True, exist_ok=True)
    lock = _Lock(out)
    try:
        study = open_study(sweep, out, force)
        recover(study, sweep, out)
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


def _task(study, sweep, out, trial, params, local):
    """What a worker needs to run `trial` (see `trial.run_trial`), with the curves of the trials completed so far for
    its pruner; a local worker also gets this process's id, to stop when its coordinator is gone."""
    from optuna.trial import TrialState

    curves = [t.user_attrs.get("curves") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return {
        "number": trial.number,
        "params": params,
        "seeds": sweep.seeds,
        "metric": sweep.metric,
        "config": config_to_dict(sweep.config(params)),
        "maximize": sweep.maximize,
        "trial_dir": str(trial_dir(out, trial.number).resolve()),
        "parent_pid": os.getpid() if local else None,
        "prune": dict(sweep.prune, curves=curves) if sweep.prune else None,
    }


def _search(study, sweep, out, executor, remaining, workers, on_trial):
    """Ask, submit, and tell in trial order, keeping at most 2 x workers trials between ask and tell."""
    from optuna.trial import TrialState

    distributions = {p.key: p.distribution() for p in sweep.space}
    window, pending, retried = 2 * workers, deque(), set()

    def submit(trial, params):
        return executor.submit(run_trial, _task(study, sweep, out, trial, params, isinstance(executor, LocalExecutor)))

    while remaining > 0 or pending:
        if remaining > 0 and len(pending) < window:
            asked = sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
            study.sampler = sampler(sweep, asked)
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
        tell(study, trial, result)
        rows = write_results(study, sweep, out)
        if on_trial:
            on_trial(next(r for r in rows if r["number"] == trial.number))

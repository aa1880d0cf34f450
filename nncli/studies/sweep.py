"""Hyperparameter sweeps: Optuna proposes configs, workers train them, the sweep directory keeps every result.

Layout of a sweep directory: sweep.yaml (the resolved sweep file), study.db (Optuna's SQLite storage, opened by the
coordinating process only: optuna_study.py), trials.csv and best.yaml (rewritten after every finished trial:
sweep_results.py), and one directory per trial, trial-0007/seed-0/, each a normal run directory (trial.py).

How a sweep runs, and why it is reproducible, even after an interruption or a retry:
- Each trial holds a slot, its place in the uninterrupted sweep (slots.py). Slot n is handed out once slots
  0..n - window are told (window = 2 x workers), its params proposed from exactly their results by a sampler seeded
  from (sampler_seed, n), and it is pruned against the complete ones among them; results are told in slot order.
  What a slot gets is therefore a function of trial order and results only: the same sweep file, sampler seed and
  worker count give the same params, states, values and epochs, on local processes or a Dask cluster, in one go
  or interrupted and resumed any number of times.
- A worker trains a trial's seeds and prunes it without opening study.db (trial.py says how).
- A trial that diverges or raises is told failed with its error; a worker that dies has its trial retried once,
  with the task it was first given.
- Where trials run is an executor's business (executors.py): a fresh local process per trial, or a task on a
  Dask distributed cluster.
- Resume: trials left running in study.db are settled first (optuna_study.recover: told from their result.json, or
  re-queued in their slot), then the search goes on.
"""

import os
from collections import deque
from pathlib import Path

from nncli.config import config_to_dict
from nncli.errors import Hint, RunError
from nncli.studies.executors import DaskExecutor, LocalExecutor, WorkerLost
from nncli.studies.optuna_study import counted, open_study, recover, tell
from nncli.studies.slots import AGAINST, SLOT, Proposals, next_slot, pruning_curves, slot_of
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

    `on_trial(row)` is called as each trial is told, the row with the trial's `warnings` added. KeyboardInterrupt
    propagates after the workers are stopped; everything finished is already in study.db, trials.csv and the trial
    directories.
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
        if counted(study) < sweep.trials:
            executor = DaskExecutor(scheduler) if scheduler else LocalExecutor(workers or os.cpu_count() or 1)
            try:
                _search(study, sweep, out, executor, workers or executor.workers, on_trial)
            finally:
                executor.close()
        rows = write_results(study, sweep, out)
    finally:
        lock.release()
    return rows


def _task(study, sweep, out, trial, params, local):
    """What a worker needs to run `trial` (see `trial.run_trial`), with the curves of the trials its slot is pruned
    against (slots.py); a local worker also gets this process's id, to stop when its coordinator is gone."""
    curves = pruning_curves(study, trial.user_attrs.get(AGAINST) or [])
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


def _hand_out(study, sweep, out, executor, slot=None, proposals=None):
    """Ask study.db for the next trial, submit it, and return [trial, params, task, future].

    With `slot`, the trial is that new slot's, proposed by `proposals` and enqueued first (params, slot and the
    trials it is pruned against written in one step); without, it is a trial re-queued by a resume.
    """
    distributions = {p.key: p.distribution() for p in sweep.space}
    if slot is not None:
        encoded, against = proposals.propose(slot)
        study.enqueue_trial(encoded, user_attrs={SLOT: slot, AGAINST: against}, skip_if_exists=False)
    trial = study.ask(distributions)
    params = {p.key: p.decode(trial.params[p.key]) for p in sweep.space}
    task = _task(study, sweep, out, trial, params, isinstance(executor, LocalExecutor))
    return [trial, params, task, executor.submit(run_trial, task)]


def _slot_or_first(study, trial):
    """The slot a pending trial holds; -1 for a trial of an earlier nncli that holds none (it is waited for first)."""
    slot = slot_of(study, trial)
    return -1 if slot is None else slot


def _search(study, sweep, out, executor, workers, on_trial):
    """Hand out trials in slot order, each once slots 0..n - window are told (window = 2 x workers), and tell in
    slot order; a lost trial is retried once with the very task it was first given."""
    from optuna.trial import TrialState

    window, retried = 2 * workers, set()
    proposals = Proposals(study, sweep, window)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))  # re-queued, or enqueued and never asked
    handed = [_hand_out(study, sweep, out, executor) for _ in waiting]  # study.ask takes them in trial-number order
    pending = deque(sorted(handed, key=lambda entry: _slot_or_first(study, entry[0])))  # told in slot order
    slot = next_slot(study)
    while slot < sweep.trials or pending:
        if slot < sweep.trials and (not pending or _slot_or_first(study, pending[0][0]) > slot - window):
            pending.append(_hand_out(study, sweep, out, executor, slot, proposals))
            slot += 1
            continue
        trial, params, task, future = pending[0]
        executor.wait(future)
        try:
            result = executor.result(future)
        except WorkerLost as e:
            if trial.number not in retried:
                retried.add(trial.number)
                pending[0][3] = executor.submit(run_trial, task)
                continue
            result = {"state": "failed", "error": f"{e}, twice"}
        except Exception as e:
            result = {"state": "failed", "error": str(e)}
        if result["state"] == "interrupted":
            raise KeyboardInterrupt  # the worker was stopped by a signal meant for the whole sweep
        pending.popleft()
        tell(study, trial, result)
        rows = write_results(study, sweep, out)
        if on_trial:  # the trial's row, with the warnings its seeds' runs gave ("seed K: …")
            on_trial(dict(next(r for r in rows if r["number"] == trial.number), warnings=result.get("warnings", [])))

"""One sweep trial, as a worker runs it: train the trial's config once per seed, pruning against finished trials.

A trial trains its seeds one after another. The value of a seed is the best value of the metric over its epochs
(maximum accuracy, minimum loss, as the course's Solver keeps its best validation accuracy); the trial's value is
the mean over seeds, and its curve, reported to Optuna, is the per-epoch mean over the seeds.

Median pruning happens here, in the worker, which never opens study.db: at submission the trial gets the per-seed
curves of the trials completed so far, and after each epoch (but the last) of seed s, Optuna's MedianPruner, on an
in-memory study of the completed trials' seed-s curves, compares this seed's best value so far with their median
at that epoch (seed against seed: each seed draws its own val split). A pruned seed prunes the trial; its
remaining seeds are skipped.
"""

import os
import time
from pathlib import Path

import numpy as np

from nncli.config import config_from_dict
from nncli.errors import NncliError, RunError
from nncli.studies.stats import mean_and_std
from nncli.training.atomic import atomic_write_json
from nncli.training.tensorboard import log_hparams

LOCK_WAIT_SECONDS = 10


def trial_dir(out, number):
    """The run directories of trial `number` of the sweep in `out`: out/trial-0007/seed-K/."""
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
        summary = _train(config, out / f"seed-{seed}", on_epoch, task["number"])
        if config.output.tensorboard:  # TensorBoard's HParams view compares the trials
            log_hparams(out / f"seed-{seed}", {**task["params"], "seed": seed}, summary)
        return summary, curve
    except Exception as e:
        return _failure(e), curve


class DamagedResult(ValueError):
    """A result.json that is not the result of the trial it belongs to: named by path, with what is wrong."""


def _check_result(result, number):
    """What is wrong with a parsed result.json for trial `number`, or None."""
    if not isinstance(result, dict):
        return f"expected a JSON object, got {type(result).__name__}"
    if result.get("number") != number:
        return f"number is {result.get('number')!r}, expected {number}"
    if result.get("state") not in ("complete", "pruned", "failed"):
        return f"state {result.get('state')!r} is not one of complete, pruned, failed"
    number_or_none = lambda v: v is None or isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if not all(number_or_none(result.get(k)) for k in ("mean", "std")):
        return "mean and std must be numbers or null"
    if result["state"] == "complete" and result.get("mean") is None:
        return "a complete trial needs a mean"
    epochs = result.get("epochs")
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0):
        return f"epochs {epochs!r} is not a whole number >= 0"
    curves, intermediate = result.get("curves"), result.get("intermediate", {})
    if not (isinstance(curves, list) and all(isinstance(c, dict) for c in curves) and isinstance(intermediate, dict)):
        return "curves must be a list of {epoch: value} and intermediate a mapping"
    for curve in (*curves, intermediate):
        if not all(str(e).isdigit() and number_or_none(v) and v is not None for e, v in curve.items()):
            return "a curve holds an epoch or a value that is not a number"
    if not (result.get("error") is None or isinstance(result["error"], str)):
        return "error must be text or null"
    warnings = result.get("warnings", [])  # absent from the results of older nncli
    if not (isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)):
        return "warnings must be a list of text"
    return None


def read_result(path, number):
    """The result a worker wrote for trial `number` at `path`, or None when it never finished one.

    Raises DamagedResult naming the file (and the line, for broken JSON) when it is there but not such a result.
    """
    import json

    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise DamagedResult(f"{path}: unreadable ({e})") from None
    except ValueError as e:
        raise DamagedResult(f"{path}: line {getattr(e, 'lineno', '?')}: not JSON ({getattr(e, 'msg', e)})") from None
    problem = _check_result(result, number)
    if problem:
        raise DamagedResult(f"{path}: {problem}")
    return result


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
        "warnings": [],
    }
    for i, seed in enumerate(task["seeds"]):
        summary, curve = _train_seed(task, i, seed, out)
        result["warnings"] += [f"seed {seed}: {w}" for w in summary.get("warnings", [])]  # the CLI adds the trial
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

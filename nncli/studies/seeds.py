"""A seed study: one config trained once per seed, each into its own run directory, summarized as mean ± std.

Layout under the study directory (the config's output.dir, or the one given): `seed-<k>/`, a normal run directory per
seed, and `seeds.json`, the per-seed summaries and their mean/std, rewritten atomically after every seed.

Rules, so that nothing is overwritten silently:
- a fresh study refuses a directory holding a single run (always), an earlier study's seeds.json, or a requested
  seed-<k>/ that holds a run; `force` replaces the requested seed runs and seeds.json, never anything else;
- `resume` continues each requested seed-<k>/ from its checkpoint.npz and starts the seeds that never reached one
  (nothing trained is lost: checkpoint.npz is written at the end of every epoch).

Diverged and interrupted seeds are recorded but left out of the mean and std.
"""

import json
import math
import os
import stat
from pathlib import Path

from nncli.errors import Hint, RunError
from nncli.nn.metrics import monitors
from nncli.studies.stats import mean_and_std
from nncli.training.atomic import atomic_write_json
from nncli.training.rundir import holds_run
from nncli.training.tensorboard import log_hparams

METRICS = tuple(monitors())
TEST_METRICS = tuple(monitors(["test"]))
TEST_METRIC_NAMES = [name[len("test_") :] for name in TEST_METRICS]  # eval reports them under these keys
EXCLUDED = ("diverged", "interrupted")
MAX_STUDY_FILE = 64 * 2**20  # seeds.json: 1,000 seeds' summaries take well under 10 MiB


def seed_run_dir(study_dir, seed):
    return Path(study_dir) / f"seed-{seed}"


def check_study_dir(study_dir, seeds, force=False, resume=False):
    """Refuse, before anything trains, a study directory whose contents this study would overwrite."""
    study_dir = Path(study_dir)
    if study_dir.exists() and not study_dir.is_dir():
        raise RunError(f"{study_dir} exists and is not a directory")
    if holds_run(study_dir):
        raise RunError(
            f"{study_dir} holds a single run; a seed study writes seed-<k>/ run directories and seeds.json of its own",
            hints=(Hint.ELSEWHERE, Hint.RESUME_WITHOUT_SEEDS) if resume else (Hint.ELSEWHERE,),
        )
    if resume:
        if not any(seed_run_dir(study_dir, s).is_dir() for s in seeds):
            raise RunError(
                f"{study_dir}: nothing to resume (no seed-<k>/ run for seeds {_listing(seeds)})",
                hints=(Hint.START_SEED_STUDY,),
            )
        return
    if force:
        return
    taken = [seed_run_dir(study_dir, s) for s in seeds if holds_run(seed_run_dir(study_dir, s))]
    if (study_dir / "seeds.json").exists() or taken:
        what = ", ".join(p.name for p in taken) or "seeds.json"
        raise RunError(
            f"{study_dir} already holds a seed study ({what})", hints=(Hint.RESUME, Hint.REPLACE, Hint.ELSEWHERE)
        )


def is_study(path):
    """True when `path` is a seed study's directory (seeds.json, no run of its own)."""
    path = Path(path)
    return (path / "seeds.json").is_file() and not (path / "config.yaml").exists()


def recorded_seeds(study_dir):
    """The seeds a study's seeds.json lists (what `resume` continues without being told them), read bounded and
    checked; RunError naming the file when it is unreadable or lists no valid seeds."""
    from nncli.studies.seed_spec import SeedsError, parse_seeds

    path = Path(study_dir) / "seeds.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise RunError(f"{path}: cannot be read ({e.strerror})") from None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{path}: not a regular file (a FIFO, a device or a socket)")
        data = f.read(MAX_STUDY_FILE + 1)
    if len(data) > MAX_STUDY_FILE:
        raise RunError(f"{path}: larger than {MAX_STUDY_FILE >> 20} MiB, more than any seed study writes")
    try:
        seeds = json.loads(data.decode("utf-8")).get("seeds")
        return parse_seeds(seeds if isinstance(seeds, list) else [], option=f"{path}: seeds")
    except (ValueError, RecursionError, AttributeError, SeedsError) as e:
        raise RunError(
            f"{path}: does not list the study's seeds ({e}); name them to resume it", hints=(Hint.SEEDS,)
        ) from None


def study_config_path(study_dir, seeds):
    """The resolved config a resumed study continues from: the first requested seed run that recorded one."""
    check_study_dir(study_dir, seeds, resume=True)
    for seed in seeds:
        path = seed_run_dir(study_dir, seed) / "config.yaml"
        if path.exists():
            return path
    raise RunError(f"{study_dir}: no seed-<k>/config.yaml for seeds {_listing(seeds)}; nothing to resume")


def run_seeds(
    config, seeds, study_dir=None, *, force=False, resume=False, on_seed_start=None, on_seed_end=None, **trainer_kwargs
):
    """Train `config` once per seed into STUDY_DIR/seed-<k>/; return the study dict that seeds.json holds.

    `on_seed_start(seed, run_dir)` and `on_seed_end(seed, run)` observe the study; `trainer_kwargs` (on_start,
    on_epoch, on_warning, command) go to every seed's Trainer. An interrupted seed ends the study there.
    """
    from nncli.training.trainer import Trainer

    study_dir = Path(study_dir or config.output.dir)
    check_study_dir(study_dir, seeds, force, resume)
    study_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in seeds:
        run_dir = seed_run_dir(study_dir, seed)
        cfg = config.model_copy(deep=True)
        cfg.seed = seed
        continuing = resume and (run_dir / "checkpoint.npz").exists()
        if on_seed_start:
            on_seed_start(seed, run_dir)
        # a resumed study starts fresh the seeds that never checkpointed an epoch: their files hold nothing trained
        trainer = Trainer(
            cfg, run_dir, force=force if continuing else force or resume, resume=continuing, **trainer_kwargs
        )
        summary = trainer.run()
        if cfg.output.tensorboard:
            log_hparams(run_dir, {"seed": seed}, summary)  # TensorBoard's HParams view compares the seeds
        run = seed_summary(seed, run_dir, summary, has_test=trainer.data.test is not None)
        runs.append(run)
        study = summarize(seeds, runs)
        atomic_write_json(study_dir / "seeds.json", study)
        if on_seed_end:
            on_seed_end(seed, run)
        if summary["status"] == "interrupted":
            break
    return study


def seed_summary(seed, run_dir, summary, has_test=False):
    """One seed's entry: status, epochs, best and final metrics, and the test metrics of best.npz (loss and
    accuracy, or the regression or attribute metrics)."""
    run = {
        "seed": seed,
        "run_dir": str(run_dir),
        **{k: summary.get(k) for k in ("status", "epochs_run", "best_epoch", "wall_seconds")},
    }
    for key in ("best", "final"):  # the epoch's metrics; per-layer diagnostics stay in the run's summary.json
        row = summary.get(key)
        run[key] = {k: row[k] for k in ("epoch", *METRICS) if k in row} if row else None
    for key in ("error", "exit_code", "signal"):
        if key in summary:
            run[key] = summary[key]
    best = Path(run_dir) / "best.npz"
    if has_test and best.exists() and summary["status"] not in EXCLUDED:
        from nncli.evaluation.evaluate import evaluate_checkpoint

        report = evaluate_checkpoint(best, split="test")
        run["test"] = {f"test_{m}": report[m] for m in TEST_METRIC_NAMES if isinstance(report.get(m), (int, float))}
    return run


def summarize(seeds, runs):
    """The study: requested seeds, per-seed entries, and mean/std of every metric over the seeds not excluded.

    `aggregate["final"][metric]` averages the last epoch's values; `aggregate["best"][metric]` the best epoch's,
    plus test_loss/test_accuracy of best.npz. std is the sample standard deviation (n - 1), None for one seed.
    """
    included = [r for r in runs if r["status"] not in EXCLUDED]
    aggregate = {
        "final": _mean_std([r.get("final") or {} for r in included], METRICS),
        "best": _mean_std([dict(r.get("best") or {}, **r.get("test", {})) for r in included], METRICS + TEST_METRICS),
    }
    done = {r["seed"] for r in runs}
    return {
        "seeds": list(seeds),
        "runs": runs,
        "included": [r["seed"] for r in included],
        "excluded": {str(r["seed"]): r["status"] for r in runs if r["status"] in EXCLUDED},
        "pending": [s for s in seeds if s not in done],
        "aggregate": aggregate,
    }


def _mean_std(rows, keys):
    out = {}
    for key in keys:
        values = [row[key] for row in rows if row.get(key) is not None and math.isfinite(row[key])]
        if values:
            mean, std = mean_and_std(values)
            out[key] = {"mean": mean, "std": std, "n": len(values)}
    return out


def _listing(seeds):
    return ", ".join(map(str, seeds))

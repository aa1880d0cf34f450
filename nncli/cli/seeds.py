"""`nncli train CONFIG --seeds 0-4`: run the study (seeds.py) and show per-seed and mean ± std tables."""

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import err, out
from nncli.cli.render import Progress, fmt, mean_std, print_setup, stopped_at_once
from nncli.cli.resumed import started_at
from nncli.cli.tables import show


def train_seeds(cfg, overrides, spec, seed_list, out_dir, resume, force, quiet):
    """`train --seeds`: one run per seed under the study directory, then per-seed and mean ± std tables."""
    from nncli.studies.seed_spec import SeedsError
    from nncli.studies.seeds import run_seeds

    if any(o.split("=", 1)[0].strip() == "seed" for o in overrides):
        raise SeedsError(f"--seeds {spec} sets the seed of every run; drop the seed=... override")
    study_dir = out_dir or Path(cfg.output.dir)
    view = _StudyView(cfg.train.epochs, quiet, resume is not None, study_dir)
    try:
        study = run_seeds(
            cfg,
            seed_list,
            study_dir,
            force=force,
            resume=resume is not None,
            on_seed_start=view.seed_start,
            on_seed_end=view.seed_end,
            on_start=view.start,
            on_epoch=lambda row: view.progress.update(row),
            on_warning=view.warning,
        )
    except KeyboardInterrupt:
        stopped_at_once()
    finally:
        if view.progress is not None:
            view.progress.close()
    _print_study(cfg.name, study, study_dir)
    _exit_as_the_seeds_ended(study["runs"], study_dir, spec)


class _StudyView:
    """What a seed study shows as it trains: each seed's start (where a resumed one starts, or that it has nothing
    to do), the setup table once, a progress bar per seed, and warnings named by their seed."""

    def __init__(self, epochs, quiet, resume, study_dir):
        self.epochs, self.quiet, self.resume, self.study_dir = epochs, quiet, resume, study_dir
        self.progress, self.seed, self.continuing = None, None, False
        self.setup_shown = self.how_shown = False

    def seed_start(self, seed, run_dir):
        self.progress, self.seed = Progress(self.epochs, self.quiet), seed
        self.continuing = self.resume and (run_dir / "checkpoint.npz").exists()  # as run_seeds decides
        if not self.quiet:
            out.print(f"[bold]seed {seed}[/] → {escape(str(run_dir))}", soft_wrap=True)

    def start(self, trainer):
        if self.continuing:
            lead, how = f"seed {self.seed}: ", not self.how_shown
            if started_at(trainer, self.progress, self.quiet, lead, self.study_dir, how).finished:
                self.how_shown = True  # the command that trains on resumes the whole study: said once
                return
        if not self.quiet and not self.setup_shown:
            print_setup(trainer)
            self.setup_shown = True

    def warning(self, message):  # each seed is a run of its own: its warnings say which
        self.progress.warn(f"seed {self.seed}: {message}")

    def seed_end(self, seed, run):
        self.progress.close()
        if not self.quiet:
            out.print(f"  seed {seed}: {run['status']} after {run['epochs_run']} epochs")


def _exit_as_the_seeds_ended(runs, study_dir, spec):
    """Name each diverged seed; exit as a plain run would: 130/143 when interrupted (with how to continue), 1 when a
    seed diverged."""
    for run in runs:
        if run["status"] == "diverged":
            err.print(
                f"[bold red]seed {run['seed']} diverged[/] and is left out of the mean and std: {escape(run['error'])}",
                soft_wrap=True,
            )
    if runs and runs[-1]["status"] == "interrupted":
        err.print(
            f"interrupted by {runs[-1]['signal']} during seed {runs[-1]['seed']}: checkpoint written; "
            f"continue with nncli train --resume {study_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(runs[-1]["exit_code"])
    if any(run["status"] == "diverged" for run in runs):
        raise typer.Exit(1)


def _print_study(name, study, study_dir):
    """Per-seed status and metrics (final epoch; test: best.npz), then mean ± std of every metric, best and final."""
    from nncli.studies.seeds import METRICS, TEST_METRICS

    runs, aggregate = study["runs"], study["aggregate"]
    has_val = any("val_loss" in (r.get("final") or {}) for r in runs)
    recorded = {k for r in runs for k in (r.get("final") or {})}  # the task's metrics only
    per_seed = [k for k in METRICS if k.startswith("val_" if has_val else "train_") and k in recorded]
    per_seed += [k for k in TEST_METRICS if any(k in r.get("test", {}) for r in runs)]
    table = Table(title=f"{name}: {len(runs)} of {len(study['seeds'])} seeds", caption="final epoch; test: best.npz")
    for col in ("seed", "status", "epochs", *per_seed):
        table.add_column(
            col.replace("_accuracy", " acc").replace("_loss", " loss"), justify="left" if col == "status" else "right"
        )
    for run in runs:
        values = dict(run.get("final") or {}, **run.get("test", {}))
        status = run["status"] if run["status"] not in ("diverged", "interrupted") else f"[bold red]{run['status']}[/]"
        epochs = f"{run['epochs_run']} (best {fmt(run['best_epoch'])})"
        table.add_row(str(run["seed"]), status, epochs, *(fmt(values.get(k)) for k in per_seed))
    show(table)
    if not study["included"]:
        out.print("no seed finished without diverging or being interrupted: no mean to report")
    n = len(study["included"])
    overview = Table(
        title=f"mean ± std over {n} seed{'s' if n != 1 else ''}",
        caption="best: each seed's best epoch (test: its best.npz)",
    )
    overview.add_column("metric")
    overview.add_column("best", justify="right")
    overview.add_column("final", justify="right")
    for key in METRICS + TEST_METRICS:
        if key in aggregate["best"] or key in aggregate["final"]:
            overview.add_row(key, mean_std(aggregate["best"].get(key)), mean_std(aggregate["final"].get(key)))
    if overview.row_count:
        show(overview)
    left_out = ", ".join(f"seed {s} ({status})" for s, status in study["excluded"].items())
    if left_out:
        out.print(f"left out of the mean and std: {left_out}")
    out.print(
        f"study directory: {study_dir}  ·  seeds.json  ·  {sum(r['wall_seconds'] or 0 for r in runs):.1f}s of training",
        soft_wrap=True,
    )

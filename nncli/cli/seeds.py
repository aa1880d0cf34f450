"""`nncli train CONFIG --seeds 0-4`: run the study (seeds.py) and show per-seed and mean ± std tables."""

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import err, out
from nncli.cli.render import Progress, fmt, mean_std, print_setup, stopped_at_once
from nncli.cli.tables import show


def train_seeds(cfg, overrides, spec, seed_list, out_dir, resume, force, quiet):
    """`train --seeds`: one run per seed under the study directory, then per-seed and mean ± std tables."""
    from nncli.studies.seed_spec import SeedsError
    from nncli.studies.seeds import run_seeds

    if any(o.split("=", 1)[0].strip() == "seed" for o in overrides):
        raise SeedsError(f"--seeds {spec} sets the seed of every run; drop the seed=... override")
    study_dir = out_dir or Path(cfg.output.dir)
    state = {"progress": None, "setup_shown": False}

    def on_seed_start(seed, run_dir):
        state["progress"] = Progress(cfg.train.epochs, quiet)
        if not quiet:
            out.print(f"[bold]seed {seed}[/] → {escape(str(run_dir))}", soft_wrap=True)

    def on_start(trainer):
        if not quiet and not state["setup_shown"]:
            print_setup(trainer)
            state["setup_shown"] = True

    def on_seed_end(seed, run):
        state["progress"].close()
        if not quiet:
            out.print(f"  seed {seed}: {run['status']} after {run['epochs_run']} epochs")

    try:
        study = run_seeds(
            cfg,
            seed_list,
            study_dir,
            force=force,
            resume=resume is not None,
            on_seed_start=on_seed_start,
            on_seed_end=on_seed_end,
            on_start=on_start,
            on_epoch=lambda row: state["progress"].update(row),
            on_warning=lambda message: state["progress"].warn(message),
        )
    except KeyboardInterrupt:
        stopped_at_once()
    finally:
        if state["progress"] is not None:
            state["progress"].close()
    _print_study(cfg.name, study, study_dir)
    _exit_as_the_seeds_ended(study["runs"], study_dir, spec)


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
            f"continue with nncli train --resume {study_dir} --seeds {spec}"
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

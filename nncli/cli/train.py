"""`nncli train`: one run, or one run per seed with --seeds."""

import sys
from functools import partial
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from nncli.cli.app import app, err, print_json, user_errors
from nncli.cli.render import Progress, print_setup, print_summary, stopped_at_once, survive_closed
from nncli.cli.resumed import started_at
from nncli.errors import UsageError

DEFAULT_CONFIG = "nncli.yaml"  # what a bare `nncli train` trains: the file `nncli init` writes by default


@app.command()
@user_errors
def train(
    config: Optional[str] = typer.Argument(
        None, help="YAML config file (default: ./nncli.yaml when it exists; omit with --resume)."
    ),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="Dotted overrides KEY=VALUE, e.g. optimizer.lr=0.1 'model.hidden=[64,32]'."
    ),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory (default: output.dir of the config)."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue the run in this directory from its checkpoint.npz."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a run already in the run directory; with --resume, accept config changes."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
    seeds: Optional[str] = typer.Option(
        None,
        "--seeds",
        help="Train once per seed (0-4, 0,2,5 or 3; at most 1,000) into DIR/seed-K/ and report mean ± std.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the final summary, as one JSON object."),
):
    """Train the network a config describes; write metrics and checkpoints to its run directory.

    Ctrl-C or SIGTERM stops at the end of the current step with a checkpoint (exit 130 / 143); `--resume`
    continues bit-identically and says where it starts. Raise train.epochs on resume to extend a finished run.

    With `--seeds` the run directory holds one run per seed, `seed-K/`, and `seeds.json` (mean ± std);
    `--force` replaces those seed runs, `--resume DIR` continues each of them (the seeds its seeds.json lists).

    Example: `nncli train configs/spiral-2layer.yaml optimizer.lr=0.5 train.epochs=50`

    Example: `nncli train --resume runs/spiral-2layer train.epochs=600`

    Example: `nncli train configs/digits-2layer.yaml --seeds 0-4 --quiet`

    Example: `nncli init && nncli train` (./nncli.yaml, the config init writes)
    """
    from nncli.training.resume import resolve_run

    config, overrides = _default_config(config, overrides or [], resume)
    if as_json and seeds is not None:
        raise UsageError("--json prints one run's summary; a seed study's mean ± std is in DIR/seeds.json")
    seed_list, study_config = None, None
    if seeds is None and resume is not None:
        from nncli.studies.seeds import is_study, recorded_seeds

        if is_study(resume):  # a seed study resumes with the seeds its seeds.json lists
            seeds = ",".join(map(str, recorded_seeds(resume)))
    if seeds is not None:
        from nncli.studies.seed_spec import parse_seeds
        from nncli.studies.seeds import study_config_path

        seed_list = parse_seeds(seeds, option="--seeds")
        study_config = partial(study_config_path, seeds=seed_list)  # a resumed study continues from its seed runs
    cfg, overrides, out_dir = resolve_run(config, overrides or (), out_dir, resume, study_config)
    if seed_list is not None:
        from nncli.cli.seeds import train_seeds

        return train_seeds(cfg, overrides, seeds, seed_list, out_dir, resume, force, quiet)
    _train_one(cfg, out_dir or cfg.output.dir, force, resume is not None, quiet or as_json, as_json)


def _default_config(config, overrides, resume):
    """(config, overrides) with ./nncli.yaml as the config of a fresh run that names none (said on stderr); a first
    argument KEY=VALUE that is no file is then its first override (`nncli train optimizer.lr=0.1`)."""
    default = Path(DEFAULT_CONFIG)
    if resume is not None or not default.is_file():
        return config, overrides
    if config is not None and ("=" not in config or Path(config).exists()):
        return config, overrides
    err.print(f"no CONFIG given: training ./{DEFAULT_CONFIG}", soft_wrap=True)
    return DEFAULT_CONFIG, ([config] if config is not None else []) + list(overrides)


def _print_json_summary(summary, run_dir):
    """train --json: the run's summary.json (status, epochs_run, best_epoch, best, final, wall_seconds, ...) with
    its run_dir."""
    print_json({**summary, "run_dir": str(run_dir)})


def _train_one(cfg, run_dir, force, resume, quiet, as_json=False):
    """Train one run with a progress bar (setup table first unless quiet); show its summary, and exit 1 when it
    diverged or with the signal's code when it was interrupted."""
    from nncli.training.trainer import train as run_training

    progress, point = Progress(cfg.train.epochs, quiet), {}

    def on_start(trainer):
        if resume:
            point["at"] = started_at(trainer, progress, quiet)
            if point["at"].finished:
                return
        if not quiet:
            survive_closed(sys.stdout, print_setup, trainer)

    try:
        summary = run_training(
            cfg,
            run_dir,
            force=force,
            resume=resume,
            on_start=on_start,
            on_epoch=progress.update,
            on_warning=progress.warn,
        )
    except KeyboardInterrupt:
        stopped_at_once()
    finally:
        progress.close()
    finished = "at" in point and point["at"].finished  # nothing was trained: what was said is the whole answer
    if as_json:
        survive_closed(sys.stdout, _print_json_summary, summary, run_dir)
    if finished:
        return
    if not as_json:
        survive_closed(sys.stdout, print_summary, summary, run_dir)
    if summary["status"] == "diverged":
        err.print(f"[bold red]diverged:[/] {escape(summary['error'])}")
        raise typer.Exit(1)
    if summary["status"] == "interrupted":
        err.print(
            f"interrupted by {summary['signal']}: checkpoint written; continue with nncli train --resume {run_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(summary["exit_code"])

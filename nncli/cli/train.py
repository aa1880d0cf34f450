"""`nncli train`: one run, or one run per seed with --seeds."""

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from nncli.cli.app import app, err, user_errors
from nncli.cli.render import Progress, print_setup, print_summary, stopped_at_once
from nncli.errors import ConfigError, RunError


@app.command()
@user_errors
def train(
    config: Optional[str] = typer.Argument(None, help="YAML config file (omit with --resume)."),
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
        None, "--seeds", help="Train once per seed (0-4, 0,2,5 or 3) into DIR/seed-K/ and report mean ± std."
    ),
):
    """Train the network a config describes; write metrics and checkpoints to its run directory.

    Ctrl-C or SIGTERM stops at the end of the current step with a checkpoint (exit 130 / 143); `--resume`
    continues bit-identically. Raise train.epochs on resume to extend a finished run.

    With `--seeds` the run directory holds one run per seed, `seed-K/`, and `seeds.json` (mean ± std);
    `--force` replaces those seed runs, `--resume DIR --seeds ...` continues each of them.

    Example: `nncli train configs/spiral-2layer.yaml optimizer.lr=0.5 train.epochs=50`

    Example: `nncli train --resume runs/spiral-2layer train.epochs=600`

    Example: `nncli train configs/digits-2layer.yaml --seeds 0-4 --quiet`
    """
    from nncli.config.schema import load_config
    from nncli.training.trainer import train as run_training

    seed_list = None
    if seeds is not None:
        from nncli.studies.seed_spec import parse_seeds

        seed_list = parse_seeds(seeds, option="--seeds")
    overrides = list(overrides or ())
    if resume is not None:
        if out_dir is not None and Path(out_dir).resolve() != resume.resolve():
            raise ConfigError(
                f"--out {out_dir} with --resume {resume}: a run resumes in its own directory; "
                f"copy {resume} to {out_dir} first to continue it there"
            )
        if config is not None and "=" not in config:
            raise ConfigError(
                f"--resume {resume} takes no CONFIG (the run's own config.yaml is used), got {config!r}; "
                f"changes go as KEY=VALUE overrides"
            )
        if config is not None:
            overrides.insert(0, config)  # with --resume every positional argument is an override
        config, out_dir = resume / "config.yaml", resume
        if seed_list is not None:
            from nncli.studies.seeds import study_config_path

            config = study_config_path(resume, seed_list)
        elif not config.exists() and (resume / "seeds.json").exists():
            raise RunError(f"{resume} is a seed study: resume it with nncli train --resume {resume} --seeds SEEDS")
        elif not config.exists():
            raise RunError(f"{resume}: nothing to resume (no config.yaml); start it with nncli train CONFIG")
    elif config is None:
        raise ConfigError("missing CONFIG: nncli train CONFIG [KEY=VALUE ...], or nncli train --resume RUN_DIR")
    cfg = load_config(config, overrides)
    if seed_list is not None:
        from nncli.cli.seeds import train_seeds

        return train_seeds(cfg, overrides, seeds, seed_list, out_dir, resume, force, quiet)
    progress = Progress(cfg.train.epochs, quiet)

    def on_start(trainer):
        if not quiet:
            print_setup(trainer)

    try:
        summary = run_training(
            cfg,
            out_dir,
            force=force,
            resume=resume is not None,
            on_start=on_start,
            on_epoch=progress.update,
            on_warning=progress.warn,
        )
    except KeyboardInterrupt:
        stopped_at_once()
    finally:
        progress.close()
    print_summary(summary, out_dir or cfg.output.dir)
    if summary["status"] == "diverged":
        err.print(f"[bold red]diverged:[/] {escape(summary['error'])}")
        raise typer.Exit(1)
    if summary["status"] == "interrupted":
        err.print(
            f"interrupted by {summary['signal']}: checkpoint written; continue with "
            f"nncli train --resume {out_dir or cfg.output.dir}",
            soft_wrap=True,
        )
        raise typer.Exit(summary["exit_code"])

"""The sweep command: search a config's hyperparameters with Optuna, on local processes or a Dask cluster."""

import shlex
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import app, err, out, print_json, user_errors
from nncli.cli.render import mean_std
from nncli.cli.tables import show
from nncli.errors import RunError


def _value(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _headers(keys, taken):
    """The last part of each dotted key when those are unique and none is one of the table's own columns
    (`taken`: trial, the metric, epochs, state), e.g. lr, l2, hidden; else the full keys (train.epochs)."""
    short = [key.rsplit(".", 1)[-1] for key in keys]
    return short if len(set(short)) == len(short) and not set(short) & set(taken) else list(keys)


def _print_table(rows, sweep, directory):
    table = Table(
        title=f"sweep {sweep.stem}: {len(rows)} trials by {sweep.metric} "
        f"({'max' if sweep.maximize else 'min'}, mean ± std over seeds {sweep.seeds})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    own = ("trial", sweep.metric, "epochs", "state")
    for col in (*own[:2], *_headers([p.key for p in sweep.space], own), *own[2:]):
        table.add_column(col, justify="right" if col in ("trial", "epochs", sweep.metric) else "left")
    for r in rows:
        metric = mean_std(r)
        state = {"complete": "", "pruned": "[yellow]pruned[/]", "failed": "[red]failed[/]"}[r["state"]]
        table.add_row(
            str(r["number"]),
            metric,
            *(escape(_value(r["params"].get(p.key, "—"))) for p in sweep.space),
            str(r["epochs"] or 0),
            state,
        )
    show(table)
    for r in sorted(rows, key=lambda r: r["number"]):
        if r["error"]:
            out.print(f"trial {r['number']} failed: {escape(r['error'])}", soft_wrap=True)
    best = directory / "best.yaml"
    out.print(
        f"sweep directory: {directory}  ·  trials.csv"
        + (f"  ·  best config: {best} (nncli train {best})" if best.exists() else "  ·  no trial completed"),
        soft_wrap=True,
    )


@app.command()
@user_errors
def sweep(
    sweep_file: Path = typer.Argument(
        ..., metavar="SWEEP", help="Sweep file: base config, search space, method, trials, metric, seeds."
    ),
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        min=1,
        help="Trials trained at once (default: the core count; with --scheduler, the cluster's threads).",
    ),
    scheduler: Optional[str] = typer.Option(
        None,
        "--scheduler",
        help="Run the trials on this Dask cluster, e.g. tcp://10.0.0.5:8786 (pip install 'nncli[dask]').",
    ),
    out_dir: Optional[Path] = typer.Option(
        None, "--out", help="Sweep directory (default: output of the sweep file, else runs/sweeps/NAME)."
    ),
    force: bool = typer.Option(False, "--force", help="Continue a sweep directory although the sweep file changed."),
    as_json: bool = typer.Option(False, "--json", help="Print the final table as one JSON object."),
):
    """Search hyperparameters: Optuna proposes configs (grid, random, TPE), each trained over the sweep's seeds.

    Trials run in parallel worker processes, or on a Dask cluster with `--scheduler`. Ctrl-C stops; running
    the same command again resumes without repeating finished trials, and on a finished sweep just reports.
    Writes DIR/trials.csv, DIR/best.yaml and one run directory per trial and seed.

    Example: `nncli sweep configs/sweeps/digits.yaml --workers 2`
    """
    from nncli.studies.executors import SchedulerError
    from nncli.studies.sweep import run_sweep
    from nncli.studies.sweep_file import load_sweep

    spec = load_sweep(sweep_file, None if out_dir is None else str(out_dir))

    def on_trial(row):
        for warning in row["warnings"]:
            err.print(f"[yellow]warning:[/] trial {row['number']}: {escape(warning)}", soft_wrap=True)
        value = mean_std(row) if row["mean"] is not None else row["state"]
        note = f" ({escape(row['error'])})" if row["error"] else ""
        err.print(
            f"trial {row['number']}: {spec.metric} {value} after {row['epochs'] or 0} epochs{note}",
            soft_wrap=True,
            highlight=False,
        )

    try:
        rows = run_sweep(spec, workers=workers, scheduler=scheduler, force=force, on_trial=on_trial)
    except SchedulerError as e:  # the library names its argument; here it is our option
        raise RunError(f"--scheduler {e.address}: {e.problem}") from None
    except KeyboardInterrupt:
        again = _again(sweep_file, out_dir, workers, scheduler)
        err.print(
            f"[bold red]interrupted:[/] finished trials are kept in {spec.output}; run {again} again to resume",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    (_print_json if as_json else _print_table)(rows, spec, Path(spec.output))


def _print_json(rows, sweep, directory):
    """sweep --json: the final table, {sweep, metric, maximize, seeds, directory, best_config, trials: [...]}, each
    trial {number, state, mean, std, epochs, params: {dotted.key: value}, error}, best first as in the table."""
    best = directory / "best.yaml"
    print_json(
        {
            "sweep": sweep.stem,
            "metric": sweep.metric,
            "maximize": sweep.maximize,
            "seeds": list(sweep.seeds),
            "directory": str(directory),
            "best_config": str(best) if best.exists() else None,
            "trials": rows,
        }
    )


def _again(sweep_file, out_dir, workers, scheduler):
    """The command that resumes this sweep, shell-quoted; the same --workers, since they shape which trials run."""
    return shlex.join(
        [
            "nncli",
            "sweep",
            str(sweep_file),
            *(["--out", str(out_dir)] if out_dir is not None else []),
            *(["--workers", str(workers)] if workers is not None else []),
            *(["--scheduler", scheduler] if scheduler else []),
        ]
    )

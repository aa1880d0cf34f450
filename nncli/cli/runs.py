"""Commands that look at what training wrote: inspect a checkpoint, list runs, diff two runs, plot a run or a sweep."""

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import app, check_choice, err, out, print_json, user_errors
from nncli.cli.render import fmt
from nncli.cli.tables import show
from nncli.errors import MissingExtra, OutputError


@app.command()
@user_errors
def inspect(
    checkpoint: Path = typer.Argument(..., help="A checkpoint (.npz) written by nncli."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Show what a checkpoint holds (config, layers, metrics, format version, SHA-256) without unpickling anything.

    Example: `nncli inspect runs/spiral-2layer/best.npz`
    """
    from nncli.evaluation.inspection import describe_checkpoint

    info = describe_checkpoint(checkpoint)
    if as_json:
        print(json.dumps(info))
        return
    head = Table(title=str(checkpoint), show_header=False)
    for key in ("sha256", "format_version", "nncli_version", "epoch", "task", "classes", "standardized", "parameters"):
        if key == "epoch":  # as eval says it: epoch 74 + 48 steps of epoch 75 for a checkpoint written mid-epoch
            head.add_row("position", info["position"])
        else:
            head.add_row(key, str(info[key]))
    if info["target_mean"] is not None:
        head.add_row(
            "target mean ± std",
            ", ".join(f"{m:.4g} ± {s:.4g}" for m, s in zip(info["target_mean"], info["target_std"])),
        )
    show(head)
    layers = Table(title="layers")
    running = [layer for layer in info["layers"] if layer["kind"] != "parameter"]
    for col in ("array" if running else "parameter", "shape", "count", "dtype", *(("kind",) if running else ())):
        layers.add_column(col)
    for layer in info["layers"]:
        kind = (layer["kind"],) if running else ()  # running statistics: saved, used by evaluation, never trained
        layers.add_row(layer["name"], "×".join(map(str, layer["shape"])), f"{layer['count']:,}", layer["dtype"], *kind)
    if running:
        layers.caption = "running statistics: what evaluation normalizes with; not parameters, never trained"
    show(layers)
    metrics = Table(title="recorded metrics", show_header=False)
    for key, value in info["metrics"].items():
        if key != "layers":  # per-layer diagnostics: see metrics.jsonl or --json
            metrics.add_row(key, fmt(value))
    show(metrics)
    if info["encoding"] is not None:
        show(_columns_table(info["encoding"]), wrap=("categories",))
    out.print("config:", json.dumps(info["config"], indent=2))


def _columns_table(encoding):
    """The checkpoint's CSV columns: kind, how many inputs, the categories (one-hot order) or the fill value."""
    caption = f"missing cells: {encoding['missing']}; unseen categories: {encoding['unknown_category']}"
    caption += "; missing-value tokens: " + ", ".join(repr(v) for v in encoding["na_values"])
    table = Table(title="columns", caption=escape(caption))
    for col in ("column", "kind", "inputs", "categories", "fill"):
        table.add_column(col, justify="right" if col == "inputs" else "left")
    for c in encoding["columns"]:
        shown = ", ".join(c["categories"])
        table.add_row(
            escape(c["name"]),
            c["kind"],
            str(c["inputs"]),
            escape(shown),
            "—" if c["fill"] is None else escape(str(c["fill"])),
        )
    return table


@app.command()
@user_errors
def runs(
    folder: Path = typer.Argument(Path("runs"), help="Folder to search for run directories."),
    sort: str = typer.Option(
        "name", "--sort", help="name | status | epochs | best_val_accuracy | best_val_rmse | wall_seconds"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array, one object per run."),
):
    """List the runs under a folder: name, status, epochs, best validation accuracy (or RMSE, regression), wall time.

    Example: `nncli runs runs --sort best_val_accuracy`
    """
    from nncli.evaluation.inspection import RUN_COLUMNS, list_runs

    check_choice("--sort", sort, RUN_COLUMNS)
    rows = list_runs(folder, sort)
    if as_json:
        return print_json(rows)
    table = Table(title=f"{len(rows)} run{'' if len(rows) == 1 else 's'} under {folder}")
    for col in ("path", *RUN_COLUMNS):
        table.add_column(
            col,
            justify="right" if col in ("epochs", "best_val_accuracy", "best_val_rmse", "wall_seconds") else "left",
        )
    for row in rows:
        table.add_row(*(fmt(row[c]) for c in ("path", *RUN_COLUMNS)))
    show(table)


@app.command()
@user_errors
def diff(
    run_a: Path = typer.Argument(..., help="First run directory."),
    run_b: Path = typer.Argument(..., help="Second run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: runs, config, metrics, status, epochs."),
):
    """Show the config keys that differ between two runs and their metrics side by side.

    Example: `nncli diff runs/spiral-2layer runs/spiral-linear`
    """
    from nncli.evaluation.inspection import diff_runs

    result = diff_runs(run_a, run_b)
    if as_json:
        return print_json({"runs": [str(run_a), str(run_b)], **result})
    if result["config"]:
        config = Table(title="config differences")
        for col in ("key", str(run_a), str(run_b)):
            config.add_column(col)
        for key, (a, b) in result["config"].items():
            config.add_row(key, json.dumps(a), json.dumps(b))
        show(config)
    else:
        out.print("same config")
    metrics = Table(title="metrics")
    for col in ("metric", str(run_a), str(run_b)):
        metrics.add_column(col, justify="left" if col == "metric" else "right")
    metrics.add_row("status", *map(str, result["status"]))
    metrics.add_row("epochs run", *map(str, result["epochs"]))
    for key, (a, b) in result["metrics"].items():
        if not key.endswith("layers"):  # per-layer diagnostics stay in metrics.jsonl
            metrics.add_row(key, fmt(a), fmt(b))
    show(metrics)


@app.command()
@user_errors
def plot(
    run_dir: Path = typer.Argument(
        ..., help="A run directory written by nncli train, or a sweep directory written by nncli sweep."
    ),
    out_file: Optional[Path] = typer.Option(
        None, "--out", help="Picture to write, .png, .svg or .pdf (default: DIR/plot.png, redrawn each time)."
    ),
    text: bool = typer.Option(False, "--text", help="Terminal summary only (no matplotlib needed)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
):
    """Plot a run: loss/accuracy/learning-rate curves, the best checkpoint's confusion matrix and, for 2-D data,
    its decision regions. Plot a sweep: the metric against each swept key (complete trials, ± std over
    seeds; pruned and failed trials counted in the title). Needs the `plot` extra (matplotlib); without it,
    shows a terminal summary.

    Example: `nncli plot runs/spiral-2layer --out spiral.png`

    Example: `nncli plot runs/sweeps/digits`
    """
    from nncli.cli.app import HINTS
    from nncli.plot.figures import FORMATS
    from nncli.plot.records import plot_target
    from nncli.plot.run_plot import plot_run
    from nncli.plot.summaries import sparklines
    from nncli.plot.sweep_plot import plot_sweep

    sweep = plot_target(run_dir) == "sweep"
    if out_file is not None and text:
        raise OutputError("--out writes a picture and --text prints to the terminal: choose one")
    if not text:
        if out_file is not None:
            from nncli.training.atomic import check_output

            if out_file.suffix.lower() not in FORMATS:
                raise OutputError(f"--out {out_file}: the picture's name must end in {', '.join(FORMATS)}")
            check_output(out_file, force)  # before any plotting: a missing directory, a file we would replace
        try:
            out.print(f"wrote {(plot_sweep if sweep else plot_run)(run_dir, out_file)}", soft_wrap=True)
            return
        except MissingExtra as e:
            err.print(
                f"{escape(e.render(HINTS))}; showing {'the sweep' if sweep else 'the curves'} in the terminal instead"
            )
    if sweep:
        _print_sweep_summary(run_dir)
        return
    table = Table(title=f"{run_dir}: curves over epochs")
    for col in ("metric", "curve", "first", "last"):
        table.add_column(col, justify="right" if col in ("first", "last") else "left")
    for key, (line, first, last) in sparklines(run_dir).items():
        table.add_row(key, line, fmt(first), fmt(last))
    show(table)


def _print_sweep_summary(sweep_dir):
    """Per swept key, the best complete trial in each category or bucket of its range."""
    from nncli.plot.summaries import sweep_summary

    summary = sweep_summary(sweep_dir)
    metric, counts, best = summary["metric"], summary["counts"], summary["best"]
    out.print(
        f"{sweep_dir}: {metric} ({'max' if summary['maximize'] else 'min'}imized"
        + (f", mean over seeds {summary['seeds']}" if len(summary["seeds"]) > 1 else "")
        + f"); {counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed",
        soft_wrap=True,
    )
    if best is None:
        out.print("no complete trial yet")
    else:
        params = ", ".join(f"{k}={_show_value(v)}" for k, v in best["params"].items())
        out.print(
            f"best trial {best['number']}: {metric} {fmt(best['mean'])}"
            + (f" ± {fmt(best['std'])}" if best["std"] is not None else "")
            + f"  ({escape(params)})",
            soft_wrap=True,
        )
    for key, entry in summary["keys"].items():
        table = Table(title=f"{key} ({entry['kind']})")
        for col in ("value", "trials", f"best {metric}", "trial"):
            table.add_column(col, justify="left" if col == "value" else "right")
        for label, count, value, number in entry["rows"]:
            table.add_row(escape(label), str(count), fmt(value), fmt(number))
        show(table)


def _show_value(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else fmt(value)

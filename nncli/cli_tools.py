"""Commands for looking at configs, checkpoints and runs: schema, validate, init, inspect, runs, diff."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .cli import app, err, fmt, out, user_errors
from .data_files import file_missing
from .datasets import BUILTINS
from .errors import ConfigError, MissingExtra, OutputError, RunError


@app.command()
@user_errors
def schema(out_file: Optional[Path] = typer.Option(None, "--out", help="Write the schema to this file.")):
    """Print the config's JSON Schema (draft-07) for editors using yaml-language-server.

    Example: `nncli schema --out configs/schema.json`, then start a config with
    `# yaml-language-server: $schema=schema.json`
    """
    from .atomic import atomic_write_text
    from .config import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out_file is None:
        print(text, end="")
    else:
        atomic_write_text(out_file, text)


@app.command()
@user_errors
def validate(
    config: Path = typer.Argument(..., help="YAML config file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides KEY=VALUE."),
):
    """Validate a config and show the resolved values and where each came from (default, file, override).

    Example: `nncli validate configs/spiral-2layer.yaml optimizer.lr=0.1`
    """
    from .config import config_to_dict, flatten, provenance

    cfg, origin = provenance(config, overrides or ())
    table = Table(title=f"{config}: valid")
    for col in ("key", "value", "from"):
        table.add_column(col)
    style = {"default": "dim", "file": "", "override": "bold yellow"}
    for key, value in flatten(config_to_dict(cfg)).items():
        table.add_row(key, json.dumps(value), origin[key], style=style[origin[key]])
    out.print(table)
    for key in ("source", "labels", "val_source", "val_labels", "test_source", "test_labels"):
        path = getattr(cfg.data, key)
        if path is not None and not (key == "source" and path in BUILTINS) and not Path(path).is_file():
            err.print(f"[yellow]warning:[/] data.{key}: {escape(str(file_missing(path)))}; the config is valid, "
                      f"but training needs the file", soft_wrap=True)


@app.command()
@user_errors
def init(
    path: Path = typer.Argument(Path("nncli.yaml"), help="Where to write the starter config."),
    template: str = typer.Option("spiral", "--template", help="spiral | digits | csv"),
):
    """Write a commented starter config (and schema.json beside it for editor completion).

    Example: `nncli init my-digits.yaml --template digits`
    """
    from .atomic import atomic_write_text, check_output
    from .config import json_schema
    from .templates import DATA, starter_config

    if template not in DATA:
        raise ConfigError(f"--template: {template!r} is not one of {', '.join(DATA)}")
    check_output(path, force=False, option=None)
    atomic_write_text(path, starter_config(template, path.stem))
    schema_path = path.parent / "schema.json"
    if not schema_path.exists():
        atomic_write_text(schema_path, json.dumps(json_schema(), indent=2) + "\n")
    out.print(f"wrote {path} ({template} template); train it with: nncli train {path}")


@app.command()
@user_errors
def inspect(
    checkpoint: Path = typer.Argument(..., help="A checkpoint (.npz) written by nncli."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Show what a checkpoint holds (config, layers, metrics, format version, SHA-256) without unpickling anything.

    Example: `nncli inspect runs/spiral-2layer/best.npz`
    """
    from .inspection import describe_checkpoint

    info = describe_checkpoint(checkpoint)
    if as_json:
        print(json.dumps(info))
        return
    head = Table(title=str(checkpoint), show_header=False)
    head.add_column()
    head.add_column(overflow="fold")  # a hash cut short is no use for comparing
    for key in ("sha256", "format_version", "nncli_version", "epoch", "classes", "standardized", "parameters"):
        head.add_row(key, str(info[key]))
    out.print(head)
    layers = Table(title="layers")
    for col in ("parameter", "shape", "count", "dtype"):
        layers.add_column(col)
    for layer in info["layers"]:
        layers.add_row(layer["name"], "×".join(map(str, layer["shape"])), f"{layer['count']:,}", layer["dtype"])
    out.print(layers)
    metrics = Table(title="recorded metrics", show_header=False)
    for key, value in info["metrics"].items():
        if key != "layers":  # per-layer diagnostics: see metrics.jsonl or --json
            metrics.add_row(key, fmt(value))
    out.print(metrics)
    out.print("config:", json.dumps(info["config"], indent=2))


@app.command()
@user_errors
def runs(
    folder: Path = typer.Argument(Path("runs"), help="Folder to search for run directories."),
    sort: str = typer.Option("name", "--sort", help="name | status | epochs | best_val_accuracy | wall_seconds"),
):
    """List the runs under a folder: name, status, epochs, best validation accuracy, wall time.

    Example: `nncli runs runs --sort best_val_accuracy`
    """
    from .inspection import RUN_COLUMNS, list_runs

    if not folder.is_dir():
        raise RunError(f"{folder}: {'is not a folder' if folder.exists() else 'no such folder'}; "
                       "give the folder that holds the run directories")
    rows = list_runs(folder, sort)
    table = Table(title=f"{len(rows)} run{'' if len(rows) == 1 else 's'} under {folder}")
    for col in ("path", *RUN_COLUMNS):
        table.add_column(col, justify="right" if col in ("epochs", "best_val_accuracy", "wall_seconds") else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*(fmt(row[c]) for c in ("path", *RUN_COLUMNS)))
    out.print(table)


@app.command()
@user_errors
def diff(
    run_a: Path = typer.Argument(..., help="First run directory."),
    run_b: Path = typer.Argument(..., help="Second run directory."),
):
    """Show the config keys that differ between two runs and their metrics side by side.

    Example: `nncli diff runs/spiral-2layer runs/spiral-linear`
    """
    from .inspection import diff_runs

    result = diff_runs(run_a, run_b)
    if result["config"]:
        config = Table(title="config differences")
        for col in ("key", str(run_a), str(run_b)):
            config.add_column(col)
        for key, (a, b) in result["config"].items():
            config.add_row(key, json.dumps(a), json.dumps(b))
        out.print(config)
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
    out.print(metrics)


@app.command()
@user_errors
def plot(
    run_dir: Path = typer.Argument(..., help="A run directory written by nncli train, or a sweep directory written by nncli sweep."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Picture to write, .png, .svg or .pdf (default: DIR/plot.png, redrawn each time)."),
    text: bool = typer.Option(False, "--text", help="Terminal summary only (no matplotlib needed)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
):
    """Plot a run: loss/accuracy/learning-rate curves, the best checkpoint's confusion matrix and, for 2-D data,
    its decision regions. Plot a sweep: the metric against each swept key (complete trials, ± std over
    seeds; pruned and failed trials counted in the title). Needs the `plot` extra (matplotlib); without it, shows a terminal summary.

    Example: `nncli plot runs/spiral-2layer --out spiral.png`

    Example: `nncli plot runs/sweeps/digits`
    """
    from .plot import FORMATS, plot_run, plot_sweep, plot_target, sparklines

    sweep = plot_target(run_dir) == "sweep"
    if out_file is not None and text:
        raise OutputError("--out writes a picture and --text prints to the terminal: choose one")
    if not text:
        if out_file is not None:
            from .atomic import check_output

            if out_file.suffix.lower() not in FORMATS:
                raise OutputError(f"--out {out_file}: the picture's name must end in {', '.join(FORMATS)}")
            check_output(out_file, force)  # before any plotting: a missing directory, a file we would replace
        try:
            out.print(f"wrote {(plot_sweep if sweep else plot_run)(run_dir, out_file)}")
            return
        except MissingExtra as e:
            err.print(f"{escape(str(e))}; showing {'the sweep' if sweep else 'the curves'} in the terminal instead")
    if sweep:
        _print_sweep_summary(run_dir)
        return
    table = Table(title=f"{run_dir}: curves over epochs")
    for col in ("metric", "curve", "first", "last"):
        table.add_column(col, justify="right" if col in ("first", "last") else "left")
    for key, (line, first, last) in sparklines(run_dir).items():
        table.add_row(key, line, fmt(first), fmt(last))
    out.print(table)


def _print_sweep_summary(sweep_dir):
    """Per swept key, the best complete trial in each category or bucket of its range."""
    from .plot import sweep_summary

    summary = sweep_summary(sweep_dir)
    metric, counts, best = summary["metric"], summary["counts"], summary["best"]
    out.print(f"{sweep_dir}: {metric} ({'max' if summary['maximize'] else 'min'}imized"
              + (f", mean over seeds {summary['seeds']}" if len(summary["seeds"]) > 1 else "")
              + f"); {counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed",
              soft_wrap=True)
    if best is None:
        out.print("no complete trial yet")
    else:
        params = ", ".join(f"{k}={_show_value(v)}" for k, v in best["params"].items())
        out.print(f"best trial {best['number']}: {metric} {fmt(best['mean'])}"
                  + (f" ± {fmt(best['std'])}" if best["std"] is not None else "") + f"  ({escape(params)})",
                  soft_wrap=True)
    for key, entry in summary["keys"].items():
        table = Table(title=f"{key} ({entry['kind']})")
        for col in ("value", "trials", f"best {metric}", "trial"):
            table.add_column(col, justify="left" if col == "value" else "right")
        for label, count, value, number in entry["rows"]:
            table.add_row(escape(label), str(count), fmt(value), fmt(number))
        out.print(table)


def _show_value(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else fmt(value)

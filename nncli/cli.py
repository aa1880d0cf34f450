"""The command line: parse arguments, call the library, render results. No numerics here.

Exit codes: 0 success; 1 the job ran and failed (a gradient check failed, training diverged);
2 bad input (usage, config, data, checkpoint), reported without a traceback unless --debug.
"""

import functools
import json
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .atomic import jsonable
from .errors import ConfigError, NncliError, RunError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="markdown",
    help="Train small fully connected neural networks in plain NumPy, driven by YAML configs.",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
_debug = {"on": False}


def _version(value: bool):
    if value:
        print(f"nncli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    _debug["on"] = debug


def user_errors(command):
    """Turn the library's user errors into a message on stderr and exit code 2 (a traceback only with --debug)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:  # the reader of our output went away (| head): stop quietly, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except (NncliError, OSError) as e:
            if isinstance(e, OSError) and e.filename is None:  # not a path the user gave: a real failure
                raise
            if _debug["on"]:
                traceback.print_exc()  # --debug adds the traceback; the exit code stays that of bad input
            err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(2)
    return wrapper


def mean_std(entry):
    """'mean ± std' of an entry with those keys (std None: the mean alone); — for a missing entry or mean."""
    if entry is None or entry.get("mean") is None:
        return "—"
    return fmt(entry["mean"]) + (f" ± {fmt(entry['std'])}" if entry.get("std") is not None else "")


def stopped_at_once():
    """A second Ctrl-C ended training mid-step: say what is kept, exit 130."""
    err.print("[bold red]stopped at once[/] (second Ctrl-C); checkpoint.npz holds the last finished epoch")
    raise typer.Exit(130)


def fmt(value):
    """A metric value for a table or progress line: 4 decimals, or scientific when tiny; — for missing."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


@app.command()
@user_errors
def train(
    config: Optional[str] = typer.Argument(None, help="YAML config file (omit with --resume)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides KEY=VALUE, e.g. optimizer.lr=0.1 'model.hidden=[64,32]'."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run directory (default: output.dir of the config)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory from its checkpoint.npz."),
    force: bool = typer.Option(False, "--force", help="Replace a run already in the run directory; with --resume, accept config changes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Train once per seed (0-4, 0,2,5 or 3) into DIR/seed-K/ and report mean ± std."),
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
    from .config import load_config
    from .trainer import train as run_training

    seed_list = None
    if seeds is not None:
        from .seeds import parse_seeds

        seed_list = parse_seeds(seeds)
    overrides = list(overrides or ())
    if resume is not None:
        if out_dir is not None and Path(out_dir).resolve() != resume.resolve():
            raise ConfigError(f"--out {out_dir} with --resume {resume}: a run resumes in its own directory; "
                              f"copy {resume} to {out_dir} first to continue it there")
        if config is not None and "=" not in config:
            raise ConfigError(f"--resume {resume} takes no CONFIG (the run's own config.yaml is used), got {config!r}; "
                              f"changes go as KEY=VALUE overrides")
        if config is not None:
            overrides.insert(0, config)  # with --resume every positional argument is an override
        config, out_dir = resume / "config.yaml", resume
        if seed_list is not None:
            from .seeds import study_config_path

            config = study_config_path(resume, seed_list)
        elif not config.exists() and (resume / "seeds.json").exists():
            raise RunError(f"{resume} is a seed study: resume it with nncli train --resume {resume} --seeds SEEDS")
        elif not config.exists():
            raise RunError(f"{resume}: nothing to resume (no config.yaml); start it with nncli train CONFIG")
    elif config is None:
        raise ConfigError("missing CONFIG: nncli train CONFIG [KEY=VALUE ...], or nncli train --resume RUN_DIR")
    cfg = load_config(config, overrides)
    if seed_list is not None:
        from .cli_seeds import train_seeds

        return train_seeds(cfg, overrides, seeds, seed_list, out_dir, resume, force, quiet)
    progress = Progress(cfg.train.epochs, quiet)

    def on_start(trainer):
        if not quiet:
            print_setup(trainer)

    try:
        summary = run_training(cfg, out_dir, force=force, resume=resume is not None, on_start=on_start,
                               on_epoch=progress.update, on_warning=progress.warn)
    except KeyboardInterrupt:
        stopped_at_once()
    finally:
        progress.close()
    _print_summary(summary, out_dir or cfg.output.dir)
    if summary["status"] == "diverged":
        err.print(f"[bold red]diverged:[/] {escape(summary['error'])}")
        raise typer.Exit(1)
    if summary["status"] == "interrupted":
        err.print(f"interrupted by {summary['signal']}: checkpoint written; continue with "
                  f"nncli train --resume {out_dir or cfg.output.dir}", soft_wrap=True)
        raise typer.Exit(summary["exit_code"])


class Progress:
    """A tqdm bar over epochs on a terminal, one plain line per epoch otherwise (readable CI logs)."""

    def __init__(self, epochs, quiet):
        self.quiet, self.bar = quiet, None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=epochs, unit="epoch", dynamic_ncols=True)

    def update(self, row):
        if self.quiet:
            return
        shown = {k: fmt(v) for k, v in row.items() if k not in ("epoch", "seconds", "layers")}  # layers: metrics.jsonl
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)
        else:
            parts = " ".join(f"{k}={v}" for k, v in shown.items())
            print(f"epoch {row['epoch']}: {parts} ({row['seconds']:.2f}s)", file=sys.stderr, flush=True)

    def warn(self, message):
        """Warnings are shown even with --quiet: they are what a learner most needs to read."""
        text = f"warning: {message}"
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def print_setup(trainer):
    cfg, data, net = trainer.config, trainer.data, trainer.net
    table = Table(title=f"run {cfg.name} → {trainer.run_dir}", show_header=False)
    table.add_row("data", f"{data.source}: {len(data.train.y)} train"
                  + (f", {len(data.val.y)} val" if data.val is not None else "")
                  + (f", {len(data.test.y)} test" if data.test is not None else "")
                  + f"; {data.num_features} features, {data.num_classes} classes")
    table.add_row("model", f"hidden {cfg.model.hidden}, {cfg.model.activation}, init {cfg.model.init}, "
                  f"dropout {cfg.model.dropout}, loss {cfg.loss}")
    table.add_row("regularization", f"l2 {cfg.regularization.l2}, l1 {cfg.regularization.l1}")
    table.add_row("optimizer", f"{cfg.optimizer.name}, lr {cfg.optimizer.lr}, schedule {cfg.optimizer.schedule.name}")
    table.add_row("train", f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, {cfg.train.dtype}, seed {cfg.seed}")
    out.print(table)
    layers = Table(title="model")
    for col in ("parameter", "shape", "count"):
        layers.add_column(col, justify="right" if col == "count" else "left")
    for name, shape, count in net.layer_shapes():
        layers.add_row(name, "×".join(map(str, shape)), f"{count:,}")
    layers.add_row("total", "", f"{net.num_params:,}")
    out.print(layers)


def _print_summary(summary, run_dir):
    table = Table(title=f"{summary['name']}: {summary['status']} after {summary['epochs_run']} epochs")
    table.add_column("metric")
    table.add_column(f"best (epoch {summary['best_epoch']})", justify="right")
    table.add_column("final", justify="right")
    best, final = summary.get("best") or {}, summary.get("final") or {}
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        if key in final:
            table.add_row(key, fmt(best.get(key)), fmt(final.get(key)))
    out.print(table)
    rate = summary.get("samples_per_second")
    out.print(f"run directory: {run_dir}  ·  {summary['wall_seconds']:.1f}s"
              + (f"  ·  {rate:,.0f} samples/s" if rate else ""))


@app.command("eval")
@user_errors
def eval_(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by `nncli train` (best.npz or checkpoint.npz)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Evaluate on this labelled file instead of the recorded split."),
    split: Optional[str] = typer.Option(None, "--split", help="train | val | test (default: test when there is one, else val)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labels file for a .npy or IDX --data file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
):
    """Evaluate a checkpoint: loss, accuracy, per-class precision/recall, confusion matrix.

    Example: `nncli eval runs/spiral-2layer/best.npz --split val`
    """
    from .evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, data, split, labels)
    if as_json:
        print(json.dumps(jsonable(result)))  # strict JSON: a non-finite loss becomes null
        return
    head = Table(title=f"{checkpoint} ({result['position']}) on {result['split']}", show_header=False)
    head.add_row("samples", str(result["samples"]))
    head.add_row("data loss", fmt(result["loss"]))
    head.add_row("accuracy", f"{result['accuracy']:.2%}")
    out.print(head)
    per_class = Table(title="per class")
    for col in ("class", "precision", "recall", "support"):
        per_class.add_column(col, justify="left" if col == "class" else "right")
    for row in result["per_class"]:
        per_class.add_row(str(row["class"]), f"{row['precision']:.2%}", f"{row['recall']:.2%}", str(row["support"]))
    out.print(per_class)
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("")
    for c in result["classes"]:
        confusion.add_column(str(c), justify="right")
    for c, counts in zip(result["classes"], result["confusion"]):
        confusion.add_row(str(c), *map(str, counts))
    out.print(confusion)


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by `nncli train` (best.npz or checkpoint.npz)."),
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Data to label: .csv, .npz, .npy or IDX; a label column is allowed and ignored."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the CSV to this file (atomically) instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
):
    """Label new data with a checkpoint: CSV with the predicted label and one probability (softmax) or score (SVM) column per class.

    Columns: `predicted`, then `p_<label>` (softmax) or `score_<label>` (SVM) for every class, in the labels
    the network was trained on. Inputs are standardized with the checkpoint's training statistics.

    Example: `nncli predict runs/iris/best.npz data/iris.csv --out predictions.csv`
    """
    from .predict import predict_file, predict_to_file, write_csv

    if out_file is None:
        header, rows = predict_file(checkpoint, input_path)
        write_csv(sys.stdout, header, rows)
        return
    count = predict_to_file(checkpoint, input_path, out_file, force=force)
    err.print(f"wrote {count:,} predictions to {out_file}")


@app.command()
@user_errors
def gradcheck(
    config: Optional[Path] = typer.Argument(None, help="Check this config's model on a few samples of its data (default: every built-in piece)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides KEY=VALUE, as for train, e.g. model.activation=tanh."),
    samples: int = typer.Option(8, "--samples", min=1, help="Samples of the config's data to check on."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
):
    """Prove every backward pass against numerical gradients (float64, centered differences, h = 1e-5).

    Example: `nncli gradcheck` or `nncli gradcheck configs/spiral-3layer.yaml loss=svm`. Exit 1 if any check fails.
    """
    from . import gradient_check

    if config is None:
        results = gradient_check.builtin_checks()
    else:
        from .config import load_config
        from .data import load_dataset

        cfg = load_config(config, overrides or ())
        data = load_dataset(cfg.data, cfg.seed, np.float64)
        rows = np.arange(min(samples, len(data.train)))
        results = gradient_check.check_config(cfg, data.train.batch(rows), data.train.y[rows], data.num_classes)
    passed = all(r.passed for r in results)
    if as_json:
        print(json.dumps(jsonable({"passed": passed, "checks": [r.as_dict() for r in results]})))
    else:
        from .cli_graph import check_table

        out.print(check_table(results, "gradient check (float64, centered differences, h = 1e-5)"))
        failed = sum(r.status == "FAIL" for r in results)
        unchecked = sum(r.status == "not checked" for r in results)
        problems = [f"{failed} of {len(results)} checks failed"] if failed else []
        if unchecked:
            problems.append(f"{unchecked} gradient{'s' if unchecked > 1 else ''} not checked (every coordinate at a kink)")
        out.print("; ".join(problems) if problems else f"all {len(results)} checks passed")
    if not passed:
        raise typer.Exit(1)


def main():
    app()


from . import cli_graph, cli_sweep, cli_tools  # noqa: E402,F401  (register graph, backprop; sweep; schema, validate,
#                                                   init, inspect, runs, diff, plot)

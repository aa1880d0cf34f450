"""How the commands show things: number formats, the progress bar, the setup and summary tables."""

import os
import sys

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import err, out
from nncli.cli.tables import show
from nncli.nn.metrics import monitors


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


def survive_closed(stream, show, *args, **kwargs):
    """Print with `show` to `stream` (stdout or stderr); when its reader has gone (`nncli train CONFIG 2>&1 | head`),
    that stream's output ends quietly and training goes on: a closed pipe never stops a run, and its exit code stays
    the run's own. A stream closed before the start (`>&-`, None) is skipped."""
    if stream is None:
        return
    try:
        show(*args, **kwargs)
        stream.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # later output (and exit's flush) goes nowhere


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
            survive_closed(sys.stderr, self.bar.update, 1)
        else:
            parts = " ".join(f"{k}={v}" for k, v in shown.items())
            survive_closed(sys.stderr, print, f"epoch {row['epoch']}: {parts} ({row['seconds']:.2f}s)", file=sys.stderr)

    def warn(self, message):
        """Warnings are shown even with --quiet: they are what a learner most needs to read."""
        text = f"warning: {message}"
        if self.bar is not None:
            survive_closed(sys.stderr, self.bar.write, text, file=sys.stderr)
        else:
            survive_closed(sys.stderr, err.print, f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def print_setup(trainer):
    cfg, data, net = trainer.config, trainer.data, trainer.net
    table = Table(title=f"run {cfg.name} → {trainer.run_dir}", show_header=False)
    table.add_row(
        "data",
        f"{data.source}: {len(data.train.y)} train"
        + (f", {len(data.val.y)} val" if data.val is not None else "")
        + (f", {len(data.test.y)} test" if data.test is not None else "")
        + f"; {_inputs(data)}, {_outputs(data)}",
    )
    for key, text in _table_rows(data):
        table.add_row(key, text)
    table.add_row(
        "model",
        f"hidden {cfg.model.hidden}, {cfg.model.activation}, init {cfg.model.init}, "
        f"dropout {cfg.model.dropout}, {_norm(cfg.model)}loss {cfg.loss}",
    )
    if net.class_weights is not None:
        table.add_row("loss weights", escape(_weights(cfg.loss_weights, data.classes, net.class_weights)))
    table.add_row("regularization", f"l2 {cfg.regularization.l2}, l1 {cfg.regularization.l1}")
    table.add_row("optimizer", f"{cfg.optimizer.name}, lr {cfg.optimizer.lr}, schedule {cfg.optimizer.schedule.name}")
    table.add_row(
        "train", f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, {cfg.train.dtype}, seed {cfg.seed}"
    )
    show(table, wrap=(1,))
    layers = Table(title="model")
    for col in ("parameter", "shape", "count"):
        layers.add_column(col, justify="right" if col == "count" else "left")
    if data.encoding is not None and data.encoding.text_columns:
        layers.caption = f"{data.encoding.width} inputs: {_columns(data.encoding)}"
        layers.min_width = len(layers.caption)  # the caption on one line, not folded to the narrow table
    for name, shape, count in net.layer_shapes():
        layers.add_row(name, "×".join(map(str, shape)), f"{count:,}")
    layers.add_row("total", "", f"{net.num_params:,}")
    show(layers)


def _norm(model):
    """'batchnorm (momentum 0.9, eps 1e-05), ' or 'layernorm (eps 1e-05), '; '' without a norm."""
    if model.norm == "none":
        return ""
    momentum = f"momentum {model.norm_momentum:g}, " if model.norm == "batchnorm" else ""
    return f"{model.norm} ({momentum}eps {model.norm_eps:g}), "


def _outputs(data):
    """'3 classes', '1 target (standardized)', '4 attributes'."""
    n = data.num_classes
    if data.task == "classification":
        return f"{n} classes"
    word = "target" if data.task == "regression" else "attribute"
    scaled = " (standardized)" if data.target_mean is not None else ""
    return f"{n} {word}{'s' if n != 1 else ''}{scaled}"


def _weights(spec, classes, weights, shown=10):
    """'balanced: no 0.56, yes 5.00' (attributes: 'a0 +1.50 −0.60', its positives' and negatives' weights)."""
    parts = [
        f"{c} +{w[1]:.3g} −{w[0]:.3g}" if isinstance(w, list) else f"{c} {w:.3g}"
        for c, w in zip(classes[:shown], weights[:shown].tolist())
    ]
    more = f", … ({len(classes)} in all)" if len(classes) > shown else ""
    return f"{'balanced' if spec == 'balanced' else 'given'}: {', '.join(parts)}{more}"


def _inputs(data):
    """'4 features', or for a table with text columns '10 inputs from 7 columns'."""
    encoding = data.encoding
    if encoding is None or not encoding.text_columns:
        return f"{data.num_features} features"
    return f"{encoding.width} inputs from {len(encoding.columns)} columns"


def _columns(encoding):
    """'island → 3, sex → 2 (one-hot), 5 numeric': how many inputs each text column became."""
    text = [f"{c.name} → {c.width}" for c in encoding.columns if c.kind == "categorical"]
    numeric = sum(c.kind == "numeric" for c in encoding.columns)
    return ", ".join(text) + " (one-hot)" + (f", {numeric} numeric" if numeric else "")


def _table_rows(data):
    """The setup table's rows about a CSV's columns: the one-hot encoded ones, the missing cells and what was done."""
    if data.encoding is None:
        return []
    rows = [("columns", _columns(data.encoding))] if data.encoding.text_columns else []
    cells = (data.cleaning or {}).get("missing_cells") or {}
    if cells:
        total = sum(cells.values())
        shown = ", ".join(f"{name} {n}" for name, n in sorted(cells.items(), key=lambda kv: -kv[1]))
        strategy = data.encoding.missing
        if strategy == "drop":
            done = f"{data.cleaning['dropped_rows']} of {data.cleaning['rows']} rows dropped"
        else:
            done = f"filled with the training split's {strategy.replace('_', ' ')}"
            done += " value" if strategy == "most_frequent" else " (text columns: most frequent)"
        rows.append(("missing", f"{total} cells in {len(cells)} columns ({shown}); {done}"))
    return rows


def print_summary(summary, run_dir):
    """The run's best and final metrics; a run that diverged before finishing an epoch has none, and says so."""
    done, best_epoch = summary["epochs_run"], summary["best_epoch"]
    if summary["status"] == "diverged":
        title = (
            f"{summary['name']}: diverged in epoch {done + 1}, after {done} finished epoch{'s' if done != 1 else ''}"
        )
    else:
        title = f"{summary['name']}: {summary['status']} after {done} epochs"
    best, final = summary.get("best") or {}, summary.get("final") or {}
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("best" if best_epoch is None else f"best (epoch {best_epoch})", justify="right")
    table.add_column("final", justify="right")
    for key in monitors():
        if key in final:
            table.add_row(key, fmt(best.get(key)), fmt(final.get(key)))
    if table.row_count:
        show(table)
    else:
        out.print(f"{title}: no metrics to show", soft_wrap=True)
    rate = summary.get("samples_per_second")
    out.print(
        f"run directory: {run_dir}  ·  {summary['wall_seconds']:.1f}s"
        + (f"  ·  {rate:,.0f} samples/s" if rate else ""),
        soft_wrap=True,  # a path folded over two lines cannot be copied
    )

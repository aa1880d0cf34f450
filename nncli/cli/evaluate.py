"""`nncli eval` and `nncli predict`: a checkpoint on labelled or new data."""

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import app, check_choice, err, user_errors
from nncli.cli.render import fmt
from nncli.cli.tables import show
from nncli.errors import DataError
from nncli.training.atomic import jsonable


@app.command("eval")
@user_errors
def eval_(
    checkpoint: Path = typer.Argument(
        ...,
        metavar="CHECKPOINT|RUN_DIR",
        help="A checkpoint written by `nncli train` (best.npz or checkpoint.npz), or a run directory: its best.npz.",
    ),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Evaluate on this labelled file instead of the recorded split."
    ),
    split: Optional[str] = typer.Option(
        None, "--split", help="train | val | test (default: test when there is one, else val)."
    ),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labels file for a .npy or IDX --data file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
):
    """Evaluate a checkpoint: loss, accuracy, per-class precision/recall, confusion matrix; for regression RMSE,
    MAE, R² and residual quantiles per target, in the targets' units; for attributes a per-attribute table.

    Example: `nncli eval runs/spiral-2layer --split val` (a run directory: its best.npz)
    """
    from nncli.evaluation.evaluate import SPLITS, evaluate_checkpoint
    from nncli.evaluation.inspection import run_checkpoint

    check_choice("--split", split, SPLITS)
    if labels is not None and data is None:
        raise DataError(
            f"--labels {labels} goes with --data FILE (.npy or IDX features); without --data the "
            f"checkpoint's own data split is evaluated"
        )
    checkpoint = _checkpoint_of(checkpoint, run_checkpoint)
    result = evaluate_checkpoint(checkpoint, data, split, labels)
    if as_json:
        print(json.dumps(jsonable(result)))  # strict JSON: a non-finite loss becomes null
    else:
        _print_report(checkpoint, result)


def _checkpoint_of(path, run_checkpoint):
    """The checkpoint file `path` names; for a run directory its best.npz, said on stderr (stdout may be JSON)."""
    checkpoint = run_checkpoint(path)
    if checkpoint != path:
        err.print(
            f"evaluating {escape(str(checkpoint))}, the best checkpoint of run {escape(str(path))}", soft_wrap=True
        )
    return checkpoint


def _print_report(checkpoint, result):
    """The evaluation as tables: totals, then per class (precision/recall/support and the confusion matrix), per
    target (rmse/mae/r2 and residual quantiles) or per attribute, by the checkpoint's task."""
    task = result.get("task", "classification")
    head = Table(title=f"{checkpoint} ({result['position']}) on {result['split']}", show_header=False)
    head.add_row("samples", str(result["samples"]))
    head.add_row("data loss", fmt(result["loss"]))
    if task == "regression":
        for key in ("rmse", "mae", "r2"):
            head.add_row(key if key != "r2" else "R²", fmt(result[key]))
    else:
        head.add_row("accuracy" if task == "classification" else "mean accuracy", f"{result['accuracy']:.2%}")
    if task == "classification":
        head.add_row("balanced accuracy", f"{result['balanced_accuracy']:.2%}")
    if task == "attributes":
        head.add_row("exact match", f"{result['exact_match']:.2%}")
        head.add_row("micro F1", fmt(result["micro_f1"]))
    show(head)
    {"classification": _print_classes, "regression": _print_targets, "attributes": _print_attributes}[task](result)


def _print_classes(result):
    """Per-class precision/recall/support and the confusion matrix."""
    per_class = Table(title="per class")
    for col in ("class", "precision", "recall", "support"):
        per_class.add_column(col, justify="left" if col == "class" else "right")
    for row in result["per_class"]:
        per_class.add_row(str(row["class"]), f"{row['precision']:.2%}", f"{row['recall']:.2%}", str(row["support"]))
    show(per_class)
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("")
    for c in result["classes"]:
        confusion.add_column(str(c), justify="right")
    for c, counts in zip(result["classes"], result["confusion"]):
        confusion.add_row(str(c), *map(str, counts))
    show(confusion)


def _print_targets(result):
    """Per target, in its units: rmse, mae and R², then the quantiles of the residual predicted − true."""
    metrics = Table(title="per target, in its units")
    quantiles = Table(title="quantiles of the residual predicted − true")
    for table, columns in ((metrics, ("rmse", "mae", "R²")), (quantiles, result["quantiles"])):
        table.add_column("target")
        for col in columns:
            table.add_column(col, justify="right")
    for row in result["per_target"]:
        metrics.add_row(str(row["target"]), *map(fmt, (row["rmse"], row["mae"], row["r2"])))
        quantiles.add_row(str(row["target"]), *(fmt(row["residual_quantiles"][q]) for q in result["quantiles"]))
    show(metrics)
    show(quantiles)


def _print_attributes(result):
    """Per attribute: accuracy, precision, recall and support (the samples where it is 1)."""
    table = Table(title="per attribute (predicted 1 when p > ½)")
    for col in ("attribute", "accuracy", "precision", "recall", "support"):
        table.add_column(col, justify="left" if col == "attribute" else "right")
    for row in result["per_attribute"]:
        rates = (f"{row[key]:.2%}" for key in ("accuracy", "precision", "recall"))
        table.add_row(str(row["attribute"]), *rates, str(row["support"]))
    show(table)


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by `nncli train` (best.npz or checkpoint.npz)."),
    input_path: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="Data to label: .csv, .npz, .npy or IDX, or - for a CSV on stdin; a label column is allowed and ignored.",
    ),
    out_file: Optional[Path] = typer.Option(
        None, "--out", help="Write the CSV to this file (atomically) instead of stdout; - is stdout."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    id_column: Optional[str] = typer.Option(
        None, "--id-column", help="Copy this CSV column (e.g. an id) into the output, as its first column."
    ),
):
    """Label new data with a checkpoint: CSV with the predicted label and a probability (softmax) or score (SVM) per class.

    Columns: `predicted`, then `p_<label>` (softmax) or `score_<label>` (SVM) for every class, in the labels
    the network was trained on; regression: `predicted_<target>` per target, in its units; attributes: `<attr>`
    (0 or 1) per attribute, then `p_<attr>`. Inputs are standardized with the checkpoint's training statistics.

    Example: `nncli predict runs/iris/best.npz data/iris.csv --out predictions.csv`; `... - --out -` is a pipe.
    """
    from nncli.evaluation.predict import STDIN, predict_file, predict_to_file, readable, write_csv

    with readable(input_path) as path:
        if out_file is None or str(out_file) == STDIN:
            header, chunks = predict_file(checkpoint, path, id_column=id_column)
            write_csv(sys.stdout, header, chunks)
            return
        count = predict_to_file(checkpoint, path, out_file, force=force, id_column=id_column)
    err.print(f"wrote {count:,} predictions to {out_file}", soft_wrap=True)

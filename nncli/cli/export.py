"""`nncli export`: a checkpoint as a model other runtimes read (ONNX)."""

from pathlib import Path

import typer

from nncli.cli.app import app, check_choice, err, user_errors


@app.command()
@user_errors
def export(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by `nncli train` (best.npz or checkpoint.npz)."),
    format: str = typer.Option("onnx", "--format", help="The model format: onnx."),
    out_file: Path = typer.Option(..., "--out", help="The model file to write (atomically), e.g. model.onnx."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
):
    """Export a checkpoint's whole inference path as one ONNX graph: the CSV columns' encoding (missing-value fills,
    one-hot text columns), standardization, every layer in evaluation mode and the head (label and probabilities or
    scores; attributes and probabilities; regression values in the targets' units).

    Inputs: `features` (N, numeric columns), and `categories` (N, text columns, strings) when the model one-hot
    encodes text columns. Needs the onnx extra: `pip install 'nncli[onnx]'`.

    Example: `nncli export runs/iris/best.npz --format onnx --out iris.onnx`
    """
    from nncli.export import FORMATS, export_checkpoint

    check_choice("--format", format, FORMATS)
    done = export_checkpoint(checkpoint, out_file, format, force=force)
    err.print(
        f"wrote {out_file} (ONNX, opset {done['opset']}): inputs {', '.join(done['inputs'])}; "
        f"outputs {', '.join(done['outputs'])}",
        soft_wrap=True,
    )

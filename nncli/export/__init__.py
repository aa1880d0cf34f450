"""Export a checkpoint to a format other runtimes read: checkpoint → network → one ONNX graph (`onnx_model`).

`onnx` is an optional extra (`pip install 'nncli[onnx]'`), imported only when a model is exported.
"""

import os
from pathlib import Path

from nncli.errors import Hint, OutputError, require
from nncli.evaluation.evaluate import load_model
from nncli.export.graph import OPSET
from nncli.training.atomic import atomic_write_bytes, check_output

FORMATS = ("onnx",)

__all__ = ["FORMATS", "OPSET", "export_checkpoint"]


def export_checkpoint(checkpoint, out_path, format="onnx", force=False):
    """Write checkpoint `checkpoint` as an ONNX model to `out_path`, atomically; an existing file only with `force`,
    never the checkpoint itself, never through a symbolic link. Returns {format, opset, inputs, outputs}: the
    inputs' and outputs' names."""
    if format not in FORMATS:
        raise OutputError(f"the export format must be one of {', '.join(FORMATS)}, got {format!r}")
    check_output(out_path, force)
    if Path(out_path).exists() and Path(checkpoint).exists() and os.path.samefile(out_path, checkpoint):
        raise OutputError(f"cannot write {out_path}: it is the checkpoint being exported", hints=(Hint.ELSEWHERE,))
    onnx = require("onnx", "onnx", "ONNX export")
    from nncli.export.onnx_model import onnx_model

    net, ckpt, config = load_model(checkpoint)
    model = onnx_model(onnx, net, ckpt, config, checkpoint)
    onnx.checker.check_model(model, full_check=True)  # a malformed graph is a bug here, never a file written
    atomic_write_bytes(out_path, model.SerializeToString())
    return {
        "format": format,
        "opset": OPSET,
        "inputs": [i.name for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
    }

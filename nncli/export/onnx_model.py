"""A checkpoint's whole inference path as one ONNX graph: inputs → encoding → standardization → every layer of the
network in evaluation mode → the head its loss calls for.

  layers   Affine → Gemm; relu → Relu, leaky_relu → LeakyRelu(alpha = negative_slope), sigmoid → Sigmoid,
           tanh → Tanh, elu → Elu(alpha) (in float64 its definition, `_elu`); batchnorm → BatchNormalization
           with the running averages (evaluation mode); layernorm → LayerNormalization over each row's units;
           dropout is the identity in evaluation
  head     softmax: label, probabilities, scores; svm: label, scores; logistic: attributes (0/1), probabilities
           (σ of each score), scores; l2, l1, huber: values, in the targets' original units

The graph computes in the network's dtype (train.dtype), with ONNX's standard operators at opset `graph.OPSET`.
"""

import json

import numpy as np

from nncli import __version__
from nncli.errors import CheckpointError
from nncli.export.graph import OPSET, Graph
from nncli.export.inputs import CATEGORIES, FEATURES, encoding_of, network_input
from nncli.nn.layers import Affine, Dropout
from nncli.nn.losses import LOSSES
from nncli.training.checkpoint import sha256_of


def _batchnorm(g, gate, x):
    i = g.name("bn")
    params = [gate.gamma, gate.beta, gate.running_mean, gate.running_var]
    names = [g.const(f"{stem}_{i}", p) for stem, p in zip(("gamma", "beta", "running_mean", "running_var"), params)]
    return g.op("BatchNormalization", [x, *names], i, epsilon=gate.eps)


def _elu(g, gate, x):
    """Elu(alpha); in float64, which onnxruntime's Elu lacks, its definition: x > 0 ? x : alpha·(exp(min(x, 0)) − 1)."""
    if g.dtype == np.float32:
        return g.op("Elu", [x], alpha=float(gate.alpha))
    zero = g.const("zero", 0.0)
    negative = g.op("Sub", [g.op("Exp", [g.op("Min", [x, zero])]), g.const("one", 1.0)])
    return g.op("Where", [g.op("Greater", [x, zero]), x, g.op("Mul", [negative, g.const("alpha", gate.alpha)])], "elu")


def _layernorm(g, gate, x):
    i = g.name("ln")
    gamma, beta = g.const(f"gamma_{i}", gate.gamma), g.const(f"beta_{i}", gate.beta)
    return g.op("LayerNormalization", [x, gamma, beta], i, axis=-1, epsilon=gate.eps)


GATES = {  # a gate's `name` → its ONNX nodes, in evaluation mode
    "relu": lambda g, gate, x: g.op("Relu", [x]),
    "leaky_relu": lambda g, gate, x: g.op("LeakyRelu", [x], alpha=float(gate.negative_slope)),
    "sigmoid": lambda g, gate, x: g.op("Sigmoid", [x]),
    "tanh": lambda g, gate, x: g.op("Tanh", [x]),
    "elu": _elu,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
}


def _layers(g, net, x, source):
    """The network's layers in evaluation mode, from the input x to the scores."""
    for layer in net.layers:
        if isinstance(layer, Affine):
            x = g.op("Gemm", [x, g.const("W", layer.W), g.const("b", layer.b)], "affine")
        elif isinstance(layer, Dropout):
            continue  # the identity in evaluation
        elif getattr(layer, "name", None) in GATES:
            x = GATES[layer.name](g, layer, x)
        else:
            what = getattr(layer, "name", type(layer).__name__)
            raise CheckpointError(
                f"checkpoint {source}: cannot be exported to ONNX: its layer {what!r} has no ONNX form here "
                f"(exportable: affine, dropout, {', '.join(GATES)})"
            )
    return x


OUTPUTS = ("label", "attributes", "probabilities", "scores", "values")


def _head(g, ckpt, loss, scores):
    """[(output name, value name, element type, width or None for (N,))] of the loss's head on the scores."""
    C, elem = len(ckpt.classes), g.elem
    outputs = []
    if LOSSES[loss].task == "regression":
        values = scores
        if ckpt.target_mean is not None:
            scaled = g.op("Mul", [scores, g.const("target_std", ckpt.target_std[None, :])])
            values = g.op("Add", [scaled, g.const("target_mean", ckpt.target_mean[None, :])])
        return [("values", values, elem, C)]
    if LOSSES[loss].task == "attributes":
        on = g.op("Cast", [g.op("Greater", [scores, g.const("zero", 0.0)])], to=g.onnx.TensorProto.INT64)
        outputs = [("attributes", on, g.onnx.TensorProto.INT64, C)]
        return [*outputs, ("probabilities", g.op("Sigmoid", [scores]), elem, C), ("scores", scores, elem, C)]
    best = g.op("ArgMax", [scores], "class_id", axis=1, keepdims=0)
    label = g.op("Gather", [g.text("classes", ckpt.classes, (C,)), best], axis=0)
    outputs = [("label", label, g.onnx.TensorProto.STRING, None)]
    if LOSSES[loss].probabilities:
        outputs.append(("probabilities", g.op("Softmax", [scores], axis=1), elem, C))
    return [*outputs, ("scores", scores, elem, C)]


def onnx_model(onnx, net, ckpt, config, source):
    """The ModelProto of checkpoint `source` (its loaded network, Checkpoint and config): one graph from a CSV
    row's cells to the head's outputs; feature names in the inputs' doc_string, everything else in metadata_props."""
    g = Graph(onnx, net.dtype, reserved=(FEATURES, CATEGORIES, *OUTPUTS))
    inputs, x = network_input(g, ckpt)
    scores = _layers(g, net, x, source)
    outputs = []
    for name, value, elem, width in _head(g, ckpt, config.loss, scores):
        outputs.append(g.tensor_info(name, elem, width))
        g.op("Identity", [value], output=name)
    return g.model("nncli", inputs, outputs, _doc(ckpt, config), _metadata(ckpt, config, net, source))


def _doc(ckpt, config):
    sizes = " → ".join(map(str, ckpt.layer_sizes))
    return (
        f"nncli {ckpt.task} network {sizes} ({config.model.activation}, norm {config.model.norm}, loss {config.loss})"
    )


def _metadata(ckpt, config, net, source):
    """The model's metadata_props: every value text, lists and objects as JSON."""
    encoding = encoding_of(ckpt)
    columns = {kind: [c.name for c in encoding.columns if c.kind == kind] for kind in ("numeric", "categorical")}
    return {
        "nncli_version": __version__,
        "opset": str(OPSET),
        "checkpoint": str(source),
        "checkpoint_sha256": sha256_of(source),
        "epoch": str(ckpt.epoch),
        "task": ckpt.task,
        "loss": config.loss,
        "classes": json.dumps(ckpt.classes),
        "dtype": np.dtype(net.dtype).name,
        FEATURES: json.dumps(columns["numeric"]),
        CATEGORIES: json.dumps({c.name: list(c.categories) for c in encoding.columns if c.kind == "categorical"}),
        "input_names": json.dumps(encoding.input_names),
        "standardized": json.dumps(ckpt.norm_mean is not None),
    }

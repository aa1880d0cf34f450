"""An ONNX graph under construction, built only through `onnx.helper`: nodes, named constants and the model.

`onnx` is passed in (imported lazily by the caller, an optional extra), so this module imports without it.
"""

import numpy as np

OPSET = 19  # string Equal (the one-hot of text columns) needs 19; LayerNormalization 17
IR_VERSION = 9  # the IR that goes with opset 19 (onnx 1.14): any runtime that reads opset 19 reads it


class Graph:
    """Nodes and initializers of one graph in `dtype` (the network's: float32 or float64), each given a unique name."""

    def __init__(self, onnx, dtype, reserved=()):
        """`reserved`: the inputs' and outputs' names, which no value made from a stem (a column's name) may take."""
        self.onnx, self.helper = onnx, onnx.helper
        self.dtype = np.dtype(dtype)
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.initializers, self._used = [], [], dict.fromkeys(reserved, 1)

    def name(self, stem):
        """`stem` the first time, then stem_1, stem_2, …"""
        count = self._used.get(stem, 0)
        self._used[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count}"

    def const(self, stem, value, dtype=None):
        """A constant tensor (an initializer) holding `value`, in the graph's dtype unless `dtype`; returns its name."""
        array = np.asarray(value, dtype=dtype or self.dtype)
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def text(self, stem, values, shape):
        """A constant string tensor of `values` reshaped to `shape`."""
        return self.const(stem, np.array([str(v) for v in values], dtype=object).reshape(shape), dtype=object)

    def op(self, op_type, inputs, stem=None, output=None, **attributes):
        """Append one node; returns the name of its (single) output, `output` or a fresh one from `stem`."""
        out = output or self.name(stem or op_type.lower())
        self.nodes.append(
            self.helper.make_node(op_type, inputs, [out], name=self.name(f"{op_type}_node"), **attributes)
        )
        return out

    def columns(self, x, indices, stem):
        """Columns `indices` of the (N, D) tensor `x`, as (N, len(indices))."""
        return self.op("Gather", [x, self.const(f"{stem}_at", indices, np.int64)], stem, axis=1)

    def tensor_info(self, name, elem, width, doc=""):
        """The declaration of an input or output (N, width) (N the batch, a symbolic dimension); width None: (N,)."""
        shape = ["N"] if width is None else ["N", int(width)]
        return self.helper.make_tensor_value_info(name, elem, shape, doc_string=doc)

    def model(self, name, inputs, outputs, doc, metadata):
        """The ModelProto of this graph, with `metadata` ({key: text}) as its metadata_props."""
        graph = self.helper.make_graph(self.nodes, name, inputs, outputs, self.initializers, doc_string=doc)
        model = self.helper.make_model(
            graph,
            opset_imports=[self.helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="nncli",
            doc_string=doc,
        )
        self.helper.set_model_props(model, metadata)
        return model

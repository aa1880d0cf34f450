"""The graph's inputs and their encoding: from a CSV's columns to the network's standardized inputs.

The model takes what a CSV row holds, split by kind:

  features    (N, n) floats: the numeric columns in the training order; NaN marks a missing cell, replaced by the
              column's training fill (mean, median or most frequent value) when the model has one
  categories  (N, m) strings, only when the model one-hot encodes text columns: those columns' cells, as written
              (stripped); a cell in data.na_values is missing, replaced by the column's most frequent category when
              the model has a fill

Each text column becomes one input per category (Equal against the sorted categories, cast to 0/1), in the
encoding's column order, then every input is standardized with the training split's mean and std. What `nncli
predict` refuses — a missing cell the model has no fill for, a category not seen in training under
data.unknown_category error — cannot be refused inside a graph: such a row's outputs are NaN instead.
"""

import numpy as np

from nncli.data.encoding import Encoding

FEATURES, CATEGORIES = "features", "categories"


def encoding_of(ckpt):
    """The checkpoint's Encoding; one of plain numeric inputs (named by feature_names, else x0, x1, …) without."""
    if ckpt.encoding is not None:
        return ckpt.encoding
    names = ckpt.meta.get("feature_names") or [f"x{j}" for j in range(ckpt.layer_sizes[0])]
    return Encoding.numeric([str(n) for n in names])


def network_input(g, ckpt):
    """(inputs, x): the graph's input declarations and the name of the standardized (N, D) network input."""
    encoding = encoding_of(ckpt)
    numeric = [c for c in encoding.columns if c.kind == "numeric"]
    text = [c for c in encoding.columns if c.kind == "categorical"]
    inputs = []
    if numeric:
        inputs.append(g.tensor_info(FEATURES, g.elem, len(numeric), _features_doc(numeric)))
        x = _imputed(g, FEATURES, [c.fill for c in numeric])
    if text:
        doc = f"text columns, as written: {', '.join(c.name for c in text)}; missing: {', '.join(encoding.na_values)}"
        inputs.append(g.tensor_info(CATEGORIES, g.onnx.TensorProto.STRING, len(text), doc))
        x = _encoded(g, x if numeric else None, encoding)
    if ckpt.norm_mean is not None:
        centered = g.op("Sub", [x, g.const("norm_mean", ckpt.norm_mean[None, :])])
        x = g.op("Div", [centered, g.const("norm_std", ckpt.norm_std[None, :])], "standardized")
    return inputs, x


def _encoded(g, numbers, encoding):
    """The (N, D) network inputs in the encoding's column order: each numeric column taken from `numbers` (the
    imputed features), each text column one-hot encoded from the categories input."""
    parts, seen = [], {"numeric": 0, "categorical": 0}
    for column in encoding.columns:
        k = seen[column.kind]
        seen[column.kind] += 1
        if column.kind == "numeric":
            parts.append(g.columns(numbers, [k], column.name))
        else:
            parts.append(_one_hot(g, k, column, encoding))
    return g.op("Concat", parts, "encoded", axis=1)


def _features_doc(numeric):
    fills = [c for c in numeric if c.fill is not None]
    doc = f"numeric columns, in order: {', '.join(c.name for c in numeric)}; NaN marks a missing value"
    return doc + (", filled with the training split's value" if fills else " (no fill: the row's outputs are NaN)")


def _imputed(g, x, fills):
    """x with each NaN replaced by its column's fill (a column without one keeps NaN)."""
    if all(f is None for f in fills):
        return x
    fill = g.const("fill", np.array([[np.nan if f is None else f for f in fills]]))
    return g.op("Where", [g.op("IsNaN", [x]), fill, x], "imputed")


def _one_hot(g, k, column, encoding):
    """The (N, K) one-hot block of text column k of the categories input: 1 where the cell is the category; a missing cell is
    the fill's row (or NaN without a fill); an unseen category all zeros, or NaN under unknown_category error."""
    K, cell = len(column.categories), g.columns(CATEGORIES, [k], f"{column.name}_cell")
    hit = g.op(
        "Cast", [g.op("Equal", [cell, g.text(f"{column.name}_categories", column.categories, (1, K))])], to=g.elem
    )
    block, bad, missing = hit, None, _missing(g, cell, encoding.na_values)
    if column.fill is not None and missing is not None:
        e_fill = (np.asarray(column.categories) == column.fill)[None, :]
        block = g.op("Add", [hit, g.op("Mul", [missing, g.const(f"{column.name}_fill", e_fill)])], column.name)
    if encoding.unknown_category == "error":  # neither a category nor a missing cell that is filled
        known = g.op("ReduceMax", [block, g.const("axis", [1], np.int64)], keepdims=1)
        bad = g.op("Less", [known, g.const("half", 0.5)])
    elif column.fill is None and missing is not None:
        bad = g.op("Greater", [missing, g.const("half", 0.5)])
    if bad is not None:
        block = g.op("Where", [bad, g.const("nan", np.nan), block], column.name)
    return block


def _missing(g, cell, na_values):
    """(N, 1): 1 where the text cell (N, 1) is one of `na_values`, else 0; None when there are none (data.na_values [])."""
    if not na_values:
        return None
    is_na = g.op("Equal", [cell, g.text("na_values", na_values, (1, len(na_values)))])
    return g.op("ReduceMax", [g.op("Cast", [is_na], to=g.elem), g.const("axis", [1], np.int64)], keepdims=1)

"""`nncli export CHECKPOINT --format onnx --out model.onnx`: onnxruntime's outputs on held-out rows equal `nncli
predict`'s and the network's own eval-mode outputs for every activation, loss, norm, with and without
standardization; text columns and missing cells; refusals and what is never overwritten."""

import csv
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
TASKS = {"softmax": "classes", "svm": "classes", "logistic": "attributes", "l2": "values", "l1": "values"}
TASKS["huber"] = "values"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, *words):
    """Exit 2, no traceback, and every word in the message."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def table(kind, n, seed):
    """A CSV of 4 numeric features a..d and the targets `kind` asks for: a label (3 classes), 3 attributes (0/1)
    or 2 regression targets; features on different scales, so standardization matters."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)) * [1.0, 3.0, 0.5, 10.0] + [0.0, 5.0, -2.0, 40.0]
    z = (X - [0.0, 5.0, -2.0, 40.0]) / [1.0, 3.0, 0.5, 10.0]
    if kind == "classes":
        names, Y = (
            ["label"],
            [[["ant", "bee", "cat"][k]] for k in (z[:, 0] + z[:, 1] > 0).astype(int) + (z[:, 2] > 0.5)],
        )
    elif kind == "attributes":
        names, Y = ["p", "q", "r"], (z[:, :3] + 0.3 * z[:, 1:] > 0).astype(int).tolist()
    else:
        names, Y = ["u", "v"], np.c_[np.sin(z[:, 0]) * 30 + 100, z[:, 1] * z[:, 2]].round(5).tolist()
    lines = [",".join(["a", "b", "c", "d", *names])]
    lines += [",".join([*(f"{x:.6f}" for x in row), *map(str, y)]) for row, y in zip(X, Y)]
    return "\n".join(lines) + "\n"


def train(tmp_path, name, text, target, *overrides):
    """Train 6 epochs on the CSV `text`: returns the checkpoint."""
    source = tmp_path / f"{name}.csv"
    source.write_text(text)
    raw = {
        "name": name,
        "seed": 0,
        "data": {"source": str(source), "target": target, "val_fraction": 0.25},
        "model": {"hidden": [8, 6]},
        "optimizer": {"name": "adam", "lr": 0.02},
        "train": {"epochs": 6, "batch_size": 16},
    }
    config = tmp_path / f"{name}.yaml"
    config.write_text(json.dumps(raw))
    result = run("train", config, *overrides, "--out", tmp_path / name, "--quiet")
    assert result.exit_code == 0, result.output
    return tmp_path / name / "best.npz"


def export(tmp_path, checkpoint, name="model.onnx", *extra):
    out = tmp_path / name
    result = run("export", checkpoint, "--format", "onnx", "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return out


def csv_columns(path):
    """{column name: list of cell texts} of a CSV file."""
    header, *rows = list(csv.reader(io.StringIO(Path(path).read_text())))
    return {name: [r[j] for r in rows] for j, name in enumerate(header)}


def session_outputs(model_path, feeds):
    """{output name: array} of the ONNX model run by onnxruntime."""
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def feeds_of(model_path, path, na_values=("", "NA")):
    """The model's inputs from a CSV: its numeric columns as features (NaN for a missing cell), text ones as is."""
    model = onnx.load(str(model_path))
    meta = {p.key: p.value for p in model.metadata_props}
    cells = csv_columns(path)
    dtype = np.dtype(meta["dtype"])
    feeds = {}
    numeric = json.loads(meta["features"])
    if numeric:
        values = [[np.nan if c in na_values else float(c) for c in cells[name]] for name in numeric]
        feeds["features"] = np.array(values, dtype).T.reshape(-1, len(numeric))
    text = list(json.loads(meta["categories"]))
    if text:
        feeds["categories"] = np.array([cells[name] for name in text], dtype=object).T
    return feeds


def predicted(checkpoint, path):
    """`nncli predict`'s CSV as {column: list of texts}."""
    result = run("predict", checkpoint, path)
    assert result.exit_code == 0, result.output
    header, *rows = list(csv.reader(io.StringIO(result.output)))
    return {name: [r[j] for r in rows] for j, name in enumerate(header)}


def assert_same_as_predict(outputs, ours, kind, names):
    """onnxruntime's outputs equal predict's columns: labels exactly, numbers within 1e-5 (predict writes 6
    significant digits)."""

    def column(prefix):
        return np.array([[float(v) for v in ours[f"{prefix}{c}"]] for c in names]).T

    if kind == "classes":
        assert outputs["label"].tolist() == ours["predicted"]
        key, prefix = ("probabilities", "p_") if "probabilities" in outputs else ("scores", "score_")
        np.testing.assert_allclose(outputs[key], column(prefix), rtol=1e-5, atol=1e-5)
    elif kind == "attributes":
        assert outputs["attributes"].tolist() == column("").astype(int).tolist()
        np.testing.assert_allclose(outputs["probabilities"], column("p_"), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(outputs["values"], column("predicted_"), rtol=1e-5, atol=1e-5)


def network_outputs(checkpoint, feeds):
    """The network's own eval-mode outputs in full precision on the features (all numeric, no NaN)."""
    from nncli.data.scaling import standardize
    from nncli.evaluation.evaluate import load_model
    from nncli.evaluation.reports import in_units
    from nncli.nn.losses import sigmoid, softmax

    net, ckpt, config = load_model(checkpoint)
    X = feeds["features"].astype(np.float64)
    if ckpt.norm_mean is not None:
        X = standardize(X, ckpt.norm_mean, ckpt.norm_std)
    scores = net.predict_scores(X).astype(np.float64)
    if ckpt.task == "regression":
        return {"values": in_units(scores, ckpt)}
    if ckpt.task == "attributes":
        return {"probabilities": sigmoid(scores), "scores": scores}
    return {"probabilities": softmax(scores), "scores": scores} if config.loss == "softmax" else {"scores": scores}


ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "elu"]
NORMS = ["none", "batchnorm", "layernorm"]
CASES = [
    (act, "softmax", norm, (i + j) % 2 == 0, ()) for i, act in enumerate(ACTIVATIONS) for j, norm in enumerate(NORMS)
]
CASES += [(ACTIVATIONS[i % 5], loss, NORMS[i % 3], std, ()) for i, loss in enumerate(TASKS) for std in (True, False)]
CASES += [
    ("relu", "softmax", "none", True, ("model.hidden=[]",)),
    ("tanh", "svm", "batchnorm", False, ("model.dropout=0.3",)),
]


@pytest.mark.parametrize(
    ("activation", "loss", "norm", "standardize", "extra"),
    CASES,
    ids=[f"{a}-{loss}-{n}-{'std' if s else 'raw'}{''.join(e)}" for a, loss, n, s, e in CASES],
)
def test_onnxruntime_equals_predict_and_the_network_on_held_out_rows(
    tmp_path, activation, loss, norm, standardize, extra
):
    kind = TASKS[loss]
    target = {"classes": "label", "attributes": ["p", "q", "r"], "values": ["u", "v"]}[kind]
    dtype = "float64" if activation in ("tanh", "elu") else "float32"
    overrides = [f"loss={loss}", f"model.activation={activation}", f"model.norm={norm}", f"train.dtype={dtype}"]
    overrides += [f"data.standardize={str(standardize).lower()}", "model.negative_slope=0.2", "model.alpha=0.7", *extra]
    checkpoint = train(tmp_path, "t", table(kind, 160, 0), target, *overrides)
    held_out = tmp_path / "new.csv"
    held_out.write_text(table(kind, 50, 1))
    model = export(tmp_path, checkpoint)
    feeds = feeds_of(model, held_out)
    assert feeds["features"].dtype == np.dtype(dtype)
    outputs = session_outputs(model, feeds)
    classes = json.loads({p.key: p.value for p in onnx.load(str(model)).metadata_props}["classes"])
    assert_same_as_predict(outputs, predicted(checkpoint, held_out), kind, classes)
    for key, value in network_outputs(checkpoint, feeds).items():
        np.testing.assert_allclose(outputs[key], value, rtol=1e-5, atol=1e-5, err_msg=key)


def test_penguins_text_columns_and_filled_cells_equal_predict(tmp_path):
    """Text columns one-hot encoded and missing cells (NA) filled with the training medians inside the graph."""
    from nncli.data.table import NA_VALUES

    penguins = ROOT / "data" / "penguins.csv"
    out = tmp_path / "p"
    result = run("train", ROOT / "configs" / "penguins.yaml", "train.epochs=3", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    header, *rows = penguins.read_text().splitlines()
    unmeasured = ",".join("Dream" if name == "island" else "NA" for name in header.split(","))
    held_out = tmp_path / "birds.csv"
    with_na = [r for r in rows if ",NA" in r]
    held_out.write_text("\n".join([header, *rows[::7], *with_na, unmeasured]) + "\n")
    model = export(tmp_path, out / "best.npz")
    outputs = session_outputs(model, feeds_of(model, held_out, NA_VALUES))
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert json.loads(meta["categories"]) == {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]}
    assert_same_as_predict(outputs, predicted(out / "best.npz", held_out), "classes", json.loads(meta["classes"]))


def test_a_cell_predict_refuses_gives_nan_outputs_in_its_row_only(tmp_path):
    """Trained with data.missing error and unknown_category error: a missing cell or an unseen category, which
    predict refuses, makes that row's outputs NaN; the other rows are answered."""
    lines = ["x,color,label", *(f"{i % 2 * 4 + 0.1 * i:.2f},{['red', 'blue'][i % 2]},{'ab'[i % 2]}" for i in range(40))]
    checkpoint = train(tmp_path, "c", "\n".join(lines) + "\n", "label", "model.hidden=[4]")
    model = export(tmp_path, checkpoint)
    feeds = {
        "features": np.array([[0.5], [np.nan], [4.2], [4.0]], np.float32),
        "categories": np.array([["red"], ["red"], ["green"], ["NA"]], dtype=object),
    }
    probabilities = session_outputs(model, feeds)["probabilities"]
    assert np.isfinite(probabilities[0]).all() and np.isnan(probabilities[1:]).all()


def test_an_unseen_category_under_ignore_and_filled_cells_equal_predict(tmp_path):
    lines = ["x,color,label", *(f"{i % 2 * 4 + 0.1 * i:.2f},{['red', 'blue'][i % 2]},{'ab'[i % 2]}" for i in range(40))]
    extra = ("model.hidden=[4]", "data.unknown_category=ignore", "data.missing=median")
    checkpoint = train(tmp_path, "c", "\n".join(lines) + "\n", "label", *extra)
    held_out = tmp_path / "new.csv"
    held_out.write_text("x,color\n0.5,green\nNA,NA\n4.1,\n")
    model = export(tmp_path, checkpoint)
    outputs = session_outputs(model, feeds_of(model, held_out))
    assert np.isfinite(outputs["probabilities"]).all()
    assert_same_as_predict(outputs, predicted(checkpoint, held_out), "classes", ["a", "b"])


def test_a_model_without_na_values_reads_every_text_cell_as_a_category(tmp_path):
    lines = ["x,color,label", *(f"{i % 2 * 4 + 0.1 * i:.2f},{['NA', 'blue'][i % 2]},{'ab'[i % 2]}" for i in range(40))]
    checkpoint = train(
        tmp_path, "n", "\n".join(lines) + "\n", "label", "model.hidden=[4]", "data.na_values=[]", "data.missing=median"
    )
    held_out = tmp_path / "new.csv"
    held_out.write_text("x,color\n0.5,NA\n4.1,blue\n")
    model = export(tmp_path, checkpoint)
    outputs = session_outputs(model, feeds_of(model, held_out, na_values=()))
    assert_same_as_predict(outputs, predicted(checkpoint, held_out), "classes", ["a", "b"])


def test_columns_named_like_the_graphs_inputs_and_outputs_export(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["features,scores,categories,label"]
    lines += [f"{i % 2 + rng.normal():.3f},{rng.normal():.3f},{'xy'[i % 2]},{'ab'[i % 2]}" for i in range(40)]
    source = tmp_path / "odd.csv"
    source.write_text("\n".join(lines) + "\n")
    checkpoint = train(tmp_path, "odd", source.read_text(), "label", "model.hidden=[4]")
    model = export(tmp_path, checkpoint)
    outputs = session_outputs(model, feeds_of(model, source))
    assert_same_as_predict(outputs, predicted(checkpoint, source), "classes", ["a", "b"])


def test_a_regression_without_target_standardization_exports_its_raw_values(tmp_path):
    checkpoint = train(tmp_path, "r", table("values", 80, 0), ["u", "v"], "loss=l2", "data.standardize_target=false")
    held_out = tmp_path / "new.csv"
    held_out.write_text(table("values", 20, 1))
    model = export(tmp_path, checkpoint)
    outputs = session_outputs(model, feeds_of(model, held_out))
    assert_same_as_predict(outputs, predicted(checkpoint, held_out), "values", ["u", "v"])


def test_metadata_names_the_opset_the_classes_and_the_feature_names(tmp_path):
    checkpoint = train(tmp_path, "m", table("classes", 80, 0), "label")
    model = onnx.load(str(export(tmp_path, checkpoint)))
    meta = {p.key: p.value for p in model.metadata_props}
    assert model.opset_import[0].version == 19 and meta["opset"] == "19"
    assert json.loads(meta["classes"]) == ["ant", "bee", "cat"]
    assert json.loads(meta["features"]) == ["a", "b", "c", "d"] == json.loads(meta["input_names"])
    (features,) = model.graph.input
    assert features.name == "features" and "a, b, c, d" in features.doc_string
    assert [o.name for o in model.graph.output] == ["label", "probabilities", "scores"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    return train(tmp, "s", table("classes", 60, 0), "label", "model.hidden=[4]", "train.epochs=2")


def test_an_existing_out_is_kept_without_force_and_replaced_with_it(small, tmp_path):
    out = tmp_path / "model.onnx"
    out.write_text("keep me")
    refused(run("export", small, "--out", out), str(out), "already exists", "--force")
    assert out.read_text() == "keep me"
    export(tmp_path, small, "model.onnx", "--force")
    assert onnx.load(str(out)).graph.node


def test_never_writes_through_a_symlink_nor_over_the_checkpoint(small, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "model.onnx"
    os.symlink(target, link)
    refused(run("export", small, "--out", link, "--force"), str(link), "symbolic link")
    assert target.read_text() == "keep me"
    before = small.read_bytes()
    refused(run("export", small, "--out", small, "--force"), "the checkpoint being exported", "--out")
    assert small.read_bytes() == before


def test_refusals_name_the_checkpoint_or_the_format(small, tmp_path):
    refused(run("export", small, "--format", "pmml", "--out", tmp_path / "m"), "--format", "onnx", "'pmml'")
    refused(run("export", tmp_path / "none.npz", "--out", tmp_path / "m.onnx"), "none.npz", "no such file")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    refused(run("export", bad, "--out", tmp_path / "m.onnx"), "bad.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(small.read_bytes()[: small.stat().st_size // 2])
    refused(run("export", cut, "--out", tmp_path / "m.onnx"), "cut.npz")
    assert not (tmp_path / "m.onnx").exists()


def test_a_layer_without_an_onnx_form_is_refused_naming_it(small, tmp_path, monkeypatch):
    from nncli.export import onnx_model

    monkeypatch.delitem(onnx_model.GATES, "relu")  # as an activation added to nncli but not to the exporter
    refused(run("export", small, "--out", tmp_path / "m.onnx"), str(small), "cannot be exported to ONNX", "'relu'")
    assert not (tmp_path / "m.onnx").exists()


def test_without_the_onnx_extra_the_message_names_it(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    refused(run("export", small, "--out", tmp_path / "m.onnx"), "pip install 'nncli[onnx]'")
    assert not (tmp_path / "m.onnx").exists()

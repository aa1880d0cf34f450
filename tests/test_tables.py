"""Real tables: missing cells (refused, dropped or filled from the training split), text columns one-hot encoded,
unseen categories, the checkpoint's record of the encoding, and the shipped penguins config."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.data.csvfile import detect_delimiter
from nncli.data.dataset import load_dataset
from nncli.errors import CheckpointError
from nncli.training.checkpoint import load_checkpoint
from nncli.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
PENGUINS = ROOT / "data" / "penguins.csv"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, *words):
    """A user error: exit code 2, no traceback, every word in the message."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for word in words:
        assert word in text, (word, text)
    return text


def rows_of(text):
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, rows


def table(n=60, seed=0, na=(), color=True):
    """A two-class CSV: x separates the classes, z is noise, color (text) agrees with the class; `na` lists
    (row, column) cells written as NA."""
    rng = np.random.default_rng(seed)
    lines = ["x,z,color,label" if color else "x,z,label"]
    for i in range(n):
        label = i % 2
        cells = [f"{label * 4 + rng.normal():.4f}", f"{rng.normal():.4f}", ["red", "blue"][label], "ab"[label]]
        if not color:
            del cells[2]
        names = lines[0].split(",")
        for row, column in na:
            if row == i:
                cells[names.index(column)] = "NA"
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_config(tmp_path, source, name="t", **data):
    raw = {
        "name": name,
        "seed": 0,
        "data": {"source": str(source), "target": "label", "val_fraction": 0.25, **data},
        "model": {"hidden": [8]},
        "optimizer": {"name": "adam", "lr": 0.02},
        "train": {"epochs": 15, "batch_size": 16},
    }
    path = tmp_path / f"{name}.json.yaml"
    path.write_text(json.dumps(raw))
    return path


def train(tmp_path, text, name="t", **data):
    """Train on the CSV `text`: (result, run dir, csv path)."""
    source = tmp_path / f"{name}.csv"
    source.write_text(text)
    out = tmp_path / "runs" / name
    result = run("train", write_config(tmp_path, source, name, **data), "--out", out)
    return result, out, source


def predictions(result):
    assert result.exit_code == 0, result.output
    return rows_of(result.output)


# data.missing


def test_missing_error_names_file_line_column_token_and_the_keys(tmp_path):
    result, _, source = train(tmp_path, table(na=[(4, "z")]))
    refused(result, str(source.name), "line 6", "'z'", "'NA'", "data.missing", "drop", "median")


def test_missing_drop_counts_the_dropped_rows_in_the_setup_table(tmp_path):
    result, out, _ = train(tmp_path, table(na=[(4, "z"), (9, "color")]), missing="drop")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "2 cells in 2 columns" in text and "2 of 60 rows dropped" in text


def fit_on_split(tmp_path, missing):
    """A file whose z column is far larger in the rows held out for validation than in the training rows: the
    stored fill and the encoded missing cell are the training split's statistic."""
    n = 80
    rng = np.random.default_rng(1)
    lines = ["x,z,color,label"]
    cfg = config_from_dict(
        {"data": {"source": str(tmp_path / "s.csv"), "target": "label", "val_fraction": 0.5, "missing": missing}}
    )
    # the split depends only on the labels and the seed: find it first with a complete file
    for i in range(n):
        lines.append(f"{i},{i % 3},{'red' if i % 4 else 'blue'},{'ab'[i % 2]}")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    first = load_dataset(cfg.data, 0)
    x = first.train.X[:, 0] * first.std[0] + first.mean[0]
    train_rows = set(np.round(x).astype(int).tolist())
    z = np.where([i in train_rows for i in range(n)], rng.integers(0, 5, n), 100)
    color = np.array(["red" if i in train_rows and i % 3 else "blue" for i in range(n)])
    na = min(train_rows)
    lines = ["x,z,color,label"]
    for i in range(n):
        zc, cc = ("NA", "NA") if i == na else (str(z[i]), color[i])
        lines.append(f"{i},{zc},{cc},{'ab'[i % 2]}")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    data = load_dataset(cfg.data, 0)
    known = np.array([i in train_rows and i != na for i in range(n)])
    return data, z[known], color[known], na, np.delete(z, na)


@pytest.mark.parametrize("missing", ["mean", "median", "most_frequent"])
def test_fills_are_the_training_splits_statistic_only(tmp_path, missing):
    data, z, color, na, everything = fit_on_split(tmp_path, missing)
    values, counts = np.unique(z, return_counts=True)
    expected = {"mean": z.mean(), "median": np.median(z), "most_frequent": values[np.argmax(counts)]}[missing]
    column = {c.name: c for c in data.encoding.columns}
    assert column["z"].fill == pytest.approx(expected)
    assert column["z"].fill < 5 and {"mean": everything.mean(), "median": np.median(everything)}.get(missing, 100) > 5
    words, counts = np.unique(color, return_counts=True)
    assert column["color"].fill == words[np.argmax(counts)] == "red"
    X = data.train.X.astype(np.float64) * data.std + data.mean
    row = np.flatnonzero(np.round(X[:, 0]) == na)[0]
    assert X[row, 1] == pytest.approx(expected, rel=1e-5)
    names = data.encoding.input_names
    assert X[row, names.index("color=red")] == 1 and X[row, names.index("color=blue")] == 0


@pytest.fixture(scope="module")
def median_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("median")
    result, out, _ = train(tmp, table(na=[(3, "z"), (8, "color")]), missing="median")
    assert result.exit_code == 0, result.output
    return out / "best.npz", tmp


def test_predict_and_eval_reuse_the_checkpoints_fills_on_new_rows(median_run):
    best, tmp = median_run
    fills = {c["name"]: c["fill"] for c in json.loads(run("inspect", best, "--json").output)["encoding"]["columns"]}
    new = tmp / "new.csv"
    new.write_text("x,z,color,label\n4.1,NA,NA,b\n0.2,?,red,a\n")
    filled = tmp / "filled.csv"
    filled.write_text(f"x,z,color,label\n4.1,{fills['z']!r},{fills['color']},b\n0.2,{fills['z']!r},red,a\n")
    assert predictions(run("predict", best, new)) == predictions(run("predict", best, filled))
    result = run("eval", best, "--data", new, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["samples"] == 2


@pytest.fixture(scope="module")
def drop_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drop")
    result, out, _ = train(tmp, table(na=[(3, "z")]), missing="drop")
    assert result.exit_code == 0, result.output
    return out / "best.npz", tmp


def test_predict_of_a_model_trained_with_drop_refuses_a_missing_cell_and_eval_drops_it(drop_run):
    best, tmp = drop_run
    new = tmp / "new.csv"
    new.write_text("x,z,color,label\n4.1,0.3,blue,b\n0.2,NA,red,a\n0.1,0.2,red,a\n")
    refused(run("predict", best, new), "new.csv", "line 3", "'z'", "'NA'", "drop")
    result = run("eval", best, "--data", new, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["samples"] == 2


# data.na_values


def test_custom_na_values_and_an_empty_cell_without_them(tmp_path):
    text = table(na=[(2, "z")]).replace("NA", "-999")
    result, _, _ = train(tmp_path, text, name="a", missing="mean", na_values=["-999"])
    assert result.exit_code == 0, result.output
    assert "1 cells in 1 columns" in " ".join(result.output.split())
    empty = table(na=[(2, "z")]).replace("NA", "")
    result, _, source = train(tmp_path, empty, name="b", missing="mean", na_values=["NA"])
    refused(result, source.name, "line 4", "'z'", "is empty")


# one-hot columns


@pytest.fixture(scope="module")
def color_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("color")
    result, out, source = train(tmp, table(n=80), val_fraction=0.25)
    assert result.exit_code == 0, result.output
    return out, source, tmp, result.output


def test_one_hot_round_trip_predicts_the_validation_rows_as_the_network_did(color_run):
    out, source, _, output = color_run
    text = " ".join(output.split())
    assert "4 inputs from 3 columns" in text and "color → 2 (one-hot), 2 numeric" in text
    from nncli.evaluation.evaluate import load_model

    net, ckpt, config = load_model(out / "best.npz")
    data = load_dataset(config_from_dict(ckpt.config).data, ckpt.config["seed"])
    own = np.asarray(data.classes)[net.predict(data.val.X)]
    X = data.val.X.astype(np.float64) * data.std + data.mean
    lines = ["x,z,color"] + [f"{float(r[0])!r},{float(r[1])!r},{'red' if r[3] else 'blue'}" for r in X]
    new = out.parent / "val.csv"
    new.write_text("\n".join(lines) + "\n")
    _, rows = predictions(run("predict", out / "best.npz", new))
    assert [r[0] for r in rows] == own.tolist()


def test_categorical_list_encodes_a_numeric_code_and_refuses_an_unlisted_text_column(tmp_path):
    text = table(color=False).replace("x,z,label", "x,code,label")
    lines = text.splitlines()
    lines = [lines[0]] + [f"{line.split(',')[0]},{i % 3 + 1},{line.split(',')[2]}" for i, line in enumerate(lines[1:])]
    result, out, _ = train(tmp_path, "\n".join(lines) + "\n", name="a", categorical=["code"])
    assert result.exit_code == 0, result.output
    columns = json.loads(run("inspect", out / "best.npz", "--json").output)["encoding"]["columns"]
    assert columns[1] == {
        "name": "code",
        "kind": "categorical",
        "fill": None,
        "categories": ["1", "2", "3"],
        "inputs": 3,
    }
    result, _, source = train(tmp_path, table(), name="b", categorical=["z"])
    refused(result, source.name, "line 2", "'color'", "'red'", "list the column in data.categorical")


def test_auto_refuses_an_identifier_column(tmp_path):
    lines = table(n=60).splitlines()
    lines = [lines[0] + ",name"] + [f"{line},id{i}" for i, line in enumerate(lines[1:])]
    text = "\n".join(line.replace(",label,name", ",name,label") for line in lines[:1])
    text += "\n" + "\n".join(
        ",".join([*line.split(",")[:3], line.split(",")[4], line.split(",")[3]]) for line in lines[1:]
    )
    result, _, source = train(tmp_path, text + "\n")
    refused(result, source.name, "'name'", "60 distinct text values", "identifier", "data.categorical")


# unknown categories


def test_unknown_category_error_names_line_column_value_and_known_ones(color_run):
    out, _, tmp, _ = color_run
    new = tmp / "green.csv"
    new.write_text("x,z,color\n0.1,0.2,red\n4.0,0.1,green\n")
    text = refused(run("predict", out / "best.npz", new), "green.csv", "line 3", "'color'", "'green'", "'blue', 'red'")
    assert "before training" in text  # the setting helps the next training run, not this model


def test_unknown_category_ignore_is_an_all_zero_block(tmp_path):
    result, out, _ = train(tmp_path, table(n=80), unknown_category="ignore")
    assert result.exit_code == 0, result.output
    new = tmp_path / "green.csv"
    new.write_text("x,z,color\n0.1,0.2,green\n4.0,0.1,purple\n")
    _, rows = predictions(run("predict", out / "best.npz", new))
    from nncli.data.scaling import standardize
    from nncli.evaluation.evaluate import load_model
    from nncli.nn.losses import softmax

    net, ckpt, _ = load_model(out / "best.npz")
    X = np.array([[0.1, 0.2, 0.0, 0.0], [4.0, 0.1, 0.0, 0.0]])
    p = softmax(net.predict_scores(standardize(X, ckpt.norm_mean, ckpt.norm_std)).astype(np.float64))
    assert [float(v) for r in rows for v in r[1:]] == pytest.approx(p.ravel().tolist(), rel=1e-4, abs=1e-6)


# the checkpoint's meta.encoding


def rewrite_meta(path, change, target):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["meta"][()]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(target, **arrays)
    return target


@pytest.mark.parametrize(
    "change,key",
    [
        (lambda e: e["columns"][2].update(categories=["blue", "green", "red"]), "layer_sizes"),
        (lambda e: e["columns"][2]["categories"].reverse(), "meta.encoding.columns[2].categories"),
        (lambda e: e["columns"][0].update(kind="ordinal"), "meta.encoding.columns[0]"),
        (lambda e: e["columns"][2].update(fill="green"), "meta.encoding.columns[2].fill"),
        (lambda e: e.update(missing="zero"), "meta.encoding.missing"),
    ],
)
def test_a_damaged_encoding_record_is_refused_naming_the_key(color_run, tmp_path, change, key):
    out = color_run[0]
    bad = rewrite_meta(out / "best.npz", lambda m: change(m["encoding"]), tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_checkpoint(bad)
    refused(run("predict", bad, color_run[1]), key)


def test_a_checkpoint_without_an_encoding_reads_a_numeric_csv_as_before(tmp_path):
    result, out, source = train(tmp_path, table(color=False))
    assert result.exit_code == 0, result.output
    old = rewrite_meta(out / "best.npz", lambda m: m.pop("encoding"), tmp_path / "old.npz")
    assert load_checkpoint(old).encoding is None
    assert run("predict", old, source).output == run("predict", out / "best.npz", source).output
    a, b = (json.loads(run("eval", ckpt, "--data", source, "--json").output) for ckpt in (old, out / "best.npz"))
    assert a["accuracy"] == b["accuracy"] and a["samples"] == b["samples"] == 60


# penguins


def penguins_config(**train):
    from nncli.config import load_config

    cfg = load_config(ROOT / "configs" / "penguins.yaml")
    return cfg.model_copy(update={"train": cfg.train.model_copy(update=train)})


def test_resume_on_penguins_is_bit_identical(tmp_path):
    from tests.test_resume import metrics, train_interrupted, weights

    cfg = penguins_config(epochs=6)
    Trainer(cfg, tmp_path / "straight").run()
    assert train_interrupted(cfg, tmp_path / "resumed", stop_after=2)["status"] == "completed"
    assert weights(tmp_path / "straight") == weights(tmp_path / "resumed")
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "resumed")


def test_penguins_trains_from_another_directory_to_90_percent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train", ROOT / "configs" / "penguins.yaml", "--out", "p", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["best"]["val_accuracy"] > 0.9
    output = run("train", ROOT / "configs" / "penguins.yaml", "--out", "q", "train.epochs=1").output
    assert "10 inputs: island → 3, sex → 2 (one-hot), 5 numeric" in output  # the model table's caption, one line
    text = " ".join(output.split())
    assert "10 inputs from 7 columns" in text and "island → 3, sex → 2 (one-hot), 5 numeric" in text
    assert "19 cells in 5 columns" in text
    shown = run("inspect", tmp_path / "p" / "best.npz")
    assert shown.exit_code == 0, shown.output
    assert all(word in shown.output for word in ("columns", "Biscoe", "Torgersen", "female", "median", "44.45"))
    info = json.loads(run("inspect", tmp_path / "p" / "best.npz", "--json").output)["encoding"]
    island = next(c for c in info["columns"] if c["name"] == "island")
    assert island == {
        "name": "island",
        "kind": "categorical",
        "fill": "Biscoe",
        "inputs": 3,
        "categories": ["Biscoe", "Dream", "Torgersen"],
    }
    assert info["missing"] == "median" and info["unknown_category"] == "error"


# reading the file


def test_predict_id_column_reads_a_semicolon_file(color_run):
    out, _, tmp, _ = color_run
    new = tmp / "semi.csv"
    new.write_text("name;x;z;color\nfirst;0.1;0.2;red\nsecond;4.0;0.1;blue\n")
    result = run("predict", out / "best.npz", new, "--id-column", "name")
    header, rows = predictions(result)
    assert header[0] == "name" and [r[0] for r in rows] == ["first", "second"]


def test_a_file_whose_lines_end_in_lone_carriage_returns_is_read(tmp_path):
    assert detect_delimiter("a;b;c\r1,2,3,4,5\r") == ";"
    source = tmp_path / "cr.csv"
    source.write_bytes(b"x,z,label\r0.1,0.2,a\r4,0.1,b\r0.3,0.1,a\r4.2,0.3,b\r")
    cfg = write_config(tmp_path, source)
    result = run("train", cfg, "--out", tmp_path / "r", "data.val_fraction=0", "--quiet")
    assert result.exit_code == 0, result.output
    assert len(load_checkpoint(tmp_path / "r" / "best.npz").classes) == 2


def test_penguins_csv_is_the_documented_copy():
    import hashlib

    digest = hashlib.sha256(PENGUINS.read_bytes()).hexdigest()
    assert digest == "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93"
    assert '"data/penguins.csv"' in (ROOT / "pyproject.toml").read_text()

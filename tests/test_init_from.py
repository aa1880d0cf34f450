"""`nncli init --from data.csv`: a config written from the file that validates and trains as written; and the
refusal of a continuous (regression) target with a classification loss."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import load_config
from nncli.data.builtin import data_file
from nncli.data.dataset import load_dataset
from nncli.data.profile import continuous_target
from nncli.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def said(result):
    return " ".join(result.output.split())


def init_from(config, csv, *extra):
    result = run("init", config, "--from", csv, *extra)
    assert result.exit_code == 0, result.output
    return result


def train(config, tmp_path, *overrides):
    return run("train", config, "train.epochs=2", *overrides, "--out", tmp_path / "run", "-q")


def data_keys(config):
    return yaml.safe_load(Path(config).read_text())["data"]


def test_penguins_config_is_written_relative_to_itself_and_trains_from_anywhere(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "data/penguins.csv", tmp_path / "data/penguins.csv")
    config = tmp_path / "configs/penguins.yaml"
    result = init_from(config, tmp_path / "data/penguins.csv", "--target", "species")
    data = data_keys(config)
    assert data["source"] == "../data/penguins.csv" and data["target"] == "species"
    assert data["missing"] == "median" and data["categorical"] == "auto" and "delimiter" not in data
    text = config.read_text()
    assert "bill_length_mm 2" in text and "sex 11" in text and "island (3), sex (2)" in text
    assert "error | drop | mean | most_frequent" in text
    assert "classification, 3 classes" in said(result)
    assert (tmp_path / "configs/schema.json").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    trained = train(config, tmp_path)
    assert trained.exit_code == 0, trained.output


def test_the_table_printed_names_each_column_s_kind_missing_cells_and_the_task(tmp_path):
    result = init_from(tmp_path / "p.yaml", ROOT / "data/penguins.csv", "--target", "species")
    rows = {line.split("│")[1].strip(): line.split("│")[2:] for line in result.output.splitlines() if "│" in line}
    assert [cell.strip() for cell in rows["island"][:3]] == ["categorical", "0", "3"]
    assert [cell.strip() for cell in rows["sex"][:3]] == ["categorical", "11", "2"]
    assert [cell.strip() for cell in rows["bill_length_mm"][:2]] == ["numeric", "2"]
    assert rows["species"][0].strip() == "target"
    assert "344 rows" in result.output and "target 'species': classification, 3 classes" in said(result)


def semicolon_csv(path):
    rows = ["Alcohol %;colour;Malic acid;class"]
    rng = np.random.default_rng(0)
    for i in range(60):
        colour = ["red", "white", "rosé"][i % 3]
        acid = "NA" if i in (4, 17) else f"{rng.normal():.3f}"
        rows.append(f"{rng.normal() + i % 2:.3f};{colour};{acid};{'ab'[i % 2]}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_semicolon_csv_with_na_cells_and_a_text_column(tmp_path):
    csv = semicolon_csv(tmp_path / "wine.csv")
    config = tmp_path / "wine.yaml"
    result = init_from(config, csv)
    data = data_keys(config)
    assert data["source"] == "wine.csv" and data["target"] == "class"  # the last column by default
    assert data["delimiter"] == ";" and data["missing"] == "median"
    assert "Malic acid 2" in config.read_text() and "colour (3)" in config.read_text()
    assert "split by ';'" in said(result) and "classification, 2 classes" in said(result)
    assert load_config(config).data.delimiter == ";"
    trained = train(config, tmp_path)
    assert trained.exit_code == 0, trained.output


def test_a_file_without_missing_cells_keeps_data_missing_error(tmp_path):
    csv = shutil.copy(data_file("iris.csv"), tmp_path / "iris.csv")
    config = tmp_path / "iris.yaml"
    init_from(config, csv)
    assert data_keys(config)["missing"] == "error" and data_keys(config)["target"] == "species"


def test_an_identifier_column_is_left_out_with_the_reason_and_missing_labels_mean_drop(tmp_path):
    lines = ["id,x,kind,label"] + [
        f"row{i},{i % 7}.5,{'pq'[i % 2]},{'' if i == 5 else 'yn'[i % 3 == 0]}" for i in range(80)
    ]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    config = tmp_path / "t.yaml"
    result = init_from(config, tmp_path / "t.csv")
    data = data_keys(config)
    assert data["features"] == ["x", "kind"] and data["missing"] == "drop"
    assert "left out: id" in config.read_text() and "identifier" in config.read_text()
    assert "left out" in said(result)
    trained = train(config, tmp_path)
    assert trained.exit_code == 0, trained.output


def test_column_names_that_need_quoting_read_back_as_written(tmp_path):
    names = ["a: b", "#hash", "it's", "yes", "label [1]"]
    lines = [",".join(f'"{n}"' if "," in n else n for n in names)]
    lines += [f"{i},{i * 2 % 5},{i % 3},{i % 4},{'xy'[i % 2]}" for i in range(40)]
    (tmp_path / "q.csv").write_text("\n".join(lines) + "\n")
    config = tmp_path / "q.yaml"
    init_from(config, tmp_path / "q.csv")
    assert data_keys(config)["target"] == "label [1]"
    assert run("validate", config).exit_code == 0


def test_from_and_template_together_are_refused(tmp_path):
    result = run("init", tmp_path / "x.yaml", "--from", ROOT / "data/penguins.csv", "--template", "csv")
    assert result.exit_code == 2 and "--from and --template" in said(result)
    assert "Traceback" not in result.output and not (tmp_path / "x.yaml").exists()


def test_target_without_from_is_refused(tmp_path):
    result = run("init", tmp_path / "x.yaml", "--target", "species")
    assert result.exit_code == 2 and "--target" in said(result) and not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.csv", None, "not found"),
        ("table.txt", "a,b\n1,2\n", "not a .csv file"),
        ("binary.csv", b"\xff\xfe\x00\x01a,b\n\x80\x81,2\n", "not UTF-8"),
        ("empty.csv", "", "no data rows"),
    ],
)
def test_a_file_that_is_not_a_readable_csv_is_refused_naming_it(tmp_path, name, content, expected):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run("init", tmp_path / "x.yaml", "--from", path)
    assert result.exit_code == 2 and expected in said(result) and name in said(result), result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.yaml").exists()


def test_an_unknown_target_is_refused_naming_the_columns(tmp_path):
    result = run("init", tmp_path / "x.yaml", "--from", ROOT / "data/penguins.csv", "--target", "colour")
    assert result.exit_code == 2 and "no target column 'colour'" in said(result) and "island" in said(result)


def test_init_from_never_overwrites(tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text("mine\n")
    result = run("init", config, "--from", ROOT / "data/penguins.csv")
    assert result.exit_code == 2 and "already exists" in said(result) and config.read_text() == "mine\n"


def regression_csv(path, rows=250, integers=False):
    rng = np.random.default_rng(1)
    x = rng.normal(size=rows)
    price = np.round(100 + 40 * x + rng.normal(size=rows), 2)
    price[0], price[1] = 100.5, 3.25
    if integers:
        price = np.arange(rows) * 3 + 100
    path.write_text("size,price\n" + "".join(f"{a:.3f},{p}\n" for a, p in zip(x, price)))
    return path


def test_init_from_a_continuous_target_writes_a_regression_config_that_trains(tmp_path):
    config = tmp_path / "r.yaml"
    result = init_from(config, regression_csv(tmp_path / "house.csv"))
    assert "regression (loss l2)" in said(result) and "warning" not in said(result)
    text = config.read_text()
    assert "# Task guessed: regression of 'price'" in text and yaml.safe_load(text)["loss"] == "l2"
    assert yaml.safe_load(text)["data"]["test_fraction"] == 0.2  # regression splits are not stratified by class
    trained = train(config, tmp_path)
    assert trained.exit_code == 0, trained.output
    assert "val_rmse" in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("held_out", [[], ["data.val_fraction=0"]])
def test_a_classification_loss_refuses_a_continuous_target_before_splitting_it(tmp_path, held_out):
    config = tmp_path / "r.yaml"
    init_from(config, regression_csv(tmp_path / "house.csv"))
    result = train(config, tmp_path, "loss=softmax", *held_out)
    message = said(result)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "column 'price' holds non-integer numbers such as 100.5 and 3.25" in message and "250 rows" in message
    assert "classification losses (softmax, svm)" in message and "set loss: l2 (or l1, huber) for regression" in message
    assert "too few to split" not in message and not (tmp_path / "run").exists()


def test_many_distinct_integer_labels_are_refused_as_continuous(tmp_path):
    path = regression_csv(tmp_path / "house.csv", integers=True)
    cfg = load_config_for(tmp_path, path, "price")
    with pytest.raises(DataError, match=r"column 'price' holds 250 distinct numbers such as 100 and 103 in 250 rows"):
        load_dataset(cfg.data, 0)


def load_config_for(tmp_path, source, target, extra=""):
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{source: {source}, target: {target}{extra}}}\n")
    return load_config(config)


def test_integer_labels_with_few_classes_still_train(tmp_path):
    rows = "".join(f"{i % 5}.25,{i % 7},{i % 3}\n" for i in range(90))
    (tmp_path / "few.csv").write_text("a,b,label\n" + rows)
    dataset = load_dataset(load_config_for(tmp_path, tmp_path / "few.csv", "label").data, 0)
    assert dataset.classes == [0, 1, 2]


def test_npz_float_labels_that_are_continuous_are_refused(tmp_path):
    np.savez(tmp_path / "r.npz", X=np.ones((50, 2)), y=np.linspace(0, 1, 50))
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{source: {tmp_path / 'r.npz'}}}\n")
    with pytest.raises(DataError, match="the labels holds non-integer numbers such as"):
        load_dataset(load_config(config).data, 0)


@pytest.mark.parametrize("source", ["digits", "iris", "spiral"])
def test_built_in_class_labels_are_not_continuous(tmp_path, source):
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{source: {source}}}\n")
    assert load_dataset(load_config(config).data, 0).num_classes >= 3


@pytest.mark.parametrize(
    "labels, continuous",
    [
        (["a", "b", "3.5"], False),  # text labels are class names
        ([1.0, 2.0, 1.0], False),
        (np.arange(21), True),  # more than max(20, half the rows) distinct whole numbers
        (np.arange(20), False),
        (np.repeat(np.arange(30), 2), False),  # 30 classes of two rows: half the rows, not more
        (["1.5", "2", "2"], True),
    ],
)
def test_the_continuous_rule(labels, continuous):
    assert (continuous_target(np.asarray(labels)) is not None) == continuous


def test_a_stray_word_in_a_numeric_column_leaves_it_out_naming_the_line(tmp_path):
    lines = ["a\tb\tlabel"] + [f"{i}.5\t{'oops' if i == 6 else i % 4}\t{'xy'[i % 2]}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    config = tmp_path / "t.yaml"
    result = init_from(config, tmp_path / "t.csv")
    data = data_keys(config)
    assert data["delimiter"] == "\t" and data["features"] == ["a"]
    assert "line 8, column 'b': 'oops' is not a number" in said(result)
    trained = train(config, tmp_path)
    assert trained.exit_code == 0, trained.output


def test_a_file_with_no_usable_feature_column_is_refused_saying_why(tmp_path):
    (tmp_path / "ids.csv").write_text("id,label\n" + "".join(f"u{i},{'ab'[i % 2]}\n" for i in range(50)))
    result = run("init", tmp_path / "x.yaml", "--from", tmp_path / "ids.csv")
    assert result.exit_code == 2 and "ids.csv: no feature column training could use" in said(result)
    assert "'id'" in said(result) and "identifier" in said(result) and not (tmp_path / "x.yaml").exists()


def test_rare_classes_shrink_the_held_out_splits_so_the_config_trains(tmp_path):
    labels = ["a"] * 30 + ["b"] * 30 + ["c"] * 2
    (tmp_path / "r.csv").write_text("x,label\n" + "".join(f"{i % 9},{c}\n" for i, c in enumerate(labels)))
    config = tmp_path / "r.yaml"
    init_from(config, tmp_path / "r.csv")
    assert data_keys(config)["val_fraction"] == 0.2 and data_keys(config)["test_fraction"] == 0.0
    trained = train(config, tmp_path)
    assert trained.exit_code == 0, trained.output

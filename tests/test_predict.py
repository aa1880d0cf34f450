"""`nncli predict` as a user runs it, the shipped digits config's test accuracy, and training from a memory-mapped file."""

import csv
import io
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import load_config
from nncli.data import files as data_files
from nncli.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "data" / "iris.csv"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def rows_of(text):
    """(header, rows) of a CSV held in a string."""
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, rows


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "iris"
    result = run("train", ROOT / "configs/iris.yaml", f"data.source={IRIS}", "train.epochs=30", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out / "best.npz"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The one digits training of the suite: the shipped config exactly as a user runs it (seed 0)."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    result = run("train", ROOT / "configs/digits-2layer.yaml", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out / "best.npz"


def test_digits_2layer_reaches_97_percent_test_accuracy(digits_run):
    result = run("eval", digits_run, "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["samples"] == 359  # a stratified 20 % of the 1,797 digits
    assert report["accuracy"] >= 0.97


def test_predict_round_trip_matches_eval_on_a_labelled_csv(iris_run):
    result = run("predict", iris_run, IRIS)
    assert result.exit_code == 0, result.output
    header, rows = rows_of(result.output)
    truth = [r[-1] for r in csv.reader(IRIS.open())][1:]
    assert len(rows) == len(truth) == 150
    accuracy = np.mean([r[0] == t for r, t in zip(rows, truth)])
    report = json.loads(run("eval", iris_run, "--data", IRIS, "--json").output)
    assert accuracy == pytest.approx(report["accuracy"], abs=1e-12)


def test_predict_round_trip_matches_eval_on_an_npz_with_integer_labels(digits_run, tmp_path):
    from nncli.data.builtin import digits

    X, y = digits()
    path = tmp_path / "digits.npz"
    np.savez(path, X=X[::3], y=y[::3])
    result = run("predict", digits_run, path)
    assert result.exit_code == 0, result.output
    header, rows = rows_of(result.output)
    assert header == ["predicted", *(f"p_{d}" for d in range(10))]
    accuracy = np.mean([int(r[0]) == t for r, t in zip(rows, y[::3])])
    report = json.loads(run("eval", digits_run, "--data", path, "--json").output)
    assert accuracy == pytest.approx(report["accuracy"], abs=1e-12)


def test_csv_for_a_checkpoint_without_column_names_with_or_without_a_label_column(digits_run, tmp_path):
    from nncli.data.builtin import digits

    X, y = digits()
    names = ",".join(f"px{i}" for i in range(64))
    np.savetxt(tmp_path / "pixels.csv", X[:20], fmt="%d", delimiter=",", header=names, comments="")
    np.savetxt(
        tmp_path / "labelled.csv",
        np.column_stack([X[:20], y[:20]]),
        fmt="%d",
        delimiter=",",
        header=names + ",digit",
        comments="",
    )
    unlabelled, labelled = (run("predict", digits_run, tmp_path / name) for name in ("pixels.csv", "labelled.csv"))
    assert unlabelled.exit_code == 0 and labelled.exit_code == 0, unlabelled.output + labelled.output
    assert unlabelled.output == labelled.output


def test_string_labels_come_back_as_strings_and_probabilities_sum_to_1(iris_run, tmp_path):
    unlabelled = tmp_path / "new.csv"  # no species column: predict needs only the features
    with IRIS.open() as f:
        unlabelled.write_text("".join(",".join(line.strip().split(",")[:4]) + "\n" for line in f))
    result = run("predict", iris_run, unlabelled)
    assert result.exit_code == 0, result.output
    header, rows = rows_of(result.output)
    assert header == ["predicted", "p_setosa", "p_versicolor", "p_virginica"]
    assert {r[0] for r in rows} <= {"setosa", "versicolor", "virginica"}
    assert rows[0][0] == "setosa"  # the first iris is an unmistakable setosa
    p = np.array([r[1:] for r in rows], dtype=float)
    assert (p >= 0).all() and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p.argmax(axis=1) == [header.index(f"p_{r[0]}") - 1 for r in rows]).all()


def test_predicted_probabilities_are_the_networks_predict_proba_in_float64(iris_run):
    from nncli.data.dataset import standardize
    from nncli.evaluation.evaluate import load_model

    net, ckpt, _ = load_model(iris_run)
    assert net.dtype == np.float32  # the iris config trains in float32; probabilities still come out in float64
    X = np.loadtxt(IRIS, delimiter=",", skiprows=1, usecols=range(4))
    proba = net.predict_proba(standardize(X, ckpt.norm_mean, ckpt.norm_std), chunk=64)
    assert proba.dtype == np.float64 and np.allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    _, rows = rows_of(run("predict", iris_run, IRIS).output)
    assert [r[1:] for r in rows] == [[f"{v:.6g}" for v in row] for row in proba.tolist()]


def test_svm_checkpoint_gives_score_columns(tmp_path):
    out = tmp_path / "svm"
    result = run(
        "train",
        ROOT / "configs/iris.yaml",
        f"data.source={IRIS}",
        "loss=svm",
        "train.epochs=5",
        "--out",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    result = run("predict", out / "best.npz", IRIS)
    assert result.exit_code == 0, result.output
    header, rows = rows_of(result.output)
    assert header == ["predicted", "score_setosa", "score_versicolor", "score_virginica"]
    scores = np.array([r[1:] for r in rows], dtype=float)
    assert [header[1 + i][len("score_") :] for i in scores.argmax(axis=1)] == [r[0] for r in rows]


def test_out_writes_a_file_and_refuses_to_overwrite_it(iris_run, tmp_path):
    target = tmp_path / "pred.csv"
    result = run("predict", iris_run, IRIS, "--out", target)
    assert result.exit_code == 0, result.output
    header, rows = rows_of(target.read_text())
    assert header[0] == "predicted" and len(rows) == 150
    target.write_text("keep me\n")
    result = run("predict", iris_run, IRIS, "--out", target)
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "keep me\n"
    result = run("predict", iris_run, IRIS, "--out", target, "--force")
    assert result.exit_code == 0, result.output
    assert len(rows_of(target.read_text())[1]) == 150
    assert [p.name for p in tmp_path.iterdir()] == ["pred.csv"]  # no temporary file left behind


def test_feature_count_mismatch_exits_2_naming_the_file_and_both_counts(iris_run, tmp_path):
    wrong = tmp_path / "three.npz"
    np.savez(wrong, X=np.ones((5, 3)), y=np.zeros(5, np.int64))
    result = run("predict", iris_run, wrong)
    assert result.exit_code == 2
    assert str(wrong) in result.output and "3 features" in result.output and "expects 4" in result.output
    assert "Traceback" not in result.output


def npy_dataset(folder, rows, features=256, seed=0):
    """A float32 .npy features file of `rows` rows (written in pieces, never whole in memory) and its labels."""
    rng = np.random.default_rng(seed)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(rows, features))
    y = np.empty(rows, np.int64)
    for start in range(0, rows, 8192):
        n = min(8192, rows - start)
        y[start : start + n] = rng.integers(0, 2, n)
        X[start : start + n] = rng.standard_normal((n, features), dtype=np.float32) + y[start : start + n, None]
    X.flush()
    del X
    np.save(folder / "y.npy", y)
    return folder / "X.npy", folder / "y.npy"


def _peak_training_bytes(tmp_path, rows, monkeypatch):
    features, labels = npy_dataset(tmp_path, rows)
    cfg = load_config(
        ROOT / "configs/spiral-2layer.yaml",
        [
            f"data.source={features}",
            f"data.labels={labels}",
            "data.classes=null",
            "data.samples_per_class=null",
            "data.noise=null",
            "data.val_fraction=0.1",
            "model.hidden=[16]",
            "optimizer.name=adam",
            "optimizer.lr=0.001",
            "train.epochs=1",
            "train.batch_size=256",
        ],
    )
    monkeypatch.setattr(data_files, "CHUNK_BYTES", 2**20)  # the scans for NaN and for the mean/std read 1 MB at a time
    tracemalloc.start()
    try:
        summary = train(cfg, tmp_path / "run")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary["status"] == "completed"
    assert summary["final"]["val_accuracy"] > 0.9
    return peak, features.stat().st_size


def test_training_from_a_memory_mapped_npy_keeps_memory_flat(tmp_path, monkeypatch):
    """numpy reports its allocations to tracemalloc, the pages of a memory map are not allocations: so the traced
    peak is what training copied. A 4x larger file (same batch) must not make it grow with the file."""
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small_peak, small_size = _peak_training_bytes(tmp_path / "small", 40_000, monkeypatch)
    large_peak, large_size = _peak_training_bytes(tmp_path / "large", 160_000, monkeypatch)
    assert small_size > 40e6 and large_size > 160e6
    assert large_peak < large_size / 4  # ~29 MB: evaluation chunks of 4,096 rows, and per-sample labels and indices
    assert large_peak - small_peak < (large_size - small_size) / 10  # +120 MB of file, ~+7 MB of int64 indices


def test_predict_copies_an_id_column_into_the_output(iris_run, tmp_path):
    text = IRIS.read_text().splitlines()
    table = tmp_path / "ids.csv"
    table.write_text("\n".join([f"{text[0]},row"] + [f"{line},r{i}" for i, line in enumerate(text[1:])]) + "\n")
    result = run("predict", iris_run, table, "--id-column", "row")
    assert result.exit_code == 0, result.output
    header, rows = rows_of(result.output)
    assert header[:2] == ["row", "predicted"] and [r[0] for r in rows] == [f"r{i}" for i in range(150)]


def test_predict_names_the_columns_there_are_for_a_missing_id_column(iris_run, tmp_path):
    out = tmp_path / "p.csv"
    result = run("predict", iris_run, IRIS, "--id-column", "nope", "--out", out)
    said = result.output.replace("\n", "")
    assert result.exit_code == 2 and "Traceback" not in said and not out.exists()
    assert "no id column 'nope'; the columns are sepal_length" in said and "species" in said


def test_predict_reads_stdin_and_writes_stdout_through_a_pipe(iris_run):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "nncli", "predict", str(iris_run), "-", "--out", "-"],
        input=IRIS.read_bytes(),
        capture_output=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    header, rows = rows_of(done.stdout.decode())
    assert header[0] == "predicted" and len(rows) == 150
    assert rows == rows_of(run("predict", iris_run, IRIS).output)[1]


def test_a_bad_csv_on_stdin_is_named_stdin(iris_run):
    result = runner.invoke(app, ["predict", str(iris_run), "-"], input="a,b\n1,2\n")
    said = result.output.replace("\n", "")
    assert result.exit_code == 2 and "Traceback" not in said
    assert "stdin" in said and "nncli-stdin-" not in said


AWKWARD_TEXT = ["plain", "a,b", 'say "hi"', "line\nbreak", "carriage\rreturn", "", " lead", "tab\tx", "é,ü", '"', ","]


def test_prediction_lines_read_back_as_the_cells_they_were_made_of():
    """The chunk formatter (one `%` per chunk) writes every text cell so a CSV reader gives it back whole, and every
    number exactly as f"{x:.6g}" (the format predictions have always had), inf, nan, -0 and denormals included."""
    from nncli.evaluation.predict import csv_cell, csv_lines

    rng = np.random.default_rng(0)
    numbers = np.concatenate(
        [
            rng.standard_normal((len(AWKWARD_TEXT), 3)) * 10.0 ** rng.integers(-300, 300, (len(AWKWARD_TEXT), 1)),
            [[np.inf, -np.inf, np.nan], [-0.0, 5e-324, 1.7976931348623157e308]],
        ]
    )
    texts = [*AWKWARD_TEXT, "x", "y"]
    cells = np.array([csv_cell(t) for t in texts], object)[:, None]
    rows = list(csv.reader(io.StringIO(csv_lines(cells, numbers))))
    assert rows == [[t, *(f"{x:.6g}" for x in v)] for t, v in zip(texts, numbers.tolist())]
    assert csv_lines(np.empty((2, 0), object), numbers[:2]) == "".join(
        ",".join(f"{x:.6g}" for x in v) + "\n" for v in numbers[:2].tolist()
    )

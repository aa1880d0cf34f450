"""eval, predict, plot and runs for regression and attribute checkpoints, as a user runs them: eval's numbers are
the ones a user computes by hand from predict's CSV and the true targets, in the targets' own units."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app

runner = CliRunner()
QUANTILES = ["5%", "25%", "50%", "75%", "95%"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_csv(path, columns):
    """A CSV of {name: values} columns; returns the path."""
    names = list(columns)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(zip(*(columns[n] for n in names)))
    return path


def predictions(checkpoint, data):
    """predict's CSV on `data` as (header, float array (N, columns))."""
    result = run("predict", checkpoint, data)
    assert result.exit_code == 0, result.output
    header, *rows = list(csv.reader(io.StringIO(result.output)))
    return header, np.array(rows, dtype=np.float64)


def eval_json(checkpoint, *args):
    result = run("eval", checkpoint, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def train(tmp, name, config, *overrides):
    path = tmp / f"{name}.yaml"
    path.write_text(config)
    out = tmp / "runs" / name
    result = run("train", path, *overrides, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def config_text(name, data, loss, hidden="[16]", epochs=40):
    return (
        f"name: {name}\nseed: 0\ndata:\n{data}\nmodel: {{hidden: {hidden}}}\nloss: {loss}\n"
        f"optimizer: {{name: adam, lr: 0.01}}\ntrain: {{epochs: {epochs}, batch_size: 32}}\n"
    )


def by_hand(predicted, true):
    """What eval reports for regression, from predictions and targets (N, K) in units."""
    r = predicted - true
    spread = ((true - true.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1 - (r * r).sum(axis=0) / spread
    return {
        "rmse": np.sqrt((r * r).mean()),
        "mae": np.abs(r).mean(),
        "r2": r2.mean(),
        "per_rmse": np.sqrt((r * r).mean(axis=0)),
        "per_mae": np.abs(r).mean(axis=0),
        "per_r2": r2,
        "quantiles": np.percentile(r, [5, 25, 50, 75, 95], axis=0).T,
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("regression")


@pytest.fixture(scope="module")
def sine_run(workdir):
    data = "  source: sine\n  samples: 300\n  noise: 0.1\n  val_fraction: 0.2\n  test_fraction: 0.2"
    return train(workdir, "sine", config_text("sine", data, "l2", "[32]") + "regularization: {l2: 0.0}\n")


@pytest.fixture(scope="module")
def attributes_run(workdir):
    data = "  source: attributes\n  samples: 300\n  classes: 3\n  val_fraction: 0.2"
    return train(workdir, "attributes", config_text("attributes", data, "logistic"))


@pytest.fixture(scope="module")
def two_scales(workdir):
    """A CSV with two targets on scales a thousand times apart, its run and a held-out CSV of the same kind."""
    rng = np.random.default_rng(3)

    def table(n):
        x = rng.normal(size=(n, 3))
        small = x[:, 0] + 0.5 * x[:, 1] + 0.05 * rng.normal(size=n)
        big = 5000 + 1000 * (x[:, 1] - x[:, 2]) + 50 * rng.normal(size=n)
        return {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "small": small, "big": big}

    source = write_csv(workdir / "two.csv", table(300))
    holdout = write_csv(workdir / "two-holdout.csv", table(80))
    data = f"  source: {source}\n  target: [small, big]\n  val_fraction: 0.2\n  test_fraction: 0.2"
    return train(workdir, "two", config_text("two", data, "l2")), source, holdout


def test_sine_eval_on_a_file_equals_predict_by_hand(sine_run, workdir):
    x = np.random.default_rng(7).uniform(-3, 3, 60)
    holdout = write_csv(workdir / "sine-holdout.csv", {"x": x, "y": np.sin(x) + 0.1})
    header, values = predictions(sine_run / "best.npz", holdout)
    assert header == ["predicted_y"]
    report = eval_json(sine_run / "best.npz", "--data", holdout)
    hand = by_hand(values, (np.sin(x) + 0.1)[:, None])
    assert report["task"] == "regression" and report["split"] == "file" and report["samples"] == 60
    for key in ("rmse", "mae", "r2"):
        assert report[key] == pytest.approx(hand[key], rel=1e-4, abs=1e-5)
    assert report["rmse"] < 0.3  # a fitted sine, in its own units


def test_sine_eval_of_the_val_split_is_the_recorded_best(sine_run):
    best = json.loads((sine_run / "summary.json").read_text())["best"]
    report = eval_json(sine_run / "best.npz", "--split", "val")
    for key in ("loss", "rmse", "mae", "r2"):
        assert report[key] == pytest.approx(best[f"val_{key}"], rel=1e-5)


def test_two_targets_on_scales_1000_apart_agree_with_predict_per_target(two_scales):
    run_dir, _, holdout = two_scales
    header, values = predictions(run_dir / "best.npz", holdout)
    assert header == ["predicted_small", "predicted_big"]
    with open(holdout) as f:
        rows = list(csv.DictReader(f))
    true = np.array([[float(r["small"]), float(r["big"])] for r in rows])
    assert np.abs(values[:, 1] - 5000).mean() > 100  # predictions in units, not standardized
    report = eval_json(run_dir / "best.npz", "--data", holdout)
    hand = by_hand(values, true)
    assert [t["target"] for t in report["per_target"]] == ["small", "big"]
    for key in ("rmse", "mae", "r2"):
        assert report[key] == pytest.approx(hand[key], rel=1e-4)
    for k, target in enumerate(report["per_target"]):
        for key in ("rmse", "mae", "r2"):
            assert target[key] == pytest.approx(hand[f"per_{key}"][k], rel=1e-4, abs=1e-4)
        quantiles = [target["residual_quantiles"][q] for q in QUANTILES]
        scale = hand["per_rmse"][k]
        np.testing.assert_allclose(quantiles, hand["quantiles"][k], rtol=1e-4, atol=1e-4 * scale)
    assert report["per_target"][1]["rmse"] > 50 * report["per_target"][0]["rmse"]


def test_eval_of_the_training_csv_is_every_row(two_scales):
    run_dir, source, _ = two_scales
    report = eval_json(run_dir / "best.npz", "--data", source)
    assert report["split"] == "file" and report["samples"] == 300
    _, values = predictions(run_dir / "best.npz", source)
    with open(source) as f:
        true = np.array([[float(r["small"]), float(r["big"])] for r in csv.DictReader(f)])
    assert report["rmse"] == pytest.approx(by_hand(values, true)["rmse"], rel=1e-4)
    text = run("eval", run_dir / "best.npz", "--data", source)
    assert text.exit_code == 0, text.output
    assert "big" in text.output and "95%" in text.output and "R²" in text.output


def test_eval_refuses_a_file_without_the_target_columns(two_scales, workdir):
    run_dir, _, _ = two_scales
    bare = write_csv(workdir / "no-targets.csv", {"x0": [0.1, 0.2], "x1": [1.0, 2.0], "x2": [3.0, 4.0]})
    result = run("eval", run_dir / "best.npz", "--data", bare)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "no-targets.csv" in result.output and "'small', 'big'" in result.output


def test_attributes_eval_per_attribute_and_exact_match_by_hand(attributes_run, workdir):
    from nncli.data.builtin import attributes

    X, y = attributes(samples=300, classes=3, rng=np.random.default_rng(0))  # the training data (seed 0), all of it
    columns = {f"f{j}": X[:, j] for j in range(4)}
    features = write_csv(workdir / "attr-features.csv", columns)
    header, values = predictions(attributes_run / "best.npz", features)
    names = ["y[0]", "y[1]", "y[2]"]
    assert header == [*names, *(f"p_{n}" for n in names)]
    ones, p = values[:, :3], values[:, 3:]
    assert set(np.unique(ones)) <= {0.0, 1.0} and ((p > 0.5) == (ones == 1)).all()
    report = eval_json(attributes_run / "best.npz", "--split", "val")
    assert report["task"] == "attributes" and [a["attribute"] for a in report["per_attribute"]] == names
    best = json.loads((attributes_run / "summary.json").read_text())["best"]
    for key in ("accuracy", "exact_match", "micro_f1"):
        assert report[key] == pytest.approx(best[f"val_{key}"], rel=1e-6)
    # by hand on the generated data saved as npz: per-attribute accuracy and exact match from predict's 0/1
    labelled = workdir / "attr.npz"
    np.savez(labelled, X=X, y=y)
    on_file = eval_json(attributes_run / "best.npz", "--data", labelled)
    _, from_npz = predictions(attributes_run / "best.npz", labelled)
    right = from_npz[:, :3] == y
    assert [a["accuracy"] for a in on_file["per_attribute"]] == pytest.approx(right.mean(axis=0).tolist())
    assert on_file["exact_match"] == pytest.approx(right.all(axis=1).mean())
    assert [a["support"] for a in on_file["per_attribute"]] == y.sum(axis=0).astype(int).tolist()
    assert on_file["accuracy"] >= 0.9


def test_plot_of_a_regression_run_writes_a_png(sine_run, two_scales):
    pytest.importorskip("matplotlib")
    for run_dir in (sine_run, two_scales[0]):
        result = run("plot", run_dir)
        assert result.exit_code == 0, result.output
        assert (run_dir / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_shows_a_regression_runs_best_val_rmse(sine_run, attributes_run, workdir):
    from nncli.evaluation.inspection import list_runs

    rows = {Path(r["path"]).name: r for r in list_runs(workdir / "runs", "best_val_rmse")}
    best = json.loads((sine_run / "summary.json").read_text())["best"]
    assert rows["sine"]["best_val_rmse"] == best["val_rmse"] and rows["sine"]["best_val_accuracy"] is None
    assert rows["attributes"]["best_val_accuracy"] is not None and rows["attributes"]["best_val_rmse"] is None
    result = run("runs", workdir / "runs", "--sort", "best_val_rmse")
    assert result.exit_code == 0, result.output
    assert f"{best['val_rmse']:.4f}" in result.output


def test_classification_eval_keys_unchanged_plus_balanced_accuracy(workdir):
    rng = np.random.default_rng(5)
    n_a, n_b = 90, 10
    x = np.concatenate([rng.normal(0, 1, (n_a, 2)), rng.normal(1.2, 1, (n_b, 2))])
    label = ["a"] * n_a + ["b"] * n_b
    source = write_csv(workdir / "imbalanced.csv", {"x0": x[:, 0], "x1": x[:, 1], "label": label})
    data = f"  source: {source}\n  val_fraction: 0.2"
    run_dir = train(workdir, "imbalanced", config_text("imbalanced", data, "softmax", "[8]", 15))
    report = eval_json(run_dir / "best.npz", "--data", source)
    assert list(report) == [
        "checkpoint",
        "split",
        "samples",
        "loss",
        "accuracy",
        "balanced_accuracy",
        "epoch",
        "position",
        "classes",
        "per_class",
        "confusion",
    ]
    header, *rows = list(csv.reader(io.StringIO(run("predict", run_dir / "best.npz", source).output)))
    predicted = np.array([r[0] for r in rows])
    truth = np.array(label)
    recalls = [np.mean(predicted[truth == c] == c) for c in ("a", "b")]
    assert report["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert report["accuracy"] == pytest.approx(np.mean(predicted == truth))
    assert report["balanced_accuracy"] != pytest.approx(report["accuracy"])  # imbalanced: the two differ


def test_eval_loss_of_huber_uses_the_configs_delta(workdir):
    data = "  source: sine\n  samples: 200\n  noise: 0.3\n  val_fraction: 0.25"
    run_dir = train(workdir, "huber", config_text("huber", data, "huber", "[16]", 10) + "huber_delta: 0.2\n")
    best = json.loads((run_dir / "summary.json").read_text())["best"]
    report = eval_json(run_dir / "best.npz", "--split", "val")
    assert report["loss"] == pytest.approx(best["val_loss"], rel=1e-5)  # not the loss at the default delta 1


def test_inspect_shows_a_regression_checkpoints_task_and_target_statistics(two_scales):
    run_dir, source, _ = two_scales
    info = json.loads(run("inspect", run_dir / "best.npz", "--json").output)
    assert info["task"] == "regression" and info["classes"] == ["small", "big"]
    with open(source) as f:
        big = [float(r["big"]) for r in csv.DictReader(f)]
    assert 4000 < info["target_mean"][1] < 6000 and info["target_std"][1] == pytest.approx(np.std(big), rel=0.2)
    shown = run("inspect", run_dir / "best.npz")
    assert shown.exit_code == 0 and "regression" in shown.output and "target mean ± std" in shown.output


def test_predict_of_a_built_in_trained_net_reads_a_csv_of_only_its_features(sine_run, workdir):
    """A net trained on the built-in sine has no column names: a CSV of one column x is its one feature, not a
    label (and a second column is the label, ignored)."""
    x = [0.5, -1.0, 2.0]
    header, alone = predictions(sine_run / "best.npz", write_csv(workdir / "x-only.csv", {"x": x}))
    assert header == ["predicted_y"] and alone.shape == (3, 1)
    _, labelled = predictions(sine_run / "best.npz", write_csv(workdir / "x-y.csv", {"x": x, "y": [0, 0, 0]}))
    assert np.array_equal(alone, labelled)
    assert np.abs(alone[:, 0] - np.sin(x)).max() < 0.35  # a 2-layer net on 300 noisy points, not a table of sin

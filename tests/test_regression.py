"""Regression and attributes, as the notes' part 2 proves them: a linear net finds least squares, a small net fits the
noisy sine to its noise level, attributes are learned, every new loss passes gradcheck and resumes bit-identically,
and data the loss cannot use is refused naming the file, column and loss."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.data.dataset import load_dataset
from nncli.errors import ConfigError, DataError
from nncli.training.checkpoint import load_checkpoint
from nncli.training.trainer import Trainer
from tests.test_resume import metrics, train_interrupted, weights

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
NEW_LOSSES = ("l2", "l1", "huber", "logistic")


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def said(result):
    return " ".join(result.output.split())


def config(loss="l2", **sections):
    source = {"source": "attributes"} if loss == "logistic" else {"source": "sine", "samples": 200}
    if "source" in sections.get("data", {}):
        source = {}
    raw = {
        "data": source,
        "model": {"hidden": [16]},
        "loss": loss,
        "train": {"epochs": 5, "batch_size": 32},
        "optimizer": {"name": "adam", "lr": 0.01},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(raw)


def write_yaml(path, cfg_dict):
    path.write_text(json.dumps(cfg_dict))  # JSON is YAML
    return path


def test_a_linear_l2_net_converges_to_the_least_squares_solution(tmp_path):
    """Features and targets are standardized (the defaults) and the net's weights are mapped back to raw units with
    the statistics the checkpoint stores: y = t_mean + t_std·(((x − m) / s)·W + b). Full-batch descent on
    ½‖XW + b − y‖²/N has one minimum, the least-squares solution np.linalg.lstsq finds on [X, 1]."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 3)) * [1.0, 20.0, 0.5] + [0.5, -10.0, 2.0]
    y = X @ [1.5, -2.0, 0.7] + 30 + 0.1 * rng.standard_normal(200)
    csv = tmp_path / "linear.csv"
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", header="a,b,c,y", comments="", fmt="%.17g")
    cfg = config_from_dict(
        {
            "data": {"source": str(csv), "target": "y"},
            "model": {"hidden": [], "init": "normal", "init_std": 0.01},
            "loss": "l2",
            "regularization": {"l2": 0.0, "l1": 0.0},
            "optimizer": {"name": "sgd", "lr": 0.5},
            "train": {"epochs": 200, "batch_size": "full"},
        }
    )
    Trainer(cfg, tmp_path / "run").run()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    W, b = ckpt.params["W1"].astype(np.float64), ckpt.params["b1"].astype(np.float64)
    m, s, t_mean, t_std = ckpt.norm_mean, ckpt.norm_std, ckpt.target_mean, ckpt.target_std
    W_raw, b_raw = t_std * W / s[:, None], t_mean + t_std * (b - (m / s) @ W)
    data = load_dataset(cfg.data, cfg.seed, np.float64, "regression")
    X_train, y_train = data.train.X * data.std + data.mean, data.train.y * data.target_std + data.target_mean
    A = np.column_stack([X_train, np.ones(len(X_train))])
    solution = np.linalg.lstsq(A, y_train.ravel(), rcond=None)[0]
    np.testing.assert_allclose(W_raw.ravel(), solution[:3], rtol=1e-4)
    np.testing.assert_allclose(b_raw, solution[3:], rtol=1e-4)


def test_a_two_layer_net_fits_the_noisy_sine_to_its_noise_level(tmp_path):
    noise = 0.1
    cfg = config(
        data={"samples": 1000, "noise": noise, "val_fraction": 0.3},
        model={"hidden": [50], "activation": "tanh"},
        regularization={"l2": 0.0},
        train={"epochs": 150, "batch_size": 32},
    )
    summary = Trainer(cfg, tmp_path / "run").run()
    assert summary["best"]["val_rmse"] <= 1.1 * noise, summary["best"]
    assert summary["best"]["val_r2"] > 0.95


def test_the_attributes_generator_is_learned_to_95_percent_mean_accuracy(tmp_path):
    cfg = config(
        "logistic",
        data={"samples": 1000, "dimensions": 4, "classes": 3, "noise": 0.05, "val_fraction": 0.3},
        model={"hidden": [32]},
        train={"epochs": 60},
    )
    summary = Trainer(cfg, tmp_path / "run").run()
    assert summary["best"]["val_accuracy"] >= 0.95, summary["best"]
    assert {"val_exact_match", "val_micro_f1"} <= set(summary["best"])


def test_the_builtin_gradcheck_covers_every_new_loss_alone_and_with_l1_and_l2():
    result = run("gradcheck", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    for loss in NEW_LOSSES:
        assert checks[f"{loss}_loss: dscores"]["status"] == "pass"
        net = [c for name, c in checks.items() if name.startswith(f"two-layer net, {loss} loss, L2+L1")]
        assert net and all(c["status"] == "pass" for c in net), net


@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_gradcheck_of_a_config_with_each_new_loss_and_l1_l2(tmp_path, loss):
    source = {"source": "attributes"} if loss == "logistic" else {"source": "sine"}
    path = write_yaml(
        tmp_path / f"{loss}.yaml",
        {"data": source, "model": {"hidden": [8], "activation": "tanh"}, "loss": loss,
         "regularization": {"l2": 0.01, "l1": 0.01}},
    )  # fmt: skip
    result = run("gradcheck", path)
    assert result.exit_code == 0, result.output
    assert "checks passed" in said(result)


@pytest.mark.parametrize("loss", NEW_LOSSES)
def test_resume_is_bit_identical_with_each_new_loss(tmp_path, loss):
    cfg = config(loss, model={"dropout": 0.2}, train={"early_stopping": {"patience": 50}})
    Trainer(cfg, tmp_path / "straight").run()
    train_interrupted(cfg, tmp_path / "resumed", stop_after=2)
    assert weights(tmp_path / "straight") == weights(tmp_path / "resumed")
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "resumed")


def write_csv(path, text):
    path.write_text(text)
    return path


def test_a_multi_target_csv_trains_one_output_per_target(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    lines = ["x1,x2,a,b"] + [f"{p},{q},{p + q},{100 * p - q}" for p, q in X]
    csv = write_csv(tmp_path / "two.csv", "\n".join(lines) + "\n")
    cfg = config(data={"source": str(csv), "target": ["a", "b"]})
    data = load_dataset(cfg.data, 0, np.float64, "regression")
    assert data.classes == ["a", "b"] and data.feature_names == ["x1", "x2"]
    assert data.train.y.shape[1] == 2
    np.testing.assert_allclose(data.train.y.mean(axis=0), 0, atol=1e-12)  # standardized on the training split
    assert data.target_std[1] > 50 * data.target_std[0]
    Trainer(cfg, tmp_path / "run").run()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert ckpt.task == "regression" and ckpt.classes == ["a", "b"] and ckpt.params["W2"].shape[1] == 2


def test_a_text_target_with_l2_is_refused_naming_the_column_and_the_loss(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "x,price\n1,cheap\n2,dear\n3,cheap\n4,dear\n5,cheap\n")
    path = write_yaml(tmp_path / "c.yaml", {"data": {"source": str(csv), "target": "price"}, "loss": "l2"})
    result = run("train", path, "--out", tmp_path / "run", "-q")
    assert result.exit_code == 2, result.output
    assert "'price'" in said(result) and "l2" in said(result) and str(csv) in said(result)
    assert "Traceback" not in result.output and not (tmp_path / "run" / "checkpoint.npz").exists()


def test_a_target_that_is_not_0_or_1_with_logistic_is_refused(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "x,tall\n1,0\n2,1\n3,2\n4,0\n5,1\n")
    with pytest.raises(DataError) as err:
        load_dataset(config("logistic", data={"source": str(csv), "target": "tall"}).data, 0, task="attributes")
    assert str(csv) in str(err.value) and "logistic" in str(err.value) and " 2" in str(err.value)


def test_a_missing_target_cell_is_refused_or_dropped_with_missing_drop(tmp_path):
    csv = write_csv(tmp_path / "t.csv", "x,y\n1,0.5\n2,\n3,1.5\n4,2.5\n5,3.5\n6,4.5\n")
    with pytest.raises(DataError) as err:
        load_dataset(config(data={"source": str(csv), "target": "y"}).data, 0, task="regression")
    assert "line 3" in str(err.value) and "'y'" in str(err.value) and "missing: drop" in str(err.value)
    data = load_dataset(config(data={"source": str(csv), "target": "y", "missing": "drop"}).data, 0, task="regression")
    assert len(data.train) + len(data.val) == 5


def test_standardize_target_false_keeps_the_raw_units(tmp_path):
    cfg = config(data={"standardize_target": False})
    data = load_dataset(cfg.data, 0, np.float64, "regression")
    assert data.target_mean is None and data.target_std is None
    assert np.abs(data.train.y).max() <= 1.5  # sin x + 0.1 noise, as drawn
    Trainer(cfg, tmp_path / "run").run()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert ckpt.target_mean is None and ckpt.target_std is None


def test_a_format_2_checkpoint_still_loads_and_evaluates(tmp_path):
    path = write_yaml(
        tmp_path / "c.yaml",
        {"data": {"source": "spiral", "samples_per_class": 30}, "model": {"hidden": [8]}, "train": {"epochs": 3}},
    )
    assert run("train", path, "--out", tmp_path / "run", "-q").exit_code == 0
    ckpt_path = tmp_path / "run" / "checkpoint.npz"
    with np.load(ckpt_path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = 2
    meta.pop("task", None)
    arrays["meta"] = np.array(json.dumps(meta))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    ckpt = load_checkpoint(old)
    assert ckpt.meta["format_version"] == 2 and ckpt.task == "classification"
    result = run("eval", old, "--json")
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["accuracy"] <= 1


def test_a_classification_monitor_with_l2_is_refused_naming_both(tmp_path):
    path = write_yaml(
        tmp_path / "c.yaml",
        {"data": {"source": "sine"}, "loss": "l2", "train": {"early_stopping": {"monitor": "val_accuracy"}}},
    )
    result = run("train", path, "--out", tmp_path / "run", "-q")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "val_accuracy" in said(result) and "'l2'" in said(result) and "val_rmse" in said(result)
    with pytest.raises(ConfigError):
        config(train={"early_stopping": {"monitor": "val_accuracy"}})


@pytest.mark.parametrize("loss", ["l2", "logistic"])
def test_a_fresh_net_on_standardized_targets_passes_the_initial_loss_check(tmp_path, loss):
    summary = Trainer(config(loss, train={"epochs": 1}), tmp_path / "run").run()
    assert not [w for w in summary["warnings"] if w.startswith("initial")], summary["warnings"]


@pytest.mark.parametrize("loss", ["l2", "logistic"])
def test_an_init_far_too_large_fails_the_initial_loss_check(tmp_path, loss):
    cfg = config(loss, model={"init": "normal", "init_std": 10.0}, train={"epochs": 1})
    summary = Trainer(cfg, tmp_path / "run").run()
    assert any(w.startswith(f"initial {loss} loss is") and "per" in w for w in summary["warnings"]), summary


@pytest.mark.parametrize(
    "source, loss, said_",
    [
        ("spiral", "l2", "data.source 'spiral' draws class labels (classification), but the loss is a regression loss"),
        ("sine", "logistic", "data.source 'sine' draws real targets (regression), but the loss is an attributes loss"),
        ("attributes", "softmax", "'attributes' draws 0/1 attributes (attributes), but the loss is a classification"),
        ("sine", "l2", "data.target names a column of a CSV file; data.source 'sine' is a built-in"),
    ],
)
def test_a_built_in_whose_targets_the_loss_cannot_use_is_refused_naming_both(tmp_path, source, loss, said_):
    data = {"source": source, "target": "y"} if "data.target" in said_ else {"source": source}
    path = write_yaml(tmp_path / "c.yaml", {"data": data, "loss": loss})
    result = run("train", path, "--out", tmp_path / "run", "-q")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert said_ in said(result) and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "target, loss, said_",
    [
        (["a", "a"], "l2", "data.target names column 'a' twice"),
        ([], "l2", "data.target is an empty list"),
        (
            ["a", "b"],
            "softmax",
            "data.target is a list ('a', 'b'), but a classification loss (softmax, svm) learns one",
        ),
        (["a"], "svm", "set data.target: a, or use loss logistic"),
    ],
)
def test_a_target_list_the_loss_cannot_use_is_refused(tmp_path, target, loss, said_):
    csv = write_csv(tmp_path / "m.csv", "x,a,b\n" + "".join(f"{i},{i % 2},{i % 3 // 2}\n" for i in range(12)))
    path = write_yaml(tmp_path / "c.yaml", {"data": {"source": str(csv), "target": target}, "loss": loss})
    result = run("train", path, "--out", tmp_path / "run", "-q")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert said_ in said(result) and not (tmp_path / "run").exists()


def test_init_template_regression_writes_a_commented_sine_config_that_trains(tmp_path):
    path = tmp_path / "reg.yaml"
    assert run("init", path, "--template", "regression").exit_code == 0
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=schema.json") and "source: sine" in text
    assert "loss: l2 " in text and "standardize_target: true" in text
    result = run("train", path, "train.epochs=3", "--out", tmp_path / "run", "-q")
    assert result.exit_code == 0, result.output
    assert "val_rmse" in (tmp_path / "run" / "metrics.csv").read_text()


@pytest.mark.parametrize("loss, shape", [("l2", "(N,1)"), ("logistic", "(N,3)")])
def test_graph_shows_the_new_loss_gate_with_its_targets_and_local_rule(tmp_path, loss, shape):
    from nncli.nn.losses import LOSSES

    source = "attributes" if loss == "logistic" else "sine"
    path = write_yaml(tmp_path / "c.yaml", {"data": {"source": source}, "model": {"hidden": [8]}, "loss": loss})
    result = runner.invoke(app, ["graph", str(path)], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert f"y {shape}" in result.output and f"{loss} loss → data loss" in result.output
    assert LOSSES[loss].rule.split(",")[0] in result.output  # the local rule, dscores = …
    traced = runner.invoke(app, ["backprop", str(path), "--samples", "2"], terminal_width=300)
    assert (
        traced.exit_code == 0 and f"{loss} loss ─" in traced.output and LOSSES[loss].rule.split(",")[0] in traced.output
    )


def test_raw_targets_in_their_own_units_pass_the_initial_loss_check(tmp_path):
    """With data.standardize_target false a fresh net is judged against the loss of outputs 0 on the raw targets
    (here prices around 100,000), not the ½ per output of standardized ones."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2))
    price = 100_000 + 20_000 * x[:, 0] + 5_000 * rng.standard_normal(200)
    rows = "\n".join(f"{a:.4f},{b:.4f},{p:.2f}" for (a, b), p in zip(x, price))
    path = write_csv(tmp_path / "prices.csv", "x1,x2,price\n" + rows + "\n")
    cfg = config("l2", data={"source": str(path), "standardize_target": False}, train={"epochs": 1})
    summary = Trainer(cfg, tmp_path / "run").run()
    assert not [w for w in summary["warnings"] if w.startswith("initial")], summary["warnings"]
    too_large = config("l2", data={"source": str(path), "standardize_target": False}, train={"epochs": 1})
    too_large.model.init, too_large.model.init_std = "normal", 1e4
    summary = Trainer(too_large, tmp_path / "run-large").run()
    assert any(w.startswith("initial l2 loss is") for w in summary["warnings"]), summary["warnings"]


def test_data_target_on_an_array_file_is_refused_not_ignored(tmp_path):
    path = tmp_path / "xy.npz"
    np.savez(path, X=np.zeros((10, 2)), y=np.arange(10.0))
    with pytest.raises(
        DataError, match=r"data.target names a column of a CSV file; data.source '.*xy.npz' is not a CSV"
    ):
        load_dataset(config("l2", data={"source": str(path), "target": "y"}).data, 0, np.float64, "regression")

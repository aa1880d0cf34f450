"""Babysitting training: per-layer numbers in metrics.jsonl and plain-language warnings, none on healthy runs."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.nn.network import Network
from nncli.training.diagnostics import RATIO_FROM_EPOCH, Diagnostics, initial_loss_warning, overfitting

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def train(tmp_path, config, *overrides):
    result = runner.invoke(
        app, ["train", str(ROOT / "configs" / config), *overrides, "--out", str(tmp_path / "r"), "-q"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    return summary["warnings"], result.output


def test_a_huge_learning_rate_warns_about_the_update_ratio_and_dead_relus(tmp_path):
    warnings, output = train(tmp_path, "spiral-2layer.yaml", "optimizer.lr=20", "train.epochs=30")
    assert any("update/weight ratio in W" in w and "learning rate is probably too high" in w for w in warnings)
    assert any("ReLUs are dead" in w for w in warnings)
    assert "warning: update/weight ratio" in output  # shown even with --quiet
    kinds = [w.split(" ")[0] for w in warnings]
    assert len(warnings) == len({w[:20] for w in warnings}), kinds  # each kind at most once


def test_a_dead_relu_init_is_named(tmp_path):
    """Hidden biases of −5 on standardized inputs: almost no ReLU ever fires, so almost none can learn."""
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "model.bias_init=-5", "train.epochs=3")
    assert any(
        w.endswith(
            "of layer-1 ReLUs are dead (never active this epoch) — they cannot learn; lower the "
            "learning rate, use leaky_relu, or check model.init and model.bias_init"
        )
        for w in warnings
    )


def test_a_small_positive_bias_init_keeps_every_relu_alive(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "model.bias_init=0.01", "train.epochs=3")
    assert warnings == []
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["layers"]["W1"]["dead_fraction"] == 0


def test_a_bad_init_scale_fails_the_initial_loss_check(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "model.init=normal", "model.init_std=5", "train.epochs=2")
    assert any(w.startswith("initial softmax loss is") and "ln C" in w for w in warnings)


def test_initial_loss_check_for_svm():
    assert initial_loss_warning(2.1, "svm", 3) is None
    assert "C − 1" in initial_loss_warning(40.0, "svm", 3)


@pytest.mark.parametrize(
    "config", ["spiral-2layer.yaml", "spiral-3layer.yaml", "digits-2layer.yaml", "digits-3layer.yaml", "iris.yaml"]
)
def test_healthy_runs_raise_no_warning(tmp_path, config):
    warnings, _ = train(tmp_path, config)
    assert warnings == []
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    ratio = rows[-1]["layers"]["W1"]["update_ratio"]
    assert 0 < ratio < 1 and rows[-1]["layers"]["W1"]["dead_fraction"] < 0.5


def grow_weights(factors):
    """Warnings from a Diagnostics whose net's weights grow by `factors[e]` in epoch e's last update."""
    net = Network(2, [4], 2, rng=0)
    diag, found = Diagnostics(net), []
    for epoch, factor in enumerate(factors, start=1):
        diag.before_last_update()
        net.theta *= factor  # ‖ΔW‖/‖W‖ = factor − 1 for every layer
        found += diag.end_epoch({"epoch": epoch, "train_accuracy": 0.5, "train_loss": 1.0})[1]
    return found


def test_a_sustained_update_ratio_of_0_2_is_too_high():
    found = grow_weights([1.2] * RATIO_FROM_EPOCH)
    assert found == ["update/weight ratio in W1 is 0.2 (healthy: about 1e-3) — the learning rate is probably too high"]


def test_large_first_updates_of_a_fresh_net_are_not_blamed_on_the_learning_rate():
    assert grow_weights([1.8] * (RATIO_FROM_EPOCH - 1) + [1.001] * 20) == []


def test_a_tiny_learning_rate_warns_that_it_is_too_low(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "optimizer.lr=1e-7", "train.epochs=12")
    assert any("update/weight ratio in W" in w and "learning rate is probably too low" in w for w in warnings)


def test_saturated_tanh_units_are_reported(tmp_path):
    warnings, _ = train(
        tmp_path,
        "spiral-2layer.yaml",
        "model.activation=tanh",
        "model.init=normal",
        "model.init_std=200",
        "train.epochs=2",
        "data.standardize=false",
    )
    assert any("saturated" in w for w in warnings)


def test_an_overfitting_setup_is_named(tmp_path):
    """Few noisy points, a wide net and no regularization: the net memorizes, validation loss climbs."""
    warnings, _ = train(
        tmp_path,
        "spiral-2layer.yaml",
        "data.samples_per_class=20",
        "data.noise=0.6",
        "data.val_fraction=0.5",
        "model.hidden=[200]",
        "regularization.l2=0",
        "optimizer.lr=0.1",
        "train.epochs=150",
    )
    assert len(warnings) == 1 and "overfitting; try more regularization" in warnings[0], warnings
    assert warnings[0].startswith("validation loss rose from") and "training accuracy" in warnings[0]


def test_one_noisy_validation_epoch_is_not_overfitting():
    rows = [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 0.5, "train_accuracy": 0.99, "val_accuracy": 0.8}
        for e in range(1, 12)
    ]
    rows[-1]["val_loss"] = 5.0  # one bad epoch: the median of the last five is still 0.5
    assert overfitting(rows) is None
    for row in rows[-5:]:
        row["val_loss"] = 0.8
    assert "validation loss rose from 0.5 (epoch 1) to 0.8" in overfitting(rows)


def test_diagnostics_can_be_turned_off(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "optimizer.lr=20", "train.epochs=5", "train.diagnostics=false")
    assert warnings == []
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert "layers" not in row

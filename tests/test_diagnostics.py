"""Babysitting training: per-layer numbers in metrics.jsonl and plain-language warnings, none on healthy runs."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.diagnostics import Diagnostics, initial_loss_warning
from nncli.network import Network

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def train(tmp_path, config, *overrides):
    result = runner.invoke(app, ["train", str(ROOT / "configs" / config), *overrides, "--out", str(tmp_path / "r"),
                                 "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    return summary["warnings"], result.output


def test_a_huge_learning_rate_warns_about_the_update_ratio_and_dead_relus(tmp_path):
    warnings, output = train(tmp_path, "spiral-2layer.yaml", "optimizer.lr=20", "train.epochs=30")
    assert any("update/weight ratio in W" in w and "learning rate is probably too high" in w for w in warnings)
    assert any("ReLUs are dead" in w for w in warnings)
    assert "warning: update/weight ratio" in output  # shown even with --quiet
    kinds = [w.split(" ")[0] for w in warnings]
    assert len(warnings) == len(set(w[:20] for w in warnings)), kinds  # each kind at most once


def test_a_bad_init_scale_fails_the_initial_loss_check(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "model.init=normal", "model.init_std=5", "train.epochs=2")
    assert any(w.startswith("initial softmax loss is") and "ln C" in w for w in warnings)


def test_initial_loss_check_for_svm():
    assert initial_loss_warning(2.1, "svm", 3) is None
    assert "C − 1" in initial_loss_warning(40.0, "svm", 3)


@pytest.mark.parametrize("config", ["spiral-2layer.yaml", "digits-2layer.yaml"])
def test_healthy_runs_raise_no_warning(tmp_path, config):
    warnings, _ = train(tmp_path, config)
    assert warnings == []
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    ratio = rows[-1]["layers"]["W1"]["update_ratio"]
    assert 0 < ratio < 1 and rows[-1]["layers"]["W1"]["dead_fraction"] < 0.5


def test_saturated_tanh_units_are_reported(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "model.activation=tanh", "model.init=normal",
                        "model.init_std=200", "train.epochs=2", "data.standardize=false")
    assert any("saturated" in w for w in warnings)


def test_overfitting_is_named():
    diag = Diagnostics(Network(2, [4], 2, rng=0))
    found = []
    for epoch, (train_acc, val_acc) in enumerate([(0.8, 0.9), (0.82, 0.88), (0.85, 0.86), (0.9, 0.84),
                                                   (0.93, 0.82), (0.97, 0.8)], start=1):
        found += diag.end_epoch({"epoch": epoch, "train_accuracy": train_acc, "val_accuracy": val_acc})[1]
    assert any("overfitting" in w and "validation accuracy fell for 5 epochs" in w for w in found)


def test_diagnostics_can_be_turned_off(tmp_path):
    warnings, _ = train(tmp_path, "spiral-2layer.yaml", "optimizer.lr=20", "train.epochs=5",
                        "train.diagnostics=false")
    assert warnings == []
    row = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert "layers" not in row

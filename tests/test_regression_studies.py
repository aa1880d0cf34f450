"""Seed studies and sweeps of a regression config: the task's metrics, never a classification one."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app
from nncli.errors import ConfigError
from nncli.studies.sweep_file import parse_sweep

runner = CliRunner()
BASE = {
    "data": {"source": "sine", "samples": 120},
    "model": {"hidden": [8], "activation": "tanh"},
    "loss": "l2",
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 32, "diagnostics": False},
}


def test_a_regression_sweep_ranks_by_val_loss_by_default(tmp_path):
    sweep = parse_sweep({"base": BASE, "trials": 2, "space": {"optimizer.lr": {"choice": [0.01, 0.1]}}}, tmp_path / "s")
    assert sweep.metric == "val_loss"
    spiral = dict(BASE, data={"source": "spiral"}, loss="softmax")
    assert parse_sweep(
        {"base": spiral, "trials": 2, "space": {"optimizer.lr": {"choice": [0.01, 0.1]}}}, tmp_path / "s"
    ).metric == ("val_accuracy")


def test_a_sweep_metric_the_loss_does_not_record_is_refused_naming_both(tmp_path):
    raw = {"base": BASE, "trials": 2, "metric": "val_accuracy", "space": {"optimizer.lr": {"choice": [0.01, 0.1]}}}
    with pytest.raises(ConfigError) as err:
        parse_sweep(raw, tmp_path / "s")
    text = str(err.value)
    assert "val_accuracy is not recorded for the base's loss 'l2' (regression)" in text
    assert "val_rmse" in text and "val_r2" in text


def test_a_regression_seed_study_reports_the_regression_metrics_of_each_seed(tmp_path):
    config = tmp_path / "sine.yaml"
    config.write_text(yaml.safe_dump(dict(BASE, output={"dir": str(tmp_path / "study")})))
    result = runner.invoke(app, ["train", str(config), "--seeds", "0-1", "-q"])
    assert result.exit_code == 0, result.output
    assert "val_rmse" in result.output and "val_r2" in result.output
    assert "accuracy" not in result.output  # no column of a metric the task does not have
    study = json.loads((tmp_path / "study" / "seeds.json").read_text())
    assert set(study["aggregate"]["final"]) == {
        f"{split}_{m}" for split in ("train", "val") for m in ("loss", "rmse", "mae", "r2")
    }

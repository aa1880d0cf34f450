"""Every --json a script may parse: train's summary, runs, diff, validate and the sweep's final table, in the shapes
the README's "JSON outputs" documents; stdout holds the JSON alone."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs/spiral-2layer.yaml"
SMALL = ("train.epochs=3", "data.samples_per_class=30")
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def as_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    summaries = {}
    for name, extra in [("a", []), ("b", ["optimizer.lr=0.5"])]:
        summaries[name] = as_json(run("train", SPIRAL, *SMALL, *extra, "--out", base / name, "--json"))
    return base, summaries


def test_train_json_is_the_summary_and_nothing_else(two_runs):
    base, summaries = two_runs
    summary = summaries["a"]
    assert summary["status"] == "completed" and summary["epochs_run"] == 3 and summary["run_dir"] == str(base / "a")
    assert summary["name"] == "spiral-2layer" and summary["best_epoch"] in (1, 2, 3)
    assert {"val_loss", "val_accuracy"} <= set(summary["best"]) and {"val_loss"} <= set(summary["final"])
    on_disk = json.loads((base / "a" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k != "run_dir"} == on_disk


def test_train_json_with_seeds_is_refused_naming_seeds_json(tmp_path):
    result = run("train", SPIRAL, *SMALL, "--seeds", "0-1", "--out", tmp_path / "s", "--json")
    assert result.exit_code == 2 and "seeds.json" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


def test_runs_json_is_one_object_per_run(two_runs):
    base, _ = two_runs
    rows = as_json(run("runs", base, "--json", "--sort", "best_val_accuracy"))
    assert [set(r) for r in rows] == [
        {"path", "name", "status", "epochs", "best_val_accuracy", "best_val_rmse", "wall_seconds"}
    ] * 2
    assert sorted(r["path"] for r in rows) == [str(base / "a"), str(base / "b")]
    assert all(r["status"] == "completed" and r["epochs"] == 3 and r["best_val_rmse"] is None for r in rows)
    assert rows[0]["best_val_accuracy"] >= rows[1]["best_val_accuracy"]


def test_diff_json_names_each_changed_key_with_both_values(two_runs):
    base, summaries = two_runs
    diff = as_json(run("diff", base / "a", base / "b", "--json"))
    assert diff["runs"] == [str(base / "a"), str(base / "b")]
    assert diff["config"] == {"optimizer.lr": [1.0, 0.5]}
    assert diff["status"] == ["completed", "completed"] and diff["epochs"] == [3, 3]
    assert diff["metrics"]["best.val_loss"] == [summaries["a"]["best"]["val_loss"], summaries["b"]["best"]["val_loss"]]


def test_validate_json_gives_each_key_its_value_and_origin():
    result = as_json(run("validate", SPIRAL, "optimizer.lr=0.1", "--json"))
    assert result["config"] == str(SPIRAL) and result["valid"] is True and result["warnings"] == []
    assert result["keys"]["optimizer.lr"] == {"value": 0.1, "from": "override"}
    assert result["keys"]["train.epochs"] == {"value": 300, "from": "file"}
    assert result["keys"]["data.test_fraction"]["from"] == "default"


def test_validate_json_of_a_bad_config_is_the_usual_error():
    result = run("validate", SPIRAL, "optimizer.lr=-1", "--json")
    assert result.exit_code == 2 and "optimizer.lr" in result.output and not result.stdout.startswith("{")


def test_sweep_json_is_the_final_table(tmp_path):
    pytest.importorskip("optuna")
    spec = {
        "base": {
            "data": {"source": "spiral", "samples_per_class": 20},
            "model": {"hidden": [8]},
            "train": {"epochs": 2, "diagnostics": False},
        },
        "method": "grid",
        "seeds": [0],
        "space": {"optimizer.lr": [0.1, 1.0]},
        "output": str(tmp_path / "sw"),
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    table = as_json(run("sweep", path, "--workers", "1", "--json"))
    assert {k: table[k] for k in ("sweep", "metric", "maximize", "seeds", "directory")} == {
        "sweep": "s",
        "metric": "val_accuracy",
        "maximize": True,
        "seeds": [0],
        "directory": str(tmp_path / "sw"),
    }
    assert table["best_config"] == str(tmp_path / "sw" / "best.yaml")
    assert sorted(t["params"]["optimizer.lr"] for t in table["trials"]) == [0.1, 1.0]
    for trial in table["trials"]:
        assert set(trial) == {"number", "state", "mean", "std", "epochs", "params", "error"}
        assert trial["state"] == "complete" and trial["epochs"] == 2
    means = [t["mean"] for t in table["trials"]]
    assert means == sorted(means, reverse=True)  # best first, as in the table

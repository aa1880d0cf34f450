"""The path rule: a config's relative data paths are relative to the config file, an override's to the working
directory, and the run records absolute paths, so train, eval and predict work from any directory."""

import csv
import io
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import load_config

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def points(path):
    rng = np.random.default_rng(0)
    path.write_text("a,b,y\n" + "".join(f"{a},{b},{int(a > b)}\n" for a, b in rng.normal(size=(40, 2))))
    return path


def test_shipped_iris_config_trains_from_any_directory_and_its_run_evaluates_from_a_third(tmp_path, monkeypatch):
    (elsewhere := tmp_path / "elsewhere").mkdir()
    (third := tmp_path / "third").mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("train", ROOT / "configs/iris.yaml", "train.epochs=2", "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["source"]
    assert recorded == str(ROOT / "data" / "iris.csv")
    monkeypatch.chdir(third)
    result = run("eval", tmp_path / "r" / "best.npz", "--json")
    assert result.exit_code == 0, result.output
    result = run("predict", tmp_path / "r" / "best.npz", ROOT / "data" / "iris.csv")
    assert result.exit_code == 0, result.output
    assert len(list(csv.reader(io.StringIO(result.output)))) == 151


def test_a_relative_path_in_a_config_file_is_relative_to_that_file(tmp_path, monkeypatch):
    (project := tmp_path / "project").mkdir()
    points(project / "points.csv")
    config = project / "c.yaml"
    config.write_text("data: {source: points.csv}\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(config).data.source == str(project / "points.csv")


def test_an_override_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    (project := tmp_path / "project").mkdir()
    (shell := tmp_path / "shell").mkdir()
    points(project / "points.csv")
    points(shell / "mine.csv")
    config = project / "c.yaml"
    config.write_text("data: {source: points.csv}\nmodel: {hidden: [4]}\ntrain: {epochs: 1}\n")
    monkeypatch.chdir(shell)
    result = run("train", config, "data.source=mine.csv", "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["source"]
    assert recorded == str(shell / "mine.csv")


def test_a_missing_relative_path_is_named_where_the_rule_looked(tmp_path, monkeypatch):
    (project := tmp_path / "project").mkdir()
    config = project / "c.yaml"
    config.write_text("data: {source: nowhere.csv}\n")
    monkeypatch.chdir(tmp_path)
    result = run("train", config, "--out", tmp_path / "r", "-q")
    assert result.exit_code == 2
    assert str(project / "nowhere.csv") in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_a_config_of_an_earlier_version_relative_to_the_working_directory_keeps_that_meaning(tmp_path, monkeypatch):
    """A run directory's config.yaml written before the rule: its path, not next to it, is found where nncli runs,
    and is kept as written so the run resumes with an unchanged config."""
    points(tmp_path / "points.csv")
    (run_dir := tmp_path / "runs" / "old").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("data: {source: points.csv}\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(run_dir / "config.yaml").data.source == "points.csv"


def test_built_in_dataset_names_and_output_dir_are_not_resolved(tmp_path, monkeypatch):
    config = tmp_path / "sub" / "c.yaml"
    config.parent.mkdir()
    config.write_text("data: {source: spiral}\noutput: {dir: runs/x}\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_config(config)
    assert (loaded.data.source, loaded.output.dir) == ("spiral", "runs/x")


def test_a_sweep_base_and_its_data_are_found_next_to_their_files(tmp_path, monkeypatch):
    from nncli.studies.sweep_file import load_sweep

    (project := tmp_path / "project").mkdir()
    points(project / "points.csv")
    (project / "base.yaml").write_text("data: {source: points.csv}\nmodel: {hidden: [4]}\n")
    sweep = project / "s.yaml"
    sweep.write_text("base: base.yaml\ntrials: 1\nspace: {optimizer.lr: {choice: [0.1]}}\n")
    monkeypatch.chdir(tmp_path)
    assert load_sweep(sweep).config({}).data.source == str(project / "points.csv")
    sweep.write_text("base: {data: {source: points.csv}}\ntrials: 1\nspace: {optimizer.lr: {choice: [0.1]}}\n")
    assert load_sweep(sweep).config({}).data.source == str(project / "points.csv")

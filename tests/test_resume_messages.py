"""Resume says what it does (issue 21): where it starts, that a finished run has nothing to do and how to extend
it (retraining nothing), and a seed study resumes from its seeds.json alone."""

import json
import shutil
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.training.resume import resume_point
from nncli.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs" / "spiral-2layer.yaml"
TINY = ["train.epochs=2", "data.samples_per_class=30"]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=400)


def stopped_inside_epoch(run_dir, epochs=6, stop_after=2):
    """A run stopped (as by SIGINT) one step into epoch `stop_after` + 1 of `epochs`."""
    cfg = config_from_dict(
        {
            "data": {"source": "spiral", "samples_per_class": 30},
            "model": {"hidden": [16]},
            "train": {"epochs": epochs, "batch_size": 16},
        }
    )
    trainer = Trainer(cfg, run_dir)
    trainer.on_epoch = lambda row: (
        setattr(trainer, "stop_signal", signal.SIGINT) if row["epoch"] == stop_after else None
    )
    assert trainer.run()["status"] == "interrupted"
    return run_dir


def test_resume_says_where_it_starts_inside_an_epoch(tmp_path):
    run_dir = stopped_inside_epoch(tmp_path / "r")
    result = run("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    said = f"resuming {run_dir} at epoch 2 + 1 step, 4 epochs to go"
    assert said in result.output
    assert result.output.index(said) < result.output.index("parameter")  # then the setup tables


def test_resume_at_an_epoch_boundary_counts_the_epochs_left(tmp_path):
    assert run("train", SPIRAL, *TINY, "--out", tmp_path / "r", "-q").exit_code == 0
    result = run("train", "--resume", tmp_path / "r", "train.epochs=5")
    assert result.exit_code == 0, result.output
    assert f"resuming {tmp_path / 'r'} at epoch 2, 3 epochs to go" in result.output


def test_resume_point_of_the_python_api(tmp_path):
    run_dir = stopped_inside_epoch(tmp_path / "r")
    trainer = Trainer(config_from_dict(json.loads(json.dumps(_resolved(run_dir)))), run_dir, resume=True)
    point = resume_point(trainer)
    trainer.lock.release()
    assert (point.epochs_done, point.step, point.epochs, point.finished) == (2, 1, 6, False)
    assert point.words() == f"resuming {run_dir} at epoch 2 + 1 step, 4 epochs to go"


def _resolved(run_dir):
    from nncli.config.loading import read_config_file

    return read_config_file(run_dir / "config.yaml")


def test_resuming_a_completed_run_says_there_is_nothing_to_do_and_retrains_nothing(tmp_path):
    run_dir = tmp_path / "r"
    assert run("train", SPIRAL, *TINY, "--out", run_dir, "-q").exit_code == 0
    checkpoint, metrics = (run_dir / "checkpoint.npz").read_bytes(), (run_dir / "metrics.jsonl").read_text()
    result = run("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert f"nothing to do: {run_dir} has already trained its 2 epochs" in result.output
    assert f"to train on, raise train.epochs, e.g. nncli train --resume {run_dir} train.epochs=4" in result.output
    assert "parameter" not in result.output and "best (epoch" not in result.output  # no setup, no summary again
    assert (run_dir / "checkpoint.npz").read_bytes() == checkpoint and (
        run_dir / "metrics.jsonl"
    ).read_text() == metrics
    quiet = run("train", "--resume", run_dir, "-q")  # the answer is said even with --quiet
    assert quiet.exit_code == 0 and "nothing to do" in quiet.output


def test_resuming_an_early_stopped_run_says_why_and_how_to_go_on(tmp_path):
    run_dir = tmp_path / "r"
    stop = ["train.early_stopping.patience=1", "train.early_stopping.min_delta=100", "train.epochs=20"]
    assert run("train", SPIRAL, *TINY[1:], *stop, "--out", run_dir, "-q").exit_code == 0
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "early_stopped"
    result = run("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert f"nothing to do: early stopping ended {run_dir} at epoch 2" in result.output
    assert "has not improved for 1 epoch, patience 1" in result.output
    assert "train.early_stopping.patience=2 --force" in result.output


@pytest.fixture
def study(tmp_path):
    out = tmp_path / "s"
    assert run("train", SPIRAL, *TINY, "--seeds", "0-1", "--out", out, "-q").exit_code == 0
    return out


def test_a_seed_study_resumes_from_seeds_json_alone(study):
    result = run("train", "--resume", study, "train.epochs=3")
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        assert f"seed {seed}: resuming {study / f'seed-{seed}'} at epoch 2, 1 epoch to go" in result.output
        rows = (study / f"seed-{seed}" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


def test_a_finished_seed_study_has_nothing_to_do(study):
    result = run("train", "--resume", study)
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        assert f"seed {seed}: nothing to do: {study / f'seed-{seed}'} has already trained its 2 epochs" in result.output
    assert result.output.count(f"e.g. nncli train --resume {study} train.epochs=4") == 1  # the study's, said once


def test_a_seed_study_whose_seeds_json_lists_no_seeds_is_named(study, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    (copy / "seeds.json").write_text('{"seeds": "many"}')
    result = run("train", "--resume", copy)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("error: run directory:") and f"{copy / 'seeds.json'}" in result.output
    assert "resume it with --seeds SEEDS" in result.output

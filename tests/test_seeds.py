"""`nncli train CONFIG --seeds ...`: one run per seed, mean ± std over seeds, nothing overwritten silently."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.studies.seed_spec import SeedsError, parse_seeds

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs/spiral-2layer.yaml"
TINY = ["train.epochs=2", "data.samples_per_class=30", "data.test_fraction=0.2"]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def study_json(path):
    return json.loads((path / "seeds.json").read_text())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "s"
    result = run("train", SPIRAL, *TINY, "--seeds", "0-2", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out, result


@pytest.mark.parametrize(
    "spec, seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,2,5", [0, 2, 5]), ("3", [3]), (" 0-1, 7 ", [0, 1, 7])]
)
def test_seed_specs(spec, seeds):
    assert parse_seeds(spec) == seeds


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("4-1", "backwards"),
        ("a", "non-negative integers"),
        ("-1", "non-negative integers"),
        ("1,1", "twice"),
        ("0,", "non-negative"),
    ],
)
def test_bad_seed_specs_exit_2_naming_the_option(spec, needle, tmp_path):
    with pytest.raises(SeedsError):
        parse_seeds(spec)
    result = run("train", SPIRAL, *TINY, "--seeds", spec, "--out", tmp_path / "s")
    assert result.exit_code == 2
    assert "--seeds" in result.output and needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


def test_one_run_per_seed_and_the_mean_and_std_of_their_metrics(study):
    out, result = study
    runs = study_json(out)["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    finals = []
    for seed in range(3):
        run_dir = out / f"seed-{seed}"
        assert "seed: %d" % seed in (run_dir / "config.yaml").read_text()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "completed"
        finals.append(summary["final"]["val_accuracy"])
    assert len({r["final"]["val_loss"] for r in runs}) == 3  # the seeds really differ
    aggregate = study_json(out)["aggregate"]
    assert aggregate["final"]["val_accuracy"]["mean"] == pytest.approx(np.mean(finals))
    assert aggregate["final"]["val_accuracy"]["std"] == pytest.approx(np.std(finals, ddof=1))
    assert aggregate["final"]["val_accuracy"]["n"] == 3
    for key in ("train_loss", "train_accuracy", "val_loss", "test_loss", "test_accuracy"):
        assert key in aggregate["best"]
    assert "mean ± std over 3 seeds" in result.output and "test_accuracy" in result.output


def test_test_metrics_are_what_eval_reports_for_best_npz(study):
    out, _ = study
    result = run("eval", out / "seed-1" / "best.npz", "--split", "test", "--json")
    report = json.loads(result.stdout)
    assert study_json(out)["runs"][1]["test"] == {"test_loss": report["loss"], "test_accuracy": report["accuracy"]}


def test_a_seed_run_is_the_plain_run_with_that_seed(study, tmp_path):
    out, _ = study
    assert run("train", SPIRAL, *TINY, "seed=1", "--out", tmp_path / "plain", "-q").exit_code == 0
    with np.load(out / "seed-1" / "best.npz") as a, np.load(tmp_path / "plain" / "best.npz") as b:
        assert np.array_equal(a["W1"], b["W1"]) and np.array_equal(a["W2"], b["W2"])


def test_an_existing_study_is_never_overwritten_without_force(study):
    out, _ = study
    before = (out / "seed-0" / "checkpoint.npz").stat().st_mtime_ns
    result = run("train", SPIRAL, *TINY, "--seeds", "0-1", "--out", out)
    assert result.exit_code == 2 and "--resume" in result.output and "--force" in result.output
    result = run("train", SPIRAL, *TINY, "--seeds", "7", "--out", out)  # new seeds, but seeds.json is taken
    assert result.exit_code == 2 and "seeds.json" in result.output
    assert (out / "seed-0" / "checkpoint.npz").stat().st_mtime_ns == before and not (out / "seed-7").exists()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_plain_run_is_never_written_into_a_study(study, force):
    out, _ = study
    result = run("train", SPIRAL, *TINY, "--out", out, "-q", *force)
    assert result.exit_code == 2 and "is a seed study" in result.output and "--out" in result.output
    assert not (out / "checkpoint.npz").exists() and not (out / "summary.json").exists()


def test_resuming_a_study_without_seeds_takes_them_from_seeds_json(study, tmp_path):
    """Issue 21: seeds.json lists the study's seeds, so --resume needs no --seeds (it used to be refused)."""
    out = tmp_path / "s"
    shutil.copytree(study[0], out)
    result = run("train", "--resume", out, "train.epochs=3", "-q")
    assert result.exit_code == 0, result.output
    assert [r["epochs_run"] for r in study_json(out)["runs"]] == [3, 3, 3] and study_json(out)["seeds"] == [0, 1, 2]


def test_a_single_run_directory_is_refused_even_with_force(tmp_path):
    assert run("train", SPIRAL, *TINY, "--out", tmp_path / "r", "-q").exit_code == 0
    result = run("train", SPIRAL, *TINY, "--seeds", "0-1", "--out", tmp_path / "r", "--force")
    assert result.exit_code == 2 and "single run" in result.output
    assert not (tmp_path / "r" / "seed-0").exists()


def test_force_replaces_the_requested_seed_runs_only(tmp_path):
    out = tmp_path / "s"
    assert run("train", SPIRAL, *TINY, "--seeds", "0-1", "--out", out, "-q").exit_code == 0
    kept = (out / "seed-1" / "checkpoint.npz").stat().st_mtime_ns
    result = run("train", SPIRAL, *TINY, "train.epochs=3", "--seeds", "0", "--out", out, "-q", "--force")
    assert result.exit_code == 0, result.output
    assert len((out / "seed-0" / "metrics.jsonl").read_text().splitlines()) == 3
    assert (out / "seed-1" / "checkpoint.npz").stat().st_mtime_ns == kept
    assert study_json(out)["seeds"] == [0]


def test_resume_continues_each_seed_and_starts_the_missing_ones(tmp_path):
    out = tmp_path / "s"
    assert run("train", SPIRAL, *TINY, "--seeds", "0-1", "--out", out, "-q").exit_code == 0
    first_rows = (out / "seed-0" / "metrics.jsonl").read_text().splitlines()
    result = run("train", "--resume", out, "train.epochs=3", "--seeds", "0-2", "-q")
    assert result.exit_code == 0, result.output
    for seed in range(3):
        rows = (out / f"seed-{seed}" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]
    assert (out / "seed-0" / "metrics.jsonl").read_text().splitlines()[:2] == first_rows  # continued, not redone
    assert [r["epochs_run"] for r in study_json(out)["runs"]] == [3, 3, 3]


def test_resume_of_a_directory_with_no_seed_runs(tmp_path):
    result = run("train", "--resume", tmp_path, "--seeds", "0-1")
    assert result.exit_code == 2 and "nothing to resume" in result.output


def test_a_diverged_seed_is_reported_and_left_out_of_the_mean(tmp_path, monkeypatch):
    from nncli.training import trainer

    real_epoch = trainer.Trainer._epoch

    def diverge_seed_1(self, *args, **kwargs):
        if self.config.seed == 1:
            raise trainer.Diverged("loss became nan at epoch 1, step 1; the learning rate is probably too high")
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(trainer.Trainer, "_epoch", diverge_seed_1)
    out = tmp_path / "s"
    result = run("train", SPIRAL, *TINY, "--seeds", "0-2", "--out", out, "-q")
    assert result.exit_code == 1  # like a plain diverged run
    assert "seed 1 diverged" in result.output and "left out of the mean" in result.output
    study = study_json(out)
    assert study["excluded"] == {"1": "diverged"} and study["included"] == [0, 2]
    finals = [r["final"]["val_loss"] for r in study["runs"] if r["seed"] != 1]
    assert study["aggregate"]["final"]["val_loss"]["mean"] == pytest.approx(np.mean(finals))


def test_seed_override_conflicts_with_seeds(tmp_path):
    result = run("train", SPIRAL, *TINY, "seed=3", "--seeds", "0-1", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "--seeds" in result.output and "seed=" in result.output


def test_diff_and_plot_of_a_study_point_at_its_seed_runs(study):
    out, _ = study
    for command in (["diff", out, out / "seed-0"], ["plot", out, "--text"]):
        result = run(*command)
        assert (
            result.exit_code == 2 and "is a seed study: its runs are" in result.output and "seed-<k>/" in result.output
        )
        assert "Errno" not in result.output


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("0-1000000000000", "more than 1000"),  # was a MemoryError
        ("0-100000", "more than 1000"),  # was a quadratic duplicate check that hung
        ("1" * 5001, "out of range"),  # was a ValueError from int()
        ("99999999999999999999", "out of range; a seed is from 0 to 2**63 - 1"),  # trained a run eval refused
    ],
)
def test_seed_specs_are_bounded_by_count_and_by_the_config_seed_range(spec, needle, tmp_path):
    result = run("train", SPIRAL, *TINY, "--seeds", spec, "--out", tmp_path / "s")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--seeds" in result.output and needle in result.output
    assert len(result.output) < 2000 and not (tmp_path / "s").exists()


def test_the_largest_seeds_and_counts_allowed_still_parse_quickly():
    import time

    start = time.perf_counter()
    assert parse_seeds(",".join(map(str, range(1000)))) == list(range(1000))
    assert parse_seeds("0-999") == list(range(1000)) and parse_seeds(str(2**63 - 1)) == [2**63 - 1]
    assert time.perf_counter() - start < 0.5
    for spec in ("0-999,1000", [True], [2**63], [0, 0]):
        with pytest.raises(SeedsError):
            parse_seeds(spec)


def test_a_sweep_file_with_too_many_or_too_large_seeds_is_refused(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"base: {SPIRAL}\nseeds: [0, 99999999999999999999]\nspace: {{optimizer.lr: [0.1, 0.2]}}\n")
    result = run("sweep", sweep)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "seeds: seed 99999999999999999999 is out of range" in result.output
    sweep.write_text(f"base: {SPIRAL}\nseeds: 0-5000\nspace: {{optimizer.lr: [0.1, 0.2]}}\n")
    assert "more than 1000" in run("sweep", sweep).output

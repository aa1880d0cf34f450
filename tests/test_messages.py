"""Messages by kind (issue 21): each kind of user error has its own head and says what to do; warnings name their
seed, are given again when the condition worsens, and the full-batch spiral of the notes trains without a false
"learning rate is probably too high"."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.errors import ConfigError, ResumeRefused, RunError, RunTaken
from nncli.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs" / "spiral-2layer.yaml"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=400)


def refused(result, head, *words):
    """Exit 2, no traceback, the message begins `error: HEAD:` and holds every word."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.output.startswith(f"error: {head}:"), result.output
    for word in words:
        assert word in result.output, (word, result.output)
    return result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("messages") / "r"
    assert run("train", SPIRAL, "train.epochs=2", "--out", run_dir, "-q").exit_code == 0
    return run_dir


def test_a_taken_run_directory_is_a_run_directory_error_that_says_what_to_do(trained):
    result = run("train", SPIRAL, "train.epochs=1", "--out", trained)
    refused(result, "run directory", f"{trained} already holds a run", "--force", "choose another --out")


def test_a_missing_config_is_a_usage_error():
    result = run("train")
    refused(result, "usage", "missing CONFIG", "nncli train CONFIG", "nncli train --resume RUN_DIR")


def test_an_unknown_template_is_a_usage_error_listing_the_templates(tmp_path):
    result = run("init", tmp_path / "n.yaml", "--template", "colour")
    refused(result, "usage", "--template: 'colour' is not one of spiral, digits", "choose one of them")
    assert not (tmp_path / "n.yaml").exists()


def test_a_refused_resume_lists_each_changed_key_with_its_old_and_new_value(trained):
    before = (trained / "checkpoint.npz").read_bytes()
    result = run("train", "--resume", trained, "optimizer.lr=0.3", "model.hidden=[8]")
    text = refused(result, "cannot resume", "the config differs from the run's own")
    assert "model.hidden: differs from the run being resumed (was [100], now [8])" in text
    assert "optimizer.lr: differs from the run being resumed (was 1.0, now 0.3)" in text
    assert (
        "only train.epochs and output.tensorboard may change on resume" in text
        and "pass --force to accept the changed keys" in text
    )
    assert (trained / "checkpoint.npz").read_bytes() == before


def test_no_kind_borrows_the_config_head(trained, tmp_path):
    for result in (
        run("train", SPIRAL, "train.epochs=1", "--out", trained),
        run("train"),
        run("init", tmp_path / "n.yaml", "--template", "colour"),
        run("train", "--resume", trained, "optimizer.lr=0.3"),
    ):
        assert result.exit_code == 2 and not result.output.startswith("error: invalid config"), result.output


def test_data_and_checkpoint_errors_have_heads_of_their_own(tmp_path):
    (tmp_path / "bad.npz").write_text("not a zip")
    refused(run("eval", tmp_path / "bad.npz"), "bad checkpoint", "bad.npz", "not a zip archive")
    result = run("train", SPIRAL, f"data.source={tmp_path / 'none.csv'}", "--out", tmp_path / "r")
    refused(result, "bad data", "none.csv")


def test_an_invalid_config_keeps_its_head(tmp_path):
    result = run("train", SPIRAL, "optimizer.lr=-1", "--out", tmp_path / "r")
    assert result.exit_code == 2 and result.output.startswith(f"error: invalid config {SPIRAL}:\n"), result.output
    assert "optimizer.lr: must be > 0, got -1" in result.output


def test_the_kinds_stay_catchable_as_before(trained):
    """The Python API: the new kinds are still the ConfigErrors they were, so callers catching those keep working."""
    with pytest.raises(RunTaken) as taken:
        Trainer(Trainer(_config(trained), trained, resume=True).config, trained)
    assert isinstance(taken.value, ConfigError) and isinstance(taken.value, RunError)
    with pytest.raises(ResumeRefused) as refused_resume:
        Trainer(_config(trained, optimizer={"lr": 0.5}), trained, resume=True)
    assert isinstance(refused_resume.value, ConfigError) and refused_resume.value.changes == [
        ("optimizer.lr", 1.0, 0.5)
    ]
    assert "--" not in str(refused_resume.value)


def _config(run_dir, **sections):
    from nncli.config import config_from_dict
    from nncli.config.loading import read_config_file

    raw = read_config_file(run_dir / "config.yaml")
    for key, value in sections.items():
        raw[key].update(value)
    return config_from_dict(raw)


def warnings_of(tmp_path, *overrides):
    result = run("train", SPIRAL, *overrides, "--out", tmp_path / "r", "-q")
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / "r" / "summary.json").read_text()), result.output


def test_the_notes_full_batch_spiral_trains_without_a_too_high_warning(tmp_path):
    """train.batch_size=full at the config's lr 1.0: one large step an epoch that settles within 40 steps and
    reaches ~100 % validation accuracy; the ratio rule used to count epochs and call it too high."""
    summary, output = warnings_of(tmp_path, "train.batch_size=full", "train.epochs=120")
    assert not any("too high" in w for w in summary["warnings"]), summary["warnings"]
    assert "too high" not in output
    assert summary["best"]["val_accuracy"] >= 0.95


def test_a_worsening_condition_is_reported_again_but_not_every_epoch(tmp_path):
    """lr 20: 58 % of the ReLUs die at first and all of them by the end; the run reports both figures."""
    summary, output = warnings_of(tmp_path, "optimizer.lr=20", "train.epochs=30")
    dead = [w for w in summary["warnings"] if "ReLUs are dead" in w]
    assert dead[0].startswith("58% of layer-1 ReLUs are dead") and "cannot learn" in dead[0]
    assert dead[-1].startswith("100% of layer-1 ReLUs are dead") and "worse than the" in dead[-1]
    assert 2 <= len(dead) <= 3 < 30
    final = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["layers"]["W1"]["dead_fraction"] == 1.0
    assert "warning: 100% of layer-1 ReLUs are dead" in output


def test_seed_study_warnings_name_their_seed(tmp_path):
    result = run("train", SPIRAL, "optimizer.lr=20", "train.epochs=3", "--seeds", "0-1", "--out", tmp_path / "s", "-q")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert lines and all(line.startswith(("warning: seed 0: ", "warning: seed 1: ")) for line in lines), lines
    assert any(line.startswith("warning: seed 1: ") for line in lines)


def test_a_diagnostics_state_of_the_previous_version_resumes_without_repeating_its_warnings():
    """A checkpoint written before repeats kept no figures: its warnings are not given again for the same figure,
    only when the condition worsens from where it stands after the resume."""
    import numpy as np

    from nncli.nn.network import Network
    from nncli.training.diagnostics import Diagnostics

    net = Network(2, [4], 2, rng=0)
    diag = Diagnostics(net)
    diag.load_state({"active": {}, "saturated": {}, "samples": 0, "warned": ["dead"]}, [])
    x = np.array([[1.0, 1.0]])

    def epoch(alive_units):
        net.params["W1"][...] = 0.0
        net.params["b1"][...] = -1.0
        net.params["b1"][:alive_units] = 1.0  # units 0..alive_units-1 fire, the rest are dead
        net.forward_loss(x, np.array([0]), train=False)
        diag.after_forward()
        return diag.end_epoch({"epoch": len(diag.history) + 1, "train_loss": 1.0})[1]

    assert epoch(2) == []  # 50 % dead, as the old checkpoint had warned: not repeated
    assert epoch(2) == []
    again = epoch(0)
    assert len(again) == 1 and again[0].startswith("100% of layer-1 ReLUs are dead") and "50%" in again[0]

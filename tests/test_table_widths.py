"""Tables as a user reads and copies them: at COLUMNS 60, 80 and 200, on a terminal and through a pipe, every path,
hash, name and number of eval, gradcheck, runs, inspect, diff and the sweep table appears whole (never folded over
two lines, never cut to an ellipsis); a pipe gets lines as long as the content; the sweep and summary tables say
what they show."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app
from nncli.cli.app import out
from nncli.cli.render import fmt, mean_std
from tests.test_conventions import on_a_terminal

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "spiral-2layer.yaml"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTHS = (60, 80, 200)
VIEWS = [(mode, width) for mode in ("terminal", "pipe") for width in WIDTHS]
runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, ANSI.sub("", result.output)


def shown(view, mode, width, *args):
    """What `nncli ARGS` prints in that view (terminal or pipe, `width` columns), after checking it succeeded."""
    view(mode, width)
    code, text = invoke(*args)
    assert code == 0, text
    return text


def assert_whole(text, values):
    for value in values:
        assert str(value) in text, (value, text)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two short spiral runs under a folder whose paths are longer than a 60-column terminal."""
    root = tmp_path_factory.mktemp("widths") / "a-folder-with-a-rather-long-name" / "runs"
    a, b = root / "spiral-2layer-with-a-long-name", root / "spiral-2layer-slower"
    for run_dir, lr in ((a, 1.0), (b, 0.3)):
        code, text = invoke("train", CONFIG, "train.epochs=3", f"optimizer.lr={lr}", "--out", run_dir, "--quiet")
        assert code == 0, text
    return a, b


@pytest.fixture
def view(monkeypatch):
    """Show stdout as a terminal of COLUMNS columns, or as a pipe (COLUMNS set all the same)."""

    def set_up(mode, width):
        monkeypatch.setenv("COLUMNS", str(width))
        monkeypatch.setattr(out, "_width", None)  # the width comes from COLUMNS, as for a fresh process
        monkeypatch.setattr(out, "_force_terminal", mode == "terminal")

    return set_up


@pytest.mark.parametrize("mode, width", VIEWS)
def test_eval_shows_the_checkpoint_path_and_every_number_whole(two_runs, view, mode, width):
    checkpoint = two_runs[0] / "best.npz"
    result = json.loads(invoke("eval", checkpoint, "--json")[1])
    text = shown(view, mode, width, "eval", checkpoint)
    rates = [f"{row[k]:.2%}" for row in result["per_class"] for k in ("precision", "recall")]
    numbers = [fmt(result["loss"]), f"{result['accuracy']:.2%}", f"{result['balanced_accuracy']:.2%}", *rates]
    assert_whole(text, [checkpoint, f"({result['position']}) on {result['split']}", *numbers])


@pytest.fixture(scope="module")
def builtin_results():
    from nncli.gradcheck import suite

    return suite.builtin_checks()


@pytest.mark.parametrize("mode, width", VIEWS)
def test_gradcheck_shows_every_name_shape_error_and_result_whole(builtin_results, view, monkeypatch, mode, width):
    from nncli.gradcheck import suite

    monkeypatch.setattr(suite, "builtin_checks", lambda: builtin_results)  # checked once; here the table is tested
    checks = json.loads(invoke("gradcheck", "--json")[1])["checks"]
    text = shown(view, mode, width, "gradcheck")
    for c in checks:
        assert_whole(text, [c["name"], "×".join(map(str, c["shape"])), f"{c['max_rel_error']:.2e}"])
    assert_whole(text, ["max rel. error", "tolerance", "1e-07", "pass", f"all {len(checks)} checks passed"])
    assert "…" not in text


@pytest.mark.parametrize("mode, width", VIEWS)
def test_runs_shows_every_path_name_and_number_whole(two_runs, view, mode, width):
    from nncli.evaluation.inspection import list_runs

    rows = list_runs(two_runs[0].parent)
    text = shown(view, mode, width, "runs", two_runs[0].parent)
    for row in rows:
        assert_whole(text, [row["path"], row["name"], row["status"], fmt(row["best_val_accuracy"])])
        assert_whole(text, [fmt(row["wall_seconds"]), "best_val_accuracy", "wall_seconds"])


@pytest.mark.parametrize("mode, width", VIEWS)
def test_inspect_shows_the_sha256_path_and_metrics_whole(two_runs, view, mode, width):
    checkpoint = two_runs[0] / "best.npz"
    info = json.loads(invoke("inspect", checkpoint, "--json")[1])
    text = shown(view, mode, width, "inspect", checkpoint)
    metrics = [fmt(v) for k, v in info["metrics"].items() if k != "layers"]
    assert_whole(text, [checkpoint, info["sha256"], *metrics])


@pytest.mark.parametrize("mode, width", VIEWS)
def test_diff_shows_both_paths_and_every_value_whole(two_runs, view, mode, width):
    from nncli.evaluation.inspection import diff_runs

    result = diff_runs(*two_runs)
    text = shown(view, mode, width, "diff", *two_runs)
    assert_whole(text, [*two_runs, *result["config"]])
    for key, (a, b) in result["metrics"].items():
        if not key.endswith("layers"):
            assert_whole(text, [key, fmt(a), fmt(b)])


@pytest.fixture(scope="module")
def epochs_sweep(tmp_path_factory):
    """A finished two-trial grid sweep over train.epochs and the learning rate."""
    pytest.importorskip("optuna")
    root = tmp_path_factory.mktemp("sweep-widths")
    spec = {
        "base": {
            "data": {"source": "spiral", "samples_per_class": 30, "val_fraction": 0.25},
            "model": {"hidden": [16]},
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 4, "batch_size": 32, "diagnostics": False},
        },
        "method": "grid",
        "trials": 2,
        "seeds": [0],
        "space": {"train.epochs": [2, 3], "optimizer.lr": [0.01]},
        "output": str(root / "a-sweep-directory-with-a-long-name"),
    }
    path = root / "epochs.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code, text = invoke("sweep", path, "--workers", "1")
    assert code == 0, text
    return path


def test_the_sweep_table_names_a_swept_train_epochs_apart_from_the_epochs_run(epochs_sweep, view):
    view("pipe", 80)
    code, text = invoke("sweep", epochs_sweep)
    assert code == 0, text
    header = next(line for line in text.splitlines() if "trial" in line and "state" in line).split()
    assert header.count("epochs") == 1 and "train.epochs" in header, header


@pytest.mark.parametrize("mode, width", VIEWS)
def test_the_sweep_table_shows_every_value_whole(epochs_sweep, view, mode, width):
    from nncli.studies.sweep import run_sweep
    from nncli.studies.sweep_file import load_sweep

    spec = load_sweep(epochs_sweep)
    rows = run_sweep(spec, workers=1)  # finished: the rows, nothing trained
    text = shown(view, mode, width, "sweep", epochs_sweep)
    for r in rows:
        assert_whole(text, [mean_std(r), f"nncli train {Path(spec.output) / 'best.yaml'}"])
    assert_whole(text, [spec.output, "train.epochs", "lr"])


def test_a_run_that_diverged_at_once_says_so_without_an_empty_table(tmp_path):
    code, text = invoke("train", CONFIG, "optimizer.lr=1e6", "train.epochs=3", "--out", tmp_path / "r", "--quiet")
    assert code == 1, text
    assert "best (epoch None)" not in text and "┏" not in text, text  # no empty table
    assert "diverged in epoch 1, after 0 finished epochs" in text
    assert "the learning rate (1e+06) is probably too high" in " ".join(text.split())


def _on_a_terminal(args, columns):
    """Run nncli on a pseudo-terminal `columns` wide; what it printed, escape codes removed."""
    return ANSI.sub("", on_a_terminal(*args, columns=columns, exit_code=0).decode())


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_on_a_real_60_column_terminal_the_sha256_and_path_are_whole(two_runs):
    checkpoint = two_runs[0] / "best.npz"
    info = json.loads(invoke("inspect", checkpoint, "--json")[1])
    text = _on_a_terminal(["inspect", checkpoint], 60).replace("\r\n", "\n")
    assert info["sha256"] in text and str(checkpoint) in text, text


def test_through_a_real_pipe_a_row_stays_on_one_line_whatever_columns_says(two_runs):
    env = dict(os.environ, COLUMNS="80", PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "nncli", "runs", str(two_runs[0].parent)]
    text = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout
    line = next(line for line in text.splitlines() if str(two_runs[0]) in line)
    assert "spiral-2layer" in line and "completed" in line and len(line) > 80, text
    assert "\x1b" not in text

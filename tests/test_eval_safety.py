"""Evaluation never mislabels and never answers with NaN, and a closed stdout ends a command as it ends a Unix tool.

A `--split` of a `--data` file is that split only when the file is the data the checkpoint was trained on (its
SHA-256, recorded at training as meta["data_sha256"]); otherwise eval refuses and says what to do. Scores that
overflow to NaN or infinity are an error naming the sample and the cause. `| head` gives 141, never 1.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.data.fingerprint import data_fingerprint
from nncli.training.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result):
    return result.output.replace("\n", " ")


def rewrite(src, dst, meta=None, **params):
    """A copy of checkpoint `src` at `dst` with meta keys and parameter arrays replaced."""
    ckpt = load_checkpoint(src)
    save_checkpoint(
        dst,
        {**ckpt.params, **params},
        {**ckpt.meta, **(meta or {})},
        ckpt.norm_mean,
        ckpt.norm_std,
        ckpt.optimizer_state,
    )
    return dst


def with_fingerprint(src, dst):
    """The checkpoint as the trainer writes it: with the content hash of its training data (added when absent, as
    by checkpoints of a trainer that does not record it yet)."""
    ckpt = load_checkpoint(src)
    digest = ckpt.meta.get("data_sha256") or data_fingerprint(config_from_dict(ckpt.config).data)
    return rewrite(src, dst, {"data_sha256": digest})


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    """(old-style best.npz without a data hash, the same with one, the training CSV)."""
    top = tmp_path_factory.mktemp("iris")
    data = top / "iris.csv"
    shutil.copy(ROOT / "data" / "iris.csv", data)
    out = top / "run"
    result = run("train", ROOT / "configs/iris.yaml", f"data.source={data}", "train.epochs=10", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    old = rewrite(out / "best.npz", top / "old.npz", {"data_sha256": None})
    return old, with_fingerprint(out / "best.npz", top / "hashed.npz"), data


def test_a_split_of_a_file_without_a_recorded_hash_is_refused_not_the_whole_file_labelled_test(iris):
    old, _, data = iris
    result = run("eval", old, "--data", data, "--split", "test", "--json")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "records no content hash of its training data" in said(result)
    assert "drop --split to evaluate the whole file" in said(result) and "drop --data" in said(result)


def test_a_split_of_the_training_file_is_the_recorded_split_wherever_the_file_now_is(iris, tmp_path):
    _, hashed, data = iris
    moved = tmp_path / "flowers.csv"
    shutil.copy(data, moved)
    recorded = json.loads(run("eval", hashed, "--split", "test", "--json").stdout)
    result = run("eval", hashed, "--data", moved, "--split", "test", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == "test" and report["samples"] == 30  # 20 % of 150, not the whole file
    assert (report["loss"], report["accuracy"], report["confusion"]) == (
        recorded["loss"],
        recorded["accuracy"],
        recorded["confusion"],
    )
    train = json.loads(run("eval", hashed, "--data", moved, "--split", "train", "--json").stdout)
    assert train["samples"] == 90


def test_a_split_of_a_file_with_other_contents_is_refused(iris, tmp_path):
    _, hashed, data = iris
    edited = tmp_path / "edited.csv"
    edited.write_text(data.read_text().replace("5.1,3.5,1.4,0.2", "5.2,3.5,1.4,0.2", 1))
    result = run("eval", hashed, "--data", edited, "--split", "test")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{edited}: is not the data the checkpoint was trained on" in said(result)
    assert "SHA-256 differs" in said(result)


def test_a_whole_file_is_labelled_file(iris):
    _, hashed, data = iris
    report = json.loads(run("eval", hashed, "--data", data, "--json").stdout)
    assert (report["split"], report["samples"]) == ("file", 150)


def test_the_split_is_not_rebuilt_from_a_training_file_changed_since(iris, tmp_path):
    _, hashed, data = iris
    stale = rewrite(hashed, tmp_path / "stale.npz", {"data_sha256": {"source": "0" * 64}})
    result = run("eval", stale, "--split", "test")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "has changed since the checkpoint was trained" in said(result) and "iris.csv" in said(result)


def test_a_built_in_dataset_has_no_split_in_a_file(tmp_path):
    out = tmp_path / "run"
    result = run("train", ROOT / "configs/spiral-2layer.yaml", "train.epochs=1", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    hashed = with_fingerprint(out / "best.npz", tmp_path / "hashed.npz")
    points = tmp_path / "points.csv"
    points.write_text("a,b,label\n" + "".join(f"{i / 10},{-i / 10},{i % 3}\n" for i in range(30)))
    result = run("eval", hashed, "--data", points, "--split", "val")
    assert result.exit_code == 2 and "trained on the built-in dataset 'spiral'" in said(result)


def test_npy_features_and_labels_are_both_checked(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 1, (60, 3)), rng.normal(2, 1, (60, 3))]).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.repeat([3, 7], 60))
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data: {{source: {tmp_path / 'X.npy'}, labels: {tmp_path / 'y.npy'}}}\nmodel: {{hidden: [8]}}\n"
        "train: {epochs: 2}\n"
    )
    assert run("train", config, "--out", tmp_path / "r", "-q").exit_code == 0
    hashed = with_fingerprint(tmp_path / "r" / "best.npz", tmp_path / "hashed.npz")
    result = run("eval", hashed, "--data", tmp_path / "X.npy", "--labels", tmp_path / "y.npy", "--split", "val")
    assert result.exit_code == 0, result.output
    report = json.loads(run("eval", hashed, "--data", tmp_path / "X.npy", "--split", "val", "--json").stdout)
    assert report["samples"] == 24  # the training file's own labels (data.labels), its 20 % val split
    np.save(tmp_path / "other.npy", np.repeat([7, 3], 60))
    result = run("eval", hashed, "--data", tmp_path / "X.npy", "--labels", tmp_path / "other.npy", "--split", "val")
    assert result.exit_code == 2 and "labels file" in said(result) and "other.npy" in said(result)
    result = run("eval", hashed, "--data", tmp_path / "X.npy", "--labels", tmp_path / "gone.npy", "--split", "val")
    assert result.exit_code == 2 and f"labels file not found: {tmp_path / 'gone.npy'}" in said(result)


def test_weights_that_overflow_are_an_error_not_nan(iris, tmp_path):
    _, hashed, data = iris
    W1 = load_checkpoint(hashed).params["W1"]
    huge = rewrite(hashed, tmp_path / "huge.npz", W1=np.full_like(W1, 3e38))
    for args in (("predict", huge, data), ("eval", huge, "--data", data), ("eval", huge, "--split", "test")):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and "nan" not in result.stdout.lower()
        assert "huge.npz" in said(result) and "NaN or infinite" in said(result) and "3e+38" in said(result)
        assert "RuntimeWarning" not in result.output
    out = tmp_path / "predictions.csv"
    assert run("predict", huge, data, "--out", out).exit_code == 2 and not out.exists()


def test_inputs_that_overflow_are_a_data_error_naming_the_sample(iris, tmp_path):
    _, hashed, data = iris
    lines = data.read_text().splitlines()
    lines[3] = "1e300," + lines[3].split(",", 1)[1]
    wild = tmp_path / "wild.csv"
    wild.write_text("\n".join(lines) + "\n")
    result = run("predict", hashed, wild)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sample 2 (0-based) of" in said(result) and "wild.csv" in said(result)
    assert "far outside the range the network was trained on" in said(result)


def closed_early(args, cwd, read_first_line=True):
    """Run `nncli ARGS` with stdout a pipe closed by its reader after one line (or at once): (status, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nncli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    if read_first_line:
        assert proc.stdout.readline()
    proc.stdout.close()
    status = proc.wait(timeout=120)
    return status, proc.stderr.read().decode()


def assert_quiet_141(status, stderr):
    assert status == 141, stderr  # 128 + SIGPIPE, as a shell reports `yes | head -1`; 1 would mean a failed check
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr
    assert stderr == ""


def test_gradcheck_into_a_closed_pipe_is_not_a_failed_check(tmp_path):
    assert_quiet_141(*closed_early(["gradcheck"], tmp_path, read_first_line=False))


def test_runs_into_a_closed_pipe_ends_quietly(tmp_path):
    for i in range(3):
        run_dir = tmp_path / "runs" / f"run-{i}"
        run_dir.mkdir(parents=True)
        summary = {"name": run_dir.name, "status": "completed", "epochs_run": 3, "best": {"val_accuracy": 0.5}}
        (run_dir / "summary.json").write_text(json.dumps(summary))
    # closed before the table is written (its one large write can outlive a reader that leaves in the middle)
    assert_quiet_141(*closed_early(["runs", tmp_path / "runs"], tmp_path, read_first_line=False))


def test_predict_into_a_closed_pipe_ends_quietly(iris, tmp_path):
    _, hashed, data = iris
    rows = data.read_text().splitlines()
    many = tmp_path / "many.csv"
    many.write_text("\n".join([rows[0], *rows[1:] * 40]) + "\n")  # 6,000 predictions, about 300 kB of CSV
    assert_quiet_141(*closed_early(["predict", hashed, many], tmp_path))

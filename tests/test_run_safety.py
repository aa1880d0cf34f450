"""A run directory under a careless or hostile hand: a tampered training state, swapped or stale checkpoints,
damaged metrics and summaries, a full disk, links and special files where nncli writes, and a closed stdout.
Each is refused with exit 2 and a message naming the file and what is wrong, or survived; nothing is overwritten."""

import errno
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
from nncli.errors import OutputError, RunError
from nncli.training.atomic import atomic_write_text
from nncli.training.checkpoint import load_checkpoint
from nncli.training.lock import RunLock
from nncli.training.rundir import read_metrics

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = [str(ROOT / "configs/spiral-2layer.yaml"), "data.samples_per_class=20", "optimizer.name=adam"]
SPIRAL += ["optimizer.lr=0.01", "train.batch_size=16"]
runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=400)


def train_run(run_dir, epochs=2, *extra):
    result = cli("train", *SPIRAL, f"train.epochs={epochs}", *extra, "--out", run_dir, "-q")
    assert result.exit_code == 0, result.output
    return run_dir


def refused(result, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    for word in words:
        assert word in result.output, result.output


def rewrite_checkpoint(path, edit_meta=None, drop=()):
    """Write `path` back with its meta edited by `edit_meta(meta)` and the arrays in `drop` left out, as a user
    with numpy could."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name not in drop}
    meta = json.loads(str(arrays["meta"][()]))
    if edit_meta:
        edit_meta(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def weights(run_dir):
    ckpt = load_checkpoint(Path(run_dir) / "checkpoint.npz")
    return {k: v.tobytes() for k, v in ckpt.params.items()}, {k: v.tobytes() for k, v in ckpt.optimizer_state.items()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """A 4-epoch run never stopped: what every resumed run must equal bit for bit."""
    return train_run(tmp_path_factory.mktemp("straight") / "run", 4)


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch run, interrupted-free, copied by each test that damages it."""
    return train_run(tmp_path_factory.mktemp("two") / "run", 2)


@pytest.fixture
def run_copy(two_epochs, tmp_path):
    return Path(shutil.copytree(two_epochs, tmp_path / "run"))


def set_state(key, value):
    return lambda meta: meta["state"].__setitem__(key, value)


TAMPERED = {
    "empty state": (lambda meta: meta.__setitem__("state", {}), "meta.state must be a non-empty object"),
    "no optimizer": (lambda meta: meta["state"].pop("optimizer"), "meta.state.optimizer is missing"),
    "epoch_rng a string": (set_state("epoch_rng", "PCG64"), "meta.state.epoch_rng must be a PCG64"),
    "net_rng a list": (set_state("net_rng", [1, 2]), "meta.state.net_rng must be a PCG64"),
    "negative step": (set_state("step", -3), "meta.state.step must be a step of an epoch: 0 to 2"),
    "step 10^6": (set_state("step", 10**6), "meta.state.step must be a step of an epoch: 0 to 2"),
    "best_value a string": (set_state("best_value", "0.5"), "meta.state.best_value must be a finite number"),
    "stale a float": (set_state("stale", 1.5), "meta.state.stale must be an integer from 0"),
    "partial short": (set_state("partial", [0.0]), "meta.state.partial must be [loss sum"),
    "optimizer t missing": (set_state("optimizer", {}), "meta.state.optimizer must be"),
    "warnings not text": (set_state("warnings", [1]), "meta.state.warnings must be a list of text"),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_training_state_is_refused_naming_the_field(run_copy, case):
    edit, message = TAMPERED[case]
    before = (run_copy / "metrics.jsonl").read_bytes()
    rewrite_checkpoint(run_copy / "checkpoint.npz", edit)
    refused(cli("train", "--resume", run_copy, "train.epochs=3", "-q"), "checkpoint.npz", message)
    assert (run_copy / "metrics.jsonl").read_bytes() == before


def test_an_adam_checkpoint_without_its_moment_arrays_is_refused(run_copy):
    rewrite_checkpoint(run_copy / "checkpoint.npz", drop=("opt_m",))
    refused(cli("train", "--resume", run_copy, "train.epochs=3"), "has no opt_m array", "adam")


def test_best_npz_copied_over_checkpoint_npz_is_refused(run_copy):
    shutil.copy(run_copy / "best.npz", run_copy / "checkpoint.npz")
    refused(cli("train", "--resume", run_copy, "train.epochs=3"), "was written as best.npz")
    # the same copy made by an nncli before run ids: best.npz's state is written before its epoch is booked
    rewrite_checkpoint(run_copy / "checkpoint.npz", lambda meta: meta.pop("run"))
    refused(
        cli("train", "--resume", run_copy, "train.epochs=3"),
        "meta.state.epochs_done must be meta.epoch",
        "a best.npz copied over it",
    )


def test_a_stale_or_foreign_checkpoint_is_refused(run_copy, tmp_path):
    old = tmp_path / "epoch2.npz"
    shutil.copy(run_copy / "checkpoint.npz", old)
    assert cli("train", "--resume", run_copy, "train.epochs=4", "-q").exit_code == 0
    shutil.copy(old, run_copy / "checkpoint.npz")
    refused(cli("train", "--resume", run_copy, "train.epochs=5"), "is of epoch 2", "records epochs 1 to 4")
    other = train_run(tmp_path / "other", 4)
    shutil.copy(other / "checkpoint.npz", run_copy / "checkpoint.npz")
    refused(cli("train", "--resume", run_copy, "train.epochs=5"), "belongs to another run")


def test_a_checkpoint_written_before_run_ids_still_resumes_bit_identically(run_copy, straight):
    (run_copy / "run.json").unlink()
    rewrite_checkpoint(run_copy / "checkpoint.npz", lambda meta: meta.pop("run"))  # as the previous nncli wrote it
    result = cli("train", "--resume", run_copy, "train.epochs=4", "-q")
    assert result.exit_code == 0, result.output
    assert weights(run_copy) == weights(straight)
    assert load_checkpoint(run_copy / "checkpoint.npz").meta["run"]["file"] == "checkpoint.npz"


NOT_ROWS = ["42", "[1, 2]", "null", '{"epoch": "3"}', '{"epoch": 2, "train_loss": "low"}']


@pytest.mark.parametrize("line", NOT_ROWS)
def test_a_metrics_line_that_is_json_but_not_a_row_is_named_by_file_and_line(run_copy, line):
    lines = (run_copy / "metrics.jsonl").read_text().splitlines()
    (run_copy / "metrics.jsonl").write_text("\n".join([lines[0], line, lines[1]]) + "\n")
    where = f"{run_copy / 'metrics.jsonl'}: line 2 is not a metrics row"
    refused(cli("train", "--resume", run_copy, "train.epochs=3"), where)
    refused(cli("plot", run_copy, "--text"), where)
    refused(cli("diff", run_copy, run_copy), where)


@pytest.mark.parametrize("text", ["[1, 2]", '{"status": "completed", "best": [1]}', '{"name": "x"}', "null"])
def test_a_summary_of_the_wrong_shape_is_named(run_copy, text):
    (run_copy / "summary.json").write_text(text)
    refused(cli("diff", run_copy, run_copy), str(run_copy / "summary.json"))


def test_a_deleted_or_duplicated_metrics_file_never_gives_a_wrong_epochs_run(run_copy, tmp_path):
    rows = (run_copy / "metrics.jsonl").read_text()
    (run_copy / "metrics.jsonl").write_text(rows + rows)  # appended twice
    refused(cli("train", "--resume", run_copy, "train.epochs=3"), "line 3 is epoch 1 where epoch 3 belongs")
    refused(cli("diff", run_copy, run_copy), "line 3 is epoch 1")
    (run_copy / "metrics.jsonl").unlink()
    refused(cli("train", "--resume", run_copy, "train.epochs=3"), "holds no rows but checkpoint.npz is of epoch 2")
    (run_copy / "metrics.jsonl").write_text(rows.splitlines(keepends=True)[0])  # the last row lost: repaired
    result = cli("train", "--resume", run_copy, "train.epochs=3", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((run_copy / "summary.json").read_text())["epochs_run"] == 3
    assert [row["epoch"] for row in read_metrics(run_copy)] == [1, 2, 3]


def fail_on(monkeypatch, name, errnum, nth=1):
    """Make the atomic rename onto RUN_DIR/`name` fail with `errnum` the `nth` time it is tried."""
    replace, calls = os.replace, []

    def failing(src, dst, *args, **kwargs):
        if str(dst).endswith(name):
            calls.append(dst)
            if len(calls) == nth:
                raise OSError(errnum, os.strerror(errnum))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)


@pytest.mark.parametrize("errnum", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_write_failing_during_a_run_says_what_is_intact_and_resume_is_bit_identical(
    tmp_path, monkeypatch, straight, errnum
):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as m:
        fail_on(m, "checkpoint.npz", errnum, nth=3)
        result = cli("train", *SPIRAL, "train.epochs=4", "--out", run_dir, "-q")
    refused(
        result,
        f"cannot write {run_dir / 'checkpoint.npz'}: {os.strerror(errnum)}",
        "the checkpoint of epoch 2",
        "are intact",
        "--resume",
    )
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / ".lock").exists()
    assert cli("train", "--resume", run_dir, "-q").exit_code == 0
    assert weights(run_dir) == weights(straight)
    assert [row["epoch"] for row in read_metrics(run_dir)] == [1, 2, 3, 4]


def test_a_metrics_append_failing_is_named_and_resume_repairs_the_row(tmp_path, monkeypatch, straight):
    from nncli.training import rundir

    run_dir = tmp_path / "run"
    with monkeypatch.context() as m:
        dumps = json.dumps
        m.setattr(
            rundir.json,
            "dumps",
            lambda obj, **kw: (
                (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
                if isinstance(obj, dict) and obj.get("epoch") == 3 and "format_version" not in obj and not kw
                else dumps(obj, **kw)
            ),
        )
        result = cli("train", *SPIRAL, "train.epochs=4", "--out", run_dir, "-q")
    refused(result, f"cannot write {run_dir / 'metrics.jsonl'}", "the checkpoint of epoch 3")
    assert cli("train", "--resume", run_dir, "-q").exit_code == 0
    assert weights(run_dir) == weights(straight)
    assert [row["epoch"] for row in read_metrics(run_dir)] == [1, 2, 3, 4]


def test_atomic_writes_refuse_a_symlink_or_a_special_file_and_leave_it(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("mine")
    (tmp_path / "link").symlink_to(mine)
    with pytest.raises(OutputError, match="is a symbolic link"):
        atomic_write_text(tmp_path / "link", "theirs")
    assert mine.read_text() == "mine" and (tmp_path / "link").is_symlink()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError, match="not a regular file"):
        atomic_write_text(tmp_path / "fifo", "x")
    assert (tmp_path / "fifo").is_fifo()


def test_predict_out_force_never_replaces_a_fifo(two_epochs, tmp_path):
    (tmp_path / "two.csv").write_text("a,b\n0.1,0.2\n")
    os.mkfifo(tmp_path / "fifo")
    refused(cli("predict", two_epochs / "best.npz", tmp_path / "two.csv", "--out", tmp_path / "fifo", "--force"))
    assert (tmp_path / "fifo").is_fifo()


@pytest.mark.parametrize("name", ["metrics.jsonl", "summary.json", "config.yaml", "metrics.csv"])
def test_a_run_directory_file_that_is_a_symlink_is_never_written_through(run_copy, tmp_path, name):
    mine = tmp_path / "mine"
    shutil.copy(run_copy / name, mine)
    before = mine.read_bytes()
    (run_copy / name).unlink()
    (run_copy / name).symlink_to(mine)
    refused(cli("train", "--resume", run_copy, "train.epochs=3", "-q"), "symbolic link")
    assert mine.read_bytes() == before


def test_a_lock_that_is_a_symlink_never_gets_the_pid_written_into_its_target(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    mine = tmp_path / "mine.txt"
    mine.write_text("my notes")
    (run_dir / ".lock").symlink_to(mine)
    refused(cli("train", *SPIRAL, "train.epochs=1", "--out", run_dir), ".lock is a symbolic link")
    assert mine.read_text() == "my notes"


def test_a_released_lock_cannot_have_two_holders(tmp_path, monkeypatch):
    """B opens .lock while A holds it, A lets go, then B's flock succeeds on the file A removed; C then comes: only
    one of B and C may hold the directory."""
    import fcntl

    a = RunLock(tmp_path)
    flock, calls = fcntl.flock, []

    def a_releases_first(fd, op):
        calls.append(fd)
        if len(calls) == 1:
            a.release()
        return flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", a_releases_first)
    b = RunLock(tmp_path)
    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(RunError, match="in use"):
        RunLock(tmp_path)
    b.release()
    RunLock(tmp_path).release()


def test_a_closed_stdout_never_stops_a_run(tmp_path):
    run_dir = tmp_path / "run"
    args = [*SPIRAL, "train.epochs=2", "--out", run_dir]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nncli", "train", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    proc.stdout.close()  # as `| head -0` would: the first line of the setup table meets a closed pipe
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert load_checkpoint(run_dir / "checkpoint.npz").epoch == 2


@pytest.mark.parametrize("how", ["stdout and stderr into one closed pipe", "stdout closed before the start"])
def test_a_run_goes_on_whatever_output_stream_is_closed(tmp_path, how):
    """`nncli train CONFIG 2>&1 | head -3` (progress lines meet the closed pipe too) and `nncli train CONFIG >&-`."""
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "nncli", "train", *map(str, [*SPIRAL, "train.epochs=30", "--out", run_dir])]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if how.startswith("stdout and stderr"):
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for _ in range(3):
            proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(timeout=120) == 0
    else:
        proc = subprocess.run(
            args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=(),
            preexec_fn=lambda: os.close(1),
        )
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert load_checkpoint(run_dir / "checkpoint.npz").epoch == 30


def test_a_run_stopped_before_its_first_checkpoint_starts_again_without_force(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text((ROOT / "configs/spiral-2layer.yaml").read_text())
    (run_dir / "metrics.jsonl").write_text("")  # what a run killed in its first epoch leaves
    (run_dir / "metrics.csv").write_text("epoch,train_loss\r\n")
    refused(cli("train", "--resume", run_dir), "stopped before its first checkpoint", "nncli train CONFIG")
    train_run(run_dir, 1)
    refused(cli("train", *SPIRAL, "train.epochs=1", "--out", run_dir), "already holds a run", "--force")

"""Nothing lost: exact resume, interrupts, kill -9, divergence, one run per directory, models too big to allocate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.training.checkpoint import load_checkpoint
from nncli.training.lock import RunLock
from nncli.training.rundir import read_metrics
from nncli.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
BASE = {
    "data": {"source": "spiral", "samples_per_class": 30},
    "model": {"hidden": [16], "dropout": 0.2},
    "train": {"epochs": 6, "batch_size": 16},
    "optimizer": {"lr": 0.05},
}


def config(**sections):
    raw = json.loads(json.dumps(BASE))
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value) if isinstance(value, dict) else raw.__setitem__(key, value)
    return config_from_dict(raw)


def weights(run_dir):
    ckpt = load_checkpoint(Path(run_dir) / "checkpoint.npz")
    return {k: v.tobytes() for k, v in ckpt.params.items()}, {k: v.tobytes() for k, v in ckpt.optimizer_state.items()}


def metrics(run_dir):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_metrics(run_dir)]


def train_interrupted(cfg, run_dir, stop_after):
    """Train, requesting a stop (as SIGINT would) one step into epoch `stop_after` + 1; then resume to the end."""
    trainer = Trainer(cfg, run_dir)

    def on_epoch(row):
        if row["epoch"] == stop_after:
            trainer.stop_signal = signal.SIGINT

    trainer.on_epoch = on_epoch
    assert trainer.run()["status"] == "interrupted"
    return Trainer(cfg, run_dir, resume=True).run()


@pytest.mark.parametrize(
    "optimizer,schedule",
    [
        ("sgd", {"name": "constant"}),
        ("momentum", {"name": "step", "every": 2, "gamma": 0.5}),
        ("nesterov", {"name": "exponential", "gamma": 0.9}),
        ("rmsprop", {"name": "cosine", "min_lr": 0.001}),
        ("adam", {"name": "cosine"}),
    ],
)
def test_resume_is_bit_identical_for_every_optimizer_and_schedule(tmp_path, optimizer, schedule):
    cfg = config(
        optimizer={"name": optimizer, "lr": 0.01 if optimizer in ("rmsprop", "adam") else 0.05, "schedule": schedule},
        train={"early_stopping": {"patience": 50}},
    )
    straight = Trainer(cfg, tmp_path / "straight").run()
    resumed = train_interrupted(cfg, tmp_path / "resumed", stop_after=2)
    assert weights(tmp_path / "straight") == weights(tmp_path / "resumed")
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "resumed")
    assert len((tmp_path / "resumed" / "metrics.csv").read_text().splitlines()) == 7
    assert straight["best_epoch"] == resumed["best_epoch"] and resumed["status"] == "completed"
    best = [load_checkpoint(tmp_path / run / "best.npz") for run in ("straight", "resumed")]
    assert best[0].epoch == best[1].epoch
    assert all(np.array_equal(best[0].params[k], best[1].params[k]) for k in best[0].params)


def test_early_stopping_state_survives_resume(tmp_path):
    cfg = config(
        train={"epochs": 40, "early_stopping": {"patience": 2, "monitor": "val_accuracy"}}, optimizer={"lr": 0.5}
    )
    straight = Trainer(cfg, tmp_path / "a").run()
    assert straight["status"] == "early_stopped"
    resumed = train_interrupted(cfg, tmp_path / "b", stop_after=straight["epochs_run"] - 1)
    assert resumed["status"] == "early_stopped" and resumed["epochs_run"] == straight["epochs_run"]
    assert weights(tmp_path / "a") == weights(tmp_path / "b")
    longer = config(
        train={"epochs": 60, "early_stopping": {"patience": 2, "monitor": "val_accuracy"}}, optimizer={"lr": 0.5}
    )
    extended = Trainer(longer, tmp_path / "a", resume=True).run()  # more epochs do not undo the early stop: say so
    assert extended["status"] == "early_stopped" and extended["epochs_run"] == straight["epochs_run"]
    assert any("has not improved for" in w and "ends this run again at epoch" in w for w in extended["warnings"])


def test_raising_epochs_extends_a_finished_run_other_changes_need_force(tmp_path):
    run_dir = tmp_path / "r"
    assert (
        runner.invoke(
            app,
            [
                "train",
                str(ROOT / "configs/spiral-2layer.yaml"),
                "train.epochs=3",
                "data.samples_per_class=30",
                "--out",
                str(run_dir),
                "-q",
            ],
        ).exit_code
        == 0
    )
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "optimizer.lr=0.3", "train.epochs=5"])
    assert result.exit_code == 2 and "optimizer.lr" in result.output and "--force" in result.output
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "train.epochs=5", "-q"])
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1, 2, 3, 4, 5]
    straight = tmp_path / "s"
    assert (
        runner.invoke(
            app,
            [
                "train",
                str(ROOT / "configs/spiral-2layer.yaml"),
                "train.epochs=5",
                "data.samples_per_class=30",
                "--out",
                str(straight),
                "-q",
            ],
        ).exit_code
        == 0
    )
    # constant schedule: 3 + 2 epochs equal 5 straight
    assert weights(straight) == weights(run_dir)


def test_resume_without_a_run(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "none")])
    assert result.exit_code == 2 and "nothing to resume" in result.output


def cli_train(args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "nncli", "train", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


LONG = [
    ROOT / "configs/spiral-2layer.yaml",
    "train.epochs=150",
    "train.batch_size=8",
    "data.samples_per_class=80",
    "--quiet",
]


def wait_for_rows(run_dir, n, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if len(read_metrics(run_dir)) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"run did not reach {n} epochs: {proc.poll()}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    proc = cli_train([*LONG, "--out", run_dir])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    return run_dir


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_with_a_checkpoint_and_resume_matches(tmp_path, uninterrupted, signum, code):
    run_dir = tmp_path / "run"
    proc = cli_train([*LONG, "--out", run_dir])
    wait_for_rows(run_dir, 3, proc)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == code
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    load_checkpoint(run_dir / "checkpoint.npz")
    assert not (run_dir / ".lock").exists()
    resumed = cli_train(["--resume", run_dir, "--quiet"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert weights(run_dir) == weights(uninterrupted)
    assert metrics(run_dir) == metrics(uninterrupted)


def test_kill_9_at_random_moments_never_loses_the_run(tmp_path, uninterrupted):
    rng = np.random.default_rng(0)
    run_dir = tmp_path / "run"
    proc = cli_train([*LONG, "--out", run_dir])
    wait_for_rows(run_dir, 1, proc)
    for _ in range(3):
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.wait()
        load_checkpoint(run_dir / "checkpoint.npz")  # the previous checkpoint is always loadable
        proc = cli_train(["--resume", run_dir, "--quiet"])
        time.sleep(0.3)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert weights(run_dir) == weights(uninterrupted)
    assert metrics(run_dir) == metrics(uninterrupted)


def test_divergence_names_the_layer_and_keeps_best(tmp_path):
    run_dir = tmp_path / "r"
    base = [str(ROOT / "configs/spiral-2layer.yaml"), "data.samples_per_class=30", "--out", str(run_dir), "-q"]
    assert runner.invoke(app, ["train", *base[:2], "train.epochs=2", *base[2:]]).exit_code == 0
    best = (run_dir / "best.npz").read_bytes()
    checkpoint = (run_dir / "checkpoint.npz").read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "optimizer.lr=1e30", "train.epochs=4", "--force"])
    assert result.exit_code == 1, result.output
    assert "epoch 3" in result.output and "layer" in result.output and "learning rate" in result.output
    assert (run_dir / "best.npz").read_bytes() == best
    assert (run_dir / "checkpoint.npz").read_bytes() == checkpoint
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"


def test_one_run_per_directory(tmp_path):
    run_dir = tmp_path / "r"
    lock = RunLock(run_dir)
    result = runner.invoke(app, ["train", str(ROOT / "configs/spiral-2layer.yaml"), "--out", str(run_dir)])
    assert result.exit_code == 2 and "in use" in result.output
    lock.release()
    result = runner.invoke(
        app, ["train", str(ROOT / "configs/spiral-2layer.yaml"), "train.epochs=1", "--out", str(run_dir), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert not (run_dir / ".lock").exists()


def test_a_crashed_runs_lock_does_not_block(tmp_path):
    run_dir = tmp_path / "r"
    code = f"from nncli.training.lock import RunLock; RunLock({str(run_dir)!r}); import os; os._exit(9)"
    subprocess.run([sys.executable, "-c", code], check=False)
    assert (run_dir / ".lock").exists()
    RunLock(run_dir).release()


def test_model_too_large_is_refused_before_allocating(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("data: {source: spiral}\nmodel: {hidden: [100000, 100000, 100000]}\n")
    result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "GiB" in result.output and "model.hidden" in result.output


def test_on_epoch_can_end_a_run_with_its_own_status(tmp_path):
    """A sweep's pruner stops a trial through on_epoch; the run is summarized with that status."""
    trainer = Trainer(config(), tmp_path / "run", on_epoch=lambda row: "pruned" if row["epoch"] == 2 else None)
    summary = trainer.run()
    assert summary["status"] == "pruned" and summary["epochs_run"] == 2 and summary["wall_seconds"] > 0
    assert [row["epoch"] for row in read_metrics(tmp_path / "run")] == [1, 2]


def test_a_stop_during_an_epochs_last_step_lets_that_epoch_complete(tmp_path):
    """The epoch's row keeps its diagnostics (measured on the last step) and resume matches an unbroken run."""
    cfg = config()
    full = Trainer(cfg, tmp_path / "full")
    assert full.run()["status"] == "completed"
    trainer = Trainer(cfg, tmp_path / "run")
    step, calls = trainer.optimizer.step, []
    steps = -(-len(trainer.data.train.y) // cfg.train.batch_size)

    def step_then_signal(*args):
        step(*args)
        calls.append(1)
        if len(calls) == 2 * steps:  # the last step of epoch 2
            trainer.stop_signal = signal.SIGINT

    trainer.optimizer.step = step_then_signal
    summary = trainer.run()
    assert summary["status"] == "interrupted" and summary["epochs_run"] == 2
    assert "update_ratio" in read_metrics(tmp_path / "run")[-1]["layers"]["W1"]
    assert Trainer(cfg, tmp_path / "run", resume=True).run()["status"] == "completed"
    assert metrics(tmp_path / "run") == metrics(tmp_path / "full")
    assert weights(tmp_path / "run") == weights(tmp_path / "full")


SPIRAL = [str(ROOT / "configs/spiral-2layer.yaml"), "data.samples_per_class=30", "-q"]


def test_a_moved_or_copied_run_resumes_from_its_new_path(tmp_path):
    import shutil

    run_dir = tmp_path / "r"
    assert runner.invoke(app, ["train", *SPIRAL, "train.epochs=2", "--out", str(run_dir)]).exit_code == 0
    shutil.copytree(run_dir, tmp_path / "copy")
    for path in (tmp_path / "copy", Path(os.path.relpath(run_dir))):  # another directory; another spelling
        result = runner.invoke(app, ["train", "--resume", str(path), "train.epochs=3", "-q"])
        assert result.exit_code == 0, result.output
        assert [r["epoch"] for r in read_metrics(path)] == [1, 2, 3]
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--out", str(tmp_path / "elsewhere")])
    assert result.exit_code == 2 and "resumes in its own directory" in result.output


def test_a_forced_change_of_optimizer_starts_its_state_fresh(tmp_path):
    run_dir = tmp_path / "r"
    assert (
        runner.invoke(app, ["train", *SPIRAL, "train.epochs=2", "optimizer.name=sgd", "--out", str(run_dir)]).exit_code
        == 0
    )
    result = runner.invoke(
        app,
        ["train", "--resume", str(run_dir), "optimizer.name=adam", "optimizer.lr=0.01", "train.epochs=3", "--force"],
    )
    assert result.exit_code == 0, result.output
    assert "optimizer.name changed from sgd to adam" in result.output and "fresh state" in result.output
    assert load_checkpoint(run_dir / "checkpoint.npz").meta["state"]["optimizer"]["t"] > 0


def test_extending_a_cosine_run_says_where_the_longer_curve_resumes(tmp_path):
    run_dir = tmp_path / "r"
    cosine = ["optimizer.lr=0.5", "optimizer.schedule={name: cosine}"]
    assert runner.invoke(app, ["train", *SPIRAL, *cosine, "train.epochs=4", "--out", str(run_dir)]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "train.epochs=8", "-q"])
    assert result.exit_code == 0, result.output
    # epoch 5 of an 8-epoch cosine from 0.5: 0.25; the 4-epoch curve gives 0.5 at its end (epoch index 4 of 4)
    assert "train.epochs changed from 4 to 8" in result.output and "epoch 5 runs at lr 0.25" in result.output
    assert [r["lr"] for r in read_metrics(run_dir)][4] == pytest.approx(0.25)


def test_a_row_cut_short_at_the_end_of_metrics_is_dropped_and_resume_continues(tmp_path):
    run_dir = tmp_path / "r"
    assert runner.invoke(app, ["train", *SPIRAL, "train.epochs=2", "--out", str(run_dir)]).exit_code == 0
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"epoch": 3, "train_lo')  # a crash in the middle of an append
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1, 2]
    assert runner.invoke(app, ["plot", str(run_dir), "--text"]).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "train.epochs=3", "-q"])
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in read_metrics(run_dir)] == [1, 2, 3]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join([lines[0], "{damaged", *lines[1:]]) + "\n")
    result = runner.invoke(app, ["plot", str(run_dir), "--text"])
    assert result.exit_code == 2 and "metrics.jsonl: line 2 is not a JSON metrics row" in result.output


def test_out_that_is_a_file_or_inside_one_is_refused_without_traceback(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for out, why in ((afile, "exists and is not a directory"), (afile / "x", "cannot create")):
        result = runner.invoke(app, ["train", *SPIRAL, "--out", str(out)])
        assert result.exit_code == 2 and why in result.output and "Traceback" not in result.output
    assert afile.read_text() == "mine"


def test_scores_that_overflow_on_validation_data_end_the_run_as_diverged(tmp_path):
    # full batch, lr 1e38: epoch 1's one update leaves finite weights whose scores overflow to inf − inf
    run_dir = tmp_path / "r"
    result = runner.invoke(
        app, ["train", *SPIRAL, "optimizer.lr=1e38", "train.batch_size=full", "train.epochs=3", "--out", str(run_dir)]
    )
    assert result.exit_code == 1 and "validation loss became nan after epoch 1" in result.output
    assert not (run_dir / "best.npz").exists() and not (run_dir / "checkpoint.npz").exists()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"


def test_weights_made_non_finite_by_an_epochs_last_update_end_the_run_as_diverged(tmp_path):
    trainer = Trainer(config(data={"val_fraction": 0.0}, train={"batch_size": "full", "epochs": 3}), tmp_path / "r")
    step = trainer.optimizer.step

    def overflowing_step(w, dw, lr):
        step(w, dw, lr)
        w[0] = np.inf  # as an update past float32's range would leave it

    trainer.optimizer.step = overflowing_step
    summary = trainer.run()
    assert summary["status"] == "diverged" and "non-finite in the last update of epoch 1" in summary["error"]
    assert not (tmp_path / "r" / "checkpoint.npz").exists() and not (tmp_path / "r" / "best.npz").exists()


def test_eval_of_a_checkpoint_written_inside_an_epoch_says_so(tmp_path):
    cfg = config(train={"epochs": 3})
    trainer = Trainer(cfg, tmp_path / "r")
    trainer.on_epoch = lambda row: setattr(trainer, "stop_signal", signal.SIGINT) if row["epoch"] == 2 else None
    assert trainer.run()["status"] == "interrupted"
    result = runner.invoke(app, ["eval", str(tmp_path / "r" / "checkpoint.npz"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["position"] == "epoch 2 + 1 step of epoch 3"
    assert load_checkpoint(tmp_path / "r" / "best.npz").position.startswith("epoch ")  # a whole epoch: no steps
    assert "+" not in load_checkpoint(tmp_path / "r" / "best.npz").position


def test_a_validation_monitor_without_validation_data_says_what_it_follows_instead(tmp_path):
    cfg = config(
        data={"val_fraction": 0.0}, train={"epochs": 2, "early_stopping": {"monitor": "val_accuracy", "patience": 1}}
    )
    summary = Trainer(cfg, tmp_path / "r").run()
    assert summary["monitor"] == "train_accuracy"
    assert any(
        "val_accuracy needs a validation split" in w and "follow train_accuracy" in w for w in summary["warnings"]
    )


def test_a_checkpoint_keeps_the_training_state_every_nncli_since_exact_resume_wrote(tmp_path):
    """The format number did not change, so meta["state"] holds the same keys: old checkpoints resume, new ones load."""
    trainer = Trainer(config(train={"diagnostics": True}), tmp_path / "r")
    trainer.on_epoch = lambda row: setattr(trainer, "stop_signal", signal.SIGINT) if row["epoch"] == 1 else None
    assert trainer.run()["status"] == "interrupted"
    state = load_checkpoint(tmp_path / "r" / "checkpoint.npz").meta["state"]
    loop = ["epochs_done", "step", "partial", "best_value", "best_row", "stale", "wall_seconds", "epoch_rng"]
    assert list(state) == [*loop, "optimizer", "net_rng", "warnings", "diagnostics"]
    assert state["epochs_done"] == 1 and state["step"] == 1 and isinstance(state["partial"], list)
    assert set(state["epoch_rng"]) >= {"bit_generator", "state"} and set(state["optimizer"]) == {"t"}


def test_library_errors_say_what_to_do_as_hints_not_command_line_flags(tmp_path):
    from nncli.errors import ConfigError, Hint, RunError
    from nncli.training.resume import resolve_run

    Trainer(config(train={"epochs": 1}), tmp_path / "r").run()
    with pytest.raises(ConfigError, match="already holds a run") as e:
        Trainer(config(), tmp_path / "r")
    assert e.value.hints == (Hint.REPLACE, Hint.ELSEWHERE) and "--" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        Trainer(config(optimizer={"lr": 0.3}, model={"hidden": [16], "dropout": 0.1}), tmp_path / "r", resume=True)
    assert "optimizer.lr: differs" in str(e.value) and "model.dropout: differs" in str(e.value)
    assert e.value.hints == (Hint.ACCEPT_CHANGES,) and "--" not in str(e.value)
    with pytest.raises(RunError, match="nothing to resume") as e:
        resolve_run(resume=tmp_path / "none")
    assert e.value.hints == (Hint.START_FRESH,) and "nncli train" not in str(e.value)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "seeds.json").write_text("{}")
    with pytest.raises(RunError, match="is a seed study") as e:
        resolve_run(resume=tmp_path / "study")
    assert e.value.hints == (Hint.SEEDS,) and "--" not in str(e.value)
    cfg, overrides, run_dir = resolve_run("train.epochs=3", ["optimizer.lr=0.01"], resume=tmp_path / "r")
    assert overrides == ["train.epochs=3", "optimizer.lr=0.01"] and run_dir == tmp_path / "r"
    assert cfg.train.epochs == 3 and cfg.optimizer.lr == 0.01

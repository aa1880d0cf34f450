"""Nothing lost with a norm either: resume is bit-identical for each norm and each optimizer (the running averages of
batch norm included), a final training batch of one row trains without NaN, validation and best.npz use the running
averages, and a resume that would change model.norm is refused with nothing overwritten."""

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.training.checkpoint import load_checkpoint
from nncli.training.rundir import read_metrics
from nncli.training.trainer import Trainer
from tests.test_resume import metrics, train_interrupted

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adam"]


def norm_config(norm, optimizer="momentum", epochs=3, **train):
    """A tiny spiral run with `norm`: 57 training rows in batches of 8, so each epoch ends on a batch of one row."""
    lr = 0.01 if optimizer in ("rmsprop", "adam") else 0.1
    return config_from_dict(
        {
            "data": {"source": "spiral", "samples_per_class": 24, "val_fraction": 0.2},
            "model": {"hidden": [12, 8], "dropout": 0.1, "norm": norm, "norm_momentum": 0.8},
            "train": {"epochs": epochs, "batch_size": 8, "early_stopping": {"patience": 50}, **train},
            "optimizer": {"name": optimizer, "lr": lr},
        }
    )


def everything(run_dir, name="checkpoint.npz"):
    """Every array of a run's checkpoint as bytes: parameters, batch norm's running averages, optimizer state."""
    ckpt = load_checkpoint(Path(run_dir) / name)
    arrays = {**ckpt.params, **ckpt.running, **{f"opt_{k}": v for k, v in ckpt.optimizer_state.items()}}
    return {k: v.tobytes() for k, v in arrays.items()}


def train_stopped_at_boundary(cfg, run_dir, stop_after):
    """Train, a stop arriving during the last step of epoch `stop_after` (the epoch completes, then the run stops
    with that epoch's checkpoint); then resume to the end."""
    trainer = Trainer(cfg, run_dir)
    steps_per_epoch = -(-len(trainer.data.train.y) // cfg.train.batch_size)
    step, taken = trainer.optimizer.step, []

    def counting_step(*args):
        taken.append(1)
        if len(taken) == stop_after * steps_per_epoch:
            trainer.stop_signal = signal.SIGINT
        return step(*args)

    trainer.optimizer.step = counting_step
    summary = trainer.run()
    assert summary["status"] == "interrupted" and summary["epochs_run"] == stop_after
    assert load_checkpoint(Path(run_dir) / "checkpoint.npz").meta["state"]["step"] == 0
    return Trainer(cfg, run_dir, resume=True).run()


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
    """The uninterrupted run of each (norm, optimizer), trained once for the whole module."""
    root, runs = tmp_path_factory.mktemp("straight"), {}

    def get(norm, optimizer):
        if (norm, optimizer) not in runs:
            run_dir = root / f"{norm}-{optimizer}"
            trainer = Trainer(norm_config(norm, optimizer), run_dir)
            assert len(trainer.data.train.y) % trainer.config.train.batch_size == 1  # a last batch of one row
            summary = trainer.run()
            assert summary["status"] == "completed"
            runs[norm, optimizer] = run_dir
        return runs[norm, optimizer]

    return get


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("where", ["mid-epoch", "epoch boundary"])
def test_resume_is_bit_identical_with_each_norm_and_optimizer(tmp_path, straight_runs, norm, optimizer, where):
    straight, run_dir = straight_runs(norm, optimizer), tmp_path / "resumed"
    cfg = norm_config(norm, optimizer)
    if where == "mid-epoch":
        resumed = train_interrupted(cfg, run_dir, stop_after=1)
    else:
        resumed = train_stopped_at_boundary(cfg, run_dir, stop_after=2)
    assert resumed["status"] == "completed"
    want = everything(straight)
    assert any(k.startswith("running_var") for k in want) == (norm == "batchnorm")
    assert everything(run_dir) == want
    assert everything(run_dir, "best.npz") == everything(straight, "best.npz")
    assert metrics(run_dir) == metrics(straight)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_a_last_training_batch_of_one_row_trains_without_nan(tmp_path, straight_runs, norm):
    """57 training rows in batches of 8: each epoch's last step sees one row; the loss and weights stay finite, and
    batch norm's running averages moved (from the 8-row batches) and are finite and positive."""
    run_dir = straight_runs(norm, "momentum")
    rows = read_metrics(run_dir)
    assert len(rows) == 3 and all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in rows)
    ckpt = load_checkpoint(run_dir / "checkpoint.npz")
    assert all(np.isfinite(p).all() for p in ckpt.params.values())
    if norm == "batchnorm":
        assert (ckpt.running["running_var1"] > 0).all() and not np.all(ckpt.running["running_mean1"] == 0)


def test_validation_and_best_npz_use_the_running_averages(tmp_path, straight_runs):
    """`nncli eval` of best.npz on the validation split reproduces the metrics the run recorded for that epoch, which
    only holds if validation normalized with the running averages stored with it."""
    run_dir = straight_runs("batchnorm", "momentum")
    best = load_checkpoint(run_dir / "best.npz")
    result = runner.invoke(app, ["eval", str(run_dir / "best.npz"), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["accuracy"] == pytest.approx(best.meta["metrics"]["val_accuracy"], abs=1e-12)
    assert report["loss"] == pytest.approx(best.meta["metrics"]["val_loss"], rel=1e-5)


@pytest.mark.parametrize("old,new", [("batchnorm", "layernorm"), ("layernorm", "batchnorm"), ("batchnorm", "none")])
@pytest.mark.parametrize("force", [False, True])
def test_resume_with_another_norm_is_refused_and_overwrites_nothing(tmp_path, old, new, force):
    run_dir = tmp_path / "r"
    assert Trainer(norm_config(old, epochs=2), run_dir).run()["status"] == "completed"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    args = ["train", "--resume", str(run_dir), f"model.norm={new}", "train.epochs=3", *(["--force"] if force else [])]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "model.norm" in result.output and "Traceback" not in result.output
    assert f"trained with {old}, this config says {new}" in result.output
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_predict_of_a_single_row_csv_gives_that_rows_prediction_in_a_larger_file(tmp_path, straight_runs, norm):
    best = straight_runs(norm, "momentum") / "best.npz"
    rows = ["0.3,-0.2", "-1.1,0.4", "0.05,0.9"]
    (tmp_path / "three.csv").write_text("x0,x1\n" + "\n".join(rows) + "\n")
    (tmp_path / "one.csv").write_text(f"x0,x1\n{rows[1]}\n")
    outputs = [runner.invoke(app, ["predict", str(best), str(tmp_path / f)]) for f in ("three.csv", "one.csv")]
    assert all(r.exit_code == 0 for r in outputs), [r.output for r in outputs]
    three, one = (r.output.strip().splitlines() for r in outputs)
    assert one[0] == three[0] and one[0].startswith("predicted,p_")
    assert len(one) == 2 and one[1] == three[2]

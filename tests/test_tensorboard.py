"""TensorBoard logs, read back with TensorBoard's own reader: every scalar at every step exactly once (after a resume
too), histograms of every parameter and gradient, the config as text, hyperparameters of seed studies and sweeps."""

import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.training import snapshot as snapshot_module
from nncli.training.rundir import read_metrics
from nncli.training.tensorboard import log_hparams
from nncli.training.trainer import Trainer
from tests.test_resume import train_interrupted

pytest.importorskip("tensorboardX")
event_file_loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
tensor_util = pytest.importorskip("tensorboard.util.tensor_util")

runner = CliRunner()
BASE = {
    "data": {"source": "spiral", "samples_per_class": 30},
    "model": {"hidden": [16, 8], "norm": "batchnorm", "dropout": 0.1},
    "train": {"epochs": 6, "batch_size": 16},
    "optimizer": {"lr": 0.05},
    "output": {"tensorboard": True},
}
PARAMS = ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"]


def config(**sections):
    raw = json.loads(json.dumps(BASE))
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value) if isinstance(value, dict) else raw.__setitem__(key, value)
    return config_from_dict(raw)


def events(run_dir):
    """Every (tag, step) → [values] in RUN_DIR/tensorboard/, as TensorBoard's loader reads its files (each value a
    tensor with its plugin's name: scalars, histograms, text, hparams)."""
    found = collections.defaultdict(list)
    for path in sorted((Path(run_dir) / "tensorboard").iterdir()):
        for event in event_file_loader.EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                found[value.tag, event.step].append(value)
    return found


def accumulator(run_dir):
    acc = event_accumulator.EventAccumulator(
        str(Path(run_dir) / "tensorboard"),
        size_guidance={"scalars": 0, "histograms": 0, "tensors": 0},
        purge_orphaned_data=False,  # a duplicate step must show, not be purged away
    )
    acc.Reload()
    return acc


def expected_scalars(run_dir):
    """(tag, step) → value of every scalar metrics.jsonl holds: the row's metrics, lr, seconds and diagnostics."""
    expected = {}
    for row in read_metrics(run_dir):
        for key, value in row.items():
            if key not in ("epoch", "layers"):
                expected[key, row["epoch"]] = value
        for layer, entry in row.get("layers", {}).items():
            expected.update({(f"layers/{layer}/{k}", row["epoch"]): v for k, v in entry.items() if v is not None})
    return expected


def kind(value):
    return value.metadata.plugin_data.plugin_name


def number(value):
    return float(tensor_util.make_ndarray(value.tensor))


def assert_every_scalar_once(run_dir, skip=("seconds",)):
    """Each scalar of each epoch in metrics.jsonl is in the event files exactly once, with its value."""
    found, expected = events(run_dir), expected_scalars(run_dir)
    assert expected
    for (tag, step), value in expected.items():
        assert len(found[tag, step]) == 1, (tag, step, len(found[tag, step]))
        if tag not in skip:
            assert number(found[tag, step][0]) == pytest.approx(value, rel=1e-6), (tag, step)
    scalar_steps = {step for (tag, step), values in found.items() if kind(values[0]) == "scalars"}
    assert scalar_steps == {row["epoch"] for row in read_metrics(run_dir)}
    return found


def test_every_metric_diagnostic_histogram_and_the_config_are_logged(tmp_path):
    run_dir = tmp_path / "run"
    Trainer(config(), run_dir).run()
    found = assert_every_scalar_once(run_dir)
    assert {("lr", s) for s in range(1, 7)} <= set(found) and ("layers/W1/update_ratio", 6) in found
    acc = accumulator(run_dir)
    for name in PARAMS:
        for kind in ("weights", "gradients"):
            histograms = acc.Histograms(f"{kind}/{name}")
            assert [h.step for h in histograms] == list(range(1, 7)), (kind, name)
    last = acc.Histograms("weights/W2")[-1].histogram_value
    from nncli.training.checkpoint import load_checkpoint

    w2 = load_checkpoint(run_dir / "checkpoint.npz").params["W2"]
    assert last.num == w2.size and last.min == pytest.approx(w2.min()) and last.max == pytest.approx(w2.max())
    assert last.sum == pytest.approx(w2.sum(), abs=1e-6)
    assert sum(last.bucket) == w2.size
    texts = acc.Tensors("config/text_summary")
    assert [t.step for t in texts] == [0]
    shown = texts[0].tensor_proto.string_val[0].decode()
    written = [line for line in (run_dir / "config.yaml").read_text().splitlines() if not line.startswith("#")]
    assert [line.removeprefix("    ") for line in shown.splitlines()] == written  # the resolved config, as YAML
    assert "norm: batchnorm" in shown and "tensorboard: true" in shown


def test_resume_after_a_stop_mid_epoch_has_every_step_once_and_equals_a_straight_run(tmp_path):
    cfg = config()
    Trainer(cfg, tmp_path / "straight").run()
    train_interrupted(cfg, tmp_path / "resumed", stop_after=3)
    found = assert_every_scalar_once(tmp_path / "resumed")
    straight = events(tmp_path / "straight")
    assert {k for k in found if k[0] != "seconds"} == {k for k in straight if k[0] != "seconds"}
    for (tag, step), values in straight.items():
        if kind(values[0]) == "histograms":
            assert found[tag, step][0].tensor == values[0].tensor, (tag, step)  # bit-identical resume, same histograms
    assert len(accumulator(tmp_path / "resumed").Tensors("config/text_summary")) == 1


class Killed(BaseException):
    """Stands for kill -9 at one moment of the run: nothing after it runs."""


def test_killed_between_the_event_and_the_checkpoint_the_epoch_is_logged_once(tmp_path, monkeypatch):
    run_dir, save = tmp_path / "run", snapshot_module.save_checkpoint

    def dies_at_epoch_4(path, params, meta, **kwargs):
        if path.name == "checkpoint.npz" and meta["epoch"] == 4:
            raise Killed  # epoch 4's event is written, its checkpoint is not
        return save(path, params, meta, **kwargs)

    monkeypatch.setattr(snapshot_module, "save_checkpoint", dies_at_epoch_4)
    with pytest.raises(Killed):
        Trainer(config(), run_dir).run()
    assert ("train_loss", 4) in events(run_dir) and len(read_metrics(run_dir)) == 3
    monkeypatch.setattr(snapshot_module, "save_checkpoint", save)
    assert Trainer(config(), run_dir, resume=True).run()["status"] == "completed"
    found = assert_every_scalar_once(run_dir)
    assert all(len(found[f"weights/{name}", step]) == 1 for name in PARAMS for step in range(1, 7))


@pytest.mark.skipif(not os.environ.get("NNCLI_SLOW_TESTS"), reason="two training processes: NNCLI_SLOW_TESTS=1")
def test_killed_by_sigkill_and_resumed_logs_every_step_once(tmp_path):
    import subprocess

    run_dir = tmp_path / "run"
    (tmp_path / "c.yaml").write_text(json.dumps(dict(BASE, train={"epochs": 300, "batch_size": 16})))
    cmd = [sys.executable, "-m", "nncli", "train", str(tmp_path / "c.yaml"), "--out", str(run_dir), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while len(read_metrics(run_dir)) < 3 and proc.poll() is None:
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    resumed = subprocess.run([*cmd[:4], "--resume", str(run_dir), "train.epochs=20", "-q"], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_metrics(run_dir)) == 20
    assert_every_scalar_once(run_dir)


def test_scalars_of_epochs_whose_events_are_gone_come_from_metrics_jsonl(tmp_path):
    cfg, run_dir = config(), tmp_path / "run"
    trainer = Trainer(cfg, run_dir)
    trainer.on_epoch = lambda row: "stopped" if row["epoch"] == 3 else None
    trainer.run()
    for path in (run_dir / "tensorboard").iterdir():
        path.unlink()
    Trainer(config(train={"epochs": 6}), run_dir, resume=True).run()
    found = assert_every_scalar_once(run_dir)
    assert ("weights/W1", 3) not in found and ("weights/W1", 4) in found  # what was lost stays honest


def test_a_replaced_run_starts_a_fresh_log(tmp_path):
    run_dir = tmp_path / "run"
    Trainer(config(), run_dir).run()
    log_hparams(run_dir, {"seed": 0}, {"status": "completed", "final": read_metrics(run_dir)[-1]})
    Trainer(config(train={"epochs": 2}), run_dir, force=True).run()
    assert_every_scalar_once(run_dir)
    assert max(step for _, step in events(run_dir)) == 2
    assert [p.name for p in (run_dir / "tensorboard").iterdir()] == ["events.out.tfevents.0-run.nncli"]


def test_a_resume_that_changes_the_config_logs_the_new_config_where_it_starts(tmp_path):
    run_dir = tmp_path / "run"
    Trainer(config(train={"epochs": 3}), run_dir).run()
    Trainer(config(train={"epochs": 5}), run_dir, resume=True).run()
    texts = accumulator(run_dir).Tensors("config/text_summary")
    assert [t.step for t in texts] == [0, 3]
    assert "epochs: 5" in texts[1].tensor_proto.string_val[0].decode()
    assert_every_scalar_once(run_dir)


def hparams_of(run_dir):
    """The hyperparameters, the metric names and the session status the HParams plugin reads for a run."""
    acc = accumulator(run_dir)
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    values = {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
        for k, v in start.session_start_info.hparams.items()
    }
    metrics = [m.name.tag for m in experiment.experiment.metric_infos]
    return values, metrics, end.session_end_info.status, acc


def test_a_seed_study_logs_each_seed_as_an_hparams_session(tmp_path):
    result = runner.invoke(
        app, ["train", "--seeds", "0-1", "-q", "--out", str(tmp_path / "study"), str(config_file(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        run_dir = tmp_path / "study" / f"seed-{seed}"
        values, metrics, status, acc = hparams_of(run_dir)
        assert values == {"seed": seed}
        assert {"train_loss", "val_accuracy", "lr"} <= set(metrics)
        assert all(m in acc.Tags()["scalars"] for m in metrics)  # the plugin reads each final value from its scalars
        assert status == 1  # STATUS_SUCCESS
        assert_every_scalar_once(run_dir)


def config_file(tmp_path, **sections):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(dict(BASE, train={"epochs": 3, "batch_size": 16}, **sections)))
    return path


def test_a_sweep_trial_logs_its_swept_keys_and_seed(tmp_path):
    from nncli.studies.trial import run_trial

    params = {"optimizer.lr": 0.1, "model.hidden": [8, 4]}
    raw = dict(BASE, train={"epochs": 3, "batch_size": 16}, model={"hidden": [8, 4]}, optimizer={"lr": 0.1})
    task = {
        "number": 0,
        "params": params,
        "seeds": [3],
        "metric": "val_accuracy",
        "maximize": True,
        "config": raw,
        "trial_dir": str(tmp_path / "trial-0000"),
        "parent_pid": None,
        "prune": None,
    }
    assert run_trial(task)["state"] == "complete"
    values, metrics, status, _ = hparams_of(tmp_path / "trial-0000" / "seed-3")
    assert values == {"optimizer.lr": 0.1, "model.hidden": "[8, 4]", "seed": 3}
    assert "val_accuracy" in metrics and status == 1


def test_without_tensorboardx_the_run_names_the_extra(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "tensorboardX" or m.startswith("tensorboardX.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    result = runner.invoke(app, ["train", str(config_file(tmp_path)), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2, result.output
    assert "pip install 'nncli[tensorboard]'" in result.output and "output.tensorboard" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_output_tensorboard_must_be_true_or_false(tmp_path):
    result = runner.invoke(app, ["train", str(config_file(tmp_path)), "output.tensorboard=maybe", "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "output.tensorboard: expected true or false, got 'maybe'" in result.output


def test_a_tensorboard_path_that_is_a_link_is_never_written_through(tmp_path):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir.mkdir()
    (run_dir / "tensorboard").symlink_to(elsewhere)
    result = runner.invoke(app, ["train", str(config_file(tmp_path)), "--out", str(run_dir), "-q"])
    assert result.exit_code == 2 and f"{run_dir / 'tensorboard'}" in result.output and "symbolic link" in result.output
    assert list(elsewhere.iterdir()) == []


def test_a_damaged_event_file_is_cut_at_the_damage_and_refilled_from_the_metrics(tmp_path):
    run_dir = tmp_path / "run"
    trainer = Trainer(config(), run_dir)
    trainer.on_epoch = lambda row: "stopped" if row["epoch"] == 4 else None
    trainer.run()
    path = run_dir / "tensorboard" / "events.out.tfevents.0-run.nncli"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = np.full(16, 255, np.uint8).tobytes()  # a torn page mid-file
    path.write_bytes(bytes(data))
    Trainer(config(), run_dir, resume=True).run()
    assert_every_scalar_once(run_dir)


def test_tensorboard_switched_on_at_a_resume_needs_no_force_and_logs_every_epoch(tmp_path):
    """output.tensorboard changes what is written beside the run, not the training: a resume may turn it on (or
    off) like train.epochs, and the epochs before it get their scalars from metrics.jsonl."""
    run_dir = tmp_path / "run"
    Trainer(config(train={"epochs": 3}, output={"tensorboard": False}), run_dir).run()
    assert not (run_dir / "tensorboard").exists()
    assert Trainer(config(train={"epochs": 5}), run_dir, resume=True).run()["status"] == "completed"
    found = assert_every_scalar_once(run_dir)
    assert ("weights/W1", 3) not in found and ("weights/W1", 4) in found

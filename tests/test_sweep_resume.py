"""A sweep interrupted, killed, resumed or retried ends with the trials of the sweep run in one go (issue 15, #10)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("optuna")

from nncli.cli import app
from nncli.studies.sweep import run_sweep
from nncli.studies.sweep_file import load_sweep

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "data": {"source": "spiral", "samples_per_class": 20, "val_fraction": 0.25},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 5, "batch_size": 16, "diagnostics": False},
}
PRUNE = {"median": {"startup_trials": 1, "warmup_epochs": 1}}
runner = CliRunner()


def write_sweep(tmp_path, name, **keys):
    spec = {
        "base": BASE,
        "method": "tpe",
        "trials": 6,
        "seeds": [0],
        "space": {"optimizer.lr": {"log_uniform": [1e-6, 1e-1]}},
        "prune": PRUNE,
        "sampler_seed": 3,
        "output": str(tmp_path / name),
    }
    spec.update(keys)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def read_trials(out):
    with open(Path(out) / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def outcome(out):
    """What must not depend on interruptions: every trial's params, state, value and epochs (re-runs stand in for
    the trials they replace, so numbers may differ)."""
    rows = [t for t in read_trials(out) if not t["error"].startswith("interrupted")]
    return sorted((t["optimizer.lr"], t["state"], t["mean"], t["std"], t["epochs"]) for t in rows)


def stop_after(told):
    """on_trial that stops the sweep (as Ctrl-C does) once `told` trials are told in this run."""
    seen = []

    def on_trial(row):
        seen.append(row)
        if len(seen) == told:
            raise KeyboardInterrupt

    return on_trial


@pytest.fixture
def slow_start(monkeypatch):
    """Trials that take a moment to start, so that a stop always finds one running (tiny trials finish at once)."""
    import nncli.studies.sweep as engine

    real = engine.run_trial

    def slow(task):
        time.sleep(0.3)
        return real(task)

    monkeypatch.setattr(engine, "run_trial", slow)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    spec = load_sweep(write_sweep(tmp, "ref"))
    run_sweep(spec, workers=1)
    trials = outcome(spec.output)
    assert {t[1] for t in trials} == {"complete", "pruned"}, trials  # pruning is really exercised
    return trials


def test_a_sweep_stopped_at_several_points_and_resumed_ends_as_the_uninterrupted_one(tmp_path, reference, slow_start):
    spec = load_sweep(write_sweep(tmp_path, "cut"))
    for told in (1, 2, 1):
        with pytest.raises(KeyboardInterrupt):
            run_sweep(spec, workers=1, on_trial=stop_after(told))
    run_sweep(spec, workers=1)
    assert sum(t["error"].startswith("interrupted") for t in read_trials(spec.output)) == 3, "each stop cut one short"
    assert outcome(spec.output) == reference


def test_a_killed_coordinator_resumes_to_the_uninterrupted_trials(tmp_path, reference):
    path = write_sweep(tmp_path, "kill")
    out = tmp_path / "kill"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for at in (2, 4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "nncli", "sweep", str(path), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ((out / "trials.csv").exists() and len(outcome(out)) >= at):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    result = runner.invoke(app, ["sweep", str(path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert outcome(out) == reference


def test_a_damaged_result_json_is_named_and_its_trial_trained_again(tmp_path, reference, slow_start):
    spec = load_sweep(write_sweep(tmp_path, "dmg"))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, workers=1, on_trial=stop_after(2))
    told = read_trials(spec.output)
    assert [t["number"] for t in told] == ["0", "1"]  # and trial 2 was left running
    left = Path(spec.output) / "trial-0002"
    left.mkdir(exist_ok=True)
    (left / "result.json").write_text('{"number": 2, "state": "comp')  # cut short, as by a full disk
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, "dmg")), "--workers", "1"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    damaged = [t for t in read_trials(spec.output) if "result.json" in t["error"]]
    assert damaged and "trial-0002/result.json: line 1: not JSON" in damaged[0]["error"]
    assert "re-queued" in damaged[0]["error"]
    assert outcome(spec.output) == reference


@pytest.mark.parametrize("damage", ["42", "[1, 2]", "null", '{"number": 2, "state": "complete", "mean": "high"}'])
def test_a_result_json_that_is_json_but_not_a_result_is_refused(tmp_path, damage):
    from nncli.studies.trial import DamagedResult, read_result

    (tmp_path / "result.json").write_text(damage)
    with pytest.raises(DamagedResult, match="result.json: "):
        read_result(tmp_path / "result.json", 2)


def test_a_lost_dask_worker_retries_its_trial_with_the_task_it_was_first_given(tmp_path, monkeypatch):
    """With allowed-failures 0 a killed worker loses its trial at once; the retry must not be pruned against the
    trials that completed meanwhile (the uninterrupted sweep never saw them)."""
    distributed = pytest.importorskip("distributed")
    import dask

    import nncli.studies.sweep as engine

    grid = dict(
        method="grid",
        trials=None,
        sampler_seed=5,
        metric="val_loss",
        space={"optimizer.lr": [0.05, 0.03, 1e-7, 0.02, 0.04]},
    )
    local = load_sweep(write_sweep(tmp_path, "local", **grid))
    run_sweep(local, workers=2)
    reference = outcome(local.output)
    tiny = next(t for t in read_trials(local.output) if float(t["optimizer.lr"]) < 1e-6)
    assert int(tiny["number"]) >= 2 and tiny["state"] == "complete"  # handed out before anything was told

    real, marker = engine.run_trial, str(tmp_path / "killed")

    def dies_once(task):  # pickled by value into the worker, which it kills the first time
        if task["params"]["optimizer.lr"] < 1e-6 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(task)

    monkeypatch.setattr(engine, "run_trial", dies_once)
    cluster_options = dict(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(**cluster_options) as cluster,
    ):
        remote = load_sweep(write_sweep(tmp_path, "dask", **grid))
        run_sweep(remote, scheduler=cluster.scheduler_address)
    assert os.path.exists(marker), "the worker was killed"
    assert outcome(remote.output) == reference
    assert json.loads((Path(remote.output) / f"trial-{int(tiny['number']):04d}" / "result.json").read_text())


def test_a_sweep_begun_by_an_earlier_nncli_resumes_without_repeating_or_losing_a_trial(tmp_path):
    """Its trials have no slot: one told, one left running with all its params; the resume numbers them once."""
    import optuna

    spec = load_sweep(write_sweep(tmp_path, "old", method="random", trials=3, prune="none"))
    Path(spec.output).mkdir()
    study = optuna.create_study(
        study_name=spec.stem, storage=f"sqlite:///{Path(spec.output) / 'study.db'}", direction="maximize"
    )
    lr = {"optimizer.lr": spec.space[0].distribution()}
    done = study.ask(lr)
    done.set_user_attr("result", {"mean": 0.5, "std": None, "epochs": 5, "values": [0.5], "error": None})
    study.tell(done, 0.5)
    study.ask(lr)  # left running by a killed coordinator of the earlier version
    run_sweep(spec, workers=1)
    trials = read_trials(spec.output)
    assert [t["state"] for t in trials] == ["complete", "failed", "complete", "complete"]
    assert "re-queued" in trials[1]["error"] and trials[2]["optimizer.lr"] == trials[1]["optimizer.lr"]
    assert len({t["optimizer.lr"] for t in trials}) == 3
    assert runner.invoke(app, ["sweep", str(spec.path)]).exit_code == 0 and read_trials(spec.output) == trials


def test_a_stop_between_proposing_a_trial_and_handing_it_out_resumes_to_the_uninterrupted_trials(
    tmp_path, reference, slow_start, monkeypatch
):
    """Ctrl-C after a new slot's trial was enqueued in study.db but before it was handed out: on resume that trial
    and the re-run of the one cut short wait side by side, and must be handed out and told in slot order (seen in
    review: later slots were proposed without the re-run's result)."""
    import optuna

    spec = load_sweep(write_sweep(tmp_path, "ask"))
    real_ask, asked = optuna.study.Study.ask, []

    def ask(self, *args, **kwargs):
        asked.append(1)
        if len(asked) == 4:  # slot 3 is enqueued, slot 2 is running
            raise KeyboardInterrupt
        return real_ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "ask", ask)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, workers=1)
    monkeypatch.setattr(optuna.study.Study, "ask", real_ask)
    run_sweep(spec, workers=1)
    assert outcome(spec.output) == reference

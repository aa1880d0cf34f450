"""Sweeps as a user relies on them: the samplers' params, pruning, resume after a kill, failed trials, Dask."""

import csv
import itertools
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
from nncli.config import load_config
from nncli.studies.sweep import run_sweep
from nncli.studies.sweep_file import load_sweep
from nncli.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "data": {"source": "spiral", "samples_per_class": 30, "val_fraction": 0.25},
    "model": {"hidden": [16]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 4, "batch_size": 32, "diagnostics": False},
}
runner = CliRunner()


def write_sweep(tmp_path, name="s", **keys):
    spec = {
        "base": BASE,
        "method": "random",
        "trials": 4,
        "seeds": [0],
        "space": {"optimizer.lr": {"log_uniform": [1e-3, 1e-1]}, "model.activation": ["relu", "tanh"]},
    }
    spec.update(keys)
    spec.setdefault("output", str(tmp_path / "sweeps" / name))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def sweep(path, **kwargs):
    spec = load_sweep(path)
    return spec, run_sweep(spec, workers=kwargs.pop("workers", 2), **kwargs)


def read_trials(out):
    with open(Path(out) / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_grid_covers_every_combination_once_and_best_yaml_trains(tmp_path):
    path = write_sweep(
        tmp_path,
        method="grid",
        trials=None,
        seeds=[0, 1],
        space={"optimizer.lr": [0.003, 0.03], "model.hidden": {"choice": [[8], [16, 8]]}},
    )
    spec, rows = sweep(path)
    trials = read_trials(spec.output)
    assert list(trials[0]) == ["number", "state", "mean", "std", "epochs", "optimizer.lr", "model.hidden", "error"]
    assert [t["number"] for t in trials] == ["0", "1", "2", "3"]
    assert sorted((float(t["optimizer.lr"]), t["model.hidden"]) for t in trials) == sorted(
        itertools.product([0.003, 0.03], ["[8]", "[16, 8]"])
    )
    assert all(t["state"] == "complete" and t["epochs"] == "4" for t in trials)
    for t in trials:
        for seed in (0, 1):
            assert (Path(spec.output) / f"trial-{int(t['number']):04d}/seed-{seed}/summary.json").exists()
    best = max(trials, key=lambda t: float(t["mean"]))
    assert rows[0]["number"] == int(best["number"])
    config = load_config(Path(spec.output) / "best.yaml")
    assert (
        config.optimizer.lr == float(best["optimizer.lr"]) and json.dumps(config.model.hidden) == best["model.hidden"]
    )
    summary = train(config, tmp_path / "best-run")
    assert summary["status"] == "completed" and summary["epochs_run"] == 4


@pytest.mark.parametrize("method", ["random", "tpe"])
def test_samplers_are_reproducible_for_a_sampler_seed(tmp_path, method):
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        spec, rows = sweep(
            write_sweep(
                tmp_path,
                name=name,
                method=method,
                trials=4,
                sampler_seed=seed,
                base=dict(BASE, train={"epochs": 2, "batch_size": 32, "diagnostics": False}),
            )
        )
        runs.append(
            sorted((r["number"], r["params"]["optimizer.lr"], r["params"]["model.activation"], r["mean"]) for r in rows)
        )
    assert runs[0] == runs[1]
    assert [r[1] for r in runs[0]] != [r[1] for r in runs[2]]
    assert all(1e-3 <= r[1] <= 1e-1 and r[2] in ("relu", "tanh") for r in runs[0])


def test_median_pruning_stops_a_useless_learning_rate_early(tmp_path):
    path = write_sweep(
        tmp_path,
        method="grid",
        trials=None,
        sampler_seed=1,
        base=dict(BASE, train={"epochs": 6, "batch_size": 32, "diagnostics": False}),
        space={"optimizer.lr": [0.05, 0.04, 0.03, 0.02, 1e-7, 2e-7]},
        prune={"median": {"startup_trials": 1, "warmup_epochs": 1}},
    )
    spec, rows = sweep(path, workers=1)
    useless = [r for r in rows if r["params"]["optimizer.lr"] < 1e-6]
    assert len(useless) == 2 and all(r["state"] == "pruned" and r["epochs"] < 6 for r in useless)
    for r in useless:
        run = Path(spec.output) / f"trial-{r['number']:04d}" / "seed-0"
        assert json.loads((run / "summary.json").read_text())["status"] == "pruned"
        assert len((run / "metrics.jsonl").read_text().splitlines()) == r["epochs"]
    assert rows[0]["state"] == "complete" and rows[0]["epochs"] == 6 and rows[0]["params"]["optimizer.lr"] > 1e-3


def test_a_diverging_trial_is_recorded_failed_and_the_sweep_completes(tmp_path):
    path = write_sweep(
        tmp_path,
        method="grid",
        trials=None,
        base=dict(BASE, optimizer={"name": "sgd", "lr": 0.5}),
        space={"optimizer.lr": [0.5, 1.0e9]},
    )
    spec, rows = sweep(path)
    states = {r["params"]["optimizer.lr"]: r for r in rows}
    assert states[0.5]["state"] == "complete"
    assert states[1.0e9]["state"] == "failed" and "learning rate" in states[1.0e9]["error"]
    failed = [t for t in read_trials(spec.output) if t["state"] == "failed"]
    assert len(failed) == 1 and "loss became" in failed[0]["error"] and failed[0]["mean"] == ""
    assert load_config(Path(spec.output) / "best.yaml").optimizer.lr == 0.5


def test_a_killed_worker_has_its_trial_retried_once(tmp_path, monkeypatch):
    import nncli.studies.sweep as engine

    real, marker = engine.run_trial, tmp_path / "killed-once"

    def dies(task):  # runs in the worker process
        if task["number"] == 2 or (task["number"] == 1 and not marker.exists()):
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(task)

    monkeypatch.setattr(engine, "run_trial", dies)
    spec, rows = sweep(write_sweep(tmp_path, trials=3))
    state = {r["number"]: r for r in rows}
    assert state[0]["state"] == state[1]["state"] == "complete"
    assert state[2]["state"] == "failed" and "died" in state[2]["error"] and "twice" in state[2]["error"]


def test_a_killed_sweep_resumes_without_repeating_finished_trials(tmp_path):
    path = write_sweep(tmp_path, trials=6, base=dict(BASE, train={"epochs": 8, "batch_size": 16, "diagnostics": False}))
    out = tmp_path / "sweeps" / "s"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nncli", "sweep", str(path), "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ((out / "trials.csv").exists() and len(read_trials(out)) >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t["number"]: t for t in read_trials(out)}
    assert 2 <= len(before) < 6, "the sweep must be killed mid-way"
    stamps = {n: (out / f"trial-{int(n):04d}/seed-0/metrics.jsonl").stat().st_mtime_ns for n in before}

    spec, rows = sweep(path, workers=2)
    after = {t["number"]: t for t in read_trials(out)}
    for n, t in before.items():
        assert after[n] == t
        assert (out / f"trial-{int(n):04d}/seed-0/metrics.jsonl").stat().st_mtime_ns == stamps[n]
    requeued = [t for t in after.values() if "re-queued" in t["error"]]
    assert requeued, "the trial running at the kill is re-queued"
    assert sum(not t["error"].startswith("interrupted") for t in after.values()) == 6, after
    for t in requeued:
        assert not (out / f"trial-{int(t['number']):04d}").exists()
        twin = [u for u in after.values() if u["optimizer.lr"] == t["optimizer.lr"] and u is not t]
        assert twin and twin[0]["state"] == "complete", after

    stamps = {
        n: (out / f"trial-{int(n):04d}/seed-0/metrics.jsonl").stat().st_mtime_ns
        for n, t in after.items()
        if t["state"] == "complete"
    }
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 0, result.output
    assert read_trials(out) == list(after.values()) or {t["number"]: t for t in read_trials(out)} == after
    assert all((out / f"trial-{int(n):04d}/seed-0/metrics.jsonl").stat().st_mtime_ns == s for n, s in stamps.items())


def test_a_trial_killed_while_optuna_proposed_it_is_not_requeued(tmp_path):
    """A kill between Optuna's per-parameter writes leaves a running trial with only some params: nothing to re-run."""
    import optuna

    path = write_sweep(tmp_path, trials=2)
    spec = load_sweep(path)
    Path(spec.output).mkdir(parents=True)
    study = optuna.create_study(
        study_name=spec.stem, storage=f"sqlite:///{Path(spec.output) / 'study.db'}", direction="maximize"
    )
    lr = next(p for p in spec.space if p.key == "optimizer.lr")
    study.ask({"optimizer.lr": lr.distribution()})  # model.activation never proposed
    _, rows = sweep(path)
    trials = read_trials(spec.output)
    assert trials[0]["error"] == "interrupted while its params were being proposed; nothing to re-queue"
    assert [t["state"] for t in trials[1:]] == ["complete", "complete"]  # two fresh trials, none a re-run of it
    assert len(rows) == 3 and trials[1]["optimizer.lr"] != trials[0]["optimizer.lr"]


def test_a_changed_sweep_file_is_refused_unless_forced(tmp_path):
    path = write_sweep(tmp_path, trials=1)
    sweep(path)
    write_sweep(
        tmp_path, trials=1, space={"optimizer.lr": {"log_uniform": [1e-4, 1e-1]}, "model.activation": ["relu", "tanh"]}
    )
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2 and "--force" in result.output
    assert "space.optimizer.lr: {'log_uniform': [0.001, 0.1]} in" in result.output and ", now" in result.output
    assert runner.invoke(app, ["sweep", str(path), "--force"]).exit_code == 0


def test_a_dask_cluster_gives_the_same_trials_as_local_workers(tmp_path):
    distributed = pytest.importorskip("distributed")
    _, local = sweep(write_sweep(tmp_path, name="local", trials=4, sampler_seed=7))
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        _, remote = sweep(
            write_sweep(tmp_path, name="dask", trials=4, sampler_seed=7), scheduler=cluster.scheduler_address
        )
    key = lambda r: (r["number"], r["state"], r["params"], r["mean"], r["std"], r["epochs"])  # noqa: E731
    assert sorted(map(key, remote), key=str) == sorted(map(key, local), key=str)
    assert all(r["state"] == "complete" for r in remote)


def test_bad_sweep_files_name_every_problem_and_exit_2(tmp_path):
    path = write_sweep(
        tmp_path,
        method="bayes",
        metric="val_f1",
        colour="red",
        prune="early",
        space={
            "optimizer.lerning_rate": {"log_uniform": [1e-3, 1e-1]},
            "optimizer.lr": {"log_uniform": [0, 1]},
            "model.activation": ["relu", "relux"],
            "model.hidden": {"normal": [1, 2]},
            "model.dropout": {"choise": [0.1, 0.5]},
        },
    )
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    for text in (
        f"invalid sweep file {path}:",
        "colour: unknown key",
        "space.model.dropout: 'choise' is not a distribution",
        "(did you mean 'choice'?)",
        "method: 'bayes' is not one of grid, random, tpe",
        "metric: 'val_f1'",
        "prune: 'early'",
        "space.optimizer.lerning_rate: optimizer.lerning_rate: unknown key (did you mean 'lr'?)",
        "space.optimizer.lr: log_uniform needs low > 0",
        "space.model.activation: model.activation: 'relux'",
        "space.model.hidden: 'normal' is not a distribution",
    ):
        assert text in result.output
    grid = write_sweep(tmp_path, name="g", method="grid", base=dict(BASE, data={"source": "spiral", "val_fraction": 0}))
    result = runner.invoke(app, ["sweep", str(grid)])
    assert result.exit_code == 2
    assert "grid search needs a choice (list of values) for every key; optimizer.lr is a range" in result.output
    assert "metric: val_accuracy needs a validation split" in result.output
    empty = write_sweep(tmp_path, name="e", space={})
    assert "space: is empty; name at least one config key" in runner.invoke(app, ["sweep", str(empty)]).output
    assert not (tmp_path / "sweeps").exists()


def test_a_list_or_mapping_where_a_name_belongs_is_named_not_a_crash(tmp_path):
    path = write_sweep(tmp_path, method={"tpe": 1}, metric=["val_accuracy"])
    result = runner.invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "method: {'tpe': 1} is not one of" in result.output and "metric: ['val_accuracy'] is not" in result.output


@pytest.mark.parametrize(
    "module, extra, args", [("optuna", "sweep", []), ("distributed", "dask", ["--scheduler", "tcp://127.0.0.1:1"])]
)
def test_a_missing_optional_library_names_its_extra(tmp_path, monkeypatch, module, extra, args):
    path = write_sweep(tmp_path, trials=1)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = runner.invoke(app, ["sweep", str(path), *args])
    assert result.exit_code == 2 and f"pip install 'nncli[{extra}]'" in result.output


def test_a_changed_distribution_is_refused_even_with_force_before_anything_is_written(tmp_path):
    path = write_sweep(tmp_path, trials=1)
    spec, _ = sweep(path)
    recorded = (Path(spec.output) / "sweep.yaml").read_text()
    write_sweep(
        tmp_path,
        trials=1,
        space={"optimizer.lr": {"log_uniform": [1e-3, 1e-1]}, "model.activation": ["relu", "tanh", "elu"]},
    )
    result = runner.invoke(app, ["sweep", str(path), "--force"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "space.model.activation:" in result.output and "cannot change once its sweep has started" in result.output
    assert (Path(spec.output) / "sweep.yaml").read_text() == recorded
    write_sweep(tmp_path, trials=1, space={"optimizer.lr": {"uniform": [1e-3, 1e-1]}})  # log scale dropped
    result = runner.invoke(app, ["sweep", str(path), "--force"])
    assert result.exit_code == 2 and "space.optimizer.lr: its distribution" in result.output.replace("\n", " ")
    write_sweep(tmp_path, trials=2, space={"optimizer.lr": {"log_uniform": [1e-3, 1e-1]}})  # activation dropped
    assert runner.invoke(app, ["sweep", str(path), "--force"]).exit_code == 0
    write_sweep(
        tmp_path, trials=2, space={"optimizer.lr": {"log_uniform": [1e-3, 1e-1]}, "model.activation": ["relu", "elu"]}
    )  # back, with other choices
    result = runner.invoke(app, ["sweep", str(path), "--force"])
    assert result.exit_code == 2 and "space.model.activation: its distribution" in result.output.replace("\n", " ")


def test_a_sweep_needs_its_own_directory_and_keys_the_sweep_sets_cannot_be_swept(tmp_path):
    run_dir = tmp_path / "run"
    assert (
        runner.invoke(
            app, ["train", str(ROOT / "configs/spiral-2layer.yaml"), "train.epochs=1", "--out", str(run_dir), "-q"]
        ).exit_code
        == 0
    )
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, trials=1)), "--out", str(run_dir)])
    assert result.exit_code == 2 and "holds a training run; a sweep needs a directory of its own" in result.output
    assert not (run_dir / "sweep.yaml").exists()
    path = write_sweep(tmp_path, name="r", space={"seed": [1, 2], "output.dir": ["a", "b"], "name": ["x", "y"]})
    output = runner.invoke(app, ["sweep", str(path)]).output.replace("\n", "")
    assert "space.seed: cannot be swept: each run's seed comes from the sweep's seeds list" in output
    assert "space.output.dir: cannot be swept" in output and "space.name: cannot be swept" in output


def test_a_trial_whose_config_fails_at_once_records_the_real_cause(tmp_path):
    path = write_sweep(tmp_path, trials=2, method="grid", space={"data.source": ["spiral", "nope.csv"]})
    spec, rows = sweep(path, workers=1)
    failed = next(r for r in rows if r["state"] == "failed")
    assert "nope.csv" in failed["error"] and "result.json" not in failed["error"]


def test_a_scheduler_address_dask_cannot_parse_is_a_clear_error(tmp_path):
    pytest.importorskip("distributed")
    result = runner.invoke(app, ["sweep", str(write_sweep(tmp_path, trials=1)), "--scheduler", "foo"])
    assert result.exit_code == 2 and "--scheduler foo: not an address" in result.output
    assert "Traceback" not in result.output


def test_one_seed_gives_a_mean_and_no_spread(tmp_path):
    path = write_sweep(tmp_path, trials=1, space={"train.batch_size": {"int": [8, 32]}})
    spec, rows = sweep(path, workers=1)
    assert rows[0]["std"] is None and read_trials(spec.output)[0]["std"] == ""
    assert " ± " not in (Path(spec.output) / "best.yaml").read_text().splitlines()[0]
    from nncli.plot.records import read_sweep

    assert isinstance(read_sweep(spec.output)[1][0]["params"]["train.batch_size"], int)  # not 24.0


def test_a_trials_warnings_are_shown_naming_the_trial_and_the_seed(tmp_path):
    """A learning rate far too high warns in each seed's run; the sweep shows each warning, saying which trial and
    which seed it came from (they were only in the trials' summary.json before)."""
    base = dict(BASE, optimizer={"name": "sgd", "lr": 20.0}, model={"hidden": [32]})
    base["train"] = dict(BASE["train"], epochs=8, diagnostics=True)
    path = write_sweep(tmp_path, method="grid", trials=None, base=base, space={"optimizer.lr": [20.0]}, seeds=[0, 1])
    result = runner.invoke(app, ["sweep", str(path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "warning: trial 0: seed 0:" in result.output and "warning: trial 0: seed 1:" in result.output
    stored = json.loads((tmp_path / "sweeps" / "s" / "trial-0000" / "result.json").read_text())
    assert any(w.startswith("seed 1: ") for w in stored["warnings"])

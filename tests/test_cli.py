"""The three commands as a user runs them: train, eval, gradcheck, and every config mistake answered with exit 2."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli import __version__
from nncli.cli import app
from nncli.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


SMALL = ["train.epochs=5", "data.samples_per_class=40"]


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "spiral"
    result = run("train", ROOT / "configs/spiral-2layer.yaml", *SMALL, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result


def test_train_writes_a_complete_run_directory(spiral_run):
    out, result = spiral_run
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "checkpoint.npz", "best.npz", "summary.json"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert set(rows[0]) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
        "layers",
    }
    assert set(rows[0]["layers"]["W1"]) == {"weight_norm", "grad_norm", "update_ratio", "dead_fraction"}
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds" and len(csv_lines) == 6
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 5
    best = min(rows, key=lambda r: r["val_loss"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["samples_per_second"] > 0 and summary["wall_seconds"] > 0
    config_text = (out / "config.yaml").read_text()
    assert config_text.startswith(f"# nncli {__version__}") and "command:" in config_text
    assert "samples_per_class: 40" in config_text and "epochs: 5" in config_text
    assert "W1" in result.output and "val_accuracy" in result.output


def test_resolved_config_trains_again_identically(spiral_run, tmp_path):
    out, _ = spiral_run
    again = tmp_path / "again"
    assert run("train", out / "config.yaml", "--out", again, "--quiet").exit_code == 0
    assert _weights(again / "checkpoint.npz") == _weights(out / "checkpoint.npz")


def _weights(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k].tobytes() for k in z.files if k != "meta"}


def test_same_seed_is_bit_identical_other_seed_differs(tmp_path):
    cfg = ROOT / "configs/spiral-2layer.yaml"
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        assert run("train", cfg, *SMALL, f"seed={seed}", "--out", tmp_path / name, "--quiet").exit_code == 0
    a, b, c = (_weights(tmp_path / n / "checkpoint.npz") for n in "abc")
    assert a == b
    assert a != c


def test_existing_run_is_never_overwritten_silently(spiral_run):
    out, _ = spiral_run
    before = (out / "checkpoint.npz").read_bytes()
    result = run("train", ROOT / "configs/spiral-2layer.yaml", *SMALL, "--out", out)
    assert result.exit_code == 2
    assert "--force" in result.output and "--out" in result.output
    assert (out / "checkpoint.npz").read_bytes() == before


def test_force_replaces_a_run(tmp_path):
    cfg = ROOT / "configs/spiral-2layer.yaml"
    assert run("train", cfg, *SMALL, "--out", tmp_path / "r", "--quiet").exit_code == 0
    result = run(
        "train", cfg, "train.epochs=2", "data.samples_per_class=40", "--out", tmp_path / "r", "--quiet", "--force"
    )
    assert result.exit_code == 0
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2


def test_eval_reproduces_the_recorded_best_val_accuracy(spiral_run):
    out, _ = spiral_run
    result = run("eval", out / "best.npz", "--split", "val", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert report["split"] == "val" and report["samples"] == 24
    assert report["accuracy"] == summary["best"]["val_accuracy"]
    assert report["loss"] == pytest.approx(summary["best"]["val_loss"], rel=1e-6)


def test_eval_tables_and_default_split(spiral_run):
    out, _ = spiral_run
    result = run("eval", out / "checkpoint.npz")
    assert result.exit_code == 0, result.output
    assert "on val" in result.output and "confusion matrix" in result.output and "precision" in result.output


def test_eval_names_its_options_where_the_library_names_its_arguments(spiral_run):
    from nncli.evaluation.evaluate import evaluate_checkpoint

    out, _ = spiral_run
    result = run("eval", out / "best.npz", "--split", "tset")
    assert result.exit_code == 2 and "--split must be one of train, val, test, got 'tset'" in result.output
    result = run("eval", out / "best.npz", "--split", "test")  # the spiral run holds out no test split
    said = result.output.replace("\n", "")
    assert result.exit_code == 2 and "no test split (data.test_fraction is 0), only train and val" in said
    assert "choose another --split or pass --data FILE" in said
    with pytest.raises(DataError, match="only train and val; choose another split or pass a data file$"):
        evaluate_checkpoint(out / "best.npz", split="test")
    with pytest.raises(DataError, match="^labels y.npy goes with data_path"):
        evaluate_checkpoint(out / "best.npz", labels="y.npy")


def test_eval_on_a_file(spiral_run, tmp_path):
    out, _ = spiral_run
    rng = np.random.default_rng(0)
    path = tmp_path / "points.csv"
    rows = ["x0,x1,label"] + [
        f"{a},{b},{c}" for a, b, c in zip(rng.normal(size=20), rng.normal(size=20), rng.integers(3, size=20))
    ]
    path.write_text("\n".join(rows) + "\n")
    result = run("eval", out / "best.npz", "--data", path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 20


def test_eval_missing_or_bad_checkpoint(tmp_path):
    result = run("eval", tmp_path / "nope.npz")
    assert result.exit_code == 2 and "nope.npz" in result.output and "Traceback" not in result.output
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    result = run("eval", bad)
    assert result.exit_code == 2 and "bad.npz" in result.output


def test_gradcheck_builtin_passes():
    result = run("gradcheck")
    assert result.exit_code == 0, result.output
    for name in (
        "affine",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "elu",
        "dropout",
        "softmax_loss",
        "svm_loss",
        "l2",
        "l1",
        "two-layer net",
        "three-layer net",
    ):
        assert name in result.output
    assert "FAIL" not in result.output


def test_gradcheck_json_and_config():
    result = run("gradcheck", "--json")
    report = json.loads(result.stdout)
    assert report["passed"] and all(c["passed"] for c in report["checks"]) and len(report["checks"]) > 20
    result = run("gradcheck", ROOT / "configs/spiral-3layer.yaml", "--json")
    assert result.exit_code == 0, result.output
    names = [c["name"] for c in json.loads(result.stdout)["checks"]]
    assert names == ["x", "W1", "b1", "W2", "b2", "W3", "b3"]


def test_version_and_help_with_examples():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"nncli {__version__}"
    for command in ("train", "eval", "gradcheck"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Example" in result.output


@pytest.mark.parametrize(
    "text,needle",
    [
        ("data: {source: spiral}\noptimizer: {lerning_rate: 0.1}\n", "did you mean 'lr'"),
        ("data: {source: spiral}\ntrain: {epochs: ten}\n", "train.epochs"),
        ("data: {source: spiral}\noptimizer: {lr: -0.1}\n", "optimizer.lr"),
        ("data: {source: spiral}\nmodel: {dropout: 1.0}\n", "model.dropout"),
        ("data: {source: spiral}\nmodel: {hidden: [0]}\n", "model.hidden"),
        ("data: {source: spiral}\nmodel: {activation: relux}\n", "model.activation"),
        ("data: {source: spiral}\nmodel: [1, 2\n", "line"),
        ("", "empty"),
        ("- a\n- b\n", "mapping"),
        ("model: {hidden: [10]}\n", "data.source"),
    ],
)
def test_config_mistakes_exit_2_with_the_key_and_no_traceback(tmp_path, text, needle):
    result = run("train", write(tmp_path, text), "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_unknown_activation_lists_the_allowed_ones(tmp_path):
    result = run("train", write(tmp_path, "data: {source: spiral}\nmodel: {activation: relux}\n"))
    assert "relu, leaky_relu, sigmoid, tanh, elu" in result.output


def test_missing_config_file(tmp_path):
    result = run("train", tmp_path / "missing.yaml")
    assert result.exit_code == 2 and "missing.yaml" in result.output and "Traceback" not in result.output


def test_bad_override_is_reported_like_the_file(tmp_path):
    result = run("train", ROOT / "configs/spiral-2layer.yaml", "optimizer.lr=-1", "--out", tmp_path / "r")
    assert result.exit_code == 2 and "optimizer.lr" in result.output


def test_debug_shows_the_traceback_and_keeps_exit_code_2(tmp_path):
    result = runner.invoke(app, ["--debug", "train", str(write(tmp_path, "- a\n"))])
    assert result.exit_code == 2 and "Traceback (most recent call last)" in result.output
    assert "ConfigError" in result.output and "error:" in result.output


def test_diverging_run_exits_1(tmp_path):
    result = run(
        "train",
        ROOT / "configs/spiral-2layer.yaml",
        "optimizer.lr=1e30",
        "data.samples_per_class=40",
        "train.epochs=3",
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert result.exit_code == 1, result.output
    assert "diverged" in result.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "diverged"


def write_idx(path, array):
    """An IDX file (the MNIST format) holding a uint8 array, gzipped when the name ends in .gz."""
    import gzip

    head = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:
        f.write(head + np.asarray(array, np.uint8).tobytes())


def data_overrides(config, tmp_path):
    """Overrides that let a shipped config run from any directory: its bundled file by absolute path, or, for
    data a user brings (MNIST), small IDX files of the same format written here. Other absent data: skip."""
    from nncli.config import load_config
    from nncli.data.builtin import BUILTINS

    data = load_config(config).data
    if data.source in BUILTINS:
        return []
    if (ROOT / data.source).is_file():
        return [f"data.source={ROOT / data.source}"]
    if "idx" in Path(data.source).name or "ubyte" in Path(data.source).name:
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(10), 6)
        overrides = []
        for images_key, labels_key in (("source", "labels"), ("test_source", "test_labels")):
            if getattr(data, images_key) is None:
                continue
            images_path, labels_path = (tmp_path / Path(getattr(data, key)).name for key in (images_key, labels_key))
            write_idx(images_path, rng.integers(0, 40, (60, 28, 28)) + 20 * labels[:, None, None])
            write_idx(labels_path, labels)
            overrides += [f"data.{images_key}={images_path}", f"data.{labels_key}={labels_path}"]
        return overrides
    pytest.skip(f"{config.name}: data file {data.source} is not shipped and not present")


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_trains(config, tmp_path):
    overrides = data_overrides(config, tmp_path)
    result = run("train", config, *overrides, "train.epochs=2", "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.npz").exists()


def test_npy_training_and_eval_with_a_labels_file(tmp_path):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 1, (60, 3)), rng.normal(2, 1, (60, 3))]).astype(np.float32)
    y = np.repeat([3, 7], 60)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    config = write(
        tmp_path,
        f"data: {{source: {tmp_path / 'X.npy'}, labels: {tmp_path / 'y.npy'}}}\n"
        "model: {hidden: [8]}\ntrain: {epochs: 3}\n",
    )
    assert run("train", config, "--out", tmp_path / "r", "-q").exit_code == 0
    result = run(
        "eval", tmp_path / "r" / "best.npz", "--data", tmp_path / "X.npy", "--labels", tmp_path / "y.npy", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["samples"] == 120 and report["classes"] == [3, 7] and report["accuracy"] > 0.9
    result = run("eval", tmp_path / "r" / "best.npz", "--labels", tmp_path / "y.npy")  # without --data: no effect
    assert result.exit_code == 2 and "--labels" in result.output and "goes with --data" in result.output
    np.save(tmp_path / "new.npy", X)  # not the training file, whose labels the config names
    result = run("eval", tmp_path / "r" / "best.npz", "--data", tmp_path / "new.npy")
    said = result.output.replace("\n", "")
    assert result.exit_code == 2 and "new.npy: npy features need a labels file" in said and "pass --labels FILE" in said
    bare = write(tmp_path, f"data: {{source: {tmp_path / 'X.npy'}}}\nmodel: {{hidden: [8]}}\n", "bare.yaml")
    result = run("train", bare, "--out", tmp_path / "r2", "-q")  # train takes no --labels: the config key says how
    said = result.output.replace("\n", "")
    assert result.exit_code == 2 and "(data.labels in a config)" in said and "--labels" not in said


def test_eval_from_another_directory_says_where_the_recorded_data_was_looked_for(tmp_path, monkeypatch):
    """A checkpoint of an earlier version records its data path relative to where it was trained."""
    from nncli.config import config_from_dict
    from nncli.training.trainer import train

    rng = np.random.default_rng(0)
    (tmp_path / "points.csv").write_text(
        "a,b,y\n" + "".join(f"{a},{b},{int(a > b)}\n" for a, b in rng.normal(size=(40, 2)))
    )
    monkeypatch.chdir(tmp_path)
    train(
        config_from_dict({"data": {"source": "points.csv"}, "model": {"hidden": [4]}, "train": {"epochs": 1}}),
        tmp_path / "r",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("eval", tmp_path / "r" / "best.npz")
    assert result.exit_code == 2
    assert (
        f"data file not found: points.csv (relative paths start from the current directory, {elsewhere})"
        in result.output.replace("\n", "")
    )
    assert "pass --data FILE" in result.output


def test_progress_lines_show_the_epoch_metrics_but_not_the_per_layer_diagnostics(tmp_path):
    config = write(
        tmp_path, "data: {source: spiral, samples_per_class: 20}\nmodel: {hidden: [8]}\ntrain: {epochs: 2}\n"
    )
    result = run("train", config, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("epoch 2:"))
    assert "train_loss=" in line and "val_accuracy=" in line and "layers" not in line and "W1" not in line


def test_runs_lists_killed_and_damaged_runs_too(tmp_path):
    config = write(
        tmp_path, "data: {source: spiral, samples_per_class: 20}\nmodel: {hidden: [4]}\ntrain: {epochs: 2}\n"
    )
    for name in ("ok", "killed", "damaged"):
        assert run("train", config, "--out", tmp_path / "runs" / name, "-q").exit_code == 0
    (tmp_path / "runs" / "killed" / "summary.json").unlink()  # as kill -9 before the end leaves it
    (tmp_path / "runs" / "damaged" / "summary.json").write_text("{not json")
    from nncli.evaluation.inspection import list_runs

    rows = {Path(r["path"]).name: r for r in list_runs(tmp_path / "runs")}
    assert rows["ok"]["status"] == "completed"
    assert rows["killed"]["status"] == "no summary (running or killed)" and rows["killed"]["epochs"] == 2
    assert rows["damaged"]["status"] == "summary.json unreadable" and rows["damaged"]["best_val_accuracy"] is not None
    result = run("diff", tmp_path / "runs" / "ok", tmp_path / "nosuch")
    assert result.exit_code == 2 and "no such run directory" in result.output


def test_a_config_where_none_belongs_or_a_checkpoint_where_a_config_belongs(tmp_path, spiral_run):
    out, _ = spiral_run
    result = run("train", ROOT / "configs/spiral-2layer.yaml", "--resume", out)
    assert result.exit_code == 2 and "takes no CONFIG" in result.output.replace("\n", "")
    for command in ("train", "gradcheck", "validate"):
        result = run(command, out / "best.npz")
        assert result.exit_code == 2 and "a NumPy file (a checkpoint?), not a YAML config" in result.output.replace(
            "\n", ""
        )


def test_validate_warns_about_a_data_file_that_does_not_exist(tmp_path):
    result = run(
        "validate",
        ROOT / "configs/spiral-2layer.yaml",
        f"data.source={tmp_path / 'nosuch.csv'}",
        "data.classes=null",
        "data.samples_per_class=null",
        "data.noise=null",
    )
    assert result.exit_code == 0, result.output
    assert "warning: data.source" in result.output and "not found" in result.output.replace("\n", "")
    assert "warning" not in run("validate", ROOT / "configs/spiral-2layer.yaml").output


def test_gradcheck_takes_overrides_like_train(tmp_path):
    result = run("gradcheck", ROOT / "configs/spiral-2layer.yaml", "model.hidden=[5,4]", "loss=svm", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["W3"]["shape"] == [4, 3] and all(c["status"] == "pass" for c in checks.values())
    result = run("gradcheck", ROOT / "configs/spiral-2layer.yaml", "model.hiden=[5]")
    assert result.exit_code == 2 and "did you mean" in result.output


def test_help_lists_the_commands_in_the_order_of_the_job():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    order = ["train", "eval", "predict", "gradcheck", "graph", "backprop", "sweep", "schema", "validate", "init"]
    order += ["inspect", "runs", "diff", "plot"]
    positions = [result.output.index(f"│ {name} ") for name in order]
    assert positions == sorted(positions), result.output

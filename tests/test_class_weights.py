"""Class weights (`loss_weights`): a weighted mean of the loss, fitted on the training split, recorded and checked."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.gradcheck.suite import builtin_checks, check_config_on_data
from nncli.nn.network import Network
from nncli.training.checkpoint import load_checkpoint
from nncli.training.trainer import Trainer
from tests.test_resume import train_interrupted

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def imbalanced(path, n_major=900, n_minor=100, seed=0):
    """Two overlapping Gaussian classes 9:1 in an .npz: a plain loss mostly ignores the minority class 1."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(0.0, 1.0, (n_major, 2)), rng.normal(1.5, 1.0, (n_minor, 2))])
    y = np.repeat([0, 1], [n_major, n_minor])
    np.savez(path, X=X, y=y)
    return path


def cfg(source, out, **extra):
    raw = {
        "data": {"source": str(source), "val_fraction": 0.3},
        "model": {"hidden": [8]},
        "train": {"epochs": 15, "batch_size": 50, "diagnostics": False},
        "optimizer": {"lr": 0.1},
        "output": {"dir": str(out)},
        **extra,
    }
    return config_from_dict(raw)


def minority_recall(trainer):
    val = trainer.data.val
    predicted = trainer.net.predict(val.X)
    return float((predicted[val.y == 1] == 1).mean())


def test_balanced_raises_the_minority_recall(tmp_path):
    source = imbalanced(tmp_path / "imbalanced.npz")
    plain = Trainer(cfg(source, tmp_path / "plain"))
    plain.run()
    balanced = Trainer(cfg(source, tmp_path / "balanced", loss_weights="balanced"))
    balanced.run()
    before, after = minority_recall(plain), minority_recall(balanced)
    assert after > before + 0.2, (before, after)
    assert after > 0.7


def test_the_loss_is_the_hand_computed_weighted_mean():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((12, 4)), rng.integers(3, size=12)
    w = np.array([0.5, 2.0, 7.0])
    for loss in ("softmax", "svm"):
        net = Network(4, [5], 3, loss=loss, class_weights=w, l2=0.0, dtype=np.float64, rng=0)
        got = net.forward_loss(X, y, train=False)
        s = net.scores
        if loss == "softmax":
            per = np.log(np.exp(s).sum(axis=1)) - s[np.arange(12), y]
        else:
            margins = np.maximum(0, s - s[np.arange(12), y][:, None] + 1)
            per = margins.sum(axis=1) - 1  # the correct class's own margin is 1
        assert got == pytest.approx((w[y] * per).sum() / w[y].sum(), rel=1e-12), loss
        plain = Network(4, [5], 3, loss=loss, class_weights=np.ones(3), l2=0.0, dtype=np.float64, rng=0)
        unweighted = Network(4, [5], 3, loss=loss, l2=0.0, dtype=np.float64, rng=0)
        assert plain.forward_loss(X, y) == pytest.approx(unweighted.forward_loss(X, y), rel=1e-12)


def test_the_logistic_loss_weighs_each_attribute_apart():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((10, 3)), (rng.random((10, 2)) < 0.3).astype(float)
    w = np.array([[1.0, 4.0], [0.5, 3.0]])  # per attribute: negatives' weight, positives' weight
    net = Network(3, [], 2, loss="logistic", class_weights=w, l2=0.0, dtype=np.float64, rng=0)
    got = net.forward_loss(X, Y, train=False)
    s = net.scores
    per = np.log1p(np.exp(s)) - Y * s
    wik = np.where(Y == 1, w[:, 1], w[:, 0])
    assert got == pytest.approx(((wik * per).sum(axis=0) / wik.sum(axis=0)).sum(), rel=1e-12)


def test_balanced_weights_are_fitted_on_the_training_split_and_recorded(tmp_path):
    source = imbalanced(tmp_path / "imbalanced.npz")
    trainer = Trainer(cfg(source, tmp_path / "run", loss_weights="balanced", train={"epochs": 2}))
    trainer.run()
    counts = np.bincount(trainer.data.train.y)
    expected = len(trainer.data.train.y) / (2 * counts)  # scikit-learn's n / (C · count)
    for name in ("checkpoint.npz", "best.npz"):
        meta = load_checkpoint(tmp_path / "run" / name).meta
        assert meta["class_weights"] == pytest.approx(expected.tolist(), rel=1e-12)
    assert "class_weights" not in load_checkpoint_of_plain_run(source, tmp_path).meta


def load_checkpoint_of_plain_run(source, tmp_path):
    Trainer(cfg(source, tmp_path / "plain", train={"epochs": 1})).run()
    return load_checkpoint(tmp_path / "plain" / "checkpoint.npz")


def string_csv(path):
    rng = np.random.default_rng(3)
    lines = ["a,b,answer"] + [
        f"{x:.4f},{z:.4f},{'yes' if i % 5 == 0 else 'no'}" for i, (x, z) in enumerate(rng.standard_normal((60, 2)))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(tmp_path, source, weights, loss="softmax", name="c.yaml"):
    path = tmp_path / name
    path.write_text(
        f"data: {{source: {source}}}\nloss: {loss}\nloss_weights: {weights}\nmodel: {{hidden: [4]}}\n"
        f"train: {{epochs: 2}}\noutput: {{dir: {tmp_path / 'run'}}}\n"
    )
    return path


def test_label_weights_with_a_string_labelled_csv(tmp_path):
    source = string_csv(tmp_path / "answers.csv")
    result = run("train", write_config(tmp_path, source, '{"yes": 5.0}'))
    assert result.exit_code == 0, result.output
    meta = load_checkpoint(tmp_path / "run" / "checkpoint.npz").meta
    assert meta["classes"] == ["no", "yes"] and meta["class_weights"] == [1.0, 5.0]
    assert "loss weights" in result.output and "yes 5" in result.output  # the setup table's row


def test_an_integer_label_matches_written_either_way(tmp_path):
    source = imbalanced(tmp_path / "imbalanced.npz")
    for spec in ({1: 4.0}, {"1": 4.0}):
        trainer = Trainer(cfg(source, tmp_path / f"run{len(str(spec))}", loss_weights=spec))
        assert trainer.net.class_weights.tolist() == [1.0, 4.0]
        trainer.lock.release()


def test_an_unknown_label_is_refused_naming_it_and_the_classes(tmp_path):
    source = string_csv(tmp_path / "answers.csv")
    result = run("train", write_config(tmp_path, source, '{"maybe": 2.0, "yes": 3.0}'))
    assert result.exit_code == 2
    assert "answers.csv: loss_weights names 'maybe'" in result.output and "'no', 'yes'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


@pytest.mark.parametrize(
    ("weights", "needle"),
    [
        ('{"yes": 0}', "label 'yes': its weight must be a finite number > 0, got 0"),
        ("{yes: 2}", 'quote a text label ("yes": 5.0)'),  # YAML's unquoted yes is a boolean
        ("{}", "at least one label"),
        ("bal", "'bal'"),
    ],
)
def test_bad_weights_are_refused_naming_the_value(tmp_path, weights, needle):
    result = run("train", write_config(tmp_path, "blobs", weights))
    assert result.exit_code == 2 and "loss_weights" in result.output and needle in result.output, result.output
    assert "Traceback" not in result.output


def test_a_regression_loss_is_refused_naming_it(tmp_path):
    result = run("train", write_config(tmp_path, "sine", "balanced", loss="l2"))
    assert result.exit_code == 2
    assert "loss_weights" in result.output and "'l2'" in result.output and "softmax, svm, logistic" in result.output
    assert "Traceback" not in result.output


def test_balanced_logistic_weights_per_attribute(tmp_path):
    config = cfg("attributes", tmp_path / "run", loss="logistic", loss_weights="balanced")
    config.data.val_fraction = 0.2
    trainer = Trainer(config)
    y = trainer.data.train.y.astype(float)
    n, positives = len(y), y.sum(axis=0)
    expected = np.stack([n / (2 * (n - positives)), n / (2 * positives)], axis=1)
    assert trainer.net.class_weights == pytest.approx(expected, rel=1e-12)
    trainer.lock.release()


def test_weighted_losses_pass_the_builtin_gradcheck():
    checks = [r for r in builtin_checks() if r.name.endswith("(class-weighted)")]
    assert [r.name for r in checks] == [
        f"{loss}_loss: dscores (class-weighted)" for loss in ("softmax", "svm", "logistic")
    ]
    assert all(r.passed for r in checks), [r.name for r in checks if not r.passed]


def test_gradcheck_of_a_weighted_config(tmp_path):
    source = string_csv(tmp_path / "answers.csv")
    path = write_config(tmp_path, source, '{"yes": 5.0}')
    result = run("gradcheck", path, "--json")
    assert result.exit_code == 0, result.output
    assert all(c["passed"] for c in json.loads(result.stdout)["checks"])
    config = config_from_dict({"data": {"source": str(source)}, "loss": "svm", "loss_weights": "balanced"})
    assert all(r.passed for r in check_config_on_data(config))


def test_resume_is_bit_identical_with_weights(tmp_path):
    source = imbalanced(tmp_path / "imbalanced.npz", 270, 30)
    config = cfg(source, tmp_path / "straight", loss_weights="balanced", train={"epochs": 4, "batch_size": 16})
    Trainer(config).run()
    stopped = cfg(source, tmp_path / "resumed", loss_weights="balanced", train={"epochs": 4, "batch_size": 16})
    train_interrupted(stopped, tmp_path / "resumed", stop_after=2)
    a, b = (load_checkpoint(Path(tmp_path / d / "checkpoint.npz")) for d in ("straight", "resumed"))
    assert all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)
    assert a.meta["metrics"]["val_loss"] == b.meta["metrics"]["val_loss"]


def test_validation_loss_is_weighted_and_accuracy_plain(tmp_path):
    source = imbalanced(tmp_path / "imbalanced.npz")
    trainer = Trainer(cfg(source, tmp_path / "run", loss_weights={1: 9.0}, train={"epochs": 2}))
    row = trainer.run()["final"]
    val, net = trainer.data.val, trainer.net
    s = net.predict_scores(val.X).astype(np.float64)
    per = np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(val.y)), val.y]
    w = np.where(val.y == 1, 9.0, 1.0)
    assert row["val_loss"] == pytest.approx((w * per).sum() / w.sum(), rel=1e-5)
    assert row["val_accuracy"] == pytest.approx(float((s.argmax(axis=1) == val.y).mean()))


def test_an_attribute_weight_weighs_its_positives(tmp_path):
    trainer = Trainer(cfg("attributes", tmp_path / "run", loss="logistic", loss_weights={"y[1]": 3.0}))
    assert trainer.net.class_weights.tolist() == [[1.0, 1.0], [1.0, 3.0], [1.0, 1.0]]  # (negatives, positives)
    trainer.lock.release()


@pytest.mark.parametrize("loss, outputs", [("softmax", 3), ("svm", 3), ("logistic", 3)])
def test_a_weighted_split_loss_is_exact_however_the_split_is_chunked(loss, outputs):
    """A split evaluated in chunks gets the weighted mean over all its rows, not a mean of the chunks' means."""
    from nncli.nn.network import Network
    from nncli.nn.tally import Tally

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    task = "attributes" if loss == "logistic" else "classification"
    if task == "attributes":
        y, w = (rng.random((50, outputs)) < 0.3).astype(float), rng.uniform(0.5, 3, (outputs, 2))
    else:
        y, w = rng.integers(outputs, size=50), rng.uniform(0.5, 3, outputs)
    net = Network(4, [5], outputs, loss=loss, class_weights=w, dtype=np.float64, rng=1)
    whole = net.evaluate([(X, y)], Tally(task, outputs))["loss"]
    cuts = [(X[a:b], y[a:b]) for a, b in ((0, 7), (7, 30), (30, 50))]
    assert net.evaluate(cuts, Tally(task, outputs))["loss"] == pytest.approx(whole, rel=1e-12)

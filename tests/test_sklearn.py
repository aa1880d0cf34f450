"""The scikit-learn estimators as a scikit-learn user meets them: every estimator check, pipelines and searches,
the same weights as `nncli train`, configs and checkpoints both ways, and the config's own messages."""

import importlib
import os
import pickle
import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import config_from_dict
from nncli.errors import MissingExtra, OutputError
from nncli.sklearn import NNClassifier, NNRegressor, ParameterError, expected_failed_checks
from nncli.training.checkpoint import load_checkpoint

runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:500], y[:500]


def write_csv(path, X, y):
    """X and y as a CSV that nncli reads back to the same float64 values: every feature, then the label."""
    header = ",".join([*(f"f{i}" for i in range(X.shape[1])), "label"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.17g", header=header, comments="")


@pytest.mark.parametrize(
    "estimator",
    [
        NNClassifier(hidden=(16,), epochs=20),
        NNClassifier(hidden=(16,), epochs=20, loss="svm", norm="batchnorm", dtype="float64"),
        NNRegressor(hidden=(16,), epochs=20),
    ],
    ids=["softmax", "svm-batchnorm-float64", "regressor"],
)
def test_passes_every_estimator_check(estimator):
    """Every check of scikit-learn's check_estimator passes, but those expected_failed_checks declares (float32's
    batch-size rounding in check_methods_subset_invariance), which are run and reported as expected failures."""
    expected = expected_failed_checks(estimator)
    results = check_estimator(estimator, expected_failed_checks=expected, on_fail=None, on_skip=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    assert {r["check_name"] for r in results if r["expected_to_fail"]} <= set(expected)
    assert len(results) > 40


def test_grid_search_over_hidden_and_l2_in_a_pipeline(digits):
    X, y = digits
    pipe = Pipeline([("scale", StandardScaler()), ("net", NNClassifier(epochs=5, validation_fraction=0.0))])
    search = GridSearchCV(pipe, {"net__hidden": [(8,), (32,)], "net__l2": [1e-4, 1e-1]}, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"net__hidden", "net__l2"}
    assert search.best_score_ > 0.8
    assert search.score(X, y) > 0.8
    assert search.best_estimator_.named_steps["net"].n_iter_ == 5


def test_cross_val_score_and_clone(digits):
    X, y = digits
    est = NNClassifier(hidden=(32,), epochs=5)
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.shape == (3,) and (scores > 0.7).all()
    est.fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "classes_")


REGRESSION = make_regression(300, 6, noise=5.0, random_state=1)


@pytest.mark.parametrize(
    "make, params",
    [
        (NNClassifier, dict(hidden=(16,), epochs=3, norm="batchnorm", dropout=0.1, optimizer="adam", lr=0.01, seed=7)),
        (NNRegressor, dict(hidden=(8, 8), epochs=3, norm="layernorm", loss="huber", lr=0.01, seed=3)),
    ],
    ids=["classifier", "regressor"],
)
def test_same_seed_same_weights_as_nncli_train(tmp_path, digits, make, params):
    """fit twice gives identical weights, and `nncli train` on a CSV of the same rows with the estimator's
    to_config() gives them bit for bit (normalization, dropout and the split's randomness included)."""
    X, y = digits if make is NNClassifier else REGRESSION
    first, second = make(**params).fit(X, y), make(**params).fit(X, y)
    write_csv(tmp_path / "data.csv", X, y)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(first.to_config(source=tmp_path / "data.csv")))
    result = runner.invoke(app, ["train", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    trained = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert sorted(first._net.params) == sorted(trained.params)
    for name, value in first._net.params.items():
        assert np.array_equal(value, second._net.params[name]), name
        assert np.array_equal(value, trained.params[name]), name
    assert np.array_equal(first.loss_curve_, [row["train_loss"] for row in _metrics(tmp_path / "run")])
    loaded = make.load(tmp_path / "run" / "checkpoint.npz")  # a checkpoint nncli train wrote: fitted, same answers
    assert list(loaded.feature_names_in_) == [f"f{i}" for i in range(X.shape[1])]
    with pytest.warns(UserWarning, match="feature names"):
        assert np.array_equal(loaded.predict(X), first.predict(X))


def _metrics(run_dir):
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    names = lines[0].split(",")
    return [dict(zip(names, map(float, line.split(",")))) for line in lines[1:]]


def test_fit_writes_nothing(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)
    NNClassifier(hidden=(8,), epochs=2).fit(*digits)
    assert os.listdir(tmp_path) == []


def test_fitted_attributes(digits):
    X, y = digits
    est = NNClassifier(hidden=(16,), epochs=4, early_stopping=True, patience=1, monitor="val_accuracy").fit(X, y)
    assert list(est.classes_) == list(range(10))
    assert est.n_features_in_ == 64
    assert 1 <= est.n_iter_ <= 4 and len(est.loss_curve_) == len(est.validation_scores_) == est.n_iter_
    assert est.predict_proba(X[:5]).sum(axis=1) == pytest.approx(np.ones(5))
    assert NNClassifier(epochs=1, validation_fraction=0.0).fit(X, y).validation_scores_ is None
    with pytest.warns(UserWarning, match="early stopping and best.npz follow train_loss"):
        NNClassifier(epochs=1, validation_fraction=0.0, early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match=r"fit\(X, y\): the labels hold 1 class \(3\); classification needs"):
        NNClassifier(epochs=1).fit(X[y == 3], y[y == 3])


def test_string_labels_and_a_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(90, 3)), columns=["a", "b", "c"])
    y = np.where(X["a"] > 0, "yes", "no")
    est = NNClassifier(hidden=(8,), epochs=20).fit(X, y)
    assert list(est.feature_names_in_) == ["a", "b", "c"] and list(est.classes_) == ["no", "yes"]
    assert set(est.predict(X)) <= {"no", "yes"} and est.score(X, y) > 0.8
    est.save(tmp_path / "m.npz")
    assert load_checkpoint(tmp_path / "m.npz").meta["feature_names"] == ["a", "b", "c"]


def test_bad_parameters_raise_the_configs_own_message(digits):
    """A bad parameter is a ValueError (what sklearn expects) holding the config's message for the same key."""
    said = {}
    for params, raw in [
        ({"lr": -1.0}, {"optimizer": {"lr": -1.0}}),
        ({"activation": "relux"}, {"model": {"activation": "relux"}}),
        ({"hidden": (0,)}, {"model": {"hidden": [0]}}),
        ({"options": {"model.no_such_key": 1}}, {"model": {"no_such_key": 1}}),
    ]:
        with pytest.raises(ParameterError) as err:
            NNClassifier(**params).fit(*digits)
        assert isinstance(err.value, ValueError)
        try:
            config_from_dict({"data": {"source": "fit(X, y)"}, **raw})
        except Exception as config_err:
            said[str(params)] = config_err.problems
        assert err.value.problems == said[str(params)], params
    with pytest.raises(ValueError, match="loss: 'l2' is a regression loss; NNClassifier takes softmax, svm"):
        NNClassifier(loss="l2").fit(*digits)
    with pytest.raises(ValueError, match="early_stopping: expected True or False"):
        NNClassifier(early_stopping="yes").fit(*digits)


def test_numpy_scalars_from_a_grid_are_accepted(digits):
    est = NNClassifier(hidden=(np.int64(8),), epochs=np.int64(1), l2=np.float64(0.01), batch_size=np.int32(32))
    assert est.fit(*digits).n_iter_ == 1


def test_partial_fit_trains_on(digits):
    X, y = digits
    est = NNClassifier(hidden=(16,), epochs=2).fit(X, y)
    before = est._net.params["W1"].copy()
    est.partial_fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert not np.array_equal(before, est._net.params["W1"])
    with pytest.raises(ValueError, match="first call to partial_fit needs classes"):
        NNClassifier(epochs=2).partial_fit(X, y)
    fresh = NNClassifier(hidden=(16,)).partial_fit(X, y, classes=np.arange(10)).partial_fit(X, y)
    assert fresh.n_iter_ == 2 and fresh.validation_scores_ is None
    with pytest.raises(ValueError, match="unknown|not one of|label"):
        est.partial_fit(X[:3], np.array([0, 1, 99]))


def test_partial_fit_continues_the_optimizer_exactly(digits):
    """fit for 2 epochs, then partial_fit on the rows in the order fit trained on them (no split, no shuffling: the
    seed's permutation), gives bit for bit the weights of fit for 3 epochs: momentum and weights carry on."""
    X, y = digits
    params = dict(hidden=(16,), validation_fraction=0.0, shuffle=False, optimizer="momentum", seed=5)
    order = np.random.default_rng(5).permutation(len(y))  # the split's draw, which with no held-out rows is all
    once = NNClassifier(epochs=3, **params).fit(X, y)
    twice = NNClassifier(epochs=2, **params).fit(X, y).partial_fit(X[order], y[order])
    for name, value in once._net.params.items():
        assert np.array_equal(value, twice._net.params[name]), name
    assert once.loss_curve_ == twice.loss_curve_


def test_regressor_units_and_several_targets():
    X, y = make_regression(200, 4, n_targets=2, noise=1.0, random_state=0)
    y = y * 100 + 5000  # far from standardized: predictions come back in these units
    est = NNRegressor(hidden=(32,), epochs=40, lr=0.01).fit(X, y)
    assert est.predict(X).shape == (200, 2) and est.score(X, y) > 0.9
    single = NNRegressor(hidden=(8,), epochs=2).fit(X, y[:, 0])
    assert single.predict(X).shape == (200,) and len(single.validation_scores_) == 2


def test_to_config_and_from_config_round_trip(tmp_path):
    est = NNClassifier(hidden=(8, 4), activation="leaky_relu", schedule={"name": "step", "every": 5}, l1=1e-4,
                       early_stopping=True, patience=3, options={"model.negative_slope": 0.2})  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(est.to_config(source="data.csv")))
    again = NNClassifier.from_config(path)
    assert again.get_params() == est.get_params()
    assert NNClassifier.from_config(est.to_config()).get_params() == est.get_params()
    assert NNRegressor.from_config({"loss": "huber", "huber_delta": 2.0}).options == {"huber_delta": 2.0}


def test_save_is_a_checkpoint_nncli_eval_reads_and_load_predicts_the_same(tmp_path, digits):
    X, y = digits
    est = NNClassifier(hidden=(16,), epochs=3, norm="batchnorm").fit(X, y)
    est.save(tmp_path / "model.npz")
    write_csv(tmp_path / "digits.csv", X, y)
    result = runner.invoke(app, ["eval", str(tmp_path / "model.npz"), "--data", str(tmp_path / "digits.csv")])
    assert result.exit_code == 0, result.output
    loaded = NNClassifier.load(tmp_path / "model.npz")
    assert np.array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.get_params() == est.get_params() and loaded.score(X, y) == est.score(X, y)
    with pytest.raises(ValueError, match="partial_fit continues"):
        loaded.partial_fit(X, y)
    loaded.save(tmp_path / "again.npz")
    assert np.array_equal(NNClassifier.load(tmp_path / "again.npz").predict_proba(X), est.predict_proba(X))
    assert np.array_equal(pickle.loads(pickle.dumps(loaded)).predict(X), est.predict(X))


def test_save_replaces_a_file_only_with_force(tmp_path, digits):
    est = NNClassifier(hidden=(8,), epochs=1).fit(*digits)
    target = tmp_path / "model.npz"
    target.write_text("precious")
    with pytest.raises(OutputError, match="force=True"):
        est.save(target)
    assert target.read_text() == "precious"
    est.save(target, force=True)
    assert load_checkpoint(target).layer_sizes == [64, 8, 10]


def test_load_refuses_the_other_task(tmp_path):
    X, y = make_regression(60, 3, random_state=0)
    NNRegressor(hidden=(4,), epochs=1).fit(X, y).save(tmp_path / "r.npz")
    with pytest.raises(Exception, match="regression network; NNClassifier loads classification"):
        NNClassifier.load(tmp_path / "r.npz")


def test_without_the_extra_the_import_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.base", None)
    for name in [n for n in sys.modules if n.startswith("nncli.sklearn")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingExtra, match=r"pip install 'nncli\[sklearn\]'"):
        importlib.import_module("nncli.sklearn")


@pytest.mark.parametrize("norm", ["none", "batchnorm"])
def test_a_pickled_estimator_trains_on_exactly_as_the_original(digits, norm):
    """Pickle copies the parameter views apart from the flat buffer the optimizer updates: unpickled, the network
    rebuilds them, so partial_fit moves the weights, biases and norm parameters that predict uses."""
    X, y = digits
    est = NNClassifier(hidden=(16,), epochs=2, norm=norm).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    est.partial_fit(X, y)
    again.partial_fit(X, y)
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    net = again._trainer.net
    for name, p in net.params.items():
        assert np.shares_memory(p, net.theta), name

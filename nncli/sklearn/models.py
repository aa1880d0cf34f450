"""The two estimators: NNClassifier (softmax or svm loss) and NNRegressor (l2, l1 or huber; one or more targets)."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from nncli.data.dataset import encode_labels
from nncli.data.targets import target_values
from nncli.nn.losses import LOSSES, softmax
from nncli.sklearn.estimators import NNEstimator, store_params
from nncli.sklearn.params import ARRAYS
from nncli.sklearn.params import DEFAULTS as D


def _first_partial_fit(estimator):
    """The config of a first partial_fit: one epoch over every row given (no validation split, no early stopping)."""
    config = estimator._config()
    config.data.val_fraction, config.train.early_stopping, config.train.epochs = 0.0, None, 1
    return config


def _gives_probabilities(estimator):
    loss = LOSSES.get(estimator.loss)
    if loss is not None and not loss.probabilities:  # an unknown loss is fit's to refuse
        raise AttributeError(
            f"predict_proba needs a loss whose scores are probabilities (softmax); loss {estimator.loss!r} gives "
            f"class scores: use decision_function"
        )
    return True


class NNClassifier(ClassifierMixin, NNEstimator):
    """A fully connected network classifier trained by nncli (loss softmax or svm). The parameters mirror the
    config (nncli.sklearn.params.KEYS); `options` takes any other config key, dotted.

    Fitted: classes_, n_features_in_, feature_names_in_ (X a DataFrame), loss_curve_ (train_loss per epoch),
    validation_scores_ (val_accuracy per epoch; None with validation_fraction 0), n_iter_ (epochs trained).
    """

    _task, _validation_metric = "classification", "accuracy"

    def __init__(
        self, hidden=D["hidden"], activation=D["activation"], init=D["init"], norm=D["norm"], dropout=D["dropout"],
        loss=D["loss"], class_weight=D["class_weight"], l2=D["l2"], l1=D["l1"], optimizer=D["optimizer"], lr=D["lr"],
        momentum=D["momentum"], schedule=D["schedule"], clip_norm=D["clip_norm"], epochs=D["epochs"],
        batch_size=D["batch_size"], shuffle=D["shuffle"], early_stopping=D["early_stopping"], monitor=D["monitor"],
        patience=D["patience"], min_delta=D["min_delta"], validation_fraction=D["validation_fraction"],
        standardize=D["standardize"], dtype=D["dtype"], seed=D["seed"], options=None,
    ):  # fmt: skip
        store_params(self, locals())

    def _validate(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64)
        check_classification_targets(y)
        if reset:
            self.classes_ = np.unique(y)
        return X, y

    def _encoded(self, y, data):
        return encode_labels(y, data.classes, source=ARRAYS)

    def _loaded(self, ckpt):
        self.classes_ = np.asarray(ckpt.classes)

    def partial_fit(self, X, y, classes=None):
        """One more epoch over X, y, continuing the weights and optimizer state; the first call (which must pass
        `classes`, every label, and show each in y) trains a new network for one epoch on all the rows."""
        if getattr(self, "_net", None) is not None:
            X, y = self._validate(X, y, reset=False)
            self._more_epochs(X, y)
            return self
        config = _first_partial_fit(self)
        X, y = self._validate(X, y, reset=True)
        if classes is None or not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"the first call to partial_fit needs classes, every label, and a y showing each of them; got "
                f"classes {None if classes is None else np.unique(classes).tolist()} and y with {self.classes_.tolist()}"
            )
        self._train(config, X, y)
        return self

    def decision_function(self, X):
        """The class scores (N, C); for two classes the margin score₁ − score₀ (N,), positive for classes_[1]."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """The label (from classes_) of the highest score of each row."""
        ids = self._scores(X).argmax(axis=1)  # first: an unfitted estimator raises NotFittedError
        return self.classes_[ids]

    @available_if(_gives_probabilities)
    def predict_proba(self, X):
        """Softmax class probabilities (N, C), columns in the order of classes_ (loss softmax only: an svm's scores
        are margins, not probabilities, so with loss svm there is no predict_proba and decision_function ranks)."""
        return softmax(self._scores(X))


class NNRegressor(RegressorMixin, NNEstimator):
    """A fully connected network regressor trained by nncli (loss l2, l1 or huber), of one target (y (N,)) or
    several (y (N, K)). Parameters and fitted attributes as NNClassifier's, but validation_scores_ are val_r2 and
    there are no classes; `standardize_target` trains on standardized targets (predictions in their own units)."""

    _task, _validation_metric = "regression", "r2"

    def __init__(
        self, hidden=D["hidden"], activation=D["activation"], init=D["init"], norm=D["norm"], dropout=D["dropout"],
        loss="l2", l2=D["l2"], l1=D["l1"], optimizer=D["optimizer"], lr=D["lr"], momentum=D["momentum"],
        schedule=D["schedule"], clip_norm=D["clip_norm"], epochs=D["epochs"], batch_size=D["batch_size"],
        shuffle=D["shuffle"], early_stopping=D["early_stopping"], monitor=D["monitor"], patience=D["patience"],
        min_delta=D["min_delta"], validation_fraction=D["validation_fraction"], standardize=D["standardize"],
        standardize_target=D["standardize_target"], dtype=D["dtype"], seed=D["seed"], options=None,
    ):  # fmt: skip
        store_params(self, locals())

    def _validate(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, y_numeric=True, multi_output=True)
        if reset:
            self._single_target = y.ndim == 1
        return X, y

    def _encoded(self, y, data):
        y = target_values(y, "regression", ARRAYS)
        if data.target_mean is not None:
            y = (y - data.target_mean) / data.target_std
        return y.astype(data.train.y.dtype)

    def _loaded(self, ckpt):
        self._single_target = len(ckpt.classes) == 1

    def partial_fit(self, X, y):
        """One more epoch over X, y, continuing the weights and optimizer state; the first call trains a new network
        for one epoch on all the rows."""
        fitted = getattr(self, "_net", None) is not None
        config = None if fitted else _first_partial_fit(self)
        X, y = self._validate(X, y, reset=not fitted)
        if fitted:
            self._more_epochs(X, y)
        else:
            self._train(config, X, y)
        return self

    def predict(self, X):
        """Predicted targets in their own units: (N,) when fit's y was (N,), else (N, K)."""
        scores = self._scores(X)
        mean, std = self._targets
        if mean is not None:
            scores = scores * std + mean
        return scores.ravel() if self._single_target else scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # several targets: y (N, K)
        return tags

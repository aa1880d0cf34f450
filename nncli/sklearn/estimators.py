"""NNClassifier and NNRegressor: nncli's trainer behind scikit-learn's estimator API (see nncli.sklearn)."""

import contextlib
import copyreg
import dataclasses
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from nncli.config import Config, config_from_dict, load_config
from nncli.data.dataset import Split, dataset_from_arrays, standardize
from nncli.errors import CheckpointError, ConfigError, DataError
from nncli.evaluation.evaluate import checked_scores, load_model
from nncli.nn.losses import LOSSES, Loss
from nncli.sklearn.params import ARRAYS, config_dict, params_of
from nncli.training.atomic import check_output
from nncli.training.checkpoint import save_checkpoint
from nncli.training.trainer import Trainer


def registered_loss(name):
    """The registered loss `name`: how a pickled network finds its loss again."""
    return LOSSES[name]


# A network holds its registered Loss, whose functions include lambdas: a fitted estimator pickles (joblib, copies)
# with its loss by name instead.
copyreg.pickle(Loss, lambda loss: (registered_loss, (loss.name,)))


class ParameterError(ConfigError, ValueError):
    """An estimator's parameters make an invalid config: the config's own message, as a ValueError (what
    scikit-learn's checks and tools expect of a bad parameter)."""


class FitDataError(DataError, ValueError):
    """The arrays given to fit cannot be trained on (too few samples of a class to split, one class, …)."""


def expected_failed_checks(estimator):
    """The scikit-learn estimator checks `estimator` is expected to fail, {check: reason}: what sklearn 1.6+ takes
    as check_estimator's and parametrize_with_checks' `expected_failed_checks` (tags no longer carry them)."""
    if estimator.dtype == "float32":
        return {
            "check_methods_subset_invariance": "in float32 a BLAS matrix product rounds a row's scores differently "
            "in batches of other sizes (a relative 1e-7, float32's precision; the check asks for 1e-7 absolute); "
            "dtype='float64' passes it",
        }
    return {}


@contextlib.contextmanager
def as_value_errors():
    """nncli's config and data errors inside, raised again as the ValueErrors above with the same message."""
    try:
        yield
    except ParameterError:
        raise
    except ConfigError as e:
        raise ParameterError(e.problems, e.source, hints=e.hints) from None
    except DataError as e:
        raise FitDataError(e.message, hints=e.hints) from None


def _warn(message):
    """A trainer's warning (early stopping's monitor without a validation split, …) as a Python UserWarning."""
    warnings.warn(message, UserWarning, stacklevel=4)


def store_params(estimator, params):
    """Keep each constructor argument unchanged under its own name, as scikit-learn requires of __init__ (`params`
    is the constructor's locals(); validation happens at fit)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class NNEstimator(BaseEstimator):
    """What both estimators share: parameters → config, fit through the Trainer in memory, scores, checkpoints."""

    _task = None  # the task of the losses the estimator takes
    _validation_metric = None  # the val_* metric of validation_scores_

    # parameters ↔ config

    def _params(self):
        return {name: getattr(self, name) for name in self._get_param_names()}

    def _config(self, source=ARRAYS):
        """The validated Config of the parameters; ParameterError (a ValueError) naming each bad key."""
        name = type(self).__name__
        with as_value_errors():
            config = config_from_dict(config_dict(self._params(), source), f"{name} parameters", default_name=name)
        if LOSSES[config.loss].task != self._task:
            takes = ", ".join(n for n, loss in LOSSES.items() if loss.task == self._task)
            said = f"loss: {config.loss!r} is a {LOSSES[config.loss].task} loss; {name} takes {takes}"
            raise ParameterError(said, f"{name} parameters")
        return config

    def to_config(self, source=None):
        """The config (a nested dict of plain YAML types) that `nncli train` runs to train what `fit` trains, with
        data.source `source` (default: a placeholder, fit's arrays); the parameters are validated first."""
        self._config()
        return config_dict(self._params(), ARRAYS if source is None else str(source))

    @classmethod
    def from_config(cls, path_or_config):
        """An estimator that trains what a config file (path), Config or config dict trains: its model, loss,
        regularization, optimizer, training loop, seed, data.val_fraction and data.standardize."""
        if isinstance(path_or_config, Config):
            config = path_or_config
        elif isinstance(path_or_config, dict):
            config = config_from_dict({"data": {"source": ARRAYS}, **path_or_config})
        else:
            config = load_config(path_or_config)
        return cls(**params_of(config, cls._get_param_names()))

    # training

    def fit(self, X, y):
        """Train a new network on X (N, D) and y for `epochs` (or until early stopping); returns self."""
        config = self._config()
        X, y = self._validate(X, y, reset=True)
        self._train(config, X, y)
        return self

    def _train(self, config, X, y):
        names = getattr(self, "feature_names_in_", None)
        self._net = self._trainer = self._checkpoint = None  # a fit that fails leaves the estimator unfitted
        with as_value_errors():
            data = dataset_from_arrays(X, y, config.data, config.seed, config.train.dtype, self._task, names)
            self._trainer = Trainer(config, data=data, command=f"{type(self).__name__}.fit", on_warning=_warn)
        self._run()

    def _run(self):
        """Run the trainer on; a diverged run (non-finite loss or weights) is a ValueError saying why."""
        trainer = self._trainer
        summary = trainer.run()
        if summary["status"] == "diverged":
            raise ValueError(summary["error"])
        data, rows = trainer.data, trainer.rows
        self._net, self._scaling, self._targets = (
            trainer.net,
            (data.mean, data.std),
            (data.target_mean, data.target_std),
        )
        self.loss_curve_ = [row["train_loss"] for row in rows]
        key = f"val_{self._validation_metric}"
        self.validation_scores_ = [row[key] for row in rows if key in row] or None
        self.n_iter_ = len(rows)

    def _more_epochs(self, X, y):
        """One more epoch over the rows X, y (standardized with the first fit's statistics), continuing the weights,
        the optimizer's state and the random streams; no validation split, no early stopping."""
        if getattr(self, "_trainer", None) is None:
            raise ValueError(
                f"partial_fit continues a {type(self).__name__} fitted in this process; this one was loaded from "
                f"checkpoint {self._checkpoint_path}, which it predicts with: call fit to train a new network"
            )
        trainer = self._trainer
        data = trainer.data
        rows = standardize(X, *self._scaling) if self._scaling[0] is not None else X
        with as_value_errors():
            targets = self._encoded(y, data)
        trainer.data = dataclasses.replace(
            data, train=Split(np.ascontiguousarray(rows, trainer.dtype), targets), val=None
        )
        cfg = trainer.config.train
        if cfg.early_stopping is not None or trainer.monitor != "train_loss":
            cfg.early_stopping, trainer.progress.best_value = None, None
            trainer.monitor, trainer.maximize = "train_loss", False
        cfg.epochs = trainer.progress.epochs_done + 1
        self._run()

    # predicting

    def _scores(self, X):
        """The network's output scores (N, K) float64 on X, standardized as in training (eval mode)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self._scaling[0] is not None:
            X = standardize(X, *self._scaling)
        with as_value_errors():
            return checked_scores(self._net, X, type(self).__name__, "X").astype(np.float64)

    def __sklearn_is_fitted__(self):
        return getattr(self, "_net", None) is not None

    # checkpoints

    def save(self, path, force=False):
        """Write the fitted network as a normal nncli checkpoint (`nncli eval` and `nncli predict` read it; give
        them the data with --data: the checkpoint's data.source names fit's arrays). An existing file is
        replaced only with `force`."""
        check_is_fitted(self)
        check_output(path, force)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None:
            trainer.write_checkpoint(path, trainer.rows[-1] if trainer.rows else {"epoch": 0})
            return
        ckpt, net = self._checkpoint, self._net
        save_checkpoint(
            path, dict(net.params), ckpt.meta, ckpt.norm_mean, ckpt.norm_std, ckpt.optimizer_state,
            (ckpt.target_mean, ckpt.target_std), net.running,
        )  # fmt: skip

    @classmethod
    def load(cls, path):
        """The fitted estimator of a checkpoint (saved by `save` or written by `nncli train`): it predicts and
        scores as `nncli predict` does; fit trains it afresh. A CSV run whose inputs are encoded (text columns,
        filled cells) is refused: the estimator's arrays are the network's inputs themselves."""
        net, ckpt, config = load_model(path)
        if ckpt.task != cls._task:
            raise CheckpointError(f"checkpoint {path}: holds a {ckpt.task} network; {cls.__name__} loads {cls._task}")
        encoding = ckpt.encoding
        if encoding is not None and (encoding.text_columns or encoding.missing not in ("error", "drop")):
            raise CheckpointError(
                f"checkpoint {path}: its inputs are encoded from CSV columns (one-hot text columns or filled "
                f"missing cells), which {cls.__name__} cannot do on arrays; predict with nncli's predict instead"
            )
        estimator = cls.from_config(config)
        estimator._net, estimator._trainer, estimator._checkpoint = net, None, ckpt
        estimator._scaling, estimator._targets = (ckpt.norm_mean, ckpt.norm_std), (ckpt.target_mean, ckpt.target_std)
        estimator._checkpoint_path = str(Path(path))
        estimator.n_features_in_ = ckpt.layer_sizes[0]
        if ckpt.meta.get("feature_names"):
            estimator.feature_names_in_ = np.asarray(ckpt.meta["feature_names"], dtype=object)
        estimator.n_iter_ = ckpt.epoch
        estimator._loaded(ckpt)
        return estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False  # the seed parameter fixes every random stream
        return tags

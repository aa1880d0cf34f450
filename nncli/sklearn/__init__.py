"""scikit-learn estimators over nncli: `NNClassifier` and `NNRegressor` train the same networks as `nncli train`.

The constructor's parameters mirror the config's keys and are validated, at fit, by the config's own model (the
same messages, raised as a ValueError: `ParameterError`). `fit(X, y)` trains on in-memory arrays through the same
Trainer and data code as a CSV run (nncli.data.dataset.dataset_from_arrays), writing nothing: the same rows, config
and seed give bit-identical weights. `to_config()` / `from_config()` turn an estimator into a config and back, and
`save(path)` / `load(path)` write and read a normal checkpoint. Needs the sklearn extra: pip install 'nncli[sklearn]'.
"""

from nncli.errors import require

require("sklearn.base", "sklearn", "nncli.sklearn")  # MissingExtra naming the extra, before the imports below

from nncli.sklearn.estimators import FitDataError, ParameterError, expected_failed_checks  # noqa: E402
from nncli.sklearn.models import NNClassifier, NNRegressor  # noqa: E402

__all__ = ["FitDataError", "NNClassifier", "NNRegressor", "ParameterError", "expected_failed_checks"]

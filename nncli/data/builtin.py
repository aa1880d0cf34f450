"""Built-in datasets: the lecture's toy generators (spiral, xor, circles, moons, blobs), a regression one (sine), a
multi-label one (attributes), and two small bundled sets.

Every generator draws from the `numpy.random.Generator` it is given and returns `X: (N, D) float64` and
`y: (N,) int64` class ids (sine: (N, 1) float targets; attributes: (N, K) of 0/1), built with array operations (no
loop over samples). Keyword names match the
`data:` config keys, so `generator_kwargs` passes the config's options straight through.

`digits` (UCI optical handwritten digits, 8x8 images) is stored in `data/digits.npz`; `iris` (Fisher's iris) in
`data/iris.csv`, read by the CSV loader in `nncli.data`. `data_file` finds the bundled files both in a source
checkout (`<repo>/data`) and in an installed copy (`<prefix>/share/nncli/data`, shipped as setuptools data-files).
"""

import inspect
import site
import sys
from pathlib import Path

import numpy as np

from nncli.data.arrays import check_budget, load_npz
from nncli.errors import DataError

DATA_DIRS = (
    Path(__file__).resolve().parents[2] / "data",
    Path(sys.prefix) / "share" / "nncli" / "data",
    Path(site.USER_BASE or "~").expanduser() / "share" / "nncli" / "data",
)
GENERATED_COPIES = 3  # float64 copies of X alive while a generator draws it and the split standardizes it
GENERATOR_OPTIONS = ("classes", "samples_per_class", "samples", "noise", "centers", "spread", "dimensions", "factor")


def data_file(name):
    """Path of a bundled data file (e.g. 'digits.npz'): the checkout's data/ first, then the installed share/ dirs."""
    for folder in DATA_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"bundled data file {name} not found in any of: {', '.join(map(str, DATA_DIRS))}; "
        f"reinstall nncli (pip install .) so its data files are installed"
    )


def spiral(classes=3, samples_per_class=100, noise=0.2, *, rng):
    """cs231n's spiral: class j is an arm r = linspace(0, 1, K), t = linspace(4j, 4(j+1), K) + noise·N(0, 1),
    X = [r sin t, r cos t]. Not linearly separable: the classic test that hidden layers help."""
    K = samples_per_class
    r = np.tile(np.linspace(0.0, 1.0, K), classes)
    t = (np.arange(classes)[:, None] * 4.0 + np.linspace(0.0, 4.0, K)).ravel()
    t += rng.standard_normal(classes * K) * noise
    X = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return X, np.repeat(np.arange(classes, dtype=np.int64), K)


def xor(samples=400, noise=0.1, *, rng):
    """Points uniform in [-1, 1]^2, class 1 where the coordinates' signs differ; Gaussian noise added after labelling."""
    X = rng.uniform(-1.0, 1.0, size=(samples, 2))
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    return X + rng.standard_normal(X.shape) * noise, y


def circles(samples=400, noise=0.05, factor=0.5, *, rng):
    """Two concentric circles: class 0 on the unit circle, class 1 on radius `factor`; Gaussian noise added."""
    n_out = samples - samples // 2
    angle = np.concatenate(
        [np.linspace(0, 2 * np.pi, n_out, endpoint=False), np.linspace(0, 2 * np.pi, samples - n_out, endpoint=False)]
    )
    radius = np.where(np.arange(samples) < n_out, 1.0, factor)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    y = (np.arange(samples) >= n_out).astype(np.int64)
    return X + rng.standard_normal(X.shape) * noise, y


def moons(samples=400, noise=0.1, *, rng):
    """Two interleaving half circles: class 0 is (cos a, sin a), class 1 is (1 - cos a, 0.5 - sin a), a in [0, pi]."""
    n_out = samples - samples // 2
    a_out = np.linspace(0, np.pi, n_out)
    a_in = np.linspace(0, np.pi, samples - n_out)
    X = np.concatenate(
        [np.column_stack([np.cos(a_out), np.sin(a_out)]), np.column_stack([1 - np.cos(a_in), 0.5 - np.sin(a_in)])]
    )
    y = (np.arange(samples) >= n_out).astype(np.int64)
    return X + rng.standard_normal(X.shape) * noise, y


def blobs(samples=300, centers=3, spread=1.0, dimensions=2, classes=None, *, rng):
    """Gaussian clusters (std `spread`) around `centers` points drawn uniformly in [-10, 10]^dimensions.

    Samples are dealt to the centres in turn; centre i has class i mod `classes` (default: one class per centre),
    so classes < centers gives classes made of several separate clusters.
    """
    classes = centers if classes is None else classes
    if classes > centers:
        raise DataError(f"blobs: classes ({classes}) must not exceed centers ({centers}): each class needs a centre")
    middle = rng.uniform(-10.0, 10.0, size=(centers, dimensions))
    which = np.arange(samples) % centers
    X = middle[which] + rng.standard_normal((samples, dimensions)) * spread
    return X, (which % classes).astype(np.int64)


def sine(samples=400, noise=0.1, *, rng):
    """Regression: x uniform in [−π, π], y = sin(x) + noise·N(0, 1): X (N, 1), y (N, 1) float64. A net that
    learns sin exactly leaves an RMSE of `noise`."""
    X = rng.uniform(-np.pi, np.pi, size=(samples, 1))
    return X, np.sin(X) + noise * rng.standard_normal((samples, 1))


def attributes(samples=400, dimensions=4, classes=3, noise=0.1, *, rng):
    """Attributes (multi-label): X ~ N(0, 1) of `dimensions` features; attribute k (of `classes`) is on where
    x·w_k + noise·N(0, 1) > 0 for a random direction w_k: y (N, classes) of 0.0 and 1.0, several on at once."""
    X = rng.standard_normal((samples, dimensions))
    directions = rng.standard_normal((dimensions, classes))
    logits = X @ directions + noise * rng.standard_normal((samples, classes))
    return X, (logits > 0).astype(np.float64)


def digits():
    """UCI optical handwritten digits: X (1797, 64) float64 pixel counts 0..16 of 8x8 images, y (1797,) digits 0..9."""
    arrays = load_npz(data_file("digits.npz"), ["X", "y"])
    return arrays["X"].astype(np.float64), arrays["y"].astype(np.int64)


GENERATORS = {
    "spiral": spiral,
    "xor": xor,
    "circles": circles,
    "moons": moons,
    "blobs": blobs,
    "sine": sine,
    "attributes": attributes,
}
TARGETS = {"sine": "regression", "attributes": "attributes"}  # the built-ins whose targets are not class ids
BUILTINS = (*GENERATORS, "digits", "iris")


def generator_kwargs(name, options):
    """The options set (not None) in `options` (the data config) as keyword arguments for built-in `name`.

    Raises DataError for an option the built-in does not take, so a misplaced key never goes silently unused.
    """
    given = {key: getattr(options, key, None) for key in GENERATOR_OPTIONS}
    given = {key: value for key, value in given.items() if value is not None}
    fn = GENERATORS.get(name)
    allowed = [p for p in inspect.signature(fn).parameters if p != "rng"] if fn else []
    stray = [key for key in given if key not in allowed]
    if stray:
        takes = f"its options are {', '.join(allowed)}" if allowed else "it takes no generator options"
        raise DataError(f"data.{stray[0]} does not apply to data.source {name!r}: {takes}")
    if fn:
        _check_size(name, {**_defaults(fn), **given})
    return given


def _defaults(fn):
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.default is not p.empty}


def _check_size(name, options):
    """Refuse, before drawing anything, a generated dataset that would not fit in the memory budget."""
    n = options["samples"] if "samples" in options else options["classes"] * options["samples_per_class"]
    d = options.get("dimensions", 2)
    check_budget(
        int(n) * int(d) * 8 * GENERATED_COPIES,
        f"data.source {name} with {int(n):,} samples of {int(d):,} features",
        DataError,
    )

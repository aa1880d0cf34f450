"""The sweep file: a base config, a search space over its dotted keys (space.py), and how to search it.

    base: configs/digits-2layer.yaml    # a config file (or an inline mapping)
    method: tpe                         # grid | random | tpe
    trials: 24                          # grid: at most (and by default) every combination
    metric: val_accuracy                # any split_metric the base's loss records (default: val_accuracy for
                                        # classification, else val_loss); accuracy, r2, … maximized, loss, rmse … minimized
    seeds: [0, 1]                       # each trial trains once per seed (config key `seed`); or "0-2"; at most 1000
    space:
      optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}
      model.hidden: {choice: [[64], [128]]}
    prune: median                       # none | median | {median: {startup_trials: 3, warmup_epochs: 3}}
    sampler_seed: 0
    output: runs/sweeps/digits          # default: runs/sweeps/<sweep file stem>

Everything is validated before anything runs, every problem reported at once: each space key is applied to the
base config with its extreme and listed values, so a key that is not a config key or a range the config refuses
is named exactly as `nncli train` would name it.
"""

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from nncli.config import config_from_dict, read_config_file, resolve_data_paths
from nncli.config.safe_yaml import read_yaml_file
from nncli.errors import ConfigError, show_value
from nncli.nn.losses import LOSSES
from nncli.nn.metrics import maximized, monitors
from nncli.studies.seed_spec import SeedsError, parse_seeds
from nncli.studies.space import parse_space

METHODS = ("grid", "random", "tpe")
METRICS = {name: maximized(name) for name in monitors()}  # maximize?
KEYS = ("base", "method", "trials", "metric", "seeds", "space", "prune", "sampler_seed", "output")
DEFAULT_TRIALS = 20
PRUNE_DEFAULTS = {"startup_trials": 3, "warmup_epochs": 3}
MAX_TRIALS = 100_000


@dataclass
class Sweep:
    """A validated sweep file; `base_raw` is the base config as a plain dict, `stem` names the study."""

    path: Path
    stem: str
    base: object
    base_raw: dict
    base_name: str
    method: str
    trials: int
    metric: str
    seeds: list
    space: list
    prune: dict | None
    sampler_seed: int
    output: str

    @property
    def maximize(self):
        return METRICS[self.metric]

    def as_dict(self):
        """The resolved sweep file, as written to the sweep directory's sweep.yaml."""
        prune = "none" if self.prune is None else {"median": dict(self.prune)}
        return {
            "base": self.base,
            "method": self.method,
            "trials": self.trials,
            "metric": self.metric,
            "seeds": list(self.seeds),
            "space": {p.key: {p.kind: p.args} for p in self.space},
            "prune": prune,
            "sampler_seed": self.sampler_seed,
            "output": self.output,
        }

    def config(self, params, **top):
        """The base config with `params` ({dotted key: value}) applied and top-level keys (seed, name) set."""
        raw = dict(self.base_raw, **top)
        return config_from_dict(raw, str(self.path), _overrides(params), default_name=self.base_name)


def _overrides(params):
    """`params` as the KEY=VALUE overrides `nncli train` takes, each value JSON (which YAML reads back as it was)."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def _resolve_base(base, sweep_path, problems):
    """(raw dict, default name) of the base, (None, None) after adding its problems: a path (next to the sweep file,
    else, as before that rule, from the current directory) or an inline mapping (its data paths next to the sweep file)."""
    if isinstance(base, dict):
        return resolve_data_paths(dict(base), sweep_path.parent, legacy_dir=Path.cwd()), "base"
    if not isinstance(base, str) or not base:
        problems.append(f"base: expected a config file path or a mapping, got {show_value(base)}")
        return None, None
    path = Path(base)
    if not path.is_absolute() and ((sweep_path.parent / path).exists() or not path.exists()):
        path = sweep_path.parent / path
    if not path.exists():
        problems.append(f"base: {base}: file not found (looked next to the sweep file and in the current directory)")
        return None, None
    try:
        raw = read_config_file(path)
        config_from_dict(raw, str(path), default_name=path.stem)  # the base alone must be a valid config
    except ConfigError as e:
        problems.extend(f"base: {p}" for p in e.problems)
        return None, None
    return raw, path.stem


def _seeds(value, problems):
    try:
        return parse_seeds(value if isinstance(value, list) else str(value), option="seeds")
    except SeedsError as e:
        problems.append(str(e))
        return [0]


def _prune(value, problems):
    if value in (None, "none", False):
        return None
    options = {}
    if isinstance(value, dict) and len(value) == 1 and "median" in value:
        options = value["median"] or {}
        unknown = [k for k in options if k not in PRUNE_DEFAULTS] if isinstance(options, dict) else ["?"]
        if unknown:
            problems.append(
                f"prune.median: expected a mapping with {', '.join(PRUNE_DEFAULTS)}, got {show_value(options)}"
            )
            return None
        bad = [k for k, v in options.items() if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0)]
        if bad:
            problems.append(f"prune.median.{bad[0]}: expected a whole number >= 0, got {show_value(options[bad[0]])}")
            return None
    elif value != "median":
        problems.append(
            f"prune: {show_value(value)} is not one of none, median (or {{median: {{startup_trials: N, "
            f"warmup_epochs: N}}}})"
        )
        return None
    return dict(PRUNE_DEFAULTS, **options)


def _one_of(key, value, allowed, problems):
    """`value`, with a problem noted when it is not one of `allowed` (a list or a mapping is not, and no crash)."""
    if value not in tuple(allowed):
        problems.append(f"{key}: {show_value(value)} is not one of {', '.join(allowed)}")
    return value


def _sampler_seed(value, problems):
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32):
        problems.append(f"sampler_seed: expected an integer from 0 to 2**32 - 1, got {show_value(value)}")
    return value


def _base_config(base_raw, base_name):
    """The base as a Config, or None when it is invalid (its problems are reported on their own)."""
    try:
        return config_from_dict(base_raw, None, default_name=base_name)
    except ConfigError:
        return None


def _default_metric(base_raw, base_name):
    """val_accuracy for a classification base (the course's Solver keeps its best validation accuracy), else
    val_loss."""
    base = None if base_raw is None else _base_config(base_raw, base_name)
    task = "classification" if base is None else LOSSES[base.loss].task
    return "val_accuracy" if task == "classification" else "val_loss"


def _base_problems(base_raw, base_name, space, metric):
    """What the base config refuses: each swept value applied to it (each problem once, under its space key), and
    a val_* metric when it has no validation split."""
    problems, seen = [], set()
    for param in space:
        for value in param.samples():
            try:
                config_from_dict(base_raw, None, _overrides({param.key: value}), default_name=base_name)
            except ConfigError as e:
                for p in e.problems:
                    if p not in seen:
                        seen.add(p)
                        problems.append(f"space.{param.key}: {p}")
    base = _base_config(base_raw, base_name)
    if base is not None and metric in tuple(METRICS):
        task = LOSSES[base.loss].task
        if metric not in monitors(task=task):
            problems.append(
                f"metric: {metric} is not recorded for the base's loss {base.loss!r} ({task}); its metrics are "
                f"{', '.join(monitors(task=task))}"
            )
    if base is not None and metric in tuple(METRICS) and metric.startswith("val_"):
        data = base.data
        if data.val_fraction == 0 and data.val_source is None:
            problems.append(
                f"metric: {metric} needs a validation split, and the base has data.val_fraction 0 "
                f"and no data.val_source; use train_{metric[4:]} or give the base a val split"
            )
    return problems


def _trials(value, method, space, problems):
    """How many trials: `value`, by default every combination of a grid (else DEFAULT_TRIALS), at most the grid's."""
    combos = None
    if method == "grid":
        not_choice = [p.key for p in space if p.kind != "choice"]
        if not_choice:
            problems.append(
                f"space: grid search needs a choice (list of values) for every key; "
                f"{', '.join(not_choice)} {'is a range' if len(not_choice) == 1 else 'are ranges'}"
            )
        else:
            combos = len(list(itertools.product(*(p.args for p in space))))
    trials = (combos or DEFAULT_TRIALS) if value is None else value
    if not (isinstance(trials, int) and not isinstance(trials, bool) and 1 <= trials <= MAX_TRIALS):
        problems.append(f"trials: expected an integer from 1 to {MAX_TRIALS}, got {show_value(trials)}")
    elif combos is not None and trials > combos:
        problems.append(f"trials: {trials} is more than the grid's {combos} combinations")
    return trials


def parse_sweep(raw, path, output=None):
    """Validate a sweep file's plain dict into a Sweep; every problem at once in one ConfigError.

    `output` (a directory) replaces the file's own output key.
    """
    path = Path(path)
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a mapping of sweep keys", str(path), "sweep file")
    problems = [f"{key}: unknown key (allowed: {', '.join(KEYS)})" for key in raw if key not in KEYS]
    if "base" not in raw:
        problems.append("base: required key is missing (a config file path or an inline config)")
    base_raw, base_name = _resolve_base(raw.get("base"), path, problems) if "base" in raw else (None, None)
    method = _one_of("method", raw.get("method", "random"), METHODS, problems)
    metric = _one_of("metric", raw.get("metric", _default_metric(base_raw, base_name)), METRICS, problems)
    seeds = _seeds(raw.get("seeds", [0]), problems)
    prune = _prune(raw.get("prune", "none"), problems)
    sampler_seed = _sampler_seed(raw.get("sampler_seed", 0), problems)
    space = parse_space(raw.get("space"), problems)
    if base_raw is not None:
        problems += _base_problems(base_raw, base_name, space, metric)
    trials = _trials(raw.get("trials"), method, space, problems)
    out = output if output is not None else raw.get("output", f"runs/sweeps/{path.stem}")
    if not isinstance(out, (str, Path)) or not str(out):
        problems.append(f"output: expected a directory path, got {show_value(out)}")
    if problems:
        raise ConfigError(problems, str(path), "sweep file")
    return Sweep(
        path=path,
        stem=path.stem,
        base=raw["base"],
        base_raw=base_raw,
        base_name=base_name,
        method=method,
        trials=trials,
        metric=metric,
        seeds=seeds,
        space=space,
        prune=prune,
        sampler_seed=sampler_seed,
        output=str(out),
    )


def load_sweep(path, output=None):
    """Read and validate a sweep file (YAML, read like a config: safe loader, 1e-3 is a number)."""
    path = Path(path)
    try:
        raw = read_yaml_file(path, "a sweep file is a few hundred bytes")
    except ConfigError as e:  # the reader speaks of configs; this is a sweep file
        raise ConfigError(e.problems, what="sweep file") from None
    if raw is None:
        raise ConfigError(f"{path}: is empty; a sweep needs base and space", what="sweep file")
    return parse_sweep(raw, path, output)


def sweep_changes(old, new):
    """Keys of two resolved sweep files (as_dict) that differ, space keys as space.<dotted key>."""
    changed = [k for k in KEYS if k not in ("space", "output") and old.get(k) != new.get(k)]
    a, b = old.get("space") or {}, new.get("space") or {}
    changed += [f"space.{k}" for k in list(a) + [k for k in b if k not in a] if a.get(k) != b.get(k)]
    return changed

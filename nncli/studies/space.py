"""The search space of a sweep: dotted config keys, each with a distribution Optuna samples from.

    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}   # a range: log_uniform | uniform | int | log_int
    model.hidden: {choice: [[64], [128]]}           # or a list of values; a bare list is a choice too

Shared by the sweep file's parser (sweep_file.py) and the sweep plot, which reads a sweep directory's sweep.yaml
with it, so both understand a space the same way.
"""

import difflib
import json
from dataclasses import dataclass

from nncli.errors import show_value

DISTRIBUTIONS = ("log_uniform", "uniform", "int", "log_int", "choice")


@dataclass
class Param:
    """One swept key: `kind` is one of DISTRIBUTIONS, `args` is [low, high] or the list of choices."""

    key: str
    kind: str
    args: list

    @property
    def encoded(self):
        """Choices as Optuna stores them: scalars as they are, lists and mappings as JSON text."""
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in self.args):
            return list(self.args)
        return [json.dumps(v) for v in self.args]

    def decode(self, value):
        """The config value for Optuna's stored `value` (undoes the JSON encoding of list choices)."""
        if self.kind == "choice" and self.encoded != self.args:
            return json.loads(value)
        return value

    def distribution(self):
        """The Optuna distribution this key is sampled from (a range's log scale included)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(self.encoded)
        low, high = self.args
        if self.kind in ("int", "log_int"):
            return IntDistribution(low, high, log=self.kind == "log_int")
        return FloatDistribution(low, high, log=self.kind == "log_uniform")

    def samples(self):
        """Values that validating the config with must pass: both ends of a range, or every choice."""
        return list(self.args)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_param(key, spec, problems):
    """A Param from `{kind: args}` or a bare list (choices); None (with problems noted) when malformed."""
    where = f"space.{key}"
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        problems.append(
            f"{where}: expected one of {{{': ..., '.join(DISTRIBUTIONS)}: ...}} "
            f"or a list of values, got {show_value(spec)}"
        )
        return None
    ((kind, args),) = spec.items()
    if kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{where}: {show_value(kind)} is not a distribution ({', '.join(DISTRIBUTIONS)}){hint}")
        return None
    if kind == "choice":
        if not isinstance(args, list) or not args:
            problems.append(f"{where}: choice needs a non-empty list of values, got {show_value(args)}")
            return None
        if len({json.dumps(v, sort_keys=True) for v in args}) != len(args):
            problems.append(f"{where}: choice lists a value twice: {show_value(args)}")
            return None
        return Param(key, kind, list(args))
    if not (isinstance(args, list) and len(args) == 2 and all(map(_number, args))):
        problems.append(f"{where}: {kind} needs [low, high] (two numbers), got {show_value(args)}")
        return None
    low, high = args
    if kind in ("int", "log_int"):
        if not all(float(v).is_integer() for v in args):
            problems.append(f"{where}: {kind} needs whole numbers, got {show_value(args)}")
            return None
        low, high = int(low), int(high)
    else:
        low, high = float(low), float(high)
    if not low < high:
        problems.append(f"{where}: {kind} needs low < high, got {show_value(args)}")
    elif kind.startswith("log") and low <= 0:
        problems.append(f"{where}: {kind} needs low > 0 (a log scale), got {show_value(args)}")
    else:
        return Param(key, kind, [low, high])
    return None


def parse_space(space_raw, problems):
    """The Params of a `space` mapping (dotted key → distribution), in its order; problems noted for the rest."""
    if space_raw == {}:
        problems.append(
            "space: is empty; name at least one config key to search, e.g. "
            "optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}"
        )
        return []
    if not isinstance(space_raw, dict):
        problems.append(
            f"space: expected a mapping of dotted config keys to distributions, got {show_value(space_raw)}"
        )
        return []
    params = []
    for key, spec in space_raw.items():
        why = _set_by_sweep(str(key))
        if why:
            problems.append(f"space.{key}: cannot be swept: {why}")
        elif param := parse_param(str(key), spec, problems):
            params.append(param)
    return params


def _set_by_sweep(key):
    """Why a config key cannot be swept (the sweep sets it for every run itself), or None."""
    if key == "seed":
        return "each run's seed comes from the sweep's seeds list (seeds: [0, 1, …])"
    if key == "name" or key.startswith("output."):
        return "the sweep names each run and its directory after its trial and seed"
    return None

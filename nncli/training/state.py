"""The training loop's state: everything besides the weights that a resume needs to continue bit-identically.

A checkpoint stores it as meta["state"], a JSON object with the loop's own keys (`TrainState`'s fields) beside
those of the parts the loop drives (`Carried`): the optimizer's counters, the dropout generator, the warnings
given so far and, with train.diagnostics, the diagnostics' accumulators. The keys and value types are the
checkpoint format's; checkpoints written by any nncli of format 1 or 2 read back with `TrainState.from_meta`,
which checks every field (a tampered or hand-made state is refused naming the field, never half-resumed).
"""

import math
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np

from nncli.errors import CheckpointError, show_value


class Carried(NamedTuple):
    """The state of the parts the loop drives, saved beside the loop's own: the optimizer's counters ({"t": …};
    its arrays go into the checkpoint as opt_<name>), the dropout generator's bit_generator.state, the warnings so
    far, and the diagnostics' accumulators (None without train.diagnostics)."""

    optimizer: dict
    net_rng: dict
    warnings: list
    diagnostics: dict | None = None


@dataclass
class TrainState:
    """Where the loop is. `step` batches of epoch `epochs_done` + 1 are done when a stop fell inside an epoch,
    with `partial` = the running sums of their metrics (nncli.nn.tally: [loss sum, correct count] for
    classification); `epoch_rng` is the shuffling generator's state when that
    epoch began (resume redraws the same permutation). `best_value`/`best_row` are the monitor's best epoch so
    far (best.npz), `stale` the epochs since it last improved by min_delta (early stopping), `wall_seconds` the
    training time over every resume."""

    epochs_done: int = 0
    step: int = 0
    partial: list = field(default_factory=lambda: [0.0, 0])
    best_value: float | None = None
    best_row: dict | None = None
    stale: int = 0
    wall_seconds: float = 0.0
    epoch_rng: dict = field(kw_only=True)

    def to_meta(self, carried):
        """meta["state"]: the loop's keys (in field order, the order nncli has always written them), then `carried`'s; the
        diagnostics key only when there are diagnostics."""
        loop = {f.name: getattr(self, f.name) for f in fields(self)}
        state = dict(loop, optimizer=carried.optimizer, net_rng=carried.net_rng, warnings=carried.warnings)
        if carried.diagnostics is not None:
            state["diagnostics"] = carried.diagnostics
        return state

    @classmethod
    def from_meta(cls, state, fits):
        """(TrainState, Carried) from a checkpoint's meta["state"], checked field by field against `fits` (what the
        run being resumed allows); CheckpointError naming the first bad field and what is allowed. warnings and
        diagnostics may be absent (older checkpoints, or a run without diagnostics)."""
        if not isinstance(state, dict) or not state:
            raise CheckpointError(f"meta.state must be a non-empty object, got {show_value(state)}")
        for name, check in _checks(fits).items():
            if name not in state:
                if name in ("warnings", "diagnostics"):
                    continue
                raise CheckpointError(f"meta.state.{name} is missing")
            if (allowed := check(state[name])) is not None:
                raise CheckpointError(f"meta.state.{name} must be {allowed}, got {show_value(state[name])}")
        if (state["best_value"] is None) != (state["best_row"] is None):
            raise CheckpointError("meta.state.best_value and best_row must both be null or both be set")
        loop = cls(**{f.name: state[f.name] for f in fields(cls)})
        carried = Carried(
            state["optimizer"], state["net_rng"], list(state.get("warnings", [])), state.get("diagnostics")
        )
        return loop, carried


class Fits(NamedTuple):
    """What a checkpoint's state must fit to resume a run: the epoch the checkpoint is of (meta.epoch), the steps
    and samples of one epoch, and the hidden layers' widths (the diagnostics' accumulators)."""

    epoch: int
    steps: int
    samples: int
    hidden: tuple


def _int(low, high=None):
    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
        return None if ok else f"an integer from {low}" + (f" to {high}" if high is not None else "")

    return check


def _number(value, low=None):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= low


def _rng_state(value):
    """None when `value` is a PCG64 bit_generator.state that a generator accepts."""
    try:
        np.random.PCG64().state = value
    except (TypeError, ValueError, KeyError, OverflowError):
        return "a PCG64 bit_generator.state (an object with bit_generator, state, has_uint32, uinteger)"
    return None


def _checks(fits):
    """meta.state's fields, each with a check returning what is allowed when the value is not (None when it is)."""
    done = f"meta.epoch ({fits.epoch}), the epochs checkpoint.npz has trained (a best.npz copied over it is not)"
    steps = f"a step of an epoch: 0 to {fits.steps - 1} (an epoch of {fits.samples} samples has {fits.steps} steps)"

    def partial(v):
        if isinstance(v, list) and len(v) == 2:  # classification: [loss sum, correct count]
            ok = _number(v[0], 0) and _int(0, fits.samples)(v[1]) is None
        else:  # regression and attributes: [loss sum, the task's running sums…]
            ok = isinstance(v, list) and len(v) > 2 and _number(v[0], 0) and all(_number(x, -math.inf) for x in v)
        classes = f"[loss sum ≥ 0, correct count 0 to {fits.samples}]"
        return None if ok else f"{classes} (regression, attributes: [loss sum ≥ 0, the task's finite running sums…])"

    return {
        "epochs_done": lambda v: None if v == fits.epoch and _int(0)(v) is None else done,
        "step": lambda v: None if _int(0, fits.steps - 1)(v) is None else steps,
        "partial": partial,
        "best_value": lambda v: None if v is None or _number(v, -math.inf) else "a finite number or null",
        "best_row": lambda v: None if v is None or isinstance(v, dict) else "a metrics row (an object) or null",
        "stale": _int(0),
        "wall_seconds": lambda v: None if _number(v, 0) else "a finite number of seconds ≥ 0",
        "epoch_rng": _rng_state,
        "optimizer": lambda v: None if isinstance(v, dict) and _int(0)(v.get("t")) is None else '{"t": steps ≥ 0}',
        "net_rng": _rng_state,
        "warnings": lambda v: None if isinstance(v, list) and all(isinstance(w, str) for w in v) else "a list of text",
        "diagnostics": lambda v: _diagnostics(v, fits.hidden),
    }


def _per_unit(values, width):
    return isinstance(values, list) and len(values) == width and all(isinstance(x, (bool, int, float)) for x in values)


def _diagnostics(value, hidden):
    """None when `value` is the diagnostics' accumulators for hidden layers of widths `hidden` (or null)."""
    allowed = "null or {active, saturated: {layer: one value per unit}, samples ≥ 0, warned: [text]}"
    if value is None:
        return None
    if not isinstance(value, dict) or _int(0)(value.get("samples")) is not None:
        return allowed
    layers = {str(n): width for n, width in enumerate(hidden, start=1)}
    for key in ("active", "saturated"):
        counts = value.get(key)
        if not isinstance(counts, dict) or not all(_per_unit(c, layers.get(n)) for n, c in counts.items()):
            return allowed
    warned = value.get("warned")
    return None if isinstance(warned, list) and all(isinstance(w, str) for w in warned) else allowed

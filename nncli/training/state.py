"""The training loop's state: everything besides the weights that a resume needs to continue bit-identically.

A checkpoint stores it as meta["state"], a JSON object with the loop's own keys (`TrainState`'s fields) beside
those of the parts the loop drives (`Carried`): the optimizer's counters, the dropout generator, the warnings
given so far and, with train.diagnostics, the diagnostics' accumulators. The keys and value types are the
checkpoint format's; checkpoints written by any nncli of format 1 or 2 read back with `TrainState.from_meta`.
"""

from dataclasses import dataclass, field, fields
from typing import NamedTuple


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
    with `partial` = [loss sum, correct count] over them; `epoch_rng` is the shuffling generator's state when that
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
    def from_meta(cls, state):
        """(TrainState, Carried) from a checkpoint's meta["state"]; warnings and diagnostics may be absent (older
        checkpoints, or a run without diagnostics)."""
        loop = cls(**{f.name: state[f.name] for f in fields(cls)})
        carried = Carried(
            state["optimizer"], state["net_rng"], list(state.get("warnings", [])), state.get("diagnostics")
        )
        return loop, carried

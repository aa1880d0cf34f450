"""Learning-rate schedules and their registry `SCHEDULES` (the config's `optimizer.schedule` kinds).

A schedule gives the rate of an epoch (counted from 0) as a pure function of the epoch, so resuming is exact.
Each entry declares its parameters with defaults, bounds and descriptions; the config's schedule sections are
built from them, so a schedule is defined in this file alone.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """A schedule parameter: name, default, kind (int: a number of epochs, or float), bounds (ge/gt/le/lt)."""

    name: str
    default: float
    kind: type
    description: str
    bounds: dict


@dataclass(frozen=True)
class Schedule:
    """A registered schedule: `rate(lr, epoch, epochs, **params)`, its formula in words and its parameters.

    `spans_run`: the rate of an epoch depends on the run's length (cosine), so changing train.epochs on resume
    moves the curve."""

    name: str
    summary: str
    formula: str
    rate: Callable
    params: tuple = ()
    spans_run: bool = False


SCHEDULES = {}


def register_schedule(schedule):
    """Add `schedule` (a `Schedule`) to the registry under its name."""
    SCHEDULES[schedule.name] = schedule
    return schedule


register_schedule(Schedule("constant", "A fixed learning rate.", "The learning rate stays lr.", lambda lr, e, n: lr))
register_schedule(
    Schedule(
        "step",
        "Multiply the rate by gamma every `every` epochs.",
        "lr·gamma^⌊epoch/every⌋.",
        lambda lr, e, n, every, gamma: lr * gamma ** (e // every),
        (
            Param("every", 10, int, "Epochs between decays.", {"ge": 1}),
            Param("gamma", 0.5, float, "Factor applied every `every` epochs.", {"gt": 0, "le": 1}),
        ),
    )
)
register_schedule(
    Schedule(
        "exponential",
        "Multiply the rate by gamma every epoch.",
        "lr·gamma^epoch.",
        lambda lr, e, n, gamma: lr * gamma**e,
        (Param("gamma", 0.95, float, "Factor applied every epoch.", {"gt": 0, "le": 1}),),
    )
)
register_schedule(
    Schedule(
        "cosine",
        "Anneal the rate along half a cosine.",
        "Half a cosine from lr down to min_lr over the run.",
        lambda lr, e, n, min_lr: min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * e / max(n, 1))),
        (
            Param(
                "min_lr",
                0.0,
                float,
                "The rate the anneal reaches at the end of the run (the last epoch runs just above it).",
                {"ge": 0},
            ),
        ),
        spans_run=True,
    )
)


def learning_rate(lr, epoch, epochs, name="constant", **params):
    """The learning rate of `epoch` out of `epochs` under the schedule `name`; missing params take their defaults.

    constant: lr · step: lr·gamma^⌊epoch/every⌋ · exponential: lr·gamma^epoch ·
    cosine: min_lr + (lr − min_lr)·(1 + cos(π·epoch/epochs))/2, from lr down towards min_lr.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; the schedules are {', '.join(SCHEDULES)}")
    schedule = SCHEDULES[name]
    values = {p.name: params.get(p.name, p.default) for p in schedule.params}
    unknown = sorted(set(params) - set(values))
    if unknown:
        raise ValueError(f"schedule {name} takes no parameter {', '.join(map(repr, unknown))}")
    return schedule.rate(lr, epoch, epochs, **values)

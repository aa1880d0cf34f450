"""The config's `loss_weights`: null, "balanced", or {label: weight} (resolved on the data by nncli.nn.weights)."""

import math
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from nncli.config.fields import Integer, Number, _invalid
from nncli.errors import show_value


def _loss_weights(value):
    """`loss_weights`: null, "balanced", or a non-empty {label: weight} with int or text labels and finite weights
    > 0; one message naming the offending label or weight instead of one per branch of the union."""
    if value is None or value == "balanced":
        return value
    if not isinstance(value, dict) or not value:
        raise _invalid(
            f"expected 'balanced' or a mapping {{label: weight}} with at least one label, got {show_value(value)}"
        )
    for label, weight in value.items():
        if isinstance(label, bool):
            raise _invalid(
                f"label {show_value(label)}: YAML reads an unquoted yes, no, true, false, on or off as a boolean; "
                f'quote a text label ("yes": 5.0)'
            )
        if not isinstance(label, (int, str)):
            raise _invalid(f"label {show_value(label)}: a label is an integer or a text, as written in the data")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < math.inf:
            raise _invalid(
                f"label {show_value(label)}: its weight must be a finite number > 0, got {show_value(weight)}"
            )
    return {label: float(weight) for label, weight in value.items()}


Weight = Annotated[Number, Field(gt=0)]
LossWeights = Annotated[
    Literal["balanced"] | Annotated[dict[Integer | str, Weight], Field(min_length=1)] | None,
    BeforeValidator(_loss_weights),
]

"""The value types a config is made of: strict numbers, whole-number integers, paths, batch sizes, and names
checked against a registry at validation time (so the allowed values are the registry's, wherever it grew)."""

import math
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from nncli.errors import show_value

MAX_EPOCHS = 1_000_000
MAX_SAMPLES = 10_000_000
MAX_WIDTH = 100_000


def _invalid(message):
    """A validation error whose text is exactly `message` (safe for values containing braces)."""
    return PydanticCustomError("nncli", "{message}", {"message": message})


def _whole(value):
    """Let an integer key take a whole float (1e3 -> 1000); refuse inf/nan here so they read as range errors."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(f"must be a finite number, got {show_value(value)}")
        if value.is_integer():
            return int(value)
    return value


def _batch_size(value):
    """A positive integer, or "full" for full-batch gradient descent."""
    value = _whole(value)
    if value == "full" or (type(value) is int and 1 <= value <= MAX_SAMPLES):
        return value
    raise _invalid(f"expected an integer from 1 to {MAX_SAMPLES} or 'full', got {show_value(value)}")


def _path_text(value):
    """A file path: non-empty and free of NUL bytes (which no file system accepts)."""
    if isinstance(value, str) and (not value or "\0" in value):
        raise _invalid(f"expected a file path, got {show_value(value)}")
    return value


Integer = Annotated[int, BeforeValidator(_whole)]
Number = Annotated[float, Field(allow_inf_nan=False)]
PathText = Annotated[str, BeforeValidator(_path_text)]
Fraction = Annotated[Number, Field(ge=0, lt=1)]
BatchSize = Annotated[Union[Annotated[int, Field(ge=1, le=MAX_SAMPLES)], Literal["full"]], BeforeValidator(_batch_size)]


class Section(BaseModel):
    """A block of the config: unknown keys and loose types are errors, never silently ignored or coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Choice:
    """Annotation for a name that must be a key of a registry (or of what a function returns): validated when a
    config is read and listed as the JSON Schema's enum when the schema is made, so a newly registered
    activation, loss or optimizer is allowed everywhere at once."""

    def __init__(self, names):
        self.names = names if callable(names) else (lambda: list(names))

    def allowed(self):
        return list(self.names())

    def check(self, value):
        allowed = self.allowed()
        if not isinstance(value, str) or value not in allowed:
            raise _invalid(f"{show_value(value)} is not one of {', '.join(allowed)}")
        return value

    def __get_pydantic_json_schema__(self, core_schema, handler):
        schema = handler(core_schema)
        schema["enum"] = self.allowed()
        return schema


def choice(names):
    """A string type whose allowed values are `names` (a registry dict, or a function returning the names)."""
    allowed = Choice(names)
    return Annotated[str, BeforeValidator(allowed.check), allowed]

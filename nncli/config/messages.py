"""One `dotted.path: message` line per pydantic error, in the words of the config: what is wrong, what is allowed,
and for a misspelt key the key meant (`learning_rate` → `lr`)."""

import difflib
import re

from pydantic import BaseModel

from nncli.config.schema import SCHEDULE_MODELS, Config
from nncli.errors import show_value


def _model_at(loc):
    """Follow an error location through the models: (user's dotted path, model holding the last key, schedule name)."""
    model, path, schedule = Config, [], None
    for part in loc:
        if model is SCHEDULE_MODELS and part in SCHEDULE_MODELS:
            model, schedule = SCHEDULE_MODELS[part], part
            continue
        path.append(str(part))
        field = model.model_fields.get(part) if isinstance(model, type) and isinstance(part, str) else None
        if field is None:
            model = None
        elif part == "schedule":
            model = SCHEDULE_MODELS
        else:
            model = next(
                (
                    t
                    for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                    if isinstance(t, type) and issubclass(t, BaseModel)
                ),
                None,
            )
    return path, model, schedule


_ALIASES = {
    "learning_rate": "lr",
    "weight_decay": "l2",
    "lambda": "l2",
    "hidden_sizes": "hidden",
    "hidden_layers": "hidden",
    "layers": "hidden",
    "num_epochs": "epochs",
    "max_epochs": "epochs",
    "batch": "batch_size",
    "scheduler": "schedule",
    "lr_schedule": "schedule",
    "optim": "optimizer",
}


def _unknown_key(key, model, schedule):
    """'unknown key' with a difflib suggestion among the keys allowed there, or the allowed keys when none is close.

    Names other libraries use (learning_rate, weight_decay, ...) also suggest ours when ours is allowed there.
    """
    allowed = list(model.model_fields) if isinstance(model, type) else []
    names = {**{alias: ours for alias, ours in _ALIASES.items() if ours in allowed}, **{k: k for k in allowed}}
    where = f" for schedule '{schedule}'" if schedule else ""
    close = difflib.get_close_matches(str(key).lower(), names, n=1)
    if close:
        return f"unknown key{where} (did you mean '{names[close[0]]}'?)"
    return f"unknown key{where} (allowed: {', '.join(allowed)})" if allowed else f"unknown key{where}"


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
}


def describe_error(err):
    """One `dotted.path: message` line for a pydantic error."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    path, got = _model_at(err["loc"])[0], show_value(value)
    if kind == "extra_forbidden":
        _, owner, schedule = _model_at(err["loc"][:-1])
        message = _unknown_key(err["loc"][-1], owner, schedule)
    elif kind == "missing":
        message = "required key is missing" + (" (a config needs at least data.source)" if path == ["data"] else "")
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        message = f"must be {_BOUNDS[kind]} {bound}, got {got}"
    elif kind == "literal_error":
        message = f"{got} is not one of " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "union_tag_invalid":
        path.append("name")
        message = f"{show_value(value['name'])} is not one of {', '.join(SCHEDULE_MODELS)}"
    elif kind == "union_tag_not_found":
        path.append("name")
        message = f"required key is missing (one of {', '.join(SCHEDULE_MODELS)})"
    elif kind == "finite_number" or (kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)):
        message = f"must be a finite number, got {got}"
    elif kind in _TYPES:
        message = f"expected {_TYPES[kind]}, got {got}"
    elif kind == "invalid_key":
        message = "keys must be strings"
    else:
        message = err["msg"]
    return f"{'.'.join(path) or '(top level)'}: {message}"


def kind_of(value):
    names = {
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)

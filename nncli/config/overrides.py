"""Command-line overrides `KEY=VALUE` applied to a config's raw mapping before validation."""

from typing import Any

from nncli.config.safe_yaml import parse_yaml
from nncli.errors import ConfigError, show_value


def parse_override(text: str) -> tuple[str, Any]:
    """Split `KEY=VALUE` into (dotted key, value); the value is read as YAML, so [64, 32] is a list and 1e-3 a float."""
    key, sep, value = str(text).partition("=")
    parts = [part.strip() for part in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(f"override {show_value(text)}: expected KEY=VALUE with a dotted key, e.g. optimizer.lr=0.1")
    return ".".join(parts), parse_yaml(value, f"override {show_value(text)}")


def apply_overrides(raw, overrides):
    """A copy of `raw` with each override set, plus problems with the overrides themselves.

    Only mappings on an override's path are copied, so `raw` and anything YAML aliases share stay untouched.
    An absent or null mapping on the path is created: train.early_stopping.patience=3 turns early stopping on.
    """
    raw, problems = dict(raw), []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        parts = key.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is not None and not isinstance(child, dict):
                problems.append(
                    f"{'.'.join(parts[: i + 1])}: cannot set {key} inside {show_value(child)}, not a mapping"
                )
                break
            node[part] = node = dict(child or {})
        else:
            node[parts[-1]] = value
    return raw, problems

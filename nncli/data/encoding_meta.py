"""The checkpoint's record of an Encoding (meta.encoding), read back and checked: a damaged or hand-made record is
a CheckpointError naming the key, never an encoding that silently feeds the network the wrong inputs."""

from nncli.data.encoding import MISSING, Column, Encoding
from nncli.errors import CheckpointError, show_value

KINDS = ("numeric", "categorical")


def encoding_from_meta(record, width):
    """The Encoding stored by `Encoding.to_meta`, checked to make `width` network inputs."""
    if not isinstance(record, dict) or not isinstance(record.get("columns"), list):
        raise CheckpointError(f"meta.encoding must be an object with a 'columns' list, got {show_value(record)}")
    missing, unknown = record.get("missing"), record.get("unknown_category")
    na_values = record.get("na_values")
    if missing not in MISSING:
        raise CheckpointError(f"meta.encoding.missing must be one of {', '.join(MISSING)}, got {show_value(missing)}")
    if unknown not in ("error", "ignore"):
        raise CheckpointError(f"meta.encoding.unknown_category must be error or ignore, got {show_value(unknown)}")
    if not isinstance(na_values, list) or not all(isinstance(v, str) for v in na_values):
        raise CheckpointError(f"meta.encoding.na_values must be a list of strings, got {show_value(na_values)}")
    columns = tuple(_column(i, c) for i, c in enumerate(record["columns"]))
    encoding = Encoding(columns, missing, unknown, tuple(na_values))
    if len(set(encoding.names)) != len(columns) or not columns:
        raise CheckpointError(f"meta.encoding.columns must name distinct columns, got {show_value(encoding.names)}")
    if encoding.width != width:
        raise CheckpointError(f"meta.encoding makes {encoding.width} inputs but layer_sizes starts with {width}")
    return encoding


def _column(i, c):
    where = f"meta.encoding.columns[{i}]"
    if not isinstance(c, dict) or not isinstance(c.get("name"), str) or c.get("kind") not in KINDS:
        raise CheckpointError(f"{where} must have a name and a kind ({', '.join(KINDS)}), got {show_value(c)}")
    fill, categories = c.get("fill"), c.get("categories", [])
    if c["kind"] == "numeric":
        ok = fill is None or (
            isinstance(fill, (int, float)) and not isinstance(fill, bool) and abs(fill) < float("inf")
        )
        if not ok or categories:
            raise CheckpointError(f"{where} (numeric) must have a finite number or null as fill, and no categories")
        return Column(c["name"], "numeric", None if fill is None else float(fill))
    if not isinstance(categories, list) or not categories or not all(isinstance(v, str) for v in categories):
        raise CheckpointError(f"{where}.categories must be a non-empty list of strings, got {show_value(categories)}")
    if categories != sorted(set(categories)):
        raise CheckpointError(f"{where}.categories must be sorted and distinct (inputs follow that order)")
    if fill is not None and fill not in categories:
        raise CheckpointError(f"{where}.fill {show_value(fill)} is not one of its categories")
    return Column(c["name"], "categorical", fill, tuple(categories))

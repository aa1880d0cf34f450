"""Reading a config: a YAML file or a plain dict, overridden and validated into a `Config`; and writing it back.

`load_config` reports every problem at once, one `dotted.path: message` line each, in a single ConfigError. The
YAML itself is read by safe_yaml.py (plain values only, size and depth limits, unquoted 1e-3 is a number).

The path rule: a relative data path (DATA_PATH_KEYS) written in a config file is relative to that file's directory,
and one given as a KEY=VALUE override is relative to the working directory; both are made absolute here, so the
run's config.yaml (and every checkpoint) records where the data is. A file written before this rule, whose relative
path is not next to it but is in the working directory, keeps that older meaning (its text is left as written, so
an old run resumes unchanged). Built-in dataset names are not paths, and output.dir stays relative to the working
directory. A plain dict (`config_from_dict`, e.g. a checkpoint's embedded config) is taken as it is.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from nncli.config.messages import describe_error, kind_of
from nncli.config.overrides import apply_overrides, parse_override
from nncli.config.safe_yaml import ConfigDumper, parse_yaml, read_yaml_file
from nncli.config.schema import Config
from nncli.data.builtin import BUILTINS
from nncli.errors import ConfigError

DATA_PATH_KEYS = ("source", "labels", "val_source", "test_source", "val_labels", "test_labels")


def config_from_dict(
    raw: dict, source: str | None = None, overrides: Sequence[str] = (), default_name: str = "run"
) -> Config:
    """Validate a plain dict (e.g. a checkpoint's embedded config) into a Config; every problem in one ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"top level must be a mapping of keys, got {kind_of(raw)}", source)
    raw, problems = apply_overrides(raw, overrides)
    return _validated(raw, source, problems, default_name)


def _validated(raw, source, problems, default_name):
    try:
        config = Config.model_validate(raw, context={"default_name": default_name})
    except ValidationError as e:
        problems += [describe_error(err) for err in e.errors()]
    if problems:
        raise ConfigError(problems, source)
    return config


def _is_path(key, value):
    """Whether data.`key` = `value` names a file: a non-empty string, and for source not a built-in dataset's name
    (a bare word, which the schema checks against the built-ins)."""
    if not isinstance(value, str) or not value:
        return False
    return key != "source" or (value not in BUILTINS and any(c in value for c in "./\\"))


def resolve_data_paths(raw, base_dir, legacy_dir=None, keys=DATA_PATH_KEYS):
    """A copy of `raw` whose relative data paths (those of `keys`) are absolute, taken from `base_dir`.

    With `legacy_dir` (a config file's rule), a path missing under `base_dir` but present under `legacy_dir` (the
    working directory, its meaning before the rule) is left as written. Anything not a mapping is returned as is.
    """
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        return raw
    data = dict(data)
    for key in keys:
        value = data.get(key)
        if not _is_path(key, value) or os.path.isabs(os.path.expanduser(value)):
            continue
        path = Path(base_dir) / value
        if legacy_dir is not None and not path.exists() and (Path(legacy_dir) / value).exists():
            continue
        data[key] = str(path.resolve())
    return dict(raw, data=data)


def read_config_file(path: str | Path) -> dict:
    """A config file's plain, not yet validated mapping (a sweep composes its params onto it), its relative data
    paths made absolute from the file's directory (the path rule, module docstring)."""
    path = Path(path)
    if path.suffix.lower() in (".npz", ".npy"):
        raise ConfigError(
            f"{path}: a NumPy file (a checkpoint?), not a YAML config; the commands that take a "
            f"checkpoint are eval, predict and inspect"
        )
    raw = read_yaml_file(path, "a config is a few hundred bytes")
    if raw is None:
        raise ConfigError(f"{path}: is empty; a config needs at least data.source")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {kind_of(raw)}")
    return resolve_data_paths(raw, path.parent, legacy_dir=Path.cwd())


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read, override and validate a YAML config file; name defaults to the file's stem, output.dir to runs/<name>.

    Relative data paths in the file are relative to its directory, those in `overrides` to the working directory.
    """
    path = Path(path)
    raw, problems = apply_overrides(read_config_file(path), overrides)
    return _validated(resolve_data_paths(raw, Path.cwd(), keys=_overridden(overrides)), str(path), problems, path.stem)


def _overridden(overrides):
    """The data path keys some override sets (all of them for an override of the whole data mapping)."""
    keys = set()
    for text in overrides:
        try:
            key = parse_override(text)[0]
        except ConfigError:
            continue  # reported by apply_overrides
        if key == "data" or key.startswith("data."):
            keys.update(DATA_PATH_KEYS if key == "data" else [key[5:]])
    return [key for key in DATA_PATH_KEYS if key in keys]


def config_to_dict(config: Config) -> dict:
    """The fully resolved config as plain JSON/YAML types, every default filled in."""
    return config.model_dump(mode="json")


def dump_config_yaml(config: Config, header_lines: Sequence[str] = ()) -> str:
    """The config as YAML that load_config reads back to an equal Config, after `# ` comment header lines."""
    comments = [
        f"# {yaml.reader.Reader.NON_PRINTABLE.sub('?', part)}".rstrip()
        for line in header_lines
        for part in (str(line).splitlines() or [""])
    ]
    body = yaml.dump(config_to_dict(config), Dumper=ConfigDumper, sort_keys=False, allow_unicode=True)
    return "".join(f"{c}\n" for c in comments) + body


def flatten(tree, prefix=""):
    """{dotted.key: value} for every leaf of a nested dict (lists are leaves)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_keys(old, new):
    """Dotted keys whose values differ between two nested config dicts, sorted."""
    a, b = flatten(old), flatten(new)
    return sorted(key for key in set(a) | set(b) if a.get(key) != b.get(key))


def json_schema():
    """The config's JSON Schema (draft-07, with descriptions, enums and defaults) for editors and validators."""
    schema = Config.model_json_schema(ref_template="#/definitions/{model}")
    schema["definitions"] = schema.pop("$defs", {})
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "nncli config", **schema}


def provenance(path, overrides: Sequence[str] = ()):
    """Where each resolved value came from: {dotted.key: 'default' | 'file' | 'override'}."""
    config = load_config(path, overrides)
    raw = parse_yaml(Path(path).read_text(encoding="utf-8"), str(path)) or {}
    in_file = flatten(raw) if isinstance(raw, dict) else {}
    overridden = [k for o in overrides for k in flatten(dict([parse_override(o)]))]  # a mapping sets its leaves
    origin = {}
    for key in flatten(config_to_dict(config)):
        if any(key == o or key.startswith(o + ".") for o in overridden):
            origin[key] = "override"
        elif key in in_file or any(key.startswith(k + ".") for k in in_file):
            origin[key] = "file"
        else:
            origin[key] = "default"
    return config, origin

"""The run config: hardened YAML, the validated schema, overrides, precise messages, starter templates.

What the rest of nncli uses is imported from here: `load_config`, `config_from_dict`, `Config`, ….
"""

from nncli.config.loading import (
    changed_keys,
    config_from_dict,
    config_to_dict,
    dump_config_yaml,
    flatten,
    json_schema,
    load_config,
    provenance,
    read_config_file,
    resolve_data_paths,
)
from nncli.config.overrides import parse_override
from nncli.config.schema import Config, DataConfig, ModelConfig, OptimizerConfig

__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "changed_keys",
    "config_from_dict",
    "config_to_dict",
    "dump_config_yaml",
    "flatten",
    "json_schema",
    "load_config",
    "parse_override",
    "provenance",
    "read_config_file",
    "resolve_data_paths",
]

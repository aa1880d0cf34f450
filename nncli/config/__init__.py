"""The run config: hardened YAML, the validated schema, overrides, precise messages, starter templates."""

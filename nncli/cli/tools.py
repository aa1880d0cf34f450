"""Commands for looking at configs, checkpoints and runs: schema, validate, init, inspect, runs, diff."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import app, err, out, print_json, user_errors
from nncli.cli.tables import show
from nncli.errors import Hint, UsageError


@app.command()
@user_errors
def schema(
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the schema to this file."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
):
    """Print the config's JSON Schema (draft-07) for editors using yaml-language-server.

    Example: `nncli schema --out configs/schema.json --force`, then start a config with
    `# yaml-language-server: $schema=schema.json`
    """
    from nncli.config import json_schema
    from nncli.training.atomic import atomic_write_text, check_output

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out_file is None:
        print(text, end="")
    else:
        check_output(out_file, force)  # as every other --out: an existing file is replaced only with --force
        atomic_write_text(out_file, text)


@app.command()
@user_errors
def validate(
    config: Path = typer.Argument(..., help="YAML config file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides KEY=VALUE."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: each key's value and origin."),
):
    """Validate a config and show the resolved values and where each came from (default, file, override).

    Example: `nncli validate configs/spiral-2layer.yaml optimizer.lr=0.1`
    """
    from nncli.config import config_to_dict, flatten, provenance
    from nncli.data.files import missing_files

    cfg, origin = provenance(config, overrides or ())
    if as_json:
        return _print_validation_json(config, cfg, origin)
    table = Table(title=f"{config}: valid")
    for col in ("key", "value", "from"):
        table.add_column(col)
    style = {"default": "dim", "file": "", "override": "bold yellow"}
    for key, value in flatten(config_to_dict(cfg)).items():
        table.add_row(key, json.dumps(value), origin[key], style=style[origin[key]])
    show(table)
    for warning in missing_files(cfg.data):
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def _print_validation_json(config, cfg, origin):
    """validate --json: {config, valid, keys: {dotted.key: {value, from}}, warnings: [...]}; warnings also on stderr."""
    from nncli.config import config_to_dict, flatten
    from nncli.data.files import missing_files

    warnings = missing_files(cfg.data)
    keys = {key: {"value": value, "from": origin[key]} for key, value in flatten(config_to_dict(cfg)).items()}
    print_json({"config": str(config), "valid": True, "keys": keys, "warnings": warnings})
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


@app.command()
@user_errors
def init(
    path: Path = typer.Argument(Path("nncli.yaml"), help="Where to write the starter config."),
    template: Optional[str] = typer.Option(None, "--template", help="spiral (default) | digits | csv | regression"),
    from_csv: Optional[Path] = typer.Option(None, "--from", help="Write a config for this CSV file instead."),
    target: Optional[str] = typer.Option(None, "--target", help="With --from: the label column (default: the last)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing config at PATH."),
):
    """Write a commented starter config (and schema.json beside it for editor completion), from a template or,
    with --from, from a CSV file: its delimiter, target, feature kinds and missing cells, as training will read them.

    Example: `nncli init my-digits.yaml --template digits`, `nncli init penguins.yaml --from data/penguins.csv --target species`
    """
    from nncli.config import json_schema
    from nncli.config.templates import DATA, config_from_profile, starter_config
    from nncli.training.atomic import atomic_write_text, check_output

    if from_csv is not None and template is not None:
        raise UsageError("--from and --template cannot be used together: a config comes from a CSV or a template")
    if target is not None and from_csv is None:
        raise UsageError("--target names the label column of the --from CSV; pass --from FILE with it")
    template = template or "spiral"
    if template not in DATA:
        raise UsageError(f"--template: {template!r} is not one of {', '.join(DATA)}; choose one of them")
    check_output(path, force, hints=(Hint.REPLACE, Hint.ANOTHER_PATH))
    if from_csv is not None:
        from nncli.data.profile import profile_csv

        profile = profile_csv(from_csv, target)
        text, what = config_from_profile(profile, path), f"from {from_csv}"
    else:
        profile, text, what = None, starter_config(template, path.stem), f"{template} template"
    atomic_write_text(path, text)
    schema_path = path.parent / "schema.json"
    if not schema_path.exists():
        atomic_write_text(schema_path, json.dumps(json_schema(), indent=2) + "\n")
    if profile is not None:
        _print_profile(profile)
    command = "nncli train" if _is_default_config(path) else f"nncli train {escape(str(path))}"
    out.print(f"wrote {escape(str(path))} ({escape(what)}); train it with: {command}")


def _is_default_config(path):
    """Whether `path` is ./nncli.yaml, the config a bare `nncli train` uses."""
    from nncli.cli.train import DEFAULT_CONFIG

    return Path(path).absolute() == (Path.cwd() / DEFAULT_CONFIG)


def _print_profile(profile):
    """What init --from found: a row per column (kind, missing cells, distinct values), the target and its task."""
    from nncli.data.profile import delimiter_name

    task = "regression (loss l2)" if profile.task == "regression" else f"classification, {profile.classes} classes"
    table = Table(
        title=f"{escape(profile.path)}: {profile.rows:,} rows, split by {escape(delimiter_name(profile.delimiter))}"
    )
    for col in ("column", "kind", "missing", "distinct"):
        table.add_column(col)
    for c in profile.columns:
        table.add_row(escape(c.name), c.kind, str(c.missing), str(c.distinct), style="dim" if c.reason else "")
    table.add_row(escape(profile.target), "target", str(profile.missing_labels), str(profile.classes), style="bold")
    table.caption = f"target {escape(repr(profile.target))}: {task}"
    show(table)
    for c in profile.columns:
        if c.reason:
            out.print(f"left out {escape(repr(c.name))}: {escape(c.reason)}", soft_wrap=True)
    if profile.task == "regression":
        out.print(
            f"the target {escape(repr(profile.target))} {escape(profile.reason)}: a continuous target, so the "
            "config trains a regression (loss l2)",
            soft_wrap=True,
        )

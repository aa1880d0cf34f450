"""Commands for looking at configs, checkpoints and runs: schema, validate, init, inspect, runs, diff."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import app, err, out, user_errors
from nncli.errors import ConfigError, Hint


@app.command()
@user_errors
def schema(out_file: Optional[Path] = typer.Option(None, "--out", help="Write the schema to this file.")):
    """Print the config's JSON Schema (draft-07) for editors using yaml-language-server.

    Example: `nncli schema --out configs/schema.json`, then start a config with
    `# yaml-language-server: $schema=schema.json`
    """
    from nncli.config import json_schema
    from nncli.training.atomic import atomic_write_text

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out_file is None:
        print(text, end="")
    else:
        atomic_write_text(out_file, text)


@app.command()
@user_errors
def validate(
    config: Path = typer.Argument(..., help="YAML config file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides KEY=VALUE."),
):
    """Validate a config and show the resolved values and where each came from (default, file, override).

    Example: `nncli validate configs/spiral-2layer.yaml optimizer.lr=0.1`
    """
    from nncli.config import config_to_dict, flatten, provenance
    from nncli.data.files import missing_files

    cfg, origin = provenance(config, overrides or ())
    table = Table(title=f"{config}: valid")
    for col in ("key", "value", "from"):
        table.add_column(col)
    style = {"default": "dim", "file": "", "override": "bold yellow"}
    for key, value in flatten(config_to_dict(cfg)).items():
        table.add_row(key, json.dumps(value), origin[key], style=style[origin[key]])
    out.print(table)
    for warning in missing_files(cfg.data):
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


@app.command()
@user_errors
def init(
    path: Path = typer.Argument(Path("nncli.yaml"), help="Where to write the starter config."),
    template: str = typer.Option("spiral", "--template", help="spiral | digits | csv"),
):
    """Write a commented starter config (and schema.json beside it for editor completion).

    Example: `nncli init my-digits.yaml --template digits`
    """
    from nncli.config import json_schema
    from nncli.config.templates import DATA, starter_config
    from nncli.training.atomic import atomic_write_text, check_output

    if template not in DATA:
        raise ConfigError(f"--template: {template!r} is not one of {', '.join(DATA)}")
    check_output(path, force=False, hints=(Hint.ANOTHER_PATH,))
    atomic_write_text(path, starter_config(template, path.stem))
    schema_path = path.parent / "schema.json"
    if not schema_path.exists():
        atomic_write_text(schema_path, json.dumps(json_schema(), indent=2) + "\n")
    out.print(f"wrote {path} ({template} template); train it with: nncli train {path}")

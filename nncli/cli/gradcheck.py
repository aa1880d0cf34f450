"""`nncli gradcheck`: every backward pass against numerical gradients, as a table whose error column is the
number compared with the tolerance."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from nncli.cli.app import app, out, user_errors
from nncli.cli.tables import show
from nncli.training.atomic import jsonable

STATUS = {"pass": "[green]pass[/]", "FAIL": "[bold red]FAIL[/]", "not checked": "[yellow]not checked[/]"}


def check_table(results, title):
    """Gradient checks as a table whose error column is exactly the number compared to the tolerance."""
    table = Table(
        title=title,
        caption="rel. error = |a − n| / max(|a|, |n|, s), s = rounding noise / tolerance; "
        "pass: below the tolerance; not checked: every coordinate sat at a kink",
        caption_justify="left",
    )
    for col in ("gradient", "shape", "max rel. error", "tolerance", "checked", "kinks", "result"):
        table.add_column(col, justify="left" if col in ("gradient", "shape") else "right", no_wrap=True)
    for r in results:
        table.add_row(
            escape(r.name),
            "×".join(map(str, r.shape)),
            f"{r.max_rel_error:.2e}",
            f"{r.tolerance:.0e}",
            str(r.checked),
            str(r.kinks),
            STATUS[r.status],
        )
    return table


@app.command()
@user_errors
def gradcheck(
    config: Optional[Path] = typer.Argument(
        None, help="Check this config's model on a few samples of its data (default: every built-in piece)."
    ),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="Dotted overrides KEY=VALUE, as for train, e.g. model.activation=tanh."
    ),
    samples: int = typer.Option(8, "--samples", min=1, help="Samples of the config's data to check on."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
):
    """Prove every backward pass against numerical gradients (float64, centered differences, h = 1e-5).

    Example: `nncli gradcheck` or `nncli gradcheck configs/spiral-3layer.yaml loss=svm`. Exit 1 if any check fails.
    """
    from nncli.gradcheck import suite

    if config is None:
        results = suite.builtin_checks()
    else:
        from nncli.config import load_config

        results = suite.check_config_on_data(load_config(config, overrides or ()), samples)
    passed = all(r.passed for r in results)
    if as_json:
        print(json.dumps(jsonable({"passed": passed, "checks": [r.as_dict() for r in results]})))
    else:
        show(check_table(results, "gradient check (float64, centered differences, h = 1e-5)"))
        failed = sum(r.status == "FAIL" for r in results)
        unchecked = sum(r.status == "not checked" for r in results)
        problems = [f"{failed} of {len(results)} checks failed"] if failed else []
        if unchecked:
            problems.append(
                f"{unchecked} gradient{'s' if unchecked > 1 else ''} not checked (every coordinate at a kink)"
            )
        out.print("; ".join(problems) if problems else f"all {len(results)} checks passed")
    if not passed:
        raise typer.Exit(1)

"""`nncli graph` and `nncli backprop`: the network as a graph of gates, and gradients flowing back through it."""

import io
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.tree import Tree

from nncli.backprop.circuits import CIRCUITS
from nncli.cli.app import HINTS, app, err, out, user_errors
from nncli.cli.gradcheck import check_table
from nncli.cli.tables import show

RENDERED = (".svg", ".png", ".pdf")
INSTALL_DOT = "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu) or `brew install graphviz` (macOS)"


def _tree(graph):
    labels = {"input": "cyan", "param": "yellow", "gate": "bold", "value": "green"}
    tree = Tree(f"[bold]{escape(graph.name)}[/]: computational graph (N = batch size)")
    branches = {}
    for n in graph.nodes:
        if n.kind == "param":
            continue
        group = n.group or "input"
        if group == "input":
            parent = tree
        else:
            if group not in branches:
                branches[group] = tree.add(f"[bold]{group}[/]")
            parent = branches[group]
        text = f"[{labels[n.kind]}]{escape(n.label)}[/]"
        if n.detail and n.id != "loss":
            text += f" ({escape(n.detail)})" if n.id == "reg" else f" {escape(n.detail)}"
        if n.kind == "gate" and n.shape != "()":
            text += f" → {n.shape}"
        elif n.kind != "gate" and n.shape != "()":
            text += f" {n.shape}"
        if n.id == "loss":
            text += f" → data loss   [dim]{escape(n.detail)}[/]"
        if n.id == "reg":
            text += f" ← {', '.join(n.inputs)}   [dim]a fork: gradients add[/]"
        if n.id == "join":
            text += " data loss + regularization → L"
        parent.add(text)
    return tree


@app.command()
@user_errors
def graph(
    source: Path = typer.Argument(..., metavar="CONFIG|CHECKPOINT", help="A YAML config or a checkpoint (.npz)."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="KEY=VALUE", help="Dotted config overrides KEY=VALUE, as for train, e.g. model.activation=tanh."
    ),
    fmt: str = typer.Option("text", "--format", help="text (a tree) | dot (Graphviz DOT)."),
    out_file: Optional[Path] = typer.Option(
        None, "--out", help="Write to FILE; .svg/.png/.pdf renders the graph with Graphviz's `dot`."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
):
    """Show the network's forward graph as gates: x → mul W1 → add b1 → activation → … → scores → loss → L.

    Example: `nncli graph configs/spiral-2layer.yaml --format dot --out spiral.svg`

    Example: `nncli graph configs/spiral-2layer.yaml 'model.hidden=[64,32]'`
    """
    from nncli.backprop.graph import to_dot
    from nncli.evaluation.network import load_graph
    from nncli.training.atomic import atomic_write_text, check_output

    if fmt not in ("text", "dot"):
        raise typer.BadParameter(f"must be text or dot, got {fmt!r}", param_hint="--format")
    if out_file is not None:
        check_output(out_file, force)  # before any work: never replace a file unasked
    g = load_graph(source, overrides or ())
    if out_file is None and fmt == "dot":
        print(to_dot(g), end="")
    elif out_file is None:
        _print_graph(g, out)
    elif out_file.suffix.lower() in RENDERED:
        _render(to_dot(g), out_file, force)
    else:
        atomic_write_text(out_file, to_dot(g) if fmt == "dot" else _plain_text(g))
        out.print(f"wrote {escape(str(out_file))}", soft_wrap=True)


def _print_graph(g, console):
    """The graph as a tree of gates grouped by layer, then as one chain x → … → L."""
    console.print(_tree(g))
    console.print(g.chain(), soft_wrap=True)


def _plain_text(g):
    """The tree and the chain as a text file would hold them: 100 columns, no colour."""
    buffer = io.StringIO()
    _print_graph(g, Console(file=buffer, width=100, no_color=True, highlight=False))
    return buffer.getvalue()


def _render(dot_text, path, force):
    """Render DOT to an image with Graphviz's `dot`; without it, write the .dot source, say how to install, exit 2."""
    from nncli.errors import OutputError
    from nncli.training.atomic import atomic_write_bytes, atomic_write_text, check_output

    dot = shutil.which("dot")
    if dot is None:
        source = path.with_suffix(".dot")
        try:
            check_output(source, force)
        except OutputError as e:
            kept = f"The DOT source was not written: {escape(e.render(HINTS))}."
        else:
            atomic_write_text(source, dot_text)
            kept = (
                f"The DOT source is in {escape(str(source))}: render it with "
                f"`dot -T{path.suffix[1:].lower()} {escape(str(source))} -o {escape(str(path))}`."
            )
        err.print(
            f"[bold red]error:[/] Graphviz's `dot` program is not on PATH, so {escape(str(path))} was not "
            f"rendered; {INSTALL_DOT}. {kept}",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    done = subprocess.run([dot, f"-T{path.suffix[1:].lower()}"], input=dot_text.encode(), capture_output=True)
    if done.returncode != 0:
        err.print(f"[bold red]error:[/] dot failed: {escape(done.stderr.decode(errors='replace').strip())}")
        raise typer.Exit(1)
    atomic_write_bytes(path, done.stdout)
    out.print(f"wrote {escape(str(path))}", soft_wrap=True)


def _num(v):
    return f"{v:.4g}"


def _show(value):
    """A value as text: exact for at most 6 entries, else shape, mean, min and max."""
    from nncli.backprop.trace import summary

    s = summary(value)
    if "values" in s:
        a = np.asarray(value, np.float64)
        text = np.array2string(a, formatter={"float_kind": _num}, separator=", ").replace("\n", "")
        return text if a.ndim == 0 else f"{'×'.join(map(str, a.shape))} {text}"
    return f"{'×'.join(map(str, s['shape']))}  mean {_num(s['mean'])}  min {_num(s['min'])}  max {_num(s['max'])}"


def _print_trace(t, samples):
    out.print(
        f"forward: L = {t.loss:.6g} (data loss {t.data_loss:.6g} + regularization {t.reg_loss:.6g}) "
        f"on {samples} samples, float64; backward, gate by gate, from L to x:",
        soft_wrap=True,
    )
    for step in t.steps:
        out.print(Rule(escape(step.gate), align="left"), width=out.width if out.is_terminal else 80)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        grid.add_row("forward", _show(step.output))
        grid.add_row("upstream", _show(step.upstream))
        grid.add_row("rule", escape(step.rule))
        for name, value in step.downstream.items():
            grid.add_row("sends", f"{escape(name)} = {_show(value)}")
        show(grid, out, wrap=(1,))
    table = Table(title="parameter gradients (where a weight forks, the two paths add up)")
    for col in ("gradient", "through the scores", "through regularization", "total (engine)"):
        table.add_column(col)
    for name in t.grads:
        reg = t.reg_grads.get(name)
        table.add_row(f"d{name}", _show(t.data_grads[name]), "—" if reg is None else _show(reg), _show(t.grads[name]))
    table.add_row("dx", _show(t.dx), "—", _show(t.dx))
    show(table, out)
    show(check_table(t.checks, "numerical gradient check (centered differences, h = 1e-5)"), out)


@app.command()
@user_errors
def backprop(
    config: Optional[str] = typer.Argument(
        None, metavar="CONFIG", help="YAML config whose network is traced on a few samples of its data."
    ),
    overrides: Optional[List[str]] = typer.Argument(
        None,
        metavar="KEY=VALUE",
        help="Config overrides KEY=VALUE (as for train); with --expr or --circuit, inputs NAME=VALUE "
        "(a number, a list or a matrix as YAML/JSON: W='[[0.1, 0.5], [-0.3, 0.8]]').",
    ),
    samples: Optional[int] = typer.Option(
        None, "--samples", min=1, help="Samples K of the config's training data (default 2)."
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", min=0, help="Seed of the weights and the sample choice (default: the config's)."
    ),
    circuit: Optional[str] = typer.Option(
        None, "--circuit", help=f"A worked circuit of the notes instead: {' | '.join(CIRCUITS)}."
    ),
    expr: Optional[str] = typer.Option(
        None,
        "--expr",
        help="Your own circuit: + - * / ** @ .T, max min exp log sigmoid tanh relu abs sum dot norm2, "
        "e.g. 'norm2(W @ x)'.",
    ),
    digits: int = typer.Option(
        2, "--digits", min=0, max=15, help="Decimals printed for a circuit (the notes round to 2)."
    ),
    as_json: bool = typer.Option(False, "--json", help="A circuit's trace as JSON, at full precision."),
    fmt: str = typer.Option(
        "text", "--format", help="text | dot (a circuit as Graphviz DOT, values and gradients on the edges)."
    ),
    jacobian: bool = typer.Option(False, "--jacobian", help="Print each gate's full Jacobian (at most 36 entries)."),
):
    """One forward and backward pass, gate by gate: outputs, upstream gradients, local rules, gradients sent on.

    Example: `nncli backprop configs/spiral-2layer.yaml model.activation=tanh --samples 2`

    Example: `nncli backprop --circuit add-mul x=3` or `nncli backprop --expr 'norm2(W @ x)' x='[0.2, 0.4]'
    W='[[0.1, 0.5], [-0.3, 0.8]]'`

    Ends with a numerical check of every gradient; exit 1 if a check fails. A circuit evaluated exactly at a
    non-differentiable point (a tie of max, relu at 0) is traced with a subgradient, then exits 2 saying where.
    """
    if fmt not in ("text", "dot"):
        raise typer.BadParameter(f"must be text or dot, got {fmt!r}", param_hint="--format")
    if circuit is not None or expr is not None:
        if samples is not None or seed is not None:
            raise typer.BadParameter(
                "--samples and --seed pick a config's data rows and weights; a circuit's inputs are NAME=VALUE",
                param_hint="--samples" if samples is not None else "--seed",
            )
        return _typed_circuit(
            circuit, expr, [config, *(overrides or ())] if config else [], digits, as_json, fmt, jacobian
        )
    if config is None:
        raise typer.BadParameter(
            f"give a CONFIG to trace, --circuit {'|'.join(CIRCUITS)} or --expr EXPR", param_hint="CONFIG"
        )
    if as_json or fmt == "dot" or jacobian:
        raise typer.BadParameter(
            "--json, --format dot and --jacobian show a circuit (--expr or --circuit); "
            "nncli graph CONFIG --format dot draws a network",
            param_hint="CONFIG",
        )
    from nncli.evaluation.network import trace_file

    t, _ = trace_file(config, samples or 2, seed, overrides or ())
    _print_trace(t, len(t.dx))
    if not all(r.passed for r in t.checks):
        raise typer.Exit(1)


def _typed_circuit(name, expr, assignments, digits, as_json, fmt, jacobian):
    """Trace a named or typed circuit and show it (text, JSON or DOT); exit 2 at a kink, 1 if a check fails."""
    import json

    from nncli.backprop import circuits
    from nncli.cli.circuit_view import print_circuit, value_text

    if name is not None and expr is not None:
        raise typer.BadParameter("give either --circuit or --expr, not both", param_hint="--expr")
    if name is not None and name not in CIRCUITS:
        raise typer.BadParameter(f"must be one of {', '.join(CIRCUITS)}, got {name!r}", param_hint="--circuit")
    if name is not None:
        result = circuits.circuit(name, assignments)
    else:
        result = circuits.evaluate(expr, circuits.parse_values(assignments))
    if as_json:
        print(json.dumps(circuits.as_dict(result), indent=2))
    elif fmt == "dot":
        print(circuits.to_dot(result, lambda v: value_text(v, digits)), end="")
    else:
        print_circuit(result, out, digits, jacobian)
    circuits.refuse_ties(result)
    if not all(r.passed for r in result.checks):
        raise typer.Exit(1)

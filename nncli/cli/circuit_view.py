"""How `nncli backprop --expr/--circuit` prints a traced circuit: wires, the backward pass gate by gate, the check."""

import numpy as np
from rich.markup import escape
from rich.table import Table

from nncli.cli.gradcheck import check_table
from nncli.cli.tables import show

SHOWN_ENTRIES = 36  # a tensor with more entries is shown as its shape, mean, min and max


def number(v, digits):
    return f"{round(float(v), digits) + 0.0:.{digits}f}"  # + 0.0 turns −0.00 into 0.00


def value_text(v, digits):
    """A scalar as a number; a tensor as its shape and its entries (or mean, min and max when large)."""
    if isinstance(v, list):  # the upstream gradients of a copy gate, one per use
        return " + ".join(value_text(x, digits) for x in v)
    a = np.asarray(v, np.float64)
    if a.ndim == 0:
        return number(a, digits)
    shape = "×".join(map(str, a.shape))
    if a.size > SHOWN_ENTRIES:
        stats = (number(f(a), digits) for f in (np.mean, np.min, np.max))
        return f"{shape}  mean {next(stats)}  min {next(stats)}  max {next(stats)}"
    body = np.array2string(a, formatter={"float_kind": lambda x: number(x, digits)}, separator=", ")
    return f"{shape} {body.replace(chr(10), '')}"


def _tensors(c):
    return any(np.ndim(w.value) for w in c.wires)


def print_circuit(c, out, digits=2, jacobian=False):
    """The wires table, then every gate in backward order with its upstream gradient, rule, Jacobian and sends."""
    out.print(f"[bold]{escape(c.name)}[/]: {escape(c.formula)}; every wire's value and gradient df/dwire:")
    if np.ndim(c.wires[-1].value):
        out.print("[dim]the output is a tensor: backward starts from ones, the gradient of the sum of its entries[/]")
    wires = Table()
    wires.add_column("wire", no_wrap=True)
    wires.add_column("value", justify="right")
    wires.add_column("gradient", justify="right")
    for w in c.wires:
        wires.add_row(escape(w.name), value_text(w.value, digits), value_text(w.grad, digits))
    show(wires, out, wrap=("value", "gradient"))
    out.print("backward, gate by gate:")
    tensors = _tensors(c)
    for step in c.steps:
        sends = ", ".join(f"{escape(k)} = {value_text(v, digits)}" for k, v in step.downstream.items())
        out.print(
            f"  {escape(step.gate)} = {value_text(step.output, digits)}: upstream {value_text(step.upstream, digits)}"
            f" → {sends}\n    [dim]{escape(step.rule)}[/]",
            soft_wrap=True,
        )
        for name, shape, structure, matrix in step.jacobians:
            if tensors or jacobian:
                out.print(
                    f"    [dim]Jacobian with respect to {escape(name)}: {shape[0]}×{shape[1]}, {escape(structure)}[/]",
                    soft_wrap=True,
                )
            if jacobian and matrix is not None:
                out.print(f"      {value_text(matrix, digits)}", soft_wrap=True)
            elif jacobian:
                out.print(f"      [dim]not printed: {shape[0] * shape[1]} entries, more than {SHOWN_ENTRIES}[/]")
    if c.checks:
        show(check_table(c.checks, "numerical check of every input's gradient (centered differences, h = 1e-5)"), out)

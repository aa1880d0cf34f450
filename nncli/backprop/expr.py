"""The expression language of `backprop --expr`: a formula parsed with Python's `ast` under a whitelist, never run.

Allowed: numbers, names, + − * /, unary minus, ** with a constant exponent, @ (matrix product), .T, and the
functions in FUNCTIONS. A name used twice becomes a copy gate. Shapes are worked out before any array is
made, so a product too large (over MAX_ELEMENTS) or of mismatched sizes is refused before it is allocated.
Every refusal is an ExpressionError that quotes the expression with a caret under the offending part.
"""

import ast

import numpy as np

from nncli.backprop import gates
from nncli.backprop.circuit import Graph, Node
from nncli.errors import ConfigError, show_value

MAX_CHARS = 1000
MAX_NODES = 200
MAX_EXPONENT = 64
MAX_ELEMENTS = (
    100_000  # per wire (800 kB of float64): the numerical check runs the circuit 4 times per checked coordinate
)
FUNCTIONS = {  # name: (number of arguments, gate factory)
    "max": (2, gates.Max),
    "min": (2, gates.Min),
    "exp": (1, gates.Exp),
    "log": (1, gates.Log),
    "sigmoid": (1, lambda: gates.activation_gate("sigmoid")),
    "tanh": (1, lambda: gates.activation_gate("tanh")),
    "relu": (1, lambda: gates.activation_gate("relu")),
    "abs": (1, gates.Abs),
    "sum": (1, gates.Sum),
    "dot": (2, gates.Dot),
    "norm2": (1, gates.Norm2),
}
BINARY = {
    ast.Add: ("+", gates.Add),
    ast.Sub: ("−", gates.Subtract),
    ast.Mult: ("·", gates.Multiply),
    ast.Div: ("/", gates.Divide),
    ast.MatMult: ("@", gates.MatMul),
}
ALLOWED = "numbers, names, + - * / **, unary -, @, .T and the functions " + ", ".join(FUNCTIONS)
REFUSED = {
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "a conditional",
    ast.NamedExpr: "an assignment",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Dict: "a dict",
    ast.JoinedStr: "an f-string",
}


class ExpressionError(ConfigError):
    """An expression or a value for it is refused: the problem, then the expression with a caret under the place."""

    def __init__(self, problem, text=None, span=None):
        lines = [problem]
        if text is not None and span is not None:
            start, end = span
            lines += [f"  {text}", "  " + " " * start + "^" * max(1, end - start)]
        super().__init__(lines, what="expression")


def _span(text, node):
    """(start, end) character columns of `node` in `text` (ast counts UTF-8 bytes)."""
    raw = text.encode()
    start = len(raw[: node.col_offset].decode(errors="ignore"))
    end = len(raw[: node.end_col_offset or node.col_offset].decode(errors="ignore"))
    return start, end


def parse(text):
    """The checked syntax tree of `text`; refuses anything outside the whitelist with the place marked."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty; write one such as 'norm2(W @ x)'")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"the expression is {len(text)} characters long; at most {MAX_CHARS} are allowed")
    if any(ord(c) < 32 for c in text):
        raise ExpressionError("the expression must be one line without control characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        col = e.offset - 1 if e.offset and 0 < e.offset <= len(text) else len(text)  # 0: at the end
        raise ExpressionError(f"not a valid expression: {e.msg} (column {col + 1})", text, (col, col + 1)) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("the expression is nested too deeply") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(f"the expression has {count} parts; at most {MAX_NODES} are allowed")
    for node in ast.walk(tree):
        _allowed(text, node)
    return tree.body


def _allowed(text, node):
    """Refuse one syntax node outside the whitelist (its children are checked by the caller's walk)."""
    where = _span(text, node) if hasattr(node, "col_offset") else None

    def refuse(what):
        column = f" (column {where[0] + 1})" if where else ""
        raise ExpressionError(f"{what} is not allowed{column}; allowed: {ALLOWED}", text, where)

    if isinstance(node, (ast.Expression, ast.Load, ast.operator, ast.USub, ast.UAdd)):
        return
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, (*BINARY, ast.Pow)):
            refuse(f"the operator {type(node.op).__name__}")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            refuse(f"the operator {type(node.op).__name__}")
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(float(v)):
            refuse(f"the constant {show_value(v)}")
    elif isinstance(node, ast.Name):
        if node.id.startswith("_"):
            refuse(f"the name {node.id!r} (names starting with _)")
    elif isinstance(node, ast.Attribute):
        if node.attr != "T":
            refuse(f"the attribute .{node.attr} (only .T, the transpose)")
    elif isinstance(node, ast.Call):
        _allowed_call(text, node, refuse)
    else:
        refuse(REFUSED.get(type(node), f"the syntax {type(node).__name__}"))


def _allowed_call(text, node, refuse):
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.get_source_segment(text, node.func)
        refuse(f"calling {show_value(name)} (not one of the functions)")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        refuse(f"{node.func.id}() with keyword or starred arguments")
    arity = FUNCTIONS[node.func.id][0]
    if len(node.args) != arity:
        refuse(f"{node.func.id}() with {len(node.args)} arguments ({node.func.id} takes {arity})")


def build(text, values, labels=None):
    """The circuit (a `Graph`) of the expression `text` over `values` ({name: array}), shapes checked, not run.

    `labels` ({subexpression as ast.unparse writes it: wire label}) names wires, as the notes do ("q = x + y").
    """
    tree = parse(text)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and not _is_function(tree, n)]
    names = [n.id for n in sorted(found, key=lambda n: n.col_offset)]
    missing = sorted(set(names) - set(values))
    if missing:
        node = next(n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == missing[0])
        given = ", ".join(sorted(values)) or "none"
        raise ExpressionError(
            f"no value for {missing[0]!r} (column {_span(text, node)[0] + 1}): give {missing[0]} a value "
            f"(values given: {given})",
            text,
            _span(text, node),
        )
    unused = sorted(set(values) - set(names))
    if unused:
        raise ExpressionError(
            f"{unused[0]!r} has a value but is not in the expression (its names: {', '.join(dict.fromkeys(names))})"
        )
    return _Builder(text, values, labels or {}, names).graph(tree)


def _is_function(tree, name):
    return any(isinstance(c, ast.Call) and c.func is name for c in ast.walk(tree))


class _Builder:
    """Turns a checked tree into nodes in topological order (inputs, then each gate after its inputs)."""

    def __init__(self, text, values, labels, names):
        self.text, self.values, self.labels, self.nodes, self.uses = text, values, labels, [], {}
        self.counts = {n: names.count(n) for n in names}
        for name in dict.fromkeys(names):  # inputs first, in the order they appear
            value = np.array(values[name], np.float64)
            self.uses[name] = self._add(Node("input", name, name, shape=value.shape, value=value))
            if self.counts[name] > 1:
                copy = Node("gate", f"{name} (used {self.counts[name]}×)", name, gates.Copy(), [self.uses[name]])
                copy.shape = value.shape
                self.uses[name] = self._add(copy)

    def graph(self, tree):
        self._node(tree)
        return Graph(self.text, self.nodes)

    def _add(self, node):
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _gate(self, ast_node, gate, inputs, shape):
        span = _span(self.text, ast_node)
        size = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if size > MAX_ELEMENTS:
            self._refuse(
                f"its result would have {size:,} entries {shape}; at most {MAX_ELEMENTS:,} are allowed", ast_node
            )
        source = ast.get_source_segment(self.text, ast_node)
        label = self.labels.get(ast.unparse(ast_node), source)
        return self._add(Node("gate", label, label.split(" = ")[0], gate, inputs, span, tuple(shape)))

    def _refuse(self, problem, ast_node):
        start, end = _span(self.text, ast_node)
        source = ast.get_source_segment(self.text, ast_node)
        raise ExpressionError(f"{source} (column {start + 1}): {problem}", self.text, (start, end))

    def _shape(self, i):
        return self.nodes[i].shape

    def _node(self, n):
        """The index of the node computing `n`."""
        if isinstance(n, ast.Constant):
            return self._add(Node("const", repr(n.value), repr(n.value), value=np.array(float(n.value))))
        if isinstance(n, ast.Name):
            return self.uses[n.id]
        if isinstance(n, ast.UnaryOp):
            x = self._node(n.operand)
            return x if isinstance(n.op, ast.UAdd) else self._gate(n, gates.Negate(), [x], self._shape(x))
        if isinstance(n, ast.Attribute):
            x = self._node(n.value)
            return self._gate(n, gates.Transpose(), [x], self._shape(x)[::-1])
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            return self._power(n)
        if isinstance(n, ast.BinOp):
            if isinstance(n.op, ast.Div) and isinstance(n.left, ast.Constant) and n.left.value == 1:
                x = self._node(n.right)
                return self._gate(n, gates.Reciprocal(), [x], self._shape(x))
            a, b = self._node(n.left), self._node(n.right)
            symbol, gate = BINARY[type(n.op)]
            if gate is gates.MatMul:
                return self._gate(n, gate(), [a, b], self._matmul_shape(n, a, b))
            return self._gate(n, gate(), [a, b], self._broadcast(n, symbol, a, b))
        return self._call(n)

    def _call(self, n):
        name = n.func.id
        args = [self._node(a) for a in n.args]
        shapes = [self._shape(a) for a in args]
        if name in ("max", "min"):
            return self._gate(n, FUNCTIONS[name][1](), args, self._broadcast(n, name, *args))
        if name == "dot" and shapes[0] != shapes[1]:
            self._refuse(f"dot needs two inputs of the same shape, got {shapes[0]} and {shapes[1]}", n)
        out = () if name in ("sum", "dot", "norm2") else shapes[0]
        return self._gate(n, FUNCTIONS[name][1](), args, out)

    def _power(self, n):
        p = n.right
        negative = isinstance(p, ast.UnaryOp) and isinstance(p.op, ast.USub)
        if negative:
            p = p.operand
        if not isinstance(p, ast.Constant):
            self._refuse(
                "the exponent of ** must be a number written out (no exponent towers such as 9**9**9, "
                "no names or expressions)",
                n.right,
            )
        exponent = -p.value if negative else p.value
        if abs(exponent) > MAX_EXPONENT:
            self._refuse(f"the exponent {exponent:g} is too large; at most {MAX_EXPONENT} in size", n.right)
        x = self._node(n.left)
        return self._gate(n, gates.Power(exponent), [x], self._shape(x))

    def _broadcast(self, n, symbol, a, b):
        try:
            return np.broadcast_shapes(self._shape(a), self._shape(b))
        except ValueError:
            self._refuse(f"shapes {self._shape(a)} and {self._shape(b)} do not broadcast for {symbol}", n)

    def _matmul_shape(self, n, a, b):
        sa, sb = self._shape(a), self._shape(b)
        if not sa or not sb:
            self._refuse(f"@ needs vectors or matrices on both sides, got shapes {sa} and {sb} (use * for a scalar)", n)
        if sa[-1] != sb[0]:
            self._refuse(
                f"shapes {sa} and {sb} do not match for @: the left side has {sa[-1]} columns, the right {sb[0]} rows",
                n,
            )
        return sa[:-1] + sb[1:]

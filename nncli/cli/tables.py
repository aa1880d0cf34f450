"""How every command prints a table: values whole, never folded inside or cut short with an ellipsis.

A value (a path, a hash, a number, a status, a name) is copied from a terminal as often as it is read, so a table
keeps each one on one line: the table wraps between cells (only the prose columns named in `wrap=` wrap, and only
between words), and where even that does not fit the terminal, the view becomes one `key: value` line per field.
A title too long for its table is printed above it, wrapped between words only. Output that is not a terminal (a
pipe, a file) is as wide as its content (app.py's consoles), so a table there is always drawn whole.
"""

import textwrap

from rich.cells import cell_len
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from nncli.cli.app import out

UNBOUNDED = 1_000_000  # measuring width: wide enough for any value


def show(table: Table, console=None, wrap=()):
    """Print `table` on `console` (default: stdout) with no value broken: the columns whose headers are in `wrap`
    (prose: a description, an error message) may wrap between words; every other column keeps each cell on one
    line (`wrap` may also hold column numbers, for a table without headers). A table that cannot fit the width
    that way is shown as `key: value` lines instead."""
    console = console or out
    wide = console.options.update_width(UNBOUNDED)
    for index, column in enumerate(table.columns):
        if column.header in wrap or index in wrap:
            continue
        cells = list(column.cells) + ([column.header] if table.show_header else [])
        column.no_wrap, column.overflow = True, "fold"  # fold: never an ellipsis
        column.min_width = max((Measurement.get(console, wide, cell).maximum for cell in cells), default=0)
    needed = Measurement.get(console, wide, table)
    if needed.minimum > console.width:
        _show_records(table, console)
        return
    title = _plain(table.title)
    if cell_len(title) > min(needed.maximum, console.width):  # rich would fold it to the table's width
        table.title = None
        _print_words(console, title, "table.title")
    console.print(table)


def _print_words(console, text, style):
    """`text` wrapped between words only: a word longer than the width (a path) stays whole on its own line."""
    for line in textwrap.wrap(text, console.width, break_long_words=False, break_on_hyphens=False):
        console.print(Text(line, style=style), soft_wrap=True)


def _plain(markup):
    if markup is None:
        return ""
    return markup.plain if isinstance(markup, Text) else Text.from_markup(str(markup)).plain


def _text(renderable):
    """A cell (markup or Text) as Text, for a `key: value` line."""
    if isinstance(renderable, Text):
        return renderable
    return Text.from_markup(str(renderable))


def _show_records(table, console):
    """The table as one `key: value` line per field: per row, its first cell unindented and the others indented
    below it (a table without headers: `first cell: the others` per row); empty cells are left out."""
    if table.title:
        _print_words(console, _plain(table.title), "table.title")
    headers = [_text(column.header) for column in table.columns]
    rows = list(zip(*(column.cells for column in table.columns)))
    for row in rows:
        cells = [_text(cell) for cell in row]
        if not table.show_header:
            console.print(
                Text.assemble(cells[0], ": ", Text("  ").join(c for c in cells[1:] if c.plain)), soft_wrap=True
            )
            continue
        for i, (header, cell) in enumerate(zip(headers, cells)):
            if cell.plain:
                field = Text.assemble(header, ": ", cell) if header.plain else cell
                console.print(Text.assemble("  " if i else "", field), soft_wrap=True)
    if table.caption:
        _print_words(console, _plain(table.caption), "table.caption")

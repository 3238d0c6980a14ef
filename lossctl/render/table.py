"""A rich table: a title naming the input and the columns picked, values right-justified.

When results carry per-class values (precision, recall, F-scores, IoU on
several classes), a per-class table follows, one row per class with each
class's support: scikit-learn's ``classification_report``, whose averages
are the results above.

Checks get a section of their own under the results: the expression, the
unrounded value shown to six significant digits, PASS or FAIL and why, and
a one-line verdict in the caption.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from lossctl.render import (
    checks_summary,
    display_name,
    format_result,
    format_value,
    group_grid,
    per_class,
    rich_text,
)
from lossctl.render.compare import compare_rows, delta_grid
from lossctl.results import Evaluation

SIGNIFICANT = 6

__all__ = ["format_value", "to_table"]


def _columns_line(evaluation: Evaluation) -> str:
    parts = []
    for role, info in evaluation.input.roles.items():
        how = " (picked)" if info.picked else ""
        cols = ",".join(info.columns) if len(info.columns) <= 4 else info.columns[0] + "…" + info.columns[-1]
        parts.append(f"{role} = {cols}{how}")
    return ", ".join(parts)


def _checks_table(evaluation: Evaluation) -> Table:
    table = Table(title="checks", title_justify="left", caption=checks_summary(evaluation), caption_justify="left")
    table.add_column("check", overflow="fold")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("result", justify="center")
    table.add_column("note", overflow="fold")
    for c in evaluation.checks:
        passed = bool(c.get("passed"))
        mark = Text("PASS", style="bold green") if passed else Text("FAIL", style="bold red")
        note = str(c.get("note") or "")
        if c.get("added"):
            note = (note + "; " if note else "") + "evaluated for this check"
        # Text, not markup: notes hold brackets ([channel=web]) that rich would take for styles.
        table.add_row(Text(str(c.get("expr"))), format_value(c.get("value")), mark, Text(note))
    return table


def _per_class_table(evaluation: Evaluation) -> Table | None:
    header, rows = per_class(evaluation)
    if not rows:
        return None
    table = Table(title="per class", title_justify="left")
    table.add_column(header[0], justify="right")
    for name in header[1:]:
        table.add_column(name, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def to_table(evaluation: Evaluation, *, stdout: bool = False, width: int | None = None) -> str:
    """Render the results (and the checks, if any) as rich tables, returned as text (see ``rich_text``)."""
    inp = evaluation.input
    title = f"lossctl · {', '.join(inp.files) if len(inp.files) <= 3 else f'{len(inp.files)} files'}"
    caption = f"{_columns_line(evaluation)}\ntask: {inp.task or 'unknown'} · {inp.rows:,} rows read"
    if inp.rows_dropped:
        caption += f", {inp.rows_dropped:,} dropped"
    if evaluation.arms:
        return _compare_table(evaluation, title, caption, stdout=stdout, width=width)
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column("name", overflow="fold")
    table.add_column("kind")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("", justify="center")
    table.add_column("note", overflow="fold")
    for r in evaluation.overall:
        arrow = "↓" if r.direction == "min" else "↑"
        table.add_row(Text(display_name(r)), r.kind, format_result(r), arrow, Text(r.note or ""))
    parts: list[Table | Text] = [table]
    classes = _per_class_table(evaluation)
    if classes is not None:
        parts += [Text(""), classes]
    headers, rows = group_grid(evaluation)
    if headers:
        groups = Table(title=f"by {', '.join(evaluation.by)}", title_justify="left")
        for i, h in enumerate(headers):
            groups.add_column(h, justify="left" if i < len(evaluation.by) else "right")
        for row in rows:
            groups.add_row(*(Text(cell) for cell in row))
        parts += [Text(""), groups]
    if evaluation.checks:
        parts += [Text(""), _checks_table(evaluation)]
    return rich_text(*parts, stdout=stdout, width=width)


_STYLE = {"better": "green", "worse": "red"}


def _compare_table(evaluation: Evaluation, title: str, caption: str, *, stdout: bool, width: int | None) -> str:
    """``lossctl compare``: baseline, candidate and delta per spec; the delta green when better, red when worse."""
    header, rows, changes = compare_rows(evaluation)
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 or i == len(header) - 1 else "right", overflow="fold")
    for row, change in zip(rows, changes, strict=True):
        style = _STYLE.get(change or "", "")
        cells = [Text(cell, style=style if i in (3, len(row) - 1) else "") for i, cell in enumerate(row)]
        table.add_row(*cells)
    parts: list[Table | Text] = [table]
    headers, grid, grid_changes = delta_grid(evaluation)
    if headers:
        groups = Table(title=f"delta by {', '.join(evaluation.by)}", title_justify="left")
        for i, h in enumerate(headers):
            groups.add_column(h, justify="left" if i < len(evaluation.by) else "right")
        for row, marks in zip(grid, grid_changes, strict=True):
            groups.add_row(*(Text(cell, style=_STYLE.get(m or "", "")) for cell, m in zip(row, marks, strict=True)))
        parts += [Text(""), groups]
    if evaluation.checks:
        parts += [Text(""), _checks_table(evaluation)]
    return rich_text(*parts, stdout=stdout, width=width)

"""Markdown for a CI job summary (``-f markdown >> $GITHUB_STEP_SUMMARY``).

A heading with the verdict, a line naming the input, the results table,
the per-class table (when results have per-class values), the checks table
and the warnings, in GitHub-flavoured Markdown. Every
piece of text that comes from the user (file and column names, specs) is
escaped, so a ``|`` in a file name cannot break a table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lossctl.render import (
    checks_summary,
    display_name,
    format_result,
    format_value,
    group_grid,
    per_class,
)
from lossctl.render.compare import compare_rows, delta_grid
from lossctl.results import Evaluation

_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def escape(text: str) -> str:
    """Escape Markdown syntax in free text and keep it on one line (a table cell)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def code(text: str, *, cell: bool = True) -> str:
    """A code span for names, specs and expressions.

    In a table ``cell`` a ``|`` is escaped: GFM splits cells on it even inside code spans.
    """
    text = " ".join(str(text).split())
    if cell:
        text = text.replace("|", "\\|")
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def to_markdown(evaluation: Evaluation) -> str:
    """Render the results, checks and warnings as Markdown text."""
    inp = evaluation.input
    lines: list[str] = []
    if evaluation.checks:
        icon = "✅" if evaluation.passed else "❌"
        lines.append(f"### {icon} lossctl: {escape(checks_summary(evaluation))}")
    else:
        lines.append("### lossctl results")
    lines.append("")
    files = ", ".join(code(f, cell=False) for f in inp.files)
    roles = ", ".join(
        f"{role} = {code(','.join(info.columns), cell=False)}{' (picked)' if info.picked else ''}"
        for role, info in inp.roles.items()
    )
    summary = f"{files} · {roles} · task: {escape(inp.task or 'unknown')} · {inp.rows:,} rows"
    if inp.rows_dropped:
        summary += f" ({inp.rows_dropped:,} dropped)"
    lines += [summary, ""]
    if evaluation.arms:
        lines += _compare_lines(evaluation)
        lines += _checks_and_warnings(evaluation)
        return "\n".join(lines) + "\n"
    lines.append(_row(["name", "kind", "value", "", "note"]))
    lines.append("| --- | --- | ---: | :---: | --- |")
    for r in evaluation.overall:
        arrow = "↓" if r.direction == "min" else "↑"
        lines.append(_row([code(display_name(r)), r.kind, format_result(r), arrow, escape(r.note or "")]))
    header, rows = per_class(evaluation)
    if rows:
        lines += ["", "**Per class**", "", _row([h if h in ("class", "support") else code(h) for h in header])]
        lines.append("| " + " | ".join("---:" for _ in header) + " |")
        lines += [_row(row) for row in rows]
    headers, rows = group_grid(evaluation)
    if headers:
        lines += ["", f"**By {escape(', '.join(evaluation.by))}**", "", _row([escape(h) for h in headers])]
        lines.append("| " + " | ".join("---" if i < len(evaluation.by) else "---:" for i in range(len(headers))) + " |")
        lines += [_row([escape(c) for c in row]) for row in rows]
    lines += _checks_and_warnings(evaluation)
    return "\n".join(lines) + "\n"


def _checks_and_warnings(evaluation: Evaluation) -> list[str]:
    lines: list[str] = []
    if evaluation.checks:
        lines += ["", _row(["check", "value", "result", "note"]), "| --- | ---: | :---: | --- |"]
        for c in evaluation.checks:
            result = "✅ pass" if c.get("passed") else "❌ fail"
            lines.append(
                _row([code(str(c.get("expr"))), format_value(c.get("value")), result, escape(str(c.get("note") or ""))])
            )
    if evaluation.warnings:
        lines += ["", "**Warnings**", ""]
        lines += [f"- {escape(w)}" for w in evaluation.warnings]
    return lines


_MARK = {"better": "🟢 better", "worse": "🔴 worse", "same": "⚪ same"}


def _compare_lines(evaluation: Evaluation) -> list[str]:
    """A pull-request comment: baseline, candidate, delta per spec (and per group with --by)."""
    header, rows, changes = compare_rows(evaluation)
    lines = [_row(header[:-1] + ["change"]), "| --- | " + " | ".join("---:" for _ in header[1:-1]) + " | --- |"]
    for row, change in zip(rows, changes, strict=True):
        cells = [code(row[0]), *(escape(c) for c in row[1:-1]), _MARK.get(change or "", escape(row[-1]))]
        lines.append(_row(cells))
    headers, grid, _ = delta_grid(evaluation)
    if headers:
        lines += ["", f"**Delta by {escape(', '.join(evaluation.by))}**", "", _row([escape(h) for h in headers])]
        lines.append("| " + " | ".join("---" if i < len(evaluation.by) else "---:" for i in range(len(headers))) + " |")
        lines += [_row([escape(c) for c in row]) for row in grid]
    return lines


def markdown_error(message: str, files: Sequence[str]) -> str:
    """The job summary of a run stopped by a data error: the verdict, the input and the message."""
    lines = ["### ❌ lossctl: data error", ""]
    if files:
        lines += [", ".join(code(f, cell=False) for f in files), ""]
    lines.append(f"lossctl stopped before a result: {escape(message)}")
    return "\n".join(lines) + "\n"

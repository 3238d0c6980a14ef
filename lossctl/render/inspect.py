"""``lossctl inspect`` output: a rich summary or the JSON document."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from lossctl.render import format_value, rich_text

if TYPE_CHECKING:
    from lossctl.inspection import Inspection


def inspection_json(result: Inspection) -> str:
    """The JSON document (``allow_nan=False``: ranges are finite or null)."""
    return json.dumps(result.to_dict(), allow_nan=False, indent=2, ensure_ascii=False) + "\n"


def inspection_table(result: Inspection, *, stdout: bool = False, width: int | None = None) -> str:
    """Schema tables, then what eval would pick, infer and compute."""
    parts: list[Table | Text] = []
    for t in result.tables:
        rows = "row count known once read" if t["rows"] is None else f"{t['rows']:,} rows"
        parts.append(Text(f"{t['source']} · {t['format'] or '?'}", style="italic"))
        table = Table(caption=rows, caption_justify="left")
        table.add_column("column", overflow="fold")
        table.add_column("kind")
        table.add_column("type", overflow="fold")
        table.add_column("width", justify="right")
        for c in t["columns"]:
            table.add_row(c["name"], c["kind"], c["dtype"], "?" if c["width"] is None else str(c["width"]))
        parts.append(table)
    lines: list[str] = []
    if result.columns is not None:
        parts.append(Text("eval would read", style="italic"))
        picked = Table()
        picked.add_column("role")
        picked.add_column("columns", overflow="fold")
        picked.add_column("how")
        picked.add_column("width", justify="right")
        picked.add_column("min", justify="right", no_wrap=True)
        picked.add_column("max", justify="right", no_wrap=True)
        picked.add_column("not finite", justify="right")
        for role, info in result.columns.items():
            stats = result.stats.get(role)
            picked.add_row(
                role,
                ",".join(info["columns"]) if len(info["columns"]) <= 4 else f"{info['columns'][0]}…{info['columns'][-1]} ({len(info['columns'])})",
                "picked" if info["picked"] else "named",
                str(info.get("width", "?")),
                format_value(stats.low if stats else None),
                format_value(stats.high if stats else None),
                str(stats.nonfinite if stats else "?"),
            )
        parts.append(picked)
        lines.append(f"rows: {'unknown' if result.rows is None else f'{result.rows:,}'}")
        lines.append(f"task: {result.task or 'unknown (no rows)'}")
        if result.defaults:
            lines.append(f"eval computes by default: {', '.join(result.defaults)}")
    if result.problem:
        lines.append(f"eval would stop: {result.problem}")
    if lines:
        parts.append(Text("\n".join(lines)))
    return rich_text(*parts, stdout=stdout, width=width)

"""``lossctl worst`` output: a rich table, the JSON document, or CSV rows."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from lossctl.render import format_value, rich_text

if TYPE_CHECKING:
    from lossctl.perrow import WorstRows


def worst_json(result: WorstRows) -> str:
    """The JSON document: full precision, non-finite values as null with a note."""
    return json.dumps(result.to_dict(), allow_nan=False, indent=2, ensure_ascii=False) + "\n"


def _names(result: WorstRows, role: str, width: int) -> list[str]:
    """CSV column names of a role's values: the source columns, or ``col[i]`` for a list column."""
    info = result.evaluation.input.roles.get(role)
    if info is None:
        return []
    if width == 1:
        return [role]
    if len(info.columns) == width:
        return [f"{role}:{c}" for c in info.columns]
    return [f"{role}[{i}]" for i in range(width)]


def _flat(value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    return ["" if v is None else repr(float(v)) for v in values]


def worst_csv(result: WorstRows) -> str:
    """One line per row: rank, row, value, then y_true, y_pred (one column per value) and weight."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    weighted = any("weight" in r for r in result.rows)
    roles = ["y_true", "y_pred"] + (["weight"] if weighted else [])
    widths = {}
    for role in roles:
        first = result.rows[0].get(role) if result.rows else None
        widths[role] = len(first) if isinstance(first, list) else 1
    header = ["rank", "row", result.spec.spec]
    for role in roles:
        header += _names(result, role, widths[role])
    writer.writerow(header + (["weighted_value"] if weighted else []))
    for r in result.rows:
        line = [r["rank"], r["row"], "" if r["value"] is None else repr(r["value"])]
        for role in roles:
            line += _flat(r.get(role))
        if weighted:
            line += _flat(r.get("weighted_value"))
        writer.writerow(line)
    return buf.getvalue()


def _shown(value: Any) -> str:
    if isinstance(value, list):
        inner = ", ".join(format_value(v) for v in value[:6])
        return f"[{inner}{', …' if len(value) > 6 else ''}]"
    return format_value(value)


def worst_table(result: WorstRows, *, stdout: bool = False, width: int | None = None) -> str:
    """A rich table of the worst rows, the overall value in the caption."""
    ev = result.evaluation
    overall = ev.results[0]
    order = "largest" if overall.direction == "min" else "smallest"
    title = f"lossctl worst · {', '.join(ev.input.files)} · {result.spec.spec} ({order} first)"
    caption = (
        f"overall {overall.spec} = {format_value(overall.value)}"
        + (f" ({overall.note})" if overall.note else "")
        + f" · {ev.input.rows:,} rows read"
        + (f", {ev.input.rows_dropped:,} dropped" if ev.input.rows_dropped else "")
    )
    table = Table(caption=caption, caption_justify="left")
    table.add_column("#", justify="right")
    table.add_column("row", justify="right")
    table.add_column(result.spec.spec, justify="right", no_wrap=True)
    table.add_column("y_true", justify="right")
    table.add_column("y_pred", justify="right")
    has_weight = any("weight" in r for r in result.rows)
    if has_weight:
        table.add_column("weight", justify="right")
        table.add_column("weight × value", justify="right")
    for r in result.rows:
        cells = [str(r["rank"]), str(r["row"]), format_value(r["value"]) + (f" ({r['note']})" if r.get("note") else ""), _shown(r["y_true"]), _shown(r["y_pred"])]
        if has_weight:
            cells += [_shown(r.get("weight")), _shown(r.get("weighted_value"))]
        table.add_row(*cells)
    # The title soft-wrapped: a long path stays on one line (a file name cut in two cannot be copied).
    return rich_text(Text(title, style="italic"), table, stdout=stdout, width=width)

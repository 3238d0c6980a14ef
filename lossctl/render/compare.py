"""A comparison's view (``lossctl compare``): per spec the baseline, the candidate and the delta.

Shared by the table and markdown renderers: rows of text cells and, per
row, whether the candidate is better, worse or the same, for colours and
marks. No metric logic: the delta, its interval and p-value come computed.
"""

from __future__ import annotations

from lossctl.render import display_name, format_result, format_value
from lossctl.results import Evaluation, MetricResult

ARMS = ("baseline", "candidate", "delta")


def _triples(evaluation: Evaluation, grouped: bool) -> list[tuple[MetricResult, MetricResult, MetricResult]]:
    rows = [r for r in evaluation.results if (r.group is not None) == grouped]
    return [tuple(rows[i : i + 3]) for i in range(0, len(rows), 3)]  # type: ignore[misc]


def _delta_text(d: MetricResult) -> str:
    if d.value is None:
        return "—"
    text = format_result(d)
    return text if text.startswith("-") else "+" + text


def compare_rows(evaluation: Evaluation) -> tuple[list[str], list[list[str]], list[str | None]]:
    """Header, one row per spec (name, baseline, candidate, delta[, p]), and each row's change."""
    intervals = any(r.ci is not None for r in evaluation.results)
    header = ["name", "baseline", "candidate", "delta", *(["p"] if intervals else []), ""]
    rows, changes = [], []
    for b, c, d in _triples(evaluation, grouped=False):
        change = d.extra.get("change")
        arrow = "↓" if d.direction == "min" else "↑"
        cells = [f"{display_name(d)} {arrow}", format_result(b), format_result(c), _delta_text(d)]
        if intervals:
            cells.append(format_value((d.ci or {}).get("p_value")))
        cells.append(change or (d.note or ""))
        rows.append(cells)
        changes.append(change)
    return header, rows, changes


def delta_grid(evaluation: Evaluation) -> tuple[list[str], list[list[str]], list[list[str | None]]]:
    """With ``--by``: one row per group, one delta column per spec, and each cell's change."""
    if not evaluation.by:
        return [], [], []
    triples = _triples(evaluation, grouped=True)
    specs = [d for _, _, d in _triples(evaluation, grouped=False)]
    header = [*evaluation.by, *(f"Δ {d.spec} {'↓' if d.direction == 'min' else '↑'}" for d in specs), "rows"]
    rows, changes = [], []
    for i in range(0, len(triples), len(specs)):
        block = triples[i : i + len(specs)]
        group = block[0][2].group or {}
        key = ["null" if group.get(c) is None else str(group.get(c)) for c in evaluation.by]
        rows.append([*key, *(_delta_text(d) for _, _, d in block), f"{max(d.rows for _, _, d in block):,}"])
        changes.append([None] * len(key) + [d.extra.get("change") for _, _, d in block] + [None])
    return header, rows, changes

"""CSV: one row per result, values at full precision (``repr``), for spreadsheets and scripts.

Columns: ``name, spec, kind, value, note, rows, direction, params`` (JSON),
``resolved_from`` and ``extra`` (JSON of any further fields: ``per_class``,
``group``); with ``--by`` a column per group column after ``kind``; with
``--ci``, ``ci_low, ci_high, se`` after ``value``; in a comparison, ``arm``
before ``value`` (and ``p_value`` after ``se``). An undefined value is an empty cell with its ``note``. Checks
are not rows of this table; the exit code and the JSON document carry them.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from lossctl.results import Evaluation

COLUMNS = ("name", "spec", "kind", "value", "note", "rows", "direction", "params", "resolved_from", "extra")


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, sort_keys=True, default=str)


def _bounds(ci: Any, p_value: bool) -> list[str]:
    ci = ci or {}
    keys = ("low", "high", "se", "p_value") if p_value else ("low", "high", "se")
    return ["" if ci.get(k) is None else repr(float(ci[k])) for k in keys]


def to_csv(evaluation: Evaluation) -> str:
    """Serialize the results as CSV text (``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    by = list(evaluation.by)
    intervals = any(r.ci is not None for r in evaluation.results)
    arms = ["arm"] if evaluation.arms else []
    bounds = (["ci_low", "ci_high", "se"] + (["p_value"] if arms else [])) if intervals else []
    writer.writerow([*COLUMNS[:3], *by, *arms, COLUMNS[3], *bounds, *COLUMNS[4:]])
    params: dict[str, str] = {}  # per spec: the same for every group
    for r in evaluation.results:
        if r.spec not in params:
            params[r.spec] = _json(dict(r.params))
        key = ["" if r.group is None or r.group.get(c) is None else str(r.group.get(c)) for c in by]
        extra = {k: v for k, v in r.extra.items() if k != "resolved_from"}
        writer.writerow(
            [
                r.name,
                r.spec,
                r.kind,
                *key,
                *([r.arm or ""] if arms else []),
                "" if r.value is None else repr(float(r.value)),
                *(_bounds(r.ci, bool(arms)) if intervals else []),
                r.note or "",
                r.rows,
                r.direction,
                params[r.spec],
                r.extra.get("resolved_from") or "",
                _json(extra) if extra else "",
            ]
        )
    return buf.getvalue()

"""A comparison's third arm: candidate − baseline per spec (and group), paired.

Both arms were evaluated on the same rows with the same bootstrap weights
(``--ci``): replicate ``b`` of the delta is replicate ``b`` of the candidate
minus replicate ``b`` of the baseline, so the interval of the delta is the
paired one, and its two-sided p-value is the paired bootstrap's: how often
the replicates' delta falls on the other side of zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from lossctl.accumulate import Value
from lossctl.bootstrap import interval
from lossctl.plan import Plan
from lossctl.replicates import Replication
from lossctl.results import MetricResult

DELTA = "delta"
Cell = tuple[Value, int, list[Value] | None]


class _Values(Protocol):
    overall: list[Cell]
    grouped: list[list[Cell]]


def deltas(
    plan: Plan,
    baseline: _Values,
    candidate: _Values,
    base_rows: tuple[list[MetricResult], dict[int, list[MetricResult]]],
    cand_rows: tuple[list[MetricResult], dict[int, list[MetricResult]]],
) -> tuple[list[MetricResult], dict[int, list[MetricResult]]]:
    """The delta rows: overall per spec, and per group with ``--by``."""
    rep = plan.replication
    overall = [
        delta(b, c, baseline.overall[i][2], candidate.overall[i][2], rep)
        for i, (b, c) in enumerate(zip(base_rows[0], cand_rows[0], strict=True))
    ]
    grouped = {
        i: [
            delta(b, c, baseline.grouped[i][g][2], candidate.grouped[i][g][2], rep)
            for g, (b, c) in enumerate(zip(base_rows[1][i], cand_rows[1][i], strict=True))
        ]
        for i in cand_rows[1]
    }
    return overall, grouped


def delta(
    b: MetricResult,
    c: MetricResult,
    base_reps: Sequence[Value] | None,
    cand_reps: Sequence[Value] | None,
    rep: Replication | None,
) -> MetricResult:
    """Candidate − baseline, whether that is better given the direction, and with --ci the paired interval."""
    value = None if b.value is None or c.value is None else c.value - b.value
    note = None
    if value is None:
        note = f"undefined: the {'baseline' if b.value is None else 'candidate'} is ({(b if b.value is None else c).note})"
    change = _change(value, c.direction)
    extra: dict[str, Any] = {"baseline": b.value, "candidate": c.value, "change": change}
    ci: Mapping[str, Any] | None = None
    if rep is not None and base_reps is not None and cand_reps is not None:
        diffs = [
            Value(cv.value - bv.value) if bv.value is not None and cv.value is not None else Value.undefined("undefined")
            for bv, cv in zip(base_reps, cand_reps, strict=True)
        ]
        ci = {**interval(diffs, rep), "p_value": p_value([d.value for d in diffs if d.value is not None])}
    return MetricResult(
        name=c.name,
        spec=c.spec,
        kind=c.kind,
        params=c.params,
        value=value,
        rows=c.rows,
        direction=c.direction,
        note=note,
        extra=extra,
        group=c.group,
        arm=DELTA,
        ci=ci,
    )


def _change(value: float | None, direction: str) -> str | None:
    """``better``, ``worse`` or ``same`` given the metric's direction (``None`` when undefined or directionless)."""
    if value is None or direction not in ("min", "max"):
        return None
    if value == 0:
        return "same"
    return "better" if (value > 0) == (direction == "max") else "worse"


def p_value(diffs: Sequence[float]) -> float | None:
    """Two-sided paired-bootstrap p-value: ``2 (1 + min(#d <= 0, #d >= 0)) / (B + 1)``, at most 1."""
    if not diffs:
        return None
    below = sum(1 for d in diffs if d <= 0)
    above = sum(1 for d in diffs if d >= 0)
    return min(1.0, 2.0 * (1 + min(below, above)) / (len(diffs) + 1))

"""Partial → results table → Evaluation: values, warnings and judged checks.

``finish`` is the last step of every engine and of ``merge``: each spec's
accumulator finishes its (possibly shared) state, the results are keyed by
spec (and, as slices and comparison arrive, by group and arm), and the
checks are judged against that table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from lossctl._version import __version__
from lossctl.accumulate import Accumulator, Value
from lossctl.batch import EPSILON
from lossctl.checks import judge
from lossctl.groups import group_text, key_dict, sort_key
from lossctl.partial import Partial
from lossctl.plan import Plan
from lossctl.registry import Resolved, not_applicable
from lossctl.results import Evaluation, InputSummary, MetricResult, RoleInfo
from lossctl.state import State

# Shared by every result without extra values (results never modify it).
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _result(
    r: Resolved, value: Value, rows: int, group: Mapping[str, Any] | None, direction: str | None = None
) -> MetricResult:
    extra: Mapping[str, Any] = value.extra
    if r.resolved_from is not None:
        extra = {**extra, "resolved_from": r.resolved_from}
    return MetricResult(
        name=r.name,
        spec=r.spec,
        kind=r.kind,
        params=r.params,
        value=value.value,
        rows=rows,
        direction=direction or r.entry.direction_for(r.kind),
        note=value.note,
        extra=extra or _NO_EXTRA,
        group=group,
    )


def result_of(
    r: Resolved, acc: Accumulator, state: State, slot: int = 0, group: Mapping[str, Any] | None = None
) -> MetricResult:
    """One spec's result from its state's ``slot``.

    ``rows`` counts the rows that entered the state (scce's ``ignore_class``
    leaves some out).
    """
    return _result(r, acc.finish(state, slot), state.rows(slot), group)


def finish(
    plan: Plan,
    partial: Partial,
    files: tuple[str, ...],
    signature: Mapping[str, Any],
    extra_warnings: tuple[str, ...] = (),
) -> Evaluation:
    """The evaluation of ``partial`` under ``plan`` (its errors were raised before)."""
    counted = partial.rows - partial.dropped
    pairs = list(zip(plan.specs, plan.accumulators, strict=True))
    groups = partial.groups
    if groups is None:
        states = partial.states
    else:
        # The overall value is the merge of every group's slot: no second update.
        states = {key: state.collapse(len(groups)) for key, state in partial.states.items()}
    results = tuple(result_of(r, acc, states[acc.key]) for r, acc in pairs)
    grouped: dict[int, list[MetricResult]] = {}
    if groups is not None:
        # A group all of whose rows were dropped (--nan drop) was never observed.
        seen = [
            i for i in range(len(groups)) if any(i < st.slots and st.rows(i) for st in partial.states.values())
        ]
        order = sorted(seen, key=lambda i: sort_key(groups[i]))
        keys = [key_dict(plan.by, groups[slot]) for slot in order]
        for i, (r, acc) in enumerate(pairs):
            state = partial.states[acc.key]
            values = acc.finish_slots(state, order)
            rows = state.data["rows"][order].tolist() if order else []
            direction = r.entry.direction_for(r.kind)
            grouped[i] = [
                _result(r, value, n, key, direction) for value, n, key in zip(values, rows, keys, strict=True)
            ]
    warnings: list[str] = [partial.warned[i][1] for i in sorted(partial.warned)]
    warnings += parameter_warnings(plan, results)
    if partial.rows == 0:
        warnings.append("no rows: every value is undefined")
    if partial.dropped:
        warnings.append(f"dropped {partial.dropped} rows with NaN or infinite values (--nan drop)")
    if counted > 0:
        # An undefined value (a zero weight sum, NaN under --nan propagate) must not pass unnoticed.
        warnings += [
            f"{r.spec}: {r.note}" if "undefined" in (r.note or "") else f"{r.spec}: undefined ({r.note})"
            for r in results
            if r.value is None
        ]
    undefined = [g for rows in grouped.values() for g in rows if g.value is None]
    if undefined:
        first = undefined[0]
        warnings.append(
            f"{len(undefined)} group result(s) undefined, e.g. {first.spec} [{group_text(first.group or {})}]: {first.note}"
        )
    warnings += extra_warnings
    roles = {
        role.role: RoleInfo(role.role, role.source, role.columns, role.picked, role.width)
        for role in plan.roles.values()
    }
    summary = InputSummary(files, roles, plan.task, partial.rows, partial.dropped)
    by_group = tuple(g for slot_rows in zip(*grouped.values(), strict=True) for g in slot_rows) if grouped else ()
    return Evaluation(
        input=summary,
        results=results + by_group,
        version=__version__,
        signature=dict(signature),
        warnings=tuple(warnings),
        checks=judge(plan.checks, results, grouped if groups is not None else None),
        by=plan.by,
    )


def parameter_warnings(plan: Plan, results: Sequence[MetricResult] = ()) -> list[str]:
    """Parameters given that cannot apply to this input's shapes (none before any row was read).

    A result over several class labels read from one column (``classes`` in
    its extra: precision of predicted labels) counts as that many columns.
    """
    true, pred = plan.roles.get("y_true"), plan.roles.get("y_pred")
    if true is None or pred is None or true.width is None or pred.width is None:
        return []
    out = []
    for i, r in enumerate(plan.specs):
        classes = results[i].extra.get("classes") if i < len(results) else None
        widths = (len(classes), len(classes)) if classes else (true.width, pred.width)
        out += not_applicable(r, *widths)
    return out


def signature(
    chunk_size: int | None, nan: str, sizes: Mapping[str, int | None], plugins: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """What makes the numbers reproducible (SPEC section 5); ``plugins``: records of the plugins used."""
    return {
        "lossctl": __version__,
        "epsilon": EPSILON,
        "chunk_size": chunk_size,
        "nan": nan,
        "auc_method": "exact",
        "seed": None,
        "input_bytes": dict(sizes),
        "plugins": [{"name": p["name"], "sha256": p["sha256"]} for p in plugins],
    }

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

import numpy as np

from lossctl._version import __version__
from lossctl.accumulate import Value
from lossctl.batch import EPSILON
from lossctl.bootstrap import interval, replicate_values
from lossctl.checks import judge
from lossctl.deltas import DELTA, deltas
from lossctl.groups import group_text, key_dict, sort_key
from lossctl.pairing import BASELINE, CANDIDATE
from lossctl.partial import Partial
from lossctl.plan import Plan
from lossctl.registry import Resolved, not_applicable
from lossctl.replicates import Replication
from lossctl.results import Evaluation, InputSummary, MetricResult, RoleInfo

# Shared by every result without extra values (results never modify it).
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class _Table:
    """One arm's values: per spec, the overall result and, with ``--by``, each group's; replicates with ``--ci``."""

    def __init__(self, plan: Plan, partial: Partial, arm: str | None) -> None:
        groups, rep = partial.groups, plan.replication
        stride = 1 if rep is None else rep.stride
        own = {key: partial.states[plan.state_key(arm, key)] for key in plan.by_key}
        # The overall value is the merge of every group's slots: no second update.
        whole = own if groups is None else {k: s.collapse(len(groups), stride) for k, s in own.items()}
        pairs = list(zip(plan.specs, plan.accumulators, strict=True))
        self.overall: list[tuple[Value, int, list[Value] | None]] = []
        for _, acc in pairs:
            state = whole[acc.key]
            reps = None if rep is None else replicate_values(acc, state, 0, rep)
            self.overall.append((acc.finish(state, 0), state.rows(0), reps))
        self.keys: list[dict[str, Any]] = []
        self.grouped: list[list[tuple[Value, int, list[Value] | None]]] = []
        if groups is None:
            return
        # A group all of whose rows were dropped (--nan drop) was never observed.
        observed = np.zeros(len(groups), dtype=bool)
        for st in own.values():
            counts = st.data["rows"][: len(groups) * stride : stride]
            observed[: len(counts)] |= counts > 0
        seen = np.flatnonzero(observed).tolist()
        order = sorted(seen, key=lambda i: sort_key(groups[i]))
        self.keys = [key_dict(plan.by, groups[i]) for i in order]
        bases = [i * stride for i in order]
        for _, acc in pairs:
            state = own[acc.key]
            values = acc.finish_slots(state, bases)
            rows = state.data["rows"][bases].tolist() if bases else []
            reps = [None if rep is None else replicate_values(acc, state, b, rep) for b in bases]
            self.grouped.append(list(zip(values, rows, reps, strict=True)))


def finish(
    plan: Plan,
    partial: Partial,
    files: tuple[str, ...],
    signature: Mapping[str, Any],
    extra_warnings: tuple[str, ...] = (),
) -> Evaluation:
    """The evaluation of ``partial`` under ``plan`` (its errors were raised before)."""
    rep = plan.replication
    tables = {arm: _Table(plan, partial, arm) for arm in (plan.arms or (None,))}

    def rows_of(table: _Table, arm: str | None) -> tuple[list[MetricResult], dict[int, list[MetricResult]]]:
        results, grouped = [], {}
        for i, r in enumerate(plan.specs):
            direction = r.entry.direction_for(r.kind)
            value, n, reps = table.overall[i]
            results.append(_result(r, value, n, None, direction, _ci(reps, rep), arm))
            if table.keys:
                grouped[i] = [
                    _result(r, v, m, key, direction, _ci(reps_g, rep), arm)
                    for key, (v, m, reps_g) in zip(table.keys, table.grouped[i], strict=True)
                ]
        return results, grouped

    by_arm = {arm: rows_of(table, arm) for arm, table in tables.items()}
    if plan.arms:
        by_arm[DELTA] = deltas(plan, tables[BASELINE], tables[CANDIDATE], by_arm[BASELINE], by_arm[CANDIDATE])
    main = by_arm[CANDIDATE if plan.arms else None]
    warnings = _warnings(plan, partial, [by_arm[a] for a in (plan.arms or (None,))])
    warnings += extra_warnings
    roles = {
        role.role: RoleInfo(role.role, role.source, role.columns, role.picked, role.width)
        for role in plan.roles.values()
    }
    summary = InputSummary(files, roles, plan.task, partial.rows, partial.dropped)
    order = (BASELINE, CANDIDATE, DELTA) if plan.arms else (None,)
    overall = tuple(by_arm[arm][0][i] for i in range(len(plan.specs)) for arm in order)
    by_group: tuple[MetricResult, ...] = ()
    if partial.groups is not None and main[1]:
        count = len(next(iter(main[1].values())))
        by_group = tuple(by_arm[arm][1][i][g] for g in range(count) for i in range(len(plan.specs)) for arm in order)
    sliced = partial.groups is not None
    # What each compare(...) check reads: per arm, the overall results and the groups'.
    arms = {arm: (by_arm[arm][0], by_arm[arm][1] if sliced else None) for arm in order if arm is not None}
    return Evaluation(
        input=summary,
        results=overall + by_group,
        version=__version__,
        signature=dict(signature),
        warnings=tuple(warnings),
        checks=judge(plan.checks, main[0], main[1] if sliced else None, arms or None),
        by=plan.by,
        arms=plan.arms,
    )


def _result(
    r: Resolved,
    value: Value,
    rows: int,
    group: Mapping[str, Any] | None,
    direction: str | None = None,
    ci: Mapping[str, Any] | None = None,
    arm: str | None = None,
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
        ci=ci,
        arm=arm,
    )


def _ci(reps: list[Value] | None, rep: Replication | None) -> Mapping[str, Any] | None:
    return None if reps is None or rep is None else interval(reps, rep)


def _warnings(
    plan: Plan, partial: Partial, arms: list[tuple[list[MetricResult], dict[int, list[MetricResult]]]]
) -> list[str]:
    warnings: list[str] = [partial.warned[i][1] for i in sorted(partial.warned)]
    warnings += parameter_warnings(plan, arms[0][0] if arms else ())
    if partial.rows == 0:
        warnings.append("no rows: every value is undefined")
    if partial.dropped:
        warnings.append(f"dropped {partial.dropped} rows with NaN or infinite values (--nan drop)")
    for results, grouped in arms:
        where = f"{results[0].arm}: " if results and results[0].arm else ""
        if partial.rows - partial.dropped > 0:
            # An undefined value (a zero weight sum, NaN under --nan propagate) must not pass unnoticed.
            warnings += [
                f"{where}{r.spec}: {r.note}" if "undefined" in (r.note or "") else f"{where}{r.spec}: undefined ({r.note})"
                for r in results
                if r.value is None
            ]
        undefined = [g for rows in grouped.values() for g in rows if g.value is None]
        if undefined:
            first = undefined[0]
            warnings.append(
                f"{where}{len(undefined)} group result(s) undefined, e.g. {first.spec} "
                f"[{group_text(first.group or {})}]: {first.note}"
            )
    return warnings


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
    chunk_size: int | None,
    nan: str,
    sizes: Mapping[str, int | None],
    plugins: Sequence[Mapping[str, Any]] = (),
    replication: Replication | None = None,
) -> dict[str, Any]:
    """What makes the numbers reproducible (SPEC section 5); ``plugins``: records of the plugins used."""
    return {
        "lossctl": __version__,
        "epsilon": EPSILON,
        "chunk_size": chunk_size,
        "nan": nan,
        "auc_method": "exact",
        "seed": None if replication is None else replication.seed,
        "replicates": None if replication is None else replication.replicates,
        "input_bytes": dict(sizes),
        "plugins": [{"name": p["name"], "sha256": p["sha256"]} for p in plugins],
    }

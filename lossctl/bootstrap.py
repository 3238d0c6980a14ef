"""The Poisson bootstrap in the pass (``--ci``): replicate states, then intervals.

Replicates live on the slot axis of every state: with ``B`` replicates a
group ``g`` owns slots ``g * (B + 1) + r``, ``r = 0`` its plain rows and
``r = 1 .. B`` replicate ``r - 1`` (:class:`Replication` says how many and
with which seed). A chunk reaches the replicate slots in one of three ways,
chosen by its accumulator (see :class:`~lossctl.accumulate.Accumulator`):

- linear states (every per-row mean, R²): the weighted sums of their per-row
  columns for all replicates at once, ``W @ C`` per block of rows, ``W`` the
  replicates' Poisson weights of those rows (:mod:`lossctl.replicates`);
- states that keep every row (exact AUC, median): nothing here; they keep
  the rows' global numbers and regenerate the weights when finishing;
- any other: one update per replicate with the rows reweighted.

:func:`interval` turns a slot's replicate values into the ``ci`` object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, fold_batch
from lossctl.batch import Batch
from lossctl.replicates import PER_HASH, Replication, block_rows, by_row, counts
from lossctl.state import State


def fold(
    rep: Replication, work: Sequence[tuple[Batch, Sequence[tuple[Accumulator, State]]]], groups: np.ndarray | None
) -> None:
    """Fold a chunk's rows into the replicate slots of every state.

    ``work`` pairs batches of the same rows (a comparison's arms: the same
    ``y_true``, weights and ``rows``, other predictions) with the states
    each updates; ``batch.rows`` holds the rows' global numbers, ``groups``
    the group of each row (``None``: one group), whose slots start at
    ``group * stride``. The linear states of every batch share one matrix
    product, so the weights are generated once per block of rows.
    """
    linear: list[tuple[Accumulator, State, list[Any], Any]] = []
    for batch, updates in work:
        others: list[tuple[Accumulator, State]] = []
        # A weight per cell (Keras's per-element sample_weight) is no per-row column weight.
        per_cell = batch.weight is not None and batch.weight.ndim > 1
        for acc, state in updates:
            if acc.keeps_rows:
                continue
            form = None if per_cell else acc.linear(batch)
            if form is None:
                others.append((acc, state))
            else:
                linear.append((acc, state, *form))
        if others:
            _fold_reweighted(rep, others, batch, groups)
    if linear:
        _fold_linear(rep, linear, work[0][0], groups)


def _fold_linear(
    rep: Replication, linear: list[tuple[Accumulator, State, list[Any], Any]], batch: Batch, groups: np.ndarray | None
) -> None:
    n, b = len(batch), rep.replicates
    rows = batch.rows
    assert rows is not None
    # One matrix of every state's columns; a column of ones is shared.
    columns: list[np.ndarray] = []
    seen: dict[int, int] = {}  # the same array asked twice (mse's and R²'s squared errors): one column
    places: list[list[int]] = []
    for _, _, cols, _ in linear:
        place = []
        for c in cols:
            if id(c) not in seen:
                seen[id(c)] = len(columns)
                columns.append(np.ones(n) if c is None else c)
            place.append(seen[id(c)])
        places.append(place)
    matrix = np.column_stack(columns)
    if batch.weight is not None:
        matrix *= batch.weight[:, None]
    if groups is None:
        present = np.zeros(1, dtype=np.int64)
        sizes = np.array([n], dtype=np.int64)
        starts = np.zeros(1, dtype=np.int64)
    else:
        order = np.argsort(groups, kind="stable")
        sorted_groups = groups[order]
        starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
        present = sorted_groups[starts]
        sizes = np.diff(np.r_[starts, n])
        rows, matrix = rows[order], matrix[order]
    # sums[g, j, r]: column j's weighted sum over group g's rows in replicate r.
    sums = np.zeros((len(present), matrix.shape[1], b))
    ends = np.r_[starts[1:], n]
    step = block_rows(b)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        w = by_row(rep.seed, rows[lo:hi], b)
        # The groups whose rows fall in this block (rows are sorted by group).
        first = int(np.searchsorted(ends, lo, side="right"))
        for gi in range(first, len(present)):
            a, z = max(int(starts[gi]), lo), min(int(ends[gi]), hi)
            if a >= z:
                break
            sums[gi] += matrix[a:z].T @ w[a - lo : z - lo]
    stride = rep.stride
    slots = (present[:, None] * stride + 1 + np.arange(b)).ravel()
    counted = np.repeat(sizes, b)
    for (acc, state, _, context), place in zip(linear, places, strict=True):
        block = sums[:, place, :].transpose(0, 2, 1).reshape(len(slots), len(place))
        acc.add_sums(state, slots, block, counted, context)
        state.data["rows"][slots] += counted


def _fold_reweighted(
    rep: Replication, others: list[tuple[Accumulator, State]], batch: Batch, groups: np.ndarray | None
) -> None:
    rows = batch.rows
    assert rows is not None
    for first in range(0, rep.replicates, PER_HASH):
        count = min(PER_HASH, rep.replicates - first)
        block = counts(rep.seed, rows, first, count)
        for j in range(count):
            w = block[j].astype(np.float64)
            if batch.weight is not None:
                w = (w if batch.weight.ndim == 1 else w[:, None]) * batch.weight
            r = 1 + first + j
            if groups is None:
                part = batch.reweighted(w, slot=r)
            else:
                part = batch.reweighted(w, groups=groups * rep.stride + r)
            fold_batch(others, part)


def cost(acc: Accumulator) -> str:
    """What ``--ci`` costs this accumulator (``explain`` says it)."""
    inner = getattr(acc, "inner", acc)
    if getattr(inner, "ci_cost", None):
        return str(inner.ci_cost)
    if inner.keeps_rows:
        return (
            "keeps each row's number too (8 bytes a row more); each replicate is recomputed from the kept "
            "rows at the end, the rows sorted once"
        )
    if type(inner).linear is not Accumulator.linear:
        return "cheap: every replicate is one weighted sum per row block, shared by all such metrics (a matrix product)"
    return "B updates per chunk (one per replicate, the rows reweighted): about B times a plain pass"


def replicate_values(acc: Accumulator, state: State, base: int, rep: Replication) -> list[Value]:
    """The value of every replicate of the group whose slots start at ``base``."""
    if acc.keeps_rows:
        return acc.finish_replicates(state, base, rep.weigh, rep.replicates)
    return acc.finish_slots(state, range(base + 1, base + 1 + rep.replicates))


def interval(values: Sequence[Value], rep: Replication) -> dict[str, Any]:
    """The ``ci`` object of one result: percentile interval of the defined replicates and their se.

    Undefined replicates (a replicate that drew no positive, a zero weight
    sum) are left out and counted; when more than half are undefined the
    interval is null with a note.
    """
    defined = np.array([v.value for v in values if v.value is not None], dtype=np.float64)
    undefined = len(values) - len(defined)
    out: dict[str, Any] = {
        "level": rep.level,
        "method": "percentile",
        "replicates": rep.replicates,
        "seed": rep.seed,
        "undefined": undefined,
    }
    if len(defined) == 0 or undefined * 2 > len(values):
        out.update(low=None, high=None, se=None)
        out["note"] = f"{undefined} of {len(values)} replicates undefined: no interval"
        return out
    tail = (1.0 - rep.level) / 2.0
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    se = float(np.std(defined, ddof=1)) if len(defined) > 1 else None
    out.update(low=_finite(low), high=_finite(high), se=se if se is None else _finite(se))
    if undefined:
        out["note"] = f"{undefined} of {len(values)} replicates undefined; the interval uses the others"
    return out


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None

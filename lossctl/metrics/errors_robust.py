"""Robust errors, with scikit-learn's numerics: median absolute error, max error, pinball loss.

The median keeps every row's absolute error (it is exact, so it needs them
all); the maximum keeps one value per slot; the pinball (quantile) loss is
the weighted mean of a per-row kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import F64, Batch, row_mean
from lossctl.errors import DataError
from lossctl.metrics._sklearn_inputs import MACHINE_EPS
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, kernel, register
from lossctl.state import State

_SAME = "y_true and y_pred of the same shape: (N,) or (N, D); real values"


def weighted_median(values: F64, weight: F64) -> F64:
    """Per-column weighted median, as scikit-learn's ``_weighted_percentile(average=True)``.

    The "averaged inverted CDF": sort, accumulate the weights, take the first
    value whose cumulative weight reaches half the total; when it reaches it
    exactly (within machine epsilon), average it with the next value of
    non-zero weight. With unit weights this is the ordinary median.

    Args:
        values: (N, D) values, N > 0.
        weight: (N,) non-negative weights with a positive sum.

    Returns:
        (D,) medians.
    """
    n, d = values.shape
    cols = np.arange(d)
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    w = weight[order]
    cdf = np.cumsum(w, axis=0)
    half = 0.5 * cdf[-1]
    # searchsorted(cdf, half, side="left") per column: how many cumulative sums fall short.
    at = np.minimum(np.sum(cdf < half, axis=0), n - 1)
    exact = (cdf[at, cols] - half) <= MACHINE_EPS
    after = np.minimum(at + 1, n - 1)
    # When the next value has zero weight, move on to the next one that has weight (if any).
    past = np.sum(cdf <= cdf[at, cols], axis=0)
    skip = np.where(past > n - 1, at, past)
    after = np.where(w[after, cols] == 0, skip, after)
    low = ordered[at, cols]
    return np.where(exact, (low + ordered[after, cols]) / 2.0, low)


class MedianAbsoluteError(Accumulator):
    """Every row's absolute errors (and weights): the exact median needs them all.

    Arrays (``concat``): ``abs_error``, ``(N, D)`` chunks of absolute errors,
    8 bytes a row per output column; ``weight``, ``(N,)`` chunks of the
    weights when rows have weights (8 bytes a row more). Merging
    concatenates; finishing sorts, so row order does not matter. Rows with
    weights and rows without cannot be combined in one state.
    """

    fields = {"abs_error": "concat", "weight": "concat", "row": "concat"}
    # With --ci, ``row`` holds the rows' global numbers (8 bytes a row more).
    keeps_rows = True

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.key = state_key("median", MedianAbsoluteError, {})

    def update(self, state: State, batch: Batch) -> None:
        errors = batch.abs_diff
        rows = np.array(errors if errors.ndim == 2 else errors[:, None], dtype=np.float64)
        state.append("abs_error", batch.slot, rows)
        if batch.weight is not None:
            state.append("weight", batch.slot, np.array(batch.weight, dtype=np.float64))
        if batch.rows is not None:
            state.append("row", batch.slot, batch.rows)
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        errors = _consolidate(state.chunks("abs_error", slot))
        if not state.chunks("weight", slot):
            return Value.of(float(np.mean(np.median(errors, axis=0))))
        weight = _consolidate(state.chunks("weight", slot))
        if len(weight) != len(errors):
            raise DataError("median_absolute_error: cannot combine rows with weights and rows without")
        if float(weight.sum()) == 0.0:
            return Value.undefined("sum of weights is zero")
        return Value.of(float(np.mean(weighted_median(errors, weight))))


    def finish_replicates(self, state: State, slot: int, weigh: Any, replicates: int) -> list[Value]:
        """Every replicate's weighted median; the errors are sorted once (a stable sort of sorted rows is linear)."""
        if state.rows(slot) == 0:
            return [Value.undefined("no rows")] * replicates
        errors = np.concatenate(state.chunks("abs_error", slot), axis=0)
        rows = np.concatenate(state.chunks("row", slot))
        if len(rows) != len(errors):
            raise DataError("median_absolute_error: the state holds no row numbers for --ci")
        base = np.concatenate(state.chunks("weight", slot)) if state.chunks("weight", slot) else None
        order = np.argsort(errors[:, 0], kind="stable")
        errors, rows = errors[order], rows[order]
        base = None if base is None else base[order]
        out: list[Value] = []
        for first in range(0, replicates, 8):
            count = min(8, replicates - first)
            block = weigh(rows, first, count)
            if base is not None:
                block *= base
            for w in block:
                if float(w.sum()) == 0.0:
                    out.append(Value.undefined("sum of weights is zero"))
                else:
                    out.append(Value.of(float(np.mean(weighted_median(errors, w)))))
        return out


def _consolidate(chunks: list[F64]) -> F64:
    """A slot's chunks as one array, which replaces them in the state (the same rows, in order)."""
    if len(chunks) != 1:
        # Empty chunks are left out: a state saved without rows has lost its column axis.
        parts = [c for c in chunks if len(c)]
        widths = sorted({c.shape[1:] for c in parts})
        if len(widths) > 1:
            raise DataError(f"cannot combine absolute errors of {widths[0][0]} and {widths[-1][0]} columns")
        chunks[:] = [np.concatenate(parts, axis=0)]
    return chunks[0]


register(
    MetricDef(
        name="median_absolute_error",
        aliases=("medae",),
        kind="metric",
        task="regression",
        direction="min",
        formula=(
            "median(|y_true - y_pred|) over the rows per output column (weighted: scikit-learn's averaged "
            "inverted CDF), then averaged over columns"
        ),
        summary="Median of absolute errors, exact (robust to outliers).",
        inputs=_SAME,
        keras=None,
        sklearn="sklearn.metrics.median_absolute_error",
        state=MedianAbsoluteError,
        memory="8 bytes a row per output column (every absolute error is kept), plus 8 bytes a row with --weight",
        example=Example([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 10.0], 2.5),
    )
)


class MaxError(Accumulator):
    """The largest absolute error seen (rows of zero weight are left out).

    Array ``max`` (merge kind ``max``, one value per slot, ``-inf`` until a
    row of positive weight is seen).
    """

    fields = {"max": "max"}

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.key = state_key("max", MaxError, {})

    def update(self, state: State, batch: Batch) -> None:
        worst = state.declare("max", "max")
        errors = batch.abs_diff
        if batch.weight is not None:
            errors = errors[batch.weight > 0]
        if errors.size:
            worst[batch.slot] = np.maximum(worst[batch.slot], float(np.max(errors)))
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        worst = float(state.data["max"][slot])
        if worst == -np.inf:
            return Value.undefined("sum of weights is zero")
        return Value.of(worst)


register(
    MetricDef(
        name="max_error",
        kind="metric",
        task="regression",
        direction="min",
        formula="max(|y_true - y_pred|) over every row (and output column) of positive weight",
        summary="Largest absolute error: the worst case.",
        inputs=_SAME,
        keras=None,
        sklearn="sklearn.metrics.max_error",
        state=MaxError,
        deviations=(
            "scikit-learn takes no weights and one output column; lossctl leaves out rows of weight 0 "
            "(other weights do not change a maximum) and takes the maximum over all columns."
        ),
        example=Example([0.0, 1.0, 2.0], [1.0, 1.0, 5.0], 3.0),
    )
)


@kernel(
    name="mean_pinball_loss",
    aliases=("pinball",),
    kind="metric",
    task="regression",
    direction="min",
    formula=(
        "mean(where(y_true >= y_pred, alpha * (y_true - y_pred), (1 - alpha) * (y_pred - y_true)), axis=-1)"
    ),
    summary="Pinball (quantile) loss of y_pred as the alpha-quantile.",
    inputs=_SAME,
    params=(Param("alpha", 0.5, float, "the quantile predicted", low=0.0, high=1.0),),
    keras=None,
    sklearn="sklearn.metrics.mean_pinball_loss",
    example=Example([1.0, 2.0], [2.0, 0.0], (0.5 + 1.0) / 2.0),
)
def mean_pinball_loss(b: Batch, *, alpha: float = 0.5) -> F64:
    """Per-row pinball loss.

    Formula: ``mean(where(y_true >= y_pred, alpha * (y_true - y_pred), (1 - alpha) * (y_pred - y_true)), axis=-1)``.

    Args:
        b: real ``y_true`` and ``y_pred`` of the same shape.
        alpha: the quantile in [0, 1].

    Returns:
        (N,) per-row losses.
    """
    d = -b.diff
    above = d >= 0
    return row_mean(np.where(above, alpha * d, -(1.0 - alpha) * d))

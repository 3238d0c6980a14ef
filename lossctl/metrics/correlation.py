"""Pearson and concordance correlation (Keras's PearsonCorrelation / ConcordanceCorrelation), explained variance.

Keras computes both correlations across the last axis of each row and
averages the per-row values; for a one-value-per-row input of shape ``(N,)``
that is one correlation along the rows. lossctl takes them over the rows,
per output column, then averages the columns (SPEC section 4): identical to
Keras for one column, different from it for several (see ``deviations``).

All three entries read one state: per column, the weighted co-moments of
``y_true``, ``y_pred`` and the residual ``y_true - y_pred``, combined with
the pairwise (Chan et al.) update (:func:`lossctl.state.fold_comoments`), so
a value over many chunks or files is what one pass gives, without the
cancellation of ``sum(x*y) - n*mean(x)*mean(y)``. Requested together, they
fill it once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import EPSILON, F64, Batch
from lossctl.comoments import comoments
from lossctl.metrics._multioutput import combine_outputs
from lossctl.params import ONE_SCORE_PER_COLUMN, ChoiceOrWeightsParam
from lossctl.registry import Example, MetricDef, register
from lossctl.state import State, fold_comoments

_SAME = "y_true and y_pred of the same shape: (N,) or (N, D); real values"

# Rows of the co-moment block of (y_true, y_pred, residual): the weight sum,
# the three means, then the co-moments (0,0), (0,1), (0,2), (1,1), (1,2), (2,2).
_W, _MEAN_T, _MEAN_P = 0, 1, 2
_M2_T, _C_TP, _M2_P, _M2_R = 4, 5, 7, 9


def _as_columns(a: F64) -> F64:
    return a if a.ndim == 2 else a[:, None]


class CoMoments(Accumulator):
    """Per-column weighted co-moments of ``y_true``, ``y_pred`` and ``y_true - y_pred``.

    Array ``comoment`` (merge kind ``comoment``, ``(slots, 10, D)`` for D
    output columns): the weight sum, the three means and the six co-moments
    ``sum(w * (a - mean_a) * (b - mean_b))``. Never a running ratio, so
    ``update`` is order-independent and merging is exact up to float
    rounding. A chunk of another width is a data error ("cannot combine").
    Subclasses only finish differently: every one has the same key.
    """

    fields = {"comoment": "comoment"}
    grouped = True

    def __init__(self, params: Mapping[str, Any]) -> None:
        # Pearson and concordance take no parameters; explained variance's only change the finish.
        self.key = state_key("comoment", CoMoments, {})

    def update(self, state: State, batch: Batch) -> None:
        variables = [_as_columns(batch.y_true), _as_columns(batch.y_pred), _as_columns(-batch.diff)]
        # A chunk of zero weight only counts rows; its (zero) moments fold in harmlessly.
        if batch.groups is None:
            fold_comoments(state, "comoment", comoments(variables, batch.weight), batch.slot)
        else:
            blocks = comoments(variables, batch.weight, batch.groups, state.slots)
            fold_comoments(state, "comoment", blocks, None)
        self.count(state, batch)

    def undefined(self, state: State, slot: int) -> Value | None:
        """The undefined value for no rows or no weight in ``slot``, else ``None``."""
        array = state.get("comoment")
        if state.rows(slot) == 0 or array is None:
            return Value.undefined("no rows")
        if not np.all(array[slot, _W] > 0):
            return Value.undefined("sum of weights is zero")
        return None


class Pearson(CoMoments):
    """Pearson correlation of ``y_true`` and ``y_pred`` over rows, per column, averaged.

    Formula (Keras's, with its eps on each standard deviation):
    ``cov(t, p) / ((std(t) + eps) * (std(p) + eps))``, population moments.
    """

    def finish(self, state: State, slot: int = 0) -> Value:
        empty = self.undefined(state, slot)
        if empty is not None:
            return empty
        block = state.data["comoment"][slot]
        w, m2_t, m2_p, c_tp = block[_W], block[_M2_T], block[_M2_P], block[_C_TP]
        if np.any(m2_t == 0):
            return Value.undefined("y_true is constant, so the correlation is undefined (Keras reports 0)")
        if np.any(m2_p == 0):
            return Value.undefined("y_pred is constant, so the correlation is undefined (Keras reports 0)")
        std_t = np.sqrt(m2_t / w)
        std_p = np.sqrt(m2_p / w)
        per_column = (c_tp / w) / ((std_t + EPSILON) * (std_p + EPSILON))
        return Value.of(float(np.mean(per_column)))


class Concordance(CoMoments):
    """Lin's concordance correlation of ``y_true`` and ``y_pred`` over rows, per column, averaged.

    Formula (Keras's): ``2 * cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p)) ** 2 + eps)``,
    population moments.
    """

    def finish(self, state: State, slot: int = 0) -> Value:
        empty = self.undefined(state, slot)
        if empty is not None:
            return empty
        block = state.data["comoment"][slot]
        w = block[_W]
        gap = block[_MEAN_T] - block[_MEAN_P]
        norm = block[_M2_T] / w + block[_M2_P] / w + gap * gap
        if np.any(norm == 0):
            return Value.undefined(
                "y_true and y_pred are the same constant, so the concordance is 0/0 (Keras reports 0)"
            )
        per_column = 2.0 * (block[_C_TP] / w) / (norm + EPSILON)
        return Value.of(float(np.mean(per_column)))


class ExplainedVariance(CoMoments):
    """Weighted variances of ``y_true`` and of the residual ``y_true - y_pred``, per column.

    Formula: ``1 - var(y_true - y_pred) / var(y_true)`` per column, then the
    uniform or variance-weighted average (scikit-learn's ``multioutput``,
    read only when finishing, so it is not part of the key).
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.multioutput: str = params["multioutput"]

    def finish(self, state: State, slot: int = 0) -> Value:
        empty = self.undefined(state, slot)
        if empty is not None:
            return empty
        block = state.data["comoment"][slot]
        # The weight sum divides both variances, so the co-moments' ratio is the variances' ratio.
        den, num = block[_M2_T], block[_M2_R]
        undefined = "y_true is constant, so explained variance is undefined (scikit-learn reports 1 or 0)"
        if not isinstance(self.multioutput, str):
            if np.any(den == 0):
                return Value.undefined(undefined)
            return Value.of(combine_outputs(1.0 - num / den, den, self.multioutput, "explained_variance_score"))
        if self.multioutput == "variance_weighted":
            used = den > 0
            if not used.any():
                return Value.undefined(undefined)
            scores = 1.0 - num[used] / den[used]
            return Value.of(float(np.sum(den[used] * scores) / np.sum(den[used])))
        if np.any(den == 0):
            return Value.undefined(undefined)
        return Value.of(float(np.mean(1.0 - num / den)))


_DEVIATION = (
    "Keras correlates across the last axis of each row and averages the rows; for one value "
    "per row (N,) that is one correlation along the rows, which lossctl reproduces. For several "
    "columns (N, D) lossctl correlates each column over the rows and averages the D values, "
    "where Keras would correlate the D values within each row. With --weight the moments are "
    "weighted (Keras would weight the single batch value). A constant column gives null "
    "(undefined) where Keras reports 0."
)

register(
    MetricDef(
        name="pearson_correlation",
        aliases=("pearson", "pcc"),
        kind="metric",
        task="regression",
        direction="max",
        formula=(
            "cov(y_true, y_pred) / ((std(y_true) + eps) * (std(y_pred) + eps)) over the rows, "
            "per output column (weighted population moments), then averaged over columns"
        ),
        summary="Pearson correlation between y_true and y_pred over the rows.",
        inputs=_SAME + "; taken over the rows per column (Keras: across the last axis of each row)",
        keras="keras.metrics.PearsonCorrelation",
        sklearn=None,
        state=Pearson,
        deviations=_DEVIATION,
        # cov = 4/3, std(t) = sqrt(2/3), std(p) = 2 * sqrt(2/3).
        example=Example(
            [1.0, 2.0, 3.0],
            [2.0, 4.0, 6.0],
            (4.0 / 3.0) / ((math.sqrt(2.0 / 3.0) + EPSILON) * (2.0 * math.sqrt(2.0 / 3.0) + EPSILON)),
        ),
    )
)

register(
    MetricDef(
        name="concordance_correlation",
        aliases=("ccc", "concordance"),
        kind="metric",
        task="regression",
        direction="max",
        formula=(
            "2 * cov(y_true, y_pred) / (var(y_true) + var(y_pred) + (mean(y_true) - mean(y_pred)) ** 2 + eps) "
            "over the rows, per output column (weighted population moments), then averaged over columns"
        ),
        summary="Lin's concordance correlation: agreement with the line y_pred = y_true.",
        inputs=_SAME + "; taken over the rows per column (Keras: across the last axis of each row)",
        keras="keras.metrics.ConcordanceCorrelation",
        sklearn=None,
        state=Concordance,
        deviations=_DEVIATION,
        # cov = var(t) = var(p) = 2/3, mean gap 1.
        example=Example([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], (4.0 / 3.0) / (7.0 / 3.0 + EPSILON)),
    )
)

register(
    MetricDef(
        name="explained_variance_score",
        aliases=("explained_variance",),
        kind="metric",
        task="regression",
        direction="max",
        formula=(
            "1 - var_w(y_true - y_pred) / var_w(y_true) per output column (weighted population variances), "
            "then averaged over columns"
        ),
        summary="Fraction of the variance of y_true explained, ignoring a constant bias.",
        inputs=_SAME,
        params=(
            ChoiceOrWeightsParam(
                "multioutput",
                "uniform_average",
                tuple,
                "how per-column scores are combined: uniform_average, variance_weighted, or one "
                "weight per output column joined by '+' (scikit-learn's multioutput array)",
                choices=("uniform_average", "variance_weighted"),
                low=0.0,
                applies=ONE_SCORE_PER_COLUMN,
            ),
        ),
        keras=None,
        sklearn="sklearn.metrics.explained_variance_score",
        state=ExplainedVariance,
        deviations=(
            "A constant y_true gives null (undefined) where scikit-learn's force_finite reports 1.0 "
            "(perfect predictions) or 0.0."
        ),
        # Residuals [0, 0, -1] have variance 2/9; y_true has 2/3.
        example=Example([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], 2.0 / 3.0),
    )
)

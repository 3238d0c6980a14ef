"""Regression losses and metrics, Keras-exact (SPEC section 4).

Each loss is a per-row kernel reducing over the last axis as Keras does; the
overall value is the weighted mean of the per-row values. R² is a
whole-table metric with a mergeable co-moment state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Mean, Transformed, Value, state_key
from lossctl.batch import EPSILON, F64, Batch, row_mean
from lossctl.comoments import chan, comoments
from lossctl.metrics._multioutput import combine_outputs
from lossctl.params import ONE_SCORE_PER_COLUMN, ChoiceOrWeightsParam, Param
from lossctl.registry import Example, MetricDef, kernel, register
from lossctl.state import State, fold_comoments

LOG2 = math.log(2.0)

_SAME = "y_true and y_pred of the same shape: (N,) or (N, D); real values"


@kernel(
    name="mean_squared_error",
    aliases=("mse",),
    kind="loss",
    task="regression",
    direction="min",
    formula="mean((y_pred - y_true) ** 2, axis=-1)",
    summary="Mean of squared errors.",
    inputs=_SAME,
    keras="keras.losses.mean_squared_error / keras.metrics.MeanSquaredError",
    sklearn="sklearn.metrics.mean_squared_error",
    example=Example([0.0, 1.0, 2.0], [1.0, 1.0, 4.0], 5.0 / 3.0),
)
def mean_squared_error(b: Batch) -> F64:
    return row_mean(b.sq_diff)


@kernel(
    name="mean_absolute_error",
    aliases=("mae",),
    kind="loss",
    task="regression",
    direction="min",
    formula="mean(abs(y_pred - y_true), axis=-1)",
    summary="Mean of absolute errors.",
    inputs=_SAME,
    keras="keras.losses.mean_absolute_error / keras.metrics.MeanAbsoluteError",
    sklearn="sklearn.metrics.mean_absolute_error",
    example=Example([0.0, 1.0, 2.0], [1.0, 1.0, 4.0], 1.0),
)
def mean_absolute_error(b: Batch) -> F64:
    return row_mean(b.abs_diff)


@kernel(
    name="mean_absolute_percentage_error",
    aliases=("mape",),
    kind="loss",
    task="regression",
    direction="min",
    formula="100 * mean(abs(y_true - y_pred) / maximum(abs(y_true), eps), axis=-1)",
    summary="Mean absolute error relative to |y_true|, in percent.",
    inputs=_SAME + "; y_true near 0 is floored at eps=1e-7",
    keras="keras.losses.mean_absolute_percentage_error",
    sklearn="sklearn.metrics.mean_absolute_percentage_error (x100; sklearn floors at machine epsilon)",
    example=Example([1.0, 2.0, 4.0], [2.0, 2.0, 3.0], 100.0 * (1.0 + 0.0 + 0.25) / 3.0),
)
def mean_absolute_percentage_error(b: Batch) -> F64:
    # In place on one temporary: this family runs on every row of large files.
    x = np.abs(b.y_true)
    np.maximum(x, EPSILON, out=x)
    np.divide(b.abs_diff, x, out=x)
    x *= 100.0
    return row_mean(x)


@kernel(
    name="mean_squared_logarithmic_error",
    aliases=("msle",),
    kind="loss",
    task="regression",
    direction="min",
    formula="mean((log(maximum(y_pred, eps) + 1) - log(maximum(y_true, eps) + 1)) ** 2, axis=-1)",
    summary="Mean squared error of log(1 + value); values below eps=1e-7 are floored.",
    inputs=_SAME + "; meant for non-negative values (negatives are floored at eps)",
    keras="keras.losses.mean_squared_logarithmic_error",
    sklearn="sklearn.metrics.mean_squared_log_error (which rejects negatives instead)",
    example=Example([1.0, math.e - 1.0], [math.e - 1.0, math.e - 1.0], (1.0 - math.log(2.0)) ** 2 / 2.0),
)
def mean_squared_logarithmic_error(b: Batch) -> F64:
    # log(a + 1) - log(b + 1) as one log of the ratio: one transcendental call, not two.
    d = np.maximum(b.y_pred, EPSILON)
    d += 1.0
    t = np.maximum(b.y_true, EPSILON)
    t += 1.0
    d /= t
    np.log(d, out=d)
    d *= d
    return row_mean(d)


@kernel(
    name="huber",
    kind="loss",
    task="regression",
    direction="min",
    formula="mean(where(|e| <= delta, 0.5 * e**2, delta * |e| - 0.5 * delta**2), axis=-1), e = y_pred - y_true",
    summary="Squared error for small errors, linear beyond delta.",
    inputs=_SAME,
    params=(Param("delta", 1.0, float, "where the loss turns from quadratic to linear", low=0.0, low_open=True),),
    keras="keras.losses.huber",
    legacy=("huber_loss",),
    example=Example([0.0, 0.0], [0.5, 3.0], (0.125 + 2.5) / 2.0),
)
def huber(b: Batch, *, delta: float = 1.0) -> F64:
    # With m = min(|e|, delta), m * (|e| - m / 2) is 0.5 * e**2 below delta and
    # delta * |e| - 0.5 * delta**2 above it: the same function without a branch.
    a = b.abs_diff
    m = np.minimum(a, delta)
    x = np.multiply(m, -0.5)
    x += a
    x *= m
    return row_mean(x)


@kernel(
    name="log_cosh",
    kind="loss",
    task="regression",
    direction="min",
    formula="mean(e + softplus(-2 * e) - log(2), axis=-1), e = y_pred - y_true",
    summary="Log of the hyperbolic cosine of the error, stable for large errors.",
    inputs=_SAME,
    keras="keras.losses.log_cosh",
    legacy=("logcosh",),
    example=Example([0.0], [1.0], math.log(math.cosh(1.0))),
)
def log_cosh(b: Batch) -> F64:
    # log(cosh(e)) = |e| + log1p(exp(-2|e|)) - log 2: Keras's e + softplus(-2e) - log 2
    # written on |e|, so exp never overflows; in place to spare temporaries.
    a = b.abs_diff
    x = np.multiply(a, -2.0)
    np.exp(x, out=x)
    np.log1p(x, out=x)
    x += a
    x -= LOG2
    return row_mean(x)


@kernel(
    name="poisson",
    kind="loss",
    task="regression",
    direction="min",
    formula="mean(y_pred - y_true * log(y_pred + eps), axis=-1)",
    summary="Poisson loss of predicted rates (Keras's, not the Poisson deviance).",
    inputs=_SAME + "; y_pred a non-negative rate, y_true counts",
    keras="keras.losses.poisson",
    sklearn=None,
    example=Example([1.0], [1.0], 1.0 - math.log(1.0 + 1e-7)),
)
def poisson(b: Batch) -> F64:
    return row_mean(b.y_pred - b.y_true * np.log(b.y_pred + EPSILON))


def _rmse_state(params: Mapping[str, Any]) -> Transformed:
    # MSE's state: requested together, the two share it.
    return Transformed(Mean(mean_squared_error, {}), math.sqrt)


register(
    MetricDef(
        name="root_mean_squared_error",
        aliases=("rmse",),
        kind="metric",
        task="regression",
        direction="min",
        formula="sqrt(weighted mean over rows of mean((y_pred - y_true) ** 2, axis=-1))",
        summary="Square root of the mean squared error.",
        inputs=_SAME,
        keras="keras.metrics.RootMeanSquaredError",
        sklearn="sklearn.metrics.root_mean_squared_error",
        state=_rmse_state,
        example=Example([0.0, 0.0], [3.0, 4.0], math.sqrt(12.5)),
    )
)


class R2(Accumulator):
    """R² from per-output weighted co-moments of ``y_true`` and the residual sum of squares.

    Arrays: ``comoment`` (merge kind ``comoment``, ``(slots, 3, D)``: the
    weight sum, mean and centred sum of squares of each output column of
    ``y_true``, combined with the pairwise (Chan et al.) update, so the total
    sum of squares does not suffer the cancellation of ``sum(y**2) -
    n*mean**2``); ``ssr`` (``sum``, ``(slots, D)``: the weighted residual sum
    of squares) and ``elements`` (``sum``: values of ``y_true`` seen, for the
    adjusted R²). ``class_aggregation`` and ``num_regressors`` only change
    the finish, so they are not part of the key.
    """

    fields = {"comoment": "comoment", "ssr": "sum", "elements": "sum"}
    grouped = True

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.class_aggregation: str = params["class_aggregation"]
        # scikit-learn's multioutput, when given, instead of Keras's class_aggregation.
        how = params.get("multioutput")
        self.how: Any = self.class_aggregation if how is None else how
        self.num_regressors: int = int(params["num_regressors"])
        self.key = state_key("r2", R2, {})

    def update(self, state: State, batch: Batch) -> None:
        if batch.groups is not None:
            self._update_groups(state, batch)
            return
        if batch.y_true.ndim == 1 and batch.weight is None and len(batch):
            # One unweighted column, the benchmarked case: the moments in three reductions.
            n = len(batch)
            mean1 = float(np.add.reduce(batch.y_true)) / n
            dev1 = batch.y_true - mean1
            block = np.array([[float(n)], [mean1], [float(np.vdot(dev1, dev1))]])
            # The residual sum of squares is MSE's sum: summed once per chunk for both.
            ssr: F64 | float = batch.row_total(mean_squared_error, {})
        else:
            y = batch.y_true if batch.y_true.ndim == 2 else batch.y_true[:, None]
            sq = batch.sq_diff if batch.sq_diff.ndim == 2 else batch.sq_diff[:, None]
            if batch.weight is None:
                ssr = sq.sum(axis=0)
            else:
                # einsum, not @: a matrix product may wake a multithreaded BLAS.
                ssr = np.einsum("i,ij->j", batch.weight, sq)
            block = comoments([y], batch.weight)
        s, columns = batch.slot, block.shape[1]
        fold_comoments(state, "comoment", block, s)
        state.declare("ssr", "sum", (columns,))[s] += ssr
        state.declare("elements", "sum", (), np.int64)[s] += len(batch) * columns
        self.count(state, batch)

    def _update_groups(self, state: State, batch: Batch) -> None:
        """Every group of a sliced chunk at once: segmented co-moments and sums."""
        y = batch.y_true if batch.y_true.ndim == 2 else batch.y_true[:, None]
        sq = batch.sq_diff if batch.sq_diff.ndim == 2 else batch.sq_diff[:, None]
        groups, slots, columns = batch.groups, state.slots, y.shape[1]
        assert groups is not None
        fold_comoments(state, "comoment", comoments([y], batch.weight, groups, slots), None)
        if batch.weight is not None:
            sq = sq * batch.weight[:, None]
        ssr = state.declare("ssr", "sum", (columns,))
        for c in range(columns):
            ssr[:, c] += np.bincount(groups, weights=sq[:, c], minlength=slots)
        state.declare("elements", "sum", (), np.int64)[:] += batch.group_counts(slots) * columns
        self.count(state, batch)

    def linear(self, batch: Batch) -> tuple[list[Any], Any]:
        """Columns 1, y - c, (y - c)² and the squared residual per output; ``c`` the chunk's mean of y.

        Shifting by the chunk's mean keeps the sums of squares free of cancellation.
        """
        if batch.y_true.ndim == 1 and batch.sq_diff.ndim == 1:
            # One output: the squared errors are MSE's own array (one column for both).
            shift = float(np.add.reduce(batch.y_true)) / len(batch) if len(batch) else 0.0
            dev = batch.y_true - shift
            return [None, dev, dev * dev, batch.sq_diff], np.array([shift])
        y = batch.y_true if batch.y_true.ndim == 2 else batch.y_true[:, None]
        sq = batch.sq_diff if batch.sq_diff.ndim == 2 else batch.sq_diff[:, None]
        shifts = y.mean(axis=0) if len(y) else np.zeros(y.shape[1])
        dev = y - shifts
        return [None, *dev.T, *(dev * dev).T, *sq.T], shifts

    def add_sums(self, state: State, slots: np.ndarray, sums: np.ndarray, rows: np.ndarray, context: Any) -> None:
        d = len(context)
        w, s1, s2, ssr = sums[:, :1], sums[:, 1 : 1 + d], sums[:, 1 + d : 1 + 2 * d], sums[:, 1 + 2 * d :]
        safe = np.where(w > 0, w, 1.0)
        block = np.empty((len(slots), 3, d))
        block[:, 0, :] = w
        block[:, 1, :] = np.where(w > 0, context + s1 / safe, 0.0)
        block[:, 2, :] = np.where(w > 0, s2 - s1 * s1 / safe, 0.0)
        moments = state.declare("comoment", "comoment", (3, d))
        moments[slots] = chan(moments[slots], block)
        state.declare("ssr", "sum", (d,))[slots] += ssr
        state.declare("elements", "sum", (), np.int64)[slots] += rows * d

    def finish_slots(self, state: State, slots: Sequence[int]) -> list[Value]:
        """Every slot at once; a slot that is not a plain defined value takes :meth:`finish`'s path."""
        moments = state.get("comoment")
        if moments is None or self.num_regressors or not isinstance(self.how, str):
            return [self.finish(state, s) for s in slots]
        index = np.asarray(slots, dtype=np.int64)
        w, m2, ssr = moments[index, 0], moments[index, 2], state.data["ssr"][index]
        plain = (state.data["rows"][index] > 0) & np.all(w > 0, axis=1) & np.all(m2 != 0, axis=1)
        with np.errstate(all="ignore"):
            raw = 1.0 - ssr / m2
            if self.class_aggregation == "variance_weighted_average":
                scores = np.sum(m2 * raw, axis=1) / np.sum(m2, axis=1)
            else:
                scores = np.mean(raw, axis=1)
        return [
            Value.of(score) if ok else self.finish(state, s)
            for s, ok, score in zip(index.tolist(), plain.tolist(), scores.tolist(), strict=True)
        ]

    def finish(self, state: State, slot: int = 0) -> Value:
        moments = state.get("comoment")
        if state.rows(slot) == 0 or moments is None:
            return Value.undefined("no rows")
        w, m2 = moments[slot, 0], moments[slot, 2]
        ssr = state.data["ssr"][slot]
        if not np.all(w > 0):
            return Value.undefined("sum of weights is zero")
        if np.any(m2 == 0):
            return Value.undefined("y_true is constant, so R² is undefined (Keras reports 0)")
        raw = 1.0 - ssr / m2
        score = combine_outputs(raw, m2, self.how, "r2_score")
        if self.num_regressors:
            n, p = float(state.data["elements"][slot]), float(self.num_regressors)
            if p >= n - 1:
                return Value.undefined(
                    f"num_regressors={self.num_regressors} needs more than {self.num_regressors + 1} samples"
                )
            score = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return Value.of(score)


register(
    MetricDef(
        name="r2_score",
        aliases=("r2",),
        kind="metric",
        task="regression",
        direction="max",
        formula="1 - sum(w * (y_true - y_pred) ** 2) / sum(w * (y_true - weighted_mean(y_true)) ** 2), per output column, then averaged",
        summary="Coefficient of determination over the whole table.",
        inputs=_SAME,
        params=(
            Param(
                "class_aggregation",
                "uniform_average",
                str,
                "how per-output scores are combined",
                choices=("uniform_average", "variance_weighted_average"),
                applies=ONE_SCORE_PER_COLUMN,
            ),
            Param("num_regressors", 0, int, "adjusted R² for this many regressors (0: plain R²)", low=0),
            ChoiceOrWeightsParam(
                "multioutput",
                None,
                tuple,
                "scikit-learn's multioutput: uniform_average, variance_weighted, or one weight per "
                "output column joined by '+' (e.g. 0.3+0.7); none: class_aggregation decides",
                choices=("uniform_average", "variance_weighted"),
                low=0.0,
                optional=True,
                applies=ONE_SCORE_PER_COLUMN,
            ),
        ),
        keras="keras.metrics.R2Score",
        sklearn="sklearn.metrics.r2_score",
        state=R2,
        deviations="A constant y_true gives null (undefined) where Keras reports 0.",
        example=Example([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], 0.5),
    )
)

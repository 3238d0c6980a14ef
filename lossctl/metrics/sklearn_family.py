"""What users of scikit-learn expect beyond Keras, with scikit-learn's numerics (SPEC section 3).

Per-row metrics (log loss, Brier score, pinball loss, the deviances) are
weighted means of a kernel. Whole-table metrics keep mergeable states:
confusion matrices over the labels seen so far (balanced accuracy, Matthews
correlation, Cohen's kappa), co-moments (explained variance), per-bin sums
(expected calibration error), a running maximum (max error) and, for the
exact median absolute error, every row's absolute error.

Class-decision metrics given probabilities decide as Keras does: ``p > 0.5``
for one probability column, argmax for a probability matrix; integer values
are taken as class labels, so label-vs-label input works too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64, Batch, row_mean
from lossctl.errors import ValueProblem
from lossctl.metrics.correlation import CoMoments
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, kernel, register
from lossctl.state import Value

I64 = NDArray[np.int64]

# scikit-learn clips probabilities at the machine epsilon of their dtype (float64 here).
MACHINE_EPS = float(np.finfo(np.float64).eps)
# A confusion matrix is (labels x labels) float64: 4096 labels are 128 MiB.
MAX_LABELS = 4096

_PROBA = (
    "binary: y_true 0/1 (N,) and y_pred the positive-class probability (N,); "
    "multiclass: y_true integer labels (N,) or one-hot (N, C) and y_pred probability rows (N, C)"
)
_CLASSES = (
    "y_true integer labels (N,) or one-hot (N, C); y_pred a probability column (N,) (decided p > 0.5), "
    "a probability matrix (N, C) (decided by argmax) or integer labels (N,)"
)
_SAME = "y_true and y_pred of the same shape: (N,) or (N, D); real values"


# --- value checks (run per chunk, before the kernels) ------------------------------------


def _first(mask: NDArray[np.bool_]) -> int:
    """Row of the first True in a per-element mask (rows along axis 0)."""
    rows = mask if mask.ndim == 1 else mask.any(axis=1)
    return int(np.argmax(rows))


def _first_value(a: F64, mask: NDArray[np.bool_]) -> float:
    row = _first(mask)
    if a.ndim == 1:
        return float(a[row])
    return float(a[row][mask[row]][0])


def _check_int_labels(y: F64, classes: int | None) -> None:
    """1-D class labels: non-negative integers, below ``classes`` when known."""
    not_int = ~(np.isfinite(y) & (y == np.floor(y)))
    if not_int.any():
        raise ValueProblem("y_true", _first(not_int), f"label {_first_value(y, not_int):g} is not an integer class")
    negative = y < 0
    if negative.any():
        raise ValueProblem("y_true", _first(negative), f"label {_first_value(y, negative):g} is negative")
    if classes is not None:
        above = y >= classes
        if above.any():
            raise ValueProblem(
                "y_true", _first(above), f"label {_first_value(y, above):g} is out of range for {classes} classes"
            )


def _check_in_unit(y: F64, role: str, what: str) -> None:
    outside = (y < 0) | (y > 1)
    if outside.any():
        raise ValueProblem(role, _first(outside), f"{what} {_first_value(y, outside):g} is outside [0, 1]")


def validate_probabilities(b: Batch, **_: Any) -> None:
    """Probabilities in [0, 1]; 0/1 labels against one column, labels in range against a matrix."""
    yt, yp = b.y_true, b.y_pred
    _check_in_unit(yp, "y_pred", "probability")
    if yp.ndim == 1:
        if yt.ndim != 1:
            raise ValueProblem(
                "y_true", 0, f"y_true has {yt.shape[1]} values per row but y_pred is one probability column"
            )
        not_binary = ~np.isnan(yt) & (yt != 0) & (yt != 1)
        if not_binary.any():
            raise ValueProblem("y_true", _first(not_binary), f"label {_first_value(yt, not_binary):g} is not 0 or 1")
        return
    if yt.ndim == 1:
        _check_int_labels(yt, yp.shape[1])
        return
    if yt.shape[1] != yp.shape[1]:
        raise ValueProblem("y_true", 0, f"y_true has {yt.shape[1]} values per row but y_pred has {yp.shape[1]}")
    _check_in_unit(yt, "y_true", "label")


def validate_classes(b: Batch, **_: Any) -> None:
    """Inputs that can be decided into classes (see the module docstring)."""
    yt, yp = b.y_true, b.y_pred
    if yt.ndim == 2:
        if yp.ndim != 2 or yp.shape[1] != yt.shape[1]:
            width = 1 if yp.ndim == 1 else yp.shape[1]
            raise ValueProblem(
                "y_pred", 0, f"y_true is one-hot with {yt.shape[1]} columns but y_pred has {width} value(s) per row"
            )
    else:
        _check_int_labels(yt, yp.shape[1] if yp.ndim == 2 else None)
    if yp.ndim == 1:
        integral = yp == np.floor(yp)
        # NaN passes (under --nan propagate it decides to class 0, as NaN > 0.5 does in Keras).
        bad = (integral & (yp < 0)) | (~integral & ((yp < 0) | (yp > 1)))
        if bad.any():
            raise ValueProblem(
                "y_pred",
                _first(bad),
                f"{_first_value(yp, bad):g} is neither a probability in [0, 1] nor a non-negative integer class",
            )


def warn_not_normalized(b: Batch, **_: Any) -> str | None:
    """Probability rows that do not sum to 1 (scikit-learn warns too, with rtol sqrt(eps))."""
    if b.y_pred.ndim != 2:
        return None
    sums = b.y_pred.sum(axis=1)
    off = ~np.isclose(sums, 1.0, rtol=math.sqrt(MACHINE_EPS), atol=0.0) & np.isfinite(sums)
    if off.any():
        return f"probability rows do not sum to 1 ({int(off.sum())} rows, e.g. {sums[_first(off)]:.6g})"
    return None


# --- class decisions --------------------------------------------------------------------


def true_classes(y_true: F64) -> I64:
    """Integer labels from labels (N,) or one-hot rows (N, C)."""
    if y_true.ndim == 2:
        return np.argmax(y_true, axis=1).astype(np.int64)
    return y_true.astype(np.int64)


def predicted_classes(y_pred: F64) -> I64:
    """Keras's decision: argmax of a matrix; ``p > 0.5`` of a probability, integers kept as labels."""
    if y_pred.ndim == 2:
        return np.argmax(y_pred, axis=1).astype(np.int64)
    integral = y_pred == np.floor(y_pred)
    return np.where(integral, y_pred, y_pred > 0.5).astype(np.int64)


# --- log loss and Brier score -----------------------------------------------------------


@kernel(
    name="log_loss",
    kind="metric",
    task="binary|multiclass",
    direction="min",
    formula=(
        "-sum(y_true * log(clip(y_pred, eps, 1 - eps)), axis=-1) with eps = machine epsilon (2.2e-16); "
        "one column p stands for [1 - p, p], each clipped"
    ),
    summary="Logistic loss (cross-entropy) as scikit-learn computes it.",
    inputs=_PROBA + "; classes are y_pred's columns (scikit-learn's labels=range(C)); rows are not renormalised",
    keras=None,
    sklearn="sklearn.metrics.log_loss",
    shapes="any",
    validate=validate_probabilities,
    warn=warn_not_normalized,
    deviations="Not Keras's binary_crossentropy: probabilities are clipped at machine epsilon, not 1e-7.",
    example=Example([1.0, 0.0], [0.8, 0.4], -(math.log(0.8) + math.log(0.6)) / 2.0),
)
def log_loss(b: Batch) -> F64:
    """Per-row log loss with scikit-learn's clipping.

    Formula: ``-sum(y_true * log(clip(y_pred, eps, 1 - eps)), axis=-1)``, eps = 2.2e-16.

    Args:
        b: ``y_true`` 0/1 with ``y_pred`` (N,) probabilities, or labels (N,) /
            one-hot (N, C) with ``y_pred`` (N, C) probability rows.

    Returns:
        (N,) per-row losses.
    """
    yt, yp = b.y_true, b.y_pred
    if yp.ndim == 1:
        p = np.clip(yp, MACHINE_EPS, 1.0 - MACHINE_EPS)
        q = np.clip(1.0 - yp, MACHINE_EPS, 1.0 - MACHINE_EPS)
        # y is 0 or 1, so one term is exactly 0, as scikit-learn's xlogy gives.
        return -(yt * np.log(p) + (1.0 - yt) * np.log(q))
    clipped = np.clip(yp, MACHINE_EPS, 1.0 - MACHINE_EPS)
    if yt.ndim == 1:
        return -np.log(clipped[np.arange(len(yt)), yt.astype(np.int64)])
    # xlogy: a zero target contributes 0 whatever the probability.
    terms = np.where(yt != 0, yt * np.log(clipped), 0.0)
    return -np.sum(terms, axis=1)


@kernel(
    name="brier_score_loss",
    aliases=("brier", "brier_score"),
    kind="metric",
    task="binary|multiclass",
    direction="min",
    formula=(
        "binary: (y_true - y_pred) ** 2; multiclass: sum((one_hot(y_true) - y_pred) ** 2, axis=-1), "
        "halved when there are 2 columns (scale_by_half=auto)"
    ),
    summary="Mean squared difference between predicted probabilities and outcomes.",
    inputs=_PROBA,
    params=(
        Param(
            "scale_by_half",
            "auto",
            str,
            "halve the multiclass sum (auto: for one column or two, which gives (y - p) ** 2)",
            choices=("auto", "true", "false"),
        ),
    ),
    keras=None,
    sklearn="sklearn.metrics.brier_score_loss",
    shapes="any",
    validate=validate_probabilities,
    warn=warn_not_normalized,
    example=Example([1.0, 0.0], [0.8, 0.4], (0.04 + 0.16) / 2.0),
)
def brier_score_loss(b: Batch, *, scale_by_half: str = "auto") -> F64:
    """Per-row Brier score.

    Formula: ``sum((one_hot(y_true) - y_pred) ** 2, axis=-1)``, times 0.5 for
    one or two probability columns (one column p stands for [1 - p, p]).

    Args:
        b: as for :func:`log_loss`.
        scale_by_half: ``auto``, ``true`` or ``false``.

    Returns:
        (N,) per-row scores.
    """
    yt, yp = b.y_true, b.y_pred
    if yp.ndim == 1:
        # [1 - y, y] against [1 - p, p]: twice (y - p) ** 2 before halving.
        sq = 2.0 * (yt - yp) ** 2
        columns = 2
    else:
        columns = yp.shape[1]
        diff = yp.copy()
        if yt.ndim == 1:
            diff[np.arange(len(yt)), yt.astype(np.int64)] -= 1.0
        else:
            diff -= yt
        sq = np.sum(diff * diff, axis=1)
    half = columns < 3 if scale_by_half == "auto" else scale_by_half == "true"
    return 0.5 * sq if half else sq


# --- expected calibration error ---------------------------------------------------------


class CalibrationState:
    """Per-bin sums of weight, confidence and correctness for expected calibration error.

    Bins are ``n_bins`` equal-width intervals of [0, 1], ``(lo, hi]`` except the
    first, which includes 0 (scikit-learn's ``calibration_curve`` binning).
    Memory is three floats per bin; merging adds the sums.
    """

    __slots__ = ("confidence", "correct", "n_bins", "rows", "weight")

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.n_bins = int(params["n_bins"])
        self.weight = np.zeros(self.n_bins)
        self.confidence = np.zeros(self.n_bins)
        self.correct = np.zeros(self.n_bins)
        self.rows = 0

    def update(self, batch: Batch) -> None:
        yt, yp = batch.y_true, batch.y_pred
        if yp.ndim == 1:
            # Binary: the positive-class probability against the outcome.
            confidence, correct = yp, yt
        else:
            confidence = np.max(yp, axis=1)
            correct = (np.argmax(yp, axis=1) == true_classes(yt)).astype(np.float64)
        edges = np.linspace(0.0, 1.0, self.n_bins + 1)
        bins = np.searchsorted(edges[1:-1], confidence, side="left")
        w = np.ones(len(yt)) if batch.weight is None else batch.weight
        self.weight += np.bincount(bins, weights=w, minlength=self.n_bins)
        self.confidence += np.bincount(bins, weights=w * confidence, minlength=self.n_bins)
        self.correct += np.bincount(bins, weights=w * correct, minlength=self.n_bins)
        self.rows += len(yt)

    def merge(self, other: CalibrationState) -> CalibrationState:
        out = CalibrationState({"n_bins": self.n_bins})
        out.weight = self.weight + other.weight
        out.confidence = self.confidence + other.confidence
        out.correct = self.correct + other.correct
        out.rows = self.rows + other.rows
        return out

    def result(self) -> Value:
        if self.rows == 0:
            return Value.undefined("no rows")
        total = float(self.weight.sum())
        if total == 0.0:
            return Value.undefined("sum of weights is zero")
        return Value.of(float(np.sum(np.abs(self.correct - self.confidence))) / total)


register(
    MetricDef(
        name="expected_calibration_error",
        aliases=("ece",),
        kind="metric",
        task="binary|multiclass",
        direction="min",
        formula=(
            "sum over bins b of |sum_b(w * correct) - sum_b(w * confidence)| / sum(w); binary: confidence = p, "
            "correct = y_true; multiclass: confidence = max(y_pred), correct = (argmax(y_pred) == label)"
        ),
        summary="Expected calibration error (L1, equal-width bins).",
        inputs=_PROBA + "; a matrix of any width (2 included) uses the top-label confidence",
        params=(Param("n_bins", 15, int, "number of equal-width confidence bins over [0, 1]", low=1),),
        keras=None,
        sklearn="sklearn.calibration.calibration_curve (binning; ECE is the weighted L1 gap)",
        state=CalibrationState,
        shapes="any",
        validate=validate_probabilities,
        # One row per bin: gaps 0.1, 0.1, 0.25, 0.3.
        example=Example([0.0, 1.0, 1.0, 0.0], [0.1, 0.9, 0.75, 0.3], (0.1 + 0.1 + 0.25 + 0.3) / 4.0),
    )
)


# --- regression: explained variance, median and max error -------------------------------


class ExplainedVarianceState(CoMoments):
    """Weighted variances of ``y_true`` and of the residual ``y_true - y_pred``, per column.

    Formula: ``1 - var(y_true - y_pred) / var(y_true)`` per column, then the
    uniform or variance-weighted average (scikit-learn's ``multioutput``).
    """

    __slots__ = ()

    def pair(self, batch: Batch) -> tuple[F64, F64]:
        return batch.y_true, -batch.diff

    def result(self) -> Value:
        empty = self._empty()
        if empty is not None:
            return empty
        assert self.m2_a is not None and self.m2_b is not None
        # The weight sum divides both variances, so the co-moments' ratio is the variances' ratio.
        den, num = self.m2_a, self.m2_b
        undefined = "y_true is constant, so explained variance is undefined (scikit-learn reports 1 or 0)"
        if self.params["multioutput"] == "variance_weighted":
            used = den > 0
            if not used.any():
                return Value.undefined(undefined)
            scores = 1.0 - num[used] / den[used]
            return Value.of(float(np.sum(den[used] * scores) / np.sum(den[used])))
        if np.any(den == 0):
            return Value.undefined(undefined)
        return Value.of(float(np.mean(1.0 - num / den)))


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
            Param(
                "multioutput",
                "uniform_average",
                str,
                "how per-column scores are combined",
                choices=("uniform_average", "variance_weighted"),
            ),
        ),
        keras=None,
        sklearn="sklearn.metrics.explained_variance_score",
        state=ExplainedVarianceState,
        deviations=(
            "A constant y_true gives null (undefined) where scikit-learn's force_finite reports 1.0 "
            "(perfect predictions) or 0.0."
        ),
        # Residuals [0, 0, -1] have variance 2/9; y_true has 2/3.
        example=Example([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], 2.0 / 3.0),
    )
)


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


class MedianAbsoluteErrorState:
    """Every row's absolute errors (and weights): the exact median needs them all.

    Memory: 8 bytes a row per output column, plus 8 bytes a row for weights.
    Merging concatenates; the result sorts, so row order does not matter.
    """

    __slots__ = ("errors", "rows", "weights")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.errors: list[F64] = []
        self.weights: list[F64 | None] = []
        self.rows = 0

    def update(self, batch: Batch) -> None:
        errors = batch.abs_diff
        self.errors.append(np.array(errors if errors.ndim == 2 else errors[:, None], dtype=np.float64))
        self.weights.append(None if batch.weight is None else np.array(batch.weight, dtype=np.float64))
        self.rows += len(batch)

    def merge(self, other: MedianAbsoluteErrorState) -> MedianAbsoluteErrorState:
        out = MedianAbsoluteErrorState()
        out.errors = [*self.errors, *other.errors]
        out.weights = [*self.weights, *other.weights]
        out.rows = self.rows + other.rows
        return out

    def result(self) -> Value:
        if self.rows == 0:
            return Value.undefined("no rows")
        errors = np.concatenate(self.errors, axis=0)
        if all(w is None for w in self.weights):
            return Value.of(float(np.mean(np.median(errors, axis=0))))
        weight = np.concatenate(
            [np.ones(len(e)) if w is None else w for e, w in zip(self.errors, self.weights, strict=True)]
        )
        if float(weight.sum()) == 0.0:
            return Value.undefined("sum of weights is zero")
        return Value.of(float(np.mean(weighted_median(errors, weight))))


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
        state=MedianAbsoluteErrorState,
        memory="8 bytes a row per output column (every absolute error is kept), plus 8 bytes a row with --weight",
        example=Example([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 10.0], 2.5),
    )
)


class MaxErrorState:
    """The largest absolute error seen (rows of zero weight are left out)."""

    __slots__ = ("rows", "worst")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.worst: float | None = None
        self.rows = 0

    def update(self, batch: Batch) -> None:
        errors = batch.abs_diff
        if batch.weight is not None:
            errors = errors[batch.weight > 0]
        if errors.size:
            worst = float(np.max(errors))
            self.worst = worst if self.worst is None else max(self.worst, worst)
        self.rows += len(batch)

    def merge(self, other: MaxErrorState) -> MaxErrorState:
        out = MaxErrorState()
        out.rows = self.rows + other.rows
        found = [w for w in (self.worst, other.worst) if w is not None]
        out.worst = max(found) if found else None
        return out

    def result(self) -> Value:
        if self.rows == 0:
            return Value.undefined("no rows")
        if self.worst is None:
            return Value.undefined("sum of weights is zero")
        return Value.of(self.worst)


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
        state=MaxErrorState,
        deviations=(
            "scikit-learn takes no weights and one output column; lossctl leaves out rows of weight 0 "
            "(other weights do not change a maximum) and takes the maximum over all columns."
        ),
        example=Example([0.0, 1.0, 2.0], [1.0, 1.0, 5.0], 3.0),
    )
)


# --- pinball loss and deviances ---------------------------------------------------------


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


def tweedie_deviance(y_true: F64, y_pred: F64, power: float) -> F64:
    """Unit Tweedie deviance per element, exactly as scikit-learn writes it.

    Formula: ``2 * (max(y, 0) ** (2 - p) / ((1 - p) * (2 - p)) - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))``
    with the limits ``(y - mu) ** 2`` (p = 0), ``2 * (y * log(y / mu) - y + mu)`` (p = 1) and
    ``2 * (log(mu / y) + y / mu - 1)`` (p = 2).
    """
    t, p = y_true, y_pred
    if power < 0:
        return 2.0 * (
            np.power(np.where(t > 0, t, 0.0), 2.0 - power) / ((1.0 - power) * (2.0 - power))
            - t * np.power(p, 1.0 - power) / (1.0 - power)
            + np.power(p, 2.0 - power) / (2.0 - power)
        )
    if power == 0:
        return (t - p) ** 2
    if power == 1:
        # xlogy: a zero count contributes 0.
        ratio = np.where(t == 0, 1.0, t / p)
        return 2.0 * (np.where(t == 0, 0.0, t * np.log(ratio)) - t + p)
    if power == 2:
        return 2.0 * (np.log(p / t) + t / p - 1.0)
    return 2.0 * (
        np.power(t, 2.0 - power) / ((1.0 - power) * (2.0 - power))
        - t * np.power(p, 1.0 - power) / (1.0 - power)
        + np.power(p, 2.0 - power) / (2.0 - power)
    )


def validate_tweedie(b: Batch, *, power: float = 0.0, **_: Any) -> None:
    """scikit-learn's domain: p < 0 needs y_pred > 0; 1 <= p < 2 also y_true >= 0; p >= 2 y_true > 0."""
    if power == 0.0:
        return
    bad = b.y_pred <= 0
    if bad.any():
        raise ValueProblem(
            "y_pred", _first(bad), f"{_first_value(b.y_pred, bad):g} is not > 0 (Tweedie power {power:g} needs y_pred > 0)"
        )
    if power >= 2.0:
        bad = b.y_true <= 0
        need = "> 0"
    elif power >= 1.0:
        bad = b.y_true < 0
        need = ">= 0"
    else:
        return
    if bad.any():
        raise ValueProblem(
            "y_true", _first(bad), f"{_first_value(b.y_true, bad):g} is not {need} (Tweedie power {power:g} needs y_true {need})"
        )


_DEVIANCE_INPUTS = _SAME + "; a column per row in scikit-learn (several are averaged per row here)"


@kernel(
    name="mean_tweedie_deviance",
    aliases=("tweedie_deviance",),
    kind="metric",
    task="regression",
    direction="min",
    formula=(
        "mean(2 * (max(y_true, 0) ** (2 - power) / ((1 - power) * (2 - power)) - y_true * y_pred ** (1 - power) "
        "/ (1 - power) + y_pred ** (2 - power) / (2 - power)), axis=-1); power 0: squared error, 1: Poisson, "
        "2: gamma deviance"
    ),
    summary="Mean Tweedie deviance (power 0 squared error, 1 Poisson, 2 gamma).",
    inputs=_DEVIANCE_INPUTS + "; power < 0: y_pred > 0; 1 <= power < 2: y_true >= 0, y_pred > 0; power >= 2: both > 0",
    params=(Param("power", 0.0, float, "Tweedie power: <= 0 or >= 1", excluded=(0.0, 1.0)),),
    keras=None,
    sklearn="sklearn.metrics.mean_tweedie_deviance",
    validate=validate_tweedie,
    example=Example([1.0, 2.0], [2.0, 0.0], (1.0 + 4.0) / 2.0),
)
def mean_tweedie_deviance(b: Batch, *, power: float = 0.0) -> F64:
    """Per-row mean Tweedie deviance (see :func:`tweedie_deviance`).

    Formula: ``mean(tweedie_deviance(y_true, y_pred, power), axis=-1)``.
    """
    return row_mean(tweedie_deviance(b.y_true, b.y_pred, power))


def validate_gamma(b: Batch, **_: Any) -> None:
    """Gamma deviance needs y_true > 0 and y_pred > 0."""
    validate_tweedie(b, power=2.0)


def validate_poisson(b: Batch, **_: Any) -> None:
    """Poisson deviance needs y_true >= 0 and y_pred > 0."""
    validate_tweedie(b, power=1.0)


@kernel(
    name="mean_gamma_deviance",
    aliases=("gamma_deviance",),
    kind="metric",
    task="regression",
    direction="min",
    formula="mean(2 * (log(y_pred / y_true) + y_true / y_pred - 1), axis=-1)",
    summary="Mean gamma deviance (Tweedie power 2): scale-invariant errors of positive targets.",
    inputs=_DEVIANCE_INPUTS + "; y_true > 0 and y_pred > 0",
    keras=None,
    sklearn="sklearn.metrics.mean_gamma_deviance",
    validate=validate_gamma,
    # Row 1: 2 * (log 2 + 1/2 - 1); row 2: 0.
    example=Example([1.0, 2.0], [2.0, 2.0], math.log(2.0) - 0.5),
)
def mean_gamma_deviance(b: Batch) -> F64:
    """Per-row mean gamma deviance.

    Formula: ``mean(2 * (log(y_pred / y_true) + y_true / y_pred - 1), axis=-1)``.
    """
    return row_mean(tweedie_deviance(b.y_true, b.y_pred, 2.0))


@kernel(
    name="mean_poisson_deviance",
    aliases=("poisson_deviance",),
    kind="metric",
    task="regression",
    direction="min",
    formula="mean(2 * (y_true * log(y_true / y_pred) - y_true + y_pred), axis=-1), 0 * log(0) = 0",
    summary="Mean Poisson deviance (Tweedie power 1), not Keras's poisson loss.",
    inputs=_DEVIANCE_INPUTS + "; y_true >= 0 (counts) and y_pred > 0",
    keras=None,
    sklearn="sklearn.metrics.mean_poisson_deviance",
    validate=validate_poisson,
    # Row 1: 2 * (log(1/2) - 1 + 2); row 2: 2 * (0 - 0 + 1).
    example=Example([1.0, 0.0], [2.0, 1.0], 2.0 - math.log(2.0)),
)
def mean_poisson_deviance(b: Batch) -> F64:
    """Per-row mean Poisson deviance.

    Formula: ``mean(2 * (y_true * log(y_true / y_pred) - y_true + y_pred), axis=-1)``.
    """
    return row_mean(tweedie_deviance(b.y_true, b.y_pred, 1.0))


"""Curve metrics: AUC (ROC and PR) and the operating-point metrics (SPEC sections 3, 4, 7).

``auc`` is exact by default, a deliberate difference from Keras (SPEC
section 4): the state keeps every score, split by class, so no label needs
storing, and the result equals scikit-learn's ``roc_auc_score`` (the
Mann-Whitney statistic, ties counted 1/2) or ``average_precision_score``
(``curve=PR``). ``auc:num_thresholds=N`` reproduces Keras's bucketed
approximation with a constant-memory histogram, as do the four
``*_at_*`` metrics, which Keras always buckets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64, Batch
from lossctl.errors import DataError, UsageProblem, ValueProblem
from lossctl.metrics.confusion import (
    Bool,
    check_labels,
    colsum,
    layout,
    score_matrix,
    truth_matrix,
)
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register
from lossctl.state import Value

T = TypeVar("T")
U = TypeVar("U")

# Keras's backend.epsilon(): the AUC's end thresholds are -eps and 1 + eps.
EPSILON = 1e-7


# --------------------------------------------------------------------------
# Inputs


def binary_columns(
    batch: Batch, owner: str, *, multi_label: bool = False, class_id: int | None = None
) -> tuple[Bool, F64, F64 | None]:
    """Labels and scores as ``(M, K)`` columns, with weights ``(M,)``.

    One label column is ``K = 1``. A matrix is flattened into one column (each
    cell a sample, the row's weight repeated), as Keras does unless
    ``multi_label`` keeps one column per label; ``class_id`` keeps one column.
    Integer labels against a probability matrix are one-hot first.
    """
    lay = layout(batch, owner)
    truth, scores, w = truth_matrix(batch, lay), score_matrix(batch), batch.weight
    if class_id is not None:
        if lay == "column":
            raise UsageProblem(f"{owner}: class_id needs a probability matrix; y_pred has one column")
        if class_id >= scores.shape[1]:
            raise UsageProblem(f"{owner}: class_id {class_id} is out of range for {scores.shape[1]} classes")
        return truth[:, class_id : class_id + 1], scores[:, class_id : class_id + 1], w
    if multi_label or scores.shape[1] == 1:
        return truth, scores, w
    width = scores.shape[1]
    return truth.reshape(-1, 1), scores.reshape(-1, 1), None if w is None else np.repeat(w, width)


def _check_probabilities(y: F64, owner: str) -> None:
    bad = (y < 0) | (y > 1)
    rows = bad.any(axis=1) if bad.ndim == 2 else bad
    if rows.any():
        i = int(np.argmax(rows))
        v = y[i][np.argmax(bad[i])] if y.ndim == 2 else y[i]
        raise ValueProblem(
            "y_pred",
            i,
            f"score {v:g} is outside [0, 1]; {owner}'s thresholds are probabilities "
            "(Keras clips silently; give from_logits=true for logits)",
        )


def sigmoid(x: F64) -> F64:
    """Numerically stable logistic function."""
    return np.exp(-np.logaddexp(0.0, -x))


def divide_no_nan(a: F64, b: F64) -> F64:
    """Keras's ``divide_no_nan``: ``a / b``, and 0 where ``b == 0``.

    Used only inside Keras's curve arithmetic, to reproduce its numbers; a
    whole-table 0/0 is reported as undefined before this is reached.
    """
    safe = np.where(b == 0, 1.0, b)
    return np.where(b == 0, 0.0, a / safe)


# --------------------------------------------------------------------------
# Exact AUC: scores kept per class


class ExactAUCState:
    """Every score, split into positives and negatives per label column.

    Memory: one float64 per row (8 bytes; the class is where it is stored,
    so no label is kept), plus one float64 weight per row with ``--weight``.
    ``update`` appends a chunk's arrays; ``merge`` returns a new state whose
    lists concatenate both inputs' (arrays are never modified, so sharing them
    is safe); ``result`` sorts once and can be called any number of times.
    """

    __slots__ = ("owner", "curve", "multi_label", "pos", "neg", "pos_w", "neg_w", "rows")

    def __init__(self, owner: str, curve: str, multi_label: bool) -> None:
        self.owner = owner
        self.curve = curve
        self.multi_label = multi_label
        self.pos: list[list[F64]] = []
        self.neg: list[list[F64]] = []
        # None for an unweighted chunk; materialised as ones only when some
        # other chunk carries weights.
        self.pos_w: list[list[F64 | None]] = []
        self.neg_w: list[list[F64 | None]] = []
        self.rows = 0

    def _columns(self, k: int) -> None:
        if not self.pos:
            self.pos, self.neg = [[] for _ in range(k)], [[] for _ in range(k)]
            self.pos_w, self.neg_w = [[] for _ in range(k)], [[] for _ in range(k)]
        elif len(self.pos) != k:
            raise DataError(f"{self.owner}: cannot combine {len(self.pos)} label columns with {k}")

    def update(self, batch: Batch) -> None:
        truth, scores, w = binary_columns(batch, self.owner, multi_label=self.multi_label)
        k = truth.shape[1]
        self._columns(k)
        if w is not None:
            # Zero-weight rows change no sum: drop them to save memory.
            keep = w > 0
            if not keep.all():
                truth, scores, w = truth[keep], scores[keep], w[keep]
        for j in range(k):
            t, s = truth[:, j], scores[:, j]
            # Gather by index, not by boolean mask: on mixed labels a mask's
            # branches mispredict, and it was 3x slower.
            at_pos, at_neg = np.flatnonzero(t), np.flatnonzero(~t)
            self.pos[j].append(s.take(at_pos))
            self.neg[j].append(s.take(at_neg))
            self.pos_w[j].append(None if w is None else w.take(at_pos))
            self.neg_w[j].append(None if w is None else w.take(at_neg))
            _compact_tail(self.pos[j], self.pos_w[j])
            _compact_tail(self.neg[j], self.neg_w[j])
        self.rows += len(batch)

    def merge(self, other: ExactAUCState) -> ExactAUCState:
        out = ExactAUCState(self.owner, self.curve, self.multi_label)
        for part in (self, other):
            if part.pos:
                out._columns(len(part.pos))
                for j in range(len(part.pos)):
                    out.pos[j] = out.pos[j] + part.pos[j]
                    out.neg[j] = out.neg[j] + part.neg[j]
                    out.pos_w[j] = out.pos_w[j] + part.pos_w[j]
                    out.neg_w[j] = out.neg_w[j] + part.neg_w[j]
            out.rows += part.rows
        return out

    def result(self) -> Value:
        if self.rows == 0 or not self.pos:
            return Value.undefined("no rows")
        weighted = any(w is not None for col in self.pos_w + self.neg_w for w in col)
        values: list[float] = []
        for j in range(len(self.pos)):
            if weighted:
                pw = _concat_weights(self.pos_w[j], self.pos[j])
                nw = _concat_weights(self.neg_w[j], self.neg[j])
                pos, neg = _concat(self.pos[j]), _concat(self.neg[j])
            elif self.curve == "ROC":
                # The common case: both cores sort and count (see _roc_auc_on_two_cores).
                value, why = _roc_auc_on_two_cores(self.pos[j], self.neg[j])
                self.pos_w[j], self.neg_w[j] = [None] * len(self.pos[j]), [None] * len(self.neg[j])
                if value is None:
                    where = f" for label column {j}" if len(self.pos) > 1 else ""
                    return Value.undefined(f"AUC is undefined{where}: {why}")
                values.append(value)
                continue
            else:
                # Keep the scores sorted in one piece: the same multiset, so the
                # state is unchanged, but the chunks are moved into one array as
                # they are copied (memory stays near one copy of the scores), and
                # a second result() need not sort again.
                pw = nw = None
                pos, neg = _consolidate(self.pos[j]), _consolidate(self.neg[j])
                _sort_both(pos, neg)
                self.pos_w[j], self.neg_w[j] = [None], [None]
            where = f" for label column {j}" if len(self.pos) > 1 else ""
            if self.curve == "PR":
                value, why = exact_average_precision(pos, neg, pw, nw)
            else:
                value, why = exact_roc_auc(pos, neg, pw, nw)
            if value is None:
                return Value.undefined(f"AUC is undefined{where}: {why}")
            values.append(value)
        return Value.of(float(np.mean(values)))


# Chunk pieces are gathered into arrays of at least this many scores (16 MiB):
# allocations that large are memory-mapped and go back to the system when
# freed, where small pieces would stay in the heap and double the peak.
_COMPACT = 1 << 21


def _compact_tail(scores: list[F64], weights: list[F64 | None]) -> None:
    """Join the trailing small pieces of a score list (and its weights) into one array.

    Appending keeps the list's multiset, and the joined array is new, so arrays
    shared with merged states are never modified.
    """
    small = 0
    start = len(scores)
    while start > 0 and len(scores[start - 1]) < _COMPACT:
        start -= 1
        small += len(scores[start])
    if small < _COMPACT or len(scores) - start < 2:
        return
    joined = np.concatenate(scores[start:])
    tail = weights[start:]
    if all(w is None for w in tail):
        joined_w: F64 | None = None
    else:
        joined_w = np.concatenate([np.ones(len(p)) if w is None else w for w, p in zip(tail, scores[start:], strict=True)])
    del scores[start:], weights[start:]
    scores.append(joined)
    weights.append(joined_w)


def _sort_both(a: F64, b: F64) -> None:
    """Sort two arrays in place at the same time (NumPy's sort releases the GIL: two cores)."""
    _both(a.sort, b.sort, parallel=min(a.size, b.size) >= _BLOCK)


def _roc_auc_on_two_cores(pos_parts: list[F64], neg_parts: list[F64]) -> tuple[float | None, str]:
    """Unweighted exact ROC AUC from lists of score chunks, the work shared by two threads.

    The negatives are split in two parts so that one thread sorts the
    positives and the first part while the other sorts the second, in about
    the same time; then each counts the positives against one part
    (Mann-Whitney counts add up over parts).
    The lists are left holding the sorted arrays (one for the positives, one
    or two for the negatives), so a second call sorts nothing. NumPy releases
    the GIL in sort and searchsorted.
    """
    n_pos = sum(p.size for p in pos_parts)
    n_neg = sum(p.size for p in neg_parts)
    # Balanced: one thread takes the positives and `first`, the other `second`.
    first, second = _split(neg_parts, (n_neg - n_pos) / 2.0)
    # Only the two lists hold the chunks now: each is freed once copied (one copy at the peak).
    neg_parts.clear()
    # Small inputs: threads would cost more than they save.
    parallel = n_pos + n_neg >= 2 * _BLOCK
    (pos, a), b = _both(
        lambda: (_sorted_whole(pos_parts), _sorted_whole(first)), lambda: _sorted_whole(second), parallel=parallel
    )
    pos_parts[:] = [pos]
    neg_parts[:] = [x for x in (a, b) if x.size]
    if any(x.size and np.isnan(x[-1]) for x in (pos, a, b)):
        return None, "NaN scores"
    if pos.size == 0 or a.size + b.size == 0:
        return None, "y_true holds only one class (Keras reports 0)"
    ta, tb = _both(lambda: _twice_mann_whitney(pos, a), lambda: _twice_mann_whitney(pos, b), parallel=parallel)
    return (ta + tb) / (2.0 * pos.size * (a.size + b.size)), ""


def _split(parts: list[F64], size: float) -> tuple[list[F64], list[F64]]:
    """The chunks in two lists, the first holding about ``size`` scores (no copy)."""
    acc = 0
    for i, p in enumerate(parts):
        if acc >= size:
            return parts[:i], parts[i:]
        acc += p.size
    return list(parts), []


def _sorted_whole(parts: list[F64]) -> F64:
    """The chunks as one sorted array: a new one, unless the list holds one already sorted."""
    if not parts:
        return np.empty(0)
    if len(parts) == 1:
        return parts[0] if _is_sorted(parts[0]) else np.sort(parts[0])
    whole = _consolidate(parts)
    whole.sort()
    return whole


def _both(first: Callable[[], T], second: Callable[[], U], *, parallel: bool = True) -> tuple[T, U]:
    """``(first(), second())``, ``first`` run in a second thread when ``parallel``."""
    if not parallel:
        return first(), second()
    out: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            out.append(first())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failed.append(exc)

    thread = threading.Thread(target=run, name="lossctl-sort")
    thread.start()
    try:
        result = second()
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return out[0], result


def _consolidate(parts: list[F64]) -> F64:
    """Move a list of chunks into one new array, releasing each chunk once copied.

    The list is left holding the one array. Pages of the new array are
    touched only as they are filled, so resident memory stays near one copy.
    """
    out = np.empty(sum(len(p) for p in parts))
    at = 0
    while parts:
        part = parts.pop(0)
        out[at : at + len(part)] = part
        at += len(part)
    parts.append(out)
    return out


def _concat(parts: list[F64]) -> F64:
    return np.concatenate(parts) if parts else np.empty(0)


def _concat_weights(weights: list[F64 | None], scores: list[F64]) -> F64:
    return _concat([np.ones(len(s)) if w is None else w for w, s in zip(weights, scores, strict=True)])


def _sorted(scores: F64, weights: F64 | None) -> tuple[F64, F64 | None]:
    if weights is None:
        if not _is_sorted(scores):
            return np.sort(scores), None
        return scores, None
    order = np.argsort(scores, kind="stable")
    return scores[order], weights[order]


def _is_sorted(values: F64) -> bool:
    """Ascending order, checked block by block (no temporary as large as the array)."""
    for a in range(0, max(values.size - 1, 0), _BLOCK):
        part = values[a : a + _BLOCK + 1]
        if not bool(np.all(part[1:] >= part[:-1])):
            return False
    return True


def exact_roc_auc(pos: F64, neg: F64, pos_w: F64 | None, neg_w: F64 | None) -> tuple[float | None, str]:
    """ROC AUC as the Mann-Whitney statistic, ties counted 1/2 (= scikit-learn's).

    Formula: ``sum over positive i, negative j of w_i w_j ([s_i > s_j] + [s_i == s_j] / 2)
    / (sum(w_pos) * sum(w_neg))``. Each class is sorted once; counts come from
    ``searchsorted``, never from an argsort of all rows.

    Returns:
        ``(value, "")`` or ``(None, reason)``.
    """
    pos, pos_w = _sorted(pos, pos_w)
    neg, neg_w = _sorted(neg, neg_w)
    if (pos.size and np.isnan(pos[-1])) or (neg.size and np.isnan(neg[-1])):
        return None, "NaN scores"
    wp = float(pos.size) if pos_w is None else float(pos_w.sum())
    wn = float(neg.size) if neg_w is None else float(neg_w.sum())
    if wp == 0.0 or wn == 0.0:
        return None, "y_true holds only one class (Keras reports 0)"
    if pos_w is None and neg_w is None:
        return _twice_mann_whitney(pos, neg) / (2.0 * pos.size * neg.size), ""
    assert pos_w is not None and neg_w is not None
    below = np.searchsorted(neg, pos, side="left")
    upto = np.searchsorted(neg, pos, side="right")
    cum = np.concatenate(([0.0], np.cumsum(neg_w)))
    # below + equal / 2 == (cum[below] + cum[upto]) / 2
    num = float(np.dot(pos_w, cum[below] + cum[upto])) / 2.0
    return num / (wp * wn), ""


def _twice_mann_whitney(pos: F64, neg: F64) -> int:
    """``2 * #(pos > neg) + #(pos == neg)`` over all pairs, for sorted, unweighted scores.

    Exact integers: the count over several parts of ``neg`` is the sum of the parts' counts.
    """
    # Count per distinct positive score (scores tie often: rounded model
    # outputs), and look up the "<= s" count only where a negative equals s.
    # Integer sums are exact; one division at the end.
    # Blocks of positives keep the temporaries small (a run that spans two
    # blocks is simply looked up twice: the counts add up the same).
    twice = 0
    if _distinct(neg) * 4 < neg.size:
        # Heavily tied negatives: look up in their distinct values (a much
        # smaller array), with counts below and at each value from a cumsum.
        # starts[k] is the number of negatives below the k-th distinct value.
        starts = _run_starts(neg)
        neg_values = neg[starts[:-1]]
        for a in range(0, pos.size, _COUNT_BLOCK):
            values, counts = _runs(pos[a : a + _COUNT_BLOCK])
            at = np.searchsorted(neg_values, values, side="left")
            below = starts[at]
            inside = np.flatnonzero(at < neg_values.size)
            equal = inside[neg_values[at[inside]] == values[inside]]
            upto = below.copy()
            upto[equal] = starts[at[equal] + 1]
            twice += int(np.dot(counts, below)) + int(np.dot(counts, upto))
        return twice
    for a in range(0, pos.size, _COUNT_BLOCK):
        values, counts = _runs(pos[a : a + _COUNT_BLOCK])
        below = np.searchsorted(neg, values, side="left")
        upto = below.copy()
        inside = np.flatnonzero(below < neg.size)
        tied = inside[neg[below[inside]] == values[inside]]
        if tied.size:
            upto[tied] = np.searchsorted(neg, values[tied], side="right")
        twice += int(np.dot(counts, below)) + int(np.dot(counts, upto))
    return twice


_BLOCK = 1 << 20
# Positives counted per block: its temporaries (a few int64 arrays of this
# length) exist in both counting threads at once, at the peak of memory.
_COUNT_BLOCK = 1 << 18


def _distinct(sorted_values: F64) -> int:
    """Number of distinct values of a sorted array, counted block by block."""
    if sorted_values.size == 0:
        return 0
    changes = 0
    for a in range(0, sorted_values.size - 1, _BLOCK):
        part = sorted_values[a : a + _BLOCK + 1]
        changes += int(np.count_nonzero(part[1:] != part[:-1]))
    return changes + 1


def _run_starts(sorted_values: F64) -> NDArray[np.int64]:
    """Where each run of equal values starts in a sorted array, then its size (the end).

    Found block by block, so the temporaries stay small whatever the array's size.
    """
    size = sorted_values.size
    if size == 0:
        return np.zeros(1, dtype=np.int64)
    parts = [np.zeros(1, dtype=np.int64)]
    for a in range(0, size - 1, _BLOCK):
        part = sorted_values[a : a + _BLOCK + 1]
        parts.append(np.flatnonzero(part[1:] != part[:-1]) + (a + 1))
    parts.append(np.array([size], dtype=np.int64))
    return np.concatenate(parts)


def _runs(sorted_values: F64) -> tuple[F64, NDArray[np.int64]]:
    """Distinct values of a sorted array and how often each occurs."""
    starts = _run_starts(sorted_values)
    return sorted_values[starts[:-1]], np.diff(starts)


def exact_average_precision(
    pos: F64, neg: F64, pos_w: F64 | None, neg_w: F64 | None
) -> tuple[float | None, str]:
    """Average precision, the step sum scikit-learn's ``average_precision_score`` takes.

    Formula: ``sum over distinct positive scores t (descending) of
    (recall(t) - recall(t_prev)) * precision(t)``, with ``precision(t) =
    TP(>= t) / (TP(>= t) + FP(>= t))``: thresholds where only negatives lie
    add no recall and so nothing to the sum.

    Returns:
        ``(value, "")`` or ``(None, reason)``.
    """
    pos, pos_w = _sorted(pos, pos_w)
    neg, neg_w = _sorted(neg, neg_w)
    if (pos.size and np.isnan(pos[-1])) or (neg.size and np.isnan(neg[-1])):
        return None, "NaN scores"
    if pos.size == 0 or (pos_w is not None and float(pos_w.sum()) == 0.0):
        return None, "no positive labels (Keras reports 0)"
    # Each distinct positive score is a run in the sorted positives.
    runs = _run_starts(pos)
    starts, ends = runs[:-1], runs[1:]
    neg_below = np.searchsorted(neg, pos[starts], side="left")
    if pos_w is None and neg_w is None:
        tp = (pos.size - starts).astype(np.float64)
        fp = (neg.size - neg_below).astype(np.float64)
        gained = (ends - starts).astype(np.float64)
        total = float(pos.size)
    else:
        assert pos_w is not None and neg_w is not None
        cum_p = np.concatenate(([0.0], np.cumsum(pos_w)))
        cum_n = np.concatenate(([0.0], np.cumsum(neg_w)))
        total = float(cum_p[-1])
        tp = total - cum_p[starts]
        fp = cum_n[-1] - cum_n[neg_below]
        gained = cum_p[ends] - cum_p[starts]
    used = gained > 0
    return float(np.sum(gained[used] / total * (tp[used] / (tp[used] + fp[used])))), ""


# --------------------------------------------------------------------------
# Keras's bucketed confusion counts


class BucketState:
    """Keras's bucketed confusion counts: weighted histograms of scores by class.

    ``num_thresholds`` evenly spaced thresholds; a score counts as positive at
    every threshold below it, so the per-threshold counts are reverse
    cumulative sums of the histograms. Memory: 2 * num_thresholds floats per
    label column, whatever the number of rows. ``update`` adds in place,
    ``merge`` returns the sum, ``result`` can be called any number of times.
    """

    __slots__ = ("owner", "n", "epsilon_ends", "from_logits", "multi_label", "class_id", "finish",
                 "pos", "neg", "pos_total", "neg_total", "rows")

    def __init__(
        self,
        owner: str,
        num_thresholds: int,
        *,
        epsilon_ends: bool,
        finish: Callable[[F64, F64, F64, F64], Value],
        from_logits: bool = False,
        multi_label: bool = False,
        class_id: int | None = None,
    ) -> None:
        self.owner = owner
        self.n = num_thresholds
        self.epsilon_ends = epsilon_ends
        self.from_logits = from_logits
        self.multi_label = multi_label
        self.class_id = class_id
        self.finish = finish
        self.pos: F64 | None = None
        self.neg: F64 | None = None
        self.pos_total: F64 | None = None
        self.neg_total: F64 | None = None
        self.rows = 0

    def _buckets(self, scores: F64) -> np.ndarray:
        """Index of the highest threshold each score exceeds (-1: none)."""
        if self.n == 1:
            # Keras's single threshold is 0.5, compared without clipping.
            return np.where(scores > 0.5, 0, -1)
        p = np.clip(scores, 0.0, 1.0)
        # Keras: ceil(p * (n - 1)) - 1, i.e. p > t_i for i up to that index.
        # With the -eps end threshold every score exceeds threshold 0.
        b = np.ceil(p * (self.n - 1)) - 1
        if self.epsilon_ends:
            b = np.maximum(b, 0)
        # A NaN score (under --nan propagate) exceeds no threshold.
        return np.where(np.isnan(b), -1, b).astype(np.intp)

    def update(self, batch: Batch) -> None:
        truth, scores, w = binary_columns(
            batch, self.owner, multi_label=self.multi_label, class_id=self.class_id
        )
        if self.from_logits:
            scores = sigmoid(scores)
        k = truth.shape[1]
        b = self._buckets(scores)
        weights = np.ones(len(truth)) if w is None else w
        wmat = np.broadcast_to(weights[:, None], truth.shape)
        hit = b >= 0
        # One bincount for all columns: column j's buckets are offset by j * n.
        idx = b + np.arange(k) * self.n
        pos = np.bincount(idx[truth & hit], weights=wmat[truth & hit], minlength=k * self.n)
        neg = np.bincount(idx[~truth & hit], weights=wmat[~truth & hit], minlength=k * self.n)
        self._fold(
            pos.reshape(k, self.n).T,
            neg.reshape(k, self.n).T,
            colsum(truth, weights),
            colsum(~truth, weights),
            len(batch),
        )

    def _fold(self, pos: F64, neg: F64, pos_total: F64, neg_total: F64, rows: int) -> None:
        if self.pos is None:
            self.pos, self.neg = pos.copy(), neg.copy()
            self.pos_total, self.neg_total = pos_total.copy(), neg_total.copy()
        else:
            assert self.neg is not None and self.pos_total is not None and self.neg_total is not None
            if pos.shape != self.pos.shape:
                raise DataError(f"{self.owner}: cannot combine {self.pos.shape[1]} label columns with {pos.shape[1]}")
            self.pos = self.pos + pos
            self.neg = self.neg + neg
            self.pos_total = self.pos_total + pos_total
            self.neg_total = self.neg_total + neg_total
        self.rows += rows

    def merge(self, other: BucketState) -> BucketState:
        out = BucketState(
            self.owner,
            self.n,
            epsilon_ends=self.epsilon_ends,
            finish=self.finish,
            from_logits=self.from_logits,
            multi_label=self.multi_label,
            class_id=self.class_id,
        )
        for part in (self, other):
            if part.pos is not None:
                assert part.neg is not None and part.pos_total is not None and part.neg_total is not None
                out._fold(part.pos, part.neg, part.pos_total, part.neg_total, part.rows)
            else:
                out.rows += part.rows
        return out

    def result(self) -> Value:
        if self.rows == 0 or self.pos is None:
            return Value.undefined("no rows")
        assert self.neg is not None and self.pos_total is not None and self.neg_total is not None
        # Reverse cumulative sums: a score in bucket b counts at thresholds 0..b.
        tp = np.cumsum(self.pos[::-1], axis=0)[::-1]
        fp = np.cumsum(self.neg[::-1], axis=0)[::-1]
        fn = self.pos_total - tp
        tn = self.neg_total - fp
        return self.finish(tp, fp, tn, fn)




def keras_auc(tp: F64, fp: F64, tn: F64, fn: F64, curve: str, summation_method: str) -> F64:
    """Keras ``AUC.result`` per label column, from ``(num_thresholds, K)`` counts.

    Formula: ROC: sum over consecutive thresholds of ``(fpr[i] - fpr[i+1]) *
    height(tpr)``; PR with interpolation: Keras's ``interpolate_pr_auc``
    (Davis & Goadrich); PR otherwise: ``(recall[i] - recall[i+1]) *
    height(precision)``, height being the mean (interpolation), minimum
    (minoring) or maximum (majoring) of the two ends.
    """
    if curve == "PR" and summation_method == "interpolation":
        return interpolate_pr_auc(tp, fp, fn)
    recall = divide_no_nan(tp, tp + fn)
    if curve == "ROC":
        x, y = divide_no_nan(fp, fp + tn), recall
    else:
        x, y = recall, divide_no_nan(tp, tp + fp)
    if summation_method == "interpolation":
        heights = (y[:-1] + y[1:]) / 2.0
    elif summation_method == "minoring":
        heights = np.minimum(y[:-1], y[1:])
    else:
        heights = np.maximum(y[:-1], y[1:])
    return np.sum((x[:-1] - x[1:]) * heights, axis=0)


def interpolate_pr_auc(tp: F64, fp: F64, fn: F64) -> F64:
    """Keras's ``AUC.interpolate_pr_auc``, term for term.

    Formula: per interval, ``slope * (dtp + intercept * log(p_a / p_b)) / (tp_b + fn_b)``
    with ``p = tp + fp``, ``slope = dtp / dp``, ``intercept = tp_b - slope * p_b``.
    """
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = divide_no_nan(dtp, np.maximum(dp, 0.0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, divide_no_nan(p[:-1], np.maximum(p[1:], 0.0)), 1.0)
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
    terms = divide_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0.0))
    return np.sum(terms, axis=0)


# --------------------------------------------------------------------------
# auc


def _auc_state(params: Mapping[str, Any]) -> ExactAUCState | BucketState:
    curve, method = params["curve"], params["summation_method"]
    n = params["num_thresholds"]
    if n is None:
        if method != "interpolation":
            raise UsageProblem(
                f"auc: summation_method={method} applies to the bucketed AUC; give num_thresholds "
                f"too (e.g. auc:num_thresholds=200:summation_method={method})"
            )
        return ExactAUCState("auc", curve, bool(params["multi_label"]))

    def finish(tp: F64, fp: F64, tn: F64, fn: F64) -> Value:
        positives, negatives = tp[0] + fn[0], fp[0] + tn[0]
        for j in range(tp.shape[1]):
            where = f" for label column {j}" if tp.shape[1] > 1 else ""
            if positives[j] == 0:
                return Value.undefined(f"AUC is undefined{where}: no positive labels (Keras reports 0)")
            if curve == "ROC" and negatives[j] == 0:
                return Value.undefined(f"AUC is undefined{where}: no negative labels (Keras reports 0)")
        return Value.of(float(np.mean(keras_auc(tp, fp, tn, fn, curve, method))))

    return BucketState(
        "auc",
        int(n),
        epsilon_ends=True,
        finish=finish,
        from_logits=bool(params["from_logits"]),
        multi_label=bool(params["multi_label"]),
    )


def _auc_validate(batch: Batch, **params: Any) -> None:
    check_labels(batch, "auc")
    if params.get("num_thresholds") is not None and not params.get("from_logits"):
        _check_probabilities(batch.y_pred, "auc")


register(
    MetricDef(
        name="auc",
        kind="metric",
        task="binary|multilabel",
        direction="max",
        formula=(
            "ROC: P(score of a positive > score of a negative), ties 1/2 (weighted pairs); "
            "PR: sum over thresholds of (recall_k - recall_k-1) * precision_k; "
            "num_thresholds=N: Keras's Riemann sum over N bucketed thresholds"
        ),
        summary="Area under the ROC or precision-recall curve (exact unless num_thresholds is given).",
        inputs=(
            "y_true 0/1 labels, y_pred scores: (N,), or (N, C) cells flattened (per column with "
            "multi_label); integer labels (N,) against (N, C) are one-hot first"
        ),
        params=(
            Param(
                "num_thresholds",
                None,
                int,
                "none: exact AUC; N: Keras's approximation over N thresholds (Keras's default is 200)",
                low=2,
                optional=True,
            ),
            Param("curve", "ROC", str, "ROC or PR (precision-recall)", choices=("ROC", "PR")),
            Param(
                "summation_method",
                "interpolation",
                str,
                "Riemann sum of the bucketed AUC",
                choices=("interpolation", "minoring", "majoring"),
            ),
            Param("from_logits", False, bool, "y_pred are logits (sigmoid applied before bucketing)"),
            Param("multi_label", False, bool, "one AUC per label column, then their mean"),
        ),
        keras="keras.metrics.AUC",
        sklearn="sklearn.metrics.roc_auc_score / average_precision_score (curve=PR)",
        state=_auc_state,
        memory=(
            "exact (default): 8 bytes a row (one float64 score, stored by class), 16 with "
            "--weight; num_thresholds=N: 2N floats per label column"
        ),
        shapes="any",
        validate=_auc_validate,
        deviations=(
            "Exact by default: the ROC AUC equals scikit-learn's roc_auc_score (ties count "
            "1/2) and curve=PR gives scikit-learn's average_precision_score (a step sum, not "
            "Keras's interpolation); Keras always buckets scores into num_thresholds=200. "
            "auc:num_thresholds=200 reproduces Keras. The exact AUC depends only on the order "
            "of the scores, so from_logits changes nothing there. An AUC over one class is "
            "null where Keras reports 0. Scores outside [0, 1] are an error with num_thresholds "
            "(Keras clips them) unless from_logits=true."
        ),
        example=Example([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    )
)


# --------------------------------------------------------------------------
# precision_at_recall, recall_at_precision, sensitivity_at_specificity,
# specificity_at_sensitivity (Keras's SensitivitySpecificityBase)


def _operating_point(
    owner: str, constrained: str, dependent: str
) -> Callable[[Mapping[str, Any]], BucketState]:
    """State factory: the best ``dependent`` over thresholds where ``constrained >= value``."""

    def make(params: Mapping[str, Any]) -> BucketState:
        target = float(params[constrained])  # required: checked while the name was resolved

        def finish(tp: F64, fp: F64, tn: F64, fn: F64) -> Value:
            positives, negatives = float(tp[0, 0] + fn[0, 0]), float(fp[0, 0] + tn[0, 0])
            if positives == 0.0:
                return Value.undefined(f"{owner} is undefined: no positive labels (Keras reports 0)")
            if negatives == 0.0 and "specificity" in (constrained, dependent):
                return Value.undefined(f"{owner} is undefined: no negative labels (Keras reports 0)")
            rates = {
                "recall": divide_no_nan(tp, tp + fn),
                "sensitivity": divide_no_nan(tp, tp + fn),
                "precision": divide_no_nan(tp, tp + fp),
                "specificity": divide_no_nan(tn, tn + fp),
            }
            feasible = rates[constrained][:, 0] >= target
            if not feasible.any():
                return Value.undefined(
                    f"{owner} is undefined: no threshold reaches {constrained} >= {target:g} (Keras reports 0)"
                )
            return Value.of(float(max(0.0, rates[dependent][feasible, 0].max())))

        return BucketState(
            owner,
            int(params["num_thresholds"]),
            epsilon_ends=False,
            finish=finish,
            class_id=params["class_id"],
        )

    return make


def _operating_validate(owner: str) -> Callable[..., None]:
    def validate(batch: Batch, **params: Any) -> None:
        check_labels(batch, owner)
        _check_probabilities(batch.y_pred, owner)

    return validate


_OPERATING = {
    "precision_at_recall": ("PrecisionAtRecall", "recall", "precision", "best precision where recall >= recall"),
    "recall_at_precision": ("RecallAtPrecision", "precision", "recall", "best recall where precision >= precision"),
    "sensitivity_at_specificity": (
        "SensitivityAtSpecificity",
        "specificity",
        "sensitivity",
        "best sensitivity (tp / (tp + fn)) where specificity (tn / (tn + fp)) >= specificity",
    ),
    "specificity_at_sensitivity": (
        "SpecificityAtSensitivity",
        "sensitivity",
        "specificity",
        "best specificity (tn / (tn + fp)) where sensitivity (tp / (tp + fn)) >= sensitivity",
    ),
}

# Keras's docstring examples (hand-checkable: a few rows, thresholds every 1/199).
_OPERATING_EXAMPLES = {
    "precision_at_recall": Example([0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8], 0.5, {"recall": 0.5}),
    # At threshold 0: predicted 0.5 (negative), 0.3 and 0.9 (positive): precision 2/3, recall 1.
    "recall_at_precision": Example([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], 1.0, {"precision": 0.5}),
    "sensitivity_at_specificity": Example(
        [0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8], 0.5, {"specificity": 0.5}
    ),
    "specificity_at_sensitivity": Example(
        [0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8], 2.0 / 3.0, {"sensitivity": 0.5}
    ),
}

for _name, (_cls, _constrained, _dependent, _formula) in _OPERATING.items():
    register(
        MetricDef(
            name=_name,
            kind="metric",
            task="binary|multilabel",
            direction="max",
            formula=(
                f"max {_formula}, over thresholds 0, 1/(N-1), ..., 1 (p > t is positive); "
                "rates with Keras's divide_no_nan"
            ),
            summary=f"Best {_dependent} at a {_constrained} of at least the given value (Keras's bucketed thresholds).",
            inputs=(
                "y_true 0/1 labels, y_pred probabilities in [0, 1]: (N,), or (N, C) cells flattened; "
                "class_id picks one column of a matrix"
            ),
            params=(
                Param(_constrained, None, float, f"the {_constrained} to reach", low=0.0, high=1.0, optional=True, required=True),
                Param("num_thresholds", 200, int, "number of evenly spaced thresholds in [0, 1]", low=1),
                Param("class_id", None, int, "binary metric of this column of a probability matrix", low=0, optional=True),
            ),
            keras=f"keras.metrics.{_cls}",
            sklearn=None,
            state=_operating_point(_name, _constrained, _dependent),
            memory="2 * num_thresholds floats",
            shapes="any",
            validate=_operating_validate(_name),
            deviations=(
                f"Null where Keras reports 0: when no threshold reaches the {_constrained}, or "
                "when y_true lacks the class a rate needs. Scores outside [0, 1] are an error "
                "(Keras clips them)."
            ),
            example=_OPERATING_EXAMPLES[_name],
        )
    )

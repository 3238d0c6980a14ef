"""Sorting and counting scores for the exact AUC: two threads, little memory.

The exact AUC keeps every score in chunks (concat arrays of a
:class:`~lossctl.state.State`). These helpers keep those chunk lists
compact as they grow (:func:`_compact_tail`), move them into one sorted
array when a result is asked for (:func:`_consolidate`), and count the
Mann-Whitney statistic with NumPy's sort and ``searchsorted``, which release
the GIL, so two threads share the work (:func:`_both`).

Arrays handed in are never modified in place: merged states share them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from lossctl.batch import F64

T = TypeVar("T")
U = TypeVar("U")

# Chunk pieces are gathered into arrays of at least this many scores (16 MiB):
# allocations that large are memory-mapped and go back to the system when
# freed, where small pieces would stay in the heap and double the peak.
_COMPACT = 1 << 21


def _compact_tail(scores: list[F64], weights: list[F64] | None = None) -> None:
    """Join the trailing small pieces of a score list (and of its weights) into one array.

    ``weights``, when given, is aligned with ``scores`` piece by piece and is
    joined over the same pieces. Appending keeps the list's multiset, and the
    joined array is new, so arrays shared with merged states are never modified.
    """
    small = 0
    start = len(scores)
    while start > 0 and len(scores[start - 1]) < _COMPACT:
        start -= 1
        small += len(scores[start])
    if small < _COMPACT or len(scores) - start < 2:
        return
    joined = np.concatenate(scores[start:])
    if weights is not None:
        joined_w = np.concatenate(weights[start:])
        del weights[start:]
        weights.append(joined_w)
    del scores[start:]
    scores.append(joined)


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


def _sorted(scores: F64, weights: F64 | None) -> tuple[F64, F64 | None]:
    """Scores in ascending order with their weights (unweighted scores already sorted are kept)."""
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


def _sorted_classes(
    pos: F64, pos_w: F64 | None, neg: F64, neg_w: F64 | None
) -> tuple[F64, F64 | None, F64, F64 | None]:
    """Both classes' scores sorted, their weights in the same order."""
    pos, pos_w = _sorted(pos, pos_w)
    neg, neg_w = _sorted(neg, neg_w)
    return pos, pos_w, neg, neg_w


def _has_nan(pos: F64, neg: F64) -> bool:
    """Whether a sorted class holds NaN (sorted last)."""
    return bool((pos.size and np.isnan(pos[-1])) or (neg.size and np.isnan(neg[-1])))


def exact_roc_auc(pos: F64, neg: F64, pos_w: F64 | None, neg_w: F64 | None) -> tuple[float | None, str]:
    """ROC AUC as the Mann-Whitney statistic, ties counted 1/2 (= scikit-learn's).

    Formula: ``sum over positive i, negative j of w_i w_j ([s_i > s_j] + [s_i == s_j] / 2)
    / (sum(w_pos) * sum(w_neg))``. Each class is sorted once; counts come from
    ``searchsorted``, never from an argsort of all rows.

    Returns:
        ``(value, "")`` or ``(None, reason)``.
    """
    pos, pos_w, neg, neg_w = _sorted_classes(pos, pos_w, neg, neg_w)
    if _has_nan(pos, neg):
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

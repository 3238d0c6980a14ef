"""Exact AUC under ``--ci``: every replicate from the kept scores and row numbers.

The scores are sorted once; the replicates' weights are regenerated from
the rows' global numbers (``lossctl.replicates``), 8 replicates at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossctl.batch import F64

# Rows per block of the replicate sweep (replicates x rows float64 stays bounded).
_SWEEP = 1 << 17


def roc_replicates(
    pos_parts: list[F64], neg_parts: list[F64], row_parts: list[np.ndarray], base: F64 | None, weigh: Any, replicates: int
) -> F64:
    """ROC AUC of every bootstrap replicate (NaN when undefined): one sort, one sweep per 8 replicates.

    The scores are sorted once; per block of ascending scores (cut between
    ties) and 8 replicates at a time, each tie group's positive and negative
    weight is summed, and ``sum(w_pos * (w_neg below + w_neg tied / 2))``
    accumulates with the running negative weight below. The kept chunks
    (scores of positives then negatives, their rows' numbers in the same
    order) are joined once; indices and row numbers are 32-bit where they
    fit, so the peak stays near 17 bytes a row besides the state.
    """
    n_pos = sum(len(p) for p in pos_parts)
    scores = np.concatenate([*pos_parts, *neg_parts]) if pos_parts or neg_parts else np.empty(0)
    index = np.int32 if len(scores) < 2**31 else np.int64
    order = np.argsort(scores, kind="stable").astype(index)
    ordered = scores[order]
    del scores
    ties = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]).astype(index)
    del ordered
    positive = order < n_pos
    # Row numbers below 2**31 (every input short of two billion rows) gathered as 32-bit.
    small = all(len(r) == 0 or int(r.max()) < 2**31 for r in row_parts)
    rows = np.concatenate(row_parts, dtype=np.int32 if small else np.int64, casting="unsafe")[order]
    base = None if base is None else base[order]
    del order
    cuts = np.unique(ties[np.searchsorted(ties, np.arange(0, len(rows), _SWEEP))])
    cuts = np.r_[cuts, len(rows)]
    out = np.full(replicates, np.nan)
    for first in range(0, replicates, 8):
        count = min(8, replicates - first)
        below = np.zeros(count)
        area = np.zeros(count)
        total_pos = np.zeros(count)
        for a, z in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
            w = weigh(rows[a:z], first, count)
            if base is not None:
                w *= base[a:z]
            wp = np.where(positive[a:z], w, 0.0)
            wn = w - wp
            starts = ties[np.searchsorted(ties, a) : np.searchsorted(ties, z)] - a
            if len(starts) < z - a:
                # Tied scores: one sum per group of ties.
                gp, gn = np.add.reduceat(wp, starts, axis=1), np.add.reduceat(wn, starts, axis=1)
            else:
                gp, gn = wp, wn  # every row its own group
            before = below[:, None] + np.cumsum(gn, axis=1) - gn
            area += np.einsum("ij,ij->i", gp, before + 0.5 * gn)
            below += gn.sum(axis=1)
            total_pos += gp.sum(axis=1)
        with np.errstate(all="ignore"):
            value = area / (total_pos * below)
        out[first : first + count] = np.where((total_pos > 0) & (below > 0), value, np.nan)
    return out


def pr_replicates(
    pos: F64, neg: F64, rows: np.ndarray, base: F64 | None, weigh: Any, replicates: int, score: Any
) -> F64:
    """Average precision of every replicate (NaN when undefined), one exact computation each.

    ``score(pos, neg, pos_w, neg_w) -> (value or None, why)`` is the exact average precision.
    """
    n_pos = len(pos)
    out = np.full(replicates, np.nan)
    for first in range(0, replicates, 8):
        count = min(8, replicates - first)
        block = weigh(rows, first, count)
        if base is not None:
            block *= base
        for j in range(count):
            value, _ = score(pos, neg, block[j, :n_pos], block[j, n_pos:])
            out[first + j] = np.nan if value is None else value
    return out

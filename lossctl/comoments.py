"""Co-moment blocks: weight, means and centred second moments of V variables, merged exactly.

A block has shape ``(..., K, C)``: ``K = 1 + V + V (V + 1) / 2`` rows per
column ``C``: the weight sum, the ``V`` means, then the co-moments
``sum(w (x_i - m_i)(x_j - m_j))`` for ``i <= j`` in row-major order
((0,0), (0,1), (1,1) for ``V = 2``). Blocks over different rows combine
with the pairwise update of Chan et al. (:func:`chan`), so no sum of
squares ever suffers the cancellation of ``sum(x**2) - n * mean**2``.
"""

from __future__ import annotations

import numpy as np

from lossctl.batch import F64
from lossctl.errors import DataError


def _variables(k: int) -> int:
    v = 0
    while 1 + v + v * (v + 1) // 2 < k:
        v += 1
    if 1 + v + v * (v + 1) // 2 != k:
        raise DataError(f"a co-moment block of {k} rows is malformed")
    return v


def _pairs(v: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(v) for j in range(i, v)]


def comoments(
    variables: list[F64], weight: F64 | None, groups: np.ndarray | None = None, slots: int = 1
) -> F64:
    """The co-moment block ``(K, C)`` of one chunk; each variable is ``(N, C)``.

    With ``groups`` (the slot of each row), one block per slot: ``(slots, K, C)``,
    from segmented sums (a slot without rows has weight 0 and changes nothing).
    """
    if groups is not None:
        return _segment_comoments(variables, weight, groups, slots)
    n = len(variables[0])
    cols = variables[0].shape[1]
    v = len(variables)
    block = np.zeros((1 + v + v * (v + 1) // 2, cols))
    if weight is None:
        total = float(n)
        means = [x.mean(axis=0) if n else np.zeros(cols) for x in variables]
    else:
        total = float(np.add.reduce(weight))
        # einsum, not @: a matrix product may wake a multithreaded BLAS.
        means = [np.einsum("i,ij->j", weight, x) / total if total > 0 else np.zeros(cols) for x in variables]
    devs = [x - m for x, m in zip(variables, means, strict=True)]
    block[0] = total
    for i, m in enumerate(means):
        block[1 + i] = m
    for row, (i, j) in enumerate(_pairs(v), start=1 + v):
        # One einsum per pair: no (N, C) temporary for the product.
        if weight is None:
            block[row] = np.einsum("ij,ij->j", devs[i], devs[j])
        else:
            block[row] = np.einsum("i,ij,ij->j", weight, devs[i], devs[j])
    return block


def _segment_comoments(variables: list[F64], weight: F64 | None, groups: np.ndarray, slots: int) -> F64:
    cols = variables[0].shape[1]
    v = len(variables)
    blocks = np.zeros((slots, 1 + v + v * (v + 1) // 2, cols))
    totals = np.bincount(groups, weights=weight, minlength=slots).astype(np.float64)
    safe = np.where(totals > 0, totals, 1.0)
    blocks[:, 0, :] = totals[:, None]
    devs = []
    for i, x in enumerate(variables):
        for c in range(cols):
            column = x[:, c] if weight is None else x[:, c] * weight
            blocks[:, 1 + i, c] = np.bincount(groups, weights=column, minlength=slots) / safe
        devs.append(x - blocks[groups, 1 + i, :])
    for row, (i, j) in enumerate(_pairs(v), start=1 + v):
        prod = devs[i] * devs[j]
        if weight is not None:
            prod *= weight[:, None]
        for c in range(cols):
            blocks[:, row, c] = np.bincount(groups, weights=prod[:, c], minlength=slots)
    return blocks


def chan(x: F64, y: F64) -> F64:
    """Pairwise (Chan et al.) combination of two co-moment blocks ``(..., K, C)``."""
    v = _variables(x.shape[-2])
    wx, wy = x[..., 0, :], y[..., 0, :]
    total = wx + wy
    safe = np.where(total > 0, total, 1.0)
    share, cross = wy / safe, wx * wy / safe
    out = np.empty_like(x)
    out[..., 0, :] = total
    deltas = [y[..., 1 + i, :] - x[..., 1 + i, :] for i in range(v)]
    for i in range(v):
        out[..., 1 + i, :] = x[..., 1 + i, :] + deltas[i] * share
    for row, (i, j) in enumerate(_pairs(v), start=1 + v):
        out[..., row, :] = x[..., row, :] + y[..., row, :] + deltas[i] * deltas[j] * cross
    return out


def chan_all(blocks: F64) -> F64:
    """The combination of every co-moment block along axis 0, pairwise (log2 steps), kept as ``(1, ...)``."""
    while len(blocks) > 1:
        half = len(blocks) // 2
        paired = chan(blocks[:half], blocks[half : 2 * half])
        blocks = np.concatenate([paired, blocks[2 * half :]]) if len(blocks) % 2 else paired
    return blocks.copy()

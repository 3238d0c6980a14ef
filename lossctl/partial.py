"""Partial results: the states of a range of rows, and what was seen on the way.

A :class:`Partial` is what a lane of the local engine, a saved shard
(``eval --save-state``) and (later) a distributed task produce. Two partials
over different rows :func:`merge` into the partial of all their rows; the
order does not matter. ``lossctl.finish`` turns one into results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossctl.state import State
from lossctl.state import merge as merge_states


class Partial:
    """States by accumulator key, plus row counts, NaN counts, first warnings and first error.

    Attributes:
        states: one :class:`State` per distinct accumulator key of the plan.
        rows: rows read (before ``--nan drop``).
        dropped: rows dropped by ``--nan drop``.
        bad: rows with NaN or infinite values seen under ``--nan error``.
        first_nan: ``(role, row)`` of the first such row, or ``None``.
        warned: per spec index, the first warning and the row it was met at.
        error: the first expected error and the first row of its chunk (never saved).
        groups: with ``--by``, the key of each group (slots ``i * stride ..`` are group ``groups[i]``).
        stride: slots per group: 1, or with ``--ci`` the plain rows and every replicate.
    """

    __slots__ = ("states", "rows", "dropped", "bad", "first_nan", "warned", "error", "groups", "stride", "first_row")

    def __init__(
        self,
        states: dict[str, State],
        rows: int = 0,
        dropped: int = 0,
        bad: int = 0,
        first_nan: tuple[str, int] | None = None,
        warned: dict[int, tuple[int, str]] | None = None,
        error: tuple[int, BaseException] | None = None,
        groups: list[tuple[Any, ...]] | None = None,
        stride: int = 1,
    ) -> None:
        self.states = states
        self.rows = rows
        self.dropped = dropped
        self.bad = bad
        self.first_nan = first_nan
        self.warned = {} if warned is None else warned
        self.error = error
        self.groups = groups
        self.stride = stride
        # The global number of the first row (--first-row): where a shard's rows sit in the whole input.
        self.first_row = 0


def _earlier(a: tuple[str, int] | None, b: tuple[str, int] | None) -> tuple[str, int] | None:
    if a is None or (b is not None and b[1] < a[1]):
        return b
    return a


def merge(a: Partial, b: Partial) -> Partial:
    """The partial of both inputs' rows; ``a`` and ``b`` are unchanged.

    Errors, NaN rows and warnings keep the one met at the earliest row, as one
    pass in row order would.
    """
    if set(a.states) != set(b.states):
        raise ValueError("partials of different plans cannot be merged")
    warned = dict(a.warned)
    for i, first in b.warned.items():
        if i not in warned or first[0] < warned[i][0]:
            warned[i] = first
    errors = [e for e in (a.error, b.error) if e is not None]
    a_states, b_states, groups = a.states, b.states, a.groups
    if a.groups is not None and b.groups is not None and a.groups != b.groups[: len(a.groups)]:
        # Slots are groups by key: map b's onto the union of both key lists.
        position = {key: i for i, key in enumerate(a.groups)}
        groups = list(a.groups)
        targets = []
        for key in b.groups:
            if key not in position:
                position[key] = len(groups)
                groups.append(key)
            targets.append(position[key])
        stride = a.stride
        index = (np.array(targets, dtype=np.int64)[:, None] * stride + np.arange(stride)).ravel()
        b_states = {k: s.relabel(index, max(len(groups) * stride, s.slots)) for k, s in b.states.items()}
    elif b.groups is not None and (a.groups is None or len(b.groups) > len(a.groups)):
        groups = b.groups
    return Partial(
        states={key: merge_states(a_states[key], b_states[key]) for key in a.states},
        rows=a.rows + b.rows,
        dropped=a.dropped + b.dropped,
        bad=a.bad + b.bad,
        first_nan=_earlier(a.first_nan, b.first_nan),
        warned=warned,
        error=min(errors, key=lambda e: e[0]) if errors else None,
        groups=groups,
        stride=a.stride,
    )

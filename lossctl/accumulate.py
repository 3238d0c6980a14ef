"""Behaviour of metric states: accumulators, and the values they finish into.

A :class:`~lossctl.state.State` is data only. An :class:`Accumulator`, made
by a registry entry from its parameters, says how a chunk updates a state
(``update``) and how a state's slot becomes a :class:`Value` (``finish``).
:class:`Mean` is the accumulator of every per-row kernel; :class:`Bound`
pairs one state with its accumulator for one-off use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossctl.batch import Batch
from lossctl.errors import DataError
from lossctl.state import State, merge


@dataclass(frozen=True)
class Value:
    """A metric's result: a finite float, or ``None`` with a note saying why.

    ``extra`` carries additional named results (``per_class`` values, what a
    convenience name ``resolved`` to) that renderers show next to the value.
    """

    value: float | None
    note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, x: float, *, undefined: str = "undefined", **extra: Any) -> Value:
        """Wrap a float; NaN or infinity become ``None`` with a note."""
        x = float(x)
        if math.isnan(x):
            return cls(None, f"{undefined} (NaN)", extra)
        if math.isinf(x):
            return cls(None, f"{undefined} (infinite)", extra)
        return cls(x, None, extra)

    @classmethod
    def undefined(cls, note: str, **extra: Any) -> Value:
        """An undefined value: never ``0.0``, always a reason."""
        return cls(None, note, extra)



_NO_ROWS = Value.undefined("no rows")
_ZERO_WEIGHT = Value.undefined("sum of weights is zero")


class Accumulator:
    """How chunks update a :class:`State` and how a state finishes into a :class:`Value`.

    An accumulator holds only its parameters. Two accumulators with equal
    ``key`` fill the same arrays the same way, so specs that share a key
    share one state (RMSE and MSE, precision and recall). ``fields`` declares
    the arrays' names and merge kinds (a name ending in ``*`` stands for
    several: ``pos.*``); :meth:`check` holds a loaded state against it.
    """

    key: str = ""
    fields: Mapping[str, str] = {}
    # True when update() folds a grouped batch (batch.groups) itself, with a
    # segmented sum; otherwise the engine gives it one batch per group.
    grouped = False

    # --ci (lossctl.bootstrap): how the bootstrap replicates reach the state.
    # An accumulator whose sum arrays are weighted sums of per-row columns
    # says so with `linear` and `add_sums`: every replicate of every such
    # state is then one matrix product per block of rows. One that keeps
    # every row (exact AUC, median) sets `keeps_rows`: it stores the rows'
    # global numbers and `finish_replicates` regenerates their weights. Any
    # other is updated once per replicate with reweighted rows.
    keeps_rows = False

    def new(self, slots: int = 1) -> State:
        return State(slots)

    def update(self, state: State, batch: Batch) -> None:
        raise NotImplementedError

    def linear(self, batch: Batch) -> tuple[list[Any], Any] | None:
        """The per-row columns (``None``: a column of ones) whose weighted sums update this state, and a context for :meth:`add_sums`."""
        return None

    def add_sums(self, state: State, slots: np.ndarray, sums: np.ndarray, rows: np.ndarray, context: Any) -> None:
        """Fold the weighted column sums ``sums[i]`` (of ``rows[i]`` rows) into slot ``slots[i]``.

        The slots' ``rows`` are counted by the caller (``lossctl.bootstrap``).
        """
        raise NotImplementedError

    def finish_replicates(self, state: State, slot: int, weigh: Any, replicates: int) -> list[Value]:
        """(``keeps_rows``) The value of every replicate of ``slot``; ``weigh(rows, first, count)`` gives weights."""
        raise NotImplementedError

    def finish(self, state: State, slot: int = 0) -> Value:
        raise NotImplementedError

    def finish_slots(self, state: State, slots: Sequence[int]) -> list[Value]:
        """:meth:`finish` of many slots (``--by`` groups); accumulators may do it at once."""
        return [self.finish(state, s) for s in slots]

    def count(self, state: State, batch: Batch) -> None:
        """Add the chunk's rows to ``rows`` of the batch's slot(s) (every update calls it once)."""
        if batch.groups is None:
            state.data["rows"][batch.slot] += len(batch)
        else:
            state.data["rows"] += batch.group_counts(state.slots)

    def check(self, state: State) -> None:
        """A data error unless ``state`` has only arrays this accumulator declares, of their kinds."""
        for name, kind in state.kinds.items():
            if name == "rows":
                continue
            declared = self.fields.get(name)
            if declared is None:
                declared = next(
                    (k for pattern, k in self.fields.items() if pattern.endswith("*") and name.startswith(pattern[:-1])),
                    None,
                )
            if declared != kind:
                raise DataError(f"state array '{name}' ({kind}) does not belong to {self.key}")


def fold_batch(updates: Sequence[tuple[Accumulator, State]], batch: Batch) -> None:
    """Update every state with ``batch``: with groups, a grouped accumulator at once, the others one group at a time."""
    parts: list[Batch] | None = None
    for acc, state in updates:
        if batch.groups is None or acc.grouped:
            acc.update(state, batch)
            continue
        if parts is None:
            parts = batch.by_group()  # split once, shared by every state that needs it
        for part in parts:
            acc.update(state, part)


class Transformed(Accumulator):
    """An accumulator whose value is a function of another's (RMSE = sqrt(MSE)); same state."""

    __slots__ = ("inner", "transform")

    def __init__(self, inner: Accumulator, transform: Any) -> None:
        self.inner = inner
        self.transform = transform
        self.grouped = inner.grouped
        self.key = inner.key
        self.fields = inner.fields

    def new(self, slots: int = 1) -> State:
        return self.inner.new(slots)

    def update(self, state: State, batch: Batch) -> None:
        self.inner.update(state, batch)

    @property
    def keeps_rows(self) -> bool:  # type: ignore[override]
        return self.inner.keeps_rows

    def linear(self, batch: Batch) -> tuple[list[Any], Any] | None:
        return self.inner.linear(batch)

    def add_sums(self, state: State, slots: np.ndarray, sums: np.ndarray, rows: np.ndarray, context: Any) -> None:
        self.inner.add_sums(state, slots, sums, rows, context)

    def finish_replicates(self, state: State, slot: int, weigh: Any, replicates: int) -> list[Value]:
        out = []
        for inner in self.inner.finish_replicates(state, slot, weigh, replicates):
            out.append(inner if inner.value is None else Value.of(self.transform(inner.value), **inner.extra))
        return out

    def finish(self, state: State, slot: int = 0) -> Value:
        inner = self.inner.finish(state, slot)
        if inner.value is None:
            return inner
        return Value.of(self.transform(inner.value), **inner.extra)

    def finish_slots(self, state: State, slots: Sequence[int]) -> list[Value]:
        out = []
        for inner in self.inner.finish_slots(state, slots):
            out.append(inner if inner.value is None else Value.of(self.transform(inner.value), **inner.extra))
        return out

    def check(self, state: State) -> None:
        self.inner.check(state)


class Bound:
    """A state with its accumulator, for one-off use (``lossctl.get``, tests).

    ``update(batch)``, ``merge(other)`` (new, inputs unchanged) and
    ``result()``, over slot 0.
    """

    __slots__ = ("accumulator", "state")

    def __init__(self, accumulator: Accumulator, state: State | None = None) -> None:
        self.accumulator = accumulator
        self.state = accumulator.new() if state is None else state

    def update(self, batch: Batch) -> None:
        self.accumulator.update(self.state, batch)

    def merge(self, other: Bound) -> Bound:
        return Bound(self.accumulator, merge(self.state, other.state))

    def result(self) -> Value:
        return self.accumulator.finish(self.state, 0)

    @property
    def rows(self) -> int:
        return self.state.rows(0)


# --------------------------------------------------------------------------
# The weighted mean of a per-row kernel: most entries are one

REDUCTIONS = ("mean", "sum_over_batch_size", "sum")


def state_key(kind: str, fn: Any, params: Mapping[str, Any]) -> str:
    """A stable, readable identity for an accumulator: its kind, function and parameters."""
    name = f"{fn.__module__}.{fn.__qualname__}" if callable(fn) else str(fn)
    args = ",".join(f"{k}={params[k]!r}" for k in sorted(params))
    return f"{kind}:{name}({args})"


class Mean(Accumulator):
    """Weighted mean of a per-row kernel, like Keras's ``MeanMetricWrapper``.

    Arrays: ``total`` (the weighted sum of the per-row values) and ``weight``
    (the sum of weights), both ``sum``. ``reduction`` chooses the
    denominator when finishing: ``mean`` divides by the sum of weights (a
    Keras metric), ``sum_over_batch_size`` by the number of rows (a Keras
    loss called with ``sample_weight``), ``sum`` does not divide; it is not
    part of the key, so ``mse`` and ``mse:reduction=sum`` share one state.
    ``identity`` names the kernel in the key instead of its Python name (a
    plugin's function: its name and content hash, the same in every process).
    """

    fields = {"total": "sum", "weight": "sum"}
    grouped = True

    def __init__(self, kernel: Any, params: Mapping[str, Any], reduction: str = "mean", identity: str | None = None) -> None:
        self.kernel = kernel
        self.params = dict(params)
        self.reduction = reduction
        self.key = state_key("mean", kernel if identity is None else identity, self.params)

    def update(self, state: State, batch: Batch) -> None:
        if batch.weight is not None and batch.weight.ndim == 2:
            # A weight per cell (Keras's per-element sample_weight; the registry
            # lets only element-wise kernels get here): each cell is a row.
            self._add(state, batch.cells())
            self.count(state, batch)
            return
        self._add(state, batch)
        self.count(state, batch)

    def _add(self, state: State, batch: Batch) -> None:
        total, weight, s = state.declare("total", "sum"), state.declare("weight", "sum"), batch.slot
        if batch.groups is not None:
            # One segmented sum for every group of the chunk.
            values, slots = batch.per_row(self.kernel, self.params), state.slots
            w = batch.weight
            total += np.bincount(batch.groups, weights=values if w is None else values * w, minlength=slots)
            weight += batch.group_counts(slots) if w is None else np.bincount(batch.groups, weights=w, minlength=slots)
        elif batch.weight is None:
            # Shared with every state of the same kernel (MSE and RMSE sum once).
            total[s] += batch.row_total(self.kernel, self.params)
            weight[s] += float(len(batch))
        else:
            values = batch.per_row(self.kernel, self.params)
            # vdot, not dot: np.dot of two vectors may wake a multithreaded BLAS,
            # which costs 100x more than the arithmetic on a busy 2-core machine.
            total[s] += float(np.vdot(batch.weight, values))
            weight[s] += float(np.add.reduce(batch.weight))

    def linear(self, batch: Batch) -> tuple[list[Any], Any]:
        return [batch.per_row(self.kernel, self.params), None], None

    def add_sums(self, state: State, slots: np.ndarray, sums: np.ndarray, rows: np.ndarray, context: Any) -> None:
        state.declare("total", "sum")[slots] += sums[:, 0]
        state.declare("weight", "sum")[slots] += sums[:, 1]

    def finish(self, state: State, slot: int = 0) -> Value:
        rows = state.rows(slot)
        if rows == 0:
            return Value.undefined("no rows")
        total = float(state.data["total"][slot])
        if self.reduction == "sum":
            return Value.of(total)
        if self.reduction == "sum_over_batch_size":
            return Value.of(total / rows)
        weight = float(state.data["weight"][slot])
        if weight == 0.0:
            return Value.undefined("sum of weights is zero")
        return Value.of(total / weight)

    def finish_slots(self, state: State, slots: Sequence[int]) -> list[Value]:
        """Every slot's mean at once (100,000 groups finish in milliseconds, not seconds)."""
        index = np.asarray(slots, dtype=np.int64)
        rows = state.data["rows"][index]
        total = state.data["total"][index] if "total" in state.data else np.zeros(len(index))
        weight = state.data["weight"][index] if "weight" in state.data else np.zeros(len(index))
        with np.errstate(all="ignore"):
            if self.reduction == "sum":
                values = total
            elif self.reduction == "sum_over_batch_size":
                values = total / rows
            else:
                values = total / weight
        out = []
        zero_weight = self.reduction == "mean"
        for n, w, v in zip(rows.tolist(), weight.tolist(), values.tolist(), strict=True):
            if n == 0:
                out.append(_NO_ROWS)
            elif zero_weight and w == 0.0:
                out.append(_ZERO_WEIGHT)
            else:
                out.append(Value(v) if math.isfinite(v) else Value.of(v))
        return out

"""Streaming metric states: ``update`` per chunk, pure ``merge``, ``result``.

Every state keeps float64 sums, weight sums and counts, never running means,
so that partial states over any split of the rows combine exactly (up to
float rounding) into what one pass over all rows gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import numpy as np

from lossctl.batch import F64, Batch


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


class State(Protocol):
    """The streaming contract every metric state follows.

    ``update`` folds one chunk in place and does not depend on chunk order;
    ``merge`` returns a new state equal to one pass over both inputs' rows and
    leaves both inputs unchanged; ``result`` can be called any number of times.
    """

    def update(self, batch: Batch) -> None: ...

    def merge(self, other: Self) -> Self: ...

    def result(self) -> Value: ...


Kernel = Callable[..., F64]

REDUCTIONS = ("mean", "sum_over_batch_size", "sum")


class MeanState:
    """Weighted mean of a per-row kernel, like Keras's ``MeanMetricWrapper``.

    ``reduction`` chooses the denominator: ``mean`` divides by the sum of
    weights (a Keras metric), ``sum_over_batch_size`` by the number of rows
    (a Keras loss called with ``sample_weight``), ``sum`` does not divide.
    """

    __slots__ = ("kernel", "params", "reduction", "total", "weight_sum", "rows")

    def __init__(self, kernel: Kernel, params: Mapping[str, Any], reduction: str = "mean") -> None:
        self.kernel = kernel
        self.params = dict(params)
        self.reduction = reduction
        self.total = 0.0
        self.weight_sum = 0.0
        self.rows = 0

    def update(self, batch: Batch) -> None:
        if batch.weight is None:
            # Shared with every state of the same kernel (MSE and RMSE sum once).
            self.total += batch.row_total(self.kernel, self.params)
            self.weight_sum += float(len(batch))
        else:
            values = batch.per_row(self.kernel, self.params)
            # vdot, not dot: np.dot of two vectors may wake a multithreaded BLAS,
            # which costs 100x more than the arithmetic on a busy 2-core machine.
            self.total += float(np.vdot(batch.weight, values))
            self.weight_sum += float(np.add.reduce(batch.weight))
        self.rows += len(batch)

    def merge(self, other: MeanState) -> MeanState:
        out = MeanState(self.kernel, self.params, self.reduction)
        out.total = self.total + other.total
        out.weight_sum = self.weight_sum + other.weight_sum
        out.rows = self.rows + other.rows
        return out

    def result(self) -> Value:
        if self.rows == 0:
            return Value.undefined("no rows")
        if self.reduction == "sum":
            return Value.of(self.total)
        if self.reduction == "sum_over_batch_size":
            return Value.of(self.total / self.rows)
        if self.weight_sum == 0.0:
            return Value.undefined("sum of weights is zero")
        return Value.of(self.total / self.weight_sum)


class TransformedState:
    """A state whose result is a function of another state's (RMSE = sqrt(MSE))."""

    __slots__ = ("inner", "transform")

    def __init__(self, inner: State, transform: Callable[[float], float]) -> None:
        self.inner = inner
        self.transform = transform

    def update(self, batch: Batch) -> None:
        self.inner.update(batch)

    def merge(self, other: TransformedState) -> TransformedState:
        return TransformedState(self.inner.merge(other.inner), self.transform)

    def result(self) -> Value:
        inner = self.inner.result()
        if inner.value is None:
            return inner
        return Value.of(self.transform(inner.value), **inner.extra)

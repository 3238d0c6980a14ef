"""Dice and Tversky losses over the whole table (Keras's default ``axis=None``), Keras-exact.

Both are functions of three weighted sums over every element of the table,
``sum(t * p)``, ``sum(t)`` and ``sum(p)``, so chunks merge exactly and the
two losses (whatever Tversky's alpha and beta) fill one state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import EPSILON, Batch, as_rows
from lossctl.metrics._probabilities import check_both_unit_interval
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register
from lossctl.state import State


class Overlap(Accumulator):
    """Dice or Tversky from the weighted sums ``sum(t * p)``, ``sum(t)``, ``sum(p)`` over every element.

    Arrays (``sum``, one value per slot): ``intersection``, ``true_sum`` and
    ``pred_sum``. A row's weight multiplies each of its elements. The key
    leaves out ``loss``, ``alpha`` and ``beta``, which only :meth:`finish`
    reads: Dice and every Tversky share one state.
    """

    fields = {"intersection": "sum", "true_sum": "sum", "pred_sum": "sum"}

    def __init__(self, loss: str, alpha: float = 0.5, beta: float = 0.5) -> None:
        self.loss = loss
        self.alpha = alpha
        self.beta = beta
        self.key = state_key("overlap", Overlap, {})

    def update(self, state: State, batch: Batch) -> None:
        t, p = as_rows(batch.y_true), as_rows(batch.y_pred)
        per_row = np.stack([(t * p).sum(axis=-1), t.sum(axis=-1), p.sum(axis=-1)])
        sums = per_row.sum(axis=1) if batch.weight is None else per_row @ batch.weight
        s = batch.slot
        state.declare("intersection", "sum")[s] += float(sums[0])
        state.declare("true_sum", "sum")[s] += float(sums[1])
        state.declare("pred_sum", "sum")[s] += float(sums[2])
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        intersection = float(state.data["intersection"][slot])
        true_sum = float(state.data["true_sum"][slot])
        pred_sum = float(state.data["pred_sum"][slot])
        if self.loss == "dice":
            return Value.of(dice_score(intersection, true_sum, pred_sum))
        return Value.of(tversky_score(intersection, true_sum, pred_sum, self.alpha, self.beta))


def dice_score(intersection: float, true_sum: float, pred_sum: float) -> float:
    """Formula: 1 - 2 * sum(t * p) / (sum(t) + sum(p) + eps), over every element."""
    return 1.0 - 2.0 * intersection / (true_sum + pred_sum + EPSILON)


def tversky_score(intersection: float, true_sum: float, pred_sum: float, alpha: float, beta: float) -> float:
    """Formula: 1 - I / (I + alpha * sum((1 - p) * t) + beta * sum(p * (1 - t)) + eps), I = sum(t * p).

    Keras names ``sum((1 - p) * t)`` "fp" and weights it by alpha, though it
    counts missed positives; lossctl keeps Keras's arithmetic.
    """
    missed = true_sum - intersection  # sum((1 - p) * t)
    spurious = pred_sum - intersection  # sum(p * (1 - t))
    return 1.0 - intersection / (intersection + alpha * missed + beta * spurious + EPSILON)


_OVERLAP_INPUTS = "y_true masks/labels in [0, 1] and y_pred probabilities in [0, 1], same shape: (N, C) or (N,)"
_OVERLAP_NOTE = (
    "Computed over the whole table (Keras's default axis=None), not per row; a row's sample weight "
    "multiplies its elements in the three sums (Keras would scale the single loss value instead). "
    "The reduction parameter has no effect on a whole-table value."
)


def _dice_state(params: Mapping[str, Any]) -> Overlap:
    return Overlap("dice")


register(
    MetricDef(
        name="dice",
        kind="loss",
        task="multilabel|binary",
        direction="min",
        formula="1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps), over every element",
        summary="Dice loss over the whole table (1 - Dice coefficient), as Keras's default axis=None.",
        inputs=_OVERLAP_INPUTS,
        keras="keras.losses.dice / keras.losses.Dice",
        state=_dice_state,
        validate=lambda b, **_: check_both_unit_interval(b),
        deviations=_OVERLAP_NOTE,
        example=Example([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]], 1.0 - 2.0 / (4.0 + EPSILON)),
    )
)


def _tversky_state(params: Mapping[str, Any]) -> Overlap:
    return Overlap("tversky", float(params["alpha"]), float(params["beta"]))


register(
    MetricDef(
        name="tversky",
        kind="loss",
        task="multilabel|binary",
        direction="min",
        formula=(
            "1 - I / (I + alpha * sum((1 - y_pred) * y_true) + beta * sum(y_pred * (1 - y_true)) + eps), "
            "I = sum(y_true * y_pred), over every element"
        ),
        summary="Tversky loss over the whole table; alpha = beta = 0.5 is the Dice loss.",
        inputs=_OVERLAP_INPUTS,
        params=(
            Param("alpha", 0.5, float, "weight of sum((1 - y_pred) * y_true) (Keras calls it false positives)", low=0.0),
            Param("beta", 0.5, float, "weight of sum(y_pred * (1 - y_true)) (Keras calls it false negatives)", low=0.0),
        ),
        keras="keras.losses.tversky / keras.losses.Tversky",
        state=_tversky_state,
        validate=lambda b, **_: check_both_unit_interval(b),
        deviations=_OVERLAP_NOTE,
        example=Example([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]], 1.0 - 1.0 / (2.0 + EPSILON)),
    )
)

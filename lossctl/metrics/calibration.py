"""Expected calibration error: per-bin sums of weight, confidence and correctness.

Bins are ``n_bins`` equal-width intervals of [0, 1], ``(lo, hi]`` except the
first, which includes 0 (scikit-learn's ``calibration_curve`` binning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lossctl.accumulate import Accumulator, Value, state_key
from lossctl.batch import Batch
from lossctl.metrics._labels import true_classes
from lossctl.metrics._sklearn_inputs import (
    PROBA_INPUTS,
    validate_probabilities,
)
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register
from lossctl.state import State


class Calibration(Accumulator):
    """Expected calibration error from per-bin weighted sums.

    Arrays (``sum``, ``(slots, n_bins)``): ``weight`` (the sum of weights per
    bin), ``confidence`` (of weight times confidence) and ``correct`` (of
    weight times correctness). Memory is three floats per bin. ``n_bins`` is
    part of the key: it decides the bins every row falls in.
    """

    fields = {"weight": "sum", "confidence": "sum", "correct": "sum"}

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.n_bins = int(params["n_bins"])
        self.key = state_key("bins", Calibration, {"n_bins": self.n_bins})

    def update(self, state: State, batch: Batch) -> None:
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
        n, s = self.n_bins, batch.slot
        state.declare("weight", "sum", (n,))[s] += np.bincount(bins, weights=w, minlength=n)
        state.declare("confidence", "sum", (n,))[s] += np.bincount(bins, weights=w * confidence, minlength=n)
        state.declare("correct", "sum", (n,))[s] += np.bincount(bins, weights=w * correct, minlength=n)
        self.count(state, batch)

    def finish(self, state: State, slot: int = 0) -> Value:
        if state.rows(slot) == 0:
            return Value.undefined("no rows")
        total = float(state.data["weight"][slot].sum())
        if total == 0.0:
            return Value.undefined("sum of weights is zero")
        gaps = state.data["correct"][slot] - state.data["confidence"][slot]
        return Value.of(float(np.sum(np.abs(gaps))) / total)


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
        inputs=PROBA_INPUTS + "; a matrix of any width (2 included) uses the top-label confidence",
        params=(Param("n_bins", 15, int, "number of equal-width confidence bins over [0, 1]", low=1),),
        keras=None,
        sklearn="sklearn.calibration.calibration_curve (binning; ECE is the weighted L1 gap)",
        state=Calibration,
        shapes="any",
        validate=validate_probabilities,
        # One row per bin: gaps 0.1, 0.1, 0.25, 0.3.
        example=Example([0.0, 1.0, 1.0, 0.0], [0.1, 0.9, 0.75, 0.3], (0.1 + 0.1 + 0.25 + 0.3) / 4.0),
    )
)

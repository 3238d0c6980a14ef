"""The operating-point metrics: the best rate at a constraint on another (SPEC sections 3, 7).

``precision_at_recall``, ``recall_at_precision``, ``sensitivity_at_specificity``
and ``specificity_at_sensitivity`` are Keras's ``SensitivitySpecificityBase``
metrics: confusion counts at ``num_thresholds`` evenly spaced thresholds
(Keras's bucketed histograms, :mod:`lossctl.metrics._buckets`), and the best
``dependent`` rate over the thresholds where the ``constrained`` rate reaches
the value asked for. The four share one state when their thresholds and
``class_id`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lossctl.accumulate import Value
from lossctl.batch import F64, Batch
from lossctl.metrics._buckets import Buckets
from lossctl.metrics._curve_math import check_probabilities, divide_no_nan
from lossctl.metrics._labels import check_labels
from lossctl.params import Param
from lossctl.registry import Example, MetricDef, register


class OperatingPoint(Buckets):
    """The best ``dependent`` rate over the thresholds where ``constrained >= target``."""

    def __init__(
        self, owner: str, constrained: str, dependent: str, target: float, num_thresholds: int, class_id: int | None
    ) -> None:
        super().__init__(owner, num_thresholds, epsilon_ends=False, class_id=class_id)
        self.constrained = constrained
        self.dependent = dependent
        self.target = target

    def at_thresholds(self, tp: F64, fp: F64, tn: F64, fn: F64) -> Value:
        owner, constrained, dependent, target = self.owner, self.constrained, self.dependent, self.target
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


def _operating_point(owner: str, constrained: str, dependent: str) -> Callable[[Mapping[str, Any]], OperatingPoint]:
    """State factory of one of the four metrics."""

    def make(params: Mapping[str, Any]) -> OperatingPoint:
        target = float(params[constrained])  # required: checked while the name was resolved
        return OperatingPoint(
            owner, constrained, dependent, target, int(params["num_thresholds"]), params["class_id"]
        )

    return make


def _operating_validate(owner: str) -> Callable[..., None]:
    def validate(batch: Batch, **params: Any) -> None:
        check_labels(batch, owner)
        check_probabilities(batch.y_pred, owner)

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
            element_weights=True,
            validate=_operating_validate(_name),
            deviations=(
                f"Null where Keras reports 0: when no threshold reaches the {_constrained}, or "
                "when y_true lacks the class a rate needs. Scores outside [0, 1] are an error "
                "(Keras clips them)."
            ),
            example=_OPERATING_EXAMPLES[_name],
        )
    )

"""The IoU family (intersection over union), as Keras 3 computes it (SPEC sections 3-4).

Every entry finishes from a weighted confusion matrix over a known number of
classes (:class:`lossctl.metrics.confusion.Matrix`); ``iou`` and ``mean_iou``
with the same decision parameters share it, as do the one-hot variants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from lossctl.accumulate import Value
from lossctl.batch import F64, Batch
from lossctl.errors import UsageProblem
from lossctl.metrics._labels import (
    check_binary_labels,
    check_class_labels,
    classes_text,
)
from lossctl.metrics.confusion import ClassRule, Matrix, ThresholdRule, iou_classes
from lossctl.params import ClassIdsParam, Param, class_ids
from lossctl.registry import Example, MetricDef, register

# --------------------------------------------------------------------------
# Parameters


# --------------------------------------------------------------------------
# The value


def iou_value(cm: F64, targets: tuple[int, ...] | None) -> Value:
    """Mean IoU over the target classes present in y_true or y_pred (Keras's rule).

    Formula: ``iou_c = cm[c, c] / (sum(cm[c, :]) + sum(cm[:, c]) - cm[c, c])``;
    classes with a zero denominator are left out of the mean, as Keras does.
    """
    tp = np.diag(cm)
    den = cm.sum(axis=0) + cm.sum(axis=1) - tp
    defined = den > 0
    per = np.divide(tp, np.where(defined, den, 1.0))
    extra = {"per_class": [float(v) if d else None for v, d in zip(per, defined, strict=True)]}
    ids = np.arange(len(cm)) if targets is None else np.asarray(targets, dtype=np.intp)
    used = ids[defined[ids]]
    if used.size == 0:
        return Value.undefined(
            f"IoU is undefined: {classes_text(ids)} absent from y_true and y_pred (Keras reports 0)", **extra
        )
    value = float(per[used].mean())
    left_out = ids[~defined[ids]]
    if left_out.size:
        return Value(value, f"{classes_text(left_out)} absent from y_true and y_pred: left out of the mean (as Keras does)", extra)
    return Value.of(value, **extra)


def _check_targets(owner: str, targets: tuple[int, ...] | None, k: int) -> None:
    if targets is not None and max(targets) >= k:
        raise UsageProblem(f"{owner}: target class id {max(targets)} is out of range for {k} classes")


class IoU(Matrix):
    """Mean IoU of the ``targets`` classes (``None``: every class) from the confusion matrix."""

    def __init__(self, rule: ClassRule | ThresholdRule, owner: str, targets: tuple[int, ...] | None) -> None:
        super().__init__(rule, owner)
        self.targets = targets

    def score(self, matrix: F64) -> Value:
        # Checked on every chunk by the entry's validate; here for a state updated without it.
        _check_targets(self.owner, self.targets, len(matrix))
        return iou_value(matrix, self.targets)


def _iou_validate(owner: str, one_hot: bool) -> Callable[..., None]:
    def validate(batch: Batch, **params: Any) -> None:
        lay, k = iou_classes(batch, owner, params.get("num_classes"), one_hot)
        targets = params.get("target_class_ids")
        _check_targets(owner, class_ids(targets) if targets is not None else None, k)
        ignore = params.get("ignore_class")
        if one_hot:
            check_binary_labels(batch.y_true, owner)
            if batch.y_pred.ndim == 1:
                check_class_labels(batch.y_pred, k, owner, "y_pred")
            return
        check_class_labels(batch.y_true, k, owner, ignore=ignore)
        if lay != "sparse":
            check_class_labels(batch.y_pred, k, owner, "y_pred")

    return validate


def _iou_state(owner: str, one_hot: bool, all_classes: bool) -> Callable[[Mapping[str, Any]], IoU]:
    def make(params: Mapping[str, Any]) -> IoU:
        if all_classes:
            targets = None
        else:
            if params.get("target_class_ids") is None:
                raise UsageProblem(f"{owner}: give target_class_ids (e.g. {owner}:target_class_ids=0+2)")
            targets = class_ids(params["target_class_ids"])
        num_classes, ignore = params.get("num_classes"), params.get("ignore_class")
        rule = ClassRule(
            one_hot, None if num_classes is None else int(num_classes), None if ignore is None else int(ignore)
        )
        return IoU(rule, owner, targets)

    return make


_NUM_CLASSES = Param(
    "num_classes",
    None,
    int,
    "number of classes; none: the width of the probability matrix (required for label columns)",
    low=1,
    optional=True,
)
_TARGETS = ClassIdsParam(
    "target_class_ids", None, tuple, "the classes whose IoU is averaged (required, as in Keras)", optional=True
)
_IGNORE = Param("ignore_class", None, int, "rows whose true class is this id are left out", optional=True)

_IOU_FORMULA = "mean over classes c of tp_c / (tp_c + fp_c + fn_c), from the weighted confusion matrix"
_IOU_DEVIATIONS = (
    "num_classes may be left out when a side is a probability matrix (its width). Without "
    "Keras's 1e-7 epsilons; when no target class appears in y_true or y_pred the value "
    "is null where Keras reports 0. Fractional sample weights are used as given: Keras "
    "3.15.1 (torch backend, as run for the reference vectors) truncates them to integers "
    "in the IoU confusion matrix, contrary to its own documented example."
)
_LABEL_INPUTS = (
    "class labels: y_true integer labels (N,) against y_pred labels (N,) or a probability "
    "matrix (N, C) (argmax); label matrices (N, D) are read cell by cell"
)
_ONE_HOT_INPUTS = "y_true one-hot (N, C); y_pred probabilities (N, C) (argmax) or integer labels (N,)"
_PROBS_2 = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]

register(
    MetricDef(
        name="iou",
        aliases=("io_u",),
        kind="metric",
        task="multiclass",
        direction="max",
        formula=_IOU_FORMULA + ", over target_class_ids",
        summary="Intersection over union of the target classes.",
        inputs=_LABEL_INPUTS,
        params=(_NUM_CLASSES, _TARGETS, _IGNORE),
        keras="keras.metrics.IoU",
        sklearn="sklearn.metrics.jaccard_score (average=None, then the mean of the targets)",
        state=_iou_state("iou", one_hot=False, all_classes=False),
        shapes="labels",
        element_weights=True,
        validate=_iou_validate("iou", one_hot=False),
        deviations=_IOU_DEVIATIONS,
        # argmax [0, 1, 0, 1] against [0, 0, 1, 1]: class 0 has tp 1, fp 1, fn 1.
        example=Example([0, 0, 1, 1], _PROBS_2, 1.0 / 3.0, {"target_class_ids": "0"}),
    )
)

register(
    MetricDef(
        name="mean_iou",
        aliases=("mean_io_u",),
        kind="metric",
        task="multiclass",
        direction="max",
        formula=_IOU_FORMULA,
        summary="Intersection over union averaged over the classes present.",
        inputs=_LABEL_INPUTS,
        params=(_NUM_CLASSES, _IGNORE),
        keras="keras.metrics.MeanIoU",
        sklearn="sklearn.metrics.jaccard_score (average='macro' over the classes present)",
        state=_iou_state("mean_iou", one_hot=False, all_classes=True),
        shapes="labels",
        element_weights=True,
        validate=_iou_validate("mean_iou", one_hot=False),
        deviations=_IOU_DEVIATIONS,
        example=Example([0, 0, 1, 1], _PROBS_2, 1.0 / 3.0),
    )
)

register(
    MetricDef(
        name="one_hot_iou",
        kind="metric",
        task="multiclass",
        direction="max",
        formula=_IOU_FORMULA + ", over target_class_ids, after argmax of both sides",
        summary="Intersection over union of the target classes, for one-hot labels.",
        inputs=_ONE_HOT_INPUTS,
        params=(_NUM_CLASSES, _TARGETS, _IGNORE),
        keras="keras.metrics.OneHotIoU",
        sklearn=None,
        state=_iou_state("one_hot_iou", one_hot=True, all_classes=False),
        shapes="any",
        validate=_iou_validate("one_hot_iou", one_hot=True),
        deviations=_IOU_DEVIATIONS,
        example=Example([[1, 0], [1, 0], [0, 1], [0, 1]], _PROBS_2, 1.0 / 3.0, {"target_class_ids": "0"}),
    )
)

register(
    MetricDef(
        name="one_hot_mean_iou",
        kind="metric",
        task="multiclass",
        direction="max",
        formula=_IOU_FORMULA + ", after argmax of both sides",
        summary="Intersection over union averaged over the classes present, for one-hot labels.",
        inputs=_ONE_HOT_INPUTS,
        params=(_NUM_CLASSES, _IGNORE),
        keras="keras.metrics.OneHotMeanIoU",
        sklearn=None,
        state=_iou_state("one_hot_mean_iou", one_hot=True, all_classes=True),
        shapes="any",
        validate=_iou_validate("one_hot_mean_iou", one_hot=True),
        deviations=_IOU_DEVIATIONS,
        example=Example([[1, 0], [1, 0], [0, 1], [0, 1]], _PROBS_2, 1.0 / 3.0),
    )
)


def _binary_iou_state(params: Mapping[str, Any]) -> IoU:
    targets = class_ids(params["target_class_ids"])
    _check_targets("binary_iou", targets, 2)
    return IoU(ThresholdRule(float(params["threshold"])), "binary_iou", targets)


def _binary_iou_validate(batch: Batch, **params: Any) -> None:
    check_binary_labels(batch.y_true, "binary_iou")


register(
    MetricDef(
        name="binary_iou",
        kind="metric",
        task="binary|multilabel",
        direction="max",
        formula=_IOU_FORMULA + " with predicted class (y_pred >= threshold), over target_class_ids",
        summary="Intersection over union of classes 0 and 1 after thresholding.",
        inputs="y_true 0/1 and y_pred scores of the same shape, (N,) or (N, C) (every cell counts)",
        params=(
            ClassIdsParam("target_class_ids", (0, 1), tuple, "which of classes 0 and 1 are averaged"),
            Param("threshold", 0.5, float, "class 1 when y_pred >= threshold"),
        ),
        keras="keras.metrics.BinaryIoU",
        sklearn="sklearn.metrics.jaccard_score (average=None on y_pred >= threshold)",
        state=_binary_iou_state,
        shapes="same",
        element_weights=True,
        validate=_binary_iou_validate,
        deviations=_IOU_DEVIATIONS.split(". ", 1)[1],
        # pred [0, 0, 1, 1] vs [0, 1, 0, 1]: each class has tp 1, fp 1, fn 1.
        example=Example([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7], 1.0 / 3.0, {"threshold": 0.3}),
    )
)

"""Focal cross-entropies, Keras-exact: cross-entropy down-weighting easy rows.

``(1 - p_t) ** gamma`` scales each term of the binary or categorical
cross-entropy, so confidently right rows count less (Lin et al., 2017).
Keras's epsilon (1e-7) and clipping as in ``lossctl.metrics.crossentropy``.
"""

from __future__ import annotations

import math

import numpy as np

from lossctl.batch import CLIP_HIGH, CLIP_LOW, F64, Batch, row_mean
from lossctl.metrics._probabilities import (
    BINARY_INPUTS,
    CATEGORICAL_INPUTS,
    FROM_LOGITS,
    LABEL_SMOOTHING,
    binary_ce,
    binary_validator,
    categorical_validator,
    looks_like_probabilities,
    rows_not_normalised,
    sigmoid,
    smooth_binary,
    smooth_categorical,
)
from lossctl.params import Param
from lossctl.registry import Example, kernel


@kernel(
    name="binary_focal_crossentropy",
    kind="loss",
    task="binary|multilabel",
    direction="min",
    formula=(
        "mean(a * (1 - p_t) ** gamma * bce, axis=-1), bce = -(t log(pc) + (1 - t) log(1 - pc)), "
        "pc = clip(p, eps, 1 - eps), p_t = t * p + (1 - t) * (1 - p), p = y_pred (sigmoid(y_pred) "
        "from logits), a = t * alpha + (1 - t) * (1 - alpha) with apply_class_balancing, else 1"
    ),
    summary="Binary cross-entropy down-weighting easy examples by (1 - p_t) ** gamma.",
    inputs=BINARY_INPUTS,
    params=(
        Param("apply_class_balancing", False, bool, "weight class 1 by alpha and class 0 by 1 - alpha"),
        Param("alpha", 0.25, float, "weight of class 1 when apply_class_balancing is true", low=0.0, high=1.0),
        Param("gamma", 2.0, float, "focusing parameter: 0 gives plain binary cross-entropy", low=0.0),
        FROM_LOGITS,
        LABEL_SMOOTHING,
    ),
    keras="keras.losses.binary_focal_crossentropy / keras.losses.BinaryFocalCrossentropy",
    validate=binary_validator("binary_focal_crossentropy"),
    warn=looks_like_probabilities,
    deviations="alpha is ignored unless apply_class_balancing=true, as in Keras.",
    example=Example([1.0], [0.8], -(0.2**2) * math.log(0.8)),
)
def binary_focal_crossentropy(
    b: Batch,
    *,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> F64:
    """Per-row binary focal cross-entropy, as ``keras.losses.binary_focal_crossentropy``.

    Formula: mean(a * (1 - p_t) ** gamma * bce(t, clip(p, eps, 1 - eps)), axis=-1)
    with p_t = t * p + (1 - t) * (1 - p) on the *unclipped* probability p
    (Keras clips only inside the cross-entropy).

    Returns:
        ``(N,)`` per-row losses.
    """
    t = smooth_binary(b.y_true, label_smoothing)
    # Validated probabilities may stray PROBABILITY_TOLERANCE outside [0, 1];
    # clip so that (1 - p_t) ** gamma stays real (a no-op on Keras's inputs).
    if from_logits:
        p = sigmoid(b.y_pred)
        bce = binary_ce(t, np.clip(p, CLIP_LOW, CLIP_HIGH))
    else:
        p = np.clip(b.y_pred, 0.0, 1.0)
        bce = binary_ce(t, b.clipped_pred)
    p_t = t * p + (1.0 - t) * (1.0 - p)
    focal = np.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (t * alpha + (1.0 - t) * (1.0 - alpha)) * focal
    return row_mean(focal)


@kernel(
    name="categorical_focal_crossentropy",
    kind="loss",
    task="multiclass",
    direction="min",
    formula=(
        "sum(alpha * (1 - p) ** gamma * -t * log(p), axis=-1), "
        "p = clip(y_pred / sum(y_pred, axis=-1), eps, 1 - eps) (softmax(y_pred) first from logits), "
        "t = y_true * (1 - label_smoothing) + label_smoothing / C"
    ),
    summary="Categorical cross-entropy down-weighting confident classes by (1 - p) ** gamma.",
    inputs=CATEGORICAL_INPUTS,
    params=(
        Param("alpha", 0.25, float, "weight applied to every class", low=0.0),
        Param("gamma", 2.0, float, "focusing parameter: 0 gives alpha * categorical cross-entropy", low=0.0),
        FROM_LOGITS,
        LABEL_SMOOTHING,
    ),
    keras="keras.losses.categorical_focal_crossentropy / keras.losses.CategoricalFocalCrossentropy",
    validate=categorical_validator("categorical_focal_crossentropy"),
    warn=rows_not_normalised,
    deviations="alpha is a single number (Keras also accepts one per class).",
    example=Example([[0.0, 1.0]], [[0.2, 0.8]], -0.25 * 0.2**2 * math.log(0.8)),
)
def categorical_focal_crossentropy(
    b: Batch,
    *,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> F64:
    """Per-row categorical focal cross-entropy, as ``keras.losses.categorical_focal_crossentropy``.

    Formula: sum(alpha * (1 - p) ** gamma * -t * log(p), axis=-1) with
    p = clip(y_pred / sum(y_pred, -1), eps, 1 - eps) (softmax of logits first).

    Returns:
        ``(N,)`` per-row losses.
    """
    t = smooth_categorical(b.y_true, label_smoothing)
    if from_logits:
        p = np.clip(np.exp(b.log_softmax_pred), CLIP_LOW, CLIP_HIGH)
    else:
        p = b.normalized_pred
    return np.sum(alpha * np.power(1.0 - p, gamma) * (-t * np.log(p)), axis=-1)

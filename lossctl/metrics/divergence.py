"""Kullback-Leibler divergence of predicted from target distributions, Keras-exact."""

from __future__ import annotations

import math

import numpy as np

from lossctl.batch import EPSILON, F64, Batch
from lossctl.metrics._probabilities import (
    check_both_unit_interval,
    distributions_not_normalised,
)
from lossctl.registry import Example, kernel


@kernel(
    name="kl_divergence",
    aliases=("kld",),
    legacy=("kullback_leibler_divergence",),
    kind="loss",
    task="multiclass",
    direction="min",
    formula="sum(t * log(t / p), axis=-1), t = clip(y_true, eps, 1), p = clip(y_pred, eps, 1)",
    summary="Kullback-Leibler divergence of y_pred from y_true (both distributions, clipped at eps).",
    inputs="y_true and y_pred probability rows of the same shape, (N, C) (or (N,): one term per row)",
    keras="keras.losses.kl_divergence / keras.losses.KLDivergence",
    validate=lambda b, **_: check_both_unit_interval(b),
    warn=distributions_not_normalised,
    example=Example([[0.5, 0.5]], [[0.25, 0.75]], 0.5 * math.log(4.0 / 3.0)),
)
def kl_divergence(b: Batch) -> F64:
    """Per-row KL divergence, as ``keras.losses.kl_divergence``.

    Formula: sum(t * log(t / p), axis=-1), t = clip(y_true, eps, 1),
    p = clip(y_pred, eps, 1); both are probabilities.

    Returns:
        ``(N,)`` per-row divergences.
    """
    t = np.clip(b.y_true, EPSILON, 1.0)
    p = np.clip(b.y_pred, EPSILON, 1.0)
    terms = t * np.log(t / p)
    return terms if terms.ndim == 1 else terms.sum(axis=-1)

"""Plugin entries for the registry-wide properties (tests/test_plugin_properties.py), one per task.

Each says its task with the decorator, so the property tests can make inputs for it.
"""

import numpy as np

import lossctl


@lossctl.loss(task="regression", aliases=["plugin_rel_sq"])
def plugin_relative_squared(y_true, y_pred, scale=1.0):
    """Squared error relative to the target, per row."""
    return np.mean(scale * np.square((y_pred - y_true) / y_true), axis=-1)


@lossctl.metric(task="binary", direction="max")
def plugin_hit(y_true, y_pred, threshold=0.5):
    """1 where the decision at threshold matches the label."""
    return np.mean((y_pred > threshold) == (y_true == 1), axis=-1).astype(float)


@lossctl.loss(task="multiclass")
def plugin_smoothed_cce(smoothing=0.1):
    """A factory: categorical cross-entropy against smoothed one-hot labels."""

    def smoothed_cce(y_true, y_pred):
        classes = y_true.shape[-1]
        target = y_true * (1 - smoothing) + smoothing / classes
        return -np.sum(target * np.log(np.clip(y_pred, 1e-7, 1.0)), axis=-1)

    return smoothed_cce


@lossctl.loss(task="multilabel")
def plugin_bce_rows(y_true, y_pred):
    """Binary cross-entropy averaged over the labels of a row."""
    p = np.clip(y_pred, 1e-7, 1 - 1e-7)
    return -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p), axis=-1)

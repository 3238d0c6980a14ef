"""scikit-learn's ``multioutput``: how the per-output scores of a regression metric combine."""

from __future__ import annotations

from typing import Any

import numpy as np

from lossctl.batch import F64
from lossctl.errors import DataError


def combine_outputs(scores: F64, variances: F64, how: Any, owner: str) -> float:
    """The mean of per-output ``scores``: uniform, weighted by ``variances``, or by given weights.

    ``how`` is ``uniform_average``, ``variance_weighted`` (or Keras's
    ``variance_weighted_average``), or a sequence of weights, one per
    output column (scikit-learn's ``multioutput=array``).
    """
    if isinstance(how, str):
        if how.startswith("variance_weighted"):
            return float(np.sum(variances * scores) / np.sum(variances))
        return float(np.mean(scores))
    weights = np.asarray(how, dtype=np.float64)
    if weights.shape != scores.shape:
        raise DataError(f"{owner}: multioutput has {weights.size} weights for {scores.size} output columns")
    if float(weights.sum()) == 0.0:
        return float("nan")
    return float(np.dot(weights, scores) / weights.sum())

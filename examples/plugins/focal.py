"""Binary focal loss as the articles write it (a factory of gamma and alpha), in NumPy.

    lossctl eval sample_data/binary.csv --plugin examples/plugins/focal.py --loss binary_focal_loss
    lossctl eval sample_data/binary.csv --plugin examples/plugins/focal.py --loss binary_focal_loss:gamma=1:alpha=0.5

The article's function ends with ``K.mean(K.sum(loss, axis=1))``: the sum over
the last axis is the value of a row, and the mean over rows is what lossctl
takes (weighted, with --weight). So the function returns the per-row sums.
"""

import numpy as np

import lossctl


@lossctl.loss(formula="sum(-alpha_t * (1 - p_t)**gamma * log(p_t), axis=-1), p_t = y_pred if y_true == 1 else 1 - y_pred")
def binary_focal_loss(gamma=2.0, alpha=0.25):
    """Focal loss for binary labels (Lin et al. 2017): down-weights the well-classified rows."""

    def binary_focal_loss_fixed(y_true, y_pred):
        epsilon = 1e-7
        y_pred = np.clip(y_pred, epsilon, 1.0 - epsilon)
        p_t = np.where(y_true == 1, y_pred, 1 - y_pred)
        alpha_t = np.where(y_true == 1, alpha, 1 - alpha)
        cross_entropy = -np.log(p_t)
        weight = alpha_t * (1 - p_t) ** gamma
        return np.sum(weight * cross_entropy, axis=-1)

    return binary_focal_loss_fixed

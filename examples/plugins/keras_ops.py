"""The same three losses written with keras.ops, as in Keras training code (needs Keras installed).

    lossctl eval sample_data/regression.csv --plugin examples/plugins/keras_ops.py --loss my_loss

lossctl hands the functions NumPy arrays and converts what they return with
numpy.asarray, so the functions you train with evaluate your prediction
files unchanged. Load this file or the NumPy ones, not both: the names are the same.
"""

from keras import ops


def my_loss(y_true, y_pred):
    """Mean absolute difference over the last axis."""
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


def huber_loss_with_threshold(t=1.0):
    """Huber loss with threshold t."""

    def huber_loss(y_true, y_pred):
        error = y_true - y_pred
        is_small_error = ops.abs(error) <= t
        squared_loss = 0.5 * ops.square(error)
        linear_loss = t * (ops.abs(error) - 0.5 * t)
        return ops.mean(ops.where(is_small_error, squared_loss, linear_loss), axis=-1)

    return huber_loss


def binary_focal_loss(gamma=2.0, alpha=0.25):
    """Binary focal loss (sum over the last axis per row, as the article's function)."""

    def binary_focal_loss_fixed(y_true, y_pred):
        y_pred = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        p_t = ops.where(ops.equal(y_true, 1), y_pred, 1 - y_pred)
        alpha_t = ops.where(ops.equal(y_true, 1), alpha, 1 - alpha)
        return ops.sum(-alpha_t * ops.power(1 - p_t, gamma) * ops.log(p_t), axis=-1)

    return binary_focal_loss_fixed

"""A loss with a parameter: a factory that closes over a threshold (the Keras articles' wrapper).

    lossctl eval sample_data/regression.csv --plugin examples/plugins/huber.py --loss huber_loss_with_threshold:t=2

Every parameter of the factory has a default, so lossctl calls it once with
its defaults to see that it returns a loss; ``t`` becomes a parameter of the
name (``huber_loss_with_threshold:t=2``), typed from its default (a number).
"""

import numpy as np


def huber_loss_with_threshold(t=1.0):
    """Huber loss with threshold t: squared below t, linear beyond."""

    def huber_loss(y_true, y_pred):
        error = y_true - y_pred
        is_small_error = np.abs(error) <= t
        squared_loss = 0.5 * np.square(error)
        linear_loss = t * (np.abs(error) - 0.5 * t)
        return np.mean(np.where(is_small_error, squared_loss, linear_loss), axis=-1)

    return huber_loss

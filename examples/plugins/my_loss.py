"""A custom loss written the way Keras users write one, in NumPy.

    lossctl eval sample_data/regression.csv --plugin examples/plugins/my_loss.py --loss my_loss

The Keras article's version is ``tf.reduce_mean(tf.abs(y_true - y_pred), axis=-1)``:
the same arithmetic, one value per row.
"""

import numpy as np


def my_loss(y_true, y_pred):
    """Mean absolute difference over the last axis: one value per row."""
    abs_difference = np.abs(y_true - y_pred)
    return np.mean(abs_difference, axis=-1)

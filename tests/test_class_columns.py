"""Probabilities in one column per class (``--pred 'prob_*'``) against the same rows as a matrix.

Per-class columns reach the kernels column-major and, from Parquet, still
float32 (``lossctl.chunks``, ``Batch.scores``): the label's probability, the
row sums and the counts of higher and tied classes come from the columns.
The numbers must be those of the row-major float64 matrix of the same values
(NPY) and of a plain NumPy oracle, ties at the top and at the k-th place
included, with several chunks and both NaN policies.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import lossctl
from lossctl.errors import DataError

C = 6
SPECS = dict(
    loss="sparse_categorical_crossentropy",
    metric="sparse_categorical_accuracy,sparse_top_k_categorical_accuracy:k=3,categorical_generalized_cross_entropy",
)
NAMES = (
    "sparse_categorical_crossentropy",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy:k=3",
    "categorical_generalized_cross_entropy",
)


def _data(n: int = 1000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Labels and float32 probability rows, with ties at the top and at the third place."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    p = rng.dirichlet(np.ones(C), n).astype(np.float32)
    # ties: the label's class shares the maximum with an earlier and with a later class
    p[0] = [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]
    labels[0] = 1  # argmax is class 0: a miss for accuracy, a hit for top-k
    p[1] = [0.3, 0.3, 0.1, 0.1, 0.1, 0.1]
    labels[1] = 0  # the first maximum: a hit
    p[2] = [0.25, 0.25, 0.2, 0.2, 0.05, 0.05]
    labels[2] = 3  # tied at the third place: a top-3 hit (Keras counts ties)
    p[3] = [0.05, 0.05, 0.1, 0.2, 0.3, 0.3]
    labels[3] = 2  # below three higher classes: a top-3 miss
    return labels, p


def _oracle(labels: np.ndarray, p32: np.ndarray) -> dict[str, float]:
    p = p32.astype(np.float64)
    rows = np.arange(len(labels))
    p_l = p[rows, labels]
    scce = -np.log(np.clip(p_l / p.sum(axis=1), 1e-7, 1 - 1e-7))
    acc = np.argmax(p, axis=1) == labels
    top3 = (p > p_l[:, None]).sum(axis=1) < 3
    gce = (1 - np.power(p_l, 0.5)) / 0.5
    return dict(zip(NAMES, (scce.mean(), acc.mean(), top3.mean(), gce.mean()), strict=True))


def _write(tmp_path, labels, p):
    cols = {"label": pa.array(labels, pa.int64())}
    cols.update({f"prob_{k}": pa.array(p[:, k], pa.float32()) for k in range(C)})
    table = pa.table(cols)
    pq.write_table(table, tmp_path / "cols.parquet", row_group_size=300)
    pacsv.write_csv(table, tmp_path / "cols.csv")
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "probs.npy", p.astype(np.float64))
    flat = pa.array(p.reshape(-1), pa.float32())
    pq.write_table(
        pa.table({"y_true": pa.array(labels, pa.int64()), "y_pred": pa.FixedSizeListArray.from_arrays(flat, C)}),
        tmp_path / "list32.parquet",
    )


def _values(ev) -> dict[str, float]:
    return {name: ev[name].value for name in NAMES}


def test_per_class_columns_match_the_matrix_and_the_oracle(tmp_path):
    labels, p = _data()
    _write(tmp_path, labels, p)
    want = _oracle(labels, p)
    runs = {
        "parquet columns": lossctl.evaluate(str(tmp_path / "cols.parquet"), true="label", pred="prob_*", chunk_size=128, **SPECS),
        "csv columns": lossctl.evaluate(str(tmp_path / "cols.csv"), true="label", pred="prob_*", chunk_size=97, **SPECS),
        "float32 list": lossctl.evaluate(str(tmp_path / "list32.parquet"), chunk_size=128, **SPECS),
        "npy matrix": lossctl.evaluate(
            true=str(tmp_path / "labels.npy"), pred=str(tmp_path / "probs.npy"), chunk_size=128, **SPECS
        ),
    }
    for layout, ev in runs.items():
        got = _values(ev)
        for name in NAMES:
            # the CSV holds the float32 values' shortest decimals: read as float64, a hair apart
            assert got[name] == pytest.approx(want[name], rel=1e-9 if "csv" in layout else 1e-12), (layout, name)
    # the hand-made ties: first maximum for accuracy, ties counted as hits for top-k
    head = lossctl.evaluate(str(tmp_path / "cols.parquet"), true="label", pred="prob_*", chunk_size=2, **SPECS)
    assert head["sparse_categorical_accuracy"].value == pytest.approx(want["sparse_categorical_accuracy"])


def test_ties_decide_rows_as_keras_does(tmp_path):
    labels, p = _data(n=4)
    _write(tmp_path, labels, p)
    ev = lossctl.evaluate(str(tmp_path / "cols.parquet"), true="label", pred="prob_*", **SPECS)
    assert ev["sparse_categorical_accuracy"].value == pytest.approx(0.25)  # only row 1 (row 3: 0.3 wins)
    assert ev["sparse_top_k_categorical_accuracy:k=3"].value == pytest.approx(0.75)  # all but row 3


def test_missing_probability_follows_the_nan_policy(tmp_path):
    labels, p = _data(n=50)
    cols = {"label": pa.array(labels, pa.int64())}
    for k in range(C):
        values = p[:, k].tolist()
        if k == 2:
            values[7] = None  # one empty cell: that column arrives as float64 with a NaN
        cols[f"prob_{k}"] = pa.array(values, pa.float32())
    pq.write_table(pa.table(cols), tmp_path / "gap.parquet")
    with pytest.raises(DataError, match="row 7"):
        lossctl.evaluate(str(tmp_path / "gap.parquet"), true="label", pred="prob_*", **SPECS)
    dropped = lossctl.evaluate(str(tmp_path / "gap.parquet"), true="label", pred="prob_*", nan="drop", chunk_size=16, **SPECS)
    keep = np.arange(50) != 7
    want = _oracle(labels[keep], p[keep])
    for name in NAMES:
        assert dropped[name].value == pytest.approx(want[name], rel=1e-12)
    propagated = lossctl.evaluate(str(tmp_path / "gap.parquet"), true="label", pred="prob_*", nan="propagate", **SPECS)
    assert propagated["sparse_categorical_crossentropy"].value is None or math.isnan(
        propagated["sparse_categorical_crossentropy"].value
    )


def test_a_probability_out_of_range_names_its_row_and_value(tmp_path):
    labels, p = _data(n=40)
    p[29, 4] = 1.5
    _write(tmp_path, labels, p)
    with pytest.raises(DataError, match=r"row 29.*1\.5 is outside \[0, 1\]"):
        lossctl.evaluate(str(tmp_path / "cols.parquet"), true="label", pred="prob_*", chunk_size=16, **SPECS)

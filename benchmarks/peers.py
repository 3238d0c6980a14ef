#!/usr/bin/env python3
"""Peer implementations timed against lossctl, one fresh process per run.

Usage::

    python benchmarks/peers.py TOOL WORKLOAD DATA_DIR   # prints one JSON object

TOOL is one of ``floor``, ``numpy``, ``sklearn`` (pandas + scikit-learn),
``duckdb``, ``polars``, ``torchmetrics``; WORKLOAD is a key of
``common.WORKLOADS``. The JSON printed on standard output is::

    {"tool": ..., "workload": ..., "rows": N,
     "metrics": {KEY: float | null}, "notes": {KEY: "why"}}

A tool imports its libraries inside the timed process (import cost is part of
what a user pays). Exit status ``EXIT_UNAVAILABLE`` means the tool's library is
not installed; ``EXIT_NOT_APPLICABLE`` means the tool does not do the workload.

Every tool computes Keras 3 semantics (epsilon 1e-7; see ``common`` and the
README) with vectorised whole-column expressions -- no per-row Python loops.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    EPSILON,
    EXIT_NOT_APPLICABLE,
    EXIT_UNAVAILABLE,
    N_CLASSES,
    TOP_K,
    WORKLOADS,
    Workload,
)

if TYPE_CHECKING:
    import numpy as np

Metrics = dict[str, float | None]


class PeerResult:
    """Numbers computed by one peer, with notes on anything approximate or missing."""

    def __init__(
        self, rows: int, metrics: Metrics | None = None, notes: dict[str, str] | None = None
    ) -> None:
        self.rows = rows
        self.metrics: Metrics = dict(metrics or {})
        self.notes: dict[str, str] = dict(notes or {})

    def to_json(self, tool: str, workload: str) -> str:
        """The result as the JSON line the harness parses."""
        metrics: Metrics = {}
        for key, value in self.metrics.items():
            if value is not None and not math.isfinite(value):
                self.notes.setdefault(key, f"non-finite value {value!r}")
                value = None
            metrics[key] = None if value is None else float(value)
        return json.dumps(
            {
                "tool": tool,
                "workload": workload,
                "rows": int(self.rows),
                "metrics": metrics,
                "notes": self.notes,
            }
        )


class NotApplicable(Exception):
    """The tool has no sensible way to do this workload."""


# =========================================================================== loading


def _sql_str(path: Path) -> str:
    """``path`` as a single-quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def load_arrow_columns(w: Workload, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` as NumPy arrays, read with pyarrow (Parquet/CSV) or ``np.load``.

    A fixed-size-list ``y_pred``, or the ``prob_*`` columns, become an ``(N, K)`` matrix.
    """
    import numpy as np

    path = w.paths(data_dir)[0]
    if w.fmt == "npy":
        labels_path, probs_path = w.paths(data_dir)
        return np.load(labels_path), np.load(probs_path)
    table = read_arrow(w, path)
    y_true = table.column(w.true).to_numpy()
    if w.layout == "columns":
        return y_true, np.column_stack([table.column(c).to_numpy() for c in w.pred_columns])
    pred_col = table.column(w.pred)
    if w.kind == "multiclass":
        import pyarrow as pa

        flat = pa.chunked_array([chunk.flatten() for chunk in pred_col.chunks])
        width = pred_col.type.list_size
        y_pred = flat.to_numpy().reshape(-1, width)
    else:
        y_pred = pred_col.to_numpy()
    return y_true, y_pred


def read_arrow(w: Workload, path: Path) -> Any:
    """The workload's columns of a CSV or Parquet file as one pyarrow table."""
    if w.fmt == "csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=w.columns))
    import pyarrow.parquet as pq

    # ParquetFile.read is pq.read_table without the pyarrow.dataset layer, whose
    # import (it pulls in pandas) costs ~0.5 s of start-up and is not reading.
    return pq.ParquetFile(path).read(columns=w.columns)


# =========================================================================== floor


def run_floor(w: Workload, data_dir: Path) -> PeerResult:
    """Read just the needed columns and nothing else: the lower bound for any tool."""
    if w.fmt == "npy":
        import numpy as np

        labels_path, probs_path = w.paths(data_dir)
        labels, probs = np.load(labels_path), np.load(probs_path)
        labels.sum(), probs.sum()  # touch every page
        return PeerResult(len(labels))
    return PeerResult(read_arrow(w, w.paths(data_dir)[0]).num_rows)


# =========================================================================== numpy


def np_regression(t: np.ndarray, p: np.ndarray) -> Metrics:
    """Keras 3 regression losses/metrics over 1-D float arrays."""
    import numpy as np

    n = t.shape[0]
    e = p - t
    ae = np.abs(e)
    sse = float(np.dot(e, e))
    dev = t - t.mean()
    return {
        "mse": sse / n,
        "mae": float(ae.mean()),
        "mape": 100.0 * float(np.mean(ae / np.maximum(np.abs(t), EPSILON))),
        "msle": float(
            np.mean(np.square(np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))))
        ),
        "huber": float(np.mean(np.where(ae <= 1.0, 0.5 * e * e, ae - 0.5))),
        "log_cosh": float(np.mean(e + np.logaddexp(0.0, -2.0 * e) - math.log(2.0))),
        "rmse": math.sqrt(sse / n),
        "r2": 1.0 - sse / float(np.dot(dev, dev)),
    }


def np_binary_auc(t: np.ndarray, p: np.ndarray) -> float | None:
    """Exact ROC AUC with ties counted as one half (``sklearn.metrics.roc_auc_score``).

    Sorts the negative and positive scores and counts, for every positive, the
    negatives strictly below it plus half the negatives tied with it.
    """
    import numpy as np

    is_pos = t == 1
    pos = np.sort(p[is_pos])
    neg = np.sort(p[~is_pos])
    if pos.size == 0 or neg.size == 0:
        return None
    below = np.searchsorted(neg, pos, side="left")
    below_or_tied = np.searchsorted(neg, pos, side="right")
    twice_u = 2 * int(below.sum()) + int((below_or_tied - below).sum())
    return twice_u / (2.0 * pos.size * neg.size)


def np_binary(t: np.ndarray, p: np.ndarray) -> Metrics:
    """Keras 3 binary cross-entropy and accuracy, and the exact ROC AUC."""
    import numpy as np

    pc = np.clip(p, EPSILON, 1.0 - EPSILON)
    bce = -float(np.mean(t * np.log(pc) + (1.0 - t) * np.log(1.0 - pc)))
    acc = float(np.mean((p > 0.5).astype(t.dtype) == t))
    return {"binary_crossentropy": bce, "binary_accuracy": acc, "roc_auc": np_binary_auc(t, p)}


def np_multiclass(labels: np.ndarray, probs: np.ndarray) -> Metrics:
    """Keras 3 sparse categorical cross-entropy, accuracy and top-k accuracy."""
    import numpy as np

    rows = np.arange(labels.shape[0])
    p_label = probs[rows, labels]
    p_norm = p_label / probs.sum(axis=1)
    scce = -float(np.mean(np.log(np.clip(p_norm, EPSILON, 1.0 - EPSILON))))
    acc = float(np.mean(np.argmax(probs, axis=1) == labels))
    n_greater = np.count_nonzero(probs > p_label[:, None], axis=1)
    top_k = float(np.mean(n_greater < TOP_K))
    return {
        "sparse_categorical_crossentropy": scce,
        "sparse_categorical_accuracy": acc,
        "sparse_top_5_accuracy": top_k,
    }


NP_KERNELS: dict[str, Callable[[Any, Any], Metrics]] = {
    "regression": np_regression,
    "binary": np_binary,
    "multiclass": np_multiclass,
}


def run_numpy(w: Workload, data_dir: Path) -> PeerResult:
    """pyarrow (or ``np.load``) into NumPy arrays, then whole-array NumPy kernels."""
    y_true, y_pred = load_arrow_columns(w, data_dir)
    return PeerResult(len(y_true), NP_KERNELS[w.kind](y_true, y_pred))


# =========================================================================== pandas + sklearn


def run_sklearn(w: Workload, data_dir: Path) -> PeerResult:
    """pandas readers (``np.load`` for NPY) and ``sklearn.metrics``; pandas/NumPy
    expressions for the losses scikit-learn does not have (Huber, log-cosh)."""
    import numpy as np
    import pandas as pd
    from sklearn import metrics as skm

    path = w.paths(data_dir)[0]
    notes: dict[str, str] = {}
    if w.fmt == "npy":
        y_true, y_pred = load_arrow_columns(w, data_dir)
    else:
        if w.fmt == "csv":
            df = pd.read_csv(path, usecols=w.columns, engine="pyarrow")
        else:
            df = pd.read_parquet(path, columns=w.columns)
        y_true = df[w.true].to_numpy()
        if w.layout == "columns":
            y_pred = df[list(w.pred_columns)].to_numpy()
        elif w.kind == "multiclass":
            y_pred = np.stack(df[w.pred].to_numpy())
        else:
            y_pred = df[w.pred].to_numpy()
        del df

    if w.kind == "regression":
        t, p = pd.Series(y_true), pd.Series(y_pred)
        e = p - t
        ae = e.abs()
        metrics: dict[str, Any] = {
            "mse": skm.mean_squared_error(t, p),
            "mae": skm.mean_absolute_error(t, p),
            "mape": 100.0 * skm.mean_absolute_percentage_error(t, p),
            "msle": skm.mean_squared_log_error(t, p),
            "huber": float((0.5 * e * e).where(ae <= 1.0, ae - 0.5).mean()),
            "log_cosh": float((e + np.logaddexp(0.0, -2.0 * e) - math.log(2.0)).mean()),
            "rmse": skm.root_mean_squared_error(t, p),
            "r2": skm.r2_score(t, p),
        }
        notes["mape"] = (
            "sklearn clips |y_true| at machine epsilon, Keras at 1e-7 (same here: y_true > 1e-7)"
        )
        notes["msle"] = "sklearn does not clip at 1e-7 (same here: all values > 1e-7)"
        notes["huber"] = notes["log_cosh"] = "not in sklearn: pandas/NumPy expression"
    elif w.kind == "binary":
        metrics = {
            "binary_crossentropy": skm.log_loss(y_true, y_pred, labels=[0, 1]),
            "binary_accuracy": skm.accuracy_score(y_true, (y_pred > 0.5).astype(y_true.dtype)),
            "roc_auc": skm.roc_auc_score(y_true, y_pred),
        }
        notes["binary_crossentropy"] = (
            "log_loss clips at machine epsilon, Keras at 1e-7 (same here)"
        )
    else:
        classes = np.arange(y_pred.shape[1])
        metrics = {
            "sparse_categorical_crossentropy": skm.log_loss(y_true, y_pred, labels=classes),
            "sparse_categorical_accuracy": skm.accuracy_score(y_true, np.argmax(y_pred, axis=1)),
            "sparse_top_5_accuracy": skm.top_k_accuracy_score(
                y_true, y_pred, k=TOP_K, labels=classes
            ),
        }
        notes["sparse_categorical_crossentropy"] = "log_loss clips at machine epsilon (same here)"
        notes["sparse_top_5_accuracy"] = "sklearn breaks score ties, Keras counts them as hits"
    return PeerResult(len(y_true), {k: float(v) for k, v in metrics.items()}, notes)


# =========================================================================== duckdb


def _duckdb_source(w: Workload, data_dir: Path) -> str:
    """The ``FROM`` clause reading the workload's file."""
    path = _sql_str(w.paths(data_dir)[0])
    if w.fmt == "csv" and w.layout == "columns":
        # FLOAT, the type the columns were written in: parsed faster than DOUBLE.
        types = ", ".join([f"'{w.true}': 'BIGINT'"] + [f"'{c}': 'FLOAT'" for c in w.pred_columns])
        return f"read_csv({path}, header = true, columns = {{{types}}})"
    if w.fmt == "csv":
        return (
            f"read_csv({path}, header = true, columns = {{'y_true': 'DOUBLE', 'y_pred': 'DOUBLE'}})"
        )
    if w.fmt == "parquet":
        return f"read_parquet({path})"
    raise NotApplicable("DuckDB has no NPY reader")


def duckdb_regression_terms(t: str = "t", p: str = "p", e: str = "e", arm: str = "") -> str:
    """The 8 regression aggregates over targets ``t``, predictions ``p`` and ``e = p - t`` (SQL
    names), each named after its metric key plus ``arm``; ``{eps}`` is left to be formatted."""
    return f"""  avg({e} * {e}) AS mse{arm},
  avg(abs({e})) AS mae{arm},
  100.0 * avg(abs({e}) / greatest(abs({t}), {{eps}})) AS mape{arm},
  avg(pow(ln(greatest({p}, {{eps}}) + 1.0) - ln(greatest({t}, {{eps}}) + 1.0), 2)) AS msle{arm},
  avg(CASE WHEN abs({e}) <= 1.0 THEN 0.5 * {e} * {e} ELSE abs({e}) - 0.5 END) AS huber{arm},
  -- log_cosh(e) = e + softplus(-2e) - ln 2, softplus(x) = max(x, 0) + ln(1 + exp(-|x|))
  avg({e} + greatest(-2.0 * {e}, 0.0) + ln(1.0 + exp(-abs(2.0 * {e}))) - ln(2.0)) AS log_cosh{arm},
  sqrt(avg({e} * {e})) AS rmse{arm},
  1.0 - sum({e} * {e}) / (var_pop({t}) * count(*)) AS r2{arm}"""


_DUCKDB_REGRESSION = f"""
WITH d AS (SELECT y_true AS t, y_pred AS p, y_pred - y_true AS e FROM {{src}})
SELECT
  count(*) AS rows,
{duckdb_regression_terms()}
FROM d
"""

# One scan: group by score, then a running window over the sorted groups gives,
# for each score, the negatives strictly below it (exact AUC, ties count 1/2).
# BCE and accuracy are linear in the per-group sums, so they come from the same groups.
_DUCKDB_BINARY = """
WITH g AS (
  SELECT
    y_pred AS s,
    count(*) AS n,
    sum(y_true) AS pos,
    count(*) - sum(y_true) AS neg,
    sum(CASE WHEN y_true = (CASE WHEN y_pred > 0.5 THEN 1 ELSE 0 END) THEN 1 ELSE 0 END) AS hits
  FROM {src}
  GROUP BY y_pred
),
c AS (
  SELECT *,
    least(greatest(s, {eps}), 1.0 - {eps}) AS pc,
    coalesce(sum(neg) OVER (ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
      AS neg_below
  FROM g
)
SELECT
  sum(n) AS rows,
  -sum(pos * ln(pc) + neg * ln(1.0 - pc)) / sum(n) AS binary_crossentropy,
  sum(hits)::DOUBLE / sum(n) AS binary_accuracy,
  (2 * sum(pos * neg_below) + sum(pos * neg))::DOUBLE / (2.0 * sum(pos) * sum(neg)) AS roc_auc
FROM c
"""

# Multiclass, the comparison-count form: p_l is the label's probability,
# n_gt = sum((p_k > p_l)::INT) the classes scoring above it; accuracy is
# n_gt = 0 (the label is a maximum: argmax where no other class ties it, which
# the agreement check with the argmax-based peers confirms on this data) and
# top-k is n_gt < k (Keras counts ties as hits). Element by element, with no
# list lambdas (list_filter/list_position are about twice as slow).
_DUCKDB_MULTICLASS = """
WITH d AS (SELECT {probs}, {label_prob} AS pl FROM {src}),
e AS (SELECT pl, {total} AS s, {n_gt} AS n_gt FROM d)
SELECT
  count(*) AS rows,
  -avg(ln(least(greatest(pl::DOUBLE / s, {eps}), 1.0 - {eps}))) AS sparse_categorical_crossentropy,
  avg((n_gt = 0)::INT) AS sparse_categorical_accuracy,
  avg((n_gt < {k})::INT) AS sparse_top_5_accuracy
FROM e
"""


#: How each peer computes the multiclass metrics, shown in the report's notes.
MULTICLASS_FORM = {
    ("duckdb", "columns"): "comparison count: p_l = CASE label WHEN k THEN prob_k, "
    "n_gt = sum((prob_k > p_l)::INT), acc n_gt = 0, top-5 n_gt < 5",
    ("duckdb", "list"): "comparison count: p_l = y_pred[y_true + 1], "
    "n_gt = sum((y_pred[k] > p_l)::INT), acc n_gt = 0, top-5 n_gt < 5",
    ("polars", "columns"): "comparison count: p_l = when(label == k).then(prob_k) chain, "
    "n_gt = sum_horizontal(prob_k > p_l), acc n_gt == 0, top-5 n_gt < 5",
    ("polars", "list"): "comparison count: p_l = arr.get(label), "
    "n_gt = sum_horizontal(arr.get(k) > p_l), acc n_gt == 0, top-5 n_gt < 5",
}


def _duckdb_multiclass_terms(w: Workload) -> dict[str, str]:
    """The per-class SQL terms of ``_DUCKDB_MULTICLASS`` for the workload's layout."""
    if w.layout == "columns":
        # CASE over the ten columns; the sum stays FLOAT (the division is DOUBLE).
        probs = list(w.pred_columns)
        label_prob = (
            f"CASE {w.true} "
            + " ".join(f"WHEN {k} THEN {c}" for k, c in enumerate(probs))
            + " END"
        )
    else:
        probs = [f"{w.pred}[{k + 1}]" for k in range(N_CLASSES)]
        label_prob = f"{w.pred}[{w.true} + 1]"
    return {
        "probs": w.pred if w.layout == "list" else ", ".join(probs),
        "label_prob": label_prob,
        "total": " + ".join(probs),
        "n_gt": " + ".join(f"({p} > pl)::INT" for p in probs),
    }


def run_duckdb(w: Workload, data_dir: Path) -> PeerResult:
    """One SQL query over ``read_parquet`` / ``read_csv``."""
    import duckdb

    template = {
        "regression": _DUCKDB_REGRESSION,
        "binary": _DUCKDB_BINARY,
        "multiclass": _DUCKDB_MULTICLASS,
    }[w.kind]
    terms = _duckdb_multiclass_terms(w) if w.kind == "multiclass" else {}
    sql = template.format(
        src=_duckdb_source(w, data_dir), eps=f"{EPSILON!r}::DOUBLE", k=TOP_K, **terms
    )
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # no terminal rendering while timed
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    assert row is not None
    values = dict(zip(names, row, strict=True))
    rows = int(values.pop("rows"))
    notes = {"roc_auc": "GROUP BY score + running-sum window"} if w.kind == "binary" else {}
    if w.kind == "multiclass":
        notes = {"sparse_categorical_accuracy": MULTICLASS_FORM["duckdb", w.layout]}
    return PeerResult(rows, {k: None if v is None else float(v) for k, v in values.items()}, notes)


# =========================================================================== polars


def polars_regression(t: Any, p: Any) -> list[Any]:
    """The 8 regression metrics as polars aggregations of targets ``t`` and predictions ``p``."""
    import polars as pl

    e = p - t
    ae = e.abs()
    x = -2.0 * e
    softplus = x.clip(lower_bound=0.0) + (-x.abs()).exp().log1p()
    return [
        (e * e).mean().alias("mse"),
        ae.mean().alias("mae"),
        (100.0 * (ae / t.abs().clip(lower_bound=EPSILON)).mean()).alias("mape"),
        ((p.clip(lower_bound=EPSILON).log1p() - t.clip(lower_bound=EPSILON).log1p()) ** 2)
        .mean()
        .alias("msle"),
        pl.when(ae <= 1.0).then(0.5 * e * e).otherwise(ae - 0.5).mean().alias("huber"),
        (e + softplus - math.log(2.0)).mean().alias("log_cosh"),
        (e * e).mean().sqrt().alias("rmse"),
        (1.0 - (e * e).sum() / ((t - t.mean()) ** 2).sum()).alias("r2"),
    ]


def run_polars(w: Workload, data_dir: Path) -> PeerResult:
    """One lazy ``select`` over ``scan_parquet`` / ``scan_csv``."""
    import polars as pl

    path = w.paths(data_dir)[0]
    if w.fmt == "csv" and w.layout == "columns":
        types = {w.true: pl.Int64, **{c: pl.Float32 for c in w.pred_columns}}
        lf = pl.scan_csv(path, schema_overrides=types)
    elif w.fmt == "csv":
        lf = pl.scan_csv(path, schema_overrides={"y_true": pl.Float64, "y_pred": pl.Float64})
    elif w.fmt == "parquet":
        lf = pl.scan_parquet(path)
    else:
        raise NotApplicable("Polars has no NPY reader")
    t, p = pl.col(w.true), pl.col(w.pred)
    notes: dict[str, str] = {}

    if w.kind == "regression":
        exprs = polars_regression(t, p)
    elif w.kind == "binary":
        pc = p.clip(EPSILON, 1.0 - EPSILON)
        n_pos = t.sum().cast(pl.Float64)
        n_neg = pl.len().cast(pl.Float64) - n_pos
        rank_sum = p.rank("average").filter(t == 1).sum()
        exprs = [
            (-(t * pc.log() + (1 - t) * (1.0 - pc).log()).mean()).alias("binary_crossentropy"),
            ((p > 0.5).cast(pl.Int64) == t).mean().alias("binary_accuracy"),
            # Mann-Whitney U with average ranks == sklearn's roc_auc_score incl. ties
            ((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)).alias("roc_auc"),
        ]
        notes["roc_auc"] = "Mann-Whitney U over average ranks"
    else:
        # The comparison-count form (see _DUCKDB_MULTICLASS), the label's probability
        # computed once as a column: a when/then chain over the class columns (faster
        # than concat_list(...).list.get), or arr.get on the list column.
        if w.layout == "columns":
            probs = [pl.col(c) for c in w.pred_columns]
            chain = pl.when(t == 0).then(probs[0])
            for k in range(1, len(probs)):
                chain = chain.when(t == k).then(probs[k])
            lf = lf.with_columns(chain.alias("_p_label"))
            total = pl.sum_horizontal(probs)
        else:
            pred_type = lf.collect_schema()[w.pred]
            assert isinstance(pred_type, pl.Array), pred_type
            probs = [p.arr.get(i) for i in range(pred_type.size)]
            lf = lf.with_columns(p.arr.get(t).alias("_p_label"))
            total = p.arr.sum()
        p_label = pl.col("_p_label")
        n_greater = pl.sum_horizontal([(q > p_label).cast(pl.UInt8) for q in probs])
        exprs = [
            (-((p_label.cast(pl.Float64) / total).clip(EPSILON, 1.0 - EPSILON).log()).mean())
            .alias("sparse_categorical_crossentropy"),
            (n_greater == 0).mean().alias("sparse_categorical_accuracy"),
            (n_greater < TOP_K).mean().alias("sparse_top_5_accuracy"),
        ]
    if w.kind == "multiclass":
        notes["sparse_categorical_accuracy"] = MULTICLASS_FORM["polars", w.layout]
    df = lf.select(pl.len().alias("rows"), *exprs).collect()
    values = df.row(0, named=True)
    rows = int(values.pop("rows"))
    return PeerResult(rows, {k: None if v is None else float(v) for k, v in values.items()}, notes)


# =========================================================================== torchmetrics


def run_torchmetrics(w: Workload, data_dir: Path) -> PeerResult:
    """pyarrow into NumPy, then ``torchmetrics.functional`` / ``torch`` on float64 tensors.

    Optional peer: exits with ``EXIT_UNAVAILABLE`` when torch is not installed.
    """
    import torch
    import torchmetrics.functional as tmf
    from torchmetrics.functional import classification as tmc

    y_true, y_pred = load_arrow_columns(w, data_dir)
    t, p = torch.from_numpy(y_true), torch.from_numpy(y_pred)
    notes: dict[str, str] = {}
    if w.kind == "regression":
        e = p - t
        mse = tmf.mean_squared_error(p, t)
        metrics: dict[str, Any] = {
            "mse": mse,
            "mae": tmf.mean_absolute_error(p, t),
            "mape": 100.0 * tmf.mean_absolute_percentage_error(p, t),
            "msle": tmf.mean_squared_log_error(p.clamp(min=EPSILON), t.clamp(min=EPSILON)),
            "huber": torch.nn.functional.huber_loss(p, t, delta=1.0),
            "log_cosh": torch.mean(e + torch.nn.functional.softplus(-2.0 * e) - math.log(2.0)),
            "rmse": torch.sqrt(mse),
            "r2": tmf.r2_score(p, t),
        }
        notes["mape"] = "torchmetrics clips |y_true| at 1.17e-6 (same here: y_true > 1.17e-6)"
    elif w.kind == "binary":
        pc = p.clamp(EPSILON, 1.0 - EPSILON)
        metrics = {
            "binary_crossentropy": torch.nn.functional.binary_cross_entropy(pc, t.to(pc.dtype)),
            "binary_accuracy": tmc.binary_accuracy(p, t, threshold=0.5),
            "roc_auc": tmc.binary_auroc(p, t),
        }
    else:
        p_norm = (p / p.sum(dim=1, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
        n_classes = p.shape[1]
        metrics = {
            "sparse_categorical_crossentropy": torch.nn.functional.nll_loss(torch.log(p_norm), t),
            "sparse_categorical_accuracy": tmc.multiclass_accuracy(
                p, t, num_classes=n_classes, average="micro"
            ),
            "sparse_top_5_accuracy": tmc.multiclass_accuracy(
                p, t, num_classes=n_classes, average="micro", top_k=TOP_K
            ),
        }
        notes["sparse_top_5_accuracy"] = "torchmetrics breaks score ties, Keras counts them as hits"
    return PeerResult(len(y_true), {k: float(v) for k, v in metrics.items()}, notes)


# =========================================================================== CLI

RUNNERS: dict[str, Callable[[Workload, Path], PeerResult]] = {
    "floor": run_floor,
    "numpy": run_numpy,
    "sklearn": run_sklearn,
    "duckdb": run_duckdb,
    "polars": run_polars,
    "torchmetrics": run_torchmetrics,
}


def main(argv: list[str]) -> int:
    """Run one peer on one workload and print its JSON; return the exit status."""
    if len(argv) != 3 or argv[0] not in RUNNERS or argv[1] not in WORKLOADS:
        print(__doc__, file=sys.stderr)
        print(f"tools: {sorted(RUNNERS)}; workloads: {sorted(WORKLOADS)}", file=sys.stderr)
        return 2
    tool, workload_name, data_dir = argv[0], argv[1], Path(argv[2])
    workload = WORKLOADS[workload_name]
    try:
        result = RUNNERS[tool](workload, data_dir)
    except ImportError as exc:
        print(f"not installed ({exc})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except NotApplicable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_NOT_APPLICABLE
    print(result.to_json(tool, workload_name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

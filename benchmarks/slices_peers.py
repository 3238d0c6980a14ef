#!/usr/bin/env python3
"""What users write today instead of ``--by`` and ``--ci``: one fresh process per run.

Usage::

    python benchmarks/slices_peers.py duckdb-by FILE KEY [--dump PATH]
    python benchmarks/slices_peers.py polars-by FILE KEY [--dump PATH]
    python benchmarks/slices_peers.py numpy-bootstrap FILE B [--seed S] [--level L]

``duckdb-by`` and ``polars-by`` compute the 8 regression metrics of the
regression benchmark (``common.REGRESSION_METRICS``, Keras 3 semantics) per
group of ``KEY`` and overall, with DuckDB ``GROUP BY`` (the regression query of
``peers.py``, grouped) and polars ``group_by``; the result is materialised
(fetched into NumPy arrays, collected into a DataFrame). ``--dump PATH`` also
writes every group's numbers as JSON for the agreement check (not in timed
runs). ``numpy-bootstrap`` is the usual hand-written bootstrap: ``B`` times
``idx = rng.integers(0, n, n)`` and the 8 metrics (``peers.np_regression``) on
the resample, then percentile intervals; it prints its load and loop seconds so
that a run at small ``B`` can be scaled linearly.

Every mode prints one JSON line on standard output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EPSILON, REGRESSION_METRICS, WORKLOADS
from peers import (
    _DUCKDB_REGRESSION,
    _sql_str,
    load_arrow_columns,
    np_regression,
    polars_regression,
)

REGRESSION = WORKLOADS["regression_parquet"]


def _grouped_sql(path: Path, key: str) -> str:
    """``peers.py``'s regression query with the group key carried through and grouped on."""
    sql = _DUCKDB_REGRESSION.format(src=f"read_parquet({_sql_str(path)})", eps=f"{EPSILON!r}::DOUBLE")
    head, select = "SELECT y_true AS t,", "SELECT\n  count(*) AS rows,"
    if head not in sql or select not in sql:
        raise SystemExit("peers.py's regression query changed shape: update _grouped_sql")
    sql = sql.replace(head, f'SELECT "{key}" AS g, y_true AS t,', 1)
    sql = sql.replace(select, "SELECT\n  g,\n  count(*) AS rows,", 1)
    return sql.rstrip() + "\nGROUP BY g\n"


def duckdb_by(path: Path, key: str) -> dict[str, dict[str, float]]:
    """Per-group metrics with one DuckDB ``GROUP BY`` query, fetched as NumPy arrays."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    cols = con.execute(_grouped_sql(path, key)).fetchnumpy()
    return _by_group(cols)


def polars_by(path: Path, key: str) -> dict[str, dict[str, float]]:
    """Per-group metrics with one lazy polars ``group_by().agg()``, collected."""
    import polars as pl

    exprs = [pl.len().alias("rows"), *polars_regression(pl.col("y_true"), pl.col("y_pred"))]
    df = pl.scan_parquet(path).group_by(pl.col(key).alias("g")).agg(exprs).collect()
    return _by_group({name: df[name].to_numpy() for name in df.columns})


def _by_group(cols: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{group key as text: {metric: value}}`` from result columns ``g``, ``rows`` and the metrics."""
    keys = [str(k) for k in cols["g"].tolist()]
    out: dict[str, dict[str, float]] = {k: {"rows": 0.0} for k in keys}
    for name in ("rows", *REGRESSION_METRICS):
        for key, value in zip(keys, cols[name].tolist(), strict=True):
            out[key][name] = math.nan if value is None else float(value)
    return out


def numpy_bootstrap(path: Path, replicates: int, seed: int, level: float) -> dict[str, Any]:
    """``replicates`` resamples of row indices, the 8 metrics on each, percentile intervals."""
    import numpy as np

    started = time.perf_counter()
    t, p = load_arrow_columns(replace(REGRESSION, files=(path.name,)), path.parent)
    loaded = time.perf_counter()
    n = t.shape[0]
    rng = np.random.default_rng(seed)
    values = np.empty((replicates, len(REGRESSION_METRICS)))
    for b in range(replicates):
        idx = rng.integers(0, n, n)
        m = np_regression(t[idx], p[idx])
        values[b] = [m[k] for k in REGRESSION_METRICS]
    looped = time.perf_counter()
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha], axis=0)
    se = values.std(axis=0, ddof=1) if replicates > 1 else np.full(len(REGRESSION_METRICS), np.nan)
    point = np_regression(t, p)
    return {
        "rows": int(n),
        "replicates": replicates,
        "load_s": loaded - started,
        "loop_s": looped - loaded,
        "metrics": {
            k: {"value": point[k], "low": float(low[i]), "high": float(high[i]), "se": float(se[i])}
            for i, k in enumerate(REGRESSION_METRICS)
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("duckdb-by", "polars-by", "numpy-bootstrap"))
    ap.add_argument("file", type=Path)
    ap.add_argument("arg", help="the --by column, or the replicates of numpy-bootstrap")
    ap.add_argument("--dump", type=Path, help="write every group's numbers here (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--level", type=float, default=0.95)
    args = ap.parse_args(argv)
    if args.mode == "numpy-bootstrap":
        print(json.dumps(numpy_bootstrap(args.file, int(args.arg), args.seed, args.level)))
        return 0
    groups = (duckdb_by if args.mode == "duckdb-by" else polars_by)(args.file, args.arg)
    if args.dump:
        args.dump.write_text(json.dumps(groups))
    print(json.dumps({"rows": int(sum(g["rows"] for g in groups.values())), "groups": len(groups)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

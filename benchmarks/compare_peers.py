#!/usr/bin/env python3
"""What users write today instead of ``lossctl compare``: two models' files joined, both scored.

Usage::

    python benchmarks/compare_peers.py TOOL JOIN BASELINE CANDIDATE   # prints one JSON object

TOOL is ``duckdb`` or ``polars``; JOIN is ``position`` (row ``i`` of one file
with row ``i`` of the other: DuckDB ``POSITIONAL JOIN``, polars
``concat(how="horizontal")``) or ``key`` (an inner join on the ``id`` column
of both files). Both files hold ``id``, ``y_true`` and ``y_pred``. One pass
computes the 8 regression metrics of ``common.REGRESSION_METRICS`` (the
formulas of ``peers.py``) for both models, from the baseline's ``y_true``,
and counts the rows whose ``y_true`` differs between the files (what
``lossctl compare`` checks). The JSON printed on standard output is::

    {"tool": ..., "join": ..., "rows": N, "truth_differs": N,
     "metrics": {"baseline": {KEY: float}, "candidate": {KEY: float}}}

Like ``peers.py``, only the standard library and ``common``/``peers`` are
imported before the tool's own library, inside the timed process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EPSILON, EXIT_UNAVAILABLE, REGRESSION_METRICS
from peers import _sql_str, duckdb_regression_terms, polars_regression

ARMS = ("baseline", "candidate")
JOINS = ("position", "key")
KEY = "id"


def duckdb_sql(join: str, baseline: Path, candidate: Path) -> str:
    """One query: the two files joined, the 8 metrics of each model, the y_true differences."""
    b, c = f"read_parquet({_sql_str(baseline)}) AS b", f"read_parquet({_sql_str(candidate)}) AS c"
    source = (
        f"{b} POSITIONAL JOIN {c}" if join == "position" else f"{b} JOIN {c} ON b.{KEY} = c.{KEY}"
    )
    terms = ",\n".join(
        duckdb_regression_terms("t", f"p_{arm}", f"e_{arm}", f"_{arm}") for arm in ARMS
    )
    return f"""
WITH d AS (
  SELECT b.y_true AS t, b.y_pred AS p_baseline, c.y_pred AS p_candidate,
    b.y_pred - b.y_true AS e_baseline, c.y_pred - b.y_true AS e_candidate,
    (b.y_true IS DISTINCT FROM c.y_true)::INT AS differs
  FROM {source})
SELECT
  count(*) AS rows,
  sum(differs) AS truth_differs,
{terms}
FROM d
""".format(eps=f"{EPSILON!r}::DOUBLE")


def run_duckdb(join: str, baseline: Path, candidate: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # no terminal rendering while timed
    cur = con.execute(duckdb_sql(join, baseline, candidate))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def run_polars(join: str, baseline: Path, candidate: Path) -> dict[str, Any]:
    import polars as pl

    cols = [KEY, "y_true", "y_pred"] if join == "key" else ["y_true", "y_pred"]
    b = pl.scan_parquet(baseline).select(cols)
    c = pl.scan_parquet(candidate).select(cols).rename({"y_true": "t_c", "y_pred": "p_c"})
    lf = (
        pl.concat([b, c], how="horizontal")
        if join == "position"
        else b.join(c, on=KEY, how="inner")
    )
    t = pl.col("y_true")
    exprs = [pl.len().alias("rows"), (t != pl.col("t_c")).sum().alias("truth_differs")]
    for arm, p in zip(ARMS, (pl.col("y_pred"), pl.col("p_c")), strict=True):
        exprs += [x.name.suffix(f"_{arm}") for x in polars_regression(t, p)]
    return lf.select(exprs).collect().row(0, named=True)


RUNNERS = {"duckdb": run_duckdb, "polars": run_polars}


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in RUNNERS or argv[1] not in JOINS:
        print(__doc__, file=sys.stderr)
        return 2
    tool, join, baseline, candidate = argv[0], argv[1], Path(argv[2]), Path(argv[3])
    try:
        values = RUNNERS[tool](join, baseline, candidate)
    except ImportError as exc:
        print(f"not installed ({exc})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    metrics = {arm: {k: float(values[f"{k}_{arm}"]) for k in REGRESSION_METRICS} for arm in ARMS}
    doc = {
        "tool": tool,
        "join": join,
        "rows": int(values["rows"]),
        "truth_differs": int(values["truth_differs"]),
        "metrics": metrics,
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

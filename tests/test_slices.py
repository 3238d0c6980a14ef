"""Slices (SPEC section 7, ``--by``): per-group values against pandas and scikit-learn oracles.

Keys of every type (text, integers, booleans, dates, null), combinations of
columns, sorting, the group limit, group checks and their exit codes, every
output format, and state files of sliced runs.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.metrics import mean_squared_error, roc_auc_score

import lossctl
from lossctl.cli.main import cli

N = 600


def run(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line(result: Any, status: int, *fragments: str) -> str:
    assert result.exit_code == status, f"exit {result.exit_code}: {result.stderr}"
    lines = result.stderr.splitlines()
    assert lines and "Traceback" not in result.stderr, result.stderr
    for f in fragments:
        assert f in lines[-1], f"{f!r} not in {lines[-1]!r}"
    return lines[-1]


@pytest.fixture()
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(21)
    label = rng.integers(0, 2, N)
    label[:8] = [0, 1, 0, 1, 0, 1, 0, 1]
    score = np.clip(0.5 * label + rng.uniform(0, 0.6, N), 0, 1)
    region = rng.choice(["eu", "us", "apac"], N).astype(object)
    region[rng.random(N) < 0.1] = None
    region[:4] = ["eu", "us", "apac", None]
    return pd.DataFrame(
        {
            "y_true": label.astype(float),
            "y_pred": score,
            "weight": rng.uniform(0.5, 2.0, N),
            "region": region,
            "fold": rng.integers(0, 3, N),
            "flag": rng.random(N) < 0.5,
            "day": [dt.date(2026, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 3, N)],
        }
    )


def _parquet(frame: pd.DataFrame, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=97)
    return path


def _groups(ev: Any) -> dict[tuple[Any, ...], dict[str, float | None]]:
    out: dict[tuple[Any, ...], dict[str, float | None]] = {}
    for r in ev.results:
        if r.group is not None:
            out.setdefault(tuple(r.group.values()), {})[r.spec] = r.value
    return out


@pytest.mark.parametrize("column", ["region", "fold", "flag", "day"])
def test_each_key_type_against_pandas_and_sklearn(frame: pd.DataFrame, tmp_path: Path, column: str) -> None:
    path = _parquet(frame, tmp_path / "p.parquet")
    ev = lossctl.evaluate(str(path), loss="mse", metric="auc", weight="weight", by=column, chunk_size=50)
    got = _groups(ev)
    expected: dict[tuple[Any, ...], dict[str, float]] = {}
    for key, part in frame.groupby(column, dropna=False, sort=False):
        w = part["weight"].to_numpy()
        value = None if pd.isna(key) else key
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, dt.date):
            value = value.isoformat()
        expected[(value,)] = {
            "mse": mean_squared_error(part["y_true"], part["y_pred"], sample_weight=w),
            "auc": roc_auc_score(part["y_true"], part["y_pred"], sample_weight=w),
        }
    assert set(got) == set(expected)
    for key, values in expected.items():
        for spec, v in values.items():
            assert got[key][spec] == pytest.approx(v, rel=1e-9), (key, spec)
    keys = [k[0] for k in got]
    present = [k for k in keys if k is not None]
    assert present == sorted(present) and (None not in keys or keys[-1] is None), "sorted by key, null last"


def test_combinations_of_columns_are_the_observed_ones(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _parquet(frame, tmp_path / "p.parquet")
    ev = lossctl.evaluate(str(path), loss="mae", by=["fold", "flag"], chunk_size=64)
    got = _groups(ev)
    observed = frame.groupby(["fold", "flag"]).size()
    assert len(got) == len(observed)
    for (fold, flag), part in frame.groupby(["fold", "flag"]):
        mae = float(np.mean(np.abs(part["y_true"] - part["y_pred"])))
        assert got[(int(fold), bool(flag))]["mae"] == pytest.approx(mae, rel=1e-12)


def test_csv_keys_and_chunk_size_invariance(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    a = _groups(lossctl.evaluate(str(path), loss="mse", by="region", chunk_size=7))
    b = _groups(lossctl.evaluate(str(path), loss="mse", by="region"))
    assert a.keys() == b.keys() and (None,) in a
    for key in a:
        assert a[key]["mse"] == pytest.approx(b[key]["mse"], rel=1e-12)


def test_json_has_group_objects_and_overall_null(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _parquet(frame, tmp_path / "p.parquet")
    doc = json.loads(run("eval", path, "-l", "mse", "--by", "region", "-f", "json").stdout)
    assert doc["schema"] == 2
    assert doc["results"][0]["group"] is None
    groups = [r["group"] for r in doc["results"][1:]]
    assert groups == [{"region": "apac"}, {"region": "eu"}, {"region": "us"}, {"region": None}]
    plain = json.loads(run("eval", path, "-l", "mse", "-f", "json").stdout)
    assert "group" not in plain["results"][0]


def test_group_checks_and_exit_codes(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _parquet(frame, tmp_path / "p.parquet")
    ok = run("eval", path, "-m", "auc", "--by", "region", "--check", "auc[*] > 0.5", "--check", "auc[region=eu] > 0.5", "-f", "json")
    assert ok.exit_code == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["checks"][0]["groups"] == 4 and doc["checks"][1]["groups"] == 1
    failed = run("eval", path, "-m", "auc", "--by", "region", "--check", "auc[*] > 0.99", "-f", "json")
    assert failed.exit_code == 1
    check = json.loads(failed.stdout)["checks"][0]
    assert len(check["failing"]) == 4 and "4 of 4" in check["note"]
    missing = run("eval", path, "-m", "auc", "--by", "region", "--check", "auc[region=mars] > 0.5", "-f", "json")
    assert missing.exit_code == 1 and "no group region=mars" in json.loads(missing.stdout)["checks"][0]["note"]
    null = run("eval", path, "-m", "auc", "--by", "region", "--check", "auc[region=null] > 0.1", "-f", "json")
    assert null.exit_code == 0, null.stderr
    one_line(run("eval", path, "-m", "auc", "--check", "auc[*] > 0.5"), 2, "needs --by")
    one_line(run("eval", path, "-m", "auc", "--by", "region", "--check", "auc[eu] > 0.5"), 2, "NAME[COL=VALUE]")


def test_missing_column_and_too_many_groups_are_data_errors(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _parquet(frame, tmp_path / "p.parquet")
    one_line(run("eval", path, "-l", "mse", "--by", "regoin"), 3, "regoin", "region")
    one_line(run("eval", path, "-l", "mse", "--by", "region", "--max-groups", "3"), 3, "more than 3 groups")
    assert run("eval", path, "-l", "mse", "--by", "region", "--max-groups", "4", "-f", "json").exit_code == 0


def test_outputs_show_the_groups(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = _parquet(frame, tmp_path / "p.parquet")
    csv_text = run("eval", path, "-l", "mse", "--by", "region", "-f", "csv").stdout
    header, *rows = csv_text.strip().splitlines()
    assert header.split(",")[3] == "region" and len(rows) == 5
    md = run("eval", path, "-l", "mse", "--by", "region", "-f", "markdown").stdout
    assert "**By region**" in md and "| apac |" in md
    table = run("eval", path, "-l", "mse", "--by", "region", "-f", "table").stdout
    assert "by region" in table and "apac" in table


def test_sliced_state_files_merge_by_key(frame: pd.DataFrame, tmp_path: Path) -> None:
    # Shards whose groups first appear in different orders.
    first, second = frame.iloc[:300], frame.iloc[300:].iloc[::-1]
    states = []
    for i, part in enumerate((first, second)):
        shard = _parquet(part.reset_index(drop=True), tmp_path / f"s{i}.parquet")
        state = tmp_path / f"s{i}.lcstate"
        lossctl.evaluate(str(shard), loss="mse", metric="auc", by="region", save_state=str(state))
        states.append(str(state))
    merged = _groups(lossctl.merge(*states))
    whole = _groups(lossctl.evaluate(str(_parquet(frame, tmp_path / "all.parquet")), loss="mse", metric="auc", by="region"))
    assert merged.keys() == whole.keys()
    for key in whole:
        for spec in ("mse", "auc"):
            assert merged[key][spec] == pytest.approx(whole[key][spec], rel=1e-9)
    plain = tmp_path / "plain.lcstate"
    lossctl.evaluate(str(tmp_path / "s0.parquet"), loss="mse", metric="auc", save_state=str(plain), weight=None)
    one_line(run("merge", states[1], plain), 2, "plans differ", "by")


def test_a_group_whose_rows_are_all_dropped_is_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("y_true,y_pred,g\n1,nan,a\n2,2.5,b\n3,3,b\n")
    ev = lossctl.evaluate(str(path), loss="mse", by="g", nan="drop")
    assert [r.group for r in ev.results] == [None, {"g": "b"}]
    assert ev.results[1].value == pytest.approx(0.125)


def test_many_results_are_written_compact_as_the_same_document(monkeypatch: Any) -> None:
    import json

    import lossctl.render.json as rendering

    ev = lossctl.evaluate("sample_data/regression.csv", loss="mse,mae", by="region")
    pretty = rendering.to_json(ev)
    monkeypatch.setattr(rendering, "COMPACT_AFTER", 3)
    compact = rendering.to_json(ev)
    assert json.loads(compact) == json.loads(pretty)
    assert list(json.loads(compact)) == list(json.loads(pretty))
    assert compact.count("\n") == 1 < pretty.count("\n")

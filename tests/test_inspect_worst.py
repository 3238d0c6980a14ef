"""``lossctl inspect``, ``lossctl worst`` and ``eval --per-row``, against NumPy oracles."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

import lossctl
from lossctl.cli.main import cli
from lossctl.perrow import _top

N = 500


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def reg(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """Regression data with deliberate ties in the squared error."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 20, N).astype(float)
    p = y + rng.integers(-4, 5, N).astype(float)  # integer errors: many equal losses
    w = rng.integers(1, 4, N).astype(float)
    path = tmp_path / "reg.csv"
    path.write_text("id,y_true,y_pred,w\n" + "".join(f"{i},{a},{b},{c}\n" for i, (a, b, c) in enumerate(zip(y, p, w, strict=True))))
    return path, y, p, w


def oracle_order(values: np.ndarray, worst_first_desc: bool = True) -> np.ndarray:
    key = -values if worst_first_desc else values
    return np.lexsort((np.arange(len(values)), key))


# --- worst ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", ["1", "7", "64", "100000"])
def test_worst_matches_a_full_sort(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray], chunk: str) -> None:
    path, y, p, w = reg
    doc = ok_json(run("worst", path, "--loss", "mse", "-n", "15", "--weight", "w", "--chunk-size", chunk, "-f", "json"))
    per_row = (p - y) ** 2
    order = oracle_order(per_row)[:15]
    assert [r["row"] for r in doc["rows"]] == order.tolist()
    assert [r["rank"] for r in doc["rows"]] == list(range(1, 16))
    assert [r["value"] for r in doc["rows"]] == per_row[order].tolist()
    assert [r["y_true"] for r in doc["rows"]] == y[order].tolist()
    assert [r["y_pred"] for r in doc["rows"]] == p[order].tolist()
    assert [r["weight"] for r in doc["rows"]] == w[order].tolist()
    assert doc["loss"]["name"] == "mean_squared_error"
    assert doc["loss"]["value"] == pytest.approx(np.sum(w * per_row) / np.sum(w))


def test_worst_of_a_higher_is_better_metric_is_the_smallest(tmp_path: Path) -> None:
    y = np.array([1, 0, 1, 1, 0, 0], dtype=float)
    s = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.7])
    path = tmp_path / "bin.csv"
    path.write_text("label,score\n" + "".join(f"{a},{b}\n" for a, b in zip(y, s, strict=True)))
    doc = ok_json(run("worst", path, "-l", "binary_accuracy", "-n", "3", "-f", "json"))
    correct = ((s > 0.5) == (y == 1)).astype(float)
    assert [r["row"] for r in doc["rows"]] == oracle_order(correct, worst_first_desc=False)[:3].tolist() == [1, 2, 5]
    assert all(r["value"] == 0.0 for r in doc["rows"])


def test_worst_multiclass_rows_carry_their_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=60)
    labels = rng.integers(0, 4, 60)
    path = tmp_path / "mc.parquet"
    pq.write_table(pa.table({"label": labels, "probs": pa.FixedSizeListArray.from_arrays(probs.ravel(), 4)}), path)
    doc = ok_json(run("worst", path, "-l", "sparse_categorical_crossentropy", "-n", "4", "--chunk-size", "9", "-f", "json"))
    p = np.clip(probs / probs.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    loss = -np.log(p[np.arange(60), labels])
    order = oracle_order(loss)[:4]
    assert [r["row"] for r in doc["rows"]] == order.tolist()
    assert [r["value"] for r in doc["rows"]] == pytest.approx(loss[order].tolist(), rel=1e-12)
    assert doc["rows"][0]["y_pred"] == pytest.approx(probs[order[0]].tolist())


def test_worst_nan_drop_keeps_table_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "nan.csv"
    path.write_text("y_true,y_pred\n0,10\n0,nan\n0,1\n0,100\n")
    doc = ok_json(run("worst", path, "-l", "mae", "-n", "5", "--nan", "drop", "-f", "json"))
    assert [(r["row"], r["value"]) for r in doc["rows"]] == [(3, 100.0), (0, 10.0), (2, 1.0)]
    assert doc["input"]["rows_dropped"] == 1


def test_worst_nan_propagate_ranks_nan_first(tmp_path: Path) -> None:
    path = tmp_path / "nan.csv"
    path.write_text("y_true,y_pred\n0,10\n0,nan\n0,1\n0,100\n")
    doc = ok_json(run("worst", path, "-l", "mae", "-n", "2", "--nan", "propagate", "-f", "json"))
    assert doc["rows"][0] == {"rank": 1, "row": 1, "value": None, "note": "NaN", "y_true": 0.0, "y_pred": None}
    assert doc["rows"][1]["row"] == 3


def test_worst_csv_output(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path, y, p, _ = reg
    result = run("worst", path, "-l", "mse", "-n", "3", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    order = oracle_order((p - y) ** 2)[:3]
    assert [int(r["row"]) for r in rows] == order.tolist()
    assert [float(r["mse"]) for r in rows] == ((p - y) ** 2)[order].tolist()
    assert [float(r["y_true"]) for r in rows] == y[order].tolist()


def test_worst_table_output(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path, y, p, _ = reg
    out = run("worst", path, "-l", "mse", "-n", "2", "-f", "table").stdout
    top = int(oracle_order((p - y) ** 2)[0])
    assert f"{path} · mse (largest first)" in out  # the title is not wrapped, however long the path
    first = next(line for line in out.splitlines() if line.startswith("│ 1 "))
    assert [c.strip() for c in first.strip("│").split("│")][:2] == ["1", str(top)]


def test_worst_more_rows_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("y_true,y_pred\n1,2\n3,3\n")
    doc = ok_json(run("worst", path, "-l", "mse", "-n", "10", "-f", "json"))
    assert [r["row"] for r in doc["rows"]] == [0, 1]


@pytest.mark.parametrize("name", ["rmse", "r2", "auc", "precision", "median_absolute_error"])
def test_worst_refuses_whole_table_metrics(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray], name: str) -> None:
    path = reg[0]
    result = run("worst", path, "-l", name)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert "computed over the whole table, not per row" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-l", "mse,mae"], "one loss or metric"),
        ([], "needs --loss"),
        (["-l", "mse", "-n", "0"], "-n"),
        (["-l", "nope"], "unknown loss or metric"),
    ],
)
def test_worst_usage_errors(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray], args: list[str], fragment: str) -> None:
    result = run("worst", reg[0], *args)
    assert result.exit_code == 2, result.stderr
    assert fragment in result.stderr and len(result.stderr.splitlines()) == 1


def test_top_selection_is_deterministic_under_ties() -> None:
    rng = np.random.default_rng(0)
    key = rng.integers(0, 3, 200).astype(float)
    rows = rng.permutation(200)
    for n in (1, 5, 50, 199, 200, 300):
        got = _top(key, rows, n)
        want = np.lexsort((rows, -key))[:n]
        assert got.tolist() == want.tolist()


# --- eval --per-row --------------------------------------------------------------------


def test_per_row_parquet_streams_every_row(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    path, y, p, weights = reg
    out = tmp_path / "rows.parquet"
    result = run("eval", path, "-l", "mse,huber:delta=2", "-m", "r2", "--weight", "w", "--per-row", out, "--chunk-size", "64", "-f", "json")
    doc = ok_json(result)
    table = pq.read_table(out)
    # With --weight: the weight and each value times it (Keras's per-sample weighted losses).
    assert table.column_names == ["row", "mse", "huber:delta=2", "weight", "mse*weight", "huber:delta=2*weight"]
    assert table.column("row").to_pylist() == list(range(N))
    e = p - y
    assert table.column("weight").to_numpy().tolist() == weights.tolist()
    np.testing.assert_allclose(table.column("mse*weight").to_numpy(), weights * e**2, rtol=1e-15)
    assert table.column("mse").to_numpy().tolist() == (e**2).tolist()
    huber = np.where(np.abs(e) <= 2, 0.5 * e**2, 2 * np.abs(e) - 2.0)
    np.testing.assert_allclose(table.column("huber:delta=2").to_numpy(), huber, rtol=1e-15)
    # Written chunk by chunk: one row group per 64-row chunk, never the whole table at once.
    assert pq.ParquetFile(out).metadata.num_row_groups == -(-N // 64)
    assert any("r2" in warning and "left out" in warning for warning in doc["warnings"])
    assert "left out" in result.stderr
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".part")]


def test_per_row_csv_skips_dropped_rows(tmp_path: Path) -> None:
    path = tmp_path / "nan.csv"
    path.write_text("y_true,y_pred\n1,2\n1,nan\n1,4\n")
    out = tmp_path / "rows.csv"
    ok_json(run("eval", path, "-l", "mae", "--nan", "drop", "--per-row", out, "-f", "json"))
    table = pacsv.read_csv(out)
    assert table.column("row").to_pylist() == [0, 2]
    assert table.column("mae").to_pylist() == [1.0, 3.0]


def test_per_row_of_a_metric_that_negates(tmp_path: Path) -> None:
    path = tmp_path / "vec.csv"
    path.write_text("a0,a1,b0,b1\n1,0,1,0\n1,0,0,1\n")
    out = tmp_path / "rows.parquet"
    doc = ok_json(run("eval", path, "--true", "a0,a1", "--pred", "b0,b1", "-m", "cosine_similarity", "--per-row", out, "-f", "json"))
    # As a metric, cosine similarity is positive (Keras's metric); the per-row values agree with it.
    assert pq.read_table(out).column("cosine_similarity").to_pylist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert doc["results"][0]["value"] == pytest.approx(0.5, abs=1e-6)


def test_per_row_empty_table_still_has_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("y_true,y_pred\n")
    out = tmp_path / "rows.parquet"
    ok_json(run("eval", path, "-l", "mse", "--per-row", out, "-f", "json"))
    table = pq.read_table(out)
    assert table.column_names == ["row", "mse"] and table.num_rows == 0


def test_per_row_leaves_nothing_behind_on_error(tmp_path: Path) -> None:
    path = tmp_path / "late_error.csv"
    path.write_text("y_true,y_pred\n" + "1,2\n" * 300 + "1,-1\n")
    out = tmp_path / "rows.parquet"
    result = run("eval", path, "-l", "mse", "--weight", str(path) + ":y_pred", "--per-row", out, "--chunk-size", "10")
    assert result.exit_code == 3 and "negative weight" in result.stderr
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-m", "r2,rmse"], "has a value per row"),
        (["-l", "mse", "--per-row", "rows.txt"], ".parquet or .csv"),
        (["-l", "mse", "--per-row", "no/such/dir/rows.csv"], "cannot write"),
    ],
)
def test_per_row_usage_errors(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    if "--per-row" not in args:
        args = [*args, "--per-row", "rows.parquet"]
    result = run("eval", reg[0], *args)
    assert result.exit_code == 2, result.stderr
    assert fragment in result.stderr and result.stdout == ""
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".rows")]
    assert not (tmp_path / "rows.parquet").exists()


def test_per_row_over_the_input_is_refused(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path = reg[0]
    before = path.read_bytes()
    result = run("eval", path, "-l", "mse", "--per-row", path.with_suffix(".csv"))
    assert result.exit_code == 2 and "is an input file" in result.stderr
    assert path.read_bytes() == before


def test_per_row_from_the_api(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    path, y, p, _ = reg
    out = tmp_path / "api.parquet"
    lossctl.evaluate(str(path), loss="mae", per_row=str(out), chunk_size=33)
    assert pq.read_table(out).column("mae").to_numpy().tolist() == np.abs(p - y).tolist()


# --- inspect ---------------------------------------------------------------------------------


def test_inspect_csv(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path, _, p, _ = reg
    doc = ok_json(run("inspect", path, "--chunk-size", "50", "-f", "json"))
    (table,) = doc["tables"]
    assert [c["name"] for c in table["columns"]] == ["id", "y_true", "y_pred", "w"]
    assert table["format"] == "csv"
    assert doc["rows"] == N
    assert doc["columns"]["y_true"]["columns"] == ["y_true"] and doc["columns"]["y_true"]["picked"]
    assert doc["columns"]["y_pred"]["columns"] == ["y_pred"]
    assert doc["task"] == "regression"
    assert "mean_squared_error" in doc["eval_defaults"]
    assert doc["values"]["y_pred"] == {"rows_not_finite": 0, "min": float(p.min()), "max": float(p.max())}
    assert doc["problem"] is None


def test_inspect_multiclass_parquet(tmp_path: Path) -> None:
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    path = tmp_path / "mc.parquet"
    pq.write_table(pa.table({"label": [1, 0, 1], "prob": pa.FixedSizeListArray.from_arrays(probs.ravel(), 2)}), path)
    doc = ok_json(run("inspect", path, "-f", "json"))
    assert doc["tables"][0]["rows"] == 3 and doc["rows"] == 3
    assert doc["columns"]["y_pred"]["width"] == 2
    assert doc["task"] == "multiclass"


def test_inspect_true_and_pred_files(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", np.array([0, 1, 1, 0]))
    np.save(tmp_path / "scores.npy", np.array([0.1, 0.9, np.nan, 0.3]))
    doc = ok_json(run("inspect", "--true", tmp_path / "labels.npy", "--pred", tmp_path / "scores.npy", "-f", "json"))
    assert len(doc["tables"]) == 2 and doc["rows"] == 4
    assert doc["task"] == "binary"
    assert doc["values"]["y_pred"]["rows_not_finite"] == 1


def test_inspect_reports_what_would_stop_eval(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("label,target,y_pred\n1,1,0.5\n")
    result = run("inspect", path, "-f", "json")
    assert result.exit_code == 2  # what eval would exit with
    doc = json.loads(result.stdout)  # the schema is still shown: it is what one needs to fix it
    assert [c["name"] for c in doc["tables"][0]["columns"]] == ["label", "target", "y_pred"]
    assert doc["columns"] is None and "'label' and 'target'" in doc["problem"]
    assert result.stderr.splitlines() == [f"lossctl: {doc['problem']}"]


def test_inspect_reports_bad_data(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    path.write_text("y_true,y_pred\n1,2\n3,abc\n")
    result = run("inspect", path, "-f", "json")
    assert result.exit_code == 3
    assert "row 1" in json.loads(result.stdout)["problem"]


def test_inspect_unreadable_file(tmp_path: Path) -> None:
    result = run("inspect", tmp_path / "nope.parquet")
    assert result.exit_code == 3 and result.stdout == "" and "no such file" in result.stderr


def test_inspect_table_output(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    out = run("inspect", reg[0], "-f", "table").stdout
    assert "eval would read" in out and "task: regression" in out and f"rows: {N}" in out


def test_worst_shows_the_weighted_value(reg: tuple[Path, np.ndarray, np.ndarray, np.ndarray]) -> None:
    path, y, p, w = reg
    doc = ok_json(run("worst", path, "--loss", "mse", "--weight", "w", "-n", "5", "-f", "json"))
    for row in doc["rows"]:
        i = row["row"]
        assert row["weight"] == w[i] and row["weighted_value"] == pytest.approx(w[i] * (p[i] - y[i]) ** 2, rel=1e-15)

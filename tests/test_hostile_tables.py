"""Tables that disagree with themselves, and numbers at the edge of float64 (SPEC sections 2, 4 and 10).

Never a silent wrong number: list columns whose width changes across files
or row groups, a column that is a list in one file and a number in another,
weights so small or large that their sums and products leave float64. Each
is exit 3 with one line naming the file, the column and the row, whatever the
chunk size; a dataset with more files than the process may open reads.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lossctl.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

THREE = pa.table({"y_true": [0, 1, 2, 0], "y_pred": pa.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])})
TWO = pa.table({"y_true": [0, 1, 1, 0], "y_pred": pa.array([[0.7, 0.3], [0.1, 0.9], [0.4, 0.6], [0.6, 0.4]])})
SCALAR = pa.table({"y_true": [0, 1, 1, 0], "y_pred": [0.3, 0.9, 0.6, 0.4]})


def _fixed(table: pa.Table) -> pa.Table:
    column = table.column("y_pred").combine_chunks()
    width = len(column[0])
    return table.set_column(1, "y_pred", pa.FixedSizeListArray.from_arrays(column.flatten(), width))


def _eval(*args: str, loss: str = "scce") -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", *args, "-l", loss, "-f", "json", "--no-config"])
    return result.exit_code, result.stderr


def _layouts(tmp_path: Path, first: pa.Table, second: pa.Table) -> dict[str, list[str]]:
    (tmp_path / "shards").mkdir()
    pq.write_table(first, tmp_path / "shards" / "part-0.parquet")
    pq.write_table(second, tmp_path / "shards" / "part-1.parquet")
    if first.schema == second.schema:
        with pq.ParquetWriter(tmp_path / "groups.parquet", first.schema) as writer:
            writer.write_table(first)
            writer.write_table(second)
    files = [str(tmp_path / "shards" / "part-0.parquet"), str(tmp_path / "shards" / "part-1.parquet")]
    layouts = {"directory": [str(tmp_path / "shards")], "glob": [str(tmp_path / "shards" / "*.parquet")], "two files": files}
    if (tmp_path / "groups.parquet").exists():
        layouts["row groups"] = [str(tmp_path / "groups.parquet")]
    return layouts


@pytest.mark.parametrize(
    ("first", "second", "shown"),
    [
        (THREE, TWO, ("2 values", "3")),
        (_fixed(THREE), _fixed(TWO), ("2 values per row", "3 values per row")),
        (THREE, SCALAR, ("1 value per row", "3 values per row")),
        (SCALAR, THREE, ("3 values per row", "1 value per row")),
    ],
    ids=["list widths", "fixed-size list widths", "list then number", "number then list"],
)
@pytest.mark.parametrize("chunk", ["1", "2", "3", "4", "5", "65536"])
def test_widths_that_change_are_a_data_error_at_every_chunk_size(
    tmp_path: Path, first: pa.Table, second: pa.Table, shown: tuple[str, str], chunk: str
) -> None:
    for layout, paths in _layouts(tmp_path, first, second).items():
        loss = "mse" if first is SCALAR else "scce"  # a loss the first file's shape suits
        status, stderr = _eval(*paths, "--true", "y_true", "--pred", "y_pred", "--chunk-size", chunk, loss=loss)
        assert status == 3, (layout, stderr)
        (line,) = stderr.splitlines()
        assert "part-1.parquet" in line or layout == "row groups", (layout, line)
        assert " row 4: " in line or " row 0: " in line and layout == "two files", (layout, line)
        assert "column 'y_pred' has " + shown[0] in line and shown[1] in line, (layout, line)


def test_npy_files_of_different_widths_are_a_data_error(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.full((3, 3), 1 / 3))
    np.save(tmp_path / "b.npy", np.full((3, 2), 0.5))
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "-l", "mse", "--no-config"])
    assert result.exit_code == 3, result.stderr


def test_more_parquet_files_than_open_file_handles(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(200):
        pq.write_table(pa.table({"y_true": [float(i), 1.0], "y_pred": [i + 0.5, 1.0]}), folder / f"part-{i}.parquet")

    def few_handles() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    done = subprocess.run(
        [sys.executable, "-m", "lossctl", "eval", str(folder), "-l", "mse", "-f", "json", "--no-config"],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=60, check=False, preexec_fn=few_handles,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["input"]["rows"] == 400
    assert doc["results"][0]["value"] == pytest.approx(0.125)


@pytest.mark.parametrize("weight", ["1e-300", "5e-324", "1e308", "1.7976931348623157e308", "1e-101", "1e101"])
@pytest.mark.parametrize("metric", ["auc", "mcc", "acc", "mse", "r2"])
def test_weights_beyond_float64_s_comfort_are_a_data_error(tmp_path: Path, weight: str, metric: str) -> None:
    path = tmp_path / "w.csv"
    path.write_text(f"y_true,y_pred,w\n0,0.2,1\n1,0.7,1\n1,0.4,{weight}\n0,0.5,1\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "--weight", "w", "-m", metric, "-f", "json", "--no-config"])
    assert result.exit_code == 3, result.stderr
    assert result.stderr == (
        f"lossctl: {path} row 2: column 'w': weight {float(weight):g} is outside 1e-100..1e+100; "
        "weights only count relative to each other: scale them (e.g. divide by the largest)\n"
    )


def test_weights_within_the_range_give_scikit_learn_s_numbers(tmp_path: Path) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y, p = [0, 1, 1, 0, 1], [0.2, 0.7, 0.4, 0.5, 0.9]
    w = [1e-100, 0.0, 1e100, 3e-99, 2e99]
    path = tmp_path / "w.csv"
    path.write_text("y_true,y_pred,w\n" + "".join(f"{a},{b},{c!r}\n" for a, b, c in zip(y, p, w, strict=True)))
    result = CliRunner().invoke(cli, ["eval", str(path), "--weight", "w", "-m", "auc,acc,r2", "-l", "mse", "-f", "json", "--no-config"])
    assert result.exit_code == 0, result.stderr
    got = {r["name"]: r["value"] for r in json.loads(result.stdout)["results"]}
    decided = [int(v > 0.5) for v in p]
    assert got["auc"] == pytest.approx(metrics.roc_auc_score(y, p, sample_weight=w), rel=1e-9)
    assert got["binary_accuracy"] == pytest.approx(metrics.accuracy_score(y, decided, sample_weight=w), rel=1e-9)
    assert got["r2_score"] == pytest.approx(metrics.r2_score(y, p, sample_weight=w), rel=1e-9)
    assert got["mean_squared_error"] == pytest.approx(metrics.mean_squared_error(y, p, sample_weight=w), rel=1e-9)

"""``--engine dask`` (SPEC section 7) on real clusters started here on 127.0.0.1 and stopped at the end.

- a ``distributed.LocalCluster`` of two worker processes, reached with
  ``--scheduler``; one run starts its own (no ``--scheduler``);
- a ``dask scheduler`` and two ``dask worker`` processes (other processes
  with their own imports: the plugins must travel), which also read
  ``s3://`` paths from an S3-compatible server (moto) on loopback.

The oracle is the local engine on the same files: every registry entry's
value to 1e-9 on a sharded dataset (files of several row groups each),
the same error messages with global rows, the same groups.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

from servers import dask_processes, s3_server, upload  # noqa: E402
from test_properties import ENTRIES, _spec_text, make_inputs  # noqa: E402

from lossctl.cli.main import cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = 4
ROWS = 90  # per file; row groups of 40: each file is three pieces of work
RTOL = 1e-9


def _column(a: np.ndarray) -> pa.Array:
    if a.ndim == 1:
        return pa.array(a)
    return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1])


def write_shards(folder: Path, yt: np.ndarray, yp: np.ndarray, extra: dict[str, Any] | None = None) -> Path:
    """The rows as FILES Parquet files of unequal sizes, several row groups each."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(yt)
    w = np.random.default_rng(3).uniform(0.5, 2.0, n)
    cuts = [0, n // 7, n // 2, (3 * n) // 4, n]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        columns = {"y_true": _column(yt[a:b]), "y_pred": _column(yp[a:b]), "weight": pa.array(w[a:b])}
        for name, values in (extra or {}).items():
            columns[name] = pa.array(values[a:b])
        pq.write_table(pa.table(columns), folder / f"part-{i}.parquet", row_group_size=40)
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local cluster of two worker processes on loopback; its scheduler's address."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
        silence_logs=40,
    ) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    pytest.importorskip("moto")
    with s3_server() as env:
        yield env


@pytest.fixture(scope="module")
def processes(s3_env: dict[str, str]) -> Iterator[str]:
    """``dask scheduler`` + two ``dask worker`` processes, with the S3 server's credentials."""
    with dask_processes(s3_env) as address:
        yield address


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["eval", *args])
    return result.exit_code, result.stdout, result.stderr


def results(out: str) -> list[tuple[Any, ...]]:
    return [(r["spec"], json.dumps(r.get("group")), r["value"], r["rows"]) for r in json.loads(out)["results"]]


def assert_same_results(a: str, b: str) -> None:
    ra, rb = results(a), results(b)
    assert [r[:2] + r[3:] for r in ra] == [r[:2] + r[3:] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        if x[2] is None or y[2] is None or isinstance(x[2], dict | list):
            assert x[2] == y[2], (x, y)
        else:
            assert math.isclose(x[2], y[2], rel_tol=RTOL, abs_tol=1e-12), (x, y)


def both(*args: str, scheduler: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    return invoke(*args), invoke(*args, "--engine", "dask", "--scheduler", scheduler)


def _input_kind(entry: Any) -> tuple[str, str]:
    # Entries that take the same input (make_inputs decides it by task and shapes) share one run.
    return entry.task.split("|")[0], entry.shapes


KINDS: dict[tuple[str, str], list[Any]] = {}
for _entry in ENTRIES:
    KINDS.setdefault(_input_kind(_entry), []).append(_entry)


@pytest.mark.parametrize("kind", list(KINDS), ids=["-".join(map(str, k)) for k in KINDS])
def test_every_entry_equals_the_local_engine(kind: tuple[str, str], cluster: str, tmp_path: Path) -> None:
    entries = KINDS[kind]
    yt, yp = make_inputs(entries[0], FILES * ROWS, seed=21)
    folder = write_shards(tmp_path / "ds", yt, yp)
    args = [str(folder), "--weight", "weight", "-f", "json", "--chunk-size", "25"]
    for entry in entries:
        args += ["--loss" if entry.kind == "loss" else "--metric", _spec_text(entry)]
    local, dask = both(*args, scheduler=cluster)
    assert local[0] == 0, local[2]
    assert dask[0] == 0, dask[2]
    assert_same_results(dask[1], local[1])
    assert len(results(dask[1])) == len(entries)
    assert json.loads(dask[1])["input"]["rows"] == FILES * ROWS


def test_a_nan_in_a_later_file_names_its_global_row(cluster: str, tmp_path: Path) -> None:
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=2)
    yp[300] = np.nan
    yt[330] = np.inf
    folder = write_shards(tmp_path / "ds", yt, yp)
    local, dask = both(str(folder), "-l", "mse", scheduler=cluster)
    assert local[0] == dask[0] == 3
    assert "row 300: column 'y_pred' is NaN, infinite or empty (2 rows in all)" in dask[2]
    assert dask[2] == local[2]


def test_a_data_error_in_a_later_file_is_the_local_message(cluster: str, tmp_path: Path) -> None:
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=2)
    folder = write_shards(tmp_path / "ds", yt, yp)
    table = pq.read_table(folder / "part-3.parquet")
    weight = table.column("weight").to_numpy().copy()
    weight[5] = -1.0
    pq.write_table(table.set_column(2, "weight", pa.array(weight)), folder / "part-3.parquet", row_group_size=40)
    local, dask = both(str(folder), "-l", "mse", "--weight", "weight", scheduler=cluster)
    assert local[0] == dask[0] == 3
    assert "row 275: column 'weight': negative weight -1" in dask[2]
    assert dask[2] == local[2]


def test_by_groups_equal_the_local_engine_and_save_state_merges(cluster: str, tmp_path: Path) -> None:
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=4)
    rng = np.random.default_rng(4)
    # Group keys first met in different files: every task numbers its slots its own way.
    region = np.array(["north", "south", "east", "west"])[np.minimum(np.arange(FILES * ROWS) // 70, 3)]
    rng.shuffle(region[100:])
    folder = write_shards(tmp_path / "ds", yt, yp, {"region": region, "tier": rng.integers(0, 3, FILES * ROWS)})
    state = str(tmp_path / "run.lcstate")
    args = [str(folder), "-l", "mse,mae", "-m", "r2,median_absolute_error", "--by", "region", "--by", "tier", "-f", "json"]
    local = invoke(*args)
    dask = invoke(*args, "--engine", "dask", "--scheduler", cluster, "--save-state", state)
    assert local[0] == dask[0] == 0, dask[2]
    assert_same_results(dask[1], local[1])
    assert len(results(dask[1])) > 4 * 4
    merged = CliRunner().invoke(cli, ["merge", state, "-f", "json"])
    assert merged.exit_code == 0, merged.stderr
    assert_same_results(merged.stdout, local[1])


def test_max_groups_counts_the_groups_of_every_task(cluster: str, tmp_path: Path) -> None:
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=4)
    folder = write_shards(tmp_path / "ds", yt, yp, {"key": np.arange(FILES * ROWS) // 10})
    local, dask = both(str(folder), "-l", "mse", "--by", "key", "--max-groups", "30", scheduler=cluster)
    assert local[0] == dask[0] == 3
    assert "more than 30 groups" in dask[2]


def test_plugins_and_s3_reach_separate_worker_processes(processes: str, s3_env: dict[str, str],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=8)
    folder = write_shards(tmp_path / "ds", yt, yp)
    for path in sorted(folder.iterdir()):
        upload(s3_env, path, f"dask/{path.name}")
    plugin = "examples/plugins/huber.py"
    args = ["--plugin", plugin, "-l", "huber_loss_with_threshold:t=2,mse", "-m", "r2",
            "-f", "json"]
    local = invoke(str(folder), *args)
    remote_local_engine = invoke("s3://lossctl-tests/dask/", *args)
    remote_dask = invoke("s3://lossctl-tests/dask/", *args, "--engine", "dask", "--scheduler", processes)
    assert local[0] == remote_local_engine[0] == remote_dask[0] == 0, remote_dask[2]
    assert_same_results(remote_local_engine[1], local[1])
    assert_same_results(remote_dask[1], local[1])


def test_without_a_scheduler_a_local_cluster_is_started_and_closed(tmp_path: Path) -> None:
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=9)
    folder = write_shards(tmp_path / "ds", yt, yp)
    local = invoke(str(folder), "-l", "mse", "-f", "json")
    dask = invoke(str(folder), "-l", "mse", "-f", "json", "--engine", "dask")
    assert dask[0] == 0, dask[2]
    assert_same_results(dask[1], local[1])


def test_without_dask_the_engine_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    code, _, err = invoke("sample_data/regression.parquet", "-l", "mse", "--engine", "dask")
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'lossctl[dask]'" in err


def test_an_unreachable_scheduler_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from servers import free_port

    from lossctl import dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_SECONDS", 1)
    address = f"tcp://127.0.0.1:{free_port()}"
    code, _, err = invoke("sample_data/regression.parquet", "-l", "mse", "--engine", "dask", "--scheduler", address)
    assert code == 2
    assert err.count("\n") == 1 and address in err


def test_per_row_needs_the_local_engine(tmp_path: Path) -> None:
    code, _, err = invoke("sample_data/regression.parquet", "-l", "mse", "--engine", "dask",
                          "--per-row", str(tmp_path / "rows.csv"))
    assert code == 2 and "--per-row" in err


def test_standard_input_needs_the_local_engine() -> None:
    result = CliRunner().invoke(cli, ["eval", "-", "-l", "mse", "--engine", "dask"], input="y_true,y_pred\n1,2\n")
    assert result.exit_code == 2 and "standard input" in result.stderr


def test_a_csv_is_one_task_with_the_local_numbers(cluster: str) -> None:
    local, dask = both("sample_data/regression.csv", "sample_data/regression.csv", "-l", "mse,mae", "-m", "r2",
                       "--by", "region", "--weight", "weight", "-f", "json", scheduler=cluster)
    assert local[0] == dask[0] == 0, dask[2]
    assert_same_results(dask[1], local[1])


def test_intervals_equal_the_local_engine(cluster: str, tmp_path: Path) -> None:
    # The bootstrap weights are keyed by the global row: tasks that start at
    # other rows give every row the weights one local pass gives it.
    yt, yp = make_inputs(ENTRIES[0], FILES * ROWS, seed=6)
    region = np.array(["a", "b"])[np.arange(FILES * ROWS) % 2]
    folder = write_shards(tmp_path / "ds", yt, yp, {"region": region})
    args = [str(folder), "-l", "mse", "-m", "r2,median_absolute_error", "--ci", "0.9", "--bootstrap", "50",
            "--by", "region", "-f", "json", "--traceback"]
    local = invoke(*args)
    dask = invoke(*args, "--engine", "dask", "--scheduler", cluster)
    assert local[0] == dask[0] == 0, dask[2]
    for a, b in zip(json.loads(local[1])["results"], json.loads(dask[1])["results"], strict=True):
        for key in ("low", "high", "se"):
            assert a["ci"][key] == pytest.approx(b["ci"][key], rel=1e-9), (a["spec"], a.get("group"), key)

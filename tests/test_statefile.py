"""State files and ``lossctl merge`` (SPEC section 7): exact merges, hostile files, refusals.

Every refusal is one line on standard error with the SPEC's exit code; no
state file is ever unpickled, whatever it holds.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lossctl
from lossctl.cli.main import cli
from lossctl.statefile import FORMAT, MAGIC

SPECS = ("mse,mae,huber:delta=2", "rmse,mape")


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line(result: Any, status: int, *fragments: str) -> str:
    assert result.exit_code == status, f"exit {result.exit_code}: {result.stderr}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture()
def shards(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Regression rows split into a CSV, a Parquet and an NPY shard, and the whole as Parquet."""
    rng = np.random.default_rng(7)
    n = 2500
    yt = rng.uniform(1, 10, n)
    yp = yt + rng.normal(0, 1, n)
    pq.write_table(pa.table({"y_true": yt, "y_pred": yp}), tmp_path / "whole.parquet")
    pacsv.write_csv(pa.table({"y_true": yt[:700], "y_pred": yp[:700]}), tmp_path / "a.csv")
    pq.write_table(pa.table({"target": yt[700:1900], "prediction": yp[700:1900]}), tmp_path / "b.parquet", row_group_size=333)
    np.save(tmp_path / "c_true.npy", yt[1900:])
    np.save(tmp_path / "c_pred.npy", yp[1900:])
    states = []
    for name, args in (
        ("a", [tmp_path / "a.csv"]),
        ("b", [tmp_path / "b.parquet"]),
        ("c", ["--true", tmp_path / "c_true.npy", "--pred", tmp_path / "c_pred.npy"]),
    ):
        path = tmp_path / f"{name}.lcstate"
        result = run("eval", *args, "-l", SPECS[0], "-m", SPECS[1], "--save-state", path, "-f", "json", "--chunk-size", "97")
        assert result.exit_code == 0, result.stderr
        states.append(path)
    return tmp_path / "whole.parquet", states


def values(doc: dict[str, Any]) -> dict[str, float]:
    return {r["spec"]: r["value"] for r in doc["results"]}


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_merge_of_shards_in_every_format_equals_one_pass(shards: tuple[Path, list[Path]], order: tuple[int, ...]) -> None:
    whole, states = shards
    one = json.loads(run("eval", whole, "-l", SPECS[0], "-m", SPECS[1], "-f", "json").stdout)
    merged = run("merge", *(states[i] for i in order), "-f", "json")
    assert merged.exit_code == 0, merged.stderr
    doc = json.loads(merged.stdout)
    assert doc["input"]["rows"] == 2500
    for spec, v in values(one).items():
        assert values(doc)[spec] == pytest.approx(v, rel=1e-12), spec


def test_merge_checks_and_outputs_like_eval(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, states = shards
    out = tmp_path / "report.json"
    failed = run("merge", *states, "--check", "mse < 0.0001", "-o", out)
    assert failed.exit_code == 1
    assert json.loads(out.read_text())["passed"] is False
    assert run("merge", *states, "--check", "mse < 100", "-f", "json").exit_code == 0
    one_line(run("merge", *states, "--check", "auc > 0.5"), 2, "auc", "not evaluated")


def test_api_merge_equals_api_evaluate(shards: tuple[Path, list[Path]]) -> None:
    whole, states = shards
    merged = lossctl.merge(*map(str, states), checks=["rmse < 5"])
    one = lossctl.evaluate(str(whole), loss=SPECS[0], metric=SPECS[1])
    assert merged.passed
    for a, b in zip(merged.results, one.results, strict=True):
        assert a.value == pytest.approx(b.value, rel=1e-12)


def test_same_rows_twice_is_a_data_error(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, states = shards
    one_line(run("merge", states[0], states[1], states[0]), 3, "twice")
    copy = tmp_path / "copy.lcstate"
    copy.write_bytes(states[1].read_bytes())
    one_line(run("merge", states[1], copy), 3, "twice")


def test_differing_plans_are_a_usage_error_saying_what_differs(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    whole, states = shards
    other = tmp_path / "other.lcstate"
    assert run("eval", whole, "-l", "huber:delta=3", "--save-state", other, "-f", "json").exit_code == 0
    one_line(run("merge", states[0], other), 2, "plans differ", "delta")
    dropped = tmp_path / "dropped.lcstate"
    assert run("eval", whole, "-l", SPECS[0], "-m", SPECS[1], "--nan", "drop", "--save-state", dropped, "-f", "json").exit_code == 0
    one_line(run("merge", states[0], dropped), 2, "plans differ", "nan")


def _parts(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    header = json.loads(data[start : start + length])
    payload = data[start + length + (-(start + length) % 8) : -32]
    return header, payload


def _forge(path: Path, header: dict[str, Any], payload: bytes) -> None:
    text = json.dumps(header).encode()
    head = MAGIC + struct.pack("<Q", len(text)) + text
    head += b"\0" * (-len(head) % 8)
    body = head + payload
    path.write_bytes(body + hashlib.sha256(body).digest())


def test_truncated_state_is_a_data_error_at_every_length(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, states = shards
    data = states[0].read_bytes()
    cut = tmp_path / "cut.lcstate"
    for length in sorted({0, 1, 7, 8, 15, 16, 100, len(data) // 2, len(data) - 33, len(data) - 1}):
        cut.write_bytes(data[:length])
        one_line(run("merge", cut), 3, "cut.lcstate")


def test_flipped_bytes_are_a_data_error(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, states = shards
    data = bytearray(states[0].read_bytes())
    bad = tmp_path / "bad.lcstate"
    rng = np.random.default_rng(3)
    for at in [*rng.integers(len(MAGIC), len(data), 25), len(data) - 1, len(data) - 40]:
        flipped = bytearray(data)
        flipped[int(at)] ^= 0x10
        bad.write_bytes(bytes(flipped))
        one_line(run("merge", bad), 3, "bad.lcstate")


def test_newer_format_is_a_usage_error_naming_the_version(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, states = shards
    header, payload = _parts(states[0])
    header["format"] = FORMAT + 1
    newer = tmp_path / "newer.lcstate"
    _forge(newer, header, payload)
    one_line(run("merge", newer), 2, f"format {FORMAT + 1}", "newer")


class _Boom:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {_Boom.marker}",))

    marker = ""


def test_a_crafted_pickle_is_never_unpickled(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    _, states = shards
    marker = tmp_path / "pwned"
    _Boom.marker = str(marker)
    bomb = pickle.dumps(_Boom())
    # A pickle as the whole file, behind the magic, and as an object-dtype array.
    raw = tmp_path / "raw.lcstate"
    raw.write_bytes(bomb)
    one_line(run("merge", raw), 3, "not a lossctl state file")
    raw.write_bytes(MAGIC + bomb)
    one_line(run("merge", raw), 3)
    header, payload = _parts(states[0])
    key = next(iter(header["states"]))
    header["states"][key]["arrays"]["rows"] = {"dtype": "|O", "shape": [1], "offset": len(payload), "nbytes": len(bomb)}
    header["payload_bytes"] = len(payload) + len(bomb)
    forged = tmp_path / "forged.lcstate"
    _forge(forged, header, payload + bomb)
    one_line(run("merge", forged), 3, "dtype")
    assert not marker.exists()


def test_save_state_is_atomic_and_never_over_an_input(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    whole, _ = shards
    target = tmp_path / "keep.lcstate"
    target.write_bytes(b"old")
    bad = tmp_path / "nan.csv"
    bad.write_text("y_true,y_pred\n1,2\n3,nan\n")
    # A data error: the old content stays and no temporary file is left.
    one_line(run("eval", bad, "-l", "mse", "--save-state", target), 3, "row 1")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")) == []
    before = whole.read_bytes()
    one_line(run("eval", whole, "-l", "mse", "--save-state", whole), 2, "input")
    assert whole.read_bytes() == before


def test_state_without_per_row_metrics_is_small_whatever_the_rows(tmp_path: Path) -> None:
    sizes = []
    for n in (1_000, 200_000):
        rng = np.random.default_rng(n)
        path = tmp_path / f"r{n}.parquet"
        pq.write_table(pa.table({"y_true": rng.uniform(size=n), "y_pred": rng.uniform(size=n)}), path)
        state = tmp_path / f"r{n}.lcstate"
        assert run("eval", path, "-l", SPECS[0], "-m", SPECS[1], "--save-state", state, "-f", "json").exit_code == 0
        sizes.append(state.stat().st_size)
    assert abs(sizes[1] - sizes[0]) < 64 and sizes[1] < 1 << 20  # only digits of counts differ


def test_a_shard_with_no_rows_merges_as_nothing(shards: tuple[Path, list[Path]], tmp_path: Path) -> None:
    whole, states = shards
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("y_true,y_pred\n")
    empty = tmp_path / "empty.lcstate"
    result = run("eval", empty_csv, "-l", SPECS[0], "-m", SPECS[1], "--save-state", empty, "-f", "json")
    assert result.exit_code == 0, result.stderr
    merged = json.loads(run("merge", empty, *states, "-f", "json").stdout)
    one = json.loads(run("eval", whole, "-l", SPECS[0], "-m", SPECS[1], "-f", "json").stdout)
    assert merged["input"]["rows"] == 2500
    for spec, v in values(one).items():
        assert values(merged)[spec] == pytest.approx(v, rel=1e-12), spec
    other = tmp_path / "other-empty.lcstate"
    assert run("eval", empty_csv, "-l", "mse", "--save-state", other, "-f", "json").exit_code == 0
    one_line(run("merge", *states, other), 2, "plans differ")


def test_rows_of_a_directory_given_again_as_a_file_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    folder = tmp_path / "dataset"
    folder.mkdir()
    for i in range(2):
        y = rng.uniform(size=50)
        pq.write_table(pa.table({"y_true": y, "y_pred": y + 0.1}), folder / f"part-{i}.parquet")
    whole, part = tmp_path / "dir.lcstate", tmp_path / "part.lcstate"
    assert run("eval", folder, "-l", "mse", "--save-state", whole, "-f", "json").exit_code == 0
    assert run("eval", folder / "part-1.parquet", "-l", "mse", "--save-state", part, "-f", "json").exit_code == 0
    one_line(run("merge", whole, part), 3, "part-1.parquet", "twice")


def test_empty_chunks_of_several_columns_are_written(tmp_path: Path) -> None:
    # A shard whose slot got no rows keeps an empty (0, D) chunk: it has no bytes to write.
    from lossctl.engine import evaluate
    from lossctl.options import request_from_keywords
    from lossctl.request import Request
    from lossctl.statefile import decode, encode

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"y_true": [1.0, 2.0, 3.0], "y_pred": [1.5, 2.0, 2.0]}), path)
    request = Request(**request_from_keywords((str(path),), {"metric": "median_absolute_error"}))
    plan, partial, _, files = evaluate(request)
    state = partial.states[plan.accumulators[0].key]
    state.append("abs_error", 0, np.zeros((0, 1)))
    header, states = decode(bytearray(encode(plan, partial, files)), "x")
    assert states[plan.accumulators[0].key].rows(0) == 3

"""Streaming readers and rechunking: how bytes become chunks must never change the numbers.

Plain CSV files are read at offsets and cut into blocks of whole records;
compressed files are streamed. Blocks whose numbers are all plain are
converted without null markers first, and again with them when a cell is
empty or ``NA``. Parquet files are memory-mapped too, and the pages of row
groups already decoded are handed back.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import lossctl.io.csv as csv_reader
import lossctl.io.parquet as parquet_reader
from lossctl.cli.main import cli
from lossctl.io.base import rechunk


def _eval(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["eval", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _value(doc: dict, name: str) -> float:
    return next(r["value"] for r in doc["results"] if r["name"] == name)


lines = st.lists(
    st.text(alphabet="0123456789.,-ab \r", min_size=0, max_size=40).map(lambda s: s.replace("\r", "")),
    min_size=0,
    max_size=60,
)


@given(header_gap=st.sampled_from(["", "\n", "\r\n\n"]), body=lines, block=st.integers(1, 64), final_newline=st.booleans())
def test_blocks_hold_every_data_line_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, header_gap: str, body: list[str], block: int, final_newline: bool
) -> None:
    text = header_gap + "a,b\n" + "\n".join(body) + ("\n" if final_newline and body else "")
    d = tmp_path_factory.mktemp("blocks")
    (d / "t.csv").write_bytes(text.encode())
    (d / "t.csv.gz").write_bytes(gzip.compress(text.encode()))
    old = csv_reader.BLOCK_SIZE
    csv_reader.BLOCK_SIZE = block
    try:
        for name in ("t.csv", "t.csv.gz"):
            header, *parts = [bytes(b) for b in csv_reader._file_records(str(d / name), b",", name)]
            # The header record (blank lines before it included), then every byte once, in order.
            assert header == (header_gap + "a,b\n").encode()
            assert header + b"".join(parts) == text.encode()
            # Every block but the last ends at a line end: no row is cut in two.
            assert all(p.endswith(b"\n") for p in parts[:-1])
    finally:
        csv_reader.BLOCK_SIZE = old


def _late_table(n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    t = rng.uniform(0.0, 5.0, n)
    return t, t + rng.normal(0.0, 1.0, n)


@pytest.mark.parametrize("marker", ["", "NA", "null", "NaN", "nan", "N/A"])
def test_missing_cells_after_the_first_block_are_missing_not_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str
) -> None:
    # The first block is typed as numbers; later blocks go the fast way (no null
    # markers) and fall back to pyarrow's markers where a cell is missing.
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1 << 10)
    t, p = _late_table()
    bad = [1800, 2950, 3999]
    rows = [f"{a!r},{b!r}" for a, b in zip(t.tolist(), p.tolist(), strict=True)]
    for i in bad:
        rows[i] = f"{float(t[i])!r},{marker}"
    path = tmp_path / "late_missing.csv"
    path.write_text("y_true,y_pred\n" + "\n".join(rows) + "\n")
    keep = np.ones(len(t), bool)
    keep[bad] = False
    doc = _eval(str(path), "-l", "mse,mae", "--nan", "drop")
    assert doc["input"]["rows_dropped"] == len(bad)
    assert _value(doc, "mean_squared_error") == pytest.approx(np.mean((p[keep] - t[keep]) ** 2), rel=1e-12)
    assert _value(doc, "mean_absolute_error") == pytest.approx(np.mean(np.abs(p[keep] - t[keep])), rel=1e-12)
    result = CliRunner().invoke(cli, ["eval", str(path), "-l", "mse"])
    assert result.exit_code == 3
    assert f"{path} row 1800: column 'y_pred' is NaN, infinite or empty (3 rows in all)" in result.stderr


def test_a_line_longer_than_a_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1 << 10)
    t, p = _late_table(500)
    notes = ["x" * (5000 if i == 250 else 3) for i in range(len(t))]
    path = tmp_path / "long_line.csv"
    path.write_text("note,y_true,y_pred\n" + "".join(f"{n},{a!r},{b!r}\n" for n, a, b in zip(notes, t.tolist(), p.tolist(), strict=True)))
    doc = _eval(str(path), "-l", "mse")
    assert doc["input"]["rows"] == len(t)
    assert _value(doc, "mean_squared_error") == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)


def test_crlf_lines_and_blank_lines_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 100)
    t, p = _late_table(700)
    body = "".join(f"{a!r},{b!r}\r\n" + ("\r\n" if i % 97 == 0 else "") for i, (a, b) in enumerate(zip(t.tolist(), p.tolist(), strict=True)))
    path = tmp_path / "crlf.csv"
    path.write_bytes(("\r\n\r\ny_true,y_pred\r\n" + body).encode())
    doc = _eval(str(path), "-l", "mse")
    assert doc["input"]["rows"] == len(t)
    assert _value(doc, "mean_squared_error") == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)


@given(sizes=st.lists(st.integers(0, 50), max_size=30), rows=st.integers(1, 40))
def test_rechunk_gives_exact_chunks_and_copies_only_straddling_rows(sizes: list[int], rows: int) -> None:
    values = np.arange(sum(sizes), dtype=np.float64)
    pieces, at = [], 0
    for n in sizes:
        pieces.append({"x": values[at : at + n].copy()})
        at += n
    chunks = list(rechunk(iter(pieces), rows))
    assert [len(c["x"]) for c in chunks[:-1]] == [rows] * (len(chunks) - 1) if chunks else True
    assert not chunks or 1 <= len(chunks[-1]["x"]) <= rows
    assert np.array_equal(np.concatenate([c["x"] for c in chunks]) if chunks else values, values)
    # A chunk lying inside one piece is a view of it, not a copy.
    starts = np.cumsum([0, *sizes])
    for k, chunk in enumerate(chunks):
        lo = k * rows
        hi = lo + len(chunk["x"])
        owner = int(np.searchsorted(starts, lo, side="right")) - 1
        if hi <= starts[owner + 1]:
            assert np.shares_memory(chunk["x"], pieces[owner]["x"])


def test_parquet_pages_are_released_behind_the_rows_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    t = rng.normal(size=10_000)
    p = t + rng.normal(size=t.size)
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"y_true": t, "y_pred": p}), path, row_group_size=999)
    meta = pq.ParquetFile(path).metadata
    chunks = [
        (c.dictionary_page_offset or c.data_page_offset, c.total_compressed_size)
        for g in (meta.row_group(i) for i in range(meta.num_row_groups))
        for c in (g.column(j) for j in range(g.num_columns))
    ]
    calls: list[tuple[int, int]] = []
    real = parquet_reader.release_range

    def spy(mapped: object, begin: int, end: int) -> None:
        calls.append((begin, end))
        real(mapped, begin, end)  # type: ignore[arg-type]

    monkeypatch.setattr(parquet_reader, "release_range", spy)
    doc = _eval(str(path), "-l", "mse", "--chunk-size", "700")
    assert _value(doc, "mean_squared_error") == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)
    size = path.stat().st_size
    # Every column chunk is released whole once its row group is read, and the whole map at the end.
    assert all((start, start + length) in calls for start, length in chunks)
    assert calls[-1] == (0, size)
    # Before that, nothing beyond the chunk being read: each range lies inside one column chunk.
    assert all(any(s <= b and e <= s + n for s, n in chunks) for b, e in calls[:-1] if e > b)


def test_a_named_pipe_is_read_once_front_to_back(tmp_path: Path) -> None:
    # `lossctl eval <(zcat preds.csv.gz) --input-format csv`: the shell passes /dev/fd/N, a pipe.
    import os
    import threading

    t, p = _late_table(2500)
    text = "y_true,y_pred\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(t.tolist(), p.tolist(), strict=True))
    fifo = tmp_path / "preds"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=(text,))
    writer.start()
    try:
        doc = _eval(str(fifo), "--input-format", "csv", "-l", "mse,mae")
    finally:
        writer.join(timeout=10)
    assert doc["input"]["rows"] == len(t)
    assert _value(doc, "mean_squared_error") == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)

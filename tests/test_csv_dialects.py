"""Every valid CSV reads, from a file exactly as from standard input, at every block size (SPEC section 2).

Dialects: ``\\n``, ``\\r\\n`` and ``\\r`` line ends, quoted fields holding
delimiters, quotes and line ends, any field quoted or not, a BOM, blank
lines, a last line with or without its line end, several delimiters. The
oracle is the numbers the file was written from (and Python's csv module
reading the same text back); the values go through NumPy.

The fuzz runs at a modest count by default; LOSSCTL_HOSTILE_EXAMPLES=5000
runs it at the issue's bar (by hand: about a quarter of an hour).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

import lossctl.io.csv as csv_reader
from lossctl.cli.main import cli

SCALE = int(os.environ.get("LOSSCTL_HOSTILE_EXAMPLES", "0")) or None

BLOCKS = [1, 2, 3, 7, 64, 1 << 22]

numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-300, 0.1, 2**53 + 1]),
)
small = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-1000, 1000))
notes = st.lists(st.sampled_from(list('ab ,;|\t"\'\r\n\\é💥1.') + ["\r\n", '""', "NA"]), max_size=8).map("".join)


def field(text: str, delimiter: str, quote: bool) -> str:
    """One field as RFC 4180 writes it: quoted when asked or when it must be."""
    if quote or any(c in text for c in (delimiter, '"', "\r", "\n")) or text != text.strip() or not text:
        return '"' + text.replace('"', '""') + '"'
    return text


def render(rows: list[list[str]], delimiter: str, newline: str, quoted: list[bool], blank: list[int], bom: bool, last: bool) -> str:
    lines = []
    for i, row in enumerate(rows):
        lines.append(delimiter.join(field(v, delimiter, q) for v, q in zip(row, quoted, strict=False)))
        lines.extend([""] * blank[i % len(blank)] if i else [])
    text = newline.join(lines) + (newline if last else "")
    return ("\ufeff" if bom else "") + text


def evaluate(path: str, delimiter: str, chunk: int, stdin: str | None = None) -> Result:
    args = ["eval", path, "--true", "y", "--pred", "p", "-l", "mse,mae", "--delimiter", delimiter, "--chunk-size", str(chunk), "-f", "json", "--no-config"]
    return CliRunner().invoke(cli, args, input=stdin.encode("utf-8") if stdin is not None else None)


def check(result: Result, y: list[float], p: list[float], where: str) -> dict:
    assert result.exit_code == 0, f"{where}: exit {result.exit_code}: {result.stderr}"
    doc = json.loads(result.stdout)
    assert doc["input"]["rows"] == len(y), where
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.array(p, dtype=np.float64) - np.array(y, dtype=np.float64)
        expected = {"mean_squared_error": float(np.mean(d * d)) if y else None, "mean_absolute_error": float(np.mean(np.abs(d))) if y else None}
    for r in doc["results"]:
        want = expected[r["name"]]
        if want is None or not math.isfinite(want):
            assert r["value"] is None and r["note"], (where, r)
        else:
            assert r["value"] is not None and math.isclose(r["value"], want, rel_tol=1e-9, abs_tol=1e-300), (where, r, want)
    return doc


@settings(max_examples=SCALE or 40)
@given(
    table=st.lists(st.tuples(numbers, numbers, notes), max_size=12),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    quoted=st.lists(st.booleans(), min_size=4, max_size=4),
    blank=st.lists(st.integers(0, 2), min_size=1, max_size=3),
    bom=st.booleans(),
    last=st.booleans(),
    block=st.sampled_from(BLOCKS),
    chunk=st.sampled_from([1, 3, 65536]),
)
def test_every_dialect_reads_from_a_file_as_from_standard_input(
    tmp_path_factory: pytest.TempPathFactory,
    table: list[tuple[float, float, str]],
    delimiter: str,
    newline: str,
    quoted: list[bool],
    blank: list[int],
    bom: bool,
    last: bool,
    block: int,
    chunk: int,
) -> None:
    y = [float(a) for a, _, _ in table]
    p = [float(b) for _, b, _ in table]
    rows = [["id", "note", "y", "p"]] + [[str(i), note, repr(a), repr(b)] for i, (a, b, note) in enumerate(zip(y, p, (n for _, _, n in table), strict=True))]
    text = render(rows, delimiter, newline, quoted, blank, bom, last)
    # The text is valid CSV: Python's csv module reads back the rows it was written from.
    back = [r for r in csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=delimiter) if r]
    assert back == rows
    path = tmp_path_factory.mktemp("dialect") / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    old = csv_reader.BLOCK_SIZE
    csv_reader.BLOCK_SIZE = block
    try:
        from_file = check(evaluate(str(path), delimiter, chunk), y, p, "file")
        from_stdin = check(evaluate("-", delimiter, chunk, stdin=text), y, p, "stdin")
    finally:
        csv_reader.BLOCK_SIZE = old
    assert [r["value"] for r in from_file["results"]] == [r["value"] for r in from_stdin["results"]]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("block", [1, 5, 11, 16, 64, 1 << 22])
@pytest.mark.parametrize("source", ["file", "stdin", "gzip"])
def test_quoted_line_ends_and_bare_carriage_returns_at_every_block_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, block: int, source: str
) -> None:
    # The cases that read wrong before: a header ended by a bare \r (the first row
    # was dropped), \r-only files (no rows), a quoted line end on a block boundary
    # (an extra row).
    y = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    p = [0.5, 1.5, 2.0, 3.25, 4.0, 7.0]
    notes = ["plain", "two\nlines", 'says "hi", then\r\nleaves', "", "\r", "a,b"]
    rows = [["y", "note", "p"]] + [[repr(a), n, repr(b)] for a, n, b in zip(y, notes, p, strict=True)]
    text = newline.join(",".join(field(v, ",", False) for v in row) for row in rows) + newline
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", block)
    if source == "stdin":
        result = evaluate("-", ",", 2, stdin=text)
    else:
        import gzip

        path = tmp_path / ("t.csv.gz" if source == "gzip" else "t.csv")
        data = text.encode()
        path.write_bytes(gzip.compress(data) if source == "gzip" else data)
        result = evaluate(str(path), ",", 2)
    check(result, y, p, source)


def test_a_pandas_csv_with_a_multi_line_text_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    n = 3000
    y = rng.integers(0, 2, n).astype(float)
    p = rng.uniform(0, 1, n)
    text = ["line one\nline two, with a comma" if i % 3 == 0 else f'he said "{i}"\r\nthen {i}' for i in range(n)]
    path = tmp_path / "pandas.csv"
    pd.DataFrame({"comment": text, "y": y, "p": p}).to_csv(path, index=False)
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1000)  # many boundaries inside quoted fields
    check(evaluate(str(path), ",", 512), y.tolist(), p.tolist(), "file")
    check(evaluate("-", ",", 512, stdin=path.read_text()), y.tolist(), p.tolist(), "stdin")


def test_standard_input_turning_from_integers_to_decimals_after_the_first_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1 << 12)
    y = [float(i % 7) for i in range(3000)]
    p = [float(i % 5) if i < 2000 else (i % 5) + 0.25 for i in range(3000)]
    text = "y,p\n" + "".join(f"{int(a)},{b:g}\n" for a, b in zip(y, p, strict=True))
    check(evaluate("-", ",", 1000, stdin=text), y, p, "stdin")


def test_a_parse_error_names_the_same_row_from_a_file_and_from_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 64)
    rows = [f'{i},"note\n{i}",{i * 0.5}' for i in range(100)]
    rows[77] = '77,"x",oops'
    text = "y,note,p\n\n" + "\n".join(rows) + "\n"
    path = tmp_path / "bad.csv"
    path.write_text(text)
    for result, label in ((evaluate(str(path), ",", 10), str(path)), (evaluate("-", ",", 10, stdin=text), "<stdin>")):
        assert result.exit_code == 3
        assert result.stderr == f"lossctl: {label} row 77: column 'p' holds non-numeric value 'oops'\n"


weights = st.one_of(
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, 1.0, 5e-324, 1e-300, 1e-101, 1e-100, 1e100, 1e101, 1e300, 1e308, 1.7976931348623157e308]),
)


@settings(max_examples=SCALE or 40)
@given(
    table=st.lists(st.tuples(numbers, numbers, weights), max_size=10),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    chunk=st.sampled_from([1, 2, 65536]),
    stdin=st.booleans(),
)
def test_extreme_values_and_weights_give_numpy_s_number_or_a_clean_error(
    tmp_path_factory: pytest.TempPathFactory, table: list[tuple[float, float, float]], newline: str, chunk: int, stdin: bool
) -> None:
    y = np.array([float(a) for a, _, _ in table])
    p = np.array([float(b) for _, b, _ in table])
    w = np.array([c for _, _, c in table])
    text = "y,p,w" + newline + "".join(f"{a!r},{b!r},{c!r}{newline}" for a, b, c in zip(y.tolist(), p.tolist(), w.tolist(), strict=True))
    path = tmp_path_factory.mktemp("extreme") / "t.csv"
    path.write_text(text, newline="")
    args = ["eval", "-" if stdin else str(path), "--true", "y", "--pred", "p", "--weight", "w", "-l", "mse,mae", "--chunk-size", str(chunk), "-f", "json", "--no-config"]
    result = CliRunner().invoke(cli, args, input=text.encode() if stdin else None)
    label = "<stdin>" if stdin else str(path)
    outside = np.flatnonzero((w != 0) & ((w < 1e-100) | (w > 1e100)))
    if outside.size:
        i = int(outside[0])
        assert result.exit_code == 3, result.stderr
        assert result.stderr.startswith(f"lossctl: {label} row {i}: column 'w': weight {w[i]:g} is outside 1e-100..1e+100")
        return
    assert result.exit_code == 0, result.stderr
    got = {r["name"]: r["value"] for r in json.loads(result.stdout)["results"]}
    with np.errstate(all="ignore"):
        d = p - y
        # Per-row values first, then weighted, as Keras does: a row whose value is
        # infinite makes the sum NaN even at weight 0 (0 * inf), for Keras too.
        oracle = {"mean_squared_error": np.sum(w * (d * d)) / np.sum(w), "mean_absolute_error": np.sum(w * np.abs(d)) / np.sum(w)}
    for name, want in oracle.items():
        value = got[name]
        if not table or not np.isfinite(want):
            assert value is None, (name, value, want)
        elif abs(want) > 1e300:  # at the edge of overflow, summation order decides: a value or null, never another number
            assert value is None or math.isclose(value, want, rel_tol=1e-9), (name, value, want)
        else:
            assert value is not None and math.isclose(value, float(want), rel_tol=1e-9, abs_tol=1e-300), (name, value, want)


@pytest.mark.parametrize("block", [16, 1 << 22])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_max_line_bytes_refuses_a_longer_record_from_a_file_as_from_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, source: str
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", block)
    note = "x" * 200
    long = f'3,4,"{note}\n{note}"\n'
    text = "y,p,note\n1,2,short\n" + long + "5,6,ok\n"
    path = tmp_path / "long.csv"
    path.write_text(text)
    where, label = (str(path), str(path)) if source == "file" else ("-", "<stdin>")
    for limit, fine in ((len(long), True), (len(long) - 1, False)):
        args = ["eval", where, "--true", "y", "--pred", "p", "-l", "mse", "--max-line-bytes", str(limit), "-f", "json", "--no-config"]
        result = CliRunner().invoke(cli, args, input=text if source == "stdin" else None)
        if fine:
            assert result.exit_code == 0, result.stderr
            assert json.loads(result.stdout)["input"]["rows"] == 3
        else:
            assert result.exit_code == 3
            assert result.stderr.startswith(f"lossctl: {label}: a line (record) is longer than {limit:,} bytes (--max-line-bytes)")

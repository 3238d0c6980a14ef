"""Random and hostile CSV files never fool lossctl.

For every generated file, lossctl either returns the right value (checked
against a NumPy oracle for mse) or exits 2/3 with one line on standard
error: never exit 70, never a traceback, never a number computed from
cells it misread. Cells are drawn from plain numbers (including huge and
tiny ones) and from hostile text: empty strings, quotes, delimiters,
newlines, NA tokens, unicode digits, control characters.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lossctl.cli.main import cli

# More examples for a long local run: LOSSCTL_HOSTILE_EXAMPLES=5000 pytest tests/test_hostile_csv.py
SCALE = int(os.environ.get("LOSSCTL_HOSTILE_EXAMPLES", "0")) or None

# What any CSV reader must read as this number; anything else must be refused or be exactly this.
STRICT = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")

HOSTILE = [
    "", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "NA", "N/A", "null", "NULL", "None", "#N/A",
    "true", "false", "1e400", "-1e400", "1e-400", "1,5", "1_000", "0x10", "١٢", "½", "²", " 1", "1 ",
    "--1", "+1", ".", "e5", "1e", '"', "''", '"1"', "1\n2", "é", "💥", "\t", "\x00", "\x1b[31m", "1;2", "=1+1",
]

numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0", "-0", "1e308", "-1e308", "1.7976931348623157e308", "5e-324", "0.1", "1e-300"]),
)
cells = st.one_of(numbers, numbers, numbers, st.sampled_from(HOSTILE), st.text(max_size=8))


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


# A column of true/false (as pandas writes booleans) is read as 1/0, like a Parquet boolean.
BOOLEAN = {"true": 1.0, "True": 1.0, "TRUE": 1.0, "false": 0.0, "False": 0.0, "FALSE": 0.0}


def lenient(cell: str) -> float | None:
    """Python's reading of a cell, or None when it is not a number at all."""
    if cell in BOOLEAN:
        return BOOLEAN[cell]
    try:
        return float(cell)
    except ValueError:
        return None


def assert_clean_failure(result: Result) -> None:
    assert result.exit_code in (2, 3), f"exit {result.exit_code}: {result.stderr}{result.output}"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossctl: "), result.stderr
    assert lines[0].isprintable(), lines[0]


def mse_oracle(y: list[float], p: list[float]) -> float | None:
    """The value lossctl must report: the mean of squared errors, or None when it is not finite."""
    if not y:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.mean((np.array(p) - np.array(y)) ** 2))
    return value if math.isfinite(value) else None


def write_csv(path: Path, rows: list[tuple[str, str, str]], quoting: int) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=quoting, lineterminator="\n")
    writer.writerow(["id", "y_true", "y_pred"])
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", errors="surrogatepass")


@settings(max_examples=SCALE or 200)
@given(
    rows=st.one_of(
        st.lists(st.tuples(st.text(max_size=5), numbers, numbers), max_size=25),
        st.lists(st.tuples(st.text(max_size=5), cells, cells), max_size=25),
    ),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    chunk=st.sampled_from(["1", "3", "65536"]),
)
def test_hostile_cells_give_the_right_value_or_a_clean_error(rows: list[tuple[str, str, str]], quoting: int, chunk: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hostile.csv"
        try:
            write_csv(path, rows, quoting)
        except UnicodeEncodeError:  # lone surrogates cannot be written as UTF-8 at all
            return
        result = run(["eval", str(path), "-l", "mse", "--true", "y_true", "--pred", "y_pred", "--chunk-size", chunk, "-f", "json"])
    assert result.exit_code != 70, result.stderr
    event(f"exit {result.exit_code}")
    ys, ps = [r[1] for r in rows], [r[2] for r in rows]
    all_strict = all(STRICT.match(c) for c in ys + ps)
    # A NUL byte anywhere (even in the id column) marks the file as binary, and a bare
    # carriage return that the csv module leaves unquoted ends the row: refusing is right.
    malformed = any("\x00" in c or ("\r" in c and quoting == csv.QUOTE_MINIMAL) for r in rows for c in r)
    all_finite = all_strict and all(math.isfinite(float(c)) for c in ys + ps) and not malformed
    if result.exit_code != 0:
        assert_clean_failure(result)
        # Well-formed finite numbers are never refused.
        assert not all_finite, f"refused a clean file: {result.stderr}"
        return
    doc = json.loads(result.stdout)
    y = [lenient(c) for c in ys]
    p = [lenient(c) for c in ps]
    # Whatever lossctl accepted, Python reads as the same finite numbers.
    assert all(v is not None and math.isfinite(v) for v in y + p), f"accepted {ys + ps!r}"
    expected = mse_oracle(y, p)  # type: ignore[arg-type]  # None excluded just above
    got = doc["results"][0]["value"]
    if expected is None:
        assert got is None and doc["results"][0]["note"], doc["results"][0]
    else:
        assert got is not None and math.isclose(got, expected, rel_tol=1e-9, abs_tol=0.0), (got, expected)
    assert doc["input"]["rows"] == len(rows)


names = st.one_of(
    st.sampled_from(["y_true", "y_pred", "label", "target", "score", "prob", "", " ", "y_true ", "Y_TRUE", "a,b", '"', "é", "💥"]),
    st.text(max_size=6),
)


@settings(max_examples=SCALE or 150)
@given(
    header=st.lists(names, min_size=1, max_size=4),
    values=st.lists(st.lists(st.integers(-5, 5), min_size=4, max_size=4), max_size=6),
)
def test_hostile_headers_pick_right_or_refuse(header: list[str], values: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "header.csv"
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([row[: len(header)] for row in values])
        try:
            path.write_text(buf.getvalue(), encoding="utf-8")
        except UnicodeEncodeError:
            return
        result = run(["eval", str(path), "-l", "mse", "-f", "json"])
        if result.exit_code != 0:
            assert_clean_failure(result)
            return
        doc = json.loads(result.stdout)
        picked = doc["input"]["columns"]
        (t,), (p,) = picked["y_true"]["columns"], picked["y_pred"]["columns"]
        # The columns lossctl says it read are the ones the value comes from.
        # newline="": a bare \r the writer left unquoted is a line end, for Python as for lossctl.
        rows = list(csv.DictReader(io.StringIO(buf.getvalue(), newline="")))
        if not rows:
            assert doc["results"][0]["value"] is None
            return
        y = [float(r[t]) for r in rows]
        q = [float(r[p]) for r in rows]
        assert math.isclose(doc["results"][0]["value"], float(np.mean((np.array(q) - np.array(y)) ** 2)), rel_tol=1e-12)


@settings(max_examples=SCALE or 100)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.lists(st.sampled_from([b"y_true,y_pred\n", b"1,2\n", b'"', b",", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\x00", b"3,4,5\n", b"x\n"]), max_size=12).map(b"".join),
    ),
    suffix=st.sampled_from([".csv", ".tsv", ".txt", ".jsonl", ".npy", ".parquet", ".arrow", ".npz", ".csv.gz"]),
)
def test_arbitrary_bytes_never_crash(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"junk{suffix}"
        path.write_bytes(data)
        result = run(["eval", str(path), "-l", "mse", "-f", "json"])
    assert result.exit_code != 70, result.stderr
    if result.exit_code == 0:
        json.loads(result.stdout)
    else:
        assert_clean_failure(result)

"""Every bad input ends in one clear line and the right exit code (SPEC section 6).

Each case asserts the exit status, the one line on standard error (naming
file, column and row where there is one), that standard output is empty
(no half document), and that no traceback leaks. Values that must still be
produced (``--nan drop``, all-zero weights) are compared with an oracle
computed here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from lossctl.cli.main import cli
from lossctl.registry import entries


def run(*args: Any, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=stdin)


def assert_fails(result: Result, status: int, *fragments: str) -> str:
    """Exit ``status``, nothing on stdout, exactly one ``lossctl:`` line on stderr containing ``fragments``."""
    assert result.exit_code == status, f"exit {result.exit_code}: {result.stderr}"
    assert result.stdout == "", f"stdout not empty: {result.stdout!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("lossctl: "), line
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def registered(*names: str) -> None:
    known = {n for e in entries() for n in e.names}
    missing = [n for n in names if n not in known]
    if missing:
        pytest.skip(f"not registered yet: {', '.join(missing)}")


# --- files that cannot be read ----------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert_fails(run("eval", path, "-l", "mse", "-f", "json"), 3, f"{path}: no such file")


def test_missing_parquet_and_npy(tmp_path: Path) -> None:
    for name in ("nope.parquet", "nope.npy", "nope.jsonl"):
        path = tmp_path / name
        assert_fails(run("eval", path, "-l", "mse"), 3, str(path), "no such file")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.csv", "y_true,y_pred\n1,2\n")
    path.chmod(0)
    try:
        assert_fails(run("eval", path, "-l", "mse"), 3, str(path), "permission denied")
    finally:
        path.chmod(0o644)


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reads: make the open fail as it would.
    import lossctl.io.csv as csv_reader
    import lossctl.io.parquet as parquet_reader

    def denied(path: str, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", path)

    path = write(tmp_path / "secret.csv", "y_true,y_pred\n1,2\n")
    monkeypatch.setattr(csv_reader, "_open_binary", denied)
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path}: permission denied")
    ppath = tmp_path / "secret.parquet"
    pq.write_table(pa.table({"y_true": [1.0], "y_pred": [2.0]}), ppath)
    monkeypatch.setattr(parquet_reader.pq, "ParquetFile", denied)
    assert_fails(run("eval", ppath, "-l", "mse"), 3, f"{ppath}: permission denied")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.csv", b"", "empty file"),
        ("blank.csv", b"\n  \n\n", "empty file"),
        ("empty.parquet", b"", "cannot read"),
        ("empty.npy", b"", "cannot read"),
        ("empty.jsonl", b"", "empty file"),
        ("empty.arrow", b"", "cannot read"),
    ],
)
def test_empty_file(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = write(tmp_path / name, content)
    assert_fails(run("eval", path, "-l", "mse", "-f", "json"), 3, str(path), fragment)


def test_header_only_csv_gives_null_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "header.csv", "y_true,y_pred\n")
    result = run("eval", path, "-l", "mse", "-m", "r2", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["value"] for r in doc["results"]] == [None, None]
    assert all(r["note"] == "no rows" for r in doc["results"])
    assert doc["input"]["rows"] == 0
    assert any("no rows" in w for w in doc["warnings"])
    assert "warning: no rows" in result.stderr
    assert doc["passed"] is True  # no checks asked


def test_header_only_csv_fails_a_check(tmp_path: Path) -> None:
    path = write(tmp_path / "header.csv", "y_true,y_pred\n")
    result = run("eval", path, "-l", "mse", "--check", "mse < 1", "-f", "json")
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] is False
    (check,) = doc["checks"]
    assert check["value"] is None and check["passed"] is False
    assert "undefined" in check["note"] and "no rows" in check["note"]
    assert "check failed: mse < 1" in result.stderr


def _parquet(path: Path, n: int = 5000, **kwargs: Any) -> Path:
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"y_true": rng.normal(size=n), "y_pred": rng.normal(size=n)}), path, **kwargs)
    return path


def test_truncated_parquet(tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet")
    bad = write(tmp_path / "cut.parquet", good.read_bytes()[: good.stat().st_size // 2])
    assert_fails(run("eval", bad, "-l", "mse"), 3, f"{bad}: cannot read")


def test_parquet_with_a_corrupt_footer(tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet")
    data = bytearray(good.read_bytes())
    data[-12:-4] = b"\xff" * 8  # footer length and metadata end
    bad = write(tmp_path / "footer.parquet", bytes(data))
    assert_fails(run("eval", bad, "-l", "mse"), 3, f"{bad}: cannot read")


def test_parquet_with_a_corrupt_page_is_caught_by_its_checksum(tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet", n=50_000, write_page_checksum=True)
    ok = run("eval", good, "-l", "mse", "-f", "json")
    assert ok.exit_code == 0, ok.stderr
    data = bytearray(good.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 32] = bytes(b ^ 0xFF for b in data[middle : middle + 32])
    bad = write(tmp_path / "flipped.parquet", bytes(data))
    assert_fails(run("eval", bad, "-l", "mse", "-f", "json"), 3, f"{bad}: cannot read")


def test_parquet_named_csv_is_binary(tmp_path: Path) -> None:
    good = _parquet(tmp_path / "good.parquet")
    bad = write(tmp_path / "actually_parquet.csv", good.read_bytes())
    assert_fails(run("eval", bad, "-l", "mse"), 3, str(bad), "not a text file", "--input-format")
    # ...and the hint works.
    ok = run("eval", bad, "-l", "mse", "--input-format", "parquet", "-f", "json")
    assert ok.exit_code == 0, ok.stderr


def test_binary_without_nul_bytes_named_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    bad = write(tmp_path / "noise.csv", bytes(rng.integers(128, 256, size=4000, dtype=np.uint8)))
    line = assert_fails(run("eval", bad, "-l", "mse"), 3, str(bad), "not UTF-8")
    assert line.isprintable()


def test_invalid_utf8_after_the_sniffed_sample(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(20_000))  # well past the 64 KiB sniffed
    bad = write(tmp_path / "late_bytes.csv", b"y_true,y_pred\n" + rows.encode() + b"\xff\xfe,3\n")
    line = assert_fails(run("eval", bad, "-l", "mse"), 3, f"{bad} row 20000", "column 'y_true'", "non-numeric")
    assert line.isprintable()


# --- malformed rows ----------------------------------------------------------


def test_row_with_too_many_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", "y_true,y_pred\n1,2\n3,4\n5,6,7\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 2:", "3 fields where the header has 2", "'5,6,7'")


def test_row_with_too_few_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "narrow.csv", "y_true,y_pred\n1,2\n3\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 1:", "1 fields where the header has 2")


def test_too_many_fields_far_into_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks, so that the bad row is met by the multithreaded reader
    # after the first block, where pyarrow's message carries no row number.
    import lossctl.io.csv as csv_reader

    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1 << 10)
    lines = ["y_true,y_pred"] + [f"{i},{i}" for i in range(3000)]
    lines[2501] = "1,2,3"
    path = write(tmp_path / "late.csv", "\n".join(lines) + "\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 2500:", "3 fields")


def test_blank_lines_do_not_shift_row_numbers(tmp_path: Path) -> None:
    # pyarrow skips blank lines; so do lossctl's row numbers (0-based table rows).
    path = write(tmp_path / "blank_lines.csv", "y_true,y_pred\n1,2\n\n\n3,4\n5,x\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 2:", "column 'y_pred'", "'x'")


def test_non_numeric_text_in_the_first_block(tmp_path: Path) -> None:
    path = write(tmp_path / "text.csv", "id,y_true,y_pred\n0,1,2\n1,3,abc\n2,5,6\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 1:", "column 'y_pred'", "non-numeric value 'abc'")


def test_unicode_digits_are_not_numbers(tmp_path: Path) -> None:
    # Python's float() reads "١٢" as 12; Arrow (and lossctl) do not: the row is named.
    path = write(tmp_path / "digits.csv", "y_true,y_pred\n1,2\n3,١٢\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 1:", "column 'y_pred'", "'١٢'")


def test_non_numeric_text_far_into_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first block is typed as numbers; the text comes later, as a
    # pyarrow conversion error whose "Row #N" lossctl turns into table row N-2.
    import lossctl.io.csv as csv_reader

    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1 << 10)
    lines = ["id,y_true,y_pred"] + [f"{i},{i},{i}.5" for i in range(3000)]
    lines[2201] = "2200,oops,1"
    path = write(tmp_path / "late_text.csv", "\n".join(lines) + "\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 2200:", "column 'y_true'", "'oops'")


def test_non_numeric_text_on_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import lossctl.io.csv as csv_reader

    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 1 << 10)
    lines = ["y_true,y_pred"] + [f"{i},{i}" for i in range(3000)]
    lines[1501] = "7,seven"
    assert_fails(
        run("eval", "-", "-l", "mse", stdin="\n".join(lines) + "\n"), 3, "<stdin> row 1500:", "column 'y_pred'", "'seven'"
    )


def test_text_cell_is_quoted_safely(tmp_path: Path) -> None:
    path = write(tmp_path / "ctrl.csv", 'y_true,y_pred\n1,"a\tb\x1b[31m"\n')
    line = assert_fails(run("eval", path, "-l", "mse"), 3, f"{path} row 0:", "column 'y_pred'")
    assert "\x1b" not in line and "\t" not in line


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.csv", "y_true,y_true,y_pred\n1,2,3\n")
    assert_fails(run("eval", path, "-l", "mse"), 3, str(path), "column 'y_true' appears 2 times")


def test_boolean_labels_stay_usable(tmp_path: Path) -> None:
    # true/false is a label, not text: read as 1/0, even past the first block.
    path = write(tmp_path / "bool.csv", "y_true,y_pred\ntrue,0.5\nfalse,0.25\n")
    result = run("eval", path, "-l", "mse", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["value"] == pytest.approx(((1 - 0.5) ** 2 + 0.25**2) / 2)


# --- columns -----------------------------------------------------------------


def test_named_column_does_not_exist(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "label,score\n1,0.5\n")
    assert_fails(run("eval", path, "--true", "lable", "--pred", "score", "-l", "mse"), 3, str(path), "no column 'lable'", "label")


def test_no_column_with_a_common_name(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "a,b\n1,0.5\n")
    assert_fails(run("eval", path, "-l", "mse"), 2, str(path), "columns are a, b")


def test_two_columns_could_be_picked(tmp_path: Path) -> None:
    path = write(tmp_path / "two.csv", "label,target,y_pred\n1,1,0.5\n")
    assert_fails(run("eval", path, "-l", "mse"), 2, str(path), "'label' and 'target'", "--true")


def test_true_and_pred_files_of_different_lengths(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", np.zeros(10))
    np.save(tmp_path / "preds.npy", np.zeros(12))
    assert_fails(
        run("eval", "--true", tmp_path / "labels.npy", "--pred", tmp_path / "preds.npy", "-l", "mse"),
        3,
        "row counts differ",
        "labels.npy has 10 rows",
        "preds.npy has 12 rows",
    )


def test_true_and_pred_csv_files_of_different_lengths(tmp_path: Path) -> None:
    # Row counts of CSV are known only once read: the mismatch is found while streaming.
    t = write(tmp_path / "t.csv", "y\n" + "1\n" * 7)
    p = write(tmp_path / "p.csv", "p\n" + "1\n" * 9)
    for chunk in ("3", "7", "100"):
        assert_fails(
            run("eval", "--true", t, "--pred", p, "-l", "mse", "--chunk-size", chunk), 3, "row counts differ", f"{t} ", f"{p} has more"
        )


def test_prediction_width_differs_from_label_width(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", "t0,t1,p0,p1,p2\n1,0,0.2,0.3,0.5\n")
    assert_fails(
        run("eval", path, "--true", "t0,t1", "--pred", "p0,p1,p2", "-l", "mse"),
        3,
        str(path),
        "y_pred has 3 value(s) per row",
        "y_true has 2",
    )


# --- NaN and infinity, under each policy -------------------------------------

NAN_CELLS = ["nan", "inf", "-inf", ""]


@pytest.mark.parametrize("cell", NAN_CELLS)
@pytest.mark.parametrize("column", ["y_true", "y_pred"])
def test_non_finite_value_stops_by_default(tmp_path: Path, cell: str, column: str) -> None:
    rows = [["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"]]
    rows[2][0 if column == "y_true" else 1] = cell
    rows[3][0 if column == "y_true" else 1] = cell
    path = write(tmp_path / "nan.csv", "y_true,y_pred\n" + "\n".join(",".join(r) for r in rows) + "\n")
    assert_fails(
        run("eval", path, "-l", "mse", "-f", "json"), 3, f"{path} row 2:", f"column '{column}'", "2 rows in all", "--nan drop"
    )


@pytest.mark.parametrize("cell", NAN_CELLS)
def test_nan_drop_evaluates_the_other_rows(tmp_path: Path, cell: str) -> None:
    y = np.array([1.0, 3.0, 5.0, 7.0])
    p = np.array([2.0, 4.5, 6.0, 10.0])
    text = "y_true,y_pred\n1,2\n3,4.5\n" + f"{cell},6\n" + f"7,{cell}\n"
    path = write(tmp_path / "nan.csv", text)
    result = run("eval", path, "-l", "mse", "--nan", "drop", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["results"][0]["value"] == pytest.approx(np.mean((p[:2] - y[:2]) ** 2), rel=1e-12)
    assert doc["results"][0]["rows"] == 2
    assert doc["input"]["rows_dropped"] == 2
    assert any("dropped 2 rows" in w for w in doc["warnings"])
    assert "dropped 2 rows" in result.stderr


@pytest.mark.parametrize(("cell", "note"), [("nan", "NaN"), ("inf", "infinite"), ("-inf", "infinite")])
def test_nan_propagate_gives_null_with_a_note(tmp_path: Path, cell: str, note: str) -> None:
    path = write(tmp_path / "nan.csv", f"y_true,y_pred\n1,2\n{cell},3\n")
    result = run("eval", path, "-l", "mse", "--nan", "propagate", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # valid JSON: no NaN token
    r = doc["results"][0]
    assert r["value"] is None and note in r["note"]
    assert any(w.startswith("mse: undefined") for w in doc["warnings"])
    failed = run("eval", path, "-l", "mse", "--nan", "propagate", "--check", "mse < 100", "-f", "json")
    assert failed.exit_code == 1
    assert json.loads(failed.stdout)["checks"][0]["passed"] is False


def test_nan_in_weights_follows_the_policy(tmp_path: Path) -> None:
    path = write(tmp_path / "w.csv", "y_true,y_pred,w\n1,2,1\n3,5,nan\n")
    assert_fails(run("eval", path, "-l", "mse", "--weight", "w"), 3, f"{path} row 1:", "column 'w'")
    dropped = run("eval", path, "-l", "mse", "--weight", "w", "--nan", "drop", "-f", "json")
    assert json.loads(dropped.stdout)["results"][0]["value"] == pytest.approx(1.0)


# --- labels and probabilities out of range (the families' validate hooks) -----


def test_sparse_label_at_or_above_the_number_of_classes(tmp_path: Path) -> None:
    registered("sparse_categorical_crossentropy", "sparse_categorical_accuracy")
    path = write(tmp_path / "labels.csv", "y_true,p0,p1,p2\n0,0.2,0.3,0.5\n1,0.1,0.1,0.8\n3,0.3,0.3,0.4\n")
    for spec in ("-l sparse_categorical_crossentropy", "-m sparse_categorical_accuracy", "-m acc"):
        flag, name = spec.split()
        assert_fails(
            run("eval", path, "--pred", "p0,p1,p2", flag, name), 3, f"{path} row 2:", "column 'y_true'", "3", "3 classes"
        )


def test_negative_class(tmp_path: Path) -> None:
    registered("sparse_categorical_crossentropy")
    path = write(tmp_path / "labels.csv", "y_true,p0,p1,p2\n0,0.2,0.3,0.5\n-1,0.1,0.1,0.8\n")
    assert_fails(run("eval", path, "--pred", "p0,p1,p2", "-l", "scce"), 3, f"{path} row 1:", "column 'y_true'", "-1")


def test_probability_outside_unit_interval(tmp_path: Path) -> None:
    registered("binary_crossentropy")
    for bad in ("1.3", "-0.2"):
        path = write(tmp_path / "probs.csv", f"y_true,y_pred\n0,0.2\n1,0.9\n1,{bad}\n")
        assert_fails(run("eval", path, "-l", "bce"), 3, f"{path} row 2:", "column 'y_pred'", bad, "from_logits")
    # With from_logits the same numbers are logits, and valid.
    ok = run("eval", path, "-l", "binary_crossentropy:from_logits=true", "-f", "json")
    assert ok.exit_code == 0, ok.stderr
    y, z = np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.9, -0.2])
    expected = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    assert json.loads(ok.stdout)["results"][0]["value"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("metric", ["categorical_accuracy", "top_k_categorical_accuracy:k=2", "acc"])
def test_rows_that_are_not_one_hot_are_a_data_error(tmp_path: Path, metric: str) -> None:
    registered("categorical_accuracy")
    # A multi-hot (or all-zero) label row names no class: Keras would take the
    # first maximum and report a meaningless number; lossctl stops at the row.
    path = write(tmp_path / "onehot.csv", "t0,t1,t2,p0,p1,p2\n1,0,0,0.7,0.2,0.1\n0,1,0,0.1,0.8,0.1\n1,1,0,0.1,0.8,0.1\n")
    result = run("eval", path, "--true", "t0,t1,t2", "--pred", "p0,p1,p2", "-m", metric, "-f", "json")
    assert result.exit_code == 3 and result.stdout == ""
    assert "onehot.csv row 2" in result.stderr and "column 't0,t1,t2'" in result.stderr
    assert "not one-hot" in result.stderr and result.stderr.count("\n") == 1


def test_soft_label_rows_are_a_warning_not_an_error(tmp_path: Path) -> None:
    registered("categorical_accuracy")
    path = write(tmp_path / "soft.csv", "t0,t1,t2,p0,p1,p2\n0.9,0.05,0.05,0.7,0.2,0.1\n0.05,0.9,0.05,0.1,0.8,0.1\n")
    result = run("eval", path, "--true", "t0,t1,t2", "--pred", "p0,p1,p2", "-m", "categorical_accuracy", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["results"][0]["value"] == 1.0
    assert any("not exactly one-hot" in w for w in doc["warnings"])


# --- weights -----------------------------------------------------------------


def test_negative_weight(tmp_path: Path) -> None:
    path = write(tmp_path / "w.csv", "y_true,y_pred,w\n1,2,1\n3,4,-0.5\n")
    assert_fails(run("eval", path, "-l", "mse", "--weight", "w"), 3, f"{path} row 1:", "column 'w'", "negative weight -0.5")


def test_all_zero_weights_are_undefined_not_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "w.csv", "y_true,y_pred,w\n1,2,0\n3,5,0\n")
    result = run("eval", path, "-l", "mse", "--weight", "w", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["results"][0]["value"] is None
    assert "sum of weights is zero" in doc["results"][0]["note"]
    assert any("sum of weights is zero" in w for w in doc["warnings"])
    assert "warning: mse: undefined (sum of weights is zero)" in result.stderr
    gated = run("eval", path, "-l", "mse", "--weight", "w", "--check", "mse < 1", "-f", "json")
    assert gated.exit_code == 1


# --- names, parameters, checks ------------------------------------------------


@pytest.fixture
def regression_csv(tmp_path: Path) -> Path:
    return write(tmp_path / "reg.csv", "y_true,y_pred\n1,2\n3,3\n5,4\n")


def test_unknown_loss(regression_csv: Path) -> None:
    assert_fails(run("eval", regression_csv, "-l", "mean_sqared_error"), 2, "unknown loss or metric 'mean_sqared_error'", "did you mean")


def test_unknown_parameter(regression_csv: Path) -> None:
    assert_fails(run("eval", regression_csv, "-l", "huber:detla=2"), 2, "huber: unknown parameter 'detla'", "did you mean 'delta'")


@pytest.mark.parametrize("spec", ["huber:delta=-1", "huber:delta=abc", "huber:delta=nan", "huber:delta"])
def test_bad_parameter_value(regression_csv: Path, spec: str) -> None:
    assert_fails(run("eval", regression_csv, "-l", spec), 2, "huber")


@pytest.mark.parametrize(
    "expr",
    ["mse", "mse <", "< 0.5", "mse < abc", "mse = 0.5", "mse <> 1", "mse < 0.5 < 1", "mse < nan", "mse < inf", "", "delta(mse) < 1"],
)
def test_malformed_check(regression_csv: Path, expr: str) -> None:
    assert_fails(run("eval", regression_csv, "-l", "mse", "--check", expr, "-f", "json"), 2, "--check")


def test_check_on_an_unknown_name(regression_csv: Path) -> None:
    assert_fails(run("eval", regression_csv, "-l", "mse", "--check", "msee < 1"), 2, "--check 'msee < 1'", "did you mean")


def test_check_on_an_undefined_metric_fails(tmp_path: Path) -> None:
    # R² of a constant y_true has a zero denominator: null, and the check fails (exit 1).
    path = write(tmp_path / "const.csv", "y_true,y_pred\n2,1\n2,3\n2,2\n")
    result = run("eval", path, "-m", "r2", "--check", "r2 > 0.5", "-f", "json")
    assert result.exit_code == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["results"][0]["value"] is None
    assert doc["checks"][0]["passed"] is False and "undefined" in doc["checks"][0]["note"]
    assert "check failed: r2 > 0.5" in result.stderr


# --- the boundary itself -----------------------------------------------------


def test_internal_error_is_one_line_and_exit_70(regression_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lossctl.engine

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(lossctl.engine, "run", boom)
    line = assert_fails(run("eval", regression_csv, "-l", "mse"), 70, "internal error", "kaboom", "--traceback")
    assert "bug" in line
    with_tb = run("eval", regression_csv, "-l", "mse", "--traceback")
    assert with_tb.exit_code == 70
    assert "Traceback" in with_tb.stderr and "kaboom" in with_tb.stderr


def test_traceback_flag_on_an_expected_error(tmp_path: Path) -> None:
    result = run("eval", tmp_path / "nope.csv", "-l", "mse", "--traceback")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("lossctl: ")


def test_error_leaves_no_output_file(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert_fails(run("eval", tmp_path / "nope.csv", "-l", "mse", "-o", out), 3, "no such file")
    assert not out.exists()


def test_output_to_an_unwritable_place(regression_csv: Path, tmp_path: Path) -> None:
    assert_fails(run("eval", regression_csv, "-l", "mse", "-o", tmp_path / "no" / "dir.json"), 2, "cannot write")


def test_output_over_an_input_is_refused(regression_csv: Path) -> None:
    before = regression_csv.read_bytes()
    assert_fails(run("eval", regression_csv, "-l", "mse", "-o", regression_csv), 2, "is an input file")
    assert regression_csv.read_bytes() == before


def test_every_way_of_naming_a_missing_column_is_a_data_error(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "label,score,w\n1,0.5,1\n0,0.2,1\n")
    other = write(tmp_path / "other.csv", "a,b\n1,0.5\n")
    assert_fails(run("eval", path, "--weight", "wieght", "-l", "mse"), 3, "no column 'wieght'", "columns are label, score, w")
    assert_fails(run("eval", path, "--pred", "score,nope", "-l", "mse"), 3, "no column 'nope'")
    assert_fails(run("eval", path, "--pred", f"{other}:c", "-l", "mse"), 3, str(other), "no column 'c'", "columns are a, b")
    npz = tmp_path / "arrays.npz"
    np.savez(npz, first=np.array([1.0, 0.0]), second=np.array([0.5, 0.2]))
    assert_fails(run("eval", "--true", npz, "--pred", npz, "-l", "mse"), 3, str(npz), "cannot tell which column is y_true")


def test_columns_differing_only_in_case_are_two_candidates(tmp_path: Path) -> None:
    path = write(tmp_path / "cols.csv", "y_true,Y_TRUE,y_pred\n1,0,0.5\n0,1,0.2\n")
    assert_fails(run("eval", path, "-l", "mse"), 2, "'y_true' and 'Y_TRUE'", "--true")
    assert_fails(run("eval", path, "--true", "Y_true", "-l", "mse"), 2, "'y_true' and 'Y_TRUE' differ only in case")
    named = run("eval", path, "--true", "Y_TRUE", "-l", "mse", "-f", "json")
    assert named.exit_code == 0, named.stderr
    assert json.loads(named.stdout)["results"][0]["value"] == pytest.approx(((0 - 0.5) ** 2 + (1 - 0.2) ** 2) / 2)


def _npz_with_crc_flipped(path: Path, member: str) -> None:
    """Flip one bit of ``member``'s CRC in the archive's central directory (the CRC zipfile checks)."""
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == member.encode():
            data[at + 16] ^= 1
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_an_npz_member_is_a_data_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.random(5000), rng.random(5000)
    stored = tmp_path / "stored.npz"
    np.savez(stored, y_true=y_true, y_pred=y_pred)
    assert run("eval", stored, "-l", "mse").exit_code == 0
    data = bytearray(stored.read_bytes())
    at = data.find(np.ascontiguousarray(y_pred[2500:2501]).tobytes())
    data[at] ^= 0x01  # a low mantissa bit: the value stays plausible
    stored.write_bytes(bytes(data))
    assert_fails(run("eval", stored, "-l", "mse"), 3, str(stored), "array 'y_pred' is corrupt")
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, y_true=y_true, y_pred=y_pred)
    assert run("eval", packed, "-l", "mse").exit_code == 0
    _npz_with_crc_flipped(packed, "y_true.npy")
    assert_fails(run("eval", packed, "-l", "mse"), 3, str(packed), "array 'y_true' is corrupt")


def test_an_npz_naming_one_array_twice_is_a_data_error(tmp_path: Path) -> None:
    import io
    import warnings
    import zipfile

    path = tmp_path / "dup.npz"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it writes
        for name, values in (("y_true", [1.0, 0.0]), ("y_pred", [0.5, 0.5]), ("y_pred", [0.9, 0.1])):
            buffer = io.BytesIO()
            np.save(buffer, np.array(values))
            archive.writestr(f"{name}.npy", buffer.getvalue())
    assert_fails(run("eval", path, "-l", "mse"), 3, str(path), "array 'y_pred' appears twice")

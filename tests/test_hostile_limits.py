"""Limits of the machine and the environment: never the internal error's exit 70 (SPEC section 10).

Out of memory, threads that cannot start, too many open files: one line and
exit 3. A chunk size past any table, an output encoding short of Unicode,
NPY headers whose shape no array can have: the run goes on, or exit 3.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lossctl.engine
from lossctl.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
SAMPLE = "sample_data/regression.csv"


@pytest.mark.parametrize(
    ("failure", "line"),
    [
        (MemoryError("Unable to allocate 8.00 EiB"), "lossctl: out of memory (Unable to allocate 8.00 EiB); lower --chunk-size, or give the process more memory"),
        (RuntimeError("can't start new thread"), "lossctl: cannot start a thread (can't start new thread): a limit on processes or memory (ulimit -u, ulimit -v)"),
        (OSError(errno.EMFILE, "Too many open files"), "lossctl: too many open files ([Errno 24] Too many open files); raise the limit (ulimit -n)"),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "lossctl: out of memory ([Errno 12] Cannot allocate memory); lower --chunk-size, or give the process more memory"),
    ],
)
def test_resource_limits_are_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch, failure: BaseException, line: str) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(lossctl.engine, "aligned_chunks", exhausted)
    result = CliRunner().invoke(cli, ["eval", SAMPLE, "-l", "mse", "--no-config"])
    assert result.exit_code == 3, result.stderr
    assert result.stderr.splitlines() == [line]


def test_a_real_memory_limit_is_never_an_internal_error(tmp_path: Path) -> None:
    import resource

    rng = np.random.default_rng(0)
    np.save(tmp_path / "t.npy", rng.random(3_000_000))
    np.save(tmp_path / "p.npy", rng.random(3_000_000))
    args = ["--true", str(tmp_path / "t.npy"), "--pred", str(tmp_path / "p.npy"), "-l", "mse", "-m", "median_absolute_error,r2", "-f", "json", "--no-config"]
    statuses = []
    for megabytes in (250, 350, 450, 600, 900):

        def limit(size: int = megabytes << 20) -> None:
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

        done = subprocess.run(
            [sys.executable, "-m", "lossctl", "eval", *args, "--chunk-size", "1000000000"],
            capture_output=True, text=True, env=ENV, cwd=REPO, timeout=120, check=False, preexec_fn=limit,
        )
        statuses.append(done.returncode)
        if done.returncode == 1 and "Error" in done.stderr and "lossctl" not in done.stderr:
            continue  # the interpreter itself could not start under the limit: nothing of lossctl's ran
        assert done.returncode in (0, 3), (megabytes, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr
        if done.returncode == 3:
            (line,) = done.stderr.splitlines()
            assert line.startswith("lossctl: "), line
        else:
            json.loads(done.stdout)
    assert 70 not in statuses


@pytest.mark.parametrize("chunk", [str(2**62), str(2**63), str(10**30)])
@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv", "npy"])
def test_a_chunk_size_past_any_table_reads_the_whole_table(tmp_path: Path, chunk: str, fmt: str) -> None:
    y, p = np.arange(10.0), np.arange(10.0) + 0.5
    table = pa.table({"y_true": y, "y_pred": p})
    if fmt == "parquet":
        pq.write_table(table, tmp_path / "t.parquet", row_group_size=3)
        args = [str(tmp_path / "t.parquet")]
    elif fmt == "arrow":
        with pa.ipc.new_file(tmp_path / "t.arrow", table.schema) as writer:
            writer.write_table(table)
        args = [str(tmp_path / "t.arrow")]
    elif fmt == "csv":
        (tmp_path / "t.csv").write_text("y_true,y_pred\n" + "".join(f"{a},{b}\n" for a, b in zip(y, p, strict=True)))
        args = [str(tmp_path / "t.csv")]
    else:
        np.save(tmp_path / "t.npy", y)
        np.save(tmp_path / "p.npy", p)
        args = ["--true", str(tmp_path / "t.npy"), "--pred", str(tmp_path / "p.npy")]
    result = CliRunner().invoke(cli, ["eval", *args, "-l", "mse", "--chunk-size", chunk, "-f", "json", "--no-config"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["value"] == pytest.approx(0.25)


@pytest.mark.parametrize("fmt", ["json", "table", "csv", "markdown", "junit"])
def test_an_output_encoding_short_of_unicode_escapes_what_it_lacks(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "names.csv"
    path.write_text("y_true,y_pred,région_名前💥\n0,0.25,a\n1,0.5,b\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "lossctl", "eval", str(path), "-l", "mse", "--by", "région_名前💥", "-f", fmt, "--no-config"],
        capture_output=True, env={**ENV, "PYTHONIOENCODING": "latin-1"}, cwd=REPO, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    text = done.stdout.decode("latin-1")
    if fmt == "json":
        # The escapes sit inside JSON strings: they read back as the very name.
        doc = json.loads(text)
        assert [r["group"] for r in doc["results"]] == [None, {"région_名前💥": "a"}, {"région_名前💥": "b"}]
    else:
        assert "\\u540d\\u524d\\ud83d\\udca5" in text or fmt == "junit"


@pytest.mark.parametrize("shape", ["(-1,)", "(99999999999999999999,)", "(4611686018427387904, 4)", "(4294967296, 4294967296)"])
@pytest.mark.parametrize("container", ["npy", "npz"])
def test_an_npy_header_whose_shape_no_array_can_have_is_a_data_error(tmp_path: Path, shape: str, container: str) -> None:
    import zipfile

    np.save(tmp_path / "ok.npy", np.zeros(4))
    raw = (tmp_path / "ok.npy").read_bytes()
    header_len = int.from_bytes(raw[8:10], "little")
    header = raw[10 : 10 + header_len].decode("latin-1")
    forged = header.replace("(4,)", shape).rstrip("\n").rstrip()
    forged = forged + " " * (-(10 + len(forged) + 1) % 64) + "\n"
    data = raw[:8] + len(forged).to_bytes(2, "little") + forged.encode("latin-1") + raw[10 + header_len :]
    if container == "npy":
        (tmp_path / "bad.npy").write_bytes(data)
        args = ["--true", str(tmp_path / "bad.npy"), "--pred", str(tmp_path / "ok.npy")]
        bad = tmp_path / "bad.npy"
    else:
        bad = tmp_path / "bad.npz"
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("y_true.npy", data)
            archive.writestr("y_pred.npy", raw)
        args = [str(bad)]
    result = CliRunner().invoke(cli, ["eval", *args, "-l", "mse", "--no-config"])
    assert result.exit_code == 3, result.stderr
    assert result.stderr.splitlines() == [
        f"lossctl: {bad}: cannot read: not a valid .{container} file (its header gives the shape {shape}, which no array can have)"
    ]

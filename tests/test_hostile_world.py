"""The world as a CI runner sees it: signals, write failures (SPEC sections 6 and 10).

Each test runs the real command in a subprocess and bounds it in time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("sig", "status", "line"),
    [
        (signal.SIGTERM, 143, "lossctl: terminated (SIGTERM)"),
        (signal.SIGHUP, 129, "lossctl: terminated (SIGHUP)"),
        (signal.SIGINT, 130, "lossctl: interrupted (SIGINT)"),
    ],
)
def test_signal_mid_run_exits_with_its_code_and_leaves_no_file(tmp_path: Path, sig: int, status: int, line: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    big = tmp_path / "big.csv"
    big.write_bytes(b"y_true,y_pred\n" + b"1.0,2.5\n" * 4_000_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossctl", "eval", str(big), "-l", "mse",
         "--per-row", str(out / "rows.csv"), "-o", str(out / "report.json"), "--save-state", str(out / "s.lcstate")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=REPO,
    )
    try:
        # The per-row file is being filled: the run is under way (it takes seconds more).
        deadline = time.monotonic() + 30
        while not any(name.endswith(".part") and (out / name).stat().st_size > 0 for name in _leftovers(out)):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.01)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    assert stderr.decode().splitlines() == [line]
    assert stdout == b""
    assert _leftovers(out) == []


SAMPLE = str(REPO / "sample_data" / "regression.csv")
LINE_74 = "lossctl: cannot write standard output: {}; the result was not written whole"


def _limited(size: int):  # type: ignore[no-untyped-def]
    """A preexec_fn giving the child a file size limit (writes past it fail with EFBIG)."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return limit


def _lossctl(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "lossctl", *args], env=kwargs.pop("env", ENV), cwd=kwargs.pop("cwd", REPO),
        stderr=subprocess.PIPE, timeout=60, check=False, **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_standard_output_or_o_on_a_full_device_is_exit_74_and_the_device_stays() -> None:
    with open("/dev/full", "w") as full:
        done = _lossctl("eval", SAMPLE, "-l", "mse", stdout=full)
    assert done.returncode == 74
    assert done.stderr.decode().splitlines() == [LINE_74.format("No space left on device")]
    done = _lossctl("eval", SAMPLE, "-l", "mse", "-o", "/dev/full", stdout=subprocess.DEVNULL)
    assert done.returncode == 74
    assert done.stderr.decode().splitlines() == [
        "lossctl: -o /dev/full: cannot write: No space left on device; the result was not written"
    ]
    import stat

    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # written in place, never renamed over


def test_closed_or_broken_standard_output_is_exit_74() -> None:
    closed = _lossctl("eval", SAMPLE, "-l", "mse", stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 74
    assert closed.stderr.decode().splitlines() == [LINE_74.format("it is closed")]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away before the result came
    try:
        broken = _lossctl("list", stdout=write_end)
    finally:
        os.close(write_end)
    assert broken.returncode == 74
    assert broken.stderr.decode().splitlines() == [LINE_74.format("closed by its reader (broken pipe)")]


def test_closed_standard_output_is_no_error_when_the_result_goes_to_a_file(tmp_path: Path) -> None:
    done = _lossctl("eval", SAMPLE, "-l", "mse", "-o", str(tmp_path / "r.json"), stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.json").stat().st_size > 0


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_standard_output_cut_by_a_file_size_limit_is_exit_74(tmp_path: Path, unbuffered: str) -> None:
    env = {k: v for k, v in ENV.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered  # the text layer alone would drop a short write silently
    with open(tmp_path / "stdout.json", "w") as out:
        done = _lossctl("eval", SAMPLE, "-l", "mse,mae", "-f", "json", stdout=out, preexec_fn=_limited(100), env=env)
    assert done.returncode == 74
    assert done.stderr.decode().splitlines() == [LINE_74.format("File too large")]


@pytest.mark.parametrize(
    ("option", "name"),
    [("--per-row", "rows.csv"), ("--per-row", "rows.parquet"), ("--save-state", "s.lcstate"), ("-o", "r.json")],
)
def test_an_output_file_past_the_size_limit_is_exit_74_and_left_nowhere(tmp_path: Path, option: str, name: str) -> None:
    (tmp_path / name).write_bytes(b"old")
    done = _lossctl("eval", SAMPLE, "-l", "mse", option, str(tmp_path / name), stdout=subprocess.DEVNULL, preexec_fn=_limited(200))
    assert done.returncode == 74
    line = done.stderr.decode().splitlines()
    assert len(line) == 1 and line[0].startswith(f"lossctl: {option} {tmp_path / name}: cannot write: ")
    assert "File too large" in line[0]
    assert _leftovers(tmp_path) == [name]
    assert (tmp_path / name).read_bytes() == b"old"


def test_a_result_that_fits_is_still_exit_0(tmp_path: Path) -> None:
    with open(tmp_path / "stdout.json", "w") as out:
        done = _lossctl("eval", SAMPLE, "-l", "mse", "-f", "json", stdout=out, preexec_fn=_limited(1 << 20))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "stdout.json").read_text().startswith("{")


_TRUNCATE = """
import os, sys
import numpy as np
from lossctl.errors import DataError
from lossctl.io import open_table

path, names = sys.argv[1], sys.argv[2].split(",")
chunks = open_table([path]).chunks(names, 20_000)
next(chunks)
os.truncate(path, int(sys.argv[3]))
try:
    for _ in chunks:
        pass
except DataError as exc:
    print("DataError:", exc)
else:
    print("read to the end")
"""


def _write_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(3)
    n = 400_000
    table = pa.table({"y_true": rng.random(n), "y_pred": rng.random(n)})
    pacsv.write_csv(table, folder / "big.csv")
    pq.write_table(table, folder / "big.parquet", row_group_size=20_000)
    np.save(folder / "big.npy", rng.random(n))
    np.savez(folder / "big.npz", y_true=rng.random(n), y_pred=rng.random(n))
    return {
        "csv": (folder / "big.csv", "y_true,y_pred"),
        "parquet": (folder / "big.parquet", "y_true,y_pred"),
        "npy": (folder / "big.npy", "big"),
        "npz": (folder / "big.npz", "y_true,y_pred"),
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npy", "npz"])
def test_a_file_truncated_while_it_is_read_is_a_data_error_not_sigbus(tmp_path: Path, fmt: str) -> None:
    path, names = _write_inputs(tmp_path)[fmt]
    keep = path.stat().st_size // 4  # past the header and the first chunk, well before the end
    done = subprocess.run(
        [sys.executable, "-c", _TRUNCATE, str(path), names, str(keep)],
        capture_output=True, text=True, env=ENV, cwd=REPO, timeout=60, check=False,
    )
    assert done.returncode == 0, (done.returncode, done.stderr)  # -7 would be SIGBUS
    assert done.stdout.startswith(f"DataError: {path}: ")
    assert "changed while being read" in done.stdout or "truncated" in done.stdout


def test_reading_a_closed_standard_input_is_a_data_error() -> None:
    done = _lossctl("eval", "-", "-l", "mse", stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(0))
    assert done.returncode == 3
    assert done.stderr.decode().splitlines() == ["lossctl: <stdin>: standard input is closed; pipe the CSV in, or name a file"]


@pytest.mark.parametrize("ext", ["jsonl", "arrow", "parquet", "npy", "npz"])
def test_a_fifo_of_a_format_read_at_offsets_is_refused_without_waiting_for_a_writer(tmp_path: Path, ext: str) -> None:
    # Opening a FIFO with no writer blocks inside pyarrow, where no signal reaches:
    # such a format is never opened from a pipe (it could not be read from one anyway).
    fifo = tmp_path / f"in.{ext}"
    os.mkfifo(fifo)
    done = _lossctl("eval", str(fifo), "-l", "mse", stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert done.returncode == 3
    assert done.stderr.decode().splitlines() == [
        f"lossctl: {fifo}: is a pipe; {ext} input must be a file (only CSV reads from a pipe or standard input)"
    ]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("source", ["fifo without a writer", "idle standard input", "standard input idle after a block"])
def test_a_signal_ends_a_run_waiting_on_a_silent_input_at_once(tmp_path: Path, sig: int, status: int, source: str) -> None:
    args = [sys.executable, "-m", "lossctl", "eval", "-", "-l", "mse", "-f", "json"]
    if source.startswith("fifo"):
        fifo = tmp_path / "in.csv"
        os.mkfifo(fifo)
        args[4] = str(fifo)
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=REPO)
    try:
        assert proc.stdin is not None
        if source.endswith("after a block"):
            proc.stdin.write(b"y_true,y_pred\n" + b"1,2\n" * 2_000_000)  # past the first block: the reader thread waits
            proc.stdin.flush()
        time.sleep(1.5)
        assert proc.poll() is None
        proc.send_signal(sig)
        began = time.monotonic()
        _, stderr = proc.communicate(timeout=10)
        assert time.monotonic() - began < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    name = "interrupted (SIGINT)" if sig == signal.SIGINT else "terminated (SIGTERM)"
    assert stderr.decode().splitlines() == [f"lossctl: {name}"]


@pytest.mark.parametrize("flag", ["-o", "--per-row", "--save-state"])
@pytest.mark.parametrize("given", ["directory", "glob", "path:column"])
def test_an_output_naming_a_file_inside_an_input_directory_or_glob_is_refused(tmp_path: Path, flag: str, given: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"y_true": [float(i), 1.0], "y_pred": [i + 0.5, 1.0]}), shards / f"part-{i}.parquet")
    target = shards / "part-1.parquet"
    before = target.read_bytes()
    if given == "path:column":
        inputs = ["--true", f"{shards / 'part-0.parquet'}:y_true", "--pred", f"{target}:y_pred"]
    else:
        inputs = [str(shards) if given == "directory" else str(shards / "*.parquet")]
    done = _lossctl("eval", *inputs, "-l", "mse", flag, str(target), stdout=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == [f"lossctl: {flag} {target}: is an input file; name another file"]
    assert target.read_bytes() == before


def test_the_api_never_writes_per_row_values_over_a_true_or_pred_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import lossctl
    from lossctl.errors import UsageProblem

    pq.write_table(pa.table({"y_true": [1.0, 2.0]}), tmp_path / "t.parquet")
    pq.write_table(pa.table({"y_pred": [1.5, 2.0]}), tmp_path / "p.parquet")
    before = (tmp_path / "p.parquet").read_bytes()
    with pytest.raises(UsageProblem, match="is an input file"):
        lossctl.evaluate(true=f"{tmp_path / 't.parquet'}:y_true", pred=f"{tmp_path / 'p.parquet'}:y_pred", loss=["mse"], per_row=str(tmp_path / "p.parquet"))
    assert (tmp_path / "p.parquet").read_bytes() == before


@pytest.mark.parametrize(("extra", "status"), [((), 0), (("-c", "mse < 0"), 1), (("-l", "no_such_loss"), 2)])
def test_a_closed_standard_error_changes_no_exit_status(extra: tuple[str, ...], status: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lossctl", "eval", SAMPLE, "-l", "mse", "-f", "json", *extra],
        stdout=subprocess.PIPE, env=ENV, cwd=REPO, timeout=60, check=False, preexec_fn=lambda: os.close(2),
    )
    assert done.returncode == status
    if status != 2:
        assert json.loads(done.stdout)["results"][0]["name"] == "mean_squared_error"

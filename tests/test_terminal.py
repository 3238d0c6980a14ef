"""Tables on a real terminal: rich's own width detection and NO_COLOR (SPEC section 5).

Each command runs in a fresh process on a pseudo-terminal whose window size
is set as a terminal emulator sets it (TIOCSWINSZ), at 50, 80 and 120
columns; its output is read back as the terminal received it.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

ROOT = Path(__file__).resolve().parent.parent
SGR = re.compile(r"\x1b\[([0-9;]*)m")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile("[\u2500-\u257f]")
# Environment variables that steer rich or click; each test sets what it needs.
STEERING = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM", "CLICOLOR", "CLICOLOR_FORCE")
LONG_SPEC = "sparse_top_k_categorical_accuracy:k=3"
EVAL = ["eval", "sample_data/multiclass.parquet", "-m", f"acc,{LONG_SPEC}", "-c", "acc > 0.1", "--no-config"]


def _values() -> list[str]:
    from lossctl.api import evaluate
    from lossctl.render import format_value

    ev = evaluate(str(ROOT / "sample_data" / "multiclass.parquet"), metric=["acc", LONG_SPEC])
    return [format_value(r.value) for r in ev.results]


VALUES = _values()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STEERING}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def in_terminal(args: list[str], columns: int, **env: str) -> str:
    """What ``lossctl ARGS`` shows on a terminal ``columns`` wide (exit status 0 or 1 asserted)."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-m", "lossctl", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=_env(**env), start_new_session=True,
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert status in (0, 1), text
    return text


def widths(text: str) -> list[int]:
    return [cell_len(ANSI.sub("", line)) for line in text.splitlines()]


def colours(text: str) -> set[str]:
    """The colour parameters of the SGR sequences in ``text`` (bold, italic... left out)."""
    found = set()
    for params in SGR.findall(text):
        codes = params.split(";")
        for i, code in enumerate(codes):
            if code in ("38", "48") or (code.isdigit() and (30 <= int(code) <= 37 or 40 <= int(code) <= 47 or 90 <= int(code) <= 107)):
                found.add(";".join(codes[i:]))
                break
    return found


@pytest.mark.parametrize("columns", [50, 80, 120])
def test_the_table_fits_the_terminal(columns: int) -> None:
    text = in_terminal(EVAL, columns)
    assert "sparse_top_k" in text and "PASS" in text
    assert max(widths(text)) <= columns, text
    for value in VALUES:  # numbers are never cut or folded
        assert value in text, (value, text)
    if columns == 120:
        # Wide enough: every name on one line, the table wider than the old fixed 100 columns.
        row = next(line for line in text.splitlines() if LONG_SPEC in line)
        assert f"{LONG_SPEC} (sparse_top_k_categorical_accuracy)" in row
        assert max(widths(text)) > 100


@pytest.mark.parametrize("columns", [50, 80, 120])
@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "sample_data/multiclass.parquet", "--no-config"],
        ["worst", "sample_data/regression.csv", "-l", "huber:delta=2", "-n", "3", "--no-config"],
        ["list", "--task", "binary"],
    ],
    ids=["inspect", "worst", "list"],
)
def test_every_table_fits_the_terminal(args: list[str], columns: int) -> None:
    text = in_terminal(args, columns)
    # The tables and their captions fit; a title naming a file is soft-wrapped
    # (the terminal folds it; cut in two by lossctl it could not be copied).
    table_lines = [line for line in text.splitlines() if BOX.search(line)]
    assert table_lines and max(widths("\n".join(table_lines))) <= columns, text


def test_colour_on_a_terminal_and_none_under_no_color() -> None:
    coloured = in_terminal(EVAL, 100)
    assert colours(coloured), "PASS should be green on a terminal"
    plain = in_terminal(EVAL, 100, NO_COLOR="1")
    assert "PASS" in plain and not colours(plain), plain
    # The same table, only the colours go (a progress bar, shown when a loaded
    # machine makes the run last past its delay, is not part of the table).
    assert _tables(plain) == _tables(coloured)


def _tables(text: str) -> list[str]:
    return [line for line in ANSI.sub("", text).splitlines() if "reading" not in line and line.strip()]


def test_columns_is_honoured() -> None:
    text = in_terminal(EVAL, 120, COLUMNS="60")
    assert max(widths(text)) <= 60, text


def test_off_a_terminal_a_plain_table_of_rich_s_default_width() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lossctl", *EVAL, "-f", "table"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, env=_env(), start_new_session=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert max(widths(done.stdout)) <= 80
    assert "PASS" in done.stdout
    # FORCE_COLOR asks rich for colour in a pipe (for `less -R`), and gets it.
    forced = subprocess.run(
        [sys.executable, "-m", "lossctl", *EVAL, "-f", "table"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, env=_env(FORCE_COLOR="1"), start_new_session=True, timeout=60, check=False,
    )
    assert colours(forced.stdout) and ANSI.sub("", forced.stdout) == done.stdout


def test_a_progress_bar_with_total_and_eta_on_a_long_run() -> None:
    # One row per chunk makes the 3,000-row file take about a second: long enough for the bar.
    args = ["eval", "sample_data/regression.parquet", "--chunk-size", "1", "-l", "mse,mae,huber", "-m", "r2", "-f", "json", "--no-config"]
    text = ANSI.sub("", in_terminal(args, 100))
    assert re.search(r"reading .*\d+% [\d,]+/3,000 rows .*ETA", text), text
    quiet = ANSI.sub("", in_terminal([*args, "-q"], 100))
    assert "reading" not in quiet

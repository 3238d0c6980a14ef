"""The world as a CI runner sees it: signals, write failures (SPEC sections 6 and 10).

Each test runs the real command in a subprocess and bounds it in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    # Rows on standard input, then the writer goes quiet: the run is certainly
    # under way (the per-row file is being filled) when the signal comes.
    proc = subprocess.Popen(
        [sys.executable, "-m", "lossctl", "eval", "-", "-l", "mse",
         "--per-row", str(out / "rows.csv"), "-o", str(out / "report.json"), "--save-state", str(out / "s.lcstate")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=REPO,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"y_true,y_pred\n" + b"1.0,2.5\n" * 3_000_000)
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not any(name.endswith(".part") and (out / name).stat().st_size > 0 for name in _leftovers(out)):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.05)
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

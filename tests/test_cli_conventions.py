"""Conventions users bring from click, rich, csvkit and sqlite-utils (issue: a command line that behaves).

`lossctl` alone prints the help; shell completion completes files and
registry names (through Click's own completion API, no shell needed).
"""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from lossctl.cli.main import cli


def test_lossctl_alone_prints_the_help_on_stdout() -> None:
    done = subprocess.run([sys.executable, "-m", "lossctl"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("Usage: lossctl [OPTIONS] COMMAND [ARGS]...\n")
    assert "\\n" not in done.stdout  # real lines, not one escaped line
    for name in cli.commands:
        assert f"  {name} " in done.stdout
    assert done.stdout == CliRunner().invoke(cli, ["--help"], prog_name="lossctl").stdout

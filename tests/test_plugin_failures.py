"""Every way a plugin fails: one line on standard error, the SPEC's exit code, no traceback.

A plugin that cannot be loaded (syntax, import, an exception at import, a
name of a built-in, a name twice, no such file or module, nothing in it) is
a usage error (exit 2) with the plugin's own message. A function that
fails on a chunk (a scalar, the wrong length, NaN, infinity, an exception)
is a data error (exit 3) naming the plugin, the function and the chunk's
first row, whatever the chunk size.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import lossctl
from lossctl.cli.main import cli
from lossctl.errors import DataError, UsageProblem

ROWS, BAD = 300, 250

RUNTIME = """
import numpy as np

def _hit(y_true):
    return bool((y_true == 999).any())

def scalar(y_true, y_pred):
    out = np.abs(y_true - y_pred)[:, 0]
    return float(out.mean()) if _hit(y_true) else out

def short(y_true, y_pred):
    out = np.abs(y_true - y_pred)[:, 0]
    return out[:-1] if _hit(y_true) else out

def wide(y_true, y_pred):
    out = np.abs(y_true - y_pred)
    return np.hstack([out, out]) if _hit(y_true) else out

def nan_row(y_true, y_pred):
    return np.where(y_true == 999, np.nan, np.abs(y_true - y_pred))

def inf_row(y_true, y_pred):
    return np.where(y_true == 999, np.inf, np.abs(y_true - y_pred))[:, 0]

def raises(y_true, y_pred):
    if _hit(y_true):
        raise ZeroDivisionError("no good\\nat all")
    return np.abs(y_true - y_pred)[:, 0]

def writes(y_true, y_pred):
    y_pred[0, 0] = 0.0
    return np.abs(y_true - y_pred)[:, 0]

def plain(y_true, y_pred):
    return np.abs(y_true - y_pred)[:, 0]

def strings(y_true, y_pred):
    return np.array(["x"] * len(y_true)) if _hit(y_true) else np.abs(y_true - y_pred)
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    t = np.arange(ROWS, dtype=float)
    t[BAD] = 999.0
    lines = ["y_true,y_pred"] + [f"{a},{a + 0.5}" for a in t]
    (tmp_path / "preds.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "runtime.py").write_text(RUNTIME)
    return tmp_path


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line(result: Result, status: int) -> str:
    assert result.exit_code == status, (result.exit_code, result.stderr, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lossctl: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("function", "fragment", "exact_row"),
    [
        ("scalar", "returned a scalar", False),
        ("short", "returned shape (", False),
        ("wide", "returned shape (", False),
        ("nan_row", "returned NaN for finite inputs", True),
        ("inf_row", "returned an infinite value for finite inputs", True),
        ("raises", "raised ZeroDivisionError: no good at all", False),
        ("strings", "returned ndarray, not numbers (numpy.asarray: could not convert", False),
    ],
)
@pytest.mark.parametrize("chunk", [64, 100, 1000])
def test_a_failing_function_is_exit_3_naming_plugin_function_and_row(
    data: Path, function: str, fragment: str, exact_row: bool, chunk: int
) -> None:
    plugin = data / "runtime.py"
    result = run("eval", data / "preds.csv", "--plugin", plugin, "-l", function, "--chunk-size", chunk)
    line = one_line(result, 3)
    first = BAD // chunk * chunk
    assert f"plugin {plugin}, function {function}" in line
    assert fragment in line
    if exact_row:
        assert f"row {BAD} (in the chunk from row {first})" in line, line
    else:
        assert f"row {first}:" in line, line


def test_arrays_are_read_only(data: Path) -> None:
    line = one_line(run("eval", data / "preds.csv", "--plugin", data / "runtime.py", "-l", "writes"), 3)
    assert "read-only" in line and "row 0:" in line


def test_nan_under_propagate_is_the_inputs_not_the_function(data: Path) -> None:
    text = (data / "preds.csv").read_text().replace("\n3.0,3.5\n", "\nnan,3.5\n")
    (data / "nan.csv").write_text(text)
    plugin = data / "runtime.py"
    result = run("eval", data / "nan.csv", "--plugin", plugin, "-l", "plain", "--nan", "propagate", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert '"value": null' in result.stdout
    dropped = run("eval", data / "nan.csv", "--plugin", plugin, "-l", "inf_row", "--nan", "drop", "--chunk-size", 100)
    # Row 250 is the 249th kept row: the message names the table's row, not the position after dropping.
    assert f"row {BAD} (in the chunk from row 200)" in one_line(dropped, 3)


def test_api_raises_the_same_errors(data: Path) -> None:
    plugin = str(data / "runtime.py")
    with pytest.raises(DataError, match=r"row 200: plugin .*function raises"):
        lossctl.evaluate(str(data / "preds.csv"), plugins=[plugin], loss="raises", chunk_size=100)
    with pytest.raises(UsageProblem, match="shadows the built-in"):
        lossctl.evaluate(str(data / "preds.csv"), loss=[lambda y_true, y_pred: y_true], metric="mse",
                         plugins=[str(write(data, "mse.py", "def mse(y_true, y_pred):\n    return y_true\n"))])


def write(where: Path, name: str, text: str) -> Path:
    path = where / name
    path.write_text(textwrap.dedent(text))
    return path


LOAD_FAILURES = [
    ("syntax.py", "def f(y_true, y_pred)\n    return y_true\n", "SyntaxError: expected ':'"),
    ("missing_dep.py", "import keras_is_not_installed_here\n", "No module named 'keras_is_not_installed_here'"),
    ("raises.py", "raise RuntimeError('set LOSS_SCALE first')\n", "RuntimeError: set LOSS_SCALE first"),
    ("exits.py", "import sys\nsys.exit('bye')\n", "SystemExit: bye"),
    ("shadow.py", "def mse(y_true, y_pred):\n    return y_true\n", "'mse' shadows the built-in mean_squared_error"),
    ("alias.py", "import lossctl\n@lossctl.loss(aliases=['acc'])\ndef mine(y_true, y_pred):\n    return y_true\n",
     "'acc' shadows the built-in accuracy"),
    ("empty.py", "X = 1\n", "defines no loss"),
    ("twice.py", "import lossctl\ndef a(y_true, y_pred):\n    return y_true\n"
     "@lossctl.loss(name='a')\ndef b(y_true, y_pred):\n    return y_true\n", "are both named 'a'"),
    ("notloss.py", "import lossctl\n@lossctl.metric\ndef f(x):\n    return x\n", "neither a loss"),
    ("badfactory.py", "def factory(t=1.0):\n    if t > 0:\n        raise ValueError('t?')\n    def inner(y_true, y_pred):\n"
     "        return y_true\n    return inner\n", "calling it with its defaults"),
]


@pytest.mark.parametrize(("name", "text", "fragment"), LOAD_FAILURES, ids=[f[0] for f in LOAD_FAILURES])
def test_a_plugin_that_cannot_load_is_exit_2_with_its_message(data: Path, name: str, text: str, fragment: str) -> None:
    plugin = write(data, name, text)
    line = one_line(run("eval", data / "preds.csv", "--plugin", plugin, "-l", "mae"), 2)
    assert f"plugin {plugin}" in line and fragment in line, line
    assert one_line(run("list", "--plugin", plugin), 2) == line


def test_other_usage_errors(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = data / "preds.csv"
    assert "no such file" in one_line(run("eval", csv, "--plugin", data / "nope.py", "-l", "mae"), 2)
    assert "is a directory" in one_line(run("eval", csv, "--plugin", f"{data}/", "-l", "mae"), 2)
    assert "no module named 'nope'" in one_line(run("eval", csv, "--plugin", "nope.losses", "-l", "mae"), 2)
    assert "neither a Python file" in one_line(run("eval", csv, "--plugin", "not a module", "-l", "mae"), 2)
    one = write(data, "one.py", "def same(y_true, y_pred):\n    return y_true[:, 0]\n")
    two = write(data, "two.py", "def same(y_true, y_pred):\n    return y_pred[:, 0]\n")
    line = one_line(run("eval", csv, "--plugin", one, "--plugin", two, "-l", "same"), 2)
    assert f"plugin {two}: the name 'same' is taken by plugin {one}, function same" in line
    factory = write(data, "factory.py", """
        def scaled(t=1.0):
            if t <= 0:
                raise ValueError(f"t must be positive, not {t}")
            def inner(y_true, y_pred):
                return t * abs(y_true - y_pred)[:, 0]
            return inner
    """)
    line = one_line(run("eval", csv, "--plugin", factory, "-l", "scaled:t=-1"), 2)
    assert "function scaled(t=-1.0) raised ValueError: t must be positive, not -1.0" in line
    assert "unknown loss or metric 'scaled'" in one_line(run("eval", csv, "-l", "scaled"), 2)
    (data / "lossctl.toml").write_text('plugins = ["syntax_error_here.py"]\n')
    write(data, "syntax_error_here.py", "def (\n")
    monkeypatch.chdir(data)
    line = one_line(run("eval", "preds.csv", "-l", "mae"), 2)
    assert line.startswith("lossctl: lossctl.toml: 'plugins': plugin syntax_error_here.py: SyntaxError")


def test_the_console_script_prints_one_line(data: Path) -> None:
    code = "from lossctl.cli.main import main; main()"
    for args, status in (
        (["eval", str(data / "preds.csv"), "--plugin", str(data / "runtime.py"), "-l", "raises"], 3),
        (["eval", str(data / "preds.csv"), "--plugin", str(write(data, "s.py", "def (\n")), "-l", "mae"], 2),
    ):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
        assert proc.returncode == status, proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr

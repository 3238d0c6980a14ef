"""The README's set-up command works: the sample file evaluates from the CLI."""

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from lossctl.cli.main import cli


def test_eval_sample_regression_json() -> None:
    result = CliRunner().invoke(cli, ["eval", "sample_data/regression.csv", "--loss", "mse", "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["results"][0]["name"] == "mean_squared_error"
    assert doc["input"]["rows"] == 3000


def _modules_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_eval_path_imports_no_pandas() -> None:
    # pandas costs ~0.3 s of start-up; only Evaluation.to_pandas() may import it.
    loaded = _modules_after(
        "import lossctl\n"
        "lossctl.evaluate('sample_data/regression.parquet', loss='mse,huber', metric='r2')\n"
        "lossctl.evaluate('sample_data/binary.csv', loss='bce', metric='auc')\n"
        "lossctl.evaluate(true='sample_data/multiclass_labels.npy', pred='sample_data/multiclass_probs.npy', loss='scce')"
    )
    assert not {"pandas", "sklearn", "scipy"} & loaded


def test_version_imports_no_numpy_or_pyarrow() -> None:
    loaded = _modules_after(
        "import sys\nsys.argv = ['lossctl', '--version']\n"
        "from lossctl.cli.main import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass"
    )
    assert not {"numpy", "pyarrow", "pandas"} & loaded


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    # `python -m lossctl` runs the console script's main(), which ends the process with os._exit.
    return subprocess.run([sys.executable, "-m", "lossctl", *args], capture_output=True, text=True)


def test_the_console_script_flushes_its_output_and_keeps_the_exit_status(tmp_path: Path) -> None:
    ok = _console("eval", "sample_data/regression.csv", "-l", "mse", "-f", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["input"]["rows"] == 3000 and ok.stderr == ""
    gate = _console("eval", "sample_data/regression.csv", "-l", "mse", "--check", "mse < 0.001", "-f", "json")
    assert gate.returncode == 1 and json.loads(gate.stdout)["passed"] is False
    missing = _console("eval", str(tmp_path / "nope.csv"), "-l", "mse")
    assert missing.returncode == 3 and missing.stdout == ""
    assert missing.stderr.splitlines() == [f"lossctl: {tmp_path / 'nope.csv'}: no such file"]
    out = tmp_path / "r.json"
    written = _console("eval", "sample_data/regression.csv", "-l", "mse", "-f", "json", "-o", str(out))
    assert written.returncode == 0 and json.loads(out.read_text())["results"][0]["name"] == "mean_squared_error"
    usage = _console("eval", "sample_data/regression.csv", "--no-such-option")
    assert usage.returncode == 2 and len(usage.stderr.splitlines()) == 1

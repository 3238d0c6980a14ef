"""Output formats (SPEC section 5): csv, markdown, junit next to table and json; -o, --quiet, progress."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner, Result
from markdown_it import MarkdownIt
from rich.console import Console

from lossctl.cli.common import ProgressBar
from lossctl.cli.main import cli
from lossctl.render.markdown import code, escape

ROOT = Path(__file__).resolve().parent.parent
Y = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
P = np.array([1.0, 1.0, 2.5, 3.0, 10.0])
MSE = float(np.mean((P - Y) ** 2))
MAE = float(np.mean(np.abs(P - Y)))


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "preds.csv"
    path.write_text("y_true,y_pred\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(Y, P, strict=True)))
    return path


# --- json ----------------------------------------------------------------------------


def test_json_is_the_default_off_a_terminal(data: Path) -> None:
    result = run("eval", data, "-l", "mse")
    doc = json.loads(result.stdout)
    assert set(doc) >= {"lossctl", "schema", "input", "results", "checks", "passed", "signature", "warnings"}
    assert doc["schema"] == 2


def test_json_signature_and_warnings(data: Path) -> None:
    doc = json.loads(run("eval", data, "-l", "mse", "--chunk-size", "2", "-f", "json").stdout)
    sig = doc["signature"]
    assert sig["lossctl"] == doc["lossctl"]
    assert sig["epsilon"] == 1e-7 and sig["chunk_size"] == 2
    assert {"auc_method", "seed", "input_bytes", "nan"} <= set(sig)
    assert sig["input_bytes"] == {str(data): data.stat().st_size}
    assert doc["warnings"] == []
    assert doc["results"][0]["value"] == pytest.approx(MSE, rel=1e-15)


def test_json_never_writes_nan(tmp_path: Path) -> None:
    path = tmp_path / "nan.csv"
    path.write_text("y_true,y_pred\n1,nan\n2,3\n")
    text = run("eval", path, "-l", "mse", "--nan", "propagate", "-f", "json").stdout
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert doc["results"][0]["value"] is None and doc["results"][0]["note"] == "undefined (NaN)"
    assert doc["warnings"] == ["mse: undefined (NaN)"]


# --- csv -------------------------------------------------------------------------------


def test_csv_one_row_per_result_at_full_precision(data: Path) -> None:
    result = run("eval", data, "-l", "mse,huber:delta=2", "-m", "mae", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["spec"] for r in rows] == ["mse", "huber:delta=2", "mae"]
    assert float(rows[0]["value"]) == MSE  # repr round-trips exactly
    assert float(rows[2]["value"]) == MAE
    assert json.loads(rows[1]["params"]) == {"delta": 2.0, "reduction": "mean"}
    assert rows[0]["kind"] == "loss" and rows[2]["kind"] == "metric"
    assert rows[0]["rows"] == str(len(Y))


def test_csv_undefined_is_an_empty_cell_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("y_true,y_pred\n")
    rows = list(csv.DictReader(io.StringIO(run("eval", path, "-l", "mse", "-f", "csv").stdout)))
    assert rows[0]["value"] == "" and rows[0]["note"] == "no rows"


# --- markdown ---------------------------------------------------------------------------


def _tables(markdown: str) -> list[list[list[str]]]:
    """Every table of a GFM document as rows of cell texts, parsed by markdown-it."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables: list[list[list[str]]] = []
    row: list[str] = []
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            tables.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            inline = tokens[i + 1]
            row.append("".join(c.content for c in inline.children or []) if inline.type == "inline" else "")
        elif tok.type == "tr_close":
            tables[-1].append(row)
    return tables


def test_markdown_summary_has_results_and_checks(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "-m", "mae", "--check", "mse < 100", "--check", "mae < 0.1", "-f", "markdown")
    assert result.exit_code == 1
    md = result.stdout
    assert md.startswith("### ❌ lossctl: 1 of 2 checks failed")
    results, checks = _tables(md)
    assert results[0] == ["name", "kind", "value", "", "note"]
    assert [r[0] for r in results[1:]] == ["mse (mean_squared_error)", "mae (mean_absolute_error)"]
    assert float(results[1][2]) == pytest.approx(MSE, rel=1e-5)
    assert checks[0] == ["check", "value", "result", "note"]
    assert [c[0] for c in checks[1:]] == ["mse < 100", "mae < 0.1"]
    assert "pass" in checks[1][2] and "fail" in checks[2][2]


def test_markdown_without_checks(data: Path) -> None:
    md = run("eval", data, "-l", "mse", "-f", "markdown").stdout
    assert md.startswith("### lossctl results")
    assert len(_tables(md)) == 1


def test_markdown_escapes_what_users_write(tmp_path: Path) -> None:
    weird = tmp_path / "a|b`c*_d.csv"
    weird.write_text("y_true,y_pred\n1,2\n")
    md = run("eval", weird, "-l", "mse", "--check", "mse < 2", "-f", "markdown").stdout
    (results, checks) = _tables(md)
    assert all(len(row) == 5 for row in results) and all(len(row) == 4 for row in checks)
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "a|b`c*_d.csv" in html.replace("&amp;", "&")  # the name survives, as text


def test_markdown_escape_and_code_helpers() -> None:
    assert escape("a|b <x> *y* _z_ [l](u)") == "a\\|b &lt;x&gt; \\*y\\* \\_z\\_ \\[l\\](u)"
    assert escape("two\nlines") == "two lines"
    assert code("a`b") == "``a`b``"
    assert code("x|y") == "`x\\|y`"
    assert code("x|y", cell=False) == "`x|y`"


def test_markdown_lists_warnings(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("y_true,y_pred\n")
    md = run("eval", path, "-l", "mse", "-f", "markdown").stdout
    assert "**Warnings**" in md and "- no rows" in md


# --- junit ------------------------------------------------------------------------------
# The rules of the common JUnit schema (Apache Ant / Windy Road JUnit.xsd), checked by hand
# because no XSD validator is installed: root <testsuites> without attributes; each
# <testsuite> has package and id plus name, timestamp (no zone), hostname, tests, failures,
# errors, time (skipped optional) and nothing else; children in order: properties,
# testcase*, system-out, system-err; a testcase has name, classname, time and at most one
# of skipped/error/failure; failure and error need a type.

_INT = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def validate_junit(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites" and not root.attrib
    assert all(child.tag == "testsuite" for child in root)
    for suite in root:
        required = {"package", "id", "name", "timestamp", "hostname", "tests", "failures", "errors", "time"}
        assert required <= set(suite.attrib) <= required | {"skipped"}, suite.attrib
        for key in ("id", "tests", "failures", "errors", "skipped"):
            if key in suite.attrib:
                assert _INT.match(suite.attrib[key]), key
        assert _DECIMAL.match(suite.attrib["time"])
        assert _STAMP.match(suite.attrib["timestamp"])
        datetime.strptime(suite.attrib["timestamp"], "%Y-%m-%dT%H:%M:%S")
        for key in ("name", "hostname", "package"):
            assert suite.attrib[key].strip(), key
        tags = [c.tag for c in suite]
        assert tags[0] == "properties" and tags[-2:] == ["system-out", "system-err"]
        assert set(tags[1:-2]) <= {"testcase"}
        for prop in suite[0]:
            assert prop.tag == "property" and set(prop.attrib) == {"name", "value"} and prop.attrib["name"].strip()
        cases = suite.findall("testcase")
        failures = 0
        for case in cases:
            assert set(case.attrib) == {"name", "classname", "time"}
            assert _DECIMAL.match(case.attrib["time"])
            assert len(case) <= 1
            for outcome in case:
                assert outcome.tag in ("skipped", "error", "failure")
                if outcome.tag in ("error", "failure"):
                    assert "type" in outcome.attrib and set(outcome.attrib) <= {"type", "message"}
                    assert len(outcome) == 0
                failures += outcome.tag == "failure"
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == failures
        for stream in suite[-2:]:
            assert len(stream) == 0 and not stream.attrib
    return root


def test_junit_one_test_case_per_check(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "-c", "mse < 100", "-c", "mse < 0.5", "-c", "mae > 0", "-f", "junit")
    assert result.exit_code == 1
    root = validate_junit(result.stdout)
    cases = root.findall("testsuite/testcase")
    assert [c.attrib["name"] for c in cases] == ["mse < 100", "mse < 0.5", "mae > 0"]
    assert [c.find("failure") is not None for c in cases] == [False, True, False]
    failure = cases[1].find("failure")
    assert failure is not None and repr(MSE) in failure.attrib["message"]
    props = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert float(props["result.mse"]) == MSE


def test_junit_without_checks_is_valid(data: Path) -> None:
    root = validate_junit(run("eval", data, "-l", "mse", "-f", "junit").stdout)
    assert root.find("testsuite").attrib["tests"] == "0"  # type: ignore[union-attr]  # present: validated above


def test_junit_with_hostile_names(tmp_path: Path) -> None:
    path = tmp_path / "a<b>&\"c'.csv"
    path.write_text("y_true,y_pred\n1,2\n")
    text = run("eval", path, "-l", "mse", "--check", "mse < 0.5", "-f", "junit").stdout
    root = validate_junit(text)
    files = [p.attrib["value"] for p in root.iter("property") if p.attrib["name"] == "input.files"]
    assert files == [str(path)]


def test_junit_strips_characters_xml_cannot_hold() -> None:
    from lossctl.render.junit import _clean

    assert _clean("a\x00b\x1bc\td") == "a\ufffdb\ufffdc\td"


# --- -o and the format it implies ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("out.json", lambda t: json.loads(t)["results"][0]["spec"] == "mse"),
        ("out.csv", lambda t: t.startswith("name,spec,kind,value")),
        ("out.md", lambda t: t.startswith("### ")),
        ("out.xml", lambda t: validate_junit(t) is not None),
        ("out.txt", lambda t: "mse (mean_squared_error)" in t and "┃" in t),
        ("out.result", lambda t: json.loads(t)["passed"] is True),
    ],
)
def test_output_file_format_follows_extension(data: Path, tmp_path: Path, name: str, check: Any) -> None:
    out = tmp_path / name
    result = run("eval", data, "-l", "mse", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert check(out.read_text(encoding="utf-8"))


def test_format_option_beats_the_extension(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    run("eval", data, "-l", "mse", "-o", out, "-f", "csv")
    assert out.read_text().startswith("name,spec")


# --- stderr: warnings, --quiet, progress --------------------------------------------------------


def test_quiet_silences_warnings(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("y_true,y_pred\n")
    loud = run("eval", path, "-l", "mse", "-f", "json")
    assert "warning: no rows" in loud.stderr
    quiet = run("eval", path, "-l", "mse", "-f", "json", "-q")
    assert quiet.stderr == "" and json.loads(quiet.stdout)["warnings"] == ["no rows: every value is undefined"]


def test_no_progress_bar_off_a_terminal(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "--chunk-size", "1", "-f", "json")
    assert result.stderr == ""
    assert ProgressBar.for_terminal(quiet=False).enabled is False  # CliRunner's stderr is no terminal


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_bar_redraws_a_few_times_a_second() -> None:
    clock = FakeClock()
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=80)
    bar = ProgressBar(True, delay=0.5, interval=0.25, clock=clock, console=console)
    for _ in range(40):  # 0.4 s of fast chunks: a short run shows nothing
        clock.now += 0.01
        bar(1000)
    assert bar.redraws == 0 and buf.getvalue() == ""
    for _ in range(1000):  # 10 more seconds, a chunk every 10 ms
        clock.now += 0.01
        bar(1000)
    bar.close()
    assert 30 <= bar.redraws <= 41  # ~4 a second, not 1000
    assert bar.rows == 1_040_000
    assert "rows" in buf.getvalue()


def test_progress_bar_costs_nothing_measurable() -> None:
    bar = ProgressBar(True, delay=1e9)  # enabled, never due: the per-chunk cost is a clock read
    start = time.perf_counter()
    for _ in range(100_000):
        bar(65_536)
    per_call = (time.perf_counter() - start) / 100_000
    assert per_call < 5e-6, per_call  # vs milliseconds per 64k-row chunk
    disabled = ProgressBar(False)
    disabled(5)
    assert disabled.rows == 5 and disabled.redraws == 0


# --- the README's CI example works -------------------------------------------------------------------


def _ci_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Use in CI")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _workflow_runs() -> list[str]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", _ci_section(), re.MULTILINE | re.DOTALL)
    assert blocks, "no yaml block in 'Use in CI'"
    return [m.strip() for m in re.findall(r"^\s*-?\s*run:\s*(.+)$", blocks[0], re.MULTILINE)]


def test_readme_ci_example_uses_checks_and_the_step_summary() -> None:
    gates = [r for r in _workflow_runs() if r.startswith("lossctl eval")]
    assert gates, "no 'run: lossctl eval' step"
    for gate in gates:
        assert "--check" in gate
        assert re.search(r'-f markdown >> "?\$GITHUB_STEP_SUMMARY"?$', gate)


def test_readme_ci_example_runs_as_github_would(tmp_path: Path) -> None:
    # As the runner does: bash, lossctl on PATH, $GITHUB_STEP_SUMMARY a file to append to.
    bin_dir = Path(sys.executable).parent
    if shutil.which("bash") is None or not (bin_dir / "lossctl").exists():
        pytest.skip("needs bash and the lossctl console script next to the interpreter")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "GITHUB_STEP_SUMMARY": str(summary)}
    for gate in (r for r in _workflow_runs() if r.startswith("lossctl eval")):
        done = subprocess.run(["bash", "-e", "-c", gate], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
    md = summary.read_text(encoding="utf-8")
    assert md.startswith("earlier step\n### ✅ lossctl: all 2 checks passed")
    assert len(_tables(md)) == 2


def test_readme_ci_example_fails_the_job_when_a_gate_fails(tmp_path: Path) -> None:
    gate = next(r for r in _workflow_runs() if r.startswith("lossctl eval"))
    args = shlex.split(gate.split(">>")[0])[1:]
    strict = [a.replace(">= 0.8", ">= 0.99") for a in args]
    result = CliRunner().invoke(cli, strict)
    assert result.exit_code == 1
    assert result.stdout.startswith("### ❌ lossctl: 1 of 2 checks failed")

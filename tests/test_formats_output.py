"""Output formats (SPEC section 5): csv, markdown, junit next to table and json; -o (repeatable), --quiet, progress."""

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
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import xmlschema
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
# Validated against the common JUnit schema: tests/data/JUnit.xsd is the Apache Ant / Windy
# Road JUnit.xsd (see tests/data/README.md for its source and licence).

JUNIT_XSD = xmlschema.XMLSchema(ROOT / "tests" / "data" / "JUnit.xsd")


def validate_junit(text: str) -> ET.Element:
    """Valid against the XSD, with counts that match the test cases."""
    JUNIT_XSD.validate(text)
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    for suite in root:
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        for outcome in ("failure", "error", "skipped"):
            counted = suite.attrib.get(outcome + "s" if outcome != "skipped" else "skipped", "0")
            assert int(counted) == sum(c.find(outcome) is not None for c in cases), outcome
    return root


def test_the_validator_rejects_what_the_schema_forbids() -> None:
    good = to_junit_text()
    validate_junit(good)
    for bad in (
        good.replace('tests="1"', 'tests="one"'),  # not an integer
        good.replace("<properties>", "<props>").replace("</properties>", "</props>"),  # unknown element
        re.sub(r' hostname="[^"]*"', "", good),  # a required attribute missing
        re.sub(r'timestamp="([^"]*)"', r'timestamp="\1Z"', good),  # a time zone
    ):
        with pytest.raises(xmlschema.XMLSchemaValidationError):
            JUNIT_XSD.validate(bad)


def to_junit_text() -> str:
    from lossctl.api import evaluate
    from lossctl.render.junit import to_junit

    return to_junit(evaluate(str(ROOT / "sample_data" / "regression.csv"), loss="mse", checks="mse < 100"))


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


def test_junit_without_checks_has_one_test_case_per_result(data: Path, tmp_path: Path) -> None:
    root = validate_junit(run("eval", data, "-l", "mse", "-m", "mae,r2", "-f", "junit").stdout)
    cases = root.findall("testsuite/testcase")
    assert [c.attrib["name"] for c in cases] == ["mse (mean_squared_error)", "mae (mean_absolute_error)", "r2 (r2_score)"]
    assert all(len(c) == 0 for c in cases)  # passed
    assert root.find("testsuite").attrib["tests"] == "3"  # type: ignore[union-attr]  # present: validated above
    constant = tmp_path / "constant.csv"
    constant.write_text("y_true,y_pred\n1,1\n1,2\n")  # R² of a constant target is undefined
    root = validate_junit(run("eval", constant, "-l", "mse", "-m", "r2", "-f", "junit").stdout)
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert [c.attrib["name"] for c in skipped] == ["r2 (r2_score)"]
    assert "undefined" in skipped[0].find("skipped").attrib["message"]  # type: ignore[union-attr]  # found above


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


def test_several_outputs_in_one_pass(tmp_path: Path) -> None:
    # Standard input can be read once: three outputs from three passes could not all hold the result.
    text = "y_true,y_pred\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(Y, P, strict=True))
    outs = [tmp_path / "r.json", tmp_path / "summary.md", tmp_path / "junit.xml", tmp_path / "r.csv", tmp_path / "r.txt"]
    args = ["eval", "-", "-l", "mse", "-c", "mse < 100"] + [a for o in outs for a in ("-o", str(o))] + ["-o", "-", "-f", "csv"]
    result = CliRunner().invoke(cli, args, input=text)
    assert result.exit_code == 0, result.stderr
    assert json.loads(outs[0].read_text())["results"][0]["value"] == MSE
    assert outs[1].read_text().startswith("### ✅ lossctl: 1 check passed")
    assert validate_junit(outs[2].read_text()).find("testsuite/testcase").attrib["name"] == "mse < 100"  # type: ignore[union-attr]  # validated
    assert float(next(csv.DictReader(io.StringIO(outs[3].read_text())))["value"]) == MSE
    assert "mse (mean_squared_error)" in outs[4].read_text() and "\x1b" not in outs[4].read_text()
    assert result.stdout.startswith("name,spec,kind,value")  # -o - with -f csv
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(o.name for o in outs)  # no "-", no temporary file


def test_dash_is_standard_output(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("eval", data, "-l", "mse", "-o", "-", "-f", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["results"][0]["spec"] == "mse"
    assert not (tmp_path / "-").exists()


def test_format_option_applies_to_stdout_and_to_unknown_extensions(data: Path, tmp_path: Path) -> None:
    out, other = tmp_path / "out.json", tmp_path / "out.result"
    result = run("eval", data, "-l", "mse", "-o", out, "-o", other, "-f", "csv")
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text())["results"][0]["spec"] == "mse"  # the extension wins
    assert other.read_text().startswith("name,spec")  # -f for a file whose extension names no format
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "OUT/a.json", "-f", "csv"], "-f csv applies to no output"),
        (["-o", "OUT/a.json", "-o", "OUT/a.json"], "given twice"),
        (["-o", "-", "-o", "-"], "-o - given twice"),
        (["-o", "OUT/a.json", "--per-row", "OUT/a.json"], "is also -o"),
        (["-o", "OUT/rows.csv", "--save-state", "OUT/rows.csv"], "is also -o"),
        (["-o", "OUT/missing/a.json"], "cannot write"),
        (["-o", "OUT"], "is a directory"),
    ],
)
def test_impossible_outputs_are_refused_before_reading(data: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = run("eval", data, "-l", "mse", *[a.replace("OUT", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.csv"]


def test_an_extension_the_command_cannot_write_is_refused(tmp_path: Path) -> None:
    result = run("worst", ROOT / "sample_data" / "regression.csv", "-l", "mse", "-o", tmp_path / "w.md")
    assert result.exit_code == 2 and "does not write markdown" in result.stderr
    result = run("inspect", ROOT / "sample_data" / "regression.csv", "-o", tmp_path / "i.json", "-o", tmp_path / "i.txt")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "i.json").read_text())["rows"] == 3000
    assert "y_true" in (tmp_path / "i.txt").read_text()


def test_a_data_error_still_writes_the_ci_reports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("y_true,y_pred\n1,2\n1,nan\n")
    junit, md, js = tmp_path / "r.xml", tmp_path / "r.md", tmp_path / "r.json"
    js.write_text("old")
    result = run("eval", bad, "-l", "mse", "-c", "mse < 1", "-o", junit, "-o", md, "-o", js)
    assert result.exit_code == 3
    assert len(result.stderr.splitlines()) == 1 and "NaN" in result.stderr
    root = validate_junit(junit.read_text())
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.attrib["type"] == "DataError" and "NaN" in error.attrib["message"]
    assert md.read_text().startswith("### ❌ lossctl: data error") and "NaN" in md.read_text()
    assert js.read_text() == "old"  # whole or not at all: the JSON keeps its old content
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    piped = run("eval", bad, "-l", "mse", "-f", "markdown")  # `-f markdown >> $GITHUB_STEP_SUMMARY`
    assert piped.exit_code == 3 and piped.stdout.startswith("### ❌ lossctl: data error")
    assert run("eval", bad, "-l", "mse", "-f", "json").stdout == ""


def test_files_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    from lossctl.errors import UsageProblem
    from lossctl.outfile import write_whole

    kept = tmp_path / "kept.json"
    kept.write_text("old")
    with pytest.raises(UsageProblem, match="cannot write"):
        write_whole({str(kept): "new", str(tmp_path / "gone" / "x.csv"): "y"})
    assert kept.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]
    write_whole({str(kept): "new", str(tmp_path / "b.md"): "b"})
    assert kept.read_text() == "new" and (tmp_path / "b.md").read_text() == "b"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "b.md").stat().st_mode & 0o777 == 0o666 & ~umask


def test_merge_takes_the_same_outputs(tmp_path: Path) -> None:
    states = []
    for i in (0, 1):
        state = tmp_path / f"part-{i}.lcstate"
        shard = ROOT / "sample_data" / "shards" / f"part-{i}.parquet"
        assert run("eval", shard, "-l", "mse", "--save-state", state, "-q", "-f", "json").exit_code == 0
        states.append(state)
    js, junit = tmp_path / "m.json", tmp_path / "m.xml"
    result = run("merge", *states, "-o", js, "-o", junit)
    assert result.exit_code == 0, result.stderr
    assert json.loads(js.read_text())["input"]["rows"] == 3000
    assert validate_junit(junit.read_text()).find("testsuite").attrib["tests"] == "1"  # type: ignore[union-attr]  # validated
    assert run("merge", *states, "-o", states[0]).exit_code == 2  # never over an input
    states[1].write_bytes(states[1].read_bytes()[:40])
    broken = run("merge", *states, "-o", junit)
    assert broken.exit_code == 3
    assert validate_junit(junit.read_text()).find("testsuite/testcase/error") is not None


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


def test_progress_bar_with_a_known_total_shows_it_with_an_eta() -> None:
    clock = FakeClock()
    buf = io.StringIO()
    bar = ProgressBar(True, delay=0.5, interval=0.25, clock=clock, console=Console(file=buf, force_terminal=True, width=120))
    bar.expect(1_000_000)
    for _ in range(400):  # 100,000 rows a second: 4 s in, 6 s to go
        clock.now += 0.01
        bar(1000)
    shown = buf.getvalue()
    bar.close()
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r", "\n").strip().splitlines()[-1]
    match = re.search(r"(\d+)% ([\d,]+)/1,000,000 rows .*ETA 0:00:0(\d)", last)
    assert match, last
    done = int(match.group(2).replace(",", ""))
    assert 350_000 <= done <= 400_000 and int(match.group(1)) == done // 10_000
    assert 5 <= int(match.group(3)) <= 7  # 100,000 rows a second, ~6 s to go


class Counting:
    def __init__(self) -> None:
        self.expected: list[int | None] = []
        self.rows = 0

    def expect(self, total: int | None) -> None:
        self.expected.append(total)

    def __call__(self, rows: int) -> None:
        self.rows += rows


@pytest.mark.parametrize(("name", "known"), [("regression.parquet", True), ("regression.csv", False)])
def test_the_engine_tells_the_row_count_when_the_input_knows_it(name: str, known: bool) -> None:
    from lossctl.api import run as run_request
    from lossctl.request import Request

    counting = Counting()
    evaluation = run_request(Request(files=(str(ROOT / "sample_data" / name),), losses=("mse",), chunk_size=500), on_chunk=counting)
    assert counting.expected == [3000 if known else None]
    assert counting.rows == evaluation.input.rows == 3000
    plain: list[int] = []  # a plain function still works: no expect() to call
    run_request(Request(files=(str(ROOT / "sample_data" / name),), losses=("mse",)), on_chunk=plain.append)
    assert sum(plain) == 3000


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


# --- per-class values: scikit-learn's classification_report in the table and markdown ---------------


def _classification_report() -> tuple[Any, Any, Any, Any]:
    import pyarrow.parquet as pq
    from sklearn.metrics import precision_recall_fscore_support

    t = pq.read_table(ROOT / "sample_data" / "multiclass.parquet")
    y = t.column("label").to_numpy()
    decided = np.argmax(np.stack(t.column("probs").to_numpy(zero_copy_only=False)), axis=1)
    return precision_recall_fscore_support(y, decided, average=None)


def test_per_class_values_show_in_table_and_markdown() -> None:
    precision, recall, f1, support = _classification_report()
    args = ["eval", ROOT / "sample_data" / "multiclass.parquet", "-m", "precision,recall,f1", "--no-config"]
    doc = json.loads(run(*args, "-f", "json").stdout)
    assert doc["results"][0]["per_class"] == pytest.approx(list(precision), rel=1e-12)
    assert doc["results"][0]["support"] == list(map(float, support))
    table = run(*args, "-f", "table").stdout
    section = table[table.index("per class"):]
    rows = [line.strip("│ ").split("│") for line in section.splitlines() if re.match(r"^│\s+\d+ ", line)]
    assert len(rows) == len(support) == 10
    for k, row in enumerate(rows):
        cells = [float(c) for c in row]
        assert cells[0] == k
        assert cells[1:4] == pytest.approx([precision[k], recall[k], f1[k]], rel=1e-5)
        assert cells[4] == support[k]
    md = run(*args, "-f", "markdown").stdout
    results, classes = _tables(md)
    assert classes[0] == ["class", "precision", "recall", "f1 (f1_score)", "support"]
    assert [float(c) for c in classes[3][1:]] == pytest.approx([precision[2], recall[2], f1[2], support[2]], rel=1e-5)


def test_no_per_class_section_without_per_class_values(data: Path) -> None:
    assert "per class" not in run("eval", data, "-l", "mse", "-f", "table").stdout
    assert "Per class" not in run("eval", ROOT / "sample_data" / "binary.csv", "-m", "precision", "-f", "markdown").stdout

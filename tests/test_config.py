"""Config defaults: lossctl.toml, [tool.lossctl] in pyproject.toml, --config, and overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from lossctl.cli.main import cli
from lossctl.config import FORMATS, Config, load_config
from lossctl.errors import UsageProblem
from lossctl.render import FORMATS as RENDER_FORMATS

Y = np.array([1.0, 2.0, 4.0, 8.0])
P = np.array([1.5, 2.0, 3.0, 9.0])
W = np.array([1.0, 2.0, 1.0, 0.5])


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with data whose columns need naming (label/score/w)."""
    (tmp_path / "preds.csv").write_text(
        "label,score,w\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(Y, P, W, strict=True))
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def values(result: Result) -> dict[str, float | None]:
    assert result.exit_code in (0, 1), result.stderr
    return {r["spec"]: r["value"] for r in json.loads(result.stdout)["results"]}


def test_formats_match_the_renderers() -> None:
    assert FORMATS == RENDER_FORMATS


def test_no_config_file_is_an_empty_config(project: Path) -> None:
    assert load_config() == Config()


def test_lossctl_toml_sets_defaults(project: Path) -> None:
    (project / "lossctl.toml").write_text(
        'losses = ["mse"]\nmetrics = "mae"\nchecks = ["mse < 1"]\nformat = "json"\n'
        '[columns]\ntrue = "label"\npred = "score"\nweight = "w"\n'
    )
    result = run("eval", "preds.csv")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # format = json from the config
    mse = float(np.sum(W * (P - Y) ** 2) / W.sum())
    assert [r["spec"] for r in doc["results"]] == ["mse", "mae"]
    assert doc["results"][0]["value"] == pytest.approx(mse)
    assert doc["input"]["columns"]["weight"]["columns"] == ["w"]
    assert doc["checks"][0]["expr"] == "mse < 1" and doc["passed"] is True


def test_pyproject_tool_table(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.lossctl]\nmetrics = ["mae"]\nchecks = ["mae < 0.1"]\n'
        '[tool.lossctl.columns]\ntrue = "label"\npred = "score"\n'
    )
    result = run("eval", "preds.csv", "-f", "json")
    assert result.exit_code == 1  # mae is 0.5: the configured gate fails
    doc = json.loads(result.stdout)
    assert doc["results"][0]["value"] == pytest.approx(np.mean(np.abs(P - Y)))
    assert doc["checks"][0]["passed"] is False


def test_pyproject_without_a_tool_table_is_ignored(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config() == Config()


def test_lossctl_toml_wins_over_pyproject(project: Path) -> None:
    (project / "lossctl.toml").write_text('metrics = ["mae"]\n')
    (project / "pyproject.toml").write_text('[tool.lossctl]\nmetrics = ["rmse"]\n')
    assert load_config().metrics == ("mae",)


def test_options_override_each_key(project: Path) -> None:
    (project / "lossctl.toml").write_text(
        'losses = ["mse"]\nmetrics = ["mae"]\nchecks = ["mse < 0.0001"]\nformat = "markdown"\n'
        '[columns]\ntrue = "label"\npred = "score"\n'
    )
    result = run("eval", "preds.csv", "-l", "huber", "--check", "huber < 1", "-f", "json", "--pred", "label", "--true", "score")
    got = values(result)
    assert list(got) == ["huber", "mae"]  # --loss replaced losses; metrics still from the config
    assert json.loads(result.stdout)["checks"][0]["expr"] == "huber < 1"  # --check replaced checks
    assert json.loads(result.stdout)["input"]["columns"]["y_true"]["columns"] == ["score"]
    assert result.exit_code == 0


def test_explicit_config_file(project: Path) -> None:
    (project / "gates.toml").write_text('metrics = ["rmse"]\n[columns]\ntrue = "label"\npred = "score"\n')
    got = values(run("eval", "preds.csv", "--config", "gates.toml", "-f", "json"))
    assert got == {"rmse": pytest.approx(np.sqrt(np.mean((P - Y) ** 2)))}


def test_explicit_pyproject(project: Path) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "pyproject.toml").write_text('[tool.lossctl]\nmetrics = ["mae"]\n[tool.lossctl.columns]\ntrue = "label"\npred = "score"\n')
    got = values(run("eval", "preds.csv", "--config", "sub/pyproject.toml", "-f", "json"))
    assert list(got) == ["mae"]


def test_no_config_ignores_the_file(project: Path) -> None:
    (project / "lossctl.toml").write_text('metrics = ["mae"]\nchecks = ["mae < 0"]\n')
    got = values(run("eval", "preds.csv", "--no-config", "--true", "label", "--pred", "score", "-l", "mse", "-f", "json"))
    assert list(got) == ["mse"]


def test_config_columns_apply_to_inspect(project: Path) -> None:
    (project / "lossctl.toml").write_text('[columns]\ntrue = "label"\npred = "score"\n')
    result = run("inspect", "preds.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["columns"]["y_pred"]["columns"] == ["score"]


# --- a bad config is exit 2 naming the key --------------------------------------


def assert_usage(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('metrcs = ["mae"]\n', ("lossctl.toml", "unknown key 'metrcs'", "did you mean 'metrics'")),
        ("metrics = 3\n", ("lossctl.toml", "'metrics' must be a list of strings", "integer")),
        ('metrics = ["mae", 2]\n', ("'metrics[1]' must be a string",)),
        ('metrics = [""]\n', ("'metrics[0]' is empty",)),
        ('metrics = ["maee"]\n', ("lossctl.toml", "'metrics'", "unknown loss or metric 'maee'")),
        ('losses = ["huber:delta=-1"]\n', ("'losses'", "delta")),
        ('checks = ["mae <"]\n', ("lossctl.toml", "'checks[0]'", "NAME OP NUMBER")),
        ('format = "html"\n', ("lossctl.toml", "'format' must be one of", "'html'")),
        ('columns = "label"\n', ("'columns' must be a table",)),
        ('[columns]\ntrue = "label"\nprediction = "score"\n', ("unknown key 'columns.prediction'", "true, pred, weight")),
        ("[columns]\ntrue = 1\n", ("'columns.true' must be a column name",)),
        ("metrics = = 1\n", ("lossctl.toml", "not valid TOML", "line 1")),
        ('metrics = ["mae"\nlosses = 1\n', ("lossctl.toml", "not valid TOML")),
    ],
)
def test_bad_config(project: Path, text: str, fragments: tuple[str, ...]) -> None:
    (project / "lossctl.toml").write_text(text)
    assert_usage(run("eval", "preds.csv", "-l", "mse", "--true", "label", "--pred", "score"), *fragments)


def test_bad_pyproject_tool_table_names_the_section(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.lossctl]\nmetric = ["mae"]\n')
    assert_usage(run("eval", "preds.csv"), "pyproject.toml [tool.lossctl]", "unknown key 'metric'")


def test_missing_explicit_config(project: Path) -> None:
    assert_usage(run("eval", "preds.csv", "--config", "nope.toml"), "nope.toml", "no such config file")


def test_explicit_pyproject_needs_the_table(project: Path) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert_usage(run("eval", "preds.csv", "--config", "pyproject.toml"), "no [tool.lossctl] table")


def test_config_and_no_config_together(project: Path) -> None:
    assert_usage(run("eval", "preds.csv", "--config", "x.toml", "--no-config"), "exclude each other")


def test_binary_config(project: Path) -> None:
    (project / "lossctl.toml").write_bytes(b"\xff\xfe\x00metrics")
    assert_usage(run("eval", "preds.csv"), "lossctl.toml", "not valid TOML")


def test_load_config_raises_usage_problem(project: Path) -> None:
    (project / "lossctl.toml").write_text("format = 1\n")
    with pytest.raises(UsageProblem, match="'format'"):
        load_config()


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_config_that_is_no_regular_file_is_refused_at_once(device: str) -> None:
    import os
    import time

    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    began = time.monotonic()
    result = run("eval", "sample_data/regression.csv", "-l", "mse", "--config", device)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"lossctl: {device}: not a regular file; a config file must be one"
    assert time.monotonic() - began < 5


def test_a_config_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "lossctl.toml"
    os.mkfifo(fifo)
    with pytest.raises(UsageProblem, match="not a regular file"):
        load_config(str(fifo))


def test_a_config_over_one_mib_or_nested_too_deep_is_a_usage_error(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * ((1 << 20) // 10) + "losses = ['mse']\n")
    assert big.stat().st_size > 1 << 20
    with pytest.raises(UsageProblem, match="larger than 1 MiB"):
        load_config(str(big))
    fits = tmp_path / "fits.toml"
    fits.write_text("# padding\n" * 100_000 + "losses = ['mse']\n")
    assert load_config(str(fits)).losses == ("mse",)
    deep = tmp_path / "deep.toml"
    deep.write_text("losses = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(UsageProblem, match="nested too deeply"):
        load_config(str(deep))

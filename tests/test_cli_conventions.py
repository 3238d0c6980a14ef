"""Conventions users bring from click, rich, csvkit and sqlite-utils (issue: a command line that behaves).

`lossctl` alone prints the help; shell completion completes files and
registry names (through Click's own completion API, no shell needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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


# --- shell completion, through Click's completion API (no shell needed) -----------------------


def complete(args: list[str], incomplete: str) -> list[tuple[str, str]]:
    """``(type, value)`` of what ``lossctl ARGS INCOMPLETE<TAB>`` offers."""
    from click.shell_completion import ShellComplete

    completer = ShellComplete(cli, {}, "lossctl", "_LOSSCTL_COMPLETE")
    return [(item.type, item.value) for item in completer.get_completions(args, incomplete)]


def values(args: list[str], incomplete: str) -> list[str]:
    return [value for kind, value in complete(args, incomplete) if kind == "plain"]


def all_names() -> set[str]:
    from lossctl.registry import entries

    return {n for e in entries() for n in e.names}


@pytest.mark.parametrize("command", ["eval", "inspect", "worst"])
def test_file_arguments_complete_file_names(command: str) -> None:
    assert complete([command], "sample_da") == [("file", "sample_da")]


def test_merge_states_and_output_files_complete_file_names() -> None:
    assert complete(["merge"], "part") == [("file", "part")]
    assert complete(["eval", "x.csv", "-o"], "res") == [("file", "res")]
    assert complete(["eval", "x.csv", "--save-state"], "s") == [("file", "s")]
    assert complete(["eval", "x.csv", "--config"], "l") == [("file", "l")]


@pytest.mark.parametrize("option", ["--loss", "-l", "--metric", "-m"])
def test_loss_and_metric_names_complete_from_the_registry(option: str) -> None:
    offered = values(["eval", "x.csv", option], "hu")
    expected = sorted(n for n in all_names() if n.lower().startswith("hu"))
    assert offered == expected and "huber" in offered
    # Case and '-' / '_' do not matter; aliases and Keras 2 names are offered too.
    assert "sparse_categorical_crossentropy" in values(["eval", option], "Sparse-Cat")
    assert "logcosh" in values(["eval", option], "logc")
    assert values(["eval", option], "") == sorted(all_names())


def test_the_last_item_of_a_comma_list_completes() -> None:
    assert "mse,huber" in values(["eval", "--loss"], "mse,hub")
    assert all(v.startswith("mse,") for v in values(["eval", "--loss"], "mse,"))


def test_parameters_complete_after_a_colon() -> None:
    assert values(["eval", "--loss"], "huber:") == ["huber:delta=", "huber:reduction="]
    assert values(["eval", "--loss"], "huber:delta=2:") == ["huber:delta=2:reduction="]
    assert values(["eval", "--loss"], "huber:re") == ["huber:reduction="]
    assert values(["eval", "--loss"], "huber:reduction=s") == ["huber:reduction=sum_over_batch_size", "huber:reduction=sum"]
    assert values(["eval", "--metric"], "mse,f1:average=") == [f"mse,f1:average={a}" for a in ("macro", "micro", "weighted", "samples")]
    assert values(["eval", "--loss"], "bce:from_logits=t") == ["bce:from_logits=true"]
    assert values(["eval", "--loss"], "no_such_loss:") == []


def test_checks_complete_names_then_operators() -> None:
    assert "auc" in values(["eval", "x.csv", "--check"], "au")
    assert values(["eval", "--check"], "auc ") == [f"auc {op} " for op in ("<", "<=", ">", ">=", "==", "!=")]
    assert values(["eval", "--check"], "auc >") == ["auc > ", "auc >= "]
    assert values(["merge", "s.lcstate", "-c"], "rms") == ["rmse"]


def test_explain_and_worst_complete_names() -> None:
    assert "huber" in values(["explain"], "hub")
    assert values(["explain"], "HUBER") == ["huber", "huber_loss"]
    assert "huber:delta=" in values(["worst", "x.csv", "--loss"], "huber:")


def test_columns_complete_from_the_files_given() -> None:
    offered = complete(["eval", "sample_data/multiclass.csv", "--pred"], "prob_1")
    assert offered[0] == ("file", "prob_1")  # a file name works too (PATH or PATH:COL)
    assert [v for k, v in offered[1:]] == ["prob_1"]
    header = Path("sample_data/binary.csv").read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",")
    assert [v for _, v in complete(["eval", "sample_data/binary.csv", "--true"], "")[1:]] == header
    assert complete(["eval", "no/such.csv", "--weight"], "w") == [("file", "w")]
    assert complete(["eval", "--true"], "") == [("file", "")]
    # Options before and between the FILEs do not count as FILEs.
    words = ["eval", "-l", "mse", "sample_data/binary.csv", "--chunk-size", "10", "--weight"]
    assert [v for _, v in complete(words, "")[1:]] == header


def test_completion_through_the_environment_as_a_shell_calls_it() -> None:
    env = {**os.environ, "_LOSSCTL_COMPLETE": "bash_complete", "COMP_WORDS": "lossctl explain hube", "COMP_CWORD": "2"}
    done = subprocess.run([sys.executable, "-m", "lossctl"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plain,huber", "plain,huber_loss"]
    source = subprocess.run(
        [sys.executable, "-m", "lossctl"], env={**os.environ, "_LOSSCTL_COMPLETE": "bash_source"},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert source.returncode == 0 and "_LOSSCTL_COMPLETE=bash_complete" in source.stdout


# --- a parameter that cannot apply says so (SPEC section 3) ------------------------------------------


def test_average_on_one_probability_column_warns_without_changing_the_number(tmp_path: Path) -> None:
    import csv

    from sklearn.metrics import f1_score

    rows = list(csv.DictReader(Path("sample_data/binary.csv").read_text(encoding="utf-8").splitlines()))
    y = [int(r["label"]) for r in rows]
    decided = [int(float(r["score"]) > 0.5) for r in rows]
    result = CliRunner().invoke(cli, ["eval", "sample_data/binary.csv", "-m", "f1:average=macro,f1", "-f", "json", "--no-config"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    asked, plain = doc["results"]
    assert asked["value"] == plain["value"] == pytest.approx(f1_score(y, decided), rel=1e-12)  # Keras's positive-class F1
    assert asked["value"] != pytest.approx(f1_score(y, decided, average="macro"), rel=1e-6)
    [warning] = doc["warnings"]
    assert warning.startswith("f1:average=macro: average=macro does not apply to one y_pred column")
    assert "--pred p0,p1" in warning
    assert f"lossctl: warning: {warning}" in result.stderr.splitlines()
    # Given both classes' probabilities, average=macro is scikit-learn's macro F1, and nothing to warn about.
    two = tmp_path / "two.csv"
    two.write_text("label,p0,p1\n" + "".join(f"{r['label']},{1 - float(r['score'])!r},{float(r['score'])!r}\n" for r in rows))
    result = CliRunner().invoke(cli, ["eval", str(two), "--pred", "p0,p1", "-m", "f1:average=macro", "-f", "json", "--no-config"])
    doc = json.loads(result.stdout)
    assert doc["warnings"] == [] and result.stderr == ""
    scores = [float(r["score"]) for r in rows]
    argmax = [int(s > 1 - s) for s in scores]
    assert doc["results"][0]["value"] == pytest.approx(f1_score(y, argmax, average="macro"), rel=1e-12)


def test_merge_warns_as_eval_does(tmp_path: Path) -> None:
    state = tmp_path / "s.lcstate"
    saved = CliRunner().invoke(cli, ["eval", "sample_data/binary.csv", "-m", "precision:average=weighted", "--save-state", str(state), "-q", "-f", "json"])
    assert saved.exit_code == 0, saved.stderr
    merged = CliRunner().invoke(cli, ["merge", str(state), "-f", "json"])
    assert merged.exit_code == 0, merged.stderr
    assert json.loads(merged.stdout)["warnings"][0].startswith("precision:average=weighted: average=weighted does not apply")


def test_explain_says_where_a_parameter_applies() -> None:
    text = CliRunner().invoke(cli, ["explain", "f1"]).stdout
    assert "applies only to several classes" in text and "positive class" in text
    info = json.loads(CliRunner().invoke(cli, ["explain", "f1", "--json"]).stdout)
    average = next(p for p in info["params"] if p["name"] == "average")
    assert average["applies"].startswith("applies only to several classes")
    assert "applies" not in next(p for p in info["params"] if p["name"] == "threshold")

"""``--check`` quality gates: parsing, binding names to results, judging, exit codes."""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

import lossctl
from lossctl.checks import Check, bind_checks, judge, parse_check
from lossctl.cli.main import cli
from lossctl.errors import UsageProblem
from lossctl.registry import entries, resolve_all

Y = np.array([1.0, 3.0, 5.0, 7.0])
P = np.array([2.0, 3.0, 3.5, 9.0])
MSE = float(np.mean((P - Y) ** 2))  # 1.8125
MAE = float(np.mean(np.abs(P - Y)))  # 1.125


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "preds.csv"
    path.write_text("y_true,y_pred\n" + "".join(f"{a},{b}\n" for a, b in zip(Y, P, strict=True)))
    return path


# --- parsing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "op", "threshold"),
    [
        ("mse < 0.25", "mse", "<", 0.25),
        ("acc>=0.9", "acc", ">=", 0.9),
        ("  r2   >  -0.5 ", "r2", ">", -0.5),
        ("mae <= 1e-3", "mae", "<=", 1e-3),
        ("mse == 0", "mse", "==", 0.0),
        ("mse != 2", "mse", "!=", 2.0),
        ("huber:delta=2 < 1", "huber:delta=2", "<", 1.0),
        ("top_k_categorical_accuracy:k=3>=0.5", "top_k_categorical_accuracy:k=3", ">=", 0.5),
    ],
)
def test_parse(text: str, name: str, op: str, threshold: float) -> None:
    check = parse_check(text)
    assert (check.name, check.op, check.threshold) == (name, op, threshold)


@pytest.mark.parametrize(
    "text",
    ["", "mse", "mse 0.5", "mse <", "< 0.5", "mse < x", "mse = 1", "mse => 1", "mse <> 1", "mse < 1 < 2", "mse < nan", "mse < -inf"],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(UsageProblem, match="--check"):
        parse_check(text)


def test_compare_targets_parse_and_are_for_compare_only() -> None:
    check = parse_check("delta(auc).low > -0.01")
    assert (check.arm, check.name, check.bound, check.threshold) == ("delta", "auc", "low", -0.01)
    assert parse_check("baseline(huber:delta=2) < 1").arm == "baseline"
    assert parse_check("candidate(auc[region=eu]) >= 0.9").scope == "region=eu"
    bound = bind_checks([check], [])[1]
    with pytest.raises(UsageProblem, match="lossctl compare"):
        judge(bound, [object()])


def test_single_equals_gets_a_hint() -> None:
    with pytest.raises(UsageProblem, match="use =="):
        parse_check("mse = 1")


OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


@given(
    op=st.sampled_from(sorted(OPS)),
    value=st.floats(allow_nan=False, allow_infinity=False, width=64),
    threshold=st.floats(allow_nan=False, allow_infinity=False, width=64),
)
def test_holds_compares_unrounded_values(op: str, value: float, threshold: float) -> None:
    check = parse_check(f"m {op} {threshold!r}")
    assert check.threshold == threshold
    assert check.holds(value) is OPS[op](value, threshold)


@pytest.mark.parametrize("op", sorted(OPS))
def test_undefined_never_holds(op: str) -> None:
    check = parse_check(f"m {op} 0")
    assert not check.holds(None)
    assert not check.holds(float("nan"))


def test_no_rounding_at_the_boundary() -> None:
    # 0.2500000001 displays as 0.25 but is not below 0.25.
    assert not parse_check("mse < 0.25").holds(0.2500000001)
    assert parse_check("mse <= 0.25").holds(0.25)


# --- binding names to requested specs -------------------------------------------


def _bind(checks: list[str], losses: tuple[str, ...] = (), metrics: tuple[str, ...] = ()) -> tuple[list[Any], list[Any]]:
    return bind_checks([parse_check(c) for c in checks], resolve_all(losses, metrics))


def test_alias_matches_canonical_request() -> None:
    specs, bound = _bind(["mse < 1"], losses=("mean_squared_error",))
    assert len(specs) == 1 and bound[0].index == 0 and not bound[0].added


def test_canonical_matches_alias_request() -> None:
    specs, bound = _bind(["mean_squared_error < 1", "MSE < 2"], losses=("mse",))
    assert len(specs) == 1 and [b.index for b in bound] == [0, 0]


def test_accuracy_alias_matches() -> None:
    if "accuracy" not in {e.name for e in entries()}:
        pytest.skip("accuracy not registered")
    specs, bound = _bind(["acc >= 0.9"], metrics=("accuracy",))
    assert len(specs) == 1 and bound[0].index == 0


def test_not_requested_name_is_added_once_as_a_metric() -> None:
    specs, bound = _bind(["mae < 1", "mean_absolute_error > 0"], losses=("mse",))
    assert [s.spec for s in specs] == ["mse", "mae"]
    assert specs[1].kind == "metric"
    assert [(b.index, b.added) for b in bound] == [(1, True), (1, True)]


def test_parameters_select_among_specs() -> None:
    specs, bound = _bind(["huber:delta=2 < 1", "huber < 1", "huber:delta=2.0 < 1"], losses=("huber", "huber:delta=2"))
    assert len(specs) == 2
    assert [b.index for b in bound] == [1, 0, 1]


def test_check_with_other_parameters_adds_a_spec() -> None:
    specs, bound = _bind(["huber:delta=3 < 1"], losses=("huber:delta=2",))
    assert [s.spec for s in specs] == ["huber:delta=2", "huber:delta=3"]
    assert specs[1].params["delta"] == 3.0 and bound[0].added


def test_bare_name_against_several_parameterisations_is_ambiguous() -> None:
    with pytest.raises(UsageProblem, match="could mean"):
        _bind(["huber < 1"], losses=("huber:delta=2", "huber:delta=3"))


def test_bad_parameter_in_a_check() -> None:
    with pytest.raises(UsageProblem, match="--check 'huber:delta=-1 < 1'"):
        _bind(["huber:delta=-1 < 1"])


def test_judge_uses_the_bound_result() -> None:
    class R:
        def __init__(self, name: str, value: float | None, note: str | None = None) -> None:
            self.name, self.spec, self.value, self.note = name, name, value, note

    _, bound = _bind(["mse < 1", "mse > 1", "mae < 1"], losses=("mse",), metrics=("mae",))
    out = judge(bound, [R("mean_squared_error", 1.5), R("mean_absolute_error", None, "no rows")])
    assert [c["passed"] for c in out] == [False, True, False]
    assert out[0]["value"] == 1.5 and out[0]["threshold"] == 1.0 and out[0]["op"] == "<"
    assert "has no value (no rows)" in out[2]["note"] and "undefined value fails" in out[2]["note"]
    assert out[0]["metric"] == "mean_squared_error"


# --- end to end --------------------------------------------------------------------


def test_all_pass_exit_0(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "--check", f"mse <= {MSE}", "--check", "mse > 1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] is True
    assert [c["passed"] for c in doc["checks"]] == [True, True]
    assert doc["checks"][0]["value"] == pytest.approx(MSE, rel=1e-15)
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("expr", "passes"),
    [
        (f"mse < {MSE}", False),
        (f"mse <= {MSE}", True),
        (f"mse > {MSE}", False),
        (f"mse >= {MSE}", True),
        (f"mse == {MSE}", True),
        (f"mse != {MSE}", False),
        ("mean_squared_error < 2", True),
        ("MSE > 2", False),
    ],
)
def test_each_operator_end_to_end(data: Path, expr: str, passes: bool) -> None:
    result = run("eval", data, "-l", "mse", "--check", expr, "-f", "json")
    assert result.exit_code == (0 if passes else 1), result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] is passes and doc["checks"][0]["passed"] is passes
    if not passes:
        assert f"check failed: {' '.join(expr.split())}" in result.stderr


def test_one_failure_fails_the_run(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "-c", "mse < 10", "-c", "mse < 1", "-f", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["passed"] is False
    assert [c["passed"] for c in doc["checks"]] == [True, False]
    assert "mse = 1.8125 does not satisfy < 1.0" in doc["checks"][1]["note"]
    assert result.stderr.count("check failed") == 1


def test_not_requested_name_is_evaluated(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "--check", "mae < 2", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["name"] for r in doc["results"]] == ["mean_squared_error", "mean_absolute_error"]
    assert doc["results"][1]["value"] == pytest.approx(MAE)
    assert doc["checks"][0]["added"] is True and doc["checks"][0]["metric"] == "mean_absolute_error"


def test_checks_alone_evaluate_their_names(data: Path) -> None:
    result = run("eval", data, "--check", "mae < 2", "--check", "rmse < 2", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [r["spec"] for r in doc["results"]] == ["mae", "rmse"]
    assert doc["results"][1]["value"] == pytest.approx(np.sqrt(MSE))


def test_quiet_silences_the_failure_lines(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "--check", "mse < 1", "-q", "-f", "json")
    assert result.exit_code == 1
    assert result.stderr == ""


def test_table_has_a_pass_fail_section(data: Path) -> None:
    result = run("eval", data, "-l", "mse", "-c", "mse < 10", "-c", "mse < 1", "-c", "mae < 2", "-f", "table")
    assert result.exit_code == 1
    out = result.stdout
    assert "checks" in out
    rows = [line for line in out.splitlines() if line.startswith("│") and ("mse < 1" in line or "mae < 2" in line)]
    assert len(rows) == 3
    assert "PASS" in rows[0] and "FAIL" in rows[1] and "PASS" in rows[2]
    assert "1 of 3 checks failed: mse < 1" in out
    assert "evaluated for this check" in out


def test_api_takes_checks(data: Path) -> None:
    ev = lossctl.evaluate(str(data), loss="mse", checks=["mse < 1", "mse < 2"])
    assert [c["passed"] for c in ev.checks] == [False, True]
    assert ev.passed is False
    assert ev.to_dict()["passed"] is False


def test_check_object_is_frozen() -> None:
    check = parse_check("mse < 1")
    assert check == Check("mse < 1", "mse", "<", 1.0)
    with pytest.raises(AttributeError):
        check.op = ">"  # type: ignore[misc]  # frozen dataclass: assignment must fail

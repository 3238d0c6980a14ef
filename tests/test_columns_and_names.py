"""Column resolution (SPEC 2) and name/parameter parsing (SPEC 3), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lossctl.cli.main import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["eval", *args])
    return result.exit_code, result.stdout, result.stderr


def write_csv(path: Path, **cols: np.ndarray) -> str:
    pacsv.write_csv(pa.table(cols), path)
    return str(path)


RNG = np.random.default_rng(11)
T = RNG.normal(size=40)
P = T + RNG.normal(size=40)


def mse(t: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((t - p) ** 2))


@pytest.mark.parametrize(("true_name", "pred_name"), [("label", "score"), ("target", "prediction"), ("y", "y_hat"), ("Y_TRUE", "Y_PRED")])
def test_auto_pick_common_names_and_say_so(tmp_path: Path, true_name: str, pred_name: str) -> None:
    path = write_csv(tmp_path / "a.csv", id=np.arange(40), **{true_name: T, pred_name: P})
    code, out, _ = run(path, "--loss", "mse", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["input"]["columns"]["y_true"] == {"source": path, "columns": [true_name], "picked": True, "width": 1}
    assert doc["input"]["columns"]["y_pred"]["columns"] == [pred_name]
    assert doc["results"][0]["value"] == pytest.approx(mse(T, P), rel=1e-12)


def test_picked_columns_are_named_in_the_table(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", label=T, score=P)
    code, out, _ = run(path, "--loss", "mse", "-f", "table")
    assert code == 0
    assert "y_true = label (picked)" in out and "y_pred = score (picked)" in out


def test_two_candidates_for_one_role_is_a_usage_error_listing_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", label=T, target=T, score=P)
    code, out, err = run(path, "--loss", "mse")
    assert code == 2 and out == ""
    assert "'label' and 'target'" in err and "--true" in err and "columns are label, target, score" in err
    assert err.count("\n") == 1


def test_no_candidate_lists_columns_and_suggests_the_flag(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", id=np.arange(40), label=T, foo=P)
    code, _, err = run(path, "--loss", "mse")
    assert code == 2
    assert "columns are id, label, foo" in err and "--pred" in err


@pytest.mark.parametrize(
    ("header", "rows", "role", "expected"),
    [
        ("customer_id,target,yhat_model", ["1,0,0.3", "2,1,0.8"], "--pred", "yhat_model"),
        ("id,row_id,userId,Unnamed: 0,index,label,m1", ["1,2,3,4,5,0,0.5", "2,3,4,5,6,1,0.7"], "--pred", "m1"),
        ("key,label,n_items,model_a", ["7,0,3,0.25", "8,1,4,0.75"], "--pred", "model_a"),  # decimals before integers
        ("session_key,y_pred,outcome", ["7,0.2,1", "8,0.9,0"], "--true", "outcome"),
    ],
)
def test_the_column_suggestion_is_never_an_id(tmp_path: Path, header: str, rows: list[str], role: str, expected: str) -> None:
    path = tmp_path / "preds.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "-l", "mse"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(f"(try {role} {expected})"), result.stderr


def test_no_suggestion_when_only_ids_are_left(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    path.write_text("row,customerId,label\n0,11,1\n1,12,0\n")
    result = CliRunner().invoke(cli, ["eval", str(path), "-l", "mse"])
    assert result.exit_code == 2 and "(try" not in result.stderr
    assert result.stderr.strip().endswith("(name it with --pred COL)")


def test_id_like_names() -> None:
    from lossctl.columns import id_like

    for name in ("id", "ID", "customer_id", "userId", "row", "row_number", "index", "Unnamed: 0", "uuid", "order-key", "idx"):
        assert id_like(name), name
    for name in ("idea", "valid", "width", "keyword_score", "prediction", "y_hat", "rowing", "p_identity"):
        assert not id_like(name), name


def test_missing_named_column_suggests_close_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", label=T, score=P)
    code, _, err = run(path, "--pred", "scroe", "--loss", "mse")
    assert code == 3  # a named column the file lacks is a data error
    assert "no column 'scroe'" in err and "did you mean 'score'" in err and "columns are label, score" in err


def test_explicit_columns_override_auto_pick(tmp_path: Path) -> None:
    other = P * 2
    path = write_csv(tmp_path / "a.csv", label=T, score=P, alt=other)
    code, out, _ = run(path, "--pred", "alt", "--loss", "mse", "-f", "json")
    assert code == 0
    assert json.loads(out)["results"][0]["value"] == pytest.approx(mse(T, other), rel=1e-12)


def test_glob_is_ordered_by_the_number_in_the_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t, p = rng.normal(size=(30, 12)), rng.normal(size=(30, 12))
    cols = {f"t_{i}": t[:, i] for i in range(12)} | {f"p_{i}": p[:, i] for i in range(12)}
    # Write columns in scrambled order: the glob must still order p_2 < p_10.
    order = sorted(cols, key=lambda k: k[::-1])
    path = write_csv(tmp_path / "a.csv", **{k: cols[k] for k in order})
    code, out, _ = run(path, "--true", "t_*", "--pred", "p_*", "--loss", "mse", "-f", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["input"]["columns"]["y_pred"]["columns"] == [f"p_{i}" for i in range(12)]
    # Per-row mean over the last axis equals the mean over all elements: use a position-sensitive check.
    code, out, _ = run(path, "--true", "t_*", "--pred", "p_*", "--metric", "r2:class_aggregation=variance_weighted_average", "-f", "json")
    from sklearn.metrics import r2_score

    assert json.loads(out)["results"][0]["value"] == pytest.approx(r2_score(t, p, multioutput="variance_weighted"), rel=1e-9)


def test_comma_list_of_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t, p = rng.normal(size=(25, 3)), rng.normal(size=(25, 3))
    path = write_csv(tmp_path / "a.csv", a=t[:, 0], b=t[:, 1], c=t[:, 2], x=p[:, 0], y=p[:, 1], z=p[:, 2])
    code, out, _ = run(path, "--true", "a,b,c", "--pred", "x,y,z", "--loss", "mse", "-f", "json")
    assert code == 0
    assert json.loads(out)["results"][0]["value"] == pytest.approx(float(np.mean((t - p) ** 2)), rel=1e-12)


def test_parquet_list_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    t, p = rng.normal(size=(25, 4)), rng.normal(size=(25, 4))
    tbl = pa.table({"y_true": pa.array(list(t)), "y_pred": pa.array(list(p))})  # variable-size list type
    pq.write_table(tbl, tmp_path / "a.parquet")
    code, out, _ = run(str(tmp_path / "a.parquet"), "--loss", "mae", "-f", "json")
    assert code == 0, out
    assert json.loads(out)["results"][0]["value"] == pytest.approx(float(np.mean(np.abs(t - p))), rel=1e-12)


def test_ragged_list_column_is_a_data_error_naming_the_row(tmp_path: Path) -> None:
    tbl = pa.table({"y_true": pa.array([[1.0, 2.0], [1.0, 2.0], [3.0]]), "y_pred": pa.array([[1.0, 2.0]] * 3)})
    pq.write_table(tbl, tmp_path / "a.parquet")
    code, _, err = run(str(tmp_path / "a.parquet"), "--loss", "mae")
    assert code == 3
    assert "row 2" in err and "y_true" in err


def test_true_and_pred_files_of_different_lengths(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", T)
    np.save(tmp_path / "p.npy", P[:30])
    code, out, err = run("--true", str(tmp_path / "t.npy"), "--pred", str(tmp_path / "p.npy"), "--loss", "mse")
    assert code == 3 and out == ""
    assert "t.npy has 40 rows" in err and "p.npy has 30 rows" in err


def test_missing_source_file_is_a_data_error(tmp_path: Path) -> None:
    code, _, err = run("--true", str(tmp_path / "nope.npy"), "--pred", str(tmp_path / "p.npy"), "--loss", "mse")
    assert code == 3 and "nope.npy: no such file" in err


@pytest.mark.parametrize("name", ["MSE", "Mean-Squared-Error", "mean_squared_error", "mse"])
def test_names_are_case_and_dash_insensitive(name: str) -> None:
    code, out, _ = run("sample_data/regression.csv", "--loss", name, "-f", "json")
    assert code == 0 and json.loads(out)["results"][0]["name"] == "mean_squared_error"


def test_comma_lists_and_repeats_keep_order_and_specs() -> None:
    code, out, _ = run("sample_data/regression.csv", "--loss", "mse,huber:delta=2", "--loss", "mae", "--metric", "rmse", "-f", "json")
    assert code == 0
    results = json.loads(out)["results"]
    assert [(r["spec"], r["kind"]) for r in results] == [("mse", "loss"), ("huber:delta=2", "loss"), ("mae", "loss"), ("rmse", "metric")]
    assert results[1]["params"] == {"delta": 2.0, "reduction": "mean"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("msee", "unknown loss or metric 'msee'; did you mean 'mse'?"),
        ("huber:detla=2", "huber: unknown parameter 'detla'; did you mean 'delta'?"),
        ("huber:delta=abc", "huber: bad value 'abc' for parameter 'delta'"),
        ("huber:delta=-1", "huber: bad value '-1' for parameter 'delta'; expected a number in (0, inf)"),
        ("mse:reduction=avg", "bad value 'avg' for parameter 'reduction'"),
        ("huber:delta", "is not key=value"),
        ("mse,,mae", "empty name"),
        ("mse:delta=1", "mean_squared_error: unknown parameter 'delta'"),
    ],
)
def test_bad_names_and_parameters_exit_2_before_reading_data(spec: str, message: str, tmp_path: Path) -> None:
    # The file does not exist: a usage error must be found first (exit 2, not 3).
    code, out, err = run(str(tmp_path / "missing.csv"), "--loss", spec)
    assert code == 2 and out == ""
    assert message in err
    assert err.startswith("lossctl: ") and err.count("\n") == 1 and "Traceback" not in err


def test_boolean_parameter_spellings() -> None:
    from lossctl.params import Param

    p = Param("flag", False, bool)
    assert [p.parse("x", v) for v in ("true", "1", "yes", "FALSE", "0", "no")] == [True, True, True, False, False, False]


def test_missing_file_is_exit_3_one_line(tmp_path: Path) -> None:
    code, out, err = run(str(tmp_path / "nope.parquet"), "--loss", "mse")
    assert code == 3 and out == ""
    assert err == f"lossctl: {tmp_path / 'nope.parquet'}: no such file\n"


def test_unknown_option_is_exit_2_one_line() -> None:
    code, _, err = run("sample_data/regression.csv", "--los", "mse")
    assert code == 2 and err.count("\n") == 1 and "--los" in err


def test_no_metrics_requested_gives_task_defaults() -> None:
    code, out, _ = run("sample_data/regression.csv", "-f", "json")
    assert code == 0
    assert [r["name"] for r in json.loads(out)["results"]] == ["mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "r2_score"]

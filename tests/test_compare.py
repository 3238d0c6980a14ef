"""``lossctl compare``: paired evaluation of a baseline and a candidate over the same rows.

Oracles: each arm equals a plain ``eval`` of its file; the delta equals the
difference of two evaluations; the paired replicates equal the difference
of each arm's replicates (the same counter-based weights).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

import lossctl
from lossctl import replicates

SPECS = "auc,acc,bce,brier_score,precision,mse"


def _files(tmp_path: Path, n: int = 3000, seed: int = 0, skill: float = 1.0) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(float)
    signal = rng.normal(0, 1, n)
    base = 1 / (1 + np.exp(-(signal + 1.5 * (2 * y - 1) * 0.8)))
    cand = 1 / (1 + np.exp(-(signal + skill * 1.5 * (2 * y - 1) + rng.normal(0, 0.3, n))))
    ids = rng.permutation(n) + 1000
    group = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    w = rng.uniform(0.5, 2.0, n)
    common = {"id": ids, "y_true": y, "g": group, "w": w}
    b_path, c_path = tmp_path / "base.parquet", tmp_path / "cand.parquet"
    pq.write_table(pa.table({**common, "y_pred": base}), b_path, row_group_size=700)
    pq.write_table(pa.table({**common, "y_pred": cand}), c_path, row_group_size=700)
    return str(b_path), str(c_path)


def _arm(result: Any, spec: str, arm: str, group: dict[str, Any] | None = None) -> Any:
    return result.lookup(spec, group=group, arm=arm)


def test_arms_equal_separate_evaluations_and_delta_their_difference(tmp_path: Path) -> None:
    base, cand = _files(tmp_path)
    cmp = lossctl.compare(base, cand, metric=SPECS, weight="w", by="g", chunk_size=500)
    for spec in SPECS.split(","):
        b = lossctl.evaluate(base, metric=spec, weight="w", by="g")
        c = lossctl.evaluate(cand, metric=spec, weight="w", by="g")
        for group in (None, {"g": "a"}, {"g": "b"}, {"g": "c"}):
            bv, cv = b.lookup(spec, group=group).value, c.lookup(spec, group=group).value
            assert _arm(cmp, spec, "baseline", group).value == pytest.approx(bv, rel=1e-12)
            assert _arm(cmp, spec, "candidate", group).value == pytest.approx(cv, rel=1e-12)
            assert _arm(cmp, spec, "delta", group).value == pytest.approx(cv - bv, rel=1e-9, abs=1e-15)
    assert cmp["auc"].arm == "delta"  # the delta is what a comparison is about
    assert cmp["auc"].extra["change"] == "better"
    assert cmp["mse"].extra["change"] == "better" and cmp["mse"].value < 0


def test_key_matches_shuffled_rows(tmp_path: Path) -> None:
    base, cand = _files(tmp_path)
    table = pq.read_table(cand)
    shuffled = tmp_path / "shuffled.parquet"
    pq.write_table(table.take(np.random.default_rng(5).permutation(table.num_rows)), shuffled)
    by_position = lossctl.compare(base, cand, metric=SPECS, weight="w")
    by_key = lossctl.compare(base, str(shuffled), metric=SPECS, weight="w", key="id")
    for r, k in zip(by_position.results, by_key.results, strict=True):
        assert (r.spec, r.arm) == (k.spec, k.arm)
        assert k.value == pytest.approx(r.value, rel=1e-12, abs=1e-15)
    # Without --key the shuffled file's y_true differs: exit 3 naming the row.
    proc = _run("compare", base, str(shuffled), "-m", "auc")
    assert proc.returncode == 3
    assert "differ in y_true at row" in proc.stderr and "--key" in proc.stderr


def test_identical_files_give_a_zero_paired_interval_and_p_one(tmp_path: Path) -> None:
    base, _ = _files(tmp_path)
    cmp = lossctl.compare(base, base, metric=SPECS, ci=0.95, bootstrap=200)
    for spec in SPECS.split(","):
        d = cmp[spec]
        assert d.value == 0.0
        assert d.ci["low"] == 0.0 and d.ci["high"] == 0.0 and d.ci["se"] == 0.0
        assert d.ci["p_value"] == 1.0
        assert d.extra["change"] == "same"


def test_paired_replicates_are_the_difference_of_the_arms(tmp_path: Path) -> None:
    base, cand = _files(tmp_path, n=800)
    B = 40
    cmp = lossctl.compare(base, cand, metric="auc", ci=0.9, bootstrap=B, seed=7)
    y = pq.read_table(base)["y_true"].to_numpy()
    pb, pc = pq.read_table(base)["y_pred"].to_numpy(), pq.read_table(cand)["y_pred"].to_numpy()
    W = replicates.weights(7, np.arange(len(y)), 0, B)
    diffs = np.array([roc_auc_score(y, pc, sample_weight=W[b]) - roc_auc_score(y, pb, sample_weight=W[b]) for b in range(B)])
    ci = cmp["auc"].ci
    assert ci["low"] == pytest.approx(np.quantile(diffs, 0.05), rel=1e-9)
    assert ci["high"] == pytest.approx(np.quantile(diffs, 0.95), rel=1e-9)
    assert ci["se"] == pytest.approx(diffs.std(ddof=1), rel=1e-9)
    expected_p = min(1.0, 2 * (1 + min((diffs <= 0).sum(), (diffs >= 0).sum())) / (B + 1))
    assert ci["p_value"] == pytest.approx(expected_p)


def test_paired_interval_is_narrower_than_unpaired(tmp_path: Path) -> None:
    # Two correlated models (the same signal): pairing removes the shared variance.
    base, cand = _files(tmp_path, n=4000, skill=1.1)
    cmp = lossctl.compare(base, cand, metric="auc,mse", ci=0.95, bootstrap=300)
    for spec in ("auc", "mse"):
        b = lossctl.evaluate(base, metric=spec, ci=0.95, bootstrap=300, seed=1).results[0].ci["se"]
        c = lossctl.evaluate(cand, metric=spec, ci=0.95, bootstrap=300, seed=2).results[0].ci["se"]
        unpaired = (b * b + c * c) ** 0.5
        assert cmp[spec].ci["se"] < 0.7 * unpaired, (spec, cmp[spec].ci["se"], unpaired)


def test_p_values_tell_a_clear_improvement_from_noise(tmp_path: Path) -> None:
    better, better_c = _files(tmp_path, n=4000, skill=1.6)
    clear = lossctl.compare(better, better_c, metric="auc", ci=0.95, bootstrap=500)["auc"]
    assert clear.ci["p_value"] < 0.01 and clear.ci["low"] > 0
    # Same skill, independent noise of the same size: no evidence either way.
    rng = np.random.default_rng(9)
    n = 4000
    y = (rng.random(n) < 0.4).astype(float)
    signal = rng.normal(0, 1, n) + 1.2 * (2 * y - 1)
    one = tmp_path / "one.parquet"
    two = tmp_path / "two.parquet"
    pq.write_table(pa.table({"y_true": y, "y_pred": 1 / (1 + np.exp(-(signal + rng.normal(0, 0.5, n))))}), one)
    pq.write_table(pa.table({"y_true": y, "y_pred": 1 / (1 + np.exp(-(signal + rng.normal(0, 0.5, n))))}), two)
    same = lossctl.compare(str(one), str(two), metric="auc", ci=0.95, bootstrap=500)["auc"]
    assert same.ci["p_value"] > 0.05 and same.ci["low"] < 0 < same.ci["high"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lossctl", *args], capture_output=True, text=True, timeout=60)


GATES = [
    # auc: the candidate is better (higher); mse: the candidate is better (lower).
    ("delta(auc) >= 0", True),
    ("delta(auc) < 0", False),
    ("delta(auc).low > 0", True),
    ("delta(auc).high < 0", False),
    ("delta(mse).high < 0", True),
    ("delta(mse).low > 0", False),
    ("baseline(auc) < 0.999", True),
    ("baseline(auc) > 0.999", False),
    ("candidate(auc) > 0.5", True),
    ("candidate(auc) < 0.5", False),
    ("auc > 0.5", True),  # a plain NAME is the candidate's
]


def test_every_gate_on_both_sides(tmp_path: Path) -> None:
    base, cand = _files(tmp_path)
    args = ["compare", base, cand, "-m", "auc,mse", "--ci", "0.95", "--bootstrap", "100", "-f", "json"]
    proc = _run(*args, *(a for gate, _ in GATES for a in ("-c", gate)))
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    for (gate, passes), check in zip(GATES, doc["checks"], strict=True):
        assert check["passed"] is passes, gate
        arm = gate.split("(")[0] if "(" in gate else "candidate"
        spec = gate.split("(")[-1].split(")")[0].split(" ")[0]
        result = next(r for r in doc["results"] if r["spec"] == spec and r["arm"] == arm)
        expected = result["ci"]["low"] if ".low" in gate else result["ci"]["high"] if ".high" in gate else result["value"]
        assert check["value"] == expected, gate
    held = _run(*args, *(a for gate, passes in GATES if passes for a in ("-c", gate)))
    assert held.returncode == 0, held.stdout[-500:]


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("spec", ["auc", "mse"])
def test_max_regression_on_both_sides_of_its_amount(tmp_path: Path, spec: str, relative: bool) -> None:
    # Swap the files: the old model as the candidate is a regression of |delta|.
    base, cand = _files(tmp_path)
    worse = lossctl.compare(cand, base, metric=spec)[spec]
    regression = abs(worse.value)
    baseline = worse.extra["baseline"]
    assert worse.extra["change"] == "worse"
    for factor, passes in ((1.1, True), (0.9, False)):
        amount = regression * factor
        text = f"{100 * amount / abs(baseline)!r}%" if relative else repr(amount)
        check = lossctl.compare(cand, base, metric=spec, max_regression=f"{spec}={text}").checks[0]
        assert check["passed"] is passes, (spec, text, check)
        assert check["allowed"] == pytest.approx(amount, rel=1e-9)
    improvement = lossctl.compare(base, cand, metric=spec, max_regression=f"{spec}=0")
    assert improvement.passed
    assert _run("compare", cand, base, "-m", spec, "--max-regression", f"{spec}=0").returncode == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--max-regression", "auc"], 2, "expected NAME=AMOUNT"),
        (["--max-regression", "auc=-1"], 2, "non-negative"),
        (["-c", "delta(nosuch) > 0"], 2, "nosuch"),
        (["--key", "nosuch"], 3, "--key column 'nosuch' does not exist"),
    ],
)
def test_usage_and_data_errors(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    base, cand = _files(tmp_path)
    proc = _run("compare", base, cand, "-m", "auc", *args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_rows_that_do_not_match_are_data_errors(tmp_path: Path) -> None:
    base, cand = _files(tmp_path, n=500)
    short = tmp_path / "short.parquet"
    pq.write_table(pq.read_table(cand).slice(0, 400), short)
    proc = _run("compare", base, str(short), "-m", "auc")
    assert proc.returncode == 3 and "row counts differ" in proc.stderr
    assert "base.parquet" in proc.stderr and "short.parquet" in proc.stderr
    keyed = _run("compare", base, str(short), "-m", "auc", "--key", "id")
    assert keyed.returncode == 3 and "row counts differ" in keyed.stderr
    table = pq.read_table(cand)
    ids = table["id"].to_numpy().copy()
    ids[10] = ids[11]
    dup = tmp_path / "dup.parquet"
    pq.write_table(table.set_column(0, "id", pa.array(ids)), dup)
    proc = _run("compare", base, str(dup), "-m", "auc", "--key", "id")
    assert proc.returncode == 3 and "repeats the key" in proc.stderr and "row 11" in proc.stderr
    proc = _run("eval", base, "-m", "auc", "-c", "delta(auc) > 0")
    assert proc.returncode == 2 and "lossctl compare" in proc.stderr


def test_one_true_for_both(tmp_path: Path) -> None:
    base, cand = _files(tmp_path)
    truth = tmp_path / "truth.parquet"
    pq.write_table(pq.read_table(base).select(["y_true"]).rename_columns(["label"]), truth)
    shared = lossctl.compare(base, cand, metric="auc", true=f"{truth}:label")
    plain = lossctl.compare(base, cand, metric="auc")
    assert shared["auc"].value == pytest.approx(plain["auc"].value, rel=1e-12)


def test_eval_of_two_models_warns_and_points_at_compare(tmp_path: Path) -> None:
    base, cand = _files(tmp_path)
    ev = lossctl.evaluate(base, cand, metric="auc")
    assert ev.input.rows == 6000  # still concatenated, as the contract says
    assert any("lossctl compare" in w for w in ev.warnings)
    # Two shards of one dataset (different rows) are not two models.
    shards = lossctl.evaluate("sample_data/shards/part-0.parquet", "sample_data/shards/part-1.parquet", loss="mse")
    assert not any("compare" in w for w in shards.warnings)


def test_outputs(tmp_path: Path) -> None:
    base, cand = _files(tmp_path)
    args = ["compare", base, cand, "-m", "auc,mse", "--ci", "0.9", "--bootstrap", "100", "--by", "g"]
    csv_lines = _run(*args, "-f", "csv").stdout.splitlines()
    assert csv_lines[0].split(",")[:10] == ["name", "spec", "kind", "g", "arm", "value", "ci_low", "ci_high", "se", "p_value"]
    assert len(csv_lines) == 1 + 2 * 3 * 4  # specs x arms x (overall + 3 groups)
    markdown = _run(*args, "-f", "markdown").stdout
    assert "| name | baseline | candidate | delta | p | change |" in markdown
    assert "🟢 better" in markdown and "**Delta by g**" in markdown
    doc = json.loads(_run(*args, "-f", "json").stdout)
    assert doc["compare"] == {"baseline": base, "candidate": cand}
    assert {r["arm"] for r in doc["results"]} == {"baseline", "candidate", "delta"}
    junit = _run(*args, "-c", "delta(auc) > 0", "--max-regression", "mse=5%", "-f", "junit").stdout
    assert junit.count("<testcase") == 2


@pytest.mark.parametrize("kind", ["dense", "sparse", "text"])
def test_keys_of_every_kind_match_and_repeats_are_named(tmp_path: Path, kind: str) -> None:
    base, cand = _files(tmp_path, n=400)
    ids = pq.read_table(base)["id"].to_numpy()
    keys = {"dense": ids, "sparse": ids * 1_000_003, "text": np.array([f"k{i}" for i in ids])}[kind]
    order = np.random.default_rng(2).permutation(400)
    b_tab, c_tab = pq.read_table(base), pq.read_table(cand)
    pq.write_table(b_tab.set_column(0, "id", pa.array(keys)), base)
    shuffled = c_tab.set_column(0, "id", pa.array(keys)).take(order)
    pq.write_table(shuffled, cand)
    keyed = lossctl.compare(base, cand, metric="auc,mse", key="id")
    plain = lossctl.compare(base, base, metric="auc,mse")
    for spec in ("auc", "mse"):
        expected = lossctl.evaluate(base, metric=spec).results[0].value
        assert keyed.lookup(spec, arm="baseline").value == pytest.approx(expected, rel=1e-12)
        assert plain[spec].value == 0.0
    # The positional candidate equals the keyed one.
    pq.write_table(c_tab.set_column(0, "id", pa.array(keys)), tmp_path / "ordered.parquet")
    ordered = lossctl.compare(base, str(tmp_path / "ordered.parquet"), metric="auc,mse")
    for spec in ("auc", "mse"):
        assert keyed[spec].value == pytest.approx(ordered[spec].value, rel=1e-12)
    # A key given twice in the baseline: its row is named.
    twice = keys.copy()
    twice[7] = twice[3]
    pq.write_table(b_tab.set_column(0, "id", pa.array(twice)), tmp_path / "twice.parquet")
    proc = _run("compare", str(tmp_path / "twice.parquet"), cand, "-m", "auc", "--key", "id")
    assert proc.returncode == 3, proc.stderr
    assert "twice.parquet row 7" in proc.stderr and "repeats the key" in proc.stderr

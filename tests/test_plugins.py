"""Custom losses as plugins (SPEC section 8): the articles' examples against independent NumPy.

The three examples of examples/plugins/ (``my_loss``, the factory
``huber_loss_with_threshold(t)``, the factory ``binary_focal_loss(gamma,
alpha)``) and a ``keras.ops`` version are evaluated over sample_data/ by the
CLI and the API, weighted and unweighted, at several chunk sizes, and
compared with the same formulas computed here from the CSV's columns.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

import lossctl
from lossctl.cli.main import cli
from lossctl.errors import UsageProblem
from lossctl.plugins import loaded
from lossctl.registry import lookup

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "plugins"
MY_LOSS, HUBER, FOCAL, KERAS = (str(EXAMPLES / f) for f in ("my_loss.py", "huber.py", "focal.py", "keras_ops.py"))
CHUNKS = (1, 7, 1000, None)


def run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def columns(path: str, *names: str) -> list[np.ndarray]:
    with open(ROOT / path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [np.array([float(r[n]) for r in rows]) for n in names]


def mean(values: np.ndarray, w: np.ndarray | None) -> float:
    return float(np.average(values, weights=w))


# Independent oracles, row by row in plain Python-level NumPy (one value per row).


def o_my_loss(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.abs(t - p)


def o_huber(t: np.ndarray, p: np.ndarray, th: float) -> np.ndarray:
    e = np.abs(t - p)
    return np.array([0.5 * x * x if x <= th else th * x - 0.5 * th * th for x in e])


def o_focal(t: np.ndarray, p: np.ndarray, gamma: float, alpha: float) -> np.ndarray:
    out = []
    for y, q in zip(t, p, strict=True):
        q = min(max(q, 1e-7), 1 - 1e-7)
        pt, at = (q, alpha) if y == 1 else (1 - q, 1 - alpha)
        out.append(-at * (1 - pt) ** gamma * np.log(pt))
    return np.array(out)


CASES = [
    # (plugin, spec, sample, y_true, y_pred, oracle)
    (MY_LOSS, "my_loss", "sample_data/regression.csv", "y_true", "y_pred", o_my_loss),
    (HUBER, "huber_loss_with_threshold", "sample_data/regression.csv", "y_true", "y_pred",
     lambda t, p: o_huber(t, p, 1.0)),
    (HUBER, "huber_loss_with_threshold:t=2.5", "sample_data/regression.csv", "y_true", "y_pred",
     lambda t, p: o_huber(t, p, 2.5)),
    (FOCAL, "binary_focal_loss", "sample_data/binary.csv", "label", "score", lambda t, p: o_focal(t, p, 2.0, 0.25)),
    (FOCAL, "binary_focal_loss:gamma=1:alpha=0.6", "sample_data/binary.csv", "label", "score",
     lambda t, p: o_focal(t, p, 1.0, 0.6)),
]
IDS = [c[1] for c in CASES]


@pytest.mark.parametrize(("plugin", "spec", "sample", "tcol", "pcol", "oracle"), CASES, ids=IDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_article_examples_match_numpy(plugin: str, spec: str, sample: str, tcol: str, pcol: str, oracle: Any,
                                      weighted: bool) -> None:
    t, p, w = columns(sample, tcol, pcol, "weight")
    expected = mean(oracle(t, p), w if weighted else None)
    extra = ["--weight", "weight"] if weighted else []
    for chunk in CHUNKS:
        sizes = [] if chunk is None else ["--chunk-size", chunk]
        result = run("eval", sample, "--plugin", plugin, "--loss", spec, *extra, *sizes, "-f", "json")
        assert result.exit_code == 0, result.stderr
        got = json.loads(result.stdout)["results"][0]
        assert got["value"] == pytest.approx(expected, rel=1e-12), f"chunk {chunk}"
        assert got["rows"] == len(t)
    via_api = lossctl.evaluate(sample, plugins=[plugin], loss=spec, weight="weight" if weighted else None)
    assert via_api.results[0].value == pytest.approx(expected, rel=1e-12)


def test_reductions_of_a_plugin_loss() -> None:
    t, p, w = columns("sample_data/regression.csv", "y_true", "y_pred", "weight")
    per_row = o_my_loss(t, p)
    ev = lossctl.evaluate("sample_data/regression.csv", plugins=[MY_LOSS], weight="weight",
                          loss=["my_loss:reduction=sum", "my_loss:reduction=sum_over_batch_size"])
    assert ev.results[0].value == pytest.approx(float(np.sum(w * per_row)), rel=1e-12)
    assert ev.results[1].value == pytest.approx(float(np.sum(w * per_row)) / len(t), rel=1e-12)


def example(name: str) -> Any:
    """An example plugin imported as training code would import it (not through lossctl)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_takes_a_callable_weighted_and_not() -> None:
    focal, huber, my_loss = (example(name) for name in ("focal", "huber", "my_loss"))
    rng = np.random.default_rng(0)
    t, p, w = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.1, 2, size=50)
    assert lossctl.get(my_loss.my_loss)(t, p) == pytest.approx(float(np.mean(np.abs(t - p))), rel=1e-12)
    assert lossctl.get(my_loss.my_loss)(t, p, sample_weight=w) == pytest.approx(mean(o_my_loss(t, p), w), rel=1e-12)
    # A factory takes its parameters as keywords; what it returns is a loss too.
    assert lossctl.get(huber.huber_loss_with_threshold, t=0.5)(t, p, w) == pytest.approx(mean(o_huber(t, p, 0.5), w))
    assert lossctl.get(huber.huber_loss_with_threshold(0.5))(t, p, w) == pytest.approx(mean(o_huber(t, p, 0.5), w))
    y = (rng.uniform(size=50) > 0.5).astype(float)
    q = rng.uniform(0.01, 0.99, size=50)
    fn = lossctl.get(focal.binary_focal_loss, gamma=3.0)
    assert fn(y, q, sample_weight=w) == pytest.approx(mean(o_focal(y, q, 3.0, 0.25), w), rel=1e-12)
    assert fn.__name__ == "binary_focal_loss"
    # Any function given on purpose works, whatever its parameters are called.
    assert lossctl.get(lambda a, b: (a - b) ** 2)([0.0, 1.0], [1.0, 1.0]) == pytest.approx(0.5)
    with pytest.raises(UsageProblem, match="unknown parameter 'gama'"):
        lossctl.get(focal.binary_focal_loss, gama=3.0)


def test_evaluate_takes_callables_and_they_do_not_leak() -> None:
    def abs_err(y_true: Any, y_pred: Any) -> Any:
        return np.abs(y_true - y_pred)[:, 0]

    t, p = columns("sample_data/regression.csv", "y_true", "y_pred")
    ev = lossctl.evaluate("sample_data/regression.csv", loss=[abs_err, "mae"], metric=abs_err, checks="abs_err < 3")
    assert [r.spec for r in ev.results] == ["abs_err", "mae", "abs_err"]
    assert ev.results[0].value == pytest.approx(float(np.mean(np.abs(t - p))), rel=1e-12)
    assert ev.results[0].value == pytest.approx(ev.results[1].value, rel=1e-12)
    assert ev.passed
    assert ev.signature["plugins"][0]["name"].endswith("abs_err")
    with pytest.raises(UsageProblem, match="unknown loss or metric 'abs_err'"):
        lookup("abs_err")
    lossctl.evaluate("sample_data/regression.csv", plugins=[MY_LOSS], loss="my_loss")
    with pytest.raises(UsageProblem):
        lookup("my_loss")


class FakeTensor:
    """What a Keras backend returns: not an ndarray, convertible through ``__array__``."""

    def __init__(self, values: Any) -> None:
        self._values = np.asarray(values)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._values if dtype is None else self._values.astype(dtype)


def test_results_go_through_asarray(tmp_path: Path) -> None:
    plugin = tmp_path / "tensors.py"
    plugin.write_text(textwrap.dedent("""
        import numpy as np

        class Tensor:
            def __init__(self, v):
                self.v = v
            def __array__(self, dtype=None, copy=None):
                return self.v if dtype is None else self.v.astype(dtype)

        def tensor_mae(y_true, y_pred):
            # keras.ops returns tensors of shape (N,): anything numpy.asarray takes will do
            return Tensor(np.mean(np.abs(y_true - y_pred), axis=-1).astype(np.float32))
    """))
    t, p = columns("sample_data/regression.csv", "y_true", "y_pred")
    got = lossctl.evaluate("sample_data/regression.csv", plugins=[str(plugin)], loss="tensor_mae").results[0].value
    assert got == pytest.approx(float(np.mean(np.abs(t - p).astype(np.float32))), rel=1e-6)
    assert lossctl.get(lambda a, b: FakeTensor(np.abs(a - b)))([1.0, 2.0], [2.0, 4.0]) == pytest.approx(1.5)


def test_keras_ops_versions_match_numpy() -> None:
    pytest.importorskip("keras")
    t, p, w = columns("sample_data/regression.csv", "y_true", "y_pred", "weight")
    ev = lossctl.evaluate("sample_data/regression.csv", plugins=[KERAS], weight="weight", chunk_size=700,
                          loss=["my_loss", "huber_loss_with_threshold:t=2"])
    assert ev.results[0].value == pytest.approx(mean(o_my_loss(t, p), w), rel=1e-6)
    assert ev.results[1].value == pytest.approx(mean(o_huber(t, p, 2.0), w), rel=1e-6)
    y, q = columns("sample_data/binary.csv", "label", "score")
    ev = lossctl.evaluate("sample_data/binary.csv", plugins=[KERAS], loss="binary_focal_loss")
    assert ev.results[0].value == pytest.approx(mean(o_focal(y, q, 2.0, 0.25), None), rel=1e-6)


# --------------------------------------------------------------------------
# What becomes an entry


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_what_a_plugin_defines(tmp_path: Path) -> None:
    plugin = write(tmp_path, "many.py", """
        import numpy as np
        from sklearn.metrics import mean_squared_error  # imported: not an entry (it would shadow mse)
        import lossctl

        def scaled(y_true, y_pred, scale=1.0, squared: bool = False, label="x", *, power: int = 1):
            "Scaled absolute error."
            e = np.abs(y_true - y_pred) * scale
            return np.mean(e ** (2 if squared else power), axis=-1)

        def _helper(y_true, y_pred):
            return y_true

        def needs_more(y_true, y_pred, mask):   # cannot be called as fn(y_true, y_pred): not an entry
            return y_true

        def main():                              # never called: it makes no loss
            raise SystemExit("main must not run")

        @lossctl.metric(name="within", aliases=["within_tol"], formula="|e| <= tol")
        def within_tolerance(t, p, tol=1.0):
            return (np.abs(t - p) <= tol).astype(float)[:, 0]
    """)
    with loaded([plugin]) as (plugin_loaded,):
        names = sorted(e.name for e in plugin_loaded.entries)
        assert names == ["scaled", "within"]
        scaled = lookup("scaled")
        assert {p.name: (p.type, p.default) for p in scaled.params} == {
            "scale": (float, 1.0), "squared": (bool, False), "label": (str, "x"), "power": (int, 1),
        }
        assert lookup("within_tol") is lookup("within")
        assert lookup("within").kind == "metric" and lookup("within").direction == "max"
    t, p = columns("sample_data/regression.csv", "y_true", "y_pred")
    ev = lossctl.evaluate("sample_data/regression.csv", plugins=[plugin],
                          loss=["scaled:scale=2:squared=true", "scaled:power=3"], metric="within_tol:tol=5")
    assert ev.results[0].value == pytest.approx(float(np.mean((2 * np.abs(t - p)) ** 2)), rel=1e-12)
    assert ev.results[1].value == pytest.approx(float(np.mean(np.abs(t - p) ** 3)), rel=1e-12)
    assert ev.results[2].value == pytest.approx(float(np.mean(np.abs(t - p) <= 5)), rel=1e-12)
    assert ev.results[2].direction == "max"
    result = run("eval", "sample_data/regression.csv", "--plugin", plugin, "-l", "scaled:squared=maybe")
    assert result.exit_code == 2 and "expected a boolean" in result.stderr


def test_module_plugins_and_no_sys_path_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "mylosses"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "extra.py").write_text("def cube_err(y_true, y_pred):\n    return abs(y_true - y_pred)[:, 0] ** 3\n")
    before = list(sys.path)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run("eval", "sample_data/regression.csv", "--plugin", "mylosses.extra", "-l", "cube_err", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    t, p = columns("sample_data/regression.csv", "y_true", "y_pred")
    assert doc["results"][0]["value"] == pytest.approx(float(np.mean(np.abs(t - p) ** 3)), rel=1e-12)
    digest = hashlib.sha256((package / "extra.py").read_bytes()).hexdigest()
    assert doc["signature"]["plugins"] == [{"name": "mylosses.extra", "sha256": digest}]
    monkeypatch.undo()
    # A plugin given by path is run from its bytes: sys.path is left alone.
    plugin = write(tmp_path, "by_path.py", "def sq(y_true, y_pred):\n    return ((y_true - y_pred) ** 2)[:, 0]\n")
    lossctl.evaluate("sample_data/regression.csv", plugins=[plugin], loss="sq")
    assert sys.path == before
    assert not any(m == "by_path" for m in sys.modules)


def test_signature_records_name_and_content_hash() -> None:
    result = run("eval", "sample_data/regression.csv", "--plugin", MY_LOSS, "--plugin", HUBER, "-l", "my_loss",
                 "-l", "huber_loss_with_threshold:t=2", "-f", "json")
    plugins = json.loads(result.stdout)["signature"]["plugins"]
    assert plugins == [
        {"name": path, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()} for path in (MY_LOSS, HUBER)
    ]
    plain = run("eval", "sample_data/regression.csv", "-l", "mse", "-f", "json")
    assert json.loads(plain.stdout)["signature"]["plugins"] == []


def test_worst_per_row_and_checks(tmp_path: Path) -> None:
    t, p = columns("sample_data/regression.csv", "y_true", "y_pred")
    result = run("worst", "sample_data/regression.csv", "--plugin", MY_LOSS, "-l", "my_loss", "-n", "3", "-f", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["row"] for r in rows] == list(np.argsort(-np.abs(t - p), kind="stable")[:3])
    out = tmp_path / "rows.csv"
    result = run("eval", "sample_data/regression.csv", "--plugin", HUBER, "-l", "huber_loss_with_threshold:t=2",
                 "--per-row", out, "--check", "huber_loss_with_threshold:t=2 < 1", "-f", "json")
    assert result.exit_code == 1  # the check fails: 3.95 >= 1
    with open(out, newline="") as fh:
        written = np.array([float(r["huber_loss_with_threshold:t=2"]) for r in csv.DictReader(fh)])
    np.testing.assert_allclose(written, o_huber(t, p, 2.0), rtol=1e-12)


def test_config_loads_its_plugins_relative_to_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "h.py").write_bytes(Path(HUBER).read_bytes())
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    (tmp_path / "lossctl.toml").write_text(
        'plugins = ["plug/h.py"]\nlosses = ["huber_loss_with_threshold:t=3"]\nchecks = ["huber_loss_with_threshold:t=3 < 9"]\n'
    )
    monkeypatch.chdir(tmp_path)
    t, p = columns("sample_data/regression.csv", "y_true", "y_pred")
    result = run("eval", "sample_data/regression.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["results"][0]["value"] == pytest.approx(float(np.mean(o_huber(t, p, 3.0))), rel=1e-12)
    assert doc["signature"]["plugins"][0]["name"] == "plug/h.py"
    assert "huber_loss_with_threshold" in run("list").stdout
    assert run("explain", "huber_loss_with_threshold").exit_code == 0
    # Another config elsewhere: its plugin paths are relative to it.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "lossctl.toml").write_text('plugins = ["../plug/h.py"]\nlosses = ["huber_loss_with_threshold"]\n')
    result = run("eval", "sample_data/regression.csv", "--config", "other/lossctl.toml", "-f", "json")
    assert result.exit_code == 0, result.stderr
    # --plugin replaces the configured list, as every option given replaces its key.
    result = run("eval", "sample_data/regression.csv", "--plugin", MY_LOSS, "-l", "my_loss", "--no-config", "-f", "json")
    assert result.exit_code == 0, result.stderr


def test_list_and_explain_show_plugin_entries() -> None:
    result = run("list", "--plugin", FOCAL, "--json")
    doc = {d["name"]: d for d in json.loads(result.stdout)}
    focal = doc["binary_focal_loss"]
    assert focal["plugin"]["name"] == FOCAL
    assert focal["plugin"]["sha256"] == hashlib.sha256(Path(FOCAL).read_bytes()).hexdigest()
    assert [p["name"] for p in focal["params"]] == ["gamma", "alpha", "reduction"]
    assert doc["mean_squared_error"]["plugin"] is None
    assert "binary_focal_loss" in run("list", "--plugin", FOCAL, "--task", "binary").stdout
    assert "binary_focal_loss" not in run("list").stdout
    text = run("explain", "binary_focal_loss:gamma=3", "--plugin", FOCAL).stdout
    assert f"plugin:         {FOCAL} (sha256 {focal['plugin']['sha256']})" in text
    assert "binary_focal_loss(gamma=2.0, alpha=0.25) -> binary_focal_loss_fixed(y_true, y_pred)" in text
    assert "down-weights the well-classified rows" in text  # the docstring
    assert f"--plugin {FOCAL} --loss binary_focal_loss" in text
    info = json.loads(run("explain", "my_loss", "--plugin", MY_LOSS, "--json").stdout)
    assert info["plugin"]["signature"] == "my_loss(y_true, y_pred)"

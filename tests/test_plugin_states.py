"""State files of plugin losses: recorded by name and hash, merged without ever loading the code.

``eval --save-state`` on shards with ``--plugin``, then ``lossctl merge`` in a
fresh process where the plugin file no longer exists: the same number as
one pass over all rows, checks on the plugin's names included. Different
code on two shards is refused (exit 2); a header that lies is refused too.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

import lossctl
from lossctl.cli.main import cli
from lossctl.statefile import MAGIC

PLUGIN = """
import numpy as np
import lossctl

with open(__file__ + ".imports", "a") as fh:   # every import leaves a line
    fh.write("imported\\n")

@lossctl.loss(aliases=["wle"])
def weighted_log_error(y_true, y_pred, base=2.0):
    return np.mean(np.log1p(np.abs(y_pred - y_true)) / np.log(base), axis=-1)

def cubic(c=1.0):
    def cubic_loss(y_true, y_pred):
        return np.mean(c * np.abs(y_pred - y_true) ** 3, axis=-1)
    return cubic_loss
"""
SPECS = ("weighted_log_error", "weighted_log_error:base=10", "cubic:c=0.5")


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def shards(tmp_path: Path) -> tuple[Path, list[Path], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 500
    t, p, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(0.1, 3.0, size=n)
    paths = []
    for i, (a, b) in enumerate(((0, 120), (120, 121), (121, n))):
        path = tmp_path / f"part-{i}.parquet"
        pq.write_table(pa.table({"y_true": t[a:b], "y_pred": p[a:b], "w": w[a:b]}), path)
        paths.append(path)
    plugin = tmp_path / "losses.py"
    plugin.write_text(PLUGIN)
    return plugin, paths, t, p, w


def oracle(t: np.ndarray, p: np.ndarray, w: np.ndarray) -> list[float]:
    e = np.abs(p - t)
    return [
        float(np.average(np.log1p(e) / np.log(2.0), weights=w)),
        float(np.average(np.log1p(e) / np.log(10.0), weights=w)),
        float(np.average(0.5 * e**3, weights=w)),
    ]


def save_states(plugin: Path, paths: list[Path], tmp_path: Path) -> list[Path]:
    states = []
    for i, path in enumerate(paths):
        state = tmp_path / f"s{i}.lcstate"
        result = run("eval", path, "--plugin", plugin, *(a for s in SPECS for a in ("-l", s)), "--weight", "w",
                     "--save-state", state, "--chunk-size", 50, "-f", "json")
        assert result.exit_code == 0, result.stderr
        states.append(state)
    return states


def test_merge_never_loads_the_plugin(shards: tuple[Path, list[Path], np.ndarray, np.ndarray, np.ndarray],
                                      tmp_path: Path) -> None:
    plugin, paths, t, p, w = shards
    states = save_states(plugin, paths, tmp_path)
    imports = Path(str(plugin) + ".imports")
    assert imports.read_text().count("imported") == 1  # once per process, however many shards
    digest = hashlib.sha256(plugin.read_bytes()).hexdigest()
    plugin.unlink()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    code = "from lossctl.cli.main import main; main()"
    args = ["merge", *(str(s) for s in reversed(states)), "--check", "wle < 5", "--check", "cubic:c=0.5 > 0", "-f", "json"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    got = [r["value"] for r in doc["results"]]
    np.testing.assert_allclose(got, oracle(t, p, w), rtol=1e-9)
    assert [r["rows"] for r in doc["results"]] == [len(t)] * 3
    assert [c["passed"] for c in doc["checks"]] == [True, True]
    assert doc["signature"]["plugins"] == [{"name": str(plugin), "sha256": digest}]
    assert imports.read_text().count("imported") == 1  # merge imported nothing
    # The API's merge, in this process, gives the same.
    merged = lossctl.merge(*(str(s) for s in states), checks="weighted_log_error:base=10 < 5")
    np.testing.assert_allclose([r.value for r in merged.results], got, rtol=1e-12)


def test_one_pass_equals_merge(shards: tuple[Path, list[Path], np.ndarray, np.ndarray, np.ndarray],
                               tmp_path: Path) -> None:
    plugin, paths, t, p, w = shards
    whole = lossctl.evaluate(*(str(x) for x in paths), plugins=[str(plugin)], loss=list(SPECS), weight="w")
    merged = lossctl.merge(*(str(s) for s in save_states(plugin, paths, tmp_path)))
    np.testing.assert_allclose([r.value for r in merged.results], [r.value for r in whole.results], rtol=1e-9)
    np.testing.assert_allclose([r.value for r in whole.results], oracle(t, p, w), rtol=1e-9)


def header_of(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (length,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    return json.loads(data[start : start + length]), data[start + length + (-(start + length) % 8) : -32]


def rewrite(path: Path, header: dict, payload: bytes) -> None:
    text = json.dumps(header).encode()
    head = MAGIC + struct.pack("<Q", len(text)) + text
    body = head + b"\0" * (-len(head) % 8) + payload
    path.write_bytes(body + hashlib.sha256(body).digest())


def test_header_records_the_plugin_and_no_code(shards: tuple[Path, list[Path], np.ndarray, np.ndarray, np.ndarray],
                                               tmp_path: Path) -> None:
    plugin, paths, *_ = shards
    state = save_states(plugin, paths[:1], tmp_path)[0]
    header, _ = header_of(state)
    (record,) = header["plan"]["plugins"]
    assert record["name"] == str(plugin) and record["file"] == os.path.abspath(plugin)
    assert record["sha256"] == hashlib.sha256(plugin.read_bytes()).hexdigest()
    assert sorted(e["name"] for e in record["entries"]) == ["cubic", "weighted_log_error"]
    assert "np.log1p" not in state.read_bytes().decode("latin-1")  # no source text travels


def test_different_plugin_code_cannot_merge(shards: tuple[Path, list[Path], np.ndarray, np.ndarray, np.ndarray],
                                            tmp_path: Path) -> None:
    plugin, paths, *_ = shards
    first = save_states(plugin, paths[:1], tmp_path)[0]
    plugin.write_text(PLUGIN.replace("/ np.log(base)", "/ np.log(base) * 1.0001"))
    other = tmp_path / "other.lcstate"
    assert run("eval", paths[2], "--plugin", plugin, *(a for s in SPECS for a in ("-l", s)), "--weight", "w",
               "--save-state", other, "-f", "json").exit_code == 0
    result = run("merge", first, other)
    assert result.exit_code == 2
    assert "plans differ: plugin code of cubic, weighted_log_error: sha256" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_header_that_lies_is_refused(shards: tuple[Path, list[Path], np.ndarray, np.ndarray, np.ndarray],
                                       tmp_path: Path) -> None:
    plugin, paths, *_ = shards
    state = save_states(plugin, paths[:1], tmp_path)[0]
    header, payload = header_of(state)
    # Another hash in the record than the one the states were keyed with.
    forged = json.loads(json.dumps(header))
    forged["plan"]["plugins"][0]["sha256"] = "0" * 64
    rewrite(tmp_path / "f1.lcstate", forged, payload)
    result = run("merge", tmp_path / "f1.lcstate")
    assert result.exit_code == 3 and "written by another version" in result.stderr
    # A recorded plugin entry may not take a built-in's name.
    forged = json.loads(json.dumps(header))
    forged["plan"]["plugins"][0]["entries"][0]["name"] = "mse"
    rewrite(tmp_path / "f2.lcstate", forged, payload)
    assert run("merge", tmp_path / "f2.lcstate").exit_code in (2, 3)
    # Not a sha256.
    forged = json.loads(json.dumps(header))
    forged["plan"]["plugins"][0]["sha256"] = "../../etc"
    rewrite(tmp_path / "f3.lcstate", forged, payload)
    result = run("merge", tmp_path / "f3.lcstate")
    assert result.exit_code == 3 and "malformed plan" in result.stderr


def test_plugins_of_a_config_are_recorded_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.py").write_text(textwrap.dedent("""
        def abs_err(y_true, y_pred):
            return abs(y_true - y_pred)[:, 0]
    """))
    (tmp_path / "lossctl.toml").write_text('plugins = ["p.py"]\nlosses = ["abs_err"]\n')
    pq.write_table(pa.table({"y_true": [1.0, 2.0], "y_pred": [2.0, 4.0]}), tmp_path / "d.parquet")
    monkeypatch.chdir(tmp_path)
    assert run("eval", "d.parquet", "--save-state", "d.lcstate", "-f", "json").exit_code == 0
    (tmp_path / "p.py").unlink()
    (tmp_path / "lossctl.toml").unlink()
    result = run("merge", "d.lcstate", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["value"] == pytest.approx(1.5)

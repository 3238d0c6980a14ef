"""Paths with a scheme (SPEC section 2): s3:// on a real S3-compatible server (moto) on loopback, file://.

The server is started by the module and stopped at its end; its endpoint
and credentials reach lossctl the standard way (``AWS_ENDPOINT_URL`` and the
AWS variables), set for each test only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

pytest.importorskip("moto")
pytest.importorskip("boto3")

from servers import s3_server, upload  # noqa: E402

from lossctl.cli.main import cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with s3_server() as env:
        folder = tmp_path_factory.mktemp("remote")
        rng = np.random.default_rng(5)
        for i in range(3):
            n = 100 + 50 * i
            table = pa.table({"y_true": rng.normal(size=n), "y_pred": rng.normal(size=n), "region": ["a", "b"] * (n // 2)})
            pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=40)
            upload(env, folder / f"part-{i}.parquet", f"ds/part-{i}.parquet")
        (folder / "_SUCCESS").write_bytes(b"")
        upload(env, folder / "_SUCCESS", "ds/_SUCCESS")
        for name in ("regression.parquet", "regression.csv", "binary.csv", "regression.npz"):
            upload(env, SAMPLES / name, f"samples/{name}")
        env["LOCAL_DS"] = str(folder)
        yield env


@pytest.fixture
def s3(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in s3_env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    return s3_env


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["eval", *args, "-f", "json"])
    return result.exit_code, result.stdout, result.stderr


def values(out: str) -> list[tuple[object, ...]]:
    """(spec, group, value, rows) of every result, overall and per group."""
    return [(r["spec"], json.dumps(r.get("group")), r["value"], r["rows"]) for r in json.loads(out)["results"]]


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("s3://lossctl-tests/samples/regression.parquet", "sample_data/regression.parquet"),
        ("s3://lossctl-tests/samples/regression.csv", "sample_data/regression.csv"),
        ("s3://lossctl-tests/samples/regression.npz", "sample_data/regression.npz"),
    ],
)
def test_an_s3_file_reads_as_the_local_file(s3: dict[str, str], uri: str, local: str) -> None:
    code, out, err = run(uri, "-l", "mse,mae", "-m", "r2")
    assert code == 0, err
    expected = run(local, "-l", "mse,mae", "-m", "r2")
    assert values(out) == values(expected[1])
    assert json.loads(out)["input"]["files"] == [uri]


@pytest.mark.parametrize("suffix", ["ds/", "ds", "ds/*.parquet", "ds/part-*.parquet"])
def test_an_s3_directory_or_glob_is_one_dataset(s3: dict[str, str], suffix: str) -> None:
    code, out, err = run(f"s3://lossctl-tests/{suffix}", "-l", "mse", "--by", "region")
    assert code == 0, err
    local_code, local_out, _ = run(s3["LOCAL_DS"], "-l", "mse", "--by", "region")
    assert local_code == 0
    assert values(out) == values(local_out)
    assert len(values(out)) == 3


def test_a_missing_object_is_a_data_error(s3: dict[str, str]) -> None:
    for uri in ("s3://lossctl-tests/nope.parquet", "s3://lossctl-tests/nope/", "s3://no-such-bucket/x.parquet",
                "s3://lossctl-tests/nope/*.parquet"):
        code, _, err = run(uri, "-l", "mse")
        assert code == 3, (uri, err)
        assert err.count("\n") == 1 and uri in err and "Traceback" not in err


def test_an_unknown_scheme_is_a_usage_error_naming_what_reads() -> None:
    code, _, err = run("nosuchscheme://bucket/preds.parquet", "-l", "mse")
    assert code == 2
    assert err.count("\n") == 1
    assert "unknown scheme 'nosuchscheme://'" in err and "s3://" in err


def test_hdfs_without_its_client_library_names_what_to_install() -> None:
    code, _, err = run("hdfs://127.0.0.1:1/preds.parquet", "-l", "mse")
    assert code == 2, err
    assert err.count("\n") == 1 and "libhdfs" in err


def test_file_uri_reads_the_local_file() -> None:
    path = (SAMPLES / "regression.csv").resolve()
    code, out, err = run(f"file://{path}", "-l", "mse")
    assert code == 0, err
    assert values(out) == values(run(str(path), "-l", "mse")[1])


def test_a_later_error_in_an_s3_dataset_names_its_global_row(s3: dict[str, str], tmp_path: Path) -> None:
    a = pa.table({"y_true": [1.0, 2.0, 3.0], "y_pred": [1.0, 2.0, 3.0]})
    b = pa.table({"y_true": [1.0, float("nan")], "y_pred": [1.0, 2.0]})
    pq.write_table(a, tmp_path / "part-0.parquet")
    pq.write_table(b, tmp_path / "part-1.parquet")
    for name in ("part-0.parquet", "part-1.parquet"):
        upload(s3, tmp_path / name, f"nan/{name}")
    code, _, err = run("s3://lossctl-tests/nan/", "-l", "mse")
    assert code == 3
    assert "s3://lossctl-tests/nan/ row 4: column 'y_true' is NaN" in err

#!/usr/bin/env python3
"""Scale benchmark: ``--engine dask`` and ``s3://`` reads against the local engine, ratios in one run.

On the 20M-row regression dataset of ``generate.py`` split into 32 Parquet
files (written next to it, ``regression-32/``), the 8 regression metrics of
workload (a):

- ``lossctl eval DIR`` (local engine) vs ``lossctl eval DIR --engine dask
  --scheduler ADDR`` on a local cluster of 2 worker processes started here,
  vs a ``dask.dataframe`` computation of the same 8 metrics on that cluster
  (what a Dask user would write instead); every one a fresh process,
  connecting to the same cluster; also ``--engine dask`` starting its own;
- ``lossctl eval s3://bucket/regression-32/`` from an S3-compatible server
  (moto's server mode, started here on 127.0.0.1) vs the same files locally.

Each measurement is repeated ``--repeat`` times, the order rotated between
repetitions; the report gives medians and their ratios (never absolute
times across runs), checks that all the numbers agree (1e-6), and the
per-task costs measured in-process (planning on the driver, folding one
file, merging 8 states, the state's bytes) from which a larger dataset's
cost is estimated. The section is written into ``--results`` between
markers (the rest of the file is kept).

Example::

    .venv/bin/python benchmarks/scale.py --data benchmarks/data --lossctl .venv/bin/lossctl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    BENCH_DIR,
    EPSILON,
    REGRESSION_METRICS,
    SCALE_BEGIN,
    SCALE_END,
    WORKLOADS,
    with_scale_section,
)

BUCKET = "lossctl-bench"


def lossctl_args() -> list[str]:
    req = next(w for w in WORKLOADS.values() if w.kind == "regression" and w.fmt == "parquet").lossctl
    args = []
    for spec in req.losses:
        args += ["-l", spec]
    for spec in req.metrics:
        args += ["-m", spec]
    return [*args, "-f", "json", "--no-config", "-q"]


def spec_keys() -> dict[str, str]:
    return next(w for w in WORKLOADS.values() if w.kind == "regression" and w.fmt == "parquet").lossctl.specs


# The same 8 metrics with dask.dataframe: what a Dask user writes (Keras semantics, as peers.py).
DASK_DF = r"""
import json, math, sys
import dask.dataframe as dd
import numpy as np
from distributed import Client
EPS = {eps}
with Client(sys.argv[1]) as client:
    df = dd.read_parquet(sys.argv[2], columns=["y_true", "y_pred"])
    t, p = df["y_true"], df["y_pred"]
    e = p - t
    ae = abs(e)
    parts = dict(
        n=t.count(), se=(e * e).sum(), ae=ae.sum(),
        ape=(ae / abs(t).clip(lower=EPS)).sum(),
        sle=((np.log1p(p.clip(lower=EPS)) - np.log1p(t.clip(lower=EPS))) ** 2).sum(),
        hub=(0.5 * e * e).where(ae <= 1.0, ae - 0.5).sum(),
        lc=(e + np.logaddexp(0.0, -2.0 * e) - math.log(2.0)).sum(),
        st=t.sum(), st2=(t * t).sum(),
    )
    s = dict(zip(parts, dd.compute(*parts.values())))
    n = float(s["n"])
    mse = s["se"] / n
    print(json.dumps(dict(
        mse=mse, mae=s["ae"] / n, mape=100.0 * s["ape"] / n, msle=s["sle"] / n, huber=s["hub"] / n,
        log_cosh=s["lc"] / n, rmse=math.sqrt(mse), r2=1.0 - s["se"] / (s["st2"] - s["st"] ** 2 / n),
    )))
"""


# The floor of an s3:// read: pyarrow reading the two columns of every file, nothing computed.
S3_FLOOR = r"""
import sys
import pyarrow.fs as pafs
import pyarrow.parquet as pq
fs, root = pafs.FileSystem.from_uri(sys.argv[1])
files = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(root)) if i.path.endswith(".parquet"))
rows = sum(pq.read_table(f, columns=["y_true", "y_pred"], filesystem=fs).num_rows for f in files)
print('{"rows": %d}' % rows)
"""


# The comparisons reported: each ratio is taken within a repetition (the two runs close in
# time, so a load that drifts on a shared machine disturbs both), then the median over repetitions.
PAIRS = (
    ("dask", "local"),
    ("dask", "dask_dataframe"),
    ("dask_own_cluster", "local"),
    ("s3_local_engine", "local"),
    ("s3_read_floor", "local"),
    ("s3_local_engine", "s3_read_floor"),
    ("s3_dask", "dask"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shard(source: Path, out: Path, files: int, rows: int | None) -> Path:
    """``source`` split into ``files`` Parquet files of equal row counts (one row group each)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(source)
    total = pf.metadata.num_rows if rows is None else min(rows, pf.metadata.num_rows)
    marker = out / f".{files}-{total}"
    if marker.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.parquet"), *out.glob(f".{files}-*")]:
        old.unlink()
    per = math.ceil(total / files)
    table = pq.read_table(source, columns=["y_true", "y_pred"]).slice(0, total)
    for i in range(files):
        part = table.slice(i * per, per)
        pq.write_table(part, out / f"part-{i:02d}.parquet", row_group_size=max(1, part.num_rows))
    marker.write_text("")
    return out


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return wall, done.stdout


def values_of(stdout: str) -> dict[str, float]:
    doc = json.loads(stdout)
    if "results" not in doc:
        return {k: float(v) for k, v in doc.items()}
    keys = spec_keys()
    return {keys.get(r["spec"], keys.get(r["name"], r["spec"])): r["value"] for r in doc["results"]}


class Servers:
    """A local Dask cluster (2 worker processes) and a moto S3 server, both on 127.0.0.1."""

    def __init__(self, workers: int) -> None:
        from distributed import LocalCluster

        port = free_port()
        moto = Path(sys.executable).with_name("moto_server")
        self.moto = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.s3_env = {
            **os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        }
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        # The workers read s3:// with the credentials of their own environment, as on a real cluster.
        os.environ.update({k: v for k, v in self.s3_env.items() if k.startswith("AWS_")})
        self.cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=40,
        )
        self.address = self.cluster.scheduler_address

    def upload(self, folder: Path) -> str:
        import boto3

        env = self.s3_env
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="bench",
                          aws_secret_access_key="bench", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        for path in sorted(folder.glob("*.parquet")):
            s3.upload_file(str(path), BUCKET, f"{folder.name}/{path.name}")
        return f"s3://{BUCKET}/{folder.name}/"

    def close(self) -> None:
        self.cluster.close()
        self.moto.terminate()
        self.moto.wait(timeout=30)


def per_task_costs(folder: Path, address: str, repeat: int) -> dict[str, Any]:
    """In-process: planning on the driver, one fold task, one merge of 8, the state's bytes; the task stream."""
    from distributed import Client, get_task_stream

    import lossctl
    from lossctl import engine
    from lossctl.options import request_from_keywords
    from lossctl.request import Request
    from lossctl.shards import FIELDS, fold_piece, merge_results, pieces

    req = next(w for w in WORKLOADS.values() if w.kind == "regression" and w.fmt == "parquet").lossctl
    request = Request(**request_from_keywords((str(folder),), {"loss": req.losses, "metric": req.metrics}))

    def prepare() -> Any:
        plan, selection, _, _, stream = engine.prepare(request)
        stream.close()
        return plan, selection

    plan_s = statistics.median(_clock(prepare) for _ in range(repeat))
    plan, selection = prepare()
    split = pieces(selection) or [None]
    job = {"plan": plan.to_dict(), "request": {f: getattr(request, f) for f in FIELDS},
           "label": str(folder), "plugins": [], "piece": split[0]}
    fold_s = statistics.median(_clock(lambda: fold_piece(job)) for _ in range(repeat))
    result = fold_piece(job)
    merge_s = statistics.median(_clock(lambda: merge_results(*[result] * 8)) for _ in range(repeat))
    with Client(address, set_as_default=False) as client:
        with client.as_current(), get_task_stream(client) as stream:
            lossctl.evaluate(str(folder), loss=list(req.losses), metric=list(req.metrics), engine="dask",
                             scheduler=address)
        folds, merges = [], []
        for task in stream.data:
            span = sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")
            (folds if "lossctl-fold" in task["key"] else merges).append(span)
    return {
        "pieces": len(split), "rows_per_piece": split[0]["rows"] if split[0] else None,
        "plan_s": plan_s, "fold_s": fold_s, "merge8_s": merge_s, "state_bytes": len(result[0]),
        "worker_fold_median_s": statistics.median(folds) if folds else None,
        "worker_merge_median_s": statistics.median(merges) if merges else None,
        "merge_tasks": len(merges),
    }


def _clock(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(args: argparse.Namespace, folder: Path, servers: Servers, s3_uri: str) -> dict[str, Any]:
    common = lossctl_args()
    lossctl = str(args.lossctl)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(DASK_DF.format(eps=EPSILON))
        script = fh.name
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(S3_FLOOR)
        floor = fh.name
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "local": ([lossctl, "eval", str(folder), *common], None),
        "dask": ([lossctl, "eval", str(folder), *common, "--engine", "dask", "--scheduler", servers.address], None),
        "dask_dataframe": ([sys.executable, script, servers.address, str(folder)], None),
        "dask_own_cluster": ([lossctl, "eval", str(folder), *common, "--engine", "dask"], None),
        "s3_local_engine": ([lossctl, "eval", s3_uri, *common], servers.s3_env),
        "s3_read_floor": ([sys.executable, floor, s3_uri], servers.s3_env),
        "s3_dask": ([lossctl, "eval", s3_uri, *common, "--engine", "dask", "--scheduler", servers.address],
                    servers.s3_env),
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    load = [os.getloadavg()[0]]
    values: dict[str, dict[str, float]] = {}
    names = list(commands)
    try:
        timed(commands["local"][0])  # warm the page cache and the imports once
        for rep in range(args.repeat):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                cmd, env = commands[name]
                wall, out = timed(cmd, env)
                times[name].append(wall)
                if name != "s3_read_floor":
                    values[name] = values_of(out)
                print(f"  {rep + 1}/{args.repeat} {name}: {wall:.2f} s", file=sys.stderr)
            if rep == args.repeat // 2:
                load.append(os.getloadavg()[0])
    finally:
        os.unlink(script)
        os.unlink(floor)
    reference = values["local"]
    agreement = {
        name: all(math.isclose(v[k], reference[k], rel_tol=1e-6, abs_tol=1e-12) for k in REGRESSION_METRICS)
        for name, v in values.items()
    }
    ratios = {
        f"{a}/{b}": statistics.median(x / y for x, y in zip(times[a], times[b], strict=True)) for a, b in PAIRS
    }
    load.append(os.getloadavg()[0])
    return {"times": times, "medians": {k: statistics.median(v) for k, v in times.items()}, "load": load,
            "ratios": ratios, "agreement": agreement, "values": reference}


def render(args: argparse.Namespace, rows: int, files: int, m: dict[str, Any], costs: dict[str, Any]) -> str:
    def ratio(a: str, b: str) -> str:
        return f"{m['ratios'][f'{a}/{b}']:.2f}x"

    load = ", ".join(f"{x:.1f}" for x in m["load"])
    agree = ", ".join(f"{k} {'agrees' if ok else 'DISAGREES'}" for k, ok in m["agreement"].items())
    per_task = costs["fold_s"]
    per_row_us = per_task / costs["rows_per_piece"] * 1e6
    lines = [
        SCALE_BEGIN,
        "## Scale: `--engine dask` and `s3://` (benchmarks/scale.py)",
        "",
        f"- Data: the regression dataset's first {rows:,} rows split into {files} Parquet files "
        f"(one row group each), the 8 metrics of workload (a). Command: "
        f"`python benchmarks/scale.py {' '.join(args.argv)}`.",
        f"- A local Dask cluster of {args.workers} worker processes (1 thread each) and an S3-compatible "
        "server (moto's server mode) started on 127.0.0.1 by the script; every measurement a fresh process; "
        f"{args.repeat} repetitions, the order rotated between them; each ratio is taken within a repetition "
        "and the median over repetitions is shown. Ratios only: the machine is shared.",
        f"- Agreement with the local engine (1e-6): {agree}.",
        f"- Load average of this {os.cpu_count()}-core machine (other sessions' work included) at the start, "
        f"middle and end: {load}. Above the core count, the processes queue for the cores: the Dask runs "
        "(a driver, a scheduler and two workers) lose more than the local engine's one process.",
        "",
        "| comparison | median ratio | target |",
        "|---|---:|---:|",
        f"| `--engine dask` (cluster running) / local engine | {ratio('dask', 'local')} | <= 1.5x |",
        f"| `--engine dask` / `dask.dataframe`, same cluster | {ratio('dask', 'dask_dataframe')} | <= 1.0x |",
        f"| `--engine dask` starting its own cluster / local engine | {ratio('dask_own_cluster', 'local')} | |",
        f"| `s3://` on loopback / local files (local engine) | {ratio('s3_local_engine', 'local')} | <= 1.5x |",
        f"| pyarrow only reading the two columns from `s3://` / lossctl on local files | "
        f"{ratio('s3_read_floor', 'local')} | (the server's floor) |",
        f"| `s3://` lossctl / that floor | {ratio('s3_local_engine', 's3_read_floor')} | |",
        f"| `s3://` with `--engine dask` / local files with `--engine dask` | {ratio('s3_dask', 'dask')} | |",
        "",
        "Per-task costs, measured in-process (medians):",
        "",
        "| what | measured |",
        "|---|---:|",
        f"| driver: open {files} footers, read the first chunk, decide the plan | {costs['plan_s'] * 1000:.0f} ms "
        f"({costs['plan_s'] / files * 1000:.1f} ms a file) |",
        f"| one fold task ({costs['rows_per_piece']:,} rows, one file) | {per_task * 1000:.0f} ms "
        f"({per_row_us * 1000:.1f} ns a row) |",
        f"| the same on a worker (task stream) | {(costs['worker_fold_median_s'] or 0) * 1000:.0f} ms |",
        f"| one merge of 8 states (decode, merge, encode) | {costs['merge8_s'] * 1000:.1f} ms |",
        f"| a merge task on a worker (task stream, {costs['merge_tasks']} of them) | "
        f"{(costs['worker_merge_median_s'] or 0) * 1000:.1f} ms |",
        f"| a task's state, as bytes | {costs['state_bytes']:,} B |",
        "",
        _projection(costs),
        SCALE_END,
    ]
    return "\n".join(lines) + "\n"


def _projection(costs: dict[str, Any]) -> str:
    """What a 1-billion-row, 1,000-file dataset would cost, from the measured per-task figures."""
    rows, files = 1_000_000_000, 1000
    per_row = costs["fold_s"] / costs["rows_per_piece"]
    task = per_row * rows / files
    merges = sum(math.ceil(files / 8**k) for k in range(1, 5) if files / 8 ** (k - 1) > 1)
    depth = math.ceil(math.log(files, 8))
    plan = costs["plan_s"] / costs["pieces"] * files
    return (
        f"Projection for 1,000,000,000 rows in {files:,} files (1M rows each), these 8 metrics: each fold "
        f"task ~{task:.2f} s of one core, {files:,} of them ({task * files / 60:.0f} core-minutes), so with W "
        f"workers ~{task * files:.0f}/W s; {merges} merge tasks in {depth} levels of at most 8, "
        f"~{costs['merge8_s'] * 1000:.0f} ms each, {depth * costs['merge8_s']:.2f} s on the critical path; "
        f"the driver opens every footer before the first task (~{plan:.1f} s for {files:,} local files at the "
        f"measured rate; remote footers cost a round trip each) and holds the plan, {files:,} piece "
        f"descriptions (~100 B each) and one state of {costs['state_bytes']:,} B at a time. Memory per worker "
        "is one chunk per lane plus one state, whatever the rows; a metric keeping every score (exact AUC, "
        "median) would instead ship 8 B a row and the driver would hold them all."
    )


def write_section(path: Path, section: str) -> None:
    path.write_text(with_scale_section(path.read_text() if path.exists() else "", section))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="generate.py's output folder (regression.parquet)")
    ap.add_argument("--lossctl", type=Path, default=BENCH_DIR.parent / ".venv" / "bin" / "lossctl")
    ap.add_argument("--files", type=int, default=32)
    ap.add_argument("--rows", type=int, help="only the first ROWS rows (default: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--results", type=Path, default=BENCH_DIR / "RESULTS.md")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    folder = shard(args.data / "regression.parquet", args.data / f"regression-{args.files}", args.files, args.rows)
    import pyarrow.parquet as pq

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in folder.glob("*.parquet"))
    servers = Servers(args.workers)
    try:
        s3_uri = servers.upload(folder)
        measured = measure(args, folder, servers, s3_uri)
        costs = per_task_costs(folder, servers.address, args.repeat)
    finally:
        servers.close()
    from run import redact

    section = render(args, rows, args.files, measured, costs)
    section = redact(section, argparse.Namespace(python=sys.executable, data=args.data))
    section = section.replace(str(args.lossctl), "$LOSSCTL").replace(sys.executable, "$PYTHON")
    write_section(args.results, section)
    print(section)
    print(json.dumps({"times": measured["times"], "ratios": measured["ratios"], "costs": costs}, indent=1),
          file=sys.stderr)
    return 0 if all(measured["agreement"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

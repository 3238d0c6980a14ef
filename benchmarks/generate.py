#!/usr/bin/env python3
"""Deterministic data generator for the lossctl benchmarks.

Writes, into ``--out`` (default ``$LOSSCTL_BENCH_DATA`` or ``benchmarks/data``):

* ``regression.parquet`` and ``regression.csv`` -- ``y_true``, ``y_pred``
  (float64). Targets are log-normal (strictly positive, so MAPE and MSLE are
  meaningful); predictions are the target plus heteroscedastic Gaussian noise,
  clipped to at least ``1e-3``. Both files hold the same rows.
* ``binary.parquet`` -- ``y_true`` (int64, 0/1, about 30 % positives),
  ``y_pred`` (float64 probability in (0, 1), rounded to 1e-6 so that the scores
  are heavily tied, as real model outputs often are).
* ``multiclass.parquet`` -- ``y_true`` (int64 label in 0..9), ``y_pred``
  (``fixed_size_list<double, 10>`` of softmax probabilities).
* ``multiclass_labels.npy`` (int64, ``(N,)``) and ``multiclass_probs.npy``
  (float64, ``(N, 10)``) -- the same rows as ``multiclass.parquet``.
* ``multiclass_columns.parquet`` and ``multiclass_columns.csv`` -- the same
  rows again in the other common layout: ``label`` (int64) and one float32
  column per class, ``prob_0`` ... ``prob_9`` (the probabilities rounded to
  float32, as a float32 model writes them).
* ``manifest.json`` -- the parameters each dataset was generated with.

Generation is chunked: memory is bounded by ``--chunk-rows`` (default 1M rows,
which is also the Parquet row-group size), whatever the row count. Every chunk
draws from its own ``numpy`` generator seeded by ``(seed, dataset, chunk)``, so
the output depends only on ``--seed``, the row counts and ``--chunk-rows``,
and re-running the generator reproduces the files byte for byte (for a given
pyarrow version). Datasets whose manifest entry already matches are skipped
unless ``--force`` is given.

Examples::

    python benchmarks/generate.py                       # full size: 20M / 20M / 5M / 5M rows
    python benchmarks/generate.py --small --out /tmp/bench-small
    python benchmarks/generate.py --scale 0.1 --only binary
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA_DIR, N_CLASSES

#: Bump when the generated values change for the same parameters.
GENERATOR_VERSION = 1

DEFAULT_ROWS = {
    "regression": 20_000_000,
    "binary": 20_000_000,
    "multiclass": 5_000_000,
    "multiclass_columns": 5_000_000,
}
SMALL_SCALE = 0.01
# multiclass_columns draws the multiclass streams: the same rows in another layout.
DATASET_IDS = {"regression": 1, "binary": 2, "multiclass": 3, "multiclass_columns": 3}
DATASET_FILES = {
    "regression": ("regression.parquet", "regression.csv"),
    "binary": ("binary.parquet",),
    "multiclass": ("multiclass.parquet", "multiclass_labels.npy", "multiclass_probs.npy"),
    "multiclass_columns": ("multiclass_columns.parquet", "multiclass_columns.csv"),
}

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DatasetParams:
    """Everything the content of one dataset depends on."""

    rows: int
    seed: int
    chunk_rows: int
    generator_version: int = GENERATOR_VERSION


def _chunks(rows: int, chunk_rows: int) -> Iterator[tuple[int, int, int]]:
    """Yield ``(chunk_index, start, stop)`` row ranges covering ``rows``."""
    for index, start in enumerate(range(0, rows, chunk_rows)):
        yield index, start, min(start + chunk_rows, rows)


def _rng(seed: int, dataset: str, chunk_index: int) -> np.random.Generator:
    """The independent random stream of one chunk of one dataset."""
    return np.random.default_rng(np.random.SeedSequence([seed, DATASET_IDS[dataset], chunk_index]))


# --------------------------------------------------------------------------- chunk makers


def regression_chunk(rng: np.random.Generator, n: int) -> pa.Table:
    """``n`` rows of log-normal targets and noisy, strictly positive predictions."""
    y_true = np.exp(rng.normal(2.0, 1.0, n))
    noise = rng.normal(0.0, 1.0, n) * (0.3 + 0.15 * y_true)
    y_pred = np.maximum(y_true + noise, 1e-3)
    return pa.table({"y_true": y_true, "y_pred": y_pred})


def binary_chunk(rng: np.random.Generator, n: int) -> pa.Table:
    """``n`` rows of 0/1 labels and tied probabilities (rounded to 1e-6) in (0, 1)."""
    y_true = (rng.random(n) < 0.3).astype(np.int64)
    logits = rng.normal(np.where(y_true == 1, 1.0, -1.0), 1.5)
    prob = 1.0 / (1.0 + np.exp(-logits))
    prob = np.clip(np.round(prob, 6), 1e-6, 1.0 - 1e-6)
    return pa.table({"y_true": y_true, "y_pred": prob})


def multiclass_chunk(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labels in ``0..N_CLASSES-1`` and ``(n, N_CLASSES)`` softmax probabilities."""
    labels = rng.integers(0, N_CLASSES, n, dtype=np.int64)
    logits = rng.normal(0.0, 1.0, (n, N_CLASSES))
    logits[np.arange(n), labels] += 1.5
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return labels, probs


def multiclass_table(labels: np.ndarray, probs: np.ndarray) -> pa.Table:
    """Arrow table with ``y_true`` and a ``fixed_size_list<double>`` ``y_pred`` column."""
    flat = pa.array(np.ascontiguousarray(probs).reshape(-1), type=pa.float64())
    y_pred = pa.FixedSizeListArray.from_arrays(flat, probs.shape[1])
    return pa.table({"y_true": pa.array(labels, type=pa.int64()), "y_pred": y_pred})


def multiclass_columns_table(labels: np.ndarray, probs: np.ndarray) -> pa.Table:
    """Arrow table with ``label`` (int64) and float32 ``prob_0`` ... ``prob_{C-1}`` columns."""
    columns = {"label": pa.array(labels, type=pa.int64())}
    for k in range(probs.shape[1]):
        columns[f"prob_{k}"] = pa.array(probs[:, k].astype(np.float32), type=pa.float32())
    return pa.table(columns)


# --------------------------------------------------------------------------- writers


def _tmp(path: Path) -> Path:
    """Temporary sibling of ``path``, renamed over it once complete."""
    return path.with_name(f".{path.name}.partial")


def _progress(name: str, done: int, total: int, started: float) -> None:
    print(
        f"\r  {name}: {done:>12,d} / {total:,d} rows  ({time.perf_counter() - started:6.1f}s)",
        end="",
        file=sys.stderr,
        flush=True,
    )


def write_regression(out: Path, p: DatasetParams) -> None:
    """Write ``regression.parquet`` and ``regression.csv`` chunk by chunk."""
    schema = pa.schema([("y_true", pa.float64()), ("y_pred", pa.float64())])
    pq_path, csv_path = out / "regression.parquet", out / "regression.csv"
    started = time.perf_counter()
    with (
        pq.ParquetWriter(_tmp(pq_path), schema) as pq_writer,
        pacsv.CSVWriter(_tmp(csv_path), schema) as csv_writer,
    ):
        for index, start, stop in _chunks(p.rows, p.chunk_rows):
            table = regression_chunk(_rng(p.seed, "regression", index), stop - start)
            pq_writer.write_table(table, row_group_size=p.chunk_rows)
            csv_writer.write_table(table)
            _progress("regression", stop, p.rows, started)
    os.replace(_tmp(pq_path), pq_path)
    os.replace(_tmp(csv_path), csv_path)


def write_binary(out: Path, p: DatasetParams) -> None:
    """Write ``binary.parquet`` chunk by chunk."""
    schema = pa.schema([("y_true", pa.int64()), ("y_pred", pa.float64())])
    path = out / "binary.parquet"
    started = time.perf_counter()
    with pq.ParquetWriter(_tmp(path), schema) as writer:
        for index, start, stop in _chunks(p.rows, p.chunk_rows):
            writer.write_table(
                binary_chunk(_rng(p.seed, "binary", index), stop - start),
                row_group_size=p.chunk_rows,
            )
            _progress("binary", stop, p.rows, started)
    os.replace(_tmp(path), path)


def write_multiclass(out: Path, p: DatasetParams) -> None:
    """Write ``multiclass.parquet`` and the two NPY files (same rows) chunk by chunk."""
    schema = pa.schema([("y_true", pa.int64()), ("y_pred", pa.list_(pa.float64(), N_CLASSES))])
    pq_path = out / "multiclass.parquet"
    lab_path, prob_path = out / "multiclass_labels.npy", out / "multiclass_probs.npy"
    labels_mm = np.lib.format.open_memmap(
        _tmp(lab_path), mode="w+", dtype=np.int64, shape=(p.rows,)
    )
    probs_mm = np.lib.format.open_memmap(
        _tmp(prob_path), mode="w+", dtype=np.float64, shape=(p.rows, N_CLASSES)
    )
    started = time.perf_counter()
    with pq.ParquetWriter(_tmp(pq_path), schema) as writer:
        for index, start, stop in _chunks(p.rows, p.chunk_rows):
            labels, probs = multiclass_chunk(_rng(p.seed, "multiclass", index), stop - start)
            writer.write_table(multiclass_table(labels, probs), row_group_size=p.chunk_rows)
            labels_mm[start:stop] = labels
            probs_mm[start:stop] = probs
            _progress("multiclass", stop, p.rows, started)
    labels_mm.flush()
    probs_mm.flush()
    del labels_mm, probs_mm
    for path in (pq_path, lab_path, prob_path):
        os.replace(_tmp(path), path)


def write_multiclass_columns(out: Path, p: DatasetParams) -> None:
    """Write ``multiclass_columns.parquet`` and ``.csv`` (``label`` + float32 ``prob_*``)."""
    fields = [("label", pa.int64())] + [(f"prob_{k}", pa.float32()) for k in range(N_CLASSES)]
    schema = pa.schema(fields)
    pq_path, csv_path = out / "multiclass_columns.parquet", out / "multiclass_columns.csv"
    started = time.perf_counter()
    with (
        pq.ParquetWriter(_tmp(pq_path), schema) as pq_writer,
        pacsv.CSVWriter(_tmp(csv_path), schema) as csv_writer,
    ):
        for index, start, stop in _chunks(p.rows, p.chunk_rows):
            labels, probs = multiclass_chunk(_rng(p.seed, "multiclass", index), stop - start)
            table = multiclass_columns_table(labels, probs)
            pq_writer.write_table(table, row_group_size=p.chunk_rows)
            csv_writer.write_table(table)
            _progress("multiclass_columns", stop, p.rows, started)
    os.replace(_tmp(pq_path), pq_path)
    os.replace(_tmp(csv_path), csv_path)


WRITERS: dict[str, Callable[[Path, DatasetParams], None]] = {
    "regression": write_regression,
    "binary": write_binary,
    "multiclass": write_multiclass,
    "multiclass_columns": write_multiclass_columns,
}


# --------------------------------------------------------------------------- manifest


def load_manifest(out: Path) -> dict[str, dict[str, object]]:
    """The manifest in ``out``, or an empty one."""
    try:
        data = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("datasets", {}) if isinstance(data, dict) else {}


def is_current(
    out: Path, dataset: str, params: DatasetParams, manifest: dict[str, dict[str, object]]
) -> bool:
    """Whether ``dataset`` already exists in ``out`` with exactly ``params``."""
    entry = manifest.get(dataset)
    if not entry or entry.get("params") != asdict(params):
        return False
    sizes = entry.get("bytes", {})
    return isinstance(sizes, dict) and all(
        (out / f).is_file() and (out / f).stat().st_size == sizes.get(f)
        for f in DATASET_FILES[dataset]
    )


def save_manifest(out: Path, manifest: dict[str, dict[str, object]]) -> None:
    """Write ``manifest.json`` into ``out``."""
    doc = {"generator": "benchmarks/generate.py", "datasets": manifest}
    (out / MANIFEST).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:" + __doc__.split("Examples::")[1],
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="output directory (default: %(default)s; env LOSSCTL_BENCH_DATA)",
    )
    ap.add_argument(
        "--rows-regression", type=int, help=f"default {DEFAULT_ROWS['regression']:,} x scale"
    )
    ap.add_argument("--rows-binary", type=int, help=f"default {DEFAULT_ROWS['binary']:,} x scale")
    ap.add_argument(
        "--rows-multiclass", type=int, help=f"default {DEFAULT_ROWS['multiclass']:,} x scale"
    )
    ap.add_argument(
        "--rows-multiclass-columns",
        type=int,
        help=f"default {DEFAULT_ROWS['multiclass_columns']:,} x scale",
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the default row counts (not explicit --rows-*)",
    )
    ap.add_argument(
        "--small",
        action="store_true",
        help=f"quick preset: --scale {SMALL_SCALE} (200k / 200k / 50k / 50k rows)",
    )
    ap.add_argument("--seed", type=int, default=20240601, help="random seed (default %(default)s)")
    ap.add_argument(
        "--chunk-rows",
        type=int,
        default=1_000_000,
        help="rows generated at a time and Parquet row-group size (default %(default)s)",
    )
    ap.add_argument(
        "--only",
        default=",".join(DEFAULT_ROWS),
        help="comma-separated datasets to generate (default: all)",
    )
    ap.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = ap.parse_args(argv)
    scale = SMALL_SCALE if args.small else args.scale
    if scale <= 0 or args.chunk_rows <= 0:
        ap.error("--scale and --chunk-rows must be positive")
    only = [d.strip() for d in args.only.split(",") if d.strip()]
    unknown = sorted(set(only) - set(DEFAULT_ROWS))
    if unknown:
        ap.error(f"unknown dataset(s) {unknown}; choose from {sorted(DEFAULT_ROWS)}")
    args.only = only
    args.rows = {}
    for name, default in DEFAULT_ROWS.items():
        explicit = getattr(args, f"rows_{name}")
        rows = explicit if explicit is not None else max(1, round(default * scale))
        if rows <= 0:
            ap.error(f"--rows-{name} must be positive")
        args.rows[name] = rows
    return args


def main(argv: list[str] | None = None) -> int:
    """Generate the requested datasets; return the process exit status."""
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out)
    for dataset in args.only:
        params = DatasetParams(rows=args.rows[dataset], seed=args.seed, chunk_rows=args.chunk_rows)
        if not args.force and is_current(out, dataset, params, manifest):
            print(f"  {dataset}: up to date ({params.rows:,} rows), skipped", file=sys.stderr)
            continue
        started = time.perf_counter()
        WRITERS[dataset](out, params)
        manifest[dataset] = {
            "params": asdict(params),
            "files": list(DATASET_FILES[dataset]),
            "bytes": {f: (out / f).stat().st_size for f in DATASET_FILES[dataset]},
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pyarrow": pa.__version__,
            "numpy": np.__version__,
        }
        save_manifest(out, manifest)
        print(
            f"\n  {dataset}: {params.rows:,} rows in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
    print(f"data in {out.resolve()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

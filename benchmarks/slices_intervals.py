#!/usr/bin/env python3
"""Slices (``--by``) and bootstrap intervals (``--ci``) against what users do without them.

On the regression Parquet of ``generate.py`` with two group keys added
(``slices_data.py``: ``segment``, 20 text groups dictionary-encoded; ``cell``,
100,000 integer groups) and the 8 metrics of the regression benchmark:

1. ``lossctl eval --by segment`` against DuckDB ``GROUP BY`` and polars
   ``group_by`` computing the same metrics per group (``slices_peers.py``), and
   against lossctl's own plain pass;
2. the same with ``--by cell`` (100,000 groups), with peak RSS;
3. peak RSS of ``--by`` at half the rows and at all of them (same groups);
4. ``--ci 0.95 --bootstrap 1000`` against lossctl's plain pass and a NumPy loop
   resampling row indices (timed at ``--numpy-replicates`` and scaled linearly
   to 1,000); the binary Parquet with exact AUC and ``--ci``: time and peak RSS.

Every measurement is a fresh process (``run.measure``: wall and CPU from
``wait4``; peak RSS from GNU time), all of them interleaved in rounds whose order is
rotated; the report gives medians over ``--repeat`` rounds and ratios of
medians within this one run, checks that lossctl and the peers agree on every
group's numbers (``common.REL_TOL``) and writes
``benchmarks/RESULTS-slices-intervals.md`` (``--results``).

Examples::

    python benchmarks/slices_intervals.py --data "$DATA" --lossctl .venv/bin/lossctl
    python benchmarks/slices_intervals.py --quick --results /tmp/slices.md
    python benchmarks/slices_intervals.py --rows 5000000 --lossctl "python -m lossctl"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, DEFAULT_DATA_DIR, WORKLOADS
from run import DEFAULT_LOSSCTL, Run, measure, warm_cache
from slices_report import KEYS, PEER_TOOLS, REGRESSION, REPLICATES, Arm, Groups, render

PEERS = BENCH_DIR / "slices_peers.py"
DEFAULT_RESULTS = BENCH_DIR / "RESULTS-slices-intervals.md"
BINARY = WORKLOADS["binary_parquet"].lossctl
TIME = Path("/usr/bin/time")
RSS_MARK = "lossctl-bench-max-rss-kb="


def lossctl_eval(lossctl: list[str], path: Path, request: object, *extra: str) -> list[str]:
    """``lossctl eval`` of the benchmark's specs on ``path``, CSV on standard output."""
    return [
        *lossctl, "eval", str(path), "--true", "y_true", "--pred", "y_pred",
        "--loss", ",".join(request.losses), "--metric", ",".join(request.metrics),  # type: ignore[attr-defined]
        "-f", "csv", "--no-config", "-q", *extra,
    ]  # fmt: skip


def build_arms(args: argparse.Namespace, files: dict[str, Path]) -> dict[str, Arm]:
    """Every measured command, by name."""
    lc, py, by, half = args.lossctl, args.python, files["by"], files["by_half"]
    many = ("--max-groups", "100000")
    ci = ("--ci", "0.95", "--bootstrap", str(REPLICATES))
    arms = [
        Arm("lossctl plain", cmd=lossctl_eval(lc, by, REGRESSION)),
        Arm("lossctl --by segment", cmd=lossctl_eval(lc, by, REGRESSION, "--by", "segment")),
        Arm("duckdb GROUP BY segment", cmd=[py, str(PEERS), "duckdb-by", str(by), "segment"]),
        Arm("polars group_by segment", cmd=[py, str(PEERS), "polars-by", str(by), "segment"]),
        Arm("lossctl --by cell", cmd=lossctl_eval(lc, by, REGRESSION, "--by", "cell", *many)),
        Arm("duckdb GROUP BY cell", cmd=[py, str(PEERS), "duckdb-by", str(by), "cell"]),
        Arm("polars group_by cell", cmd=[py, str(PEERS), "polars-by", str(by), "cell"]),
        Arm("lossctl plain, half rows", cmd=lossctl_eval(lc, half, REGRESSION)),
        Arm("lossctl --by segment, half rows", cmd=lossctl_eval(lc, half, REGRESSION, "--by", "segment")),
        Arm("lossctl --by cell, half rows", cmd=lossctl_eval(lc, half, REGRESSION, "--by", "cell", *many)),
        Arm("lossctl --ci", cmd=lossctl_eval(lc, by, REGRESSION, *ci)),
        Arm("numpy bootstrap loop", cmd=[py, str(PEERS), "numpy-bootstrap", str(by), str(args.numpy_replicates)]),
        Arm("lossctl binary plain", cmd=lossctl_eval(lc, files["binary"], BINARY)),
        Arm("lossctl binary --ci", cmd=lossctl_eval(lc, files["binary"], BINARY, *ci)),
    ]  # fmt: skip
    return {a.name: a for a in arms}


def measure_rss(cmd: list[str], cwd: Path, timeout: float | None) -> Run:
    """``run.measure`` with the peak RSS of ``cmd`` itself, read by GNU time.

    The RSS that ``measure`` reads from ``wait4`` is at least the harness's own
    high-water mark (the child is started by vfork and inherits it), which grows
    here with the outputs kept; GNU time's child starts small.
    """
    if not TIME.is_file():
        return measure(cmd, cwd, timeout)
    run = measure([str(TIME), "-f", RSS_MARK + "%M", *cmd], cwd, timeout)
    lines = run.stderr.rstrip().splitlines()
    if lines and lines[-1].startswith(RSS_MARK):
        run.max_rss_mb = int(lines[-1][len(RSS_MARK) :]) / 1024.0
        run.stderr = "\n".join(lines[:-1])
    if run.returncode != 0:  # GNU time exits with the command's status
        run.valid = False
    return run


def run_rounds(arms: dict[str, Arm], repeat: int, timeout: float | None) -> None:
    """``repeat`` rounds of every arm, fresh processes, the order rotated from round to round."""
    order = list(arms.values())
    workdir = Path(tempfile.mkdtemp(prefix="lossctl-slices-"))  # empty cwd: no config files
    try:
        for i in range(repeat):
            shift = (i * len(order)) // repeat
            for arm in order[shift:] + order[:shift]:
                run = measure_rss(arm.cmd, workdir, timeout)
                arm.runs.append(run)
                if run.valid and (not arm.outputs or len(run.stdout) < 1 << 16):
                    arm.outputs.append(run.stdout)
                run.stdout = ""
                status = "ok" if run.valid else f"FAILED (exit {run.returncode}) {run.stderr.strip()[-300:]}"
                print(
                    f"  [{i + 1}/{repeat}] {arm.name:<34} {run.wall_s:8.2f}s cpu {run.cpu_s:8.2f}s "
                    f"{run.max_rss_mb or 0:7.0f} MB  {status}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def peer_dumps(args: argparse.Namespace, files: dict[str, Path]) -> dict[tuple[str, str], Groups]:
    """Each peer's numbers per group of each key, from one untimed run (also a warm-up)."""
    out: dict[tuple[str, str], Groups] = {}
    with tempfile.TemporaryDirectory(prefix="lossctl-slices-") as tmp:
        for key in KEYS:
            for tool in PEER_TOOLS:
                dump = Path(tmp) / f"{tool}-{key}.json"
                cmd = [args.python, str(PEERS), f"{tool}-by", str(files["by"]), key, "--dump", str(dump)]
                run = measure_rss(cmd, Path(tmp), args.timeout)
                out[tool, key] = json.loads(dump.read_text()) if run.valid else {}
    return out


def json_at_many_groups(args: argparse.Namespace, path: Path) -> Run:
    """One ``--by cell`` run with JSON output (the other runs write CSV): its peak RSS."""
    cmd = lossctl_eval(args.lossctl, path, REGRESSION, "--by", "cell", "--max-groups", "100000", "-f", "json")
    with tempfile.TemporaryDirectory(prefix="lossctl-slices-") as tmp:
        run = measure_rss(cmd, Path(tmp), args.timeout)
    run.stdout = ""
    return run



def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:" + __doc__.split("Examples::")[1],
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="directory of generate.py's data")
    ap.add_argument("--rows", type=int, help="rows of the regression and binary files (default 20,000,000)")
    ap.add_argument("--quick", action="store_true", help="a check of the script: 200,000 rows, 1 round")
    ap.add_argument("--repeat", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument(
        "--lossctl",
        default=str(DEFAULT_LOSSCTL),
        help="lossctl command, split like a shell line (default: %(default)s)",
    )
    ap.add_argument("--python", default=sys.executable, help="interpreter of the peers (default: this one)")
    ap.add_argument(
        "--numpy-replicates", type=int, help="replicates of the timed NumPy loop (default 10; 3 with --quick)"
    )
    ap.add_argument("--skip", type=lambda v: [s.strip() for s in v.split(",") if s.strip()], default=[],
                    help="comma-separated runs not to measure, by name (e.g. 'lossctl binary --ci')")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before one run is killed")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="report to write (Markdown)")
    args = ap.parse_args(argv)
    args.rows = args.rows or (200_000 if args.quick else 20_000_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.numpy_replicates = args.numpy_replicates or (3 if args.quick else 10)
    if args.rows < 2 or args.repeat < 1 or args.numpy_replicates < 2:
        ap.error("--rows must be >= 2, --repeat >= 1, --numpy-replicates >= 2")
    args.lossctl_text = args.lossctl
    args.lossctl = shlex.split(args.lossctl)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import slices_data

    args = parse_args(argv)
    load_before = os.getloadavg()
    files = slices_data.prepare(args.data.resolve(), args.rows)
    warm_cache(list(files.values()))
    arms = build_arms(args, files)
    checks = peer_dumps(args, files)
    unknown = sorted(set(args.skip) - set(arms))
    if unknown:
        raise SystemExit(f"--skip: no run named {', '.join(unknown)}; runs: {', '.join(arms)}")
    run_rounds({k: a for k, a in arms.items() if k not in args.skip}, args.repeat, args.timeout)
    json_run = json_at_many_groups(args, files["by"])
    report = render(args, files, arms, checks, json_run, (load_before, os.getloadavg()))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(report)
    print(report)
    print(f"wrote {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a plugin loss costs: a plugin MSE against the built-in ``mse``, whole processes, one run.

The same ``lossctl eval`` on the same generated regression Parquet, once with
``--loss mse`` and once with ``--plugin benchmarks/plugin_mse.py --loss
plugin_mse`` (the same arithmetic written as a Keras user writes a loss), in
alternating fresh processes after a warm-up of each; the report gives both
medians and their ratio, and checks that the two values agree (1e-9). The
issue's bar is a ratio of at most 1.2; ``--max-ratio`` makes the exit status
say whether it held.

Examples::

    "$BENCH_VENV"/bin/python benchmarks/generate.py --out "$DATA"
    "$BENCH_VENV"/bin/python benchmarks/plugin_overhead.py --data "$DATA" --results benchmarks/PLUGINS.md
    python benchmarks/plugin_overhead.py --data /tmp/bench-small --repeat 3 --results /tmp/plugins.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from common import BENCH_DIR, DEFAULT_DATA_DIR
from run import DEFAULT_LOSSCTL, Run, measure, redact, warm_cache

PLUGIN = BENCH_DIR / "plugin_mse.py"
ARMS = {
    "built-in mse": ["--loss", "mse"],
    "plugin mse": ["--plugin", str(PLUGIN), "--loss", "plugin_mse"],
}


def command(lossctl: Path, data: Path, arm: str) -> list[str]:
    return [str(lossctl), "eval", str(data / "regression.parquet"), *ARMS[arm], "-f", "json", "-q"]


def value_of(run: Run) -> float:
    if not run.valid:
        raise SystemExit(f"lossctl failed (exit {run.returncode}): {run.stderr.strip()}")
    return float(json.loads(run.stdout)["results"][0]["value"])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="directory written by generate.py")
    ap.add_argument("--lossctl", type=Path, default=DEFAULT_LOSSCTL, help="lossctl executable")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs of each (default %(default)s)")
    ap.add_argument("--max-ratio", type=float, default=1.2, help="exit 1 above this ratio (default %(default)s)")
    ap.add_argument("--results", type=Path, help="also write the report (Markdown) here")
    args = ap.parse_args(argv)
    args.python = sys.executable
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data = args.data.resolve()
    if not (data / "regression.parquet").is_file():
        raise SystemExit(f"{data}/regression.parquet is missing: run benchmarks/generate.py --out {args.data}")
    warm_cache([data / "regression.parquet"])
    runs: dict[str, list[Run]] = {arm: [] for arm in ARMS}
    values: dict[str, float] = {}
    for i in range(args.repeat + 1):  # the first round warms up and is not counted
        for arm in ARMS if i % 2 == 0 else reversed(list(ARMS)):
            run = measure(command(args.lossctl, data, arm), BENCH_DIR.parent, None)
            values[arm] = value_of(run)
            if i:
                runs[arm].append(run)
    walls = {arm: statistics.median(r.wall_s for r in rs) for arm, rs in runs.items()}
    cpus = {arm: statistics.median(r.cpu_s for r in rs) for arm, rs in runs.items()}
    rss = {arm: max(r.max_rss_mb or 0.0 for r in rs) for arm, rs in runs.items()}
    # CPU seconds the rest of the machine used during each run: well above 0, the timings were disturbed.
    others = {arm: statistics.median(r.other_cpu_s or 0.0 for r in rs) for arm, rs in runs.items()}
    ratio = walls["plugin mse"] / walls["built-in mse"]
    agree = math.isclose(values["plugin mse"], values["built-in mse"], rel_tol=1e-9)
    lines = [
        "# Plugin loss against built-in loss",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        f"- Command: `python benchmarks/plugin_overhead.py --data {args.data} --lossctl {args.lossctl} "
        f"--repeat {args.repeat}`",
        f"- Input: `{args.data}/regression.parquet` ({(data / 'regression.parquet').stat().st_size / 1e6:.1f} MB)",
        f"- Method: fresh processes, alternating, after one warm-up of each; median of {args.repeat}.",
        "",
        "| command | median wall s | median CPU s | peak RSS MB | others' CPU s | value |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| `lossctl eval regression.parquet {' '.join(ARMS[arm])}` | {walls[arm]:.3f} | {cpus[arm]:.3f} "
            f"| {rss[arm]:.0f} | {others[arm]:.2f} | {values[arm]!r} |"
            for arm in ARMS
        ),
        "",
        f"**plugin / built-in: {ratio:.3f}x** (bar: at most {args.max_ratio}x); "
        f"values {'agree' if agree else 'DISAGREE'} (1e-9).",
        "",
    ]
    report = "\n".join(lines)
    if not args.lossctl.resolve().is_relative_to(BENCH_DIR.parent):
        report = report.replace(str(args.lossctl), "$LOSSCTL")
    report = redact(report, args)
    print(report)
    if args.results:
        args.results.write_text(report)
    return 0 if agree and ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())

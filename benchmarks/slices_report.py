"""Agreement checks and the Markdown report of ``slices_intervals.py``."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import shlex
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from common import ABS_TOL, BENCH_DIR, REL_TOL, WORKLOADS
from run import (
    Outcome,
    Run,
    _read_cpu_model,
    env_versions,
    redact,
    rel_diff,
    script_interpreter,
)


@dataclass
class Arm(Outcome):
    """One command measured in every round (``tool`` is its name)."""

    cmd: list[str] = field(default_factory=list)
    #: standard output of the successful runs (of the first only when it is long)
    outputs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.tool


Groups = dict[str, dict[str, float]]
REGRESSION = WORKLOADS["regression_parquet"].lossctl
KEYS = ("segment", "cell")
PEER_TOOLS = ("duckdb", "polars")
#: Bootstrap replicates of the --ci runs.
REPLICATES = 1000
#: The issue's bars: lossctl / faster peer (--by), RSS at 100,000 groups and for binary --ci (MB).
BY_BAR, CI_PEER_BAR, CI_PLAIN_BAR, RSS_BY_BAR_MB, RSS_CI_BAR_MB = 1.0, 0.1, 25.0, 600.0, 1000.0


def mb(mib: float | None) -> float | None:
    """MiB (what ``run.measure`` gives) in MB (10^6 bytes, the issue's unit)."""
    return None if mib is None else mib * 1.048576


def parse_lossctl(text: str, key: str | None = None) -> tuple[Groups, dict[str, tuple[float, ...]]]:
    """``({group: {metric: value}}, {metric: (low, high, se)})`` from lossctl's CSV; ``""`` is overall."""
    groups: Groups = {}
    intervals: dict[str, tuple[float, ...]] = {}
    specs = {**REGRESSION.specs, **WORKLOADS["binary_parquet"].lossctl.specs}
    for row in csv.DictReader(io.StringIO(text)):
        metric = specs.get(row["spec"], row["spec"])
        group = row.get(key, "") if key else ""
        groups.setdefault(group, {})[metric] = float(row["value"] or "nan")
        groups[group]["rows"] = float(row["rows"])
        if not group and row.get("ci_low"):
            intervals[metric] = (float(row["ci_low"]), float(row["ci_high"]), float(row["se"]))
    return groups, intervals


def compare(a: Groups, b: Groups) -> tuple[float, str]:
    """Largest relative difference over every group and metric both have, and what differs."""
    if set(a) != set(b):
        return float("inf"), f"groups differ: {len(a)} vs {len(b)}"
    worst, undefined = 0.0, 0
    for g, values in a.items():
        for metric, v in values.items():
            w = b[g].get(metric, v)
            if not (math.isfinite(v) and math.isfinite(w)):
                undefined += 1
                worst = worst if math.isfinite(v) == math.isfinite(w) else float("inf")
            elif abs(v - w) > ABS_TOL:
                worst = max(worst, rel_diff(v, w))
    note = f", {undefined} values undefined in both" if undefined and math.isfinite(worst) else ""
    return worst, f"{len(a)} groups{note}"


def agreement(arms: dict[str, Arm], dumps: dict[tuple[str, str], Groups]) -> list[str]:
    """One Markdown line per key: lossctl against each peer, every group and metric."""
    lines = []
    overall, _ = parse_lossctl(arms["lossctl plain"].outputs[0]) if arms["lossctl plain"].outputs else ({}, {})
    for key in KEYS:
        arm = arms[f"lossctl --by {key}"]
        if not arm.outputs:
            lines.append(f"- `--by {key}`: lossctl failed, nothing compared")
            continue
        ours, _ = parse_lossctl(arm.outputs[0], key)
        whole = ours.pop("", {})
        cells = []
        for tool in PEER_TOOLS:
            worst, what = compare(ours, dumps.get((tool, key), {}))
            verdict = "agree" if worst <= REL_TOL else "DISAGREE"
            cells.append(f"{tool}: {verdict}, {what}, largest relative difference {worst:.1e}")
        worst, _ = compare({"": whole}, overall)
        cells.append(f"overall row = plain pass ({worst:.1e})")
        lines.append(f"- `--by {key}`: " + "; ".join(cells))
    return lines


def numpy_scaled(arm: Arm) -> tuple[float | None, float | None, dict[str, Any]]:
    """Median wall of the NumPy loop scaled to ``REPLICATES``, its per-replicate seconds, one output."""
    estimates, per_rep, last = [], [], {}
    for out in arm.outputs:
        last = json.loads(out.splitlines()[-1])
        b = last["replicates"]
        per_rep.append(last["loop_s"] / b)
    walls = [r.wall_s for r in arm.ok_runs]
    for wall, rep in zip(walls, per_rep, strict=False):
        estimates.append(wall + (REPLICATES - last["replicates"]) * rep)
    med = statistics.median
    return (med(estimates) if estimates else None, med(per_rep) if per_rep else None, last)


def _f(v: float | None, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def _r(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _others(arm: Arm) -> str:
    vals = [r.other_cpu_s / r.wall_s for r in arm.ok_runs if r.other_cpu_s is not None and r.wall_s > 0]
    return _f(statistics.median(vals)) if vals else "—"


def _row(arm: Arm, ratio: str = "") -> str:
    return (
        f"| {arm.name} | {_f(arm.wall)} | {_f(arm.median('cpu_s'))} | {_f(mb(arm.peak_rss), '.0f')} "
        f"| {_others(arm)} | {ratio} |"
    )


HEAD = ["| run | median wall s | median CPU s | peak RSS MB | others' cores | ratio |", "|---|---:|---:|---:|---:|---:|"]


def _meets(value: float | None, bar: float) -> str:
    return "—" if value is None else ("**met**" if value <= bar else "**not met**")


def _by_section(arms: dict[str, Arm], key: str, groups: str) -> tuple[list[str], float | None]:
    ours = arms[f"lossctl --by {key}"]
    peers = [arms[f"duckdb GROUP BY {key}"], arms[f"polars group_by {key}"]]
    timed = [p for p in peers if p.wall is not None]
    fastest = min(timed, key=lambda p: p.wall or 0.0) if timed else None
    ratio = _r(ours.wall, fastest.wall if fastest else None)
    cpu = _r(ours.median("cpu_s"), fastest.median("cpu_s") if fastest else None)
    rows = [_row(ours, f"{_f(ratio)}x the faster peer ({fastest.name if fastest else '—'}); CPU {_f(cpu)}x")]
    rows += [_row(p) for p in peers]
    plain = arms["lossctl plain"]
    rows.append(_row(plain, f"--by / plain {_f(_r(ours.wall, plain.wall))}x"))
    return [f"### `--by {key}` ({groups})", "", *HEAD, *rows, ""], ratio


def render(
    args: argparse.Namespace,
    files: dict[str, Path],
    arms: dict[str, Arm],
    dumps: dict[tuple[str, str], Groups],
    json_run: Run,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> str:
    """The Markdown report, with this machine's paths replaced by roles."""
    rows = pq.ParquetFile(files["by"]).metadata.num_rows
    lossctl_py = args.lossctl[0] if "python" in Path(args.lossctl[0]).name else script_interpreter(Path(args.lossctl[0]))
    peer_env, our_env = env_versions(args.python), env_versions(lossctl_py) if lossctl_py else {}
    seg, seg_ratio = _by_section(arms, "segment", "20 text groups, dictionary-encoded")
    cell, cell_ratio = _by_section(arms, "cell", "100,000 integer groups")
    cell_rss = mb(arms["lossctl --by cell"].peak_rss)
    numpy_1000, per_rep, numpy_out = numpy_scaled(arms["numpy bootstrap loop"])
    ci, plain = arms["lossctl --ci"], arms["lossctl plain"]
    ci_plain, ci_numpy = _r(ci.wall, plain.wall), _r(ci.wall, numpy_1000)
    ci_plain_cpu = _r(ci.median("cpu_s"), plain.median("cpu_s"))
    bci, bplain = arms["lossctl binary --ci"], arms["lossctl binary plain"]
    mem = [
        f"| {what} | {_f(mb(arms[half].peak_rss), '.0f')} | {_f(mb(arms[full].peak_rss), '.0f')} "
        f"| {_f(_r(arms[full].peak_rss, arms[half].peak_rss), '.3f')} |"
        for what, half, full in (
            ("plain", "lossctl plain, half rows", "lossctl plain"),
            ("`--by segment` (20 groups)", "lossctl --by segment, half rows", "lossctl --by segment"),
            ("`--by cell` (100,000 groups)", "lossctl --by cell, half rows", "lossctl --by cell"),
        )
    ]
    _, intervals = parse_lossctl(ci.outputs[0]) if ci.outputs else ({}, {})
    se_rows = [
        f"| {k} | {_f(v[2], '.4g')} | {_f(numpy_out.get('metrics', {}).get(k, {}).get('se'), '.4g')} |"
        for k, v in intervals.items()
    ]
    size = "" if rows == 20_000_000 else f" ({rows:,} rows, not the issue's 20,000,000: `--rows`)"
    skipped = f" Not measured (`--skip`): {', '.join(args.skip)}." if args.skip else ""
    lines = [
        "# Slices and confidence intervals: lossctl against what users do without them",
        "",
        f"- Date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- Command: `python benchmarks/slices_intervals.py --data {args.data} --rows {args.rows} "
        f"--repeat {args.repeat} --numpy-replicates {args.numpy_replicates} --lossctl '{args.lossctl_text}'`",
        f"- Machine: {_read_cpu_model()}, {os.cpu_count()} cores, shared; load average "
        f"(1, 5, 15 min) {' '.join(f'{x:.1f}' for x in loads[0])} at the start, "
        f"{' '.join(f'{x:.1f}' for x in loads[1])} at the end. 'Others' cores' below is the CPU the "
        "rest of the machine used during each run divided by its wall time (median): the "
        "timings are disturbed by as much.",
        f"- lossctl {our_env.get('lossctl', '?')} (Python {our_env.get('python', '?')}, NumPy "
        f"{our_env.get('numpy', '?')}, pyarrow {our_env.get('pyarrow', '?')}); peers: DuckDB "
        f"{peer_env.get('duckdb', '?')}, polars {peer_env.get('polars', '?')}, NumPy "
        f"{peer_env.get('numpy', '?')}. torchmetrics' BootStrapper: not measured (torch from "
        "the package index pulls the CUDA build, several GB: not a quick install).",
        f"- Input: `{files['by']}` ({rows:,} rows of the regression data of `generate.py` "
        "with the keys of `slices_data.py`), its first half, and "
        f"`{files['binary']}`; page cache warm.",
        f"- Method: every run a fresh process (wall and CPU from `wait4`, peak RSS from GNU time: `wait4`'s figure would include the harness's own high-water mark); "
        f"{args.repeat} round(s) of all the runs below, the order rotated between rounds; "
        f"medians, ratios of medians of this one run{size}.{skipped} "
        "lossctl writes CSV (every group's rows) "
        "to a file; the peers fetch their result into NumPy arrays (DuckDB) or a DataFrame "
        "(polars). The 8 metrics: " + ", ".join(f"`{s}`" for s in (*REGRESSION.losses, *REGRESSION.metrics)) + ".",
        "",
        "## Summary against the issue's bars",
        "",
        "| what | measured | bar | |",
        "|---|---:|---:|---|",
        f"| `--by segment` / faster peer | {_f(seg_ratio)}x | ≤ {BY_BAR}x | {_meets(seg_ratio, BY_BAR)} |",
        f"| `--by cell` (100k groups) / faster peer | {_f(cell_ratio)}x | ≤ {BY_BAR}x | {_meets(cell_ratio, BY_BAR)} |",
        f"| `--by cell` peak RSS | {_f(cell_rss, '.0f')} MB | < {RSS_BY_BAR_MB:.0f} MB | {_meets(cell_rss, RSS_BY_BAR_MB)} |",
        f"| `--ci` / NumPy loop (scaled to {REPLICATES}) | {_f(ci_numpy, '.3f')}x | ≤ {CI_PEER_BAR}x | {_meets(ci_numpy, CI_PEER_BAR)} |",
        f"| `--ci` / plain pass | {_f(ci_plain, '.1f')}x | ≤ {CI_PLAIN_BAR:.0f}x | {_meets(ci_plain, CI_PLAIN_BAR)} |",
        f"| binary `--ci` peak RSS (exact AUC) | {_f(mb(bci.peak_rss), '.0f')} MB | < {RSS_CI_BAR_MB:.0f} MB | {_meets(mb(bci.peak_rss), RSS_CI_BAR_MB)} |",
        "",
        "## Slices",
        "",
        *seg,
        *cell,
        f"With JSON output instead of CSV (one run): `--by cell` {json_run.wall_s:.1f} s wall, "
        f"peak RSS {_f(mb(json_run.max_rss_mb), '.0f')} MB.",
        "",
        "Agreement (every group, every metric, relative tolerance "
        f"{REL_TOL:g}; the peers' numbers from one untimed run each):",
        "",
        *agreement(arms, dumps),
        "",
        "### Memory grows with groups, not rows",
        "",
        f"| run | peak RSS MB, {rows // 2:,} rows | peak RSS MB, {rows:,} rows | ratio |",
        "|---|---:|---:|---:|",
        *mem,
        "",
        "## Confidence intervals: `--ci 0.95 --bootstrap 1000`",
        "",
        *HEAD,
        _row(ci, f"{_f(ci_plain, '.1f')}x the plain pass (CPU {_f(ci_plain_cpu, '.1f')}x); {_f(ci_numpy, '.3f')}x the NumPy loop"),
        _row(plain),
        _row(arms["numpy bootstrap loop"], f"B = {args.numpy_replicates} as run"),
        f"| NumPy loop scaled to B = {REPLICATES} | {_f(numpy_1000, '.1f')} | | | | "
        f"{_f(per_rep, '.3f')} s per replicate |",
        _row(bci, f"{_f(_r(bci.wall, bplain.wall), '.1f')}x the binary plain pass (CPU "
             f"{_f(_r(bci.median('cpu_s'), bplain.median('cpu_s')), '.1f')}x)"),
        _row(bplain),
        "",
        f"The NumPy loop (`idx = rng.integers(0, n, n)`, the 8 metrics of `peers.np_regression` on "
        f"`y_true[idx], y_pred[idx]`) ran {args.numpy_replicates} replicates; its time at "
        f"{REPLICATES} is the run's wall time plus {REPLICATES - args.numpy_replicates} times the "
        "replicate time it measured itself (linear scaling; loading and start-up counted once). "
        "Standard errors, overall (lossctl's Poisson bootstrap with 1,000 replicates; the NumPy "
        f"loop's {args.numpy_replicates} resamples, so only a rough check):",
        "",
        "| metric | lossctl se | NumPy loop se |",
        "|---|---:|---:|",
        *se_rows,
        "",
        "## Commands",
        "",
        *(f"- {a.name}: `{shlex.join(a.cmd)}`" for a in arms.values()),
        "",
    ]
    text = "\n".join(lines)
    if any(Path(p).is_absolute() and not Path(p).resolve().is_relative_to(BENCH_DIR.parent) for p in args.lossctl[:1]):
        text = text.replace(shlex.join(args.lossctl), "$LOSSCTL").replace(args.lossctl_text, "$LOSSCTL")
    return redact(text, args)

#!/usr/bin/env python3
"""``lossctl compare`` against DuckDB and polars joining two models' files, and its paired ``--ci``.

Three measurements, each a set of arms run in fresh processes, the order of
the arms rotated from one round to the next, medians of ``--repeat`` rounds,
ratios taken within the run (see run.py for how a process is measured):

1. **Positional**: two ``--rows`` regression Parquet files over the same rows
   (the baseline is ``generate.py``'s regression rows, the candidate the same
   ``y_true`` with another model's ``y_pred``, both with an ``id`` column),
   the 8 regression metrics of both models: ``lossctl compare`` against
   DuckDB (``POSITIONAL JOIN``) and polars (horizontal concat), one pass each
   (compare_peers.py). Bar: at most 1.0x the faster peer.
2. **Keyed**: the same with the candidate's rows shuffled, ``--key id``
   against the peers' inner join on ``id``. Bar: peak RSS under 1.5 GB.
3. **Paired intervals**: ``compare --ci 0.95 --bootstrap 1000`` against the
   single-file ``eval --ci 0.95 --bootstrap 1000`` on the baseline, on
   ``--ci-rows`` rows (the first rows of the same data). Bar: at most 2.0x.

Every tool's numbers are checked against the others' (``common.REL_TOL``),
and lossctl's delta against candidate − baseline. The report (``--results``)
names no path of the machine it ran on.

Examples::

    python benchmarks/compare.py                                  # 20M rows, 2M for --ci
    python benchmarks/compare.py --rows 5000000 --ci-rows 1000000 --repeat 5
    python benchmarks/compare.py --rows 200000 --ci-rows 100000 --results /tmp/compare.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DIR, DEFAULT_DATA_DIR, REGRESSION_METRICS, WORKLOADS
from compare_data import FILES
from run import DEFAULT_LOSSCTL, Run, close, machine_info, measure, redact, warm_cache

# NumPy and pyarrow are imported by compare_data.py only, run in a child process (--generate):
# the peak RSS that wait4 reports for a timed process is at least this process's own (the
# child is started by vfork), so this one stays small.

PEERS = BENCH_DIR / "compare_peers.py"
DEFAULT_RESULTS = BENCH_DIR / "RESULTS-compare.md"
REQUEST = WORKLOADS["regression_parquet"].lossctl
SPECS = ["--loss", ",".join(REQUEST.losses), "--metric", ",".join(REQUEST.metrics)]
OUTPUT = ["-f", "json", "-q", "--no-config"]
CI = ["--ci", "0.95", "--bootstrap", "1000"]
ARMS = ("baseline", "candidate")
MAX_RATIO, MAX_KEYED_RSS_MB, MAX_CI_RATIO = 1.0, 1.5 * 1024, 2.0


# =========================================================================== arms


@dataclass
class Arm:
    """One command timed in every round, with what it printed."""

    label: str
    cmd: list[str]
    runs: list[Run] = field(default_factory=list)
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str = ""

    def median(self, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in self.runs if r.valid and getattr(r, attr) is not None]
        return statistics.median(vals) if vals else None

    @property
    def rss(self) -> float | None:
        vals = [r.max_rss_mb for r in self.runs if r.valid and r.max_rss_mb is not None]
        return max(vals) if vals else None


def lossctl_values(stdout: str) -> dict[str, dict[str, float]]:
    """``{arm: {metric key: value}}`` from ``lossctl compare``'s (or ``eval``'s) JSON."""
    doc = json.loads(stdout)
    out: dict[str, dict[str, float]] = {"rows": {"rows": float(doc["input"]["rows"])}}
    for res in doc["results"]:
        key = REQUEST.specs.get(str(res.get("spec"))) or REQUEST.specs.get(str(res.get("name")))
        if key is not None and res.get("value") is not None:
            out.setdefault(res.get("arm", "baseline"), {})[key] = float(res["value"])
    return out


def peer_values(stdout: str) -> dict[str, dict[str, float]]:
    doc = json.loads(stdout.strip().splitlines()[-1])
    if doc["truth_differs"]:
        raise ValueError(f"{doc['truth_differs']} rows with another y_true")
    return dict(doc["metrics"], rows={"rows": float(doc["rows"])})


def build_arms(args: argparse.Namespace, big: Path, small: Path) -> dict[str, dict[str, Arm]]:
    lossctl = [str(args.lossctl)]
    base, cand, shuf = (big / f for f in FILES)

    def compare(b: Path, c: Path, *extra: str) -> list[str]:
        return [*lossctl, "compare", str(b), str(c), *SPECS, *OUTPUT, *extra]

    def peer(tool: str, join: str, c: Path) -> list[str]:
        return [args.python, str(PEERS), tool, join, str(base), str(c)]

    sb, sc = small / FILES[0], small / FILES[1]
    return {
        "position": {
            "lossctl": Arm("lossctl compare", compare(base, cand)),
            "duckdb": Arm("duckdb POSITIONAL JOIN", peer("duckdb", "position", cand)),
            "polars": Arm("polars concat(how=horizontal)", peer("polars", "position", cand)),
        },
        "key": {
            "lossctl": Arm("lossctl compare --key id", compare(base, shuf, "--key", "id")),
            "duckdb": Arm("duckdb JOIN ON id", peer("duckdb", "key", shuf)),
            "polars": Arm("polars join(on=id)", peer("polars", "key", shuf)),
        },
        "ci": {
            "compare": Arm("lossctl compare --ci", compare(sb, sc, *CI)),
            "eval": Arm(
                "lossctl eval --ci (baseline only)",
                [*lossctl, "eval", str(sb), *SPECS, *OUTPUT, *CI],
            ),
        },
    }


def run_rounds(arms: list[Arm], repeat: int, timeout: float | None, cwd: Path) -> None:
    """``repeat`` rounds of every arm, the order rotated by one each round."""
    for rep in range(repeat):
        shift = rep % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            if arm.error:
                continue
            run = measure(arm.cmd, cwd, timeout)
            arm.runs.append(run)
            if not run.valid:
                arm.error = f"exit {run.returncode}: {run.stderr.strip()[-500:]}"
            elif not arm.values:
                try:
                    parse = peer_values if arm.cmd[1] == str(PEERS) else lossctl_values
                    arm.values = parse(run.stdout)
                except (ValueError, KeyError, IndexError) as exc:
                    arm.error = f"unusable output: {exc}"
            rss = f"{run.max_rss_mb:.0f} MB" if run.max_rss_mb is not None else "?"
            print(
                f"  [{rep + 1}/{repeat}] {arm.label:<34} {run.wall_s:8.2f}s  cpu {run.cpu_s:7.2f}s  "
                f"{rss:>8}  others {run.other_cpu_s or 0:.1f}s {arm.error[:80]}",
                file=sys.stderr,
                flush=True,
            )


# =========================================================================== agreement


def disagreements(arms: dict[str, Arm]) -> list[str]:
    """What differs between the tools (``REL_TOL`` relative; rows exactly), and lossctl's delta
    against candidate − baseline."""
    problems = []
    got = {name: arm.values for name, arm in arms.items() if arm.values}
    if not got:
        return problems
    ref_name = next((n for n in ("duckdb", "polars") if n in got), next(iter(got)))
    reference = got[ref_name]
    for name, values in got.items():
        for arm in (*ARMS, "rows"):
            if arm not in values or arm not in reference:
                continue
            for key, ref in reference[arm].items():
                mine = values[arm].get(key)
                if mine is None or not close(mine, ref):
                    problems.append(f"{name} {arm} {key}: {mine!r}, {ref_name} {ref!r}")
        for key in REGRESSION_METRICS if "delta" in values else ():
            b, c, d = (values[arm][key] for arm in (*ARMS, "delta"))
            if abs(d - (c - b)) > 1e-9 * max(abs(b), abs(c), 1e-300):
                problems.append(f"{name} delta {key}: {d!r} vs {c - b!r}")
    return problems


# =========================================================================== report


def _f(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else f"{value:{spec}}"


def _table(arms: dict[str, Arm], reference: Arm | None) -> list[str]:
    lines = [
        "| arm | median wall s | median CPU s | peak RSS MB | others' CPU s | wall ratio | CPU ratio | command |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for arm in arms.values():
        status = f" **{arm.error.splitlines()[0][:120]}**" if arm.error else ""
        lines.append(
            f"| {arm.label}{status} | {_f(arm.median('wall_s'))} | {_f(arm.median('cpu_s'))} "
            f"| {_f(arm.rss, '.0f')} | {_f(arm.median('other_cpu_s'), '.1f')} "
            f"| {_f(_ratio(arm, reference))}x | {_f(_ratio(arm, reference, 'cpu_s'))}x | `{shlex.join(arm.cmd)}` |"
        )
    return lines


def _faster_peer(arms: dict[str, Arm]) -> Arm | None:
    peers = [a for n, a in arms.items() if n != "lossctl" and a.median("wall_s") is not None]
    return min(peers, key=lambda a: a.median("wall_s") or 0.0, default=None)


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("meets" if ok else "**misses**")


def render(
    args: argparse.Namespace, groups: dict[str, dict[str, Arm]], info: dict, load: dict
) -> str:
    pos, key, ci = groups["position"], groups["key"], groups["ci"]
    fp, fk = _faster_peer(pos), _faster_peer(key)
    r_pos, c_pos = _ratio(pos["lossctl"], fp), _ratio(pos["lossctl"], fp, "cpu_s")
    r_key, c_key = _ratio(key["lossctl"], fk), _ratio(key["lossctl"], fk, "cpu_s")
    r_ci, c_ci = _ratio(ci["compare"], ci["eval"]), _ratio(ci["compare"], ci["eval"], "cpu_s")
    rss = key["lossctl"].rss
    problems = {name: disagreements(group) for name, group in groups.items()}
    lines = [
        "# `lossctl compare`: two models on the same rows (issue 11)",
        "",
        f"- Date: {info['date']}",
        f"- Command: `{info['command']}`",
        (
            f"- Machine: {info['cpu_model']}, {info['nproc_usable']} usable core(s) of {info['nproc']}, "
            f"{_f(info['mem_gib'], '.1f')} GiB; {info['os']}"
        ),
        (
            f"- Load average (1, 5, 15 min, as `uptime` says) before: {load['before']}, after: {load['after']}. "
            'The machine is shared: "others\' CPU s" is the CPU time the rest of the machine used during '
            "each run (median); well above 0, the run was disturbed."
        ),
        (
            f"- lossctl {info['lossctl_env'].get('lossctl', '?')}; peers: duckdb "
            f"{info['peer_env'].get('duckdb', '?')}, polars {info['peer_env'].get('polars', '?')}, pyarrow "
            f"{info['peer_env'].get('pyarrow', '?')}, numpy {info['peer_env'].get('numpy', '?')}"
        ),
        (
            f"- Data: `$DATA/compare-{args.rows}/`: {args.rows:,} rows of `id`, `y_true`, `y_pred` per file "
            "(the baseline is `generate.py`'s regression rows; the candidate the same `y_true` with a "
            "correlated, better `y_pred`; `candidate_shuffled.parquet` the candidate's rows in a random "
            f"order); the `--ci` arms on `$DATA/compare-{args.ci_rows}/` ({args.ci_rows:,} rows, the first "
            "rows of the same data)."
        ),
        (
            f"- Method: fresh processes, the arms of each measurement rotated round by round, {args.repeat} "
            "rounds, medians; peak RSS is the largest of the rounds (`ru_maxrss` from `wait4`: the "
            "harness keeps its own memory small, since a child started by vfork inherits its "
            "high-water mark). Files pre-read into the page cache. Peers: `benchmarks/compare_peers.py`, one query / one lazy frame computing "
            "the 8 metrics of both models and counting rows whose `y_true` differs (lossctl checks it too)."
        ),
        f"- Metrics: `{' '.join(SPECS)}`.",
        "",
        "## Against the bars",
        "",
        "| measurement | wall (median) | CPU (median) | bar | on wall time |",
        "|---|---:|---:|---:|---|",
        (
            f"| positional compare / faster peer ({fp.label if fp else '—'}) | {_f(r_pos)}x | {_f(c_pos)}x "
            f"| <= {MAX_RATIO}x | {_verdict(None if r_pos is None else r_pos <= MAX_RATIO)} |"
        ),
        (
            f"| `--key id`, shuffled candidate / faster peer ({fk.label if fk else '—'}) | {_f(r_key)}x "
            f"| {_f(c_key)}x | reported | |"
        ),
        (
            f"| `--key id`, shuffled candidate: peak RSS | {_f(rss, '.0f')} MB | | < {MAX_KEYED_RSS_MB:.0f} MB "
            f"| {_verdict(None if rss is None else rss < MAX_KEYED_RSS_MB)} |"
        ),
        (
            f"| `compare --ci` / `eval --ci` ({args.ci_rows:,} rows) | {_f(r_ci)}x | {_f(c_ci)}x "
            f"| <= {MAX_CI_RATIO}x | {_verdict(None if r_ci is None else r_ci <= MAX_CI_RATIO)} |"
        ),
        "",
    ]
    titles = {
        "position": f"## 1. Positional: {args.rows:,} rows, both models (ratio to the faster peer)",
        "key": f"## 2. `--key id`, the candidate shuffled: {args.rows:,} rows (ratio to the faster peer)",
        "ci": f"## 3. `--ci 0.95 --bootstrap 1000`: {args.ci_rows:,} rows (ratio to `eval --ci`)",
    }
    refs = {"position": fp, "key": fk, "ci": ci["eval"]}
    for name, group in groups.items():
        lines += [titles[name], "", *_table(group, refs[name]), ""]
        if problems[name]:
            lines += ["**The numbers disagree:**", "", *(f"- {p}" for p in problems[name]), ""]
        else:
            checked = ", ".join(n for n, a in group.items() if a.values)
            lines += [
                (
                    f"Numbers agree ({checked}: every metric of both models to 1e-6 relative; "
                    "lossctl's delta is candidate − baseline)."
                ),
                "",
            ]
    base = pos["lossctl"].values
    if base:
        lines += [
            "## The numbers (lossctl, positional)",
            "",
            "| metric | baseline | candidate | delta |",
            "|---|---:|---:|---:|",
            *(
                f"| {k} | {base['baseline'][k]:.9g} | {base['candidate'][k]:.9g} | {base['delta'][k]:.6g} |"
                for k in REGRESSION_METRICS
            ),
            "",
        ]
    return "\n".join(lines)


def _ratio(a: Arm, b: Arm | None, attr: str = "wall_s") -> float | None:
    """The ratio of two arms' medians of ``attr`` (wall seconds by default)."""
    va, vb = a.median(attr), b.median(attr) if b else None
    return None if va is None or not vb else va / vb


# =========================================================================== CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:" + __doc__.split("Examples::")[1],
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the files go (default: %(default)s)",
    )
    ap.add_argument(
        "--rows", type=int, default=20_000_000, help="rows per file (default %(default)s)"
    )
    ap.add_argument(
        "--ci-rows", type=int, default=2_000_000, help="rows of the --ci arms (default %(default)s)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="rounds (default %(default)s)")
    ap.add_argument(
        "--only", default="position,key,ci", help="measurements to run (default: %(default)s)"
    )
    ap.add_argument("--lossctl", type=Path, default=DEFAULT_LOSSCTL, help="lossctl executable")
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter of the peers (default: this one)"
    )
    ap.add_argument(
        "--seed", type=int, default=20240601, help="generate.py's seed (default %(default)s)"
    )
    ap.add_argument(
        "--chunk-rows", type=int, default=1_000_000, help="rows per generated row group"
    )
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run is killed")
    ap.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="report (default: %(default)s)"
    )
    ap.add_argument(
        "--generate", action="store_true", help="only write the data (what the run does first)"
    )
    args = ap.parse_args(argv)
    if min(args.rows, args.ci_rows, args.repeat, args.chunk_rows) < 1:
        ap.error("--rows, --ci-rows, --repeat and --chunk-rows must be positive")
    args.only = [o.strip() for o in args.only.split(",") if o.strip()]
    if not args.only or set(args.only) - {"position", "key", "ci"}:
        ap.error("--only takes position, key, ci")
    args.lossctl = Path(os.path.abspath(args.lossctl))
    args.tools = ["lossctl"]  # for run.machine_info
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generate:
        from compare_data import prepare

        for rows in (args.rows, args.ci_rows):
            print(prepare(args.data, rows, args.seed, args.chunk_rows))
        return 0
    load = {"before": ", ".join(f"{v:.2f}" for v in os.getloadavg())}
    generated = subprocess.run(
        [sys.executable, __file__, "--generate", *(argv if argv is not None else sys.argv[1:])],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    big, small = (Path(line) for line in generated.stdout.splitlines())
    groups = build_arms(args, big, small)
    info = machine_info(args)
    workdir = Path(tempfile.mkdtemp(prefix="lossctl-bench-compare-"))  # empty cwd: no config files
    try:
        for name in args.only:
            folder = small if name == "ci" else big
            warm_cache([folder / f for f in FILES])
            print(f"== {name}", file=sys.stderr)
            run_rounds(list(groups[name].values()), args.repeat, args.timeout, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load["after"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    report = render(args, groups, info, load)
    if not args.lossctl.is_relative_to(BENCH_DIR.parent):
        report = report.replace(str(args.lossctl), "$LOSSCTL")
    report = redact(report, args)
    args.results.write_text(report)
    print(report)
    bad = any(disagreements(g) for g in groups.values()) or any(
        a.error for g in groups.values() for a in g.values()
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

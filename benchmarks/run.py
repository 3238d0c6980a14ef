#!/usr/bin/env python3
"""Benchmark harness: lossctl against a read-only floor and peer tools.

For every workload (see ``common.WORKLOADS``) and every tool, the harness runs
the tool ``--repeat`` times, each time in a fresh process, rotating the order
of the tools from one repetition to the next, and records wall time, CPU time
and peak RSS of every run. It reports medians, checks that every tool's numbers
agree with the others (``common.REL_TOL`` relative), and writes a Markdown
report (``--results``) plus the raw measurements as JSON next to it.

Per-process CPU time and peak RSS come from ``os.wait4`` -- the same
``rusage`` record that ``/usr/bin/time -v`` prints as "Maximum resident set
size" -- so no wrapper process is measured and no output has to be parsed.
Where ``os.wait4`` does not exist, psutil polls the child instead.

A tool that fails, times out or is not installed is recorded as such and the
run goes on; a disagreement between tools is printed loudly and marked in the
report, and the run goes on (``--strict`` turns it into exit status 1).

Examples::

    python benchmarks/run.py                                   # everything, 3 repetitions
    python benchmarks/run.py --data /tmp/bench-small --repeat 1 --tools floor,numpy,polars
    python benchmarks/run.py --only binary_parquet --lossctl .venv/bin/lossctl
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    ABS_TOL,
    ALL_TOOLS,
    BENCH_DIR,
    DEFAULT_DATA_DIR,
    EXIT_NOT_APPLICABLE,
    EXIT_UNAVAILABLE,
    READ_ONLY_TOOLS,
    REL_TOL,
    TOOL_ALIASES,
    TOOL_LABELS,
    WORKLOADS,
    Workload,
    scale_section,
    with_scale_section,
)

PEERS_SCRIPT = BENCH_DIR / "peers.py"
DEFAULT_LOSSCTL = BENCH_DIR.parent / ".venv" / "bin" / "lossctl"
DEFAULT_RESULTS = BENCH_DIR / "RESULTS.md"
# The start-up section's `lossctl eval` on sample_data/regression.csv (3,000 rows): `make run`'s
# specs, as CSV so that the report's output column shows the last result.
STARTUP_EVAL = ["--loss", "mse,mae,huber", "--metric", "rmse,r2", "-f", "csv", "--no-config"]

#: Distributions whose versions are reported for each Python environment.
REPORTED_DISTRIBUTIONS = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "duckdb",
    "polars",
    "psutil",
    "torch",
    "torchmetrics",
    "lossctl",
    "rich",
    "typer",
    "click",
)


# =========================================================================== measuring


@dataclass
class Run:
    """One fresh-process execution of a command."""

    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float | None
    returncode: int
    timed_out: bool = False
    #: exit 0, in time, and (for metric runs) output that parsed
    valid: bool = False
    #: CPU seconds the rest of the machine used meanwhile (contention), if known
    other_cpu_s: float | None = None
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds."""
        return self.user_s + self.sys_s


def _machine_busy_s() -> float | None:
    """CPU seconds all processes have spent busy since boot (``/proc/stat``), if readable."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal ...
    ticks = [int(v) for v in fields[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _maxrss_mb(ru_maxrss: int) -> float:
    """``ru_maxrss`` in MiB (kilobytes on Linux, bytes on macOS)."""
    return ru_maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else ru_maxrss / 1024.0


def _wait_psutil(proc: subprocess.Popen[bytes]) -> tuple[int, float, float, float | None]:
    """Fallback for platforms without ``os.wait4``: poll the child with psutil."""
    import psutil

    peak = 0
    user = system = 0.0
    try:
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            with ps.oneshot():
                peak = max(peak, ps.memory_info().rss)
                cpu = ps.cpu_times()
                user, system = cpu.user, cpu.system
            time.sleep(0.01)
    except psutil.Error:
        pass
    return proc.wait(), user, system, peak / (1024.0 * 1024.0) if peak else None


def measure(cmd: Sequence[str], cwd: Path, timeout: float | None) -> Run:
    """Run ``cmd`` once in a fresh process; time it and record its peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy_before = _machine_busy_s()
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        except OSError as exc:
            return Run(0.0, 0.0, 0.0, None, 127, stderr=f"cannot start {cmd[0]}: {exc}")
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, _kill) if timeout else None
        if timer:
            timer.start()
        try:
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - started
                proc.returncode = os.waitstatus_to_exitcode(status)
                returncode, user, system = proc.returncode, usage.ru_utime, usage.ru_stime
                rss: float | None = _maxrss_mb(usage.ru_maxrss)
            else:  # pragma: no cover - non-POSIX
                returncode, user, system, rss = _wait_psutil(proc)
                wall = time.perf_counter() - started
        except BaseException:  # e.g. Ctrl-C: do not leave the child running
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            raise
        finally:
            if timer:
                timer.cancel()
        busy_after = _machine_busy_s()
        other = (
            None
            if busy_before is None or busy_after is None
            else max(0.0, busy_after - busy_before - user - system)
        )
        out.seek(0)
        err.seek(0)
        return Run(
            wall,
            user,
            system,
            rss,
            returncode,
            timed_out=timed_out.is_set(),
            valid=returncode == 0 and not timed_out.is_set(),
            other_cpu_s=other,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def warm_cache(paths: Sequence[Path]) -> None:
    """Read ``paths`` once so that every tool starts from a warm page cache."""
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while fh.read(16 << 20):
                pass


# =========================================================================== tools


@dataclass
class Outcome:
    """Everything measured for one tool on one workload."""

    tool: str
    status: str = "pending"  # ok | failed | timeout | unavailable | n/a | skipped
    message: str = ""
    command: str = ""
    runs: list[Run] = field(default_factory=list)
    rows: int | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    agreement: str = ""
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok_runs(self) -> list[Run]:
        """Runs that completed successfully."""
        return [r for r in self.runs if r.valid]

    def median(self, attr: str) -> float | None:
        """Median of a per-run quantity over the successful runs."""
        vals = [getattr(r, attr) for r in self.ok_runs if getattr(r, attr) is not None]
        return statistics.median(vals) if vals else None

    @property
    def wall(self) -> float | None:
        """Median wall seconds."""
        return self.median("wall_s")

    @property
    def cpu_ratio(self) -> float | None:
        """Median of the per-run CPU/wall ratios."""
        ratios = [r.cpu_s / r.wall_s for r in self.ok_runs if r.wall_s > 0]
        return statistics.median(ratios) if ratios else None

    @property
    def peak_rss(self) -> float | None:
        """Largest peak RSS over the successful runs, MiB."""
        vals = [r.max_rss_mb for r in self.ok_runs if r.max_rss_mb is not None]
        return max(vals) if vals else None


def lossctl_command(w: Workload, data_dir: Path, lossctl: Path, extra: Sequence[str]) -> list[str]:
    """The ``lossctl eval`` command line for a workload."""
    req = w.lossctl
    files = [str(p) for p in w.paths(data_dir)]
    if w.fmt == "npy":
        inputs = ["--true", files[0], "--pred", files[1]]
    else:
        inputs = [files[0], "--true", w.true, "--pred", w.pred_option]
    return [
        str(lossctl),
        "eval",
        *inputs,
        "--loss",
        ",".join(req.losses),
        "--metric",
        ",".join(req.metrics),
        "-f",
        "json",
        *extra,
    ]


def parse_lossctl(
    w: Workload, stdout: str
) -> tuple[int | None, dict[str, float | None], dict[str, str]]:
    """``(rows, metrics, notes)`` from lossctl's JSON output."""
    doc = json.loads(stdout)
    specs = w.lossctl.specs
    metrics: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    rows: int | None = None
    for res in doc.get("results", []):
        if res.get("group"):
            continue
        key = specs.get(str(res.get("spec", ""))) or specs.get(str(res.get("name", "")))
        if key is None:
            continue
        value = res.get("value")
        metrics[key] = None if value is None else float(value)
        if res.get("note"):
            notes[key] = str(res["note"])
        if isinstance(res.get("rows"), int):
            rows = res["rows"]
    for key in w.metrics:
        if key not in metrics:
            metrics[key] = None
            notes[key] = "missing from lossctl output"
    return rows, metrics, notes


def parse_peer(stdout: str) -> tuple[int | None, dict[str, float | None], dict[str, str]]:
    """``(rows, metrics, notes)`` from a peer script's JSON line."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    doc = json.loads(lines[-1])
    return doc.get("rows"), doc.get("metrics", {}), doc.get("notes", {})


def _tail(text: str, lines: int = 12) -> str:
    """Last ``lines`` lines of ``text``."""
    return "\n".join(text.strip().splitlines()[-lines:])


class Harness:
    """Runs the workloads and keeps their outcomes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data: Path = args.data.resolve()
        self.lossctl: Path = args.lossctl
        self.python: str = args.python
        self.workdir = Path(tempfile.mkdtemp(prefix="lossctl-bench-"))  # empty cwd: no config files
        self.outcomes: dict[str, dict[str, Outcome]] = {}
        self.startup: dict[str, Outcome] = {}
        self.skipped_workloads: dict[str, str] = {}

    def command(self, tool: str, w: Workload) -> list[str]:
        """Command line running ``tool`` on ``w``."""
        if tool == "lossctl":
            return lossctl_command(w, self.data, self.lossctl, self.args.lossctl_args)
        return [self.python, str(PEERS_SCRIPT), tool, w.name, str(self.data)]

    def run_once(self, tool: str, w: Workload, outcome: Outcome) -> None:
        """One measured run of ``tool`` on ``w``; updates ``outcome``."""
        cmd = self.command(tool, w)
        outcome.command = shlex.join(cmd)
        run = measure(cmd, self.workdir, self.args.timeout)
        outcome.runs.append(run)
        if run.timed_out:
            outcome.status, outcome.message = "timeout", f"killed after {self.args.timeout:g}s"
        elif tool != "lossctl" and run.returncode == EXIT_UNAVAILABLE:
            outcome.status, outcome.message = "unavailable", _tail(run.stderr, 1)
        elif tool != "lossctl" and run.returncode == EXIT_NOT_APPLICABLE:
            outcome.status, outcome.message = "n/a", _tail(run.stderr, 1)
        elif run.returncode != 0:
            outcome.status = "failed"
            outcome.message = f"exit {run.returncode}\n{_tail(run.stderr or run.stdout)}"
        else:
            try:
                parsed = (
                    parse_lossctl(w, run.stdout) if tool == "lossctl" else parse_peer(run.stdout)
                )
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                run.valid = False
                outcome.status = "failed"
                outcome.message = f"unparsable output ({exc}):\n{_tail(run.stdout)}"
            else:
                rows, metrics, notes = parsed
                if outcome.status == "ok":
                    changed = [
                        k
                        for k, v in metrics.items()
                        if (v is None) != (outcome.metrics.get(k) is None)
                        or (v is not None and not close(v, outcome.metrics[k] or 0.0))
                    ]
                    if changed:
                        outcome.mismatches.append(
                            f"numbers changed between repetitions: {', '.join(changed)}"
                        )
                outcome.status = "ok"
                outcome.rows, outcome.metrics = rows, metrics
                outcome.notes.update(notes)
        self._log(w.name, tool, run, outcome)

    def _log(self, workload: str, tool: str, run: Run, outcome: Outcome) -> None:
        rss = f"{run.max_rss_mb:8.1f} MB" if run.max_rss_mb is not None else "       ? MB"
        msg = outcome.message.splitlines()[0] if outcome.status != "ok" and outcome.message else ""
        print(
            f"  [{workload}] {tool:<13} {run.wall_s:8.3f}s  cpu {run.cpu_s:8.3f}s  {rss}  "
            f"{outcome.status} {msg}",
            file=sys.stderr,
            flush=True,
        )

    def run_workload(self, w: Workload) -> None:
        """Every selected tool on ``w``, ``--repeat`` times, rotating the order."""
        paths = w.paths(self.data)
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            self.skipped_workloads[w.name] = f"missing input {', '.join(missing)} (run generate.py)"
            print(f"SKIP {w.name}: {self.skipped_workloads[w.name]}", file=sys.stderr)
            return
        outcomes = {t: Outcome(t) for t in self.args.tools}
        self.outcomes[w.name] = outcomes
        tools = []
        for tool in self.args.tools:
            if tool not in w.tools:
                outcomes[tool].status = "n/a"
                outcomes[tool].message = f"{tool} does not read {w.fmt.upper()}"
            else:
                tools.append(tool)
        if not self.args.no_warmup:
            warm_cache(paths)
        for rep in range(self.args.repeat):
            shift = rep % len(tools) if tools else 0
            for tool in tools[shift:] + tools[:shift]:
                if outcomes[tool].status in ("pending", "ok"):
                    self.run_once(tool, w, outcomes[tool])
        check_agreement(w, outcomes)

    def run_startup(self) -> None:
        """Time ``lossctl --version``, ``lossctl eval`` on the 3,000-row sample CSV and a bare
        interpreter start, a fresh process each time."""
        commands = {}
        if "lossctl" in self.args.tools:
            commands["lossctl --version"] = [str(self.lossctl), "--version"]
            args = ["eval", "sample_data/regression.csv", *STARTUP_EVAL]
            sample = str(BENCH_DIR.parent / args[1])
            commands[shlex.join(["lossctl", *args])] = [str(self.lossctl), args[0], sample, *args[2:]]
        commands["python -c pass"] = [self.python, "-c", "pass"]
        for label, cmd in commands.items():
            outcome = Outcome(label, command=shlex.join(cmd))
            for _ in range(self.args.version_repeat):
                run = measure(cmd, self.workdir, self.args.timeout)
                outcome.runs.append(run)
                if run.returncode != 0:
                    outcome.status = "failed"
                    outcome.message = f"exit {run.returncode}\n{_tail(run.stderr or run.stdout)}"
                    break
            else:
                outcome.status = "ok"
                outcome.message = _tail(outcome.runs[-1].stdout, 1)
            self.startup[label] = outcome
            wall = outcome.wall
            print(
                f"  [startup] {label}: {'failed' if wall is None else f'{wall:.3f}s median'}",
                file=sys.stderr,
            )


# =========================================================================== agreement


def close(a: float, b: float) -> bool:
    """Whether two numbers agree to ``REL_TOL`` relative (``ABS_TOL`` absolute near 0)."""
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + ABS_TOL


def rel_diff(a: float, b: float) -> float:
    """Relative difference of two numbers (0 when both are 0)."""
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def consensus(values: dict[str, float]) -> float | None:
    """The value most other tools agree with (first tool wins ties); ``None`` if
    two or more values all disagree with each other."""
    if not values:
        return None
    support = {t: sum(close(v, u) for s, u in values.items() if s != t) for t, v in values.items()}
    best = max(support, key=lambda t: support[t])  # max() keeps the first maximal key
    if support[best] == 0 and len(values) > 1:
        return None
    return values[best]


def check_agreement(w: Workload, outcomes: dict[str, Outcome]) -> None:
    """Compare every tool's numbers with the consensus; mark and print mismatches."""
    computing = {t: o for t, o in outcomes.items() if o.status == "ok" and t not in READ_ONLY_TOOLS}
    row_counts = {t: o.rows for t, o in outcomes.items() if o.status == "ok" and o.rows is not None}
    expected_rows = statistics.mode(row_counts.values()) if row_counts else None
    for o in outcomes.values():
        if o.status == "ok" and o.rows is not None and o.rows != expected_rows:
            o.mismatches.append(f"rows {o.rows:,} != {expected_rows:,}")
    for key in w.metrics:
        values = {t: o.metrics[key] for t, o in computing.items() if o.metrics.get(key) is not None}
        ref = consensus({t: v for t, v in values.items() if v is not None})
        for tool, value in values.items():
            assert value is not None
            if ref is None:
                outcomes[tool].mismatches.append(f"{key}: no consensus ({value:.10g})")
            elif not close(value, ref):
                outcomes[tool].mismatches.append(
                    f"{key}: {value:.10g} vs {ref:.10g} (rel {rel_diff(value, ref):.1e})"
                )
    for tool, o in outcomes.items():
        if tool in READ_ONLY_TOOLS:
            o.agreement = "(reads only)" if o.status == "ok" else ""
        elif o.status != "ok":
            o.agreement = ""
        elif o.mismatches:
            o.agreement = "**MISMATCH**: " + "; ".join(o.mismatches)
            print(f"!!! MISMATCH [{w.name}] {tool}: {'; '.join(o.mismatches)}", file=sys.stderr)
        else:
            missing = [k for k in w.metrics if o.metrics.get(k) is None]
            o.agreement = "agrees" + (f" (no value: {', '.join(missing)})" if missing else "")
        if len(computing) == 1 and o.status == "ok" and tool not in READ_ONLY_TOOLS:
            o.agreement += " (nothing to compare with)"


# =========================================================================== environment


def _read_cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read_mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024.0 * 1024.0)
    except OSError:
        pass
    return None


_VERSIONS_SNIPPET = """
import json, sys
from importlib import metadata
out = {"python": sys.version.split()[0], "executable": sys.executable}
for name in %r:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def env_versions(python: str) -> dict[str, str]:
    """Python and library versions of the interpreter ``python``."""
    snippet = _VERSIONS_SNIPPET % (REPORTED_DISTRIBUTIONS,)
    try:
        done = subprocess.run(
            [python, "-c", snippet], capture_output=True, text=True, timeout=60, check=True
        )
        return dict(json.loads(done.stdout))
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}


def script_interpreter(executable: Path) -> str | None:
    """The interpreter named on the shebang line of a console script, if any."""
    try:
        with open(executable, "rb") as fh:
            first = fh.readline(512).decode(errors="replace").strip()
    except OSError:
        return None
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and "python" in Path(parts[-1]).name:
            return parts[-1]
        if parts and "python" in Path(parts[0]).name:
            return parts[0]
    return None


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    """Machine, environments and data description for the report."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    lossctl_py = script_interpreter(args.lossctl) if "lossctl" in args.tools else None
    manifest: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        manifest = json.loads((args.data / "manifest.json").read_text()).get("datasets", {})
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
        "cwd": os.getcwd(),
        "cpu_model": _read_cpu_model(),
        "nproc": os.cpu_count(),
        "nproc_usable": affinity,
        "mem_gib": _read_mem_gib(),
        "os": platform.platform(),
        "peer_env": env_versions(args.python),
        "lossctl_path": str(args.lossctl),
        "lossctl_env": env_versions(lossctl_py) if lossctl_py else {},
        "data_dir": str(args.data.resolve()),
        "manifest": manifest,
    }


# =========================================================================== report

#: Average number of cores used by other processes above which the report warns.
CONTENTION_WARN_CORES = 0.1


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "—" if value is None else f"{value:{spec}}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def _md(text: str) -> str:
    """``text`` made safe for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _label(tool: str) -> str:
    return TOOL_LABELS.get(tool, tool)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _fastest_peer(outcomes: dict[str, Outcome]) -> Outcome | None:
    peers = [
        o
        for t, o in outcomes.items()
        if t not in READ_ONLY_TOOLS and t != "lossctl" and o.wall is not None
    ]
    return min(peers, key=lambda o: o.wall or 0.0) if peers else None


def _contention(outcomes: dict[str, Outcome]) -> float | None:
    """Average number of cores other processes kept busy during the workload's runs."""
    runs = [r for o in outcomes.values() for r in o.runs if r.other_cpu_s is not None]
    wall = sum(r.wall_s for r in runs)
    return sum(r.other_cpu_s or 0.0 for r in runs) / wall if wall > 0 else None


def _status_cell(o: Outcome) -> str:
    if o.status == "ok":
        return _md(o.agreement)
    label = {"failed": "**FAILED**", "timeout": "**TIMEOUT**"}.get(o.status, o.status)
    first = _first_line(o.message)
    return _md(f"{label}: {first}") if first else label


def _human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("kB", "MB", "GB"):
        size /= 1000.0
        if size < 1000.0 or unit == "GB":
            break
    return f"{size:,.1f} {unit}"


def _workload_files(w: Workload, data_dir: Path) -> str:
    sizes = []
    for p in w.paths(data_dir):
        try:
            sizes.append(f"`{p.name}` ({_human_bytes(p.stat().st_size)})")
        except OSError:
            sizes.append(f"`{p.name}`")
    return ", ".join(sizes)


def _env_line(env: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("python", "executable"))


def _render_header(h: Harness, info: dict[str, Any]) -> list[str]:
    args = h.args
    mem = f"{info['mem_gib']:.1f} GiB" if info["mem_gib"] else "?"
    usable = f" ({info['nproc_usable']} usable)" if info["nproc_usable"] else ""
    pe, le = info["peer_env"], info["lossctl_env"]
    out = [
        "# lossctl benchmark results",
        "",
        f"- Date: {info['date']}",
        f"- Command: `{info['command']}` (in `{info['cwd']}`)",
        f"- Data: `{info['data_dir']}`",
        "",
        "## Machine and software",
        "",
        f"- CPU: {info['cpu_model']}; nproc {info['nproc']}{usable}; memory {mem}",
        f"- OS: {info['os']}",
        f"- Peers: Python {pe.get('python', '?')} (`{pe.get('executable', h.python)}`); "
        + _env_line(pe),
    ]
    if le:
        out.append(
            f"- lossctl: `{info['lossctl_path']}`, Python {le.get('python', '?')}; " + _env_line(le)
        )
    elif "lossctl" in args.tools:
        out.append(f"- lossctl: `{info['lossctl_path']}` (environment not readable)")
    warmup = " (disabled with --no-warmup)" if args.no_warmup else ""
    out += [
        "",
        "## Method",
        "",
        "- Every measurement is a fresh process (interpreter start and imports included); "
        f"median of {args.repeat} repetition(s); the order of the tools is rotated between "
        "repetitions; the input files are read once before each workload so that every "
        f"tool starts from a warm page cache{warmup}.",
        "- CPU/wall = (user + system CPU seconds) / wall seconds; above 1 means several "
        "cores were busy. Peak RSS is the child's `ru_maxrss` from `wait4` (what "
        "`/usr/bin/time -v` reports as *Maximum resident set size*), the largest over the "
        "repetitions. *Others' CPU s* is the CPU time the rest of the machine used during "
        "the run (from `/proc/stat`): well above 0, the timings were disturbed.",
        "- *x floor* compares with reading the needed columns with pyarrow and doing "
        "nothing else; *x fastest peer* compares with the fastest tool other than the floor "
        "and lossctl.",
        "- Agreement: every metric of every tool is compared with the value most tools "
        f"agree on, tolerance {REL_TOL:g} relative. Semantics are Keras 3's (epsilon 1e-7); "
        "exact ROC AUC with ties counted one half (scikit-learn's `roc_auc_score`).",
        "",
    ]
    return out


def _render_summary(h: Harness) -> list[str]:
    out = [
        "## Summary",
        "",
        "| workload | rows | floor s | lossctl s | fastest peer | peer s | "
        "lossctl / fastest peer | lossctl / floor | lossctl peak RSS MB | agreement | "
        "others' cores |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|---:|",
    ]
    mismatches: list[str] = []
    busy: list[str] = []
    for name, outcomes in h.outcomes.items():
        floor, lc = outcomes.get("floor"), outcomes.get("lossctl")
        floor_wall = floor.wall if floor else None
        fastest = _fastest_peer(outcomes)
        peer_wall = fastest.wall if fastest else None
        rows = next((o.rows for o in outcomes.values() if o.rows is not None), None)
        bad = [t for t, o in outcomes.items() if o.mismatches]
        mismatches += [f"- `{name}` / {t}: {'; '.join(outcomes[t].mismatches)}" for t in bad]
        n_cmp = sum(1 for t, o in outcomes.items() if o.status == "ok" and t not in READ_ONLY_TOOLS)
        if bad:
            agree = "**MISMATCH** (" + ", ".join(bad) + ")"
        else:
            agree = f"{n_cmp} tools agree" if n_cmp > 1 else f"{n_cmp} tool, nothing to compare"
        # a lossctl that failed in any repetition gets no ratio, even if other runs passed
        lc_ok = lc is not None and lc.status == "ok"
        lc_wall = lc.wall if lc_ok and lc else None
        lc_cell = lc.status.upper() if lc is not None and not lc_ok else _fmt(lc_wall)
        contention = _contention(outcomes)
        if contention is not None and contention > CONTENTION_WARN_CORES:
            busy.append(name)
        out.append(
            f"| {WORKLOADS[name].title} | {_fmt(rows, ',d')} | {_fmt(floor_wall)} | {lc_cell} | "
            f"{_label(fastest.tool) if fastest else '—'} | {_fmt(peer_wall)} | "
            f"{_ratio(lc_wall, peer_wall)} | {_ratio(lc_wall, floor_wall)} | "
            f"{_fmt(lc.peak_rss if lc_ok and lc else None, ',.0f')} | {agree} | "
            f"{_fmt(contention, '.2f')} |"
        )
    for name, why in h.skipped_workloads.items():
        out.append(f"| {WORKLOADS[name].title} | — | — | — | — | — | — | — | — | {_md(why)} | — |")
    out.append("")
    if busy:
        out += [
            f"**Warning**: other processes kept more than {CONTENTION_WARN_CORES:g} core(s) "
            f"busy on average during {', '.join(busy)}; those timings are disturbed.",
            "",
        ]
    if mismatches:
        out += ["### Disagreements", "", *mismatches, ""]
    return out


def _render_startup(h: Harness) -> list[str]:
    if not h.startup:
        return []
    out = [
        "## Start-up",
        "",
        "| command | median s | min s | max s | runs | output |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, o in h.startup.items():
        walls = [r.wall_s for r in o.ok_runs]
        shown = _first_line(o.message)
        if o.status != "ok":
            shown = f"**FAILED**: {shown}"
        out.append(
            f"| `{label}` | {_fmt(o.wall)} | {_fmt(min(walls) if walls else None)} | "
            f"{_fmt(max(walls) if walls else None)} | {len(o.runs)} | {_md(shown)} |"
        )
    return [*out, ""]


def _render_workload(name: str, outcomes: dict[str, Outcome], data_dir: Path) -> list[str]:
    w = WORKLOADS[name]
    floor = outcomes.get("floor")
    floor_wall = floor.wall if floor else None
    fastest = _fastest_peer(outcomes)
    peer_wall = fastest.wall if fastest else None
    out = [
        f"## {w.title}",
        "",
        f"Input: {_workload_files(w, data_dir)}. Metrics: {', '.join(w.metrics)}.",
        "",
        "| tool | median wall s | min-max s | CPU/wall | peak RSS MB | x floor | "
        "x fastest peer | others' CPU s | status / agreement |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for tool, o in outcomes.items():
        walls = [r.wall_s for r in o.ok_runs]
        spread = f"{min(walls):.3f}-{max(walls):.3f}" if walls else "—"
        vs_peer = "—" if tool in READ_ONLY_TOOLS else _ratio(o.wall, peer_wall)
        out.append(
            f"| {_label(tool)} | {_fmt(o.wall)} | {spread} | {_fmt(o.cpu_ratio, '.2f')} | "
            f"{_fmt(o.peak_rss, ',.0f')} | {_ratio(o.wall, floor_wall)} | {vs_peer} | "
            f"{_fmt(o.median('other_cpu_s'), '.2f')} | {_status_cell(o)} |"
        )
    lc = outcomes.get("lossctl")
    if lc is not None and fastest is not None:
        ratio = _ratio(lc.wall, peer_wall) if lc.status == "ok" else f"— (lossctl {lc.status})"
        out += ["", f"lossctl / fastest peer ({_label(fastest.tool)}): **{ratio}**"]
    out.append("")

    computing = [t for t, o in outcomes.items() if o.status == "ok" and t not in READ_ONLY_TOOLS]
    if computing:
        out += [
            "| metric | " + " | ".join(computing) + " | max rel diff |",
            "|---|" + "---:|" * (len(computing) + 1),
        ]
        for key in w.metrics:
            vals = [outcomes[t].metrics.get(key) for t in computing]
            present = [v for v in vals if v is not None]
            spread_rel = max((rel_diff(a, b) for a in present for b in present), default=None)
            cells = " | ".join(_fmt(v, ".10g") for v in vals)
            out.append(f"| {key} | {cells} | {_fmt(spread_rel, '.1e')} |")
        out.append("")
    notes = [f"- {t}, {k}: {v}" for t in computing for k, v in outcomes[t].notes.items()]
    if notes:
        out += ["Notes:", "", *notes, ""]
    for o in outcomes.values():
        if o.status in ("failed", "timeout"):
            out += [
                f"<details><summary>{o.tool} {o.status}</summary>",
                "",
                "```",
                f"$ {o.command}",
                o.message,
                "```",
                "",
                "</details>",
                "",
            ]
    not_run = [
        f"{o.tool} ({o.status}: {_first_line(o.message)})"
        for o in outcomes.values()
        if o.status in ("unavailable", "n/a")
    ]
    if not_run:
        out += ["Not run: " + "; ".join(not_run) + ".", ""]
    commands = [f"{o.tool}: {o.command}" for o in outcomes.values() if o.command]
    if commands:
        out += ["<details><summary>commands</summary>", "", "```", *commands, "```", ""]
        out += ["</details>", ""]
    return out


def render_report(h: Harness, info: dict[str, Any]) -> str:
    """RESULTS.md content."""
    out = _render_header(h, info) + _render_summary(h) + _render_startup(h)
    for name, outcomes in h.outcomes.items():
        out += _render_workload(name, outcomes, h.data)
    return "\n".join(out).rstrip() + "\n"


def raw_json(h: Harness, info: dict[str, Any]) -> dict[str, Any]:
    """All measurements, for later analysis."""

    def dump(o: Outcome) -> dict[str, Any]:
        d = asdict(o)
        for r in d["runs"]:
            r["stdout"] = r["stdout"][-2000:]
            r["stderr"] = r["stderr"][-2000:]
        d.update(median_wall_s=o.wall, cpu_wall_ratio=o.cpu_ratio, peak_rss_mb=o.peak_rss)
        return d

    return {
        "info": info,
        "startup": {k: dump(o) for k, o in h.startup.items()},
        "workloads": {w: {t: dump(o) for t, o in oc.items()} for w, oc in h.outcomes.items()},
        "skipped": h.skipped_workloads,
    }


# =========================================================================== CLI


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: "
        + ", ".join(WORKLOADS)
        + "\ntools: "
        + ", ".join(ALL_TOOLS)
        + "\n\nexamples:"
        + __doc__.split("Examples::")[1],
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="directory written by generate.py (default: %(default)s)",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="repetitions per tool (default %(default)s)"
    )
    ap.add_argument(
        "--only",
        type=_split,
        default=list(WORKLOADS),
        help="comma-separated workloads (default: all)",
    )
    ap.add_argument(
        "--tools", type=_split, default=list(ALL_TOOLS), help="comma-separated tools (default: all)"
    )
    ap.add_argument(
        "--lossctl",
        type=Path,
        default=DEFAULT_LOSSCTL,
        help="lossctl executable (default: %(default)s)",
    )
    ap.add_argument(
        "--lossctl-args",
        type=shlex.split,
        default=[],
        help="extra arguments appended to every `lossctl eval`, e.g. '--chunk-size 1000000'",
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="Markdown report to write (default: %(default)s); raw JSON goes next to it",
    )
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter running the peers (default: this one)"
    )
    ap.add_argument(
        "--version-repeat",
        type=int,
        default=10,
        help="fresh runs of each start-up command: `lossctl --version`, `lossctl eval` on the "
        "3,000-row sample CSV (default %(default)s)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds before a single run is killed (default %(default)s)",
    )
    ap.add_argument("--no-warmup", action="store_true", help="do not pre-read the input files")
    ap.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when tools disagree, a tool fails or times out, or a workload is skipped",
    )
    ap.add_argument("--list", action="store_true", help="list workloads and tools, then exit")
    args = ap.parse_args(argv)
    tools = [TOOL_ALIASES.get(t.lower(), t.lower()) for t in args.tools]
    unknown = sorted(set(tools) - set(ALL_TOOLS))
    if unknown:
        ap.error(f"unknown tool(s) {unknown}; choose from {list(ALL_TOOLS)}")
    args.tools = list(dict.fromkeys(tools))
    unknown = sorted(set(args.only) - set(WORKLOADS))
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    if args.repeat < 1 or args.version_repeat < 0:
        ap.error("--repeat must be >= 1 and --version-repeat >= 0")
    args.lossctl = Path(os.path.abspath(args.lossctl))
    return args


def redact(text: str, args: argparse.Namespace) -> str:
    """The report without this machine's paths: the repository is ``.``, the rest named by role."""
    repo = str(BENCH_DIR.parent)
    names = [
        (str(Path(args.python).resolve().parent.parent), "$BENCH_VENV"),
        (str(args.python), "$BENCH_VENV/bin/python"),
        (str(Path(args.data).resolve()), "$DATA"),
        (str(args.data), "$DATA"),
        (repo + "/", ""),
        (repo, "."),
    ]
    for path, name in sorted(names, key=lambda pair: -len(pair[0])):
        if len(path) > 1:
            text = text.replace(path, name)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = parse_args(argv)
    if args.list:
        for w in WORKLOADS.values():
            print(f"{w.name:<20} {w.title}  files={','.join(w.files)}  tools={','.join(w.tools)}")
        return 0
    h = Harness(args)
    try:
        info = machine_info(args)
        print(
            f"lossctl benchmark: data {h.data}, tools {', '.join(args.tools)}, "
            f"repeat {args.repeat}",
            file=sys.stderr,
        )
        if args.version_repeat:
            h.run_startup()
        for name in args.only:
            print(f"== {name}", file=sys.stderr)
            h.run_workload(WORKLOADS[name])
    finally:
        shutil.rmtree(h.workdir, ignore_errors=True)

    args.results.parent.mkdir(parents=True, exist_ok=True)
    # scale.py's section (benchmarks/scale.py) is kept as it was.
    kept = scale_section(args.results.read_text()) if args.results.exists() else ""
    args.results.write_text(with_scale_section(redact(render_report(h, info), args), kept))
    raw_path = args.results.with_suffix(".json")
    raw_path.write_text(redact(json.dumps(raw_json(h, info), indent=1) + "\n", args))
    print(f"wrote {args.results} and {raw_path}", file=sys.stderr)

    disagree = any(o.mismatches for oc in h.outcomes.values() for o in oc.values())
    failed = sorted(
        {
            t
            for oc in h.outcomes.values()
            for t, o in oc.items()
            if o.status in ("failed", "timeout")
        }
    )
    if disagree:
        print("!!! some tools disagree: see the report", file=sys.stderr)
    if failed:
        print(f"!!! failed or timed out: {', '.join(failed)}", file=sys.stderr)
    problems = disagree or failed or h.skipped_workloads
    return 1 if args.strict and problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Renderers: an :class:`~lossctl.results.Evaluation` to text (no metric logic).

``table`` (rich, for people), ``json`` (the SPEC section 5 document),
``csv`` (one row per result), ``markdown`` (a CI job summary) and ``junit``
(one test case per check, for CI systems that display JUnit reports).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lossctl.results import Evaluation, MetricResult

FORMATS = ("table", "json", "csv", "markdown", "junit")
# What `-o FILE` implies when `-f` is not given.
BY_EXTENSION = {".json": "json", ".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".xml": "junit", ".txt": "table"}


def render(evaluation: Evaluation, fmt: str, *, stdout: bool = False, width: int | None = None) -> str:
    """Render in one of :data:`FORMATS`; ``stdout``: for standard output (see :func:`rich_text`)."""
    if fmt == "json":
        from lossctl.render.json import to_json

        return to_json(evaluation)
    if fmt == "table":
        from lossctl.render.table import to_table

        return to_table(evaluation, stdout=stdout, width=width)
    if fmt == "csv":
        from lossctl.render.csv import to_csv

        return to_csv(evaluation)
    if fmt == "markdown":
        from lossctl.render.markdown import to_markdown

        return to_markdown(evaluation)
    if fmt == "junit":
        from lossctl.render.junit import to_junit

        return to_junit(evaluation)
    raise ValueError(f"unknown format {fmt}")


def render_error(fmt: str, message: str, files: Sequence[str]) -> str | None:
    """The report of a run stopped by a data error, in the formats a CI system shows (junit, markdown); else ``None``."""
    if fmt == "junit":
        from lossctl.render.junit import junit_error

        return junit_error(message, files)
    if fmt == "markdown":
        from lossctl.render.markdown import markdown_error

        return markdown_error(message, files)
    return None


def rich_text(*parts: Any, stdout: bool = False, width: int | None = None) -> str:
    """Rich renderables as the text rich prints for them.

    ``stdout``: for standard output, with rich's own detection: the
    terminal's width (``COLUMNS`` honoured; 80 when no stream is a
    terminal), colour only on a terminal and never under ``NO_COLOR``.
    Otherwise (a file): plain text, ``width`` columns or rich's default.
    A :class:`~rich.text.Text` part is soft-wrapped: a long path stays whole.
    """
    import io

    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, width=width) if stdout else Console(file=io.StringIO(), highlight=False, width=width)
    with console.capture() as captured:
        for part in parts:
            console.print(part, soft_wrap=isinstance(part, Text))
    return captured.get()


def display_name(r: MetricResult) -> str:
    """``acc → sparse_categorical_accuracy``, ``mse (mean_squared_error)`` or the name itself."""
    if r.extra.get("resolved_from"):
        name = f"{r.spec} → {r.name}"
    elif r.spec != r.name:
        name = f"{r.spec} ({r.name})"
    else:
        name = r.name
    group = r.extra.get("group")
    if isinstance(group, dict) and group:
        name += " [" + ", ".join(f"{k}={v}" for k, v in group.items()) + "]"
    if r.arm is not None and r.arm != "delta":
        name += f" · {r.arm}"
    return name


def format_value(value: Any) -> str:
    """Display rounding only (6 significant digits); JSON and CSV keep full precision."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e7 or abs(value) < 1e-4:
        return f"{value:.5e}"
    return f"{value:.6g}"


def format_result(r: MetricResult) -> str:
    """A result's value, with its interval when it has one: ``0.912 [0.905, 0.919]``."""
    if r.ci is None or r.value is None:
        return format_value(r.value)
    low, high, se = r.ci.get("low"), r.ci.get("high"), r.ci.get("se")
    if low is None or high is None:
        return f"{format_value(r.value)} [—]"
    numbers = (r.value, low, high)
    if se and all(1e-4 <= abs(x) < 1e7 or x == 0 for x in numbers):
        # As many decimals as two significant digits of the standard error.
        decimals = min(max(0, 1 - math.floor(math.log10(se))), 8)
        return "{0:.{3}f} [{1:.{3}f}, {2:.{3}f}]".format(*numbers, decimals)
    return f"{format_value(r.value)} [{format_value(low)}, {format_value(high)}]"


def per_class(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """The per-class view (scikit-learn's ``classification_report``): header and rows, or nothing.

    One row per class, one column per result that has ``per_class`` values,
    then ``support`` (each class's weighted count in y_true) when a result
    gives it. Empty when no result has per-class values.
    """
    having = [r for r in evaluation.overall if r.extra.get("per_class")]
    if not having:
        return [], []
    support = next((r.extra["support"] for r in having if r.extra.get("support")), None)
    header = ["class", *(display_name(r) for r in having)] + (["support"] if support else [])
    count = max(len(r.extra["per_class"]) for r in having)
    rows = []
    for k in range(count):
        cells = [format_value(r.extra["per_class"][k]) if k < len(r.extra["per_class"]) else "" for r in having]
        rows.append([str(k), *cells] + ([format_value(support[k])] if support else []))
    return header, rows


def checks_summary(evaluation: Evaluation) -> str:
    """``all 2 checks passed`` / ``1 of 3 checks failed: mse < 0.25`` / ``no checks``."""
    checks = evaluation.checks
    if not checks:
        return "no checks"
    failed = [str(c.get("expr")) for c in checks if not c.get("passed")]
    noun = "check" if len(checks) == 1 else "checks"
    if not failed:
        return f"all {len(checks)} {noun} passed" if len(checks) > 1 else "1 check passed"
    return f"{len(failed)} of {len(checks)} {noun} failed: {'; '.join(failed)}"


def group_grid(evaluation: Evaluation) -> tuple[list[str], list[list[str]]]:
    """The ``--by`` results as a compact grid: one row per group, one column per spec.

    Headers are the ``--by`` columns, then each spec (with ↓/↑), then ``rows``;
    undefined values show as ``—``. Empty without ``--by``.
    """
    if not evaluation.by:
        return [], []
    specs = [r for r in evaluation.results if r.group is None]
    headers = [*evaluation.by, *(f"{r.spec} {'↓' if r.direction == 'min' else '↑'}" for r in specs), "rows"]
    grouped = [r for r in evaluation.results if r.group is not None]
    rows = []
    for i in range(0, len(grouped), len(specs)):
        block = grouped[i : i + len(specs)]
        group = block[0].group or {}
        key = ["null" if group.get(c) is None else str(group.get(c)) for c in evaluation.by]
        rows.append([*key, *(format_result(r) for r in block), f"{max(r.rows for r in block):,}"])
    return headers, rows

"""Renderers: an :class:`~lossctl.results.Evaluation` to text (no metric logic).

``table`` (rich, for people), ``json`` (the SPEC section 5 document),
``csv`` (one row per result), ``markdown`` (a CI job summary) and ``junit``
(one test case per check, for CI systems that display JUnit reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lossctl.results import Evaluation, MetricResult

FORMATS = ("table", "json", "csv", "markdown", "junit")
# What `-o FILE` implies when `-f` is not given.
BY_EXTENSION = {".json": "json", ".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".xml": "junit", ".txt": "table"}


def render(evaluation: Evaluation, fmt: str, *, width: int | None = None, color: bool = False) -> str:
    """Render in one of :data:`FORMATS`."""
    if fmt == "json":
        from lossctl.render.json import to_json

        return to_json(evaluation)
    if fmt == "table":
        from lossctl.render.table import to_table

        return to_table(evaluation, width=width, color=color)
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
        rows.append([*key, *(format_value(r.value) for r in block), f"{max(r.rows for r in block):,}"])
    return headers, rows

"""``lossctl list``: every loss and metric in the registry, as a table or JSON.

Reads only the registry (no reader, no pandas, no pyarrow), so it starts fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from lossctl.cli.common import config_options, plugin_names
from lossctl.options import click_options

if TYPE_CHECKING:
    from lossctl.registry import MetricDef

# The registry (and NumPy behind it) is imported when the command runs, not
# when the command group is built, so that `lossctl --help` stays fast.
TASKS = ("regression", "binary", "multiclass", "multilabel")


def _select(kind: str | None, task: str | None) -> list[MetricDef]:
    from lossctl.docs import tasks_of
    from lossctl.registry import entries

    out = []
    for entry in entries():
        if kind and entry.kind != kind:
            continue
        if task and not {task, "any"} & set(tasks_of(entry)):
            continue
        out.append(entry)
    return out


def _table(selected: list[MetricDef], title: str, terminal: bool) -> str:
    import io

    from rich.console import Console
    from rich.table import Table

    from lossctl.docs import format_value
    from lossctl.render import rich_text

    losses = sum(e.kind == "loss" for e in selected)
    parts = []
    if losses:
        parts.append(f"{losses} losses (each also takes reduction=mean|sum_over_batch_size|sum and can be a metric)")
    if len(selected) - losses:
        parts.append(f"{len(selected) - losses} metrics")
    parts.append("↓ lower is better, ↑ higher · details: lossctl explain NAME")
    table = Table(
        title=f"lossctl · {title}",
        caption=" · ".join(parts),
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("name", no_wrap=True)
    table.add_column("aliases")
    table.add_column("kind")
    table.add_column("task")
    table.add_column("parameters")
    table.add_column("", justify="center")
    for e in selected:
        names = [*e.aliases, *(f"{n} (Keras 2)" for n in e.legacy)]
        params = "\n".join(f"{p.name}={format_value(p.default)}" for p in e.params)
        arrow = "↓" if e.direction == "min" else "↑"
        plugin = getattr(e, "source", None)
        kind = e.kind if plugin is None else f"{e.kind}\nplugin {plugin.name}"
        table.add_row(e.name, "\n".join(names), kind, e.task.replace("|", "\n"), params, arrow)
    if terminal:
        return rich_text(table, stdout=True)
    # Piped output (grep, less): as wide as the table needs, so rows are not wrapped.
    width = Console(file=io.StringIO(), width=10_000).measure(table).maximum
    return rich_text(table, width=max(width, 80))


@click.command("list", short_help="Every loss and metric: aliases, kind, task, parameters.")
@click.option("--kind", type=click.Choice(("loss", "metric"), case_sensitive=False), help="Only losses or only metrics.")
@click.option("--task", type=click.Choice(TASKS, case_sensitive=False), help="Only entries for this task.")
@click.option("--json", "as_json", is_flag=True, help="Write a JSON array, one object per entry.")
@click_options("list")
@config_options
def list_command(
    kind: str | None, task: str | None, as_json: bool, plugins: tuple[str, ...], config_path: str | None, no_config: bool
) -> None:
    """List every loss and metric: name, aliases, kind, task, parameters, direction.

    Keras 2 names (kept for old code) are marked. Use 'lossctl explain NAME'
    for the formula, the parameters' constraints and an example. Entries of
    the plugins named with --plugin (or in the config's plugins) are listed
    too, last.

    \b
    Examples:
      lossctl list
      lossctl list --task binary --kind metric
      lossctl list --json
      lossctl list --plugin examples/plugins/focal.py --kind loss
    """
    from lossctl.plugins import loaded

    with loaded(plugin_names(plugins, config_path, no_config)):
        _list(kind, task, as_json)


def _list(kind: str | None, task: str | None, as_json: bool) -> None:
    from lossctl.docs import entry_info

    selected = _select(kind.lower() if kind else None, task.lower() if task else None)
    if as_json:
        doc: list[dict[str, Any]] = [entry_info(e) for e in selected]
        click.echo(json.dumps(doc, indent=2, allow_nan=False))
        return
    from lossctl.registry import entries

    title = f"{len(selected)} losses and metrics"
    if kind or task:
        shown = " ".join(f"--{k} {v.lower()}" for k, v in (("kind", kind), ("task", task)) if v)
        title = f"{len(selected)} of {len(entries())} losses and metrics ({shown})"
    click.echo(_table(selected, title, terminal=sys.stdout.isatty()), nl=False)

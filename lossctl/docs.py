"""Describe registry entries as data and text: ``list``, ``explain`` and docs/metrics.md.

Everything here reads the registry only, so a metric family documents
itself by being registered. No Click and no rich: the CLI commands render
what these functions return, and ``python -m lossctl.docs`` writes the
reference page::

    python -m lossctl.docs > docs/metrics.md
    python -m lossctl.docs --write            # the same, into the repository's docs/
    python -m lossctl.docs --check            # exit 1 when docs/metrics.md is stale
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossctl.params import Param, normalize_name
from lossctl.registry import MetricDef, entries

TASK_ORDER = ("regression", "binary", "multiclass", "multilabel")
TASK_TITLES = {
    "regression": "Regression",
    "binary": "Binary classification",
    "multiclass": "Multiclass classification",
    "multilabel": "Multilabel classification",
}
DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
REGENERATE = "make docs (or: .venv/bin/python -m lossctl.docs --write)"


@dataclass(frozen=True)
class Sample:
    """A file in sample_data/ and the inputs it suits (its columns are picked automatically).

    ``layout`` is ``(y_true, y_pred)``, each ``"row"`` (one value per row) or
    ``"matrix"`` (a vector per row).
    """

    path: str
    task: str
    shapes: tuple[str, ...]
    layout: tuple[str, str]


# The files `explain` points at. A multiclass file with integer labels suits
# "sparse" entries only; entries that want one-hot y_true get the stdin
# example instead.
SAMPLES = (
    Sample("sample_data/regression.csv", "regression", ("same", "any"), ("row", "row")),
    Sample("sample_data/binary.csv", "binary", ("same", "any"), ("row", "row")),
    Sample("sample_data/multiclass.parquet", "multiclass", ("sparse", "labels", "any"), ("row", "matrix")),
)


def tasks_of(entry: MetricDef) -> tuple[str, ...]:
    """The entry's tasks, the typical one first."""
    return tuple(t.strip() for t in entry.task.split("|") if t.strip())


def format_value(value: Any) -> str:
    """A parameter value as written on the command line (``true``, ``2``, ``0.1``, ``none``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, (list, tuple)):
        # Sequence parameters (target_class_ids) are written 0+2 on the command line.
        return "+".join(format_value(v) for v in value)
    return str(value)


def format_array(values: Any) -> str:
    """Example inputs as nested lists: ``[[0.9, 0.1], [0.2, 0.8]]``."""
    if isinstance(values, (list, tuple)):
        return "[" + ", ".join(format_array(v) for v in values) + "]"
    return format_value(values)


def _jsonable(value: Any) -> Any:
    """Parameter defaults and example values as JSON (tuples become lists, non-finite floats strings)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else format_value(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def type_name(param: Param) -> str:
    """``float``, ``int``, ``bool`` or ``str``."""
    return getattr(param.type, "__name__", str(param.type))


def param_info(param: Param) -> dict[str, Any]:
    """One parameter as data: name, default, type, constraint, doc, and where it applies if not everywhere."""
    info = {
        "name": param.name,
        "default": _jsonable(param.default),
        "type": type_name(param),
        "constraint": param.describe() + (" or none" if param.optional else ""),
        "doc": param.doc,
    }
    if param.applies is not None:
        info["applies"] = applies_text(param)
    return info


def applies_text(param: Param) -> str:
    """``applies only to ...; elsewhere ...`` (what a warning says when it is given where it cannot apply)."""
    assert param.applies is not None
    return f"applies only to {param.applies.where}; elsewhere lossctl warns: {param.applies.otherwise}"


def legacy_note(entry: MetricDef, asked: str) -> str | None:
    """Say so when ``asked`` is one of the entry's Keras 2 names, else ``None``."""
    key = normalize_name(asked)
    for old in entry.legacy:
        if normalize_name(old) == key:
            return (
                f"'{old}' is the Keras 2 name of {entry.name}, kept so that old code runs; "
                f"it resolves to {entry.name} and computes the same value."
            )
    return None


def alias_note(entry: MetricDef, asked: str) -> str | None:
    """Say so when ``asked`` is an alias rather than the canonical name."""
    key = normalize_name(asked)
    if key == normalize_name(entry.name):
        return None
    for alias in entry.aliases:
        if normalize_name(alias) == key:
            return f"'{alias}' is an alias of {entry.name}."
    return None


def spec_for(entry: MetricDef, params: Mapping[str, Any]) -> str:
    """``NAME[:key=value]...`` for these parameter values."""
    return entry.name + "".join(f":{k}={format_value(v)}" for k, v in params.items())


def _command_params(entry: MetricDef) -> dict[str, Any]:
    """Parameters to show in a sample command: the example's, else the first default spelled out."""
    if entry.example is not None and entry.example.params:
        return dict(entry.example.params)
    # Spelling out the first numeric default shows the syntax without changing the result.
    for param in entry.params:
        if param.type is float and param.default is not None:
            return {param.name: param.default}
    return {}


def _option(entry: MetricDef) -> str:
    return "--loss" if entry.kind == "loss" else "--metric"


def _layout(values: Sequence[Any]) -> str:
    return "matrix" if len(values) and isinstance(values[0], (list, tuple)) else "row"


def sample_for(entry: MetricDef) -> Sample | None:
    """The first sample file that suits one of the entry's tasks and its ``shapes``.

    An entry with ``shapes="any"`` checks its inputs itself (one-hot or integer
    labels), so its hand-checked example's layout decides.
    """
    ex = entry.example
    layout = (_layout(ex.y_true), _layout(ex.y_pred)) if ex is not None else None
    for task in tasks_of(entry):
        for sample in SAMPLES:
            if sample.task != task or entry.shapes not in sample.shapes:
                continue
            if layout is not None and layout != sample.layout:
                continue
            return sample
    return None


def sample_args(entry: MetricDef) -> list[str] | None:
    """``eval`` arguments on a sample file (without the ``lossctl`` prefix), or ``None``."""
    sample = sample_for(entry)
    if sample is None:
        return None
    return ["eval", sample.path, _option(entry), spec_for(entry, _command_params(entry))]


def _csv_number(x: Any) -> str:
    value = float(x)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def example_csv(entry: MetricDef) -> tuple[str, list[str]] | None:
    """The hand-checked example as CSV text, and the ``eval -`` arguments that read it.

    One value per row is a ``y_true`` / ``y_pred`` column; a vector per row is
    a family of numbered columns (``y_true_0, y_true_1``), which ``eval``
    picks up without ``--true`` / ``--pred``.
    """
    ex = entry.example
    if ex is None or not len(ex.y_true):
        return None

    def columns(role: str, values: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
        if isinstance(values[0], (list, tuple)):
            width = len(values[0])
            return [f"{role}_{i}" for i in range(width)], [[_csv_number(v) for v in row] for row in values]
        return [role], [[_csv_number(v)] for v in values]

    true_names, true_rows = columns("y_true", ex.y_true)
    pred_names, pred_rows = columns("y_pred", ex.y_pred)
    lines = [",".join(true_names + pred_names)]
    lines += [",".join(t + p) for t, p in zip(true_rows, pred_rows, strict=True)]
    text = "\n".join(lines) + "\n"
    args = ["eval", "-", _option(entry), spec_for(entry, ex.params)]
    return text, args


def command_line(args: Sequence[str]) -> str:
    """``lossctl ARGS`` quoted for a POSIX shell."""
    return "lossctl " + " ".join(shlex.quote(a) for a in args)


def example_commands(entry: MetricDef) -> list[str]:
    """Runnable shell commands: on a sample file when one suits, and the hand-checked example."""
    if hasattr(entry, "commands"):  # a plugin's entry (lossctl.plugin_entries.PluginDef)
        return list(entry.commands())
    out: list[str] = []
    args = sample_args(entry)
    if args is not None:
        out.append(command_line(args))
    csv = example_csv(entry)
    if csv is not None and entry.example is not None:
        text, stdin_args = csv
        printf = "printf " + shlex.quote(text.replace("\n", "\\n"))
        out.append(f"{printf} | {command_line(stdin_args)}  # {entry.example.value!r}")
    return out


def direction_words(direction: str) -> str:
    return "lower is better" if direction == "min" else "higher is better"


def entry_info(entry: MetricDef) -> dict[str, Any]:
    """What ``lossctl list --json`` writes for one entry."""
    return {
        "name": entry.name,
        "aliases": list(entry.aliases),
        "legacy": list(entry.legacy),
        "kind": entry.kind,
        "task": entry.task,
        "tasks": list(tasks_of(entry)),
        "params": [param_info(p) for p in entry.all_params],
        "direction": entry.direction,
        "direction_as_metric": entry.direction_for("metric"),
        "summary": entry.summary,
        # A plugin's entry says where its code is (lossctl.plugin_entries.PluginDef).
        "plugin": entry.about() if hasattr(entry, "about") else None,
    }


def ci_cost(entry: MetricDef) -> str:
    """The entry's cost under ``--ci`` (its accumulator with default parameters)."""
    from lossctl.bootstrap import cost
    from lossctl.registry import resolve_params

    try:
        return cost(entry.accumulator(resolve_params(entry, {}), entry.kind))
    except Exception:  # noqa: BLE001 - an entry that needs the input to decide (acc): say so
        return "as the entry it resolves to on the input"


def explain_info(entry: MetricDef, asked: str | None = None) -> dict[str, Any]:
    """What ``lossctl explain NAME --json`` writes: everything the entry says."""
    asked = asked or entry.name
    ex = entry.example
    info = entry_info(entry)
    info.update(
        {
            "asked": asked,
            "formula": entry.formula,
            "inputs": entry.inputs,
            "shapes": entry.shapes,
            "weights": weights_text(entry),
            "memory": entry.memory,
            "ci_cost": ci_cost(entry),
            "keras": entry.keras,
            "sklearn": entry.sklearn,
            "deviations": entry.deviations or None,
            "legacy_note": legacy_note(entry, asked),
            "alias_note": alias_note(entry, asked),
            "metric_negates": entry.metric_negates,
            "resolves_by_input": entry.resolve is not None,
            "example": None
            if ex is None
            else {
                "y_true": _jsonable(ex.y_true),
                "y_pred": _jsonable(ex.y_pred),
                "params": _jsonable(dict(ex.params)),
                "value": _jsonable(ex.value),
            },
            "commands": example_commands(entry),
        }
    )
    return info


SHAPES_TEXT = {
    "same": "y_true and y_pred have the same width",
    "sparse": "y_true holds integer class labels (N,); y_pred a probability matrix (N, C)",
    "labels": (
        "y_true holds integer class labels (N,) against labels (N,) or a probability matrix (N, C), "
        "or label matrices (N, D) of the same width, read cell by cell"
    ),
    "any": "the entry checks the shapes itself",
}


def _notes(entry: MetricDef, *, loss_note: bool = True) -> list[str]:
    notes = []
    if entry.metric_negates:
        notes.append(
            f"Requested with --metric, the value is the negative of the loss "
            f"({direction_words(entry.direction_for('metric'))}), as in Keras."
        )
    if entry.resolve is not None:
        notes.append(
            "A convenience name: it resolves from the input's shapes and values, as Keras's "
            "compile(metrics=[...]) does, and the output names the entry it resolved to."
        )
    if loss_note and entry.kind == "loss":
        notes.append("A loss; it can also be requested as a metric (--metric), as Keras allows.")
    return notes


def explain_text(entry: MetricDef, asked: str | None = None) -> str:
    """The plain-text page of ``lossctl explain NAME``."""
    asked = asked or entry.name
    lines = [f"{entry.name} — {entry.summary}", ""]
    for note in (legacy_note(entry, asked), alias_note(entry, asked)):
        if note:
            lines += [note, ""]

    def add_field(label: str, value: str) -> None:
        lines.append(f"{label + ':':<16}{value}")

    if entry.aliases:
        add_field("aliases", ", ".join(entry.aliases))
    if entry.legacy:
        add_field("Keras 2 names", ", ".join(entry.legacy))
    add_field("kind", entry.kind)
    add_field("task", entry.task.replace("|", ", "))
    add_field("direction", f"{entry.direction} ({direction_words(entry.direction)})")
    if hasattr(entry, "about_lines"):
        lines += entry.about_lines()
    lines += ["", "Formula:", f"  {entry.formula}", ""]
    lines.append("Parameters:")
    if entry.all_params:
        for p in entry.all_params:
            lines.append(f"  {p.name}={format_value(p.default)}  ({type_name(p)}; {param_info(p)['constraint']})")
            if p.doc:
                lines.append(f"      {p.doc}")
            if p.applies is not None:
                lines.append(f"      {applies_text(p)}")
    else:
        lines.append("  none")
    lines += ["", "Inputs:", f"  {entry.inputs}", f"  shapes: {entry.shapes} ({SHAPES_TEXT.get(entry.shapes, entry.shapes)})"]
    lines.append(f"  weights: {weights_text(entry)}")
    lines.append("")
    add_field("memory", entry.memory)
    add_field("under --ci", ci_cost(entry))
    add_field("Keras", entry.keras or "none")
    add_field("scikit-learn", entry.sklearn or "none")
    if entry.deviations:
        lines += ["", "Differs from Keras:", f"  {entry.deviations}"]
    notes = _notes(entry)
    if notes:
        lines += ["", "Notes:"] + [f"  {n}" for n in notes]
    ex = entry.example
    if ex is not None:
        lines += ["", "Hand-checked example:"]
        lines.append(f"  y_true = {format_array(ex.y_true)}")
        lines.append(f"  y_pred = {format_array(ex.y_pred)}")
        if ex.params:
            lines.append("  params: " + ", ".join(f"{k}={format_value(v)}" for k, v in ex.params.items()))
        lines.append(f"  value  = {ex.value!r}")
    commands = example_commands(entry)
    if commands:
        lines += ["", "Try it:"] + [f"  {c}" for c in commands]
    return "\n".join(lines) + "\n"


def weights_text(entry: MetricDef) -> str:
    """How ``--weight`` / ``sample_weight`` applies to the entry."""
    if entry.element_weights:
        return (
            "one per row, or one per cell of an (N, C) input (Keras's per-element sample_weight), "
            "each cell weighed as Keras weighs it"
        )
    return "one per row (a weight per cell is an error, as in Keras: the value is one per row)"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _sections() -> list[tuple[str, list[MetricDef]]]:
    """Entries grouped by their typical task; losses first, then by name."""
    groups: dict[str, list[MetricDef]] = {}
    for entry in entries():
        first = tasks_of(entry)[0] if tasks_of(entry) else "other"
        groups.setdefault(first, []).append(entry)
    order = [t for t in TASK_ORDER if t in groups] + sorted(t for t in groups if t not in TASK_ORDER)
    return [
        (t, sorted(groups[t], key=lambda e: (e.kind != "loss", e.name)))
        for t in order
    ]


def _entry_markdown(entry: MetricDef) -> list[str]:
    out = [f"### {entry.name}", "", entry.summary, ""]
    names = [f"`{a}`" for a in entry.aliases] + [f"`{a}` (Keras 2)" for a in entry.legacy]
    if names:
        out.append(f"- **Also:** {', '.join(names)}")
    out.append(f"- **Kind:** {entry.kind}; **task:** {entry.task.replace('|', ', ')}; "
               f"**direction:** {entry.direction} ({direction_words(entry.direction)})")
    out.append(f"- **Inputs:** {entry.inputs} (shapes: `{entry.shapes}`)")
    out.append(f"- **Weights:** {weights_text(entry)}")
    out.append(f"- **Memory:** {entry.memory}")
    out.append(f"- **Under `--ci`:** {ci_cost(entry)}")
    out.append(f"- **Keras:** {f'`{entry.keras}`' if entry.keras else 'none'}")
    out.append(f"- **scikit-learn:** {f'`{entry.sklearn}`' if entry.sklearn else 'none'}")
    if entry.deviations:
        out.append(f"- **Differs from Keras:** {entry.deviations}")
    # The page header says once that every loss can be a metric.
    for note in _notes(entry, loss_note=False):
        out.append(f"- {note}")
    out += ["", "```text", entry.formula, "```", ""]
    if entry.all_params:
        out += ["| parameter | default | accepts | meaning |", "| --- | --- | --- | --- |"]
        for p in entry.all_params:
            info = param_info(p)
            meaning = p.doc + (f" ({info['applies']})" if "applies" in info else "")
            out.append(
                f"| `{p.name}` | `{format_value(p.default)}` | {_cell(info['constraint'])} | {_cell(meaning)} |"
            )
        out.append("")
    ex = entry.example
    if ex is not None:
        params = (", " + ", ".join(f"{k}={format_value(v)}" for k, v in ex.params.items())) if ex.params else ""
        out.append(
            f"Example: y_true = `{format_array(ex.y_true)}`, y_pred = `{format_array(ex.y_pred)}`"
            f"{params} gives `{ex.value!r}`."
        )
        out.append("")
    commands = example_commands(entry)
    if commands:
        out += ["```sh", *commands, "```", ""]
    return out


def render_markdown() -> str:
    """docs/metrics.md: an index and one section per entry, from the registry."""
    sections = _sections()
    total = sum(len(group) for _, group in sections)
    out = [
        "# Losses and metrics",
        "",
        f"<!-- Generated from the registry by `python -m lossctl.docs`; do not edit. Regenerate: {REGENERATE} -->",
        "",
        f"{total} entries. Names are case-insensitive and `-` equals `_`; parameters are written "
        "`NAME:key=value[:key=value]`. Every loss also takes `reduction` "
        "(`mean`, `sum_over_batch_size`, `sum`) and can be requested as a metric. "
        "Inputs of more than two dimensions (`(N, H, W, C)`, a segmentation map) are evaluated "
        "as Keras evaluates them: the last axis is the class / output axis, each element of "
        "`(N, H, W)` is a row of the shapes below (`rows` counts them), a sample's weight "
        "applies to each of its elements and a weight of shape `(N, H, W)` element by element. "
        "`lossctl list` and `lossctl explain NAME` show the same information.",
        "",
        "| name | aliases | kind | task | summary |",
        "| --- | --- | --- | --- | --- |",
    ]
    for _, group in sections:
        for e in group:
            names = ", ".join([*e.aliases, *(f"{n} (Keras 2)" for n in e.legacy)])
            out.append(
                f"| [{e.name}](#{e.name}) | {_cell(names)} | {e.kind} | {_cell(e.task)} | {_cell(e.summary)} |"
            )
    out.append("")
    for task, group in sections:
        out += [f"## {TASK_TITLES.get(task, task.capitalize())}", ""]
        for e in group:
            out += _entry_markdown(e)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lossctl.docs [--write [PATH] | --check [PATH]]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = render_markdown()
    if not args:
        sys.stdout.write(text)
        return 0
    mode, rest = args[0], args[1:]
    path = Path(rest[0]) if rest else DOCS_PATH
    if mode == "--write":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return 0
    if mode == "--check":
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            sys.stderr.write(f"{path} is stale; regenerate it: {REGENERATE}\n")
            return 1
        return 0
    sys.stderr.write("usage: python -m lossctl.docs [--write [PATH] | --check [PATH]]\n")
    return 2


__all__ = [
    "entry_info",
    "example_commands",
    "example_csv",
    "explain_info",
    "explain_text",
    "render_markdown",
    "sample_args",
]


if __name__ == "__main__":
    raise SystemExit(main())

"""Shell completion from the registry and the input's columns (Click's completion protocol).

Enabled as for any Click program (``eval "$(_LOSSCTL_COMPLETE=bash_source
lossctl)"``, or ``zsh_source`` / ``fish_source``). FILE arguments complete
file names (they are ``click.Path``); these functions complete the rest:

- ``--loss`` / ``--metric`` / ``worst --loss``: names and aliases, the last
  item of a comma list, then after ``NAME:`` the parameters (``huber:delta=``)
  and after ``key=`` the values a parameter takes (choices, booleans);
- ``--check``: the names, then the comparison operators;
- ``explain NAME``: the names;
- ``--true`` / ``--pred`` / ``--weight``: the columns of the FILE arguments
  given before it, or a file name (``PATH`` or ``PATH:COLUMN``).

Completion must never fail: a problem (an unreadable file, an unknown name)
completes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click
    from click.shell_completion import CompletionItem

    from lossctl.registry import MetricDef

OPERATORS = ("<", "<=", ">", ">=", "==", "!=")
BOOLEANS = ("true", "false")


def _item(value: str, **kwargs: Any) -> CompletionItem:
    # Imported on use: the commands import this module at every start-up, completion is rare.
    from click.shell_completion import CompletionItem

    return CompletionItem(value, **kwargs)


def _entries_by_name() -> dict[str, MetricDef]:
    from lossctl.registry import entries

    return {name: e for e in entries() for name in e.names}


def _names(prefix: str, incomplete: str) -> list[CompletionItem]:
    """Every name or alias that ``incomplete`` begins (case-insensitive, ``-`` equals ``_``)."""
    from lossctl.params import normalize_name

    wanted = normalize_name(incomplete)
    return [
        _item(prefix + name, help=entry.summary)
        for name, entry in sorted(_entries_by_name().items())
        if normalize_name(name).startswith(wanted)
    ]


def _parameters(prefix: str, spec: str) -> list[CompletionItem]:
    """After ``NAME:``: the parameters not given yet, or the values of the one being written."""
    from lossctl.params import normalize_name
    from lossctl.registry import lookup

    name, *given, current = spec.split(":")
    entry = lookup(name)
    declared = {normalize_name(p.name): p for p in entry.all_params}
    base = prefix + ":".join([name, *given]) + ":"
    if "=" in current:
        key, _, value = current.partition("=")
        param = declared.get(normalize_name(key))
        if param is None:
            return []
        values = param.choices or (BOOLEANS if param.type is bool else ())
        return [_item(f"{base}{key}={v}") for v in values if v.lower().startswith(value.lower())]
    taken = {normalize_name(g.partition("=")[0]) for g in given}
    return [
        _item(f"{base}{p.name}=", help=f"{p.doc} (default {p.default})" if p.doc else None)
        for key, p in declared.items()
        if key not in taken and key.startswith(normalize_name(current))
    ]


def complete_specs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``--loss`` / ``--metric``: ``NAME[:key=value...]``, comma lists allowed."""
    head, comma, last = incomplete.rpartition(",")
    prefix = head + comma
    try:
        return _parameters(prefix, last) if ":" in last else _names(prefix, last)
    except Exception:  # noqa: BLE001 - completion never fails
        return []


def complete_name(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``explain NAME``: a name or alias."""
    try:
        return _names("", incomplete)
    except Exception:  # noqa: BLE001 - completion never fails
        return []


def complete_check(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``--check``: the NAME, then the operators (``auc >=``)."""
    text = incomplete.lstrip()
    try:
        if not text or not (text[-1].isspace() or any(op in text for op in OPERATORS)):
            return _names("", text)
        target = text.split()[0].rstrip("<>=!")
        rest = text[len(target):].strip()
        return [_item(f"{target} {op} ") for op in OPERATORS if op.startswith(rest)]
    except Exception:  # noqa: BLE001 - completion never fails
        return []


def _files(ctx: click.Context) -> tuple[str, ...]:
    """The FILE arguments typed so far (from the words when Click stopped before them)."""
    import click

    if ctx.params.get("files"):
        return tuple(ctx.params["files"])
    valued = {
        name
        for p in ctx.command.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in (*p.opts, *p.secondary_opts)
    }
    files: list[str] = []
    words = iter(ctx.meta.get("lossctl.words", ()))
    for word in words:
        if word.startswith("-") and word != "-":
            if word in valued:
                next(words, None)
            continue
        files.append(word)
    return tuple(files)


def complete_column(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """``--true`` / ``--pred`` / ``--weight``: a file name, or a column of the FILEs given before it."""
    items = [_item(incomplete, type="file")]
    files = _files(ctx)
    if not files or "-" in files:
        return items
    try:
        from lossctl.io import open_table

        names = open_table(tuple(files)).names
    except Exception:  # noqa: BLE001 - completion never fails
        return items
    # The file item first: in bash it clears the list, then the matching columns are added.
    return items + [_item(n) for n in names if n.startswith(incomplete)]


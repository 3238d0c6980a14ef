"""Defaults from a config file (SPEC section 6): ``lossctl.toml`` or ``[tool.lossctl]``.

Looked up in the working directory only (a CI job runs from the repository
root; walking up the tree would pick up an unrelated project's settings):
``lossctl.toml`` (top-level keys) wins over ``pyproject.toml``'s
``[tool.lossctl]`` table; ``--config FILE`` names one explicitly. Every key
is validated when the file is read, so a typo is a usage error (exit 2)
naming the file and the key, never a silently ignored setting. Only the
command line reads config files; ``lossctl.evaluate`` takes its options as
arguments and ignores them.

Example ``lossctl.toml``::

    losses = ["mse"]
    metrics = ["r2", "mae"]
    checks = ["r2 >= 0.8", "mse < 0.25"]
    format = "markdown"

    [columns]
    true = "label"
    pred = "score"
"""

from __future__ import annotations

import contextlib
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lossctl.errors import UsageProblem
from lossctl.params import did_you_mean

CONFIG_NAME = "lossctl.toml"
PYPROJECT = "pyproject.toml"
# Output formats a config may choose; kept here so the library does not import the renderers.
FORMATS = ("table", "json", "csv", "markdown", "junit")


def _option_keys() -> dict[str, Any]:
    from lossctl.options import config_keys

    return config_keys()


def top_level_keys() -> tuple[str, ...]:
    """The keys a config table may have: every configurable option's, and ``format``."""
    return (*dict.fromkeys(k.split(".")[0] for k in _option_keys()), "format")


@dataclass(frozen=True)
class Config:
    """Validated settings: ``values`` by config key (``losses``, ``columns.true``...).

    Attributes:
        path: where the settings came from (``None``: no config file).
        values: the options set, in the Request's form, by config key
            (``lossctl.options`` says which options a config may set).
        format: the output format when ``-f`` is not given.
    """

    path: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    format: str | None = None

    @property
    def losses(self) -> tuple[str, ...]:
        return tuple(self.values.get("losses", ()))

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.values.get("metrics", ()))

    @property
    def checks(self) -> tuple[str, ...]:
        return tuple(self.values.get("checks", ()))

    @property
    def columns(self) -> dict[str, str]:
        return {k.partition(".")[2]: v for k, v in self.values.items() if k.startswith("columns.")}


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    """A string or a list of non-empty strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise UsageProblem(f"{where}: '{key}' must be a list of strings, not {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise UsageProblem(f"{where}: '{key}[{i}]' must be a string, not {_type_name(item)}")
        if not item.strip():
            raise UsageProblem(f"{where}: '{key}[{i}]' is empty")
    return tuple(value)


def _value(where: str, key: str, option: Any, value: Any) -> Any:
    """One option's config value, checked against the option's type."""
    if option.multiple:
        return _strings(where, key, value)
    if option.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageProblem(f"{where}: '{key}' must be an integer, not {_type_name(value)}")
        return value
    if option.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageProblem(f"{where}: '{key}' must be a number, not {_type_name(value)}")
        return float(value)
    if isinstance(option.type, tuple):
        if not isinstance(value, str) or value.lower() not in option.type:
            raise UsageProblem(f"{where}: '{key}' must be one of {', '.join(option.type)}, not {value!r}")
        return value.lower()
    if not isinstance(value, str) or not value.strip():
        what = "a column name" if key.startswith("columns.") else "a non-empty string"
        raise UsageProblem(f"{where}: '{key}' must be {what}, not {_type_name(value)}")
    return value


def _flatten(where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """``{config key: raw value}``; unknown keys are usage errors with a suggestion."""
    known = _option_keys()
    tops = top_level_keys()
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in tops:
            hint = did_you_mean(key, tops) or f"; keys are {', '.join(tops)}"
            raise UsageProblem(f"{where}: unknown key '{key}'{hint}")
        subkeys = [k.partition(".")[2] for k in known if k.startswith(key + ".")]
        if not subkeys:
            out[key] = value
            continue
        if not isinstance(value, dict):
            example = f'{subkeys[0]} = "..."'
            raise UsageProblem(f"{where}: '{key}' must be a table ({example}, ...), not {_type_name(value)}")
        for sub, v in value.items():
            if sub not in subkeys:
                hint = did_you_mean(sub, subkeys) or f"; keys are {', '.join(subkeys)}"
                raise UsageProblem(f"{where}: unknown key '{key}.{sub}'{hint}")
            out[f"{key}.{sub}"] = v
    return out


def _validate(where: str, table: Mapping[str, Any], base: str = ".") -> Config:
    """Check every key and value; name the key in the message when one is wrong.

    ``plugins`` paths are taken relative to ``base``, the config file's folder;
    the plugins are loaded (they are named in the config: their code runs) so
    that the losses and metrics they define are known names here.
    """
    from lossctl.checks import parse_check
    from lossctl.plugins import loaded, relative_to
    from lossctl.registry import resolve_all

    raw = _flatten(where, table)
    fmt = raw.pop("format", None)
    options = _option_keys()
    values = {key: _value(where, key, options[key], value) for key, value in raw.items()}
    if "plugins" in values:
        values["plugins"] = relative_to(values["plugins"], base)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(loaded(values.get("plugins", ())))
        except UsageProblem as exc:
            raise UsageProblem(f"{where}: 'plugins': {exc}") from None
        for key in ("losses", "metrics"):
            try:
                specs = values.get(key, ())
                resolve_all(specs, ()) if key == "losses" else resolve_all((), specs)
            except UsageProblem as exc:
                raise UsageProblem(f"{where}: '{key}': {exc}") from None
    for i, text in enumerate(values.get("checks", ())):
        try:
            parse_check(text)
        except UsageProblem as exc:
            raise UsageProblem(f"{where}: 'checks[{i}]': {exc}") from None
    if fmt is not None:
        if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
            shown = repr(fmt) if isinstance(fmt, str) else _type_name(fmt)
            raise UsageProblem(f"{where}: 'format' must be one of {', '.join(FORMATS)}, not {shown}")
        fmt = fmt.lower()
    return Config(where, values, fmt)


# SPEC section 6: a config file is a regular file of at most 1 MiB.
MAX_CONFIG_BYTES = 1 << 20


def _bounded_text(path: str, label: str) -> bytes:
    """The bytes of a regular file of at most MAX_CONFIG_BYTES; a device, FIFO or larger file is refused at once."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise UsageProblem(f"{label}: not a regular file; a config file must be one")
        data = fh.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise UsageProblem(f"{label}: config file larger than 1 MiB")
    return data


def _read(path: str, label: str | None = None) -> dict[str, Any]:
    label = label or path
    try:
        return tomllib.loads(_bounded_text(path, label).decode("utf-8"))
    except RecursionError:
        raise UsageProblem(f"{label}: not valid TOML: nested too deeply") from None
    except FileNotFoundError:
        raise UsageProblem(f"{label}: no such config file") from None
    except IsADirectoryError:
        raise UsageProblem(f"{label}: is a directory, not a config file") from None
    except PermissionError:
        raise UsageProblem(f"{label}: permission denied") from None
    except UnicodeDecodeError:
        raise UsageProblem(f"{label}: not valid TOML: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageProblem(f"{label}: not valid TOML: {' '.join(str(exc).split())}") from None


def _tool_table(path: str, doc: Mapping[str, Any], required: bool) -> Config | None:
    tool = doc.get("tool", {})
    section = tool.get("lossctl") if isinstance(tool, dict) else None
    if section is None:
        if required:
            raise UsageProblem(f"{path}: no [tool.lossctl] table")
        return None
    if not isinstance(section, dict):
        raise UsageProblem(f"{path}: 'tool.lossctl' must be a table, not {_type_name(section)}")
    return _validate(f"{path} [tool.lossctl]", section, os.path.dirname(path) or ".")


def load_config(path: str | None = None, directory: str = ".") -> Config:
    """Read ``path``, or find a config in ``directory``; no config gives an empty :class:`Config`.

    Raises:
        UsageProblem: the file is missing (when named), unreadable, not TOML,
            or has an unknown key or a bad value; the message names the key.
    """
    if path is not None:
        doc = _read(path)
        if os.path.basename(path) == PYPROJECT:
            found = _tool_table(path, doc, required=True)
            assert found is not None
            return found
        return _validate(path, doc, os.path.dirname(path) or ".")
    own = os.path.join(directory, CONFIG_NAME)
    if os.path.isfile(own):
        label = CONFIG_NAME if directory == "." else own
        return _validate(label, _read(own, label), directory)
    pyproject = os.path.join(directory, PYPROJECT)
    if os.path.isfile(pyproject):
        label = PYPROJECT if directory == "." else pyproject
        return _tool_table(label, _read(pyproject, label), required=False) or Config()
    return Config()

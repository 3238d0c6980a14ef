"""Custom losses as plugins (SPEC section 8): ``--plugin PATH.py`` and ``--plugin package.module``.

A plugin is Python code written the way the Keras articles write losses::

    def my_loss(y_true, y_pred):                  # a loss named my_loss
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    def huber_loss_with_threshold(t=1.0):         # a factory: huber_loss_with_threshold:t=2
        def huber_loss(y_true, y_pred): ...
        return huber_loss

:func:`load` reads a file (by path, as a module named after the file and
its hash, without touching ``sys.path``) or imports a module, and finds the
top-level functions defined in it (not imported into it): a function whose
first two parameters are ``y_true``, ``y_pred`` is an entry named after it
(its other keyword parameters become spec parameters, typed from their
defaults or annotations); a function whose parameters all have defaults and
that defines such a function inside is a factory: it is called once with
its defaults to check that it returns one, and its parameters become the
entry's. :func:`loss` / :func:`metric` (``lossctl.loss``, ``lossctl.metric``)
say more: another name, aliases, a direction, a formula line, a task.

Code runs only when a plugin is named (``--plugin``, the working
directory's config, the API's ``plugins=``) or a function is handed to the
API; a state file records plugins by name and hash and never loads them.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import marshal
import os
import re
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from lossctl.errors import UsageProblem
from lossctl.params import Param, normalize_name
from lossctl.plugin_entries import PluginDef, PluginKernel, Source, make_entry, param_of
from lossctl.registry import entries, plugins_registered

F = TypeVar("F", bound=Callable[..., Any])

TASKS = ("regression", "binary", "multiclass", "multilabel")
# Letters, digits, _ and - (a "." would read as a check's bound, "auc.low").
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: where its code came from and the entries it defines."""

    source: Source
    entries: tuple[PluginDef, ...]


# Loaded plugins by (name as given, file, content hash); their modules by (file, content hash).
_CACHE: dict[tuple[str, str, str], Plugin] = {}
_MODULES: dict[tuple[str, str], types.ModuleType] = {}
_CALLABLES: weakref.WeakKeyDictionary[Any, PluginDef] = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()


# --------------------------------------------------------------------------
# Decorators: lossctl.loss, lossctl.metric


def _mark(fn: F | None, kind: str, direction: str, name: str | None, aliases: Any, formula: str | None,
          task: str | None) -> Any:
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' (lower is better) or 'max', not {direction!r}")
    if name is not None and not (isinstance(name, str) and _NAME.match(name)):
        raise ValueError(f"name must be a word (letters, digits, _ and -), not {name!r}")
    aliases = (aliases,) if isinstance(aliases, str) else tuple(aliases or ())
    for alias in aliases:
        if not (isinstance(alias, str) and _NAME.match(alias)):
            raise ValueError(f"aliases must be words (letters, digits, _ and -), not {alias!r}")
    if task is not None and not all(t in TASKS for t in task.split("|")):
        raise ValueError(f"task must be one of {', '.join(TASKS)} (several joined by |), not {task!r}")
    meta = {"kind": kind, "direction": direction, "name": name, "aliases": aliases, "formula": formula, "task": task}

    def decorate(f: F) -> F:
        f.__lossctl__ = meta  # type: ignore[attr-defined]  # read back by load()
        return f

    return decorate if fn is None else decorate(fn)


def loss(fn: F | None = None, *, name: str | None = None, aliases: str | Sequence[str] = (),
         formula: str | None = None, task: str | None = None) -> Any:
    """Mark a function (or factory) as a loss, lower is better: ``@lossctl.loss(name="dice", aliases=["dl"])``.

    Without the decorator, every top-level function whose first two
    parameters are ``y_true``, ``y_pred`` is a loss named after it; with it,
    the first two parameters may have any names. The function is returned
    unchanged, so it still works as a Keras loss.
    """
    return _mark(fn, "loss", "min", name, aliases, formula, task)


def metric(fn: F | None = None, *, direction: str = "max", name: str | None = None,
           aliases: str | Sequence[str] = (), formula: str | None = None, task: str | None = None) -> Any:
    """Mark a function (or factory) as a metric, higher is better unless ``direction="min"``."""
    return _mark(fn, "metric", direction, name, aliases, formula, task)


# --------------------------------------------------------------------------
# What a function is


def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _is_loss(sig: inspect.Signature, any_names: bool) -> bool:
    """Two positional parameters first (``y_true``, ``y_pred`` unless ``any_names``), every other one defaulted."""
    params = list(sig.parameters.values())
    first = [p for p in params[:2] if p.kind in _POSITIONAL]
    if len(first) < 2 or (not any_names and [p.name for p in first] != ["y_true", "y_pred"]):
        return False
    return all(p.default is not p.empty or p.kind in _VARIADIC for p in params[2:])


def _all_defaulted(sig: inspect.Signature) -> bool:
    return all(p.default is not p.empty or p.kind in _VARIADIC for p in sig.parameters.values())


def _defines_a_loss(fn: Any) -> bool:
    """Whether ``fn`` defines a ``def ...(y_true, y_pred)`` or lambda inside (a factory's shape)."""
    code = getattr(fn, "__code__", None)
    return code is not None and any(
        isinstance(c, types.CodeType) and c.co_argcount >= 2 and c.co_varnames[:2] == ("y_true", "y_pred")
        for c in code.co_consts
    )


def _params(owner: str, sig: inspect.Signature, skip: int) -> tuple[Param, ...]:
    out = []
    for p in list(sig.parameters.values())[skip:]:
        if p.kind in _VARIADIC or p.kind == p.POSITIONAL_ONLY or p.default is p.empty:
            continue
        param = param_of(owner, p.name, p.default, p.annotation)
        if param is not None:
            out.append(param)
    return tuple(out)


def _name_of(fn: Any) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return "lambda" if name == "<lambda>" else name


def entry_for(fn: Any, source: Source, *, explicit: bool = False) -> PluginDef | None:
    """The entry ``fn`` defines, or ``None`` when it is no loss (an error when it was meant to be one).

    ``explicit``: handed over on purpose (the API), so, as with a decorated
    function, the first two parameters may have any names.
    """
    meta = vars(fn).get("__lossctl__") if hasattr(fn, "__dict__") else None
    meant = explicit or meta is not None
    meta = meta or {}
    function = _name_of(fn)
    where = f"plugin {source.name}, function {function}"
    sig = _signature(fn)
    if sig is None:
        if meant:
            raise UsageProblem(f"{where}: its parameters cannot be read")
        return None
    loss_shaped = _is_loss(sig, any_names=False) or (meant and _is_loss(sig, any_names=True))
    # A factory defines its loss inside (a def or lambda of y_true, y_pred); one handed
    # over on purpose that cannot be a loss itself is tried as a factory too.
    factory = _all_defaulted(sig) and (_defines_a_loss(fn) or (meant and not loss_shaped))
    if factory:
        try:
            made = fn()
        except Exception as exc:  # noqa: BLE001 - the user's code: its message, exit 2
            raise UsageProblem(f"{where}: calling it with its defaults (to see whether it makes a loss) raised "
                               f"{type(exc).__name__}: {exc}") from None
        made_sig = _signature(made) if callable(made) else None
        factory = made_sig is not None and _is_loss(made_sig, any_names=meant)
    if factory:
        kernel = PluginKernel(where, None, factory=fn)
        params = _params(function, sig, 0)
        signature = f"{function}{sig} -> {_name_of(made)}{made_sig}"
    elif loss_shaped:
        kernel, params, signature = PluginKernel(where, fn), _params(function, sig, 2), f"{function}{sig}"
    elif meant:
        raise UsageProblem(f"{where}: neither a loss fn(y_true, y_pred) nor a factory returning one "
                           "(a function whose parameters all have defaults)")
    else:
        return None
    name = meta.get("name") or function
    if not _NAME.match(name):
        raise UsageProblem(f"{where}: '{name}' cannot be a loss name; name it with @lossctl.loss(name=...)")
    return make_entry(
        source, name=name, function=function, signature=signature, doc=inspect.getdoc(fn) or "",
        kernel=kernel, params=params, kind=meta.get("kind", "loss"), direction=meta.get("direction", "min"),
        aliases=meta.get("aliases", ()), formula=meta.get("formula"), task=meta.get("task"),
    )


# --------------------------------------------------------------------------
# Loading


def is_path(name: str) -> bool:
    """``PATH.py`` (or any path) rather than ``package.module``."""
    return name.endswith(".py") or "/" in name or os.sep in name


def relative_to(names: Iterable[str], base: str) -> tuple[str, ...]:
    """Plugin names of a config file: its paths taken relative to the file's folder."""
    return tuple(n if not is_path(n) or os.path.isabs(n) else os.path.normpath(os.path.join(base, n)) for n in names)


def _discover(module: types.ModuleType, source: Source) -> Plugin:
    found: list[PluginDef] = []
    for attr, obj in list(vars(module).items()):
        if attr.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
            continue
        entry = entry_for(obj, source)
        if entry is not None:
            found.append(entry)
    if not found:
        raise UsageProblem(
            f"plugin {source.name}: defines no loss (a top-level function whose first two parameters are "
            "y_true, y_pred, or a factory returning one)"
        )
    taken: dict[str, PluginDef] = {}
    for entry in found:
        for n in entry.names:
            other = taken.setdefault(normalize_name(n), entry)
            if other is not entry:
                raise UsageProblem(f"plugin {source.name}: functions {other.function} and {entry.function} "
                                   f"are both named '{n}'")
    return Plugin(source, tuple(found))


def _load_file(name: str) -> Plugin:
    try:
        with open(name, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise UsageProblem(f"plugin {name}: no such file") from None
    except IsADirectoryError:
        raise UsageProblem(f"plugin {name}: is a directory; name a .py file or a module (package.module)") from None
    except OSError as exc:
        raise UsageProblem(f"plugin {name}: cannot read: {exc.strerror or exc}") from None
    sha = hashlib.sha256(data).hexdigest()
    path = os.path.abspath(name)
    key = (name, os.path.realpath(name), sha)
    if key in _CACHE:
        return _CACHE[key]
    # The same file named another way is not run again: its module is shared.
    module = _MODULES.get(key[1:])
    if module is None:
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(name))[0])
        module = types.ModuleType(f"lossctl_plugin_{stem}_{sha[:12]}")
        module.__file__ = path
        sys.modules[module.__name__] = module
        try:
            # The bytes hashed are the bytes run.
            exec(compile(data, path, "exec"), module.__dict__)  # noqa: S102 - a plugin is code the user named
        except (Exception, SystemExit) as exc:
            del sys.modules[module.__name__]
            raise UsageProblem(f"plugin {name}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
        _MODULES[key[1:]] = module
    _CACHE[key] = _discover(module, Source(name, sha, path))
    return _CACHE[key]


def _load_module(name: str) -> Plugin:
    if not _MODULE.match(name):
        raise UsageProblem(f"plugin {name}: neither a Python file (PATH.py) nor a module name (package.module)")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageProblem(
                f"plugin {name}: no module named '{exc.name}' (a module must be importable: installed or on "
                "PYTHONPATH; a file is given as PATH.py)"
            ) from None
        raise UsageProblem(f"plugin {name}: ModuleNotFoundError: {exc}") from None
    except (Exception, SystemExit) as exc:
        raise UsageProblem(f"plugin {name}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    path = getattr(module, "__file__", None)
    try:
        with open(path or "", "rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        raise UsageProblem(f"plugin {name}: has no source file (its content hash is recorded)") from None
    key = (name, os.path.realpath(path or ""), sha)
    if key not in _CACHE:
        _CACHE[key] = _discover(module, Source(name, sha, path))
    return _CACHE[key]


def load(name: str) -> Plugin:
    """Load one plugin (once per process and content); a plugin that fails is a usage error (exit 2)."""
    with _LOCK:
        return _load_file(name) if is_path(name) else _load_module(name)


@contextmanager
def loaded(names: Sequence[str]) -> Iterator[list[Plugin]]:
    """Load plugins and register their entries for the ``with`` block (a shadowed name: exit 2)."""
    with ExitStack() as stack:
        plugins: list[Plugin] = []
        for name in dict.fromkeys(names):
            plugin = load(name)
            same = (os.path.realpath(plugin.source.path or ""), plugin.source.sha256)
            if not any((os.path.realpath(p.source.path or ""), p.source.sha256) == same for p in plugins):
                plugins.append(plugin)
        for plugin in plugins:
            stack.enter_context(plugins_registered(plugin.entries, f"plugin {plugin.source.name}"))
        yield plugins


# --------------------------------------------------------------------------
# Functions handed to the API


def _callable_hash(fn: Any) -> str:
    """A content hash of a function: its source (else its code), defaults and closure values."""
    digest = hashlib.sha256()
    # A callable object (not a function) is known by its class's code.
    what = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn)
    try:
        digest.update(inspect.getsource(what).encode())
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        digest.update(marshal.dumps(code) if code is not None else what.__qualname__.encode())
    for part in (getattr(fn, "__defaults__", None), getattr(fn, "__kwdefaults__", None)):
        digest.update(repr(part).encode())
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            digest.update(repr(cell.cell_contents).encode())
        except ValueError:  # an empty cell
            digest.update(b"<empty>")
    return digest.hexdigest()


def from_callable(fn: Any) -> PluginDef:
    """The entry of a function handed to ``lossctl.get`` or ``evaluate(loss=[fn])`` (a plugin's own when it is one)."""
    for entry in entries():
        kernel = entry.kernel
        if isinstance(entry, PluginDef) and isinstance(kernel, PluginKernel) and fn in (kernel.fn, kernel.factory):
            return entry
    with _LOCK:
        try:
            cached = _CALLABLES.get(fn)
        except TypeError:  # not weakly referable
            cached = None
        if cached is not None:
            return cached
        module = getattr(fn, "__module__", None) or "__main__"
        qualname = getattr(fn, "__qualname__", None) or _name_of(fn)
        path = getattr(getattr(fn, "__code__", None), "co_filename", None)
        entry = entry_for(fn, Source(f"{module}.{qualname}", _callable_hash(fn), path), explicit=True)
        assert entry is not None
        try:
            _CALLABLES[fn] = entry
        except TypeError:
            pass
        return entry


def _named(specs: Sequence[Any], made: dict[int, PluginDef]) -> tuple[str, ...]:
    out = []
    for spec in specs:
        if isinstance(spec, str):
            out.append(spec)
        elif callable(spec):
            if id(spec) not in made:
                made[id(spec)] = from_callable(spec)
            out.append(made[id(spec)].name)
        else:
            raise UsageProblem(f"a loss or metric is a name or a function, not {type(spec).__name__}")
    return tuple(out)


@contextmanager
def activated(request: Any) -> Iterator[Any]:
    """The request's plugins loaded and its functions made entries, registered for the ``with`` block.

    Yields the request with every function in ``losses``/``metrics``
    replaced by its entry's name.
    """
    with loaded(tuple(request.plugins or ())) as plugins, ExitStack() as stack:
        made: dict[int, PluginDef] = {}
        losses, metrics = _named(request.losses, made), _named(request.metrics, made)
        own = {id(e) for p in plugins for e in p.entries}
        fresh = list({id(e): e for e in made.values() if id(e) not in own}.values())
        for entry in fresh:
            assert entry.source is not None
            stack.enter_context(plugins_registered([entry], f"function {entry.source.name}"))
        yield replace(request, losses=losses, metrics=metrics)

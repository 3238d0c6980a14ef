"""The registry-wide properties (tests/test_properties.py) hold for plugin entries too.

The plugin entries of tests/data/plugins/props.py (a plain function, a
metric with a parameter, a factory, one per task) are registered for each
test only, and every property test of test_properties.py that takes an
``entry`` runs again over them: chunk size, merge order, permutations,
weights, empty states, state arrays, slots, saved shards merged (without the
plugin's code) and forged state files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_properties as props

from lossctl.plugins import load
from lossctl.registry import plugins_registered

PLUGIN = load(str(Path(__file__).parent / "data" / "plugins" / "props.py"))
ENTRIES = list(PLUGIN.entries)
IDS = [e.name for e in ENTRIES]


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    with plugins_registered(ENTRIES, "plugin props.py"):
        yield


def test_every_task_has_a_plugin_entry() -> None:
    assert sorted(e.task for e in ENTRIES) == ["binary", "multiclass", "multilabel", "regression"]
    assert any(e.kernel.factory is not None for e in ENTRIES)  # type: ignore[union-attr]


def _again(test: Callable[..., Any]) -> Callable[..., Any]:
    """``test`` parametrized over the plugin entries, its other parametrizations kept."""

    def run(**kwargs: Any) -> Any:
        return test(**kwargs)

    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = test.__name__
    run.__doc__ = test.__doc__
    marked: Any = pytest.mark.parametrize("entry", ENTRIES, ids=IDS)(run)
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize" and mark.args[0] == "entry":
            continue
        marked = getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs)(marked)
    return marked


PROPERTIES = [
    name
    for name, fn in vars(props).items()
    if name.startswith("test_") and callable(fn) and "entry" in inspect.signature(fn).parameters
]
for _name in PROPERTIES:
    globals()[_name] = _again(getattr(props, _name))


def test_the_properties_are_all_here() -> None:
    assert len(PROPERTIES) >= 12, PROPERTIES

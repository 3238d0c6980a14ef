"""lossctl: evaluate losses and metrics over model-prediction files.

``lossctl.evaluate(...)`` runs the same evaluation as ``lossctl eval``;
``lossctl.get(name)`` returns a NumPy function like ``keras.losses.get``;
``@lossctl.loss`` / ``@lossctl.metric`` mark the functions of a plugin.
Heavy modules are imported on first use, so ``lossctl --version`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lossctl._version import __version__

__all__ = ["__version__", "compare", "evaluate", "get", "loss", "merge", "metric"]

if TYPE_CHECKING:
    from lossctl.api import compare, evaluate, get, merge
    from lossctl.plugins import loss, metric


def __getattr__(name: str) -> Any:
    if name in ("compare", "evaluate", "get", "merge"):
        from lossctl import api

        return getattr(api, name)
    if name in ("loss", "metric"):
        from lossctl import plugins

        return getattr(plugins, name)
    raise AttributeError(f"module 'lossctl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""What one evaluation is asked to do: the fields every front end fills the same way.

The fields come from the options table (``lossctl.options``): the CLI fills
them from its options and the config file, the API from its keywords; the
engine reads nothing else.
"""

from __future__ import annotations

from dataclasses import field, make_dataclass
from typing import Any

from lossctl.options import DEFAULT_CHUNK_ROWS, NAN_POLICIES, OPTIONS

__all__ = ["DEFAULT_CHUNK_ROWS", "NAN_POLICIES", "Request"]

# files: the FILE arguments (one table); every other field is an option.
Request: Any = make_dataclass(
    "Request",
    [("files", tuple, field(default=())), *((o.field, Any, field(default=o.default)) for o in OPTIONS)],
    frozen=True,
)
Request.__module__ = __name__
Request.__doc__ = "Everything an evaluation needs: the FILE arguments and one field per option of lossctl.options."

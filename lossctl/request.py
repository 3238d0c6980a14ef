"""What one evaluation is asked to do: the fields every front end fills the same way.

The CLI builds a :class:`Request` from its options (and the config file),
the API from its keywords; the engine reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CHUNK_ROWS = 1 << 16
NAN_POLICIES = ("error", "drop", "propagate")


@dataclass(frozen=True)
class Request:
    """Everything ``eval`` needs; the CLI builds one, the API takes its fields as keywords."""

    files: tuple[str, ...] = ()
    losses: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    true: str | None = None
    pred: str | None = None
    weight: str | None = None
    chunk_size: int = DEFAULT_CHUNK_ROWS
    input_format: str | None = None
    delimiter: str | None = None
    nan: str = "error"
    # `--check` expressions (lossctl.checks); names not requested are added as metrics.
    checks: tuple[str, ...] = ()
    # `--per-row FILE`: per-row values of the per-row entries, with row numbers (.parquet or .csv).
    per_row: str | None = None
    # `--save-state FILE`: the run's partial states, for `lossctl merge` (lossctl.statefile).
    save_state: str | None = None

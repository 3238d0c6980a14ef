"""The JSON document of SPEC section 5: full precision, ``allow_nan=False``.

Indented for people; past a few thousand results (``--by`` over many
groups) the document is written compact, by the C encoder in one call (the
indenting encoder is pure Python: 800,000 results took 40 s).
"""

from __future__ import annotations

import json

from lossctl.results import Evaluation

# Results past which the document is written compact.
COMPACT_AFTER = 2000


def to_json(evaluation: Evaluation) -> str:
    """Serialize; undefined values are already ``None`` with a note, so NaN never appears."""
    doc = evaluation.to_dict()
    if len(doc["results"]) <= COMPACT_AFTER:
        return json.dumps(doc, allow_nan=False, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(doc, allow_nan=False, ensure_ascii=False, separators=(",", ":")) + "\n"

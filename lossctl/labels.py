"""Class labels that are not class indices: strings, or numbers in another order (SPEC section 2).

Classes are ordered by ``--classes a,b,c``, else by the suffixes of the
probability columns (``prob_cat``, ``prob_dog`` give ``cat``, ``dog``), else,
for one probability column, by ``--pos-label VALUE`` (the other value is the
negative class). A :class:`LabelCoder` turns the y_true column into class
indices as it is read (a reader converter), so every metric sees integer
labels; a label outside the classes is a data error naming the row. Text
labels with no way to order them are a usage error saying which option to
give.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from lossctl.columns import Selection
from lossctl.errors import DataError, UsageProblem


def _text(value: Any) -> str:
    """A label as written: ``1`` for the number 1.0, the string itself otherwise."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class LabelCoder:
    """Maps a y_true column's values to class indices ``0..K-1`` (``float64``), chunk by chunk.

    ``classes`` fixes the order; with ``pos_label`` (one probability column)
    the positive value becomes 1 and the one other value seen becomes 0 (a
    third value is a data error at its row, whatever the chunk size).
    """

    def __init__(self, label: str, column: str, classes: list[str] | None = None, pos_label: str | None = None) -> None:
        self.label, self.column = label, column
        self.classes = classes
        self.pos_label = pos_label
        self.negative: str | None = None
        self.index = {c: i for i, c in enumerate(classes or [])}

    def __call__(self, values: Any, start: int) -> np.ndarray:
        raw = values.to_pylist() if hasattr(values, "to_pylist") else np.asarray(values).tolist()
        texts = np.asarray([_text(v) for v in raw], dtype=object)
        if not len(texts):
            return np.empty(0)
        # Each distinct label coded once, in the order the labels first appear (errors name that row).
        uniques, first, inverse = np.unique(texts, return_index=True, return_inverse=True)
        codes = np.empty(len(uniques))
        for k in np.argsort(first, kind="stable"):
            codes[k] = self._code(str(uniques[k]), start + int(first[k]))
        return codes[inverse.reshape(-1)]

    def _code(self, text: str, row: int) -> float:
        if text in ("None", "nan", ""):
            return float("nan")  # a missing label: the --nan policy decides
        if self.pos_label is not None:
            if text == self.pos_label:
                return 1.0
            if self.negative is None:
                self.negative = text
            if text != self.negative:
                raise DataError(
                    f"{self.label} row {row}: column '{self.column}': label {text!r} is a third class "
                    f"(besides {self.pos_label!r}, positive, and {self.negative!r}); --pos-label is for "
                    "binary labels, give --classes for more"
                )
            return 0.0
        code = self.index.get(text)
        if code is None:
            shown = ", ".join(self.classes or [])
            raise DataError(f"{self.label} row {row}: column '{self.column}': label {text!r} is not one of the classes {shown}")
        return float(code)


def suffix_classes(columns: tuple[str, ...]) -> list[str] | None:
    """The class names in probability column names (``prob_cat``, ``prob_dog``: ``cat``, ``dog``), or ``None``."""
    if len(columns) < 2:
        return None
    prefix = os.path.commonprefix(list(columns))
    cut = max(prefix.rfind(sep) for sep in "_-.:")
    prefix = prefix[: cut + 1] if cut >= 0 else prefix
    suffixes = [c[len(prefix) :] for c in columns]
    if not prefix or any(not s for s in suffixes) or len(set(suffixes)) != len(suffixes):
        return None
    return suffixes


def label_coder(selection: Selection, classes: str | None, pos_label: str | None) -> LabelCoder | None:
    """The coder the y_true column needs, or ``None`` when its values are the class indices already.

    Raises:
        UsageProblem: text labels without a way to order the classes, or
            options that contradict each other.
    """
    role = selection.y_true
    if len(role.columns) != 1:
        if classes or pos_label:
            raise UsageProblem("--classes and --pos-label apply to one y_true column of labels, not to label columns")
        return None
    column = role.columns[0]
    info = role.table.column(column)
    text = info is not None and info.kind == "text"
    pred = selection.y_pred.columns
    if classes is not None and pos_label is not None:
        raise UsageProblem("give --classes or --pos-label, not both")
    if classes is not None:
        names = [c.strip() for c in re.split(r",", classes) if c.strip()]
        if len(names) < 2 or len(set(names)) != len(names):
            raise UsageProblem(f"--classes {classes}: give two or more distinct class labels, comma-separated")
        return LabelCoder(role.table.label, column, names)
    if pos_label is not None:
        if len(pred) > 1:
            raise UsageProblem("--pos-label applies to one probability column; for a probability matrix give --classes")
        return LabelCoder(role.table.label, column, pos_label=pos_label.strip())
    suffixes = suffix_classes(pred)
    if suffixes is not None and (text or _renumbered(suffixes)):
        return LabelCoder(role.table.label, column, suffixes)
    if text:
        if len(pred) > 1:
            raise UsageProblem(
                f"y_true ('{column}') holds text labels: give --classes A,B,C in the order of the "
                f"y_pred columns ({', '.join(pred[:4])}{', …' if len(pred) > 4 else ''})"
            )
        raise UsageProblem(
            f"y_true ('{column}') holds text labels: give --pos-label VALUE (the positive class) "
            "or --classes NEG,POS"
        )
    return None


def _renumbered(suffixes: list[str]) -> bool:
    """Numeric suffixes that are not ``0..K-1`` (``prob_1``..``prob_3``): labels must be renumbered."""
    if not all(re.fullmatch(r"-?\d+", s) for s in suffixes):
        return False
    return [int(s) for s in suffixes] != list(range(len(suffixes)))

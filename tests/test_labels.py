"""String labels and other label encodings: --classes, probability column suffixes, --pos-label (SPEC section 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lossctl
from lossctl.cli.main import cli

ANIMALS = ["cat", "dog", "emu"]


def _multiclass(tmp_path: Path, n: int = 120, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    probs = rng.dirichlet(np.ones(3), n)
    path = tmp_path / "animals.csv"
    lines = ["label,prob_cat,prob_dog,prob_emu"] + [
        f"{ANIMALS[k]},{float(p[0])!r},{float(p[1])!r},{float(p[2])!r}" for k, p in zip(labels, probs, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path, labels, probs


def _eval(*args: str) -> tuple[int, dict | None, str]:
    result = CliRunner().invoke(cli, ["eval", *args, "-f", "json"])
    doc = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, doc, result.stderr


@pytest.mark.parametrize("chunk", ["7", "65536"])
def test_text_labels_take_their_classes_from_the_probability_columns(tmp_path: Path, chunk: str) -> None:
    from sklearn.metrics import accuracy_score, log_loss

    path, labels, probs = _multiclass(tmp_path)
    code, doc, err = _eval(str(path), "--true", "label", "--pred", "prob_*", "--metric", "acc,scce,log_loss",
                           "--chunk-size", chunk)
    assert code == 0, err
    values = [r["value"] for r in doc["results"]]
    assert values[0] == pytest.approx(accuracy_score(labels, probs.argmax(1)), rel=1e-12)
    expected_ce = float(np.mean(-np.log(probs[np.arange(len(labels)), labels])))
    assert values[1] == pytest.approx(expected_ce, rel=1e-9)
    assert values[2] == pytest.approx(log_loss(labels, probs), rel=1e-9)


def test_classes_option_orders_the_classes(tmp_path: Path) -> None:
    path, labels, probs = _multiclass(tmp_path)
    # The columns in another order than the names: --classes follows the columns given.
    code, doc, err = _eval(str(path), "--true", "label", "--pred", "prob_emu,prob_cat,prob_dog",
                           "--classes", "emu,cat,dog", "--metric", "acc")
    assert code == 0, err
    reordered = probs[:, [2, 0, 1]]
    mapping = {0: 1, 1: 2, 2: 0}  # cat -> 1, dog -> 2, emu -> 0
    expected = float(np.mean(reordered.argmax(1) == np.vectorize(mapping.get)(labels)))
    assert doc["results"][0]["value"] == pytest.approx(expected, rel=1e-12)
    # Through the API, with the same keyword.
    ev = lossctl.evaluate(str(path), true="label", pred="prob_emu,prob_cat,prob_dog", classes="emu,cat,dog", metric="acc")
    assert ev.results[0].value == pytest.approx(expected, rel=1e-12)


def test_a_label_outside_the_classes_is_exit_3_naming_the_row(tmp_path: Path) -> None:
    path, _, _ = _multiclass(tmp_path)
    for chunk in ("5", "1000"):
        code, _, err = _eval(str(path), "--true", "label", "--pred", "prob_*", "--classes", "cat,dog",
                             "--metric", "acc", "--chunk-size", chunk)
        assert code == 3 and "label 'emu' is not one of the classes cat, dog" in err
        first = [line.split(",")[0] for line in path.read_text().splitlines()[1:]].index("emu")
        assert f"row {first}:" in err


def _binary(tmp_path: Path, n: int = 90) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    s = np.clip(rng.random(n) * 0.7 + 0.3 * y, 0, 1)
    path = tmp_path / "yn.csv"
    path.write_text("y,score\n" + "".join(f"{'yes' if a else 'no'},{float(b)!r}\n" for a, b in zip(y, s, strict=True)))
    return path, y, s


def test_pos_label_names_the_positive_class(tmp_path: Path) -> None:
    from sklearn.metrics import precision_score, roc_auc_score

    path, y, s = _binary(tmp_path)
    code, doc, err = _eval(str(path), "--true", "y", "--pred", "score", "--pos-label", "yes",
                           "--metric", "auc,precision", "--chunk-size", "4")
    assert code == 0, err
    assert doc["results"][0]["value"] == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert doc["results"][1]["value"] == pytest.approx(precision_score(y, s > 0.5), rel=1e-12)
    # The other label as positive: the AUC of the complement.
    code, doc, _ = _eval(str(path), "--true", "y", "--pred", "score", "--pos-label", "no", "--metric", "auc")
    assert doc["results"][0]["value"] == pytest.approx(roc_auc_score(1 - y, s), rel=1e-12)


def test_numeric_minus_one_one_labels_with_pos_label(tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    path = tmp_path / "pm.csv"
    path.write_text("y,score\n1,0.9\n-1,0.2\n1,0.4\n-1,0.6\n")
    code, doc, err = _eval(str(path), "--metric", "auc", "--pos-label", "1")
    assert code == 0, err
    assert doc["results"][0]["value"] == pytest.approx(roc_auc_score([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6]))
    code, _, err = _eval(str(path), "--metric", "auc")
    assert code == 3 and "give --pos-label 1" in err


def test_text_labels_without_a_way_to_order_them_are_exit_2(tmp_path: Path) -> None:
    path, _, _ = _binary(tmp_path)
    code, _, err = _eval(str(path), "--true", "y", "--pred", "score", "--metric", "auc")
    assert code == 2 and "--pos-label" in err and "Traceback" not in err


def test_pos_label_refuses_a_third_class_at_its_row(tmp_path: Path) -> None:
    path = tmp_path / "three.csv"
    path.write_text("y,score\nyes,0.9\nno,0.1\nmaybe,0.5\n")
    code, _, err = _eval(str(path), "--pos-label", "yes", "--metric", "auc", "--chunk-size", "1")
    assert code == 3 and "row 2" in err and "third class" in err

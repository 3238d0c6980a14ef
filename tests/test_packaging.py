"""Packaging: an SPDX licence with its file, and `make run` installing only what running needs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_licence_is_an_spdx_expression_with_its_file() -> None:
    # A TOML table (`license = {text = ...}`) makes setuptools >= 77 warn at every install.
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    floor = re.fullmatch(r"setuptools>=(\d+)", PYPROJECT["build-system"]["requires"][0])
    assert floor and int(floor.group(1)) >= 77  # the first setuptools that reads a licence expression


def _recipe(makefile: str, target: str) -> str:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert match, target
    return match.group(0)


def test_make_run_installs_only_the_runtime_dependencies() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    run = _recipe(makefile, "run")
    assert "$(STAMP)" in run.splitlines()[0] and "TEST_STAMP" not in run
    installed = _recipe(makefile, "$(STAMP)")
    assert "pip install --quiet -e .\n" in installed and "[test]" not in installed
    assert "$(TEST_STAMP)" in _recipe(makefile, "test").splitlines()[0]
    assert "-e '.[test]'" in _recipe(makefile, "$(TEST_STAMP)")
    runtime = {re.split(r"[<>=\[ ]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    assert not runtime & {"pytest", "hypothesis", "scikit-learn", "scipy", "xmlschema"}

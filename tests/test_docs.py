"""Docs stay true: docs/metrics.md is the registry's, and the README's commands run.

As sqlite-utils' test_docs.py does: the generated reference is compared with
a fresh generation, and every ``lossctl`` command in a README code block is
run on sample_data/ (exit 0, or 1 when a ``--check`` fails on purpose), with the example plugins
of examples/plugins/ at hand.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lossctl.cli.main import cli
from lossctl.docs import REGENERATE, main, render_markdown
from lossctl.registry import entries

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "metrics.md"
README = ROOT / "README.md"
# A command line, not Python code such as `lossctl.get(...)`.
PREFIXES = (".venv/bin/lossctl ", "lossctl ")
# A token that stands for something the reader fills in: FILE, NAME, STATE...,
# NAME=AMOUNT, <path>.
PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z0-9_]*(?:[=:][A-Z][A-Z0-9_]*)*(?:\.\.\.|…)?|<[^<>]+>|\.\.\.|…)$")


def test_metrics_md_is_up_to_date() -> None:
    assert DOCS.exists(), f"{DOCS.relative_to(ROOT)} is missing; generate it: {REGENERATE}"
    current = DOCS.read_text(encoding="utf-8")
    assert current == render_markdown(), (
        f"{DOCS.relative_to(ROOT)} is stale (the registry changed); regenerate it: {REGENERATE}"
    )


def test_metrics_md_has_a_section_per_entry() -> None:
    text = render_markdown()
    headings = re.findall(r"^### (\S+)$", text, re.M)
    assert sorted(headings) == sorted(e.name for e in entries())
    for e in entries():
        assert e.formula in text, e.name
        assert f"[{e.name}](#{e.name})" in text, f"{e.name} missing from the index"


def test_docs_check_mode(tmp_path: Path) -> None:
    path = tmp_path / "metrics.md"
    assert main(["--check", str(path)]) == 1
    assert main(["--write", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == render_markdown()
    assert main(["--check", str(path)]) == 0


def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)


def readme_commands(path: Path = README) -> list[str]:
    """``lossctl`` commands of the README's code blocks (continuations joined, prompts dropped)."""
    commands: list[str] = []
    for block in _code_blocks(path.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith(PREFIXES) or FED.match(line):
                commands.append(line)
    return commands


# `cat FILE | lossctl eval - ...`: run with FILE on standard input.
FED = re.compile(r"^cat (\S+) \| (lossctl .*)$")


def _argv(command: str) -> list[str] | None:
    """The arguments after ``lossctl``, up to a pipe; ``None`` when the line has placeholders."""
    fed = FED.match(command)
    if fed:
        args = _argv(fed.group(2).replace(" - ", " sample_data/STDIN.csv ", 1))
        return None if args is None else [("-" if a == "sample_data/STDIN.csv" else a) for a in args]
    tokens = shlex.split(command, comments=True)
    if "|" in tokens:
        tokens = tokens[: tokens.index("|")]
    args = tokens[1:]
    # `-` alone reads standard input (a pipe the test does not run), except as `-o -`: standard output.
    stdin = any(t == "-" and (i == 0 or args[i - 1] not in ("-o", "--output")) for i, t in enumerate(args))
    if any(PLACEHOLDER.match(t) for t in args) or stdin:
        return None
    return args


README_COMMANDS = readme_commands()
# docs/plugins.md's commands run the same way, after the README's.
PLUGIN_DOC_COMMANDS = readme_commands(ROOT / "docs" / "plugins.md")


def test_readme_has_lossctl_commands() -> None:
    assert [c for c in README_COMMANDS if _argv(c) is not None], "no runnable lossctl command in README.md"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the README's commands, in order (a merge reads the states saved before it)."""
    path = tmp_path_factory.mktemp("readme")
    _link_data(path)
    return path


def _link_data(path: Path) -> None:
    """sample_data/ and the example plugins, as in the repository."""
    (path / "sample_data").symlink_to(ROOT / "sample_data")
    (path / "examples").symlink_to(ROOT / "examples")


@pytest.mark.parametrize("command", README_COMMANDS or ["(none)"])
def test_readme_command_runs(command: str, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    if command == "(none)":
        pytest.skip("README.md has no lossctl commands")
    args = _argv(command)
    if args is None:
        pytest.skip(f"placeholder in: {command}")
    monkeypatch.chdir(workdir)
    fed = FED.match(command)
    stdin = (ROOT / fed.group(1)).read_text(encoding="utf-8") if fed else None
    result = CliRunner().invoke(cli, args, input=stdin)
    assert result.exit_code in (0, 1), f"{command}\nexit {result.exit_code}: {result.stderr or result.output}"
    assert result.stdout, f"{command}: printed nothing"


def test_every_command_and_option_the_readme_names_exists() -> None:
    text = README.read_text(encoding="utf-8")
    options = {
        name
        for command in (cli, *cli.commands.values())
        for param in command.params
        if isinstance(param, click.Option)
        for name in (*param.opts, *param.secondary_opts)
    }
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))
    assert named and named <= options, f"README names options lossctl does not have: {sorted(named - options)}"
    commands = set(re.findall(r"\blossctl ([a-z]+)\b", text))
    assert set(cli.commands) <= commands, f"README never shows: {sorted(set(cli.commands) - commands)}"


@pytest.mark.parametrize("command", PLUGIN_DOC_COMMANDS)
def test_plugin_doc_command_runs(command: str, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    test_readme_command_runs(command, monkeypatch, workdir)


def test_placeholders_are_recognised() -> None:
    assert _argv("lossctl eval FILE --loss mse") is None
    assert _argv("lossctl merge STATE... -f json") is None
    assert _argv("lossctl compare a.csv b.csv --max-regression NAME=AMOUNT") is None
    assert _argv("lossctl eval - --loss mae -f json | jq .results") is None
    assert _argv("cat sample_data/r.csv | lossctl eval - --loss mae -f json") == ["eval", "-", "--loss", "mae", "-f", "json"]
    assert _argv("lossctl eval x.csv -l mse -o r.json -o -") == ["eval", "x.csv", "-l", "mse", "-o", "r.json", "-o", "-"]
    assert _argv("lossctl eval x.csv --metric auc:curve=PR --check 'auc >= 0.9'") == [
        "eval", "x.csv", "--metric", "auc:curve=PR", "--check", "auc >= 0.9",
    ]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"lossctl {name}" in result.stdout, f"'lossctl {name} --help' shows no example"
    assert isinstance(cli.commands[name], click.Command)


def help_examples(name: str) -> list[str]:
    """The ``lossctl`` lines of a command's ``--help`` examples."""
    text = CliRunner().invoke(cli, [name, "--help"]).stdout
    return [line.strip() for line in text.splitlines() if line.strip().startswith("lossctl ")]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_help_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _link_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    examples = help_examples(name)
    assert examples, f"'lossctl {name} --help' shows no example"
    for command in examples:
        args = shlex.split(command)[1:]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (0, 1), f"{command}\nexit {result.exit_code}: {result.stderr or result.output}"

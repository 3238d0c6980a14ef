"""JUnit XML: one test case per check (without checks, per result), for CI systems that display JUnit reports.

The document follows the common (Apache Ant / Windy Road) ``JUnit.xsd``:
a ``<testsuites>`` root without attributes holding one ``<testsuite>`` with
``package`` and ``id``, its required attributes (``name``, ``timestamp``
without a time zone, ``hostname``, ``tests``, ``failures``, ``errors``,
``time``), then ``<properties>`` (every result's value), the test cases and
``<system-out>`` / ``<system-err>``. A failed check is a ``<failure>`` with
a ``type`` and a message giving the value; an undefined value fails too.
Without checks, each result is a test case (skipped when undefined). A run
stopped by a data error is one test case in ``<error>``, holding the message.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from lossctl.render import display_name
from lossctl.results import Evaluation

SUITE = "lossctl"
# Characters XML 1.0 cannot hold at all, even escaped (file names may contain them).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _hostname() -> str:
    try:
        name = socket.gethostname().strip()
    except OSError:
        name = ""
    return name or "localhost"


def _value_text(value: object) -> str:
    return "null" if value is None else repr(value)


def _attrs(**attrs: str) -> dict[str, str]:
    return {k: _clean(v) for k, v in attrs.items()}


def _suite(root: ET.Element, *, tests: int, failures: int = 0, errors: int = 0, skipped: int = 0,
           timestamp: datetime | None = None, hostname: str | None = None) -> ET.Element:
    when = (timestamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S")
    return ET.SubElement(
        root,
        "testsuite",
        _attrs(
            package=SUITE,
            id="0",
            name=SUITE,
            timestamp=when,
            hostname=hostname or _hostname(),
            tests=str(tests),
            failures=str(failures),
            errors=str(errors),
            skipped=str(skipped),
            time="0",
        ),
    )


def _properties(suite: ET.Element, props: list[tuple[str, str]]) -> None:
    properties = ET.SubElement(suite, "properties")
    for name, value in props:
        ET.SubElement(properties, "property", _attrs(name=name, value=value))


def _streams(suite: ET.Element, out: str, err: str) -> None:
    ET.SubElement(suite, "system-out").text = _clean(out)
    ET.SubElement(suite, "system-err").text = _clean(err)


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_junit(evaluation: Evaluation, *, timestamp: datetime | None = None, hostname: str | None = None) -> str:
    """Render the checks (without checks: the results) as a JUnit XML document (UTF-8 text).

    Without checks each result is a test case that passes, or is skipped
    when its value is undefined (the note says why): a report with no test
    case reads as an error to some CI systems.
    """
    checks = evaluation.checks
    failures = sum(1 for c in checks if not c.get("passed"))
    skipped = 0 if checks else sum(1 for r in evaluation.results if r.value is None)
    root = ET.Element("testsuites")
    suite = _suite(
        root, tests=len(checks) or len(evaluation.results), failures=failures, skipped=skipped,
        timestamp=timestamp, hostname=hostname,
    )
    _properties(suite, [
        ("lossctl.version", evaluation.version),
        ("input.files", ", ".join(evaluation.input.files)),
        ("input.rows", str(evaluation.input.rows)),
        *((f"result.{r.spec}{'' if r.arm is None else '.' + r.arm}", _value_text(r.value)) for r in evaluation.results),
    ])
    if checks:
        classname = f"{SUITE}.checks"
        for c in checks:
            case = ET.SubElement(suite, "testcase", _attrs(name=str(c.get("expr")), classname=classname, time="0"))
            if not c.get("passed"):
                message = str(c.get("note") or f"{c.get('expr')} failed")
                failure = ET.SubElement(case, "failure", _attrs(type="CheckFailed", message=message))
                failure.text = _clean(f"{c.get('expr')}: value {_value_text(c.get('value'))}; {message}")
    else:
        classname = f"{SUITE}.results"
        for r in evaluation.results:
            case = ET.SubElement(suite, "testcase", _attrs(name=display_name(r), classname=classname, time="0"))
            if r.value is None:
                ET.SubElement(case, "skipped", _attrs(message=r.note or "undefined"))
    _streams(
        suite,
        "".join(f"{r.spec} = {_value_text(r.value)}\n" for r in evaluation.results),
        "".join(f"warning: {w}\n" for w in evaluation.warnings),
    )
    return _document(root)


def junit_error(message: str, files: Sequence[str], *, timestamp: datetime | None = None, hostname: str | None = None) -> str:
    """A JUnit document for a run stopped by a data error: one test case in error, holding the message."""
    root = ET.Element("testsuites")
    suite = _suite(root, tests=1, errors=1, timestamp=timestamp, hostname=hostname)
    _properties(suite, [("input.files", ", ".join(files))])
    case = ET.SubElement(suite, "testcase", _attrs(name="evaluation", classname=SUITE, time="0"))
    error = ET.SubElement(case, "error", _attrs(type="DataError", message=message))
    error.text = _clean(f"lossctl: {message}")
    _streams(suite, "", f"lossctl: {message}\n")
    return _document(root)

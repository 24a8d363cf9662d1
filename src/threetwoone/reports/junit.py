"""JUnit XML, the test-report format every CI system shows: one ``testcase`` per
dataset (``classname`` = its policy, ``name`` = the dataset), a ``failure`` for a
dataset that fails, an ``error`` for one that is undetermined, with the
violations and the copies that are not intact as the text.  A run that ended
before a verdict (exit 4 or 5) is one ``error`` testcase, so the CI job never
shows the last run's green.

The output follows the JUnit schema Jenkins' xUnit plugin publishes
(``junit-10.xsd``): times with at most three decimals, timestamps without a zone.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .. import __version__
from ..pathnames import display
from ..results import AuditResult, CopyState, DatasetResult, Status
from .common import copy_findings, has_overdue, plural, violation_steps

#: Characters XML 1.0 cannot carry at all (not even as references).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids shown escaped (``\\x01``):
    a control character from a server's error message must not make the whole
    report unreadable."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()) & 0xFF:02x}"
                        if ord(m.group()) <= 0xFF or 0xDC80 <= ord(m.group()) <= 0xDCFF
                        else f"\\u{ord(m.group()):04x}", text)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timestamp(iso: str) -> str:
    """``2026-10-01T01:15:00Z`` -> ``2026-10-01T01:15:00`` (UTC; the schema's form)."""
    return iso.removesuffix("Z")


def dataset_text(dataset: DatasetResult) -> str:
    """The violations, then each copy that is not intact with its first problems."""
    lines = []
    for violation, step in violation_steps(dataset):
        lines.append(f"violation {violation.rule}: {violation.message}")
        if step:
            lines.append(f"  next: {step}")
    for found in copy_findings(dataset):
        copy = found.copy
        lines.append(f"copy {display(copy.label)}: {copy.state.value}"
                     + "".join(f" - {note}" for note in found.notes))
        if copy.next_step:
            lines.append(f"  next: {copy.next_step}")
        for problem in found.problems:
            detail = f" ({problem.detail})" if problem.detail else ""
            lines.append(f"  {problem.problem.value}: {display(problem.path)}{detail}")
        if found.more:
            lines.append(f"  ... and {found.more} more")
    lines.extend(f"warning: {w}" for w in dataset.warnings)
    return "\n".join(lines)


def _message(dataset: DatasetResult) -> str:
    if dataset.status is Status.FAIL:
        rules = ", ".join(dict.fromkeys(v.rule for v in dataset.violations))
        return f"fails policy {dataset.policy}" + (f": {rules}" if rules else "")
    pending = [c for c in dataset.copies
               if c.state in (CopyState.UNREACHABLE, CopyState.ERROR)]
    return (f"undetermined: {plural(len(pending), 'copy', 'copies')} "
            "unreachable or unreadable ("
            + ", ".join(f"{display(c.label)} {c.state.value}" for c in pending) + ")")


def _element(parent: ET.Element, tag: str, text: str | None = None,
             **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attributes.items()})
    if text:
        element.text = xml_text(text)
    return element


def render_junit(result: AuditResult, quiet: bool = False) -> str:
    """The whole report; ``quiet`` changes nothing (CI wants every testcase)."""
    failures = sum(1 for d in result.datasets if d.status is Status.FAIL)
    errors = sum(1 for d in result.datasets if d.status is Status.UNKNOWN)
    tests = len(result.datasets)
    if result.error is not None:
        tests, errors = 1, 1
    counts = {"tests": str(tests), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", {"name": "threetwoone", **counts,
                                     "time": _seconds(result.duration_seconds)})
    suite = _element(root, "testsuite", name=f"threetwoone audit {result.inventory}",
                     **counts, skipped="0", time=_seconds(result.duration_seconds),
                     timestamp=_timestamp(result.started_at), hostname=result.host)
    properties = _element(suite, "properties")
    for name, value in (("inventory", result.inventory), ("exit_code", str(result.exit_code)),
                        ("tool_version", __version__)):
        _element(properties, "property", name=name, value=value)
    if result.error is not None:
        case = _element(suite, "testcase", classname="threetwoone", name="audit",
                        time=_seconds(result.duration_seconds))
        _element(case, "error", result.error, type=f"exit {result.exit_code}",
                 message=result.error.split("\n")[0])
    for dataset in result.datasets:
        case = _element(suite, "testcase", classname=dataset.policy, name=dataset.name,
                        time=_seconds(dataset.duration_seconds))
        if dataset.status is Status.FAIL:
            _element(case, "failure", dataset_text(dataset), type="policy",
                     message=_message(dataset))
        elif dataset.status is Status.UNKNOWN:
            _element(case, "error", dataset_text(dataset), type="undetermined",
                     message=_message(dataset))
        elif dataset.warnings or has_overdue(dataset):
            _element(case, "system-out", dataset_text(dataset))
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")

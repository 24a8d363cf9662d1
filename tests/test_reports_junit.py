"""The JUnit report, checked by real consumers: validated against Jenkins'
``junit-10.xsd`` with ``xmlschema`` and read back with ``junitparser``."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema
from junitparser import Error, Failure, JUnitXml, TestCase

from conftest import Lab
from junit_schema import junit_xsd
from reportlab import ODD, SCENARIOS, run
from threetwoone.pathnames import display
from threetwoone.reports.junit import xml_text


@pytest.fixture(scope="session")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(junit_xsd()))


def cases(path: Path) -> dict[str, TestCase]:
    xml = JUnitXml.fromfile(str(path))
    [suite] = list(xml)
    return {case.name: case for case in suite}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_valid_junit_for_every_outcome(lab: Lab, tmp_path: Path, scenario: str,
                                       schema: xmlschema.XMLSchema) -> None:
    out = tmp_path / "audit.xml"
    run(lab, scenario, "--report", f"junit:{out}")
    schema.validate(str(out))
    xml = JUnitXml.fromfile(str(out))
    [suite] = list(xml)
    found = cases(out)
    code = SCENARIOS[scenario]
    if code >= 4:
        assert list(found) == ["audit"]
        [result] = found["audit"].result
        assert isinstance(result, Error) and result.type == f"exit {code}"
        assert suite.errors == 1 and suite.tests == 1
    else:
        assert suite.hostname and suite.timestamp
        failed = {n for n, c in found.items() if any(isinstance(r, Failure) for r in c.result)}
        errored = {n for n, c in found.items() if any(isinstance(r, Error) for r in c.result)}
        assert suite.failures == len(failed) and suite.errors == len(errored)
        assert suite.tests == len(found)


def test_one_testcase_per_dataset(lab: Lab, tmp_path: Path,
                                  schema: xmlschema.XMLSchema) -> None:
    out = tmp_path / "audit.xml"
    run(lab, "mixed", "--report", f"junit:{out}")
    schema.validate(str(out))
    found = cases(out)
    assert set(found) == {"good", "bad", ODD}  # the odd name read back exactly
    assert {c.classname for c in found.values()} == {"3-2-1"}
    assert found["good"].is_passed
    [failure] = found["bad"].result
    assert isinstance(failure, Failure)
    assert failure.message == "fails policy 3-2-1: copies, media, corrupt"
    assert "violation corrupt:" in failure.text
    assert "copy tape:bad: corrupt" in failure.text and "sub/b.fastq" in failure.text
    assert "copy remote:bad-gone: missing" in failure.text
    [error] = found[ODD].result
    assert isinstance(error, Error)
    assert error.message == ("undetermined: 1 copy unreachable or unreadable "
                             f"(usb:{display(ODD)} unreachable)")


def test_characters_xml_cannot_carry_are_shown_escaped(
        lab: Lab, tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    assert xml_text("a\x01b\x7fc\udcffd\ufffee") == "a\\x01b\x7fc\\xffd\\ufffee"
    # Names cannot carry control characters any more (the inventory refuses them),
    # but a server's error message can: put one in a real result's copy detail.
    from reportlab import FILES
    lab.three_copies(FILES)
    out = tmp_path / "r.json"
    assert lab.audit("--report", f"json:{out}").exit_code == 0
    from threetwoone.reports.junit import render_junit
    from threetwoone.results import CopyState
    result = _result_from_run(lab)
    copy = result.datasets[0].copies[1]
    copy.state, copy.detail = CopyState.UNREACHABLE, "server said \x1b[2J\x00 bye"
    result.datasets[0].warnings.append("bell \x07")
    xml = tmp_path / "audit.xml"
    xml.write_text(render_junit(result))
    schema.validate(str(xml))
    assert "server said \\x1b[2J\\x00 bye" in xml.read_text()


def _result_from_run(lab: Lab):  # type: ignore[no-untyped-def]
    """A real AuditResult, from an Auditor run on the lab's inventory."""
    from threetwoone.audit import Auditor
    from threetwoone.catalog import Catalog
    from threetwoone.inventory import load_inventory
    from threetwoone.policyfile import load_policy
    inventory = load_inventory(str(lab.inventory))
    with Catalog(str(lab.state)) as catalog:
        return Auditor(inventory, {n: load_policy("3-2-1") for n in inventory.datasets},
                       catalog).run()

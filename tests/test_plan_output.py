"""plan -o never writes over what the audit reads or keeps."""

from __future__ import annotations

import pytest

from conftest import Lab, run_cli


@pytest.mark.parametrize("where", ["the inventory", "the catalog", "in a copy"])
def test_plan_output_never_replaces_an_input(lab: Lab, where: str) -> None:
    nas, _tape, _remote = lab.three_copies({"a.txt": b"a"})
    assert lab.audit("-q").exit_code == 0
    target = {"the inventory": lab.inventory, "the catalog": lab.state,
              "in a copy": nas / "plan.txt"}[where]
    before = {p: p.read_bytes() for p in (lab.inventory, lab.state)}
    result = run_cli("plan", str(lab.inventory), "--state", str(lab.state), "-o", str(target))
    assert result.exit_code == 2, result.stderr
    assert "choose another path for the report" in result.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not (nas / "plan.txt").exists()

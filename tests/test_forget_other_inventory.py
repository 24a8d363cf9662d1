"""forget on a catalog that several inventories share (the default catalog
does): a dataset another inventory audits is never forgotten by this one."""

from __future__ import annotations

import yaml

from conftest import Lab, run_cli, write_tree

FILES = {"a.dat": b"data " * 20}


def test_forget_never_drops_another_inventorys_dataset(lab: Lab) -> None:
    roots = [lab.location(name, media, site) for name, media, site in (
        ("nas", "disk", "a"), ("usb", "removable", "a"), ("kth", "disk", "b"))]
    for root in roots:
        write_tree(root / "ds", FILES)
    lab.dataset("ds", [{"location": loc, "path": "ds"} for loc in ("nas", "usb", "kth")])
    lab.write()
    write_tree(roots[0] / "other", FILES)
    other = lab.tmp / "other.yaml"
    other.write_text(yaml.safe_dump({"version": 1, "locations": lab.locations, "datasets": {
        "other": {"copies": [{"location": "nas", "path": "other"}]}}}))
    state = str(lab.state)
    assert run_cli("audit", str(lab.inventory), "--state", state, "-q").exit_code == 0
    # The other inventory's owner tidies up the shared catalog.
    result = run_cli("forget", str(other), "d*", "--state", state)
    assert result.exit_code == 0 and "nothing to forget" in result.stdout
    result = run_cli("forget", str(other), "ds", "--state", state)
    assert result.exit_code == 2
    assert f"last audited with another inventory ({lab.inventory})" in result.stderr
    # ds kept its reference: its rotten primary is found, the backups stay intact.
    (roots[0] / "ds" / "a.dat").write_bytes(b"rotten " * 20)
    report = run_cli("audit", str(lab.inventory), "--state", state, "--format", "json",
                     "--verify", "full").json()
    [dataset] = report["datasets"]
    assert [c["state"] for c in dataset["copies"]] == ["corrupt", "intact", "intact"]
    # Removed from its own inventory, it is forgotten as before.
    lab.datasets.clear()
    lab.dataset("kept", [{"location": "nas", "path": "other"}])
    lab.write()
    result = run_cli("forget", str(lab.inventory), "ds", "--state", state)
    assert result.exit_code == 0 and "ds: forgotten" in result.stdout

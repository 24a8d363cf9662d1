"""Audits that end every way a report must show: the scenarios the tests of
each report format (Prometheus, JUnit, Markdown, HTML) run through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import CliResult, Lab, write_tree

FILES = {"a.fastq": b"ACGT" * 1000, "sub/b.fastq": b"TTTT" * 500, "README.txt": b"hello\n"}

#: A name with every character a report format must escape: quotes, backslash,
#: markup, a table separator and Markdown emphasis.
ODD = 'odd "name" \\ <b>&amp;</b> | *x* `y`'

#: What each scenario exits with.
SCENARIOS = {"pass": 0, "fail": 1, "unknown": 3, "mixed": 1, "invalid": 4, "tool-failed": 5}


def build(lab: Lab, scenario: str) -> None:
    """Lay out ``scenario``'s storage and inventory (and, where it needs one, a
    first audit that records the references)."""
    if scenario == "pass":
        lab.three_copies(FILES)
    elif scenario == "fail":
        _nas, tape, _remote = lab.three_copies(FILES)
        (tape / "a.fastq").write_bytes(b"ACGA" * 1000)
    elif scenario == "unknown":
        lab.three_copies(FILES)
        _audit_once(lab)
        shutil.rmtree(lab.tmp / "storage" / "remote")  # an unmounted disk: unreachable
    elif scenario == "mixed":
        _mixed(lab)
    elif scenario == "invalid":
        lab.three_copies(FILES)
        lab.write()
        lab.inventory.write_text(lab.inventory.read_text().replace("media: tape",
                                                                   "medium: tape"))
    elif scenario == "tool-failed":
        lab.three_copies(FILES)
        lab.write()
        lab.state.parent.mkdir(parents=True, exist_ok=True)
        lab.state.write_bytes(b"this is not an SQLite database" * 100)
    else:
        raise AssertionError(f"no scenario {scenario}")


def _mixed(lab: Lab) -> None:
    """Three datasets: one passes, one fails (a corrupt copy and a missing one),
    one is unknown (its off-site copy is on an unreachable location); names with
    characters every format must escape."""
    nas = lab.location("nas", "disk", "site-a")
    tape = lab.location("tape", "tape", "site-a")
    remote = lab.location("remote", "disk", "site-b")
    usb = lab.location("usb", "usb-disk", "site-b")
    for root in (nas, tape, remote):
        write_tree(root / "good", FILES)
        write_tree(root / "bad", FILES)
    for root in (nas, tape, usb):
        write_tree(root / ODD, FILES)
    lab.dataset("good", [{"location": "nas", "path": "good", "primary": True},
                         {"location": "tape", "path": "good"},
                         {"location": "remote", "path": "good"}])
    lab.dataset("bad", [{"location": "nas", "path": "bad", "primary": True},
                        {"location": "tape", "path": "bad"},
                        {"location": "remote", "path": "bad"},
                        {"location": "remote", "path": "bad-gone"}])
    lab.dataset(ODD, [{"location": "nas", "path": ODD, "primary": True},
                      {"location": "tape", "path": ODD},
                      {"location": "usb", "path": ODD}])
    _audit_once(lab)
    (tape / "bad" / "sub" / "b.fastq").write_bytes(b"TTTA" * 500)
    shutil.rmtree(usb)  # the USB disk is not plugged in: unreachable


def _audit_once(lab: Lab) -> None:
    result = lab.audit()
    assert result.exit_code in (0, 1, 3), result.stderr


def run(lab: Lab, scenario: str, *args: str) -> CliResult:
    """Build ``scenario`` and audit it with ``args``; check its exit code."""
    build(lab, scenario)
    result = lab.audit(*args, write=scenario != "invalid")
    assert result.exit_code == SCENARIOS[scenario], (result.stdout, result.stderr)
    return result


def report_paths(folder: Path, *formats: str) -> dict[str, Path]:
    return {fmt: folder / f"report.{fmt}" for fmt in formats}


def report_args(paths: dict[str, Path]) -> list[str]:
    return [arg for fmt, path in paths.items() for arg in ("--report", f"{fmt}:{path}")]

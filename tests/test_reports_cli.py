"""``--report FORMAT:PATH``, ``-o`` and the JSON report's run fields, end to end
through the CLI."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from conftest import Lab, validate_report
from reportlab import FILES, SCENARIOS, report_args, report_paths, run


def load(path: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads(path.read_text())
    validate_report(report)
    return report


def test_json_run_fields(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(FILES)
    lab.write()
    monkeypatch.chdir(lab.tmp)
    result = lab.audit("--format", "json", write=False)
    report = result.json()
    assert report["host"] == socket.gethostname()
    assert report["inventory"] == str(lab.inventory)  # absolute, though given as it was
    assert report["totals"] == {"pass": 1, "fail": 0, "unknown": 0}
    assert report["duration_seconds"] >= 0
    assert [(loc["name"], loc["kind"], loc["state"]) for loc in report["locations"]] == [
        ("nas", "local", "reachable"), ("tape", "local", "reachable"),
        ("remote", "local", "reachable")]
    assert report["uncovered"] == [] and report["shard"] is None
    size = sum(len(v) for v in FILES.values())
    # First audit: the primary is read to make the reference, the others to check it.
    assert report["bytes_read"] == 3 * size
    copies = report["datasets"][0]["copies"]
    assert [c["bytes_read"] for c in copies] == [size, size, size]
    assert all(c["last_full_verification"].endswith("Z") for c in copies)
    report = lab.audit("--format", "json", "--verify", "changed").json()
    assert report["bytes_read"] == 0


def test_relative_inventory_is_reported_absolute(lab: Lab,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lab.three_copies(FILES)
    lab.write()
    monkeypatch.chdir(lab.tmp)
    from conftest import run_cli
    result = run_cli("audit", "inventory.yaml", "--state", str(lab.state), "--format", "json")
    assert result.json()["inventory"] == str(lab.inventory)


def test_every_report_in_one_run(lab: Lab, tmp_path: Path) -> None:
    paths = report_paths(tmp_path, "json", "prometheus", "table")
    result = run(lab, "fail", *report_args(paths))
    assert "FAIL" in result.stdout  # stdout keeps its table
    report = load(paths["json"])
    assert report["status"] == "fail" and report["exit_code"] == 1
    assert "threetwoone_audit_exit_code 1" in paths["prometheus"].read_text()
    assert paths["table"].read_text() == result.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".threetwoone-")]


def test_quiet_shortens_stdout_and_o_but_not_reports(lab: Lab, tmp_path: Path) -> None:
    paths = report_paths(tmp_path, "table")
    out = tmp_path / "quiet.txt"
    result = run(lab, "pass", "-q", "-o", str(out), *report_args(paths))
    assert result.stdout == "" and out.read_text() == ""
    assert "PASS" in paths["table"].read_text()


@pytest.mark.parametrize("scenario", ["invalid", "tool-failed"])
def test_reports_replace_the_last_green_when_nothing_was_judged(
        lab: Lab, tmp_path: Path, scenario: str) -> None:
    paths = report_paths(tmp_path, "json", "prometheus", "table")
    out = tmp_path / "last.json"
    for path in (*paths.values(), out):
        path.write_text("yesterday's green\n")
    result = run(lab, scenario, "--format", "json", "-o", str(out), *report_args(paths))
    code = SCENARIOS[scenario]
    lines = result.stderr.splitlines()
    assert all(line.startswith("threetwoone: ") for line in lines)
    message = "\n".join(line.removeprefix("threetwoone: ") for line in lines)
    for report in (load(paths["json"]), load(out)):
        assert report["status"] == "error" and report["exit_code"] == code
        assert report["datasets"] == [] and report["error"] == message
    assert f"threetwoone_audit_exit_code {code}\n" in paths["prometheus"].read_text()
    assert paths["table"].read_text() == result.stderr.replace(
        "threetwoone: ", f"threetwoone: ERROR (exit {code}): ", 1)


@pytest.mark.parametrize("spec, says", [
    ("xml:{tmp}/r.xml", "unknown report format 'xml'"),
    ("json", "is not FORMAT:PATH"),
    ("json:", "the report path is empty"),
    ("json:{tmp}/nope/r.json", "does not exist"),
    ("json:{tmp}", "is a folder"),
    ("json:{tmp}/fifo", "not a regular file"),
    ("json:/dev/null", "not a regular file"),
])
def test_bad_report_target_is_a_usage_error(lab: Lab, tmp_path: Path, spec: str,
                                            says: str) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it to write would hang the run
    lab.three_copies(FILES)
    result = lab.audit("--report", spec.format(tmp=tmp_path))
    assert result.exit_code == 2
    assert says in result.stderr and "'--report'" in result.stderr
    assert not lab.state.exists()  # nothing was audited


def test_two_reports_to_one_file_is_a_usage_error(lab: Lab, tmp_path: Path) -> None:
    lab.three_copies(FILES)
    target = tmp_path / "r"
    result = lab.audit("--report", f"json:{target}", "--report",
                       f"prometheus:{tmp_path}/../{tmp_path.name}/r")
    assert result.exit_code == 2 and "named twice" in result.stderr
    result = lab.audit("-o", str(target), "--report", f"json:{target}")
    assert result.exit_code == 2 and "named twice" in result.stderr
    result = lab.audit("-o", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr
    assert not lab.state.exists()


def test_a_report_that_cannot_be_written_fails_the_run_after_the_others(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk cannot be made on demand here: fail the one write instead.
    import threetwoone.cli as cli
    real = cli.write_atomically

    def write(path: str, text: str) -> None:
        if path.endswith(".prom"):
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(cli, "write_atomically", write)
    paths = {"prometheus": tmp_path / "r.prom", "json": tmp_path / "r.json"}
    lab.three_copies(FILES)
    result = lab.audit(*report_args(paths))
    assert result.exit_code == 5
    assert "PASS" in result.stdout  # the verdict was still printed
    *_baseline, last = result.stderr.splitlines()
    assert last == (f"threetwoone: cannot write the prometheus report {paths['prometheus']}: "
                    "No space left on device")
    assert load(paths["json"])["status"] == "pass"


@pytest.mark.parametrize("scenario", ["mixed", "pass", "unknown"])
def test_json_made_a_dataset_at_a_time_is_the_plain_indented_json(
        lab: Lab, scenario: str) -> None:
    text = run(lab, scenario, "--format", "json").stdout
    report = json.loads(text)
    validate_report(report)
    assert text == json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    assert list(report)[-1] == "datasets"
    assert len(report["datasets"]) == {"mixed": 3, "pass": 1, "unknown": 1}[scenario]

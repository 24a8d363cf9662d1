"""The Prometheus textfile report, checked by its real consumers: ``promtool
check metrics`` (Debian package ``prometheus``) lints it, and the official
Python client's parser reads it back (label escaping included)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Lab
from reportlab import ODD, SCENARIOS, run
from threetwoone.results import CopyState

METRICS = {
    "threetwoone_dataset_status", "threetwoone_copy_state",
    "threetwoone_dataset_copies_counted",
    "threetwoone_copy_last_full_verification_timestamp_seconds",
    "threetwoone_audit_last_run_timestamp_seconds", "threetwoone_audit_duration_seconds",
    "threetwoone_audit_exit_code", "threetwoone_audit_bytes_read",
    "threetwoone_uncovered_folders",
}
RUN_METRICS = {m for m in METRICS if m.startswith("threetwoone_audit_")} | {
    "threetwoone_uncovered_folders"}
REPO = Path(__file__).parent.parent


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def one(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    [(labels, value)] = found[name]
    assert labels == {}
    return value


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_promtool_accepts_every_outcome(lab: Lab, tmp_path: Path, scenario: str) -> None:
    out = tmp_path / "threetwoone.prom"
    out.write_text("threetwoone_audit_exit_code 0\n")  # last night's green
    run(lab, scenario, "--report", f"prometheus:{out}")
    text = out.read_text()
    check = promtool("check", "metrics", stdin=text)
    assert check.returncode == 0 and check.stdout == "" and check.stderr == "", (
        check.stdout + check.stderr)
    found = samples(text)
    assert one(found, "threetwoone_audit_exit_code") == SCENARIOS[scenario]
    assert one(found, "threetwoone_audit_last_run_timestamp_seconds") > 1.7e9
    assert one(found, "threetwoone_audit_duration_seconds") >= 0
    assert one(found, "threetwoone_uncovered_folders") == 0
    if SCENARIOS[scenario] >= 4:
        assert set(found) == RUN_METRICS  # no verdicts, and no stale ones either
    else:
        assert set(found) == METRICS


def test_state_sets_and_values(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "threetwoone.prom"
    run(lab, "mixed", "--report", f"prometheus:{out}")
    found = samples(out.read_text())
    status = {(s["dataset"], s["status"]): v for s, v in found["threetwoone_dataset_status"]}
    assert {k for k, v in status.items() if v == 1} == {
        ("good", "pass"), ("bad", "fail"), (ODD, "unknown")}  # the odd name read back exactly
    assert len(status) == 9  # 3 datasets x 3 statuses
    states: dict[tuple[str, str, str], dict[str, float]] = {}
    for labels, value in found["threetwoone_copy_state"]:
        key = (labels["dataset"], labels["location"], labels["path"])
        states.setdefault(key, {})[labels["state"]] = value
    current = {key: [s for s, v in values.items() if v == 1] for key, values in states.items()}
    assert all(len(values) == len(CopyState) == 7 for values in states.values())
    assert current[("bad", "tape", "bad")] == ["corrupt"]
    assert current[("bad", "remote", "bad-gone")] == ["missing"]
    assert current[(ODD, "usb", ODD)] == ["unreachable"]
    assert current[("good", "remote", "good")] == ["intact"]
    counted = {s["dataset"]: v for s, v in found["threetwoone_dataset_copies_counted"]}
    assert counted == {"good": 3, "bad": 2, ODD: 2}
    verified = {(s["dataset"], s["location"]) for s, _ in
                found["threetwoone_copy_last_full_verification_timestamp_seconds"]}
    assert ("good", "remote") in verified and (ODD, "usb") not in verified
    # Second audit: every good file unchanged; the changed and corrupt ones re-read.
    assert one(found, "threetwoone_audit_bytes_read") > 0


def test_bytes_read_counts_only_what_was_read(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "threetwoone.prom"
    run(lab, "pass", "--report", f"prometheus:{out}")
    size = sum(len(v) for v in (b"ACGT" * 1000, b"TTTT" * 500, b"hello\n"))
    assert one(samples(out.read_text()), "threetwoone_audit_bytes_read") == 3 * size
    lab.audit("--verify", "changed", "--report", f"prometheus:{out}")
    assert one(samples(out.read_text()), "threetwoone_audit_bytes_read") == 0


def test_example_alert_rules_pass_promtool() -> None:
    rules = REPO / "docs" / "monitoring" / "threetwoone-alerts.yml"
    check = promtool("check", "rules", str(rules))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout


def test_example_alert_rules_fire_on_real_reports(lab: Lab, tmp_path: Path) -> None:
    """The example rules, run by ``promtool test rules`` over series taken from a
    real failing report: the failure alert fires and names the dataset."""
    out = tmp_path / "threetwoone.prom"
    run(lab, "fail", "--report", f"prometheus:{out}")
    found = samples(out.read_text())
    series = []
    for labels, value in found["threetwoone_dataset_status"]:
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        series.append(f"      - series: 'threetwoone_dataset_status{{{selector}}}'\n"
                      f"        values: '{int(value)}x10'")
    test = tmp_path / "test.yml"
    test.write_text(
        f"rule_files: ['{REPO / 'docs' / 'monitoring' / 'threetwoone-alerts.yml'}']\n"
        "evaluation_interval: 1m\n"
        "tests:\n"
        "  - interval: 1m\n"
        "    input_series:\n" + "\n".join(series) + "\n"
        "    alert_rule_test:\n"
        "      - eval_time: 10m\n"
        "        alertname: ThreetwooneDatasetFails\n"
        "        exp_alerts:\n"
        "          - exp_labels: {severity: critical, dataset: ds, policy: 3-2-1, "
        "status: fail}\n"
        "            exp_annotations:\n"
        "              summary: 'Dataset ds fails backup policy 3-2-1'\n"
        "              description: 'A copy is corrupt or too few intact copies remain; "
        "see the audit report.'\n")
    check = promtool("test", "rules", str(test))
    assert check.returncode == 0, check.stdout + check.stderr

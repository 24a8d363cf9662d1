"""benchmarks/facility_scale.py and benchmarks/concurrency.py keep working:
each runs on a tiny scale and prints its table.  Timings are not asserted
(performance is measured in benchmarks/, never in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_facility_scale_runs() -> None:
    out = run("facility_scale.py", "--datasets", "20", "--files", "2", "--runs", "1")
    for row in ("| first audit |", "| datasets |", "| nightly audit |", "| nightly, -q |"):
        assert row in out


@pytest.mark.slow
def test_concurrency_runs() -> None:
    out = run("concurrency.py", "--datasets", "2", "--mib", "0.5", "--runs", "1")
    for row in ("| alpha alone |", "| 3 locations, --parallel 1 |",
                "| 3 locations, --parallel 3 |"):
        assert row in out
    assert "concurrent / slowest alone = " in out

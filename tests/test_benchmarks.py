"""benchmarks/run.py --quick keeps working: it runs every case and prints ratios.

Never skipped: a missing peer tool (xxhsum, hashdeep, rclone, sshd, ...) fails
this test with the apt package that provides it (scripts/test.sh installs
them).  Timings are not asserted, only that every case ran and was compared.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CASES = ["full", "full-flat", "big", "nightly", "nightly-flat", "sftp-hash", "sftp-stream"]
#: case -> peers it must be compared with (substring of the ratio line)
PEERS = {
    "full": ["xxhsum -H2", "hashdeep -r -c md5", "md5sum"],
    "full-flat": ["xxhsum -H2", "hashdeep -r -c md5", "md5sum"],
    "big": ["xxhsum -H2 FILE"],
    "nightly": ["find -type f -printf"],
    "nightly-flat": ["find -type f -printf"],
    "sftp-hash": ["rclone md5sum", "threetwoone, full case"],
    "sftp-stream": ["ssh host cat"],
}


@pytest.fixture(scope="module")
def quick_run() -> Iterator[tuple[subprocess.CompletedProcess[str], Path]]:
    # Not tmp_path: under root it is private, and the sftp login user of the
    # throwaway sshd (an unprivileged account) must read the data.
    data = Path(tempfile.mkdtemp(prefix="t321-bench-test-"))
    data.chmod(0o755)
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--data", str(data)],
            capture_output=True, text=True, timeout=300, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        yield done, data
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_quick_benchmark_runs_every_case_and_prints_ratios(
        quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, _data = quick_run
    out = done.stdout
    missing = re.findall(r"^peer .*MISSING.*$", out, re.M)
    assert not missing, "\n".join(missing)
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "SKIPPED" not in out and "NOT RUN" not in out, out
    for case in CASES:
        assert re.search(rf"^## {re.escape(case)}: ", out, re.M), f"case {case} did not run"
        lines = [line for line in out.splitlines() if line.startswith(f"ratio: {case} vs ")]
        for peer in PEERS[case]:
            hits = [line for line in lines if peer in line]
            assert hits, f"no ratio for {case} vs {peer}:\n" + "\n".join(lines)
            assert all(re.search(r": \d+\.\d\dx", line) for line in hits), hits
    # The README table and how to reproduce it.
    table = out[out.index("| case | threetwoone median |"):]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + sum(len(peers) for peers in PEERS.values()), table
    assert "|---|" in table
    assert "reproduce: python benchmarks/run.py --quick --data" in out


@pytest.mark.slow
def test_quick_data_is_deterministic_and_stamped(
        quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _done, data = quick_run
    tree = data / "quick" / "tree"
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    assert len(files) == 200
    assert all(p.name.endswith(".fastq.gz") for p in files)
    assert (data / "quick" / "tree.stamp.json").is_file()
    assert (data / "quick" / "big" / "big.bin").stat().st_size == 8 << 20
    # Regenerated only when the parameters change: a second generation with
    # the same seed is a no-op, another seed rewrites identical names.
    sys.path.insert(0, str(REPO / "benchmarks"))
    import datagen

    spec = datagen.TreeSpec("tree", 200, 4_000_000, 1.5, "fastq", 321)
    again = datagen.ensure_tree(data / "quick", spec, log=False)
    assert not again.generated and again.files == 200
    before = {p.relative_to(tree): p.read_bytes() for p in files[:5]}
    other = datagen.ensure_tree(data / "quick",
                                datagen.TreeSpec("tree", 200, 4_000_000, 1.5, "fastq", 7),
                                log=False)
    assert other.generated
    after = {p: (tree / p).read_bytes() for p in before}
    assert set(after) == set(before) and after != before

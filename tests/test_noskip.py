"""The skip guard (noskip.py) in a pytest run of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def run_pytest(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_sample.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "noskip", "-p", "no:cacheprovider",
         "-q", "--rootdir", str(folder), str(folder)],
        capture_output=True, text=True, timeout=120, cwd=folder,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("source", [
    "import pytest\ndef test_a(): pass\ndef test_b(): pytest.skip('no server')\n",
    "import pytest\n@pytest.mark.skipif(True, reason='x')\ndef test_a(): pass\n",
    "import pytest\n@pytest.mark.xfail\ndef test_a(): assert False\n",
    "import pytest\npytest.importorskip('no_such_module_here')\ndef test_a(): pass\n",
], ids=["skip", "skipif", "xfail", "importorskip"])
def test_a_run_with_a_skip_fails(tmp_path: Path, source: str) -> None:
    done = run_pytest(tmp_path, source)
    # importorskip leaves no test collected: pytest's own exit code 5 stays.
    assert done.returncode in (pytest.ExitCode.TESTS_FAILED,
                               pytest.ExitCode.NO_TESTS_COLLECTED), done.stdout + done.stderr
    assert "no test may be skipped" in done.stdout


def test_a_run_without_skips_passes(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "def test_a(): pass\n")
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
    assert "no test may be skipped" not in done.stdout


def test_a_failing_run_keeps_its_own_exit_code(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, "import pytest\ndef test_a(): pytest.skip('x')\n"
                                "def test_b(): assert False\n")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED
    assert "no test may be skipped" in done.stdout

"""A pytest plugin: a run in which any test was skipped fails.

The project's rule is that no test is ever skipped (a missing server or tool
fails with the command that installs it; a backend test of a thing a storage
cannot hold is not made for that storage): a skip in the output reads as "not
tested", and would let a gap pass CI unseen.  ``tests/conftest.py`` loads this
plugin for every run; skips at collection (``pytest.importorskip``) and
expected failures (``xfail``, which pytest reports as skipped) count as well.
"""

from __future__ import annotations

import pytest


class SkipGuard:
    """Notes every skipped report and fails a run that had one."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped:
            self.skipped.append(report.nodeid)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.skipped.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.skipped and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.skipped:
            terminalreporter.write_line(
                f"{len(self.skipped)} skipped, and no test may be skipped: the run "
                f"fails (first: {self.skipped[0]})", red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGuard(), "threetwoone-skip-guard")

"""Errors that end a run, and the exit codes they map to (README, "Exit codes")."""

from __future__ import annotations

import enum

from .pathnames import display


class ExitCode(enum.IntEnum):
    PASS = 0
    FAIL = 1
    USAGE = 2
    UNKNOWN = 3
    INVALID = 4
    TOOL_FAILED = 5


class ThreeTwoOneError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code: ExitCode = ExitCode.TOOL_FAILED


class ConfigError(ThreeTwoOneError):
    """An invalid inventory or policy: ``file:line: key.path: message``."""

    exit_code = ExitCode.INVALID

    def __init__(self, file: str, line: int | None, keypath: str, message: str) -> None:
        self.file = file
        self.line = line
        self.keypath = keypath
        self.message = message
        # Key paths hold names from the file: shown escaped, like file names.
        where = f"{display(file)}:{line}" if line else display(file)
        shown = display(keypath)
        super().__init__(f"{where}: {shown}: {message}" if keypath else f"{where}: {message}")


class ConfigErrors(ThreeTwoOneError):
    """Several configuration errors found in one pass, one per line."""

    exit_code = ExitCode.INVALID

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class StateError(ThreeTwoOneError):
    """The state catalog cannot be used (locked, corrupt, from a newer version)."""

    exit_code = ExitCode.TOOL_FAILED

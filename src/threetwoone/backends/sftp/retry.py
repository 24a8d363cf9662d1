"""What a lost connection is, and the one reconnect an operation may spend."""

from __future__ import annotations

import threading

from ..ssh import describe


class _Lost(Exception):
    """The connection under an operation is gone (or stopped answering)."""

    def __init__(self, generation: int, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.generation = generation


class _Budget:
    """One reconnect per operation (a walk, a hash_files call), shared by workers.
    The reconnect happens under ``lock``: workers that lost the same connection
    wait for it and then see either the new connection or why it failed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = 1
        #: Why the one reconnect failed, so every worker reports the same reason.
        self.failure: str | None = None

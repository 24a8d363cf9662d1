"""A remote byte stream as a Python binary file, for ``Backend.open_read``.

SFTP files, HTTP response bodies and S3 object bodies all offer "read up to N
bytes" and "close"; this one adapter gives each of them a buffered ``BinaryIO``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from ..checksums import BUFFER_SIZE


class ReadStream(io.RawIOBase):
    """Raw binary stream over a ``read(n) -> bytes`` function."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None]) -> None:
        self._read = read
        self._close = close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        count = len(data)
        buffer[:count] = data
        return count

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()


def buffered(read: Callable[[int], bytes], close: Callable[[], None],
             size: int = BUFFER_SIZE) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(ReadStream(read, close), size))

"""A remote byte stream as a Python binary file, for ``Backend.open_read``.

SFTP files, HTTP response bodies and S3 object bodies all offer "read up to N
bytes" and "close"; this one adapter gives each of them a buffered ``BinaryIO``.

Two promises callers rely on (the producer manifest is read this way):

* a failure while reading is an ``OSError`` with one clear line, whatever the
  library raised (urllib3, botocore): ``errors`` names what to translate;
* with ``length`` (the size the server announced or listed), a body that ends
  early or runs long is an ``OSError``, never a shorter or longer file: a
  manifest cut at a line boundary would otherwise silently name fewer files.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from ..checksums import BUFFER_SIZE


class ReadStream(io.RawIOBase):
    """Raw binary stream over a ``read(n) -> bytes`` function."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None], *,
                 length: int | None = None,
                 errors: tuple[type[BaseException], ...] = (),
                 describe: Callable[[BaseException], str] = str) -> None:
        self._read = read
        self._close = close
        self._length = length
        self._errors = errors
        self._describe = describe
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._read(len(buffer))
        except OSError:
            raise
        except self._errors as exc:
            raise OSError(errno.EIO, self._describe(exc)) from None
        count = len(data)
        self._count += count
        if self._length is not None:
            if count == 0 and self._count < self._length:
                raise OSError(errno.EIO, f"the transfer ended after {self._count} of "
                                         f"{self._length} bytes")
            if self._count > self._length:
                raise OSError(errno.EIO, f"the server sent more than the {self._length} "
                                         "bytes it announced")
        buffer[:count] = data
        return count

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()


def buffered(read: Callable[[int], bytes], close: Callable[[], None],
             size: int = BUFFER_SIZE, *, length: int | None = None,
             errors: tuple[type[BaseException], ...] = (),
             describe: Callable[[BaseException], str] = str) -> BinaryIO:
    raw = ReadStream(read, close, length=length, errors=errors, describe=describe)
    return cast(BinaryIO, io.BufferedReader(raw, size))

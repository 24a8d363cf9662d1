"""Work shared by the backends' ``hash_files``: batching files, and running
batches on a bounded number of threads.

Bounded in flight (twice the workers), so a million-file copy never queues a
million futures; the first exception (a dropped connection) stops the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TypeVar

from .interface import Entry

T = TypeVar("T")


def batches(entries: Sequence[Entry], max_bytes: int, max_files: int
            ) -> Iterator[list[Entry]]:
    """Consecutive runs of ``entries`` of at most about ``max_bytes`` or
    ``max_files``: one task per small file costs more in scheduling than it hashes."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        batch.append(entry)
        size += entry.size
        if size >= max_bytes or len(batch) >= max_files:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def run_bounded(tasks: Iterator[Callable[[], list[T]]], workers: int, name: str
                ) -> Iterator[T]:
    """Run ``tasks`` on ``workers`` threads and yield their results as they finish."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        running: set[Future[list[T]]] = set()

        def submit_next() -> bool:
            task = next(tasks, None)
            if task is None:
                return False
            running.add(pool.submit(task))
            return True

        for _ in range(workers * 2):
            if not submit_next():
                break
        try:
            while running:
                done, _pending = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.discard(future)
                    yield from future.result()
                    submit_next()
        finally:
            for future in running:
                future.cancel()


def map_bounded(func: Callable[[Entry], T], entries: Sequence[Entry], workers: int,
                name: str) -> Iterator[T]:
    """``func`` over each entry on ``workers`` threads (one task per file: for
    backends whose cost per file is a network round trip, not a read)."""
    return run_bounded((partial(_one, func, entry) for entry in entries), workers, name)


def _one(func: Callable[[Entry], T], entry: Entry) -> list[T]:
    return [func(entry)]

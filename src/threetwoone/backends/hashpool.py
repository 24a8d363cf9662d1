"""Hash local files in worker processes: one per core, fed batches over pipes.

Hashing a copy of small files is mostly per-file Python work (open, fstat,
read, fstat, close), which holds the GIL: threads do not make it faster, more
processes do.  The auditing process forks the workers once (lazily, when a job
is large enough to pay for them) and hands each a batch of files at a time,
two in flight, so none waits for the next; each worker streams back one frame
of outcomes per batch.  Batches are bounded in files, bytes and encoded size,
so memory stays flat however many files a copy holds.

Frames are a 4-byte length and a ``marshal`` payload of plain tuples (no
pickle, no multiprocessing: nothing to import, nothing to start but a fork).

Lifetime and safety:

* a worker reads only what it is told, below a root it opens itself and checks
  to be the folder that was listed (same device and inode);
* a worker ignores SIGINT (Ctrl-C reaches the whole process group): the
  auditing process decides, and ``close()`` kills and reaps every worker;
* a worker whose parent is gone exits: end of file on its task pipe, a broken
  result pipe, or ``getppid()`` changing, checked between files and between
  1 MiB reads of a large file (a killed audit leaves no orphan reading on);
* a worker that dies makes the files it held unreadable ("the hashing process
  stopped"), never intact; the others carry on.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..events import ProgressCallback
from .folders import open_root
from .localhash import Buffers, FileOutcome, FileTask, hash_tasks

#: A batch holds at most this many files, bytes of files and bytes of paths.
#: Small batches keep both workers busy to the end of a chunk; the path bound
#: keeps two task frames well inside a pipe's 64 KiB buffer, so the auditing
#: process never blocks writing to a worker that is itself blocked writing.
BATCH_FILES = 64
BATCH_BYTES = 8 * 1024 * 1024
BATCH_PATH_BYTES = 16 * 1024
#: Batches queued per worker: one being hashed, one waiting.
IN_FLIGHT = 2
#: Below this many files and bytes a job is hashed in the auditing process
#: (forking would cost more than it saves), unless the workers already run.
MIN_FILES = 128
MIN_BYTES = 32 * 1024 * 1024

_HEADER = 4

#: Held while a pool forks its workers and closes the children's pipe ends.
_FORKING = threading.Lock()


class RootChanged(Exception):
    """A worker found the copy's root is not the folder that was listed."""


class _Worker:
    def __init__(self, pid: int, tasks: int, results: int) -> None:
        self.pid = pid
        self.tasks = tasks  # write end, ours
        self.results = results  # read end, ours
        self.queue: deque[int] = deque()  # batch ids sent, oldest first
        self.broken = False  # its task pipe is broken: it died


class HashPool:
    """Worker processes that hash batches of files below a copy's root."""

    def __init__(self, workers: int) -> None:
        self.size = workers
        self._workers: dict[int, _Worker] = {}  # by result fd
        self._next_batch = 0

    @staticmethod
    def worth_it(tasks: Sequence[FileTask]) -> bool:
        """Whether a job pays for starting workers: many files, or much data in
        more than one file (one file is read by one process however many run)."""
        if len(tasks) >= MIN_FILES:
            return True
        return len(tasks) > 1 and sum(task[1] for task in tasks) >= MIN_BYTES

    @property
    def running(self) -> bool:
        return bool(self._workers)

    def hash_ready(self) -> None:
        """Start the workers now (raise OSError if none could be forked)."""
        if not self._workers:
            self._start()

    # -- hashing ----------------------------------------------------------------
    def hash(self, root: str, root_id: tuple[int, int], tasks: Iterable[FileTask],
             algorithms: Sequence[str], progress: ProgressCallback | None
             ) -> Iterator[tuple[FileTask, FileOutcome]]:
        """Outcomes of ``tasks`` below ``root`` (which must still be ``root_id``),
        in the order workers finish them.  Raise RootChanged if it is not.
        ``tasks`` is read as the workers need more (two batches in flight
        each): it may be a generator that walks the copy meanwhile."""
        if not self._workers:
            self._start()
        pending = _batches(tasks)
        sent: dict[int, list[FileTask]] = {}
        algos = list(algorithms)
        finished = False

        def feed(worker: _Worker) -> None:
            while len(worker.queue) < IN_FLIGHT and not worker.broken:
                batch = next(pending, None)
                if batch is None:
                    return
                batch_id = self._next_batch
                self._next_batch += 1
                sent[batch_id] = batch
                worker.queue.append(batch_id)
                try:
                    _send(worker.tasks, (batch_id, root, root_id, algos, batch))
                except BrokenPipeError:
                    # It died: its result pipe ends too, and the batches it
                    # held (this one included) are reported from there.
                    worker.broken = True

        try:
            import select

            for worker in list(self._workers.values()):
                feed(worker)
            poller = select.poll()
            for fd in self._workers:
                poller.register(fd, select.POLLIN)
            while sent:
                for fd, _event in poller.poll():
                    worker = self._workers[fd]
                    frame = _receive(fd)
                    if frame is None:  # the worker died
                        poller.unregister(fd)
                        yield from self._lost(worker, sent)
                        continue
                    batch_id, outcomes, problem = frame
                    worker.queue.popleft()
                    batch = sent.pop(batch_id)
                    if problem is not None:
                        raise RootChanged(problem)
                    feed(worker)  # before handing out results: keep it busy
                    if progress:
                        done = [o for o in outcomes if o[1] is not None]
                        progress(len(done), sum(o[2] for o in done))
                    for outcome in outcomes:
                        yield batch[outcome[0]], outcome
                if not self._workers and sent:
                    break
            # Every worker died: what is left is hashed here.
            leftovers = [task for batch in sent.values() for task in batch]
            leftovers += [task for batch in pending for task in batch]
            if leftovers:
                yield from _hash_here(root, root_id, leftovers, algos)
            finished = True
        finally:
            if not finished:
                # Abandoned half way (an error, Ctrl-C, the consumer stopped):
                # outcomes still in flight would be read by the next call.
                self.close()

    def _lost(self, worker: _Worker, sent: dict[int, list[FileTask]]
              ) -> Iterator[tuple[FileTask, FileOutcome]]:
        del self._workers[worker.results]
        os.close(worker.results)
        os.close(worker.tasks)
        _pid, status = os.waitpid(worker.pid, 0)
        why = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        detail = f"the hashing process stopped ({why}) before reading it"
        for batch_id in worker.queue:
            for index, task in enumerate(sent.pop(batch_id)):
                yield task, (index, None, 0, detail)

    # -- life cycle -------------------------------------------------------------
    def _start(self) -> None:
        """Fork the workers.  Raise OSError only if not even one could start.

        One pool starts at a time (several copies may be hashed at once, on
        different locations, by ``audit --parallel``): a fork inherits every open
        descriptor, and a worker of another pool must never hold the child's end
        of this pool's pipes, or this pool would never see a dying worker's end
        of file."""
        with _FORKING:
            self._fork_workers()

    def _fork_workers(self) -> None:
        parent = os.getpid()
        for _ in range(self.size):
            task_r, task_w = os.pipe2(os.O_CLOEXEC)
            result_r, result_w = os.pipe2(os.O_CLOEXEC)
            try:
                pid = os.fork()
            except OSError:
                for fd in (task_r, task_w, result_r, result_w):
                    os.close(fd)
                if self._workers:
                    break  # fewer workers than asked (a process limit): go on
                raise
            if pid == 0:  # the worker: never returns
                _worker_main(parent, task_r, result_w)
            os.close(task_r)
            os.close(result_w)
            self._workers[result_r] = _Worker(pid, task_w, result_r)

    def close(self) -> None:
        """Stop every worker (they only read: killing them loses nothing) and
        reap it.  Safe to call more than once."""
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            os.close(worker.tasks)
            os.close(worker.results)
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        for worker in workers:
            os.waitpid(worker.pid, 0)


def _batches(tasks: Iterable[FileTask]) -> Iterator[list[FileTask]]:
    batch: list[FileTask] = []
    size = names = 0
    for task in tasks:
        batch.append(task)
        size += task[1]
        names += len(task[0])
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES or names >= BATCH_PATH_BYTES:
            yield batch
            batch, size, names = [], 0, 0
    if batch:
        yield batch


def _hash_here(root: str, root_id: tuple[int, int], tasks: Sequence[FileTask],
               algorithms: Sequence[str]) -> Iterator[tuple[FileTask, FileOutcome]]:
    fd, st = open_root(root)
    try:
        if (st.st_dev, st.st_ino) != root_id:
            raise RootChanged(_root_changed(root))
        for outcome in hash_tasks(fd, tasks, algorithms, Buffers()):
            yield tasks[outcome[0]], outcome
    finally:
        os.close(fd)


def _root_changed(root: str) -> str:
    return (f"{root} is no longer the folder that was listed (replaced or remounted "
            "during the audit)")


# -- the worker process ---------------------------------------------------------------

def _worker_main(parent: int, tasks: int, results: int) -> None:
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Only the two pipes: no catalog, lock or sibling pipe stays open here
        # (a sibling's task pipe held open would hide its parent's death).
        low, high = sorted((tasks, results))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, 1 << 20)
        _serve(parent, tasks, results)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _serve(parent: int, tasks: int, results: int) -> None:
    buffers = Buffers()
    root_key: tuple[str, tuple[int, int]] | None = None
    root_fd = -1
    while True:
        frame = _receive(tasks)
        if frame is None:
            return  # the auditing process closed the pool, or is gone
        batch_id, root, root_id, algorithms, batch = frame
        if root_key != (root, root_id):
            if root_fd >= 0:
                os.close(root_fd)
                root_fd, root_key = -1, None
            fd, st = open_root(root)
            if (st.st_dev, st.st_ino) != tuple(root_id):
                os.close(fd)
                _send(results, (batch_id, [], _root_changed(root)))
                continue
            root_fd, root_key = fd, (root, root_id)
        def orphaned(_count: int) -> None:
            if os.getppid() != parent:
                os._exit(0)

        outcomes = []
        for outcome in hash_tasks(root_fd, batch, algorithms, buffers, orphaned):
            outcomes.append(outcome)
            orphaned(0)
        _send(results, (batch_id, outcomes, None))


# -- frames -------------------------------------------------------------------------

def _send(fd: int, message: Any) -> None:
    data = marshal.dumps(message)
    view = memoryview(len(data).to_bytes(_HEADER, "little") + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int) -> Any:
    """One frame, or None at end of file (the other side is gone)."""
    header = _read_exact(fd, _HEADER)
    if header is None:
        return None
    data = _read_exact(fd, int.from_bytes(header, "little"))
    if data is None:
        return None
    return marshal.loads(data)


def _read_exact(fd: int, count: int) -> bytes | None:
    chunks = []
    while count:
        chunk = os.read(fd, count)
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)

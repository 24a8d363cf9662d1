"""The backends of one run: each location connected once, and a location that
cannot be reached tried once and remembered.

Finding a collection's datasets, checking coverage and auditing copies all use
the same connections, so a host with a bad key is tried once per run, not once
per dataset, and reported once (the report's ``locations``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .backends import Backend, LocationUnreachable, open_backend
from .inventory import Inventory, Location
from .results import AuditResult, CopyState, Verification


@dataclass(frozen=True)
class LocationState:
    """How a location fared in this run (the report's ``locations``)."""

    name: str
    kind: str
    #: ``reachable`` or ``unreachable``.
    state: str
    detail: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "kind": self.kind, "state": self.state,
                "detail": self.detail}


class Connections:
    """Connected backends by location name.  ``get`` may be called from several
    threads: a location is connected by the first caller, the others wait.

    A backend serves one copy at a time (its own ``-j`` workers are its
    connection limit): whoever uses one holds its location (``hold``) for as
    long as it does.  A thread holds one location at a time, so two threads
    can never wait for each other's."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        self._unreachable: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        self._guard = threading.Lock()
        self._connecting: dict[str, threading.Lock] = {}
        self._using: dict[str, threading.RLock] = {}
        self._held = threading.local()

    @contextmanager
    def hold(self, location: Location) -> Iterator[None]:
        """Use ``location`` alone for the duration (nested holds of the same
        location are fine; of another one, a bug that could deadlock)."""
        held = getattr(self._held, "name", None)
        if held is not None and held != location.name:
            raise AssertionError(f"holding {held} while asking for {location.name}")
        with self._guard:
            lock = self._using.setdefault(location.name, threading.RLock())
        with lock:
            self._held.name = location.name
            try:
                yield
            finally:
                self._held.name = held

    def get(self, location: Location) -> Backend:
        """The connected backend for ``location``; raise
        :class:`LocationUnreachable` (with the first attempt's reason) if it
        could not be reached."""
        with self._guard:
            lock = self._connecting.setdefault(location.name, threading.Lock())
        with lock:
            if location.name in self._unreachable:
                raise LocationUnreachable(self._unreachable[location.name])
            backend = self._backends.get(location.name)
            if backend is not None:
                return backend
            self._kinds[location.name] = location.kind
            backend = open_backend(location)
            try:
                backend.connect()
            except LocationUnreachable as exc:
                self._unreachable[location.name] = str(exc)
                backend.close()
                raise
            self._backends[location.name] = backend
            return backend

    def is_unreachable(self, name: str) -> bool:
        return name in self._unreachable

    def states(self, order: list[str]) -> list[LocationState]:
        """Every location tried this run, in ``order`` (the inventory's)."""
        out = []
        for name in order:
            if name in self._unreachable:
                out.append(LocationState(name, self._kinds[name], "unreachable",
                                         self._unreachable[name]))
            elif name in self._backends:
                out.append(LocationState(name, self._kinds[name], "reachable"))
        return out

    def close(self) -> None:
        with self._guard:
            backends = list(self._backends.values())
            self._backends.clear()
        for backend in backends:
            backend.close()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def report_locations(result: AuditResult, inventory: Inventory,
                     states: list[LocationState]) -> None:
    """Each location tried this run into ``result.locations``; one that could
    not be reached is reported there once, with the whole reason and what to
    do, and its copies point to it in a few words instead of repeating both
    (200 copies on one host with a bad key: one paragraph, not 200)."""
    from .nextsteps import unreachable_step

    down = {s.name: s for s in states if s.state == "unreachable"}
    # Offline media (a disk in a drawer) whose every copy this run kept its
    # remembered state: expected to be absent, so not a problem to report.
    remembered = {c.location for d in result.datasets for c in d.copies
                  if c.verification is Verification.REMEMBERED}
    offline = {name for name in down if name in remembered
               and inventory.locations[name].attribute("offline")}
    for dataset in result.datasets:
        for copy in dataset.copies:
            if copy.state is CopyState.UNREACHABLE and copy.location in down:
                offline.discard(copy.location)
                if copy.detail == down[copy.location].detail:
                    copy.detail = f"location {copy.location} is unreachable (see locations)"
                    copy.next_step = f"see location {copy.location}"
    result.locations = [
        {**s.as_dict(), "state": "offline", "next_step": None} if s.name in offline else
        {**s.as_dict(), "next_step": unreachable_step(s.detail or "",
                                                      inventory.locations[s.name])
         if s.state == "unreachable" else None}
        for s in states]

"""The backends of one run: each location connected once, and a location that
cannot be reached tried once and remembered.

Finding a collection's datasets, checking coverage and auditing copies all use
the same connections, so a host with a bad key is tried once per run, not once
per dataset, and reported once (the report's ``locations``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .backends import Backend, LocationUnreachable, open_backend
from .inventory import Location


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
    threads: a location is connected by the first caller, the others wait."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        self._unreachable: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        self._guard = threading.Lock()
        self._connecting: dict[str, threading.Lock] = {}

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

"""Warnings about an inventory that is valid but probably not what its author
meant: sites, media or zones spelt apart, media outside the vocabulary, a copy
declared twice.  ``validate`` prints them; ``audit`` shows each with the datasets
it concerns.  None of them changes a verdict: the comparisons that count are
already made safe (see vocabulary.py and ``declared_twice``)."""

from __future__ import annotations

from .inventory import Inventory, declared_twice
from .vocabulary import spelling_warnings
from .yamlload import join


def _where(inventory: Inventory, keypath: str) -> str:
    """``file:line: keypath`` as errors name a place."""
    line = inventory.document.line(keypath) if inventory.document else None
    return f"{inventory.path}:{line}: {keypath}" if line else f"{inventory.path}: {keypath}"


def inventory_warnings(inventory: Inventory) -> list[str]:
    """Every warning about ``inventory``, each naming file, line and key path."""
    out = [f"{_where(inventory, w.keypath)}: {w.message}"
           for w in spelling_warnings(inventory)]
    for name, dataset in inventory.datasets.items():
        for index, first in declared_twice(inventory.locations, dataset).items():
            copy = dataset.copies[index]
            copies = join(join("datasets", name), "copies")
            keypath = join(copies, index)
            out.append(f"{_where(inventory, keypath)}: copy {copy.location}:{copy.path} is "
                       f"declared twice (also {join(copies, first.index)}, "
                       f"{first.location}:{first.path}); it counts once")
    return out

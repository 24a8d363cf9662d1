"""A digest of what the inventory declares about one dataset, recorded with
each audit: a plan built from an audit whose declaration differs from the
inventory's now (a copy added, moved or removed, another policy) says it may
be out of date.  The inventory file's mtime would also change for edits to
other datasets; the digest changes only for this one's."""

from __future__ import annotations

import json
from typing import Any

import xxhash

from ..inventory import Dataset, Inventory
from ..policy import Policy, describe


def declaration_digest(inventory: Inventory, dataset: Dataset, policy: Policy) -> str:
    locations = {copy.location: dict(inventory.locations[copy.location].settings)
                 for copy in dataset.copies}
    declared: dict[str, Any] = {
        "copies": [[c.location, c.path, c.primary] for c in dataset.copies],
        "locations": locations,
        "checksums": [repr(spec) for spec in dataset.checksums],
        "exclude": list(dataset.exclude),
        "policy": {key: value for key, value in describe(policy).items()
                   if key not in ("description", "attested", "rules")},
    }
    text = json.dumps(declared, sort_keys=True, default=str)
    return str(xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape")))

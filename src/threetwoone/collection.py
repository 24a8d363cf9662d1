"""``collections:`` and ``coverage:`` in the inventory: what they say, checked
without touching storage, and the pure rules that turn a matched folder into a
dataset (its name, its copies' paths).

A collection declares many datasets at once: every folder matching ``glob`` on
the collection's location is one dataset's primary copy.  Finding those folders
needs the storage, so it happens in expansion.py, at audit time; ``validate``
checks only what is written here.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .yamlload import join

if TYPE_CHECKING:
    from . import pathglob
    from .inventory import Collection, CopySpec, CoverageSpec, Dataset, _Validator

#: The placeholders a copy's path template may use.
PLACEHOLDERS = ("path", "name")

#: Deepest coverage check: one listing per folder down to it.
MAX_COVERAGE_DEPTH = 16


# -- the rules (pure) ----------------------------------------------------------

def glob_parts(glob: str) -> list[str]:
    """``ngi/P*`` -> ``["ngi", "P*"]``."""
    return [part for part in glob.strip("/").split("/") if part not in ("", ".")]


def literal_prefix(glob: str) -> list[str]:
    """The leading folders of ``glob`` without wildcards, never its last part:
    they are left out of dataset names (``ngi/P*`` -> ``["ngi"]``)."""
    parts = glob_parts(glob)
    prefix = []
    for part in parts[:-1]:
        if set(part) & set("*?["):
            break
        prefix.append(part)
    return prefix


def dataset_name(collection: str, glob: str, match: str) -> str:
    """``<collection>/<match without the glob's literal leading folders>``."""
    parts = match.split("/")[len(literal_prefix(glob)):]
    return f"{collection}/{'/'.join(parts)}"


def fill(template: str, match: str) -> str:
    """A copy's path for the folder ``match``: ``{path}`` is the match,
    ``{name}`` its last part."""
    return template.format(path=match, name=match.rsplit("/", 1)[-1])


def leaves_location(path: str) -> bool:
    """Whether ``path`` climbs out of its location's root (a ``..`` part)."""
    return any(part == ".." for part in path.split("/"))


def unusable_name(name: str) -> bool:
    """A folder name from a listing that is no folder of its own (``..`` would
    leave the location, ``.`` and ``''`` alias their parent; object stores and
    some servers list such keys)."""
    return name in ("", ".", "..") or "/" in name


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a usable copy path template, or None."""
    try:
        fields = [(name, spec, conversion) for _lit, name, spec, conversion
                  in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return f"is not a valid template ({exc}; write '{{{{' for a literal brace)"
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS:
            return (f"unknown placeholder {{{name}}} (use {{path}}, the matched folder, or "
                    "{name}, its last part)")
        if spec or conversion:
            return f"placeholder {{{name}}} takes no format or conversion"
    if not fields:
        return ("must contain {path} or {name}: without it every dataset of the collection "
                "would claim the same folder")
    if leaves_location(fill(template, "x")):
        return "must not contain '..': it would leave the location"
    return None


def glob_problem(glob: str) -> str | None:
    """Why ``glob`` cannot find a collection's folders, or None."""
    from . import pathglob  # only inventories with collections need it

    problem = pathglob.problem(glob)
    if problem:
        return problem.replace("must name files, not end with '/'",
                               "must not end with '/'")
    if "**" in glob:
        return ("must not contain '**': a collection's datasets are the folders at one "
                "depth (write one '*' per level, e.g. 'runs/*/raw')")
    return None


def could_not_list(problems: list[str]) -> str:
    """``could not list a: why; b: why (and 3 more)``: a few, then a count."""
    shown = "; ".join(problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"could not list {shown}{more}"


def ignored(patterns: tuple[str, ...], path: str) -> bool:
    """Whether a folder (``path`` relative to where the patterns apply) is left
    out: a pattern matches its name or its whole path."""
    name = path.rsplit("/", 1)[-1]
    return any(compiled(p).match(name) or compiled(p).match(path) for p in patterns)


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> pathglob.PathGlob:
    """A glob compiled once (collections match it against every folder)."""
    from . import pathglob

    return pathglob.compile_glob(pattern)


# -- validation (no storage) ---------------------------------------------------

def _check_ignore(v: _Validator, patterns: Any, keypath: str) -> None:
    from . import pathglob

    for pattern in patterns or ():
        if isinstance(pattern, str) and pathglob.problem(pattern):
            v.error(keypath, f"{pattern!r}: {pathglob.problem(pattern)}")

def _string(value: Any) -> str | None:
    return None if isinstance(value, str) and value != "" else "must be a non-empty string"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string ('' is the location's root)"


def _string_list(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return None
    return "must be a list of non-empty strings"


def _depth(value: Any) -> str | None:
    ok = (isinstance(value, int) and not isinstance(value, bool)
          and 1 <= value <= MAX_COVERAGE_DEPTH)
    return None if ok else f"must be a whole number from 1 to {MAX_COVERAGE_DEPTH}"


def _any(value: Any) -> str | None:
    return None


def read_collections(v: _Validator, value: Any, locations: Mapping[str, Any],
                     datasets: Mapping[str, Dataset]) -> dict[str, Collection]:
    """``collections:`` as Collection values; errors go to the validator."""
    from .inventory import Collection

    if value is None:
        return {}
    if not isinstance(value, dict):
        return {}  # reported by the top-level key check
    out: dict[str, Collection] = {}
    for name, spec in value.items():
        keypath = join("collections", name)
        if not isinstance(name, str) or not name or "/" in name:
            v.error(keypath, "a collection name must be text without '/' (its datasets "
                             "are named <collection>/<match>)")
            continue
        if not isinstance(spec, dict):
            v.error(keypath, "a collection must be a mapping with 'location', 'glob' and "
                             "'copies'")
            continue
        v.keys(spec, keypath, {
            "location": (_string, True), "glob": (_string, True), "copies": (_any, True),
            "policy": (_string, False), "class": (_string, False),
            "checksums": (_any, False), "exclude": (_string_list, False),
            "ignore": (_string_list, False), "description": (_string, False)})
        location = spec.get("location")
        if isinstance(location, str) and location not in locations:
            v.error(join(keypath, "location"), f"unknown location {location!r}")
        glob = spec.get("glob")
        if isinstance(glob, str):
            problem = glob_problem(glob)
            if problem:
                v.error(join(keypath, "glob"), problem)
        _check_ignore(v, spec.get("ignore"), join(keypath, "ignore"))
        checksums = v.checksums(spec.get("checksums"), join(keypath, "checksums"))
        copies = _template_copies(v, spec.get("copies"), join(keypath, "copies"), locations)
        for other in datasets:
            if other == name or other.startswith(name + "/"):
                v.error(join("datasets", other), f"dataset name {other!r} is in the name "
                        f"space of collection {name!r} ({keypath}): its datasets are "
                        f"named {name}/<match>; rename one of them")
        if (isinstance(location, str) and isinstance(glob, str) and copies
                and not glob_problem(glob)):
            out[name] = Collection(
                name=name, location=location, glob=glob.strip("/"), copies=copies,
                policy=spec.get("policy"), checksums=checksums,
                exclude=tuple(spec.get("exclude") or ()), cls=spec.get("class"),
                description=spec.get("description"), ignore=tuple(spec.get("ignore") or ()))
    return out


def _template_copies(v: _Validator, value: Any, keypath: str, locations: Mapping[str, Any]
                     ) -> tuple[CopySpec, ...]:
    from .inventory import CopySpec

    if not isinstance(value, list) or not value:
        v.error(keypath, "must be a non-empty list of copies (the matched folder is the "
                         "primary; list the others)")
        return ()
    out = []
    for index, copy in enumerate(value):
        path = join(keypath, index)
        if not isinstance(copy, dict):
            v.error(path, "a copy must be a mapping with 'location' and 'path'")
            continue
        if "primary" in copy:
            v.error(join(path, "primary"), "a collection's primary copy is the matched "
                    "folder on the collection's location; its other copies cannot be primary")
            continue
        v.keys(copy, path, {"location": (_string, True), "path": (_string, True),
                            "description": (_string, False)})
        location, template = copy.get("location"), copy.get("path")
        if isinstance(location, str) and location not in locations:
            v.error(join(path, "location"), f"unknown location {location!r}")
        if isinstance(template, str):
            problem = template_problem(template)
            if problem:
                v.error(join(path, "path"), problem)
                continue
        if isinstance(location, str) and isinstance(template, str):
            out.append(CopySpec(location=location, path=template, primary=False,
                                index=index + 1))
    return tuple(out)


def read_coverage(v: _Validator, value: Any, locations: Mapping[str, Any]
                  ) -> tuple[CoverageSpec, ...]:
    """``coverage:``: a list of ``{location, path, depth, ignore}``."""
    from .inventory import CoverageSpec

    if value is None:
        return ()
    if not isinstance(value, list):
        v.error("coverage", "must be a list of {location, path, depth}")
        return ()
    out = []
    for index, spec in enumerate(value):
        keypath = join("coverage", index)
        if not isinstance(spec, dict):
            v.error(keypath, "must be a mapping with 'location', 'path' and 'depth'")
            continue
        v.keys(spec, keypath, {"location": (_string, True), "path": (_text, False),
                               "depth": (_depth, False), "ignore": (_string_list, False),
                               "description": (_string, False)})
        location = spec.get("location")
        if isinstance(location, str) and location not in locations:
            v.error(join(keypath, "location"), f"unknown location {location!r}")
        path = spec.get("path", "")
        if isinstance(path, str) and leaves_location(path):
            v.error(join(keypath, "path"), "must not contain '..': it would leave the location")
        _check_ignore(v, spec.get("ignore"), join(keypath, "ignore"))
        depth = spec.get("depth", 1)
        if (isinstance(location, str) and isinstance(path, str) and not _depth(depth)
                and not leaves_location(path)):
            out.append(CoverageSpec(location=location, path=path.strip("/"), depth=depth,
                                    ignore=tuple(spec.get("ignore") or ()), index=index))
    return tuple(out)

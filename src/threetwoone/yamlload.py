"""Strict YAML loading that remembers where every value came from.

PyYAML's safe loader silently keeps the last of two duplicate keys and forgets
line numbers.  Inventories and policies are edited by hand, so an error must
point at the exact line: we compose the node graph with the safe loader (no
object construction, no tags beyond the safe ones) and build plain Python values
ourselves, recording the line of every key path and refusing duplicate keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ConfigError
from .files import NotReadable, read_regular_file


@dataclass
class Document:
    """Plain Python data plus the line (1-based) of each key path."""

    data: Any
    file: str
    lines: dict[str, int] = field(default_factory=dict)
    #: key path -> the text of an unquoted value YAML did not read as a string
    #: (``off``, ``1``, ``~``), for hints; ``plain_keys`` the same for keys.
    plain: dict[str, tuple[str, Any]] = field(default_factory=dict)
    plain_keys: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def line(self, keypath: str) -> int | None:
        """The line of ``keypath``, or of its nearest parent that has one."""
        while True:
            if keypath in self.lines:
                return self.lines[keypath]
            if not keypath:
                return None
            cut = max(keypath.rfind("."), keypath.rfind("["))
            keypath = keypath[: max(cut, 0)]

    def unquoted_hint(self, keypath: str, key: bool = False) -> str:
        """For a string expected at ``keypath`` (its key, with ``key``): when an
        unquoted value was read as something else (``off`` as false, ``1`` as a
        number, an empty value as null), say so and how to quote it; else ''."""
        found = (self.plain_keys if key else self.plain).get(keypath)
        if found is None:
            return ""
        text, value = found
        if value is None:
            return " (YAML reads an empty value, ~ or null as no value)"
        what = (f"the boolean {str(value).lower()}" if isinstance(value, bool)
                else "a number" if isinstance(value, (int, float)) else "a date")
        return (f" (YAML reads the unquoted {text} as {what}; write '{text}' in quotes if "
                "you mean the text)")

    def error(self, keypath: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.line(keypath), keypath, message)


def join(keypath: str, key: object) -> str:
    """``keypath`` plus a list index (an int) or a mapping key."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{keypath}[{key}]"
    return f"{keypath}.{key}" if keypath else str(key)


def shown(value: object) -> str:
    """A loaded value as YAML writes it, for messages: true, null, 'text', 2."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value)


def key_join(keypath: str, key: object) -> str:
    """``keypath`` plus a mapping key, whatever YAML read it as (``1:`` is not an index)."""
    return join(keypath, str(key))


#: Bounds on what loading one inventory or policy file may build (README,
#: "Inventory").  An 800-byte file of nested aliases ("billion laughs") would
#: otherwise expand to billions of values; a file of 100,000 ``[`` to a
#: RecursionError.  Generous for real inventories: 10,000 datasets with three
#: copies each are about 1.8 MB and 200,000 values.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_VALUES = 1_000_000  # every mapping, list and scalar, each alias counted expanded
MAX_ALIASES = 10_000
MAX_DEPTH = 64
#: Longer integers are no count, port or version anything means (and Python
#: refuses to read integers of more than 4,300 digits).
MAX_INT_DIGITS = 30

_SCALAR_TAGS = {f"tag:yaml.org,2002:{name}"
                for name in ("str", "int", "float", "bool", "null", "timestamp")}
_MAP_TAGS = {None, "!", "tag:yaml.org,2002:map"}
_SEQ_TAGS = {None, "!", "tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STANDARD = "tag:yaml.org,2002:"


def _tag_refused(tag: str | None, on: str) -> str:
    """Why a tag on ``on`` (a value, a mapping, a list) is refused, with the tag
    as it was written (``!!set``, not ``tag:yaml.org,2002:set``): tags would
    construct objects, sets or types the tool does not read, and a tag skipped
    in silence would make the file mean something else than it says."""
    written = "!!" + tag[len(_STANDARD):] if tag and tag.startswith(_STANDARD) else tag
    return (f"YAML tag {written} on {on} is not supported (inventories and policies are "
            "plain YAML): remove it")

#: The C parser (libyaml) when PyYAML has it: several times faster on big inventories.
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class _Frame:
    """A mapping or list being built."""

    value: dict[Any, Any] | list[Any]
    keypath: str
    anchor: str | None
    line: int
    depth: int
    #: Values inside, this one included (aliases expanded): what an alias to it costs.
    size: int = 1
    #: Deepest nesting inside, this one counted.
    height: int = 1
    #: In a mapping: the key read, waiting for its value.
    key: Any = None
    has_key: bool = False


@dataclass
class _Anchor:
    value: Any
    size: int
    height: int


class _Builder:
    """Builds plain Python values straight from the parser's events, so every
    bound is checked before anything is built: no node graph, no recursion."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.scalars = yaml.constructor.SafeConstructor()
        self.resolver = yaml.resolver.Resolver()
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.values = 0
        self.aliases = 0
        self.documents = 0
        self.result: Any = None

    def fail(self, line: int | None, message: str, keypath: str | None = None) -> ConfigError:
        return ConfigError(self.doc.file, line, self.keypath() if keypath is None else keypath,
                           message)

    def keypath(self) -> str:
        """Where the next value goes."""
        if not self.stack:
            return ""
        top = self.stack[-1]
        if isinstance(top.value, list):
            return join(top.keypath, len(top.value))
        return key_join(top.keypath, top.key) if top.has_key else top.keypath

    def count(self, size: int, line: int) -> None:
        self.values += size
        if self.values > MAX_VALUES:
            raise self.fail(line, f"the document expands to more than {MAX_VALUES:,} values "
                                  "(aliases counted expanded); the limit guards against alias "
                                  "bombs", "")

    # -- events ----------------------------------------------------------------
    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.ScalarEvent):
            self.scalar(event, line)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            self.start(event, line)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = self.stack.pop()
            self.done(frame.value, 1, frame.size, frame.height, frame.anchor, frame.line)
        elif isinstance(event, yaml.AliasEvent):
            self.alias(event, line)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fail(line, "more than one YAML document in the file ('---')", "")

    def scalar(self, event: yaml.ScalarEvent, line: int) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit)
        if tag == _MERGE_TAG:
            raise self.fail(line, "YAML merge keys ('<<') are not supported")
        if tag not in _SCALAR_TAGS:
            raise self.fail(line, _tag_refused(event.tag, "a value"))
        is_key = bool(self.stack) and isinstance(self.stack[-1].value, dict) \
            and not self.stack[-1].has_key
        if "\0" in event.value:
            raise self.fail(line, ("a key" if is_key else "the value") + " contains a NUL "
                            "character (\\0), which no name, path or setting may hold")
        if tag.endswith(":int") and sum(c.isdigit() for c in event.value) > MAX_INT_DIGITS:
            raise self.fail(line, f"a number of more than {MAX_INT_DIGITS} digits is out of "
                                  "range")
        node = yaml.ScalarNode(tag, event.value, style=event.style or None)
        try:
            value = self.scalars.yaml_constructors[tag](self.scalars, node)
        except (ValueError, OverflowError, yaml.constructor.ConstructorError) as exc:
            kind = tag.rsplit(":", 1)[-1]
            reason = getattr(exc, "problem", None) or str(exc)
            raise self.fail(line, f"invalid {kind} value: {reason}") from None
        # A plain (unquoted) scalar has style None (PyYAML) or '' (libyaml).
        plain = (event.value, value) if not event.style and not isinstance(value, str) \
            else None
        if is_key:
            self.key(value, line, plain)
            return
        if plain:
            self.doc.plain[self.keypath()] = plain
        self.done(value, 1, 1, 1, event.anchor, line)

    def key(self, key: Any, line: int, plain: tuple[str, Any] | None) -> None:
        frame = self.stack[-1]
        assert isinstance(frame.value, dict)
        child = key_join(frame.keypath, key)
        if key in frame.value:
            # The earlier key may differ in type only (YAML's 1 and true are equal keys).
            earlier = next(k for k in frame.value if k == key)
            first = self.doc.lines.get(key_join(frame.keypath, earlier))
            same = "" if repr(earlier) == repr(key) else f" {earlier!r},"
            raise self.fail(line, f"duplicate key {key!r} (equal to the key{same} first "
                                  f"defined on line {first})" if same else
                            f"duplicate key {key!r} (first defined on line {first})", child)
        self.doc.lines.setdefault(child, line)  # the first of "1" and 1 keeps its line
        if plain is not None:
            self.doc.plain_keys[child] = plain
        frame.key, frame.has_key = key, True

    def start(self, event: yaml.CollectionStartEvent, line: int) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        if self.stack and isinstance(self.stack[-1].value, dict) and not self.stack[-1].has_key:
            raise self.fail(line, "mapping keys must be plain scalars")
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            raise self.fail(line, _tag_refused(event.tag, "a mapping" if is_map else "a list"))
        depth = len(self.stack) + 1
        if depth > MAX_DEPTH:
            raise self.fail(line, f"nested deeper than the limit of {MAX_DEPTH} levels")
        keypath = self.keypath()
        self.doc.lines.setdefault(keypath, line)
        self.stack.append(_Frame({} if is_map else [], keypath, event.anchor, line, depth))

    def alias(self, event: yaml.AliasEvent, line: int) -> None:
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise self.fail(line, f"more than {MAX_ALIASES:,} aliases ('*name')", "")
        anchor = self.anchors.get(event.anchor or "")
        if anchor is None:
            building = any(f.anchor == event.anchor for f in self.stack)
            raise self.fail(line, f"alias *{event.anchor} " + (
                "refers to a mapping or list that contains it" if building
                else "refers to no anchor defined before it"))
        if self.stack and isinstance(self.stack[-1].value, dict) and not self.stack[-1].has_key:
            if isinstance(anchor.value, (dict, list)):
                raise self.fail(line, "mapping keys must be plain scalars")
            self.key(anchor.value, line, None)
            return
        if len(self.stack) + anchor.height > MAX_DEPTH:
            raise self.fail(line, f"nested deeper than the limit of {MAX_DEPTH} levels")
        # The anchored value itself, as PyYAML gives it (the loaded data is only
        # ever read): an alias costs nothing to build, only its count.
        self.done(anchor.value, anchor.size, anchor.size, anchor.height, None, line)

    def done(self, value: Any, cost: int, size: int, height: int, anchor: str | None,
             line: int) -> None:
        """``value`` (from ``line``) is complete: count what it ``cost`` (its
        ``size`` when an alias brought it in whole; its contents counted as they
        came otherwise), remember its anchor, put it in its parent."""
        self.count(cost, line)
        if anchor is not None:
            if anchor in self.anchors:
                raise self.fail(line, f"anchor &{anchor} is defined twice")
            self.anchors[anchor] = _Anchor(value, size, height)
        self.doc.lines.setdefault(self.keypath(), line)
        if not self.stack:
            self.result = value
            return
        parent = self.stack[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        if isinstance(parent.value, list):
            parent.value.append(value)
        else:
            parent.value[parent.key] = value
            parent.key, parent.has_key = None, False


def load_text(text: str, file: str) -> Document:
    doc = Document(data=None, file=file)
    builder = _Builder(doc)
    try:
        for event in yaml.parse(text, Loader=_PARSER):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(file, line, "", f"malformed YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, "", f"malformed YAML: {exc}") from exc
    if not builder.documents:
        raise ConfigError(file, None, "", "the file is empty")
    doc.data = builder.result
    return doc


def load_file(path: str | os.PathLike[str]) -> Document:
    name = os.fspath(path)
    try:
        raw = read_regular_file(name, MAX_FILE_BYTES)
    except NotReadable as exc:
        raise ConfigError(name, None, "", str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(name, line, "", "not valid UTF-8") from None
    return load_text(text, name)

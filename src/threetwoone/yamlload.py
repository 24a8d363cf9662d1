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


@dataclass
class Document:
    """Plain Python data plus the line (1-based) of each key path."""

    data: Any
    file: str
    lines: dict[str, int] = field(default_factory=dict)

    def line(self, keypath: str) -> int | None:
        """The line of ``keypath``, or of its nearest parent that has one."""
        while True:
            if keypath in self.lines:
                return self.lines[keypath]
            if not keypath:
                return None
            cut = max(keypath.rfind("."), keypath.rfind("["))
            keypath = keypath[: max(cut, 0)]

    def error(self, keypath: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.line(keypath), keypath, message)


def join(keypath: str, key: object) -> str:
    if isinstance(key, int):
        return f"{keypath}[{key}]"
    return f"{keypath}.{key}" if keypath else str(key)


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, keypath: str) -> Any:
        self.doc.lines.setdefault(keypath, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(self.doc.file, key_node.start_mark.line + 1, keypath,
                                      "mapping keys must be plain scalars")
                key = self.scalars.construct_object(key_node)
                if key == "<<" and key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(self.doc.file, key_node.start_mark.line + 1, keypath,
                                      "YAML merge keys ('<<') are not supported")
                child = join(keypath, key)
                if key in out:
                    first = self.doc.lines.get(child)
                    raise ConfigError(self.doc.file, key_node.start_mark.line + 1, child,
                                      f"duplicate key {key!r} (first defined on line {first})")
                self.doc.lines[child] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, join(keypath, i)) for i, item in enumerate(node.value)]
        return self.scalars.construct_object(node)


def load_text(text: str, file: str) -> Document:
    doc = Document(data=None, file=file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(file, line, "", f"malformed YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, "", f"malformed YAML: {exc}") from exc
    if node is None:
        raise ConfigError(file, None, "", "the file is empty")
    try:
        doc.data = _Builder(doc).build(node, "")
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ConfigError(file, mark.line + 1 if mark else None, "",
                          f"invalid value: {exc.problem}") from exc
    return doc


def load_file(path: str | os.PathLike[str]) -> Document:
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ConfigError(name, None, "", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(name, None, "", "is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(name, None, "", f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(name, line, "", "not valid UTF-8") from None
    return load_text(text, name)

"""YAML parsing that remembers where every key and value came from.

PyYAML's safe loader gives plain data but forgets positions, and silently keeps the last of
two equal keys. We compose the node tree once, construct the data from it, and keep the tree
so positions can be indexed when (and only when) there is a problem to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml's parser is several times faster; the pure-Python one gives the same result.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"

PathElem = str | int
Path = tuple[PathElem, ...]
Pos = tuple[int, int]
"""1-based (line, column)."""


@dataclass(frozen=True)
class Duplicate:
    path: Path
    pos: Pos
    first: Pos


@dataclass
class Positions:
    """Where each value (and each mapping key) starts, by its path in the data."""

    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> Pos | None:
        """The position of `path`, or of its nearest ancestor that has one.

        `key=True` prefers the key (`fit:`) over the value, which for a block mapping
        starts on the next line.
        """
        while True:
            if key and path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]


@dataclass
class Document:
    data: Any
    node: Node | None
    duplicates: list[Duplicate]
    _positions: Positions | None = None

    @property
    def positions(self) -> Positions:
        if self._positions is None:
            self._positions = _index(self.node)
        return self._positions


def _pos(node: Node) -> Pos:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _KeyReader:
    """Turns scalar key nodes into the Python keys the data will have (`1:` is an int)."""

    def __init__(self) -> None:
        self._constructor = yaml.constructor.SafeConstructor()

    def __call__(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            return None
        try:
            key = self._constructor.construct_object(node)
            hash(key)
        except Exception:
            return None
        return key


def parse(text: str) -> Document:
    """Parse one YAML document; raises `yaml.YAMLError` (with a mark) on bad syntax."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, None, [])
        duplicates = _find_duplicates(node)
        # Constructing flattens merge keys (`<<: *base`) in place; duplicates are found first
        # so that a key overriding a merged one is not mistaken for a duplicate.
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return Document(data, node, duplicates)


def _find_duplicates(root: Node) -> list[Duplicate]:
    read_key = _KeyReader()
    found: list[Duplicate] = []
    active: set[int] = set()

    def walk(node: Node, path: Path) -> None:
        if id(node) in active:
            return
        active.add(id(node))
        if isinstance(node, MappingNode):
            seen: dict[Any, Pos] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = read_key(key_node)
                if key is None:
                    continue
                if key in seen:
                    found.append(Duplicate((*path, key), _pos(key_node), seen[key]))
                else:
                    seen[key] = _pos(key_node)
                walk(value_node, (*path, key))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))
        active.discard(id(node))

    walk(root, ())
    return found


def _index(root: Node | None) -> Positions:
    positions = Positions()
    if root is None:
        return positions
    read_key = _KeyReader()
    active: set[int] = set()

    def walk(node: Node, path: Path) -> None:
        # Later entries win, as they do in the data (duplicates, keys overriding a merge).
        positions.values[path] = _pos(node)
        if id(node) in active:
            return
        active.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = read_key(key_node)
                if key is None:
                    continue
                positions.keys[(*path, key)] = _pos(key_node)
                walk(value_node, (*path, key))
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))
        active.discard(id(node))

    walk(root, ())
    return positions

"""Reading a mapping file's YAML within bounds: its size, its nesting, and what its aliases
expand to.

Aliases are kept (ops use anchors to share parameters between rules), but a "billion laughs"
file, nine levels of ten aliases each, expands to 10^9 nodes when the rules are checked: it
grew a reloading daemon to gigabytes. Each node's expanded size is counted once while
composing, so the check itself costs no more than the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

MAX_FILE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 200_000  # every rule of a large install fits many times over
MAX_ALIASES = 1_000
MAX_DEPTH = 100


class YamlLimit(ValueError):
    """The file is over one of the bounds above."""


class _BoundedComposer(Composer):
    def compose_document(self) -> Any:
        self.alias_count = 0
        node = super().compose_document()
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            raise YamlLimit(
                f"the file expands to {size if size < 10**12 else 'over 10^12'} YAML nodes "
                f"through its aliases (limit {MAX_EXPANDED_NODES}): write the values out "
                "or use fewer nested anchors"
            )
        return node

    def return_alias(self, node: Any) -> Any:
        self.alias_count = getattr(self, "alias_count", 0) + 1
        if self.alias_count > MAX_ALIASES:
            raise YamlLimit(f"more than {MAX_ALIASES} aliases (*name) in one file")
        return super().return_alias(node)


def _expanded_size(node: Node, seen: dict[int, int]) -> int:
    """Nodes in the tree once every alias is replaced by a copy (each node counted once,
    so an alias to an anchor costs a look-up here, not a walk)."""
    known = seen.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, seen) + _expanded_size(value, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            size += _expanded_size(item, seen)
    seen[id(node)] = size
    return size


def read_mapping_text(path: Path) -> str:
    """The file's text; YamlLimit when it is bigger than MAX_FILE_BYTES (OSError passes)."""
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise YamlLimit(f"the file is over {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlLimit(f"the file is not UTF-8 text (byte {exc.start})") from None


def load_bounded(text: str) -> Any:
    """Round-trip YAML (line numbers kept) within the bounds above."""
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_DEPTH
    try:
        return yaml.load(text)
    except RecursionError:
        raise YamlLimit(f"the file nests deeper than {MAX_DEPTH} levels") from None

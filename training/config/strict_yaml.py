"""YAML that users give (config files, search spaces, `--set` values), read strictly.

PyYAML's SafeLoader is safe from code execution but not from three things a config file
should never do: give a key twice in one mapping (the last one silently wins), expand a
few hundred bytes of aliases into gigabytes (a "billion laughs" bomb, expanded as soon as
a value is checked or printed), and be megabytes long (no config is; parsing one that big
takes minutes). This loader refuses each with a YAMLError that has a line and column.
"""

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_NODES = 10_000  # values after aliases are expanded; a config has about 100, a search space fewer
MAX_FILE_BYTES = 1_000_000  # a config file is a few KB


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys and alias expansion beyond MAX_NODES."""

    def compose_node(self, parent, index):
        node = super().compose_node(parent, index)
        if not hasattr(node, "expanded"):  # an alias returns its anchor's node, already sized
            if isinstance(node, yaml.SequenceNode):
                node.expanded = 1 + sum(child.expanded for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                node.expanded = 1 + sum(k.expanded + v.expanded for k, v in node.value)
            else:
                node.expanded = 1
            if node.expanded > MAX_NODES:
                raise ComposerError(None, None, f"its aliases (*name) expand to more than "
                                    f"{MAX_NODES:,} values; write the values out", node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        first = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if seen is not None:
                raise ConstructorError(None, None, f"key {key!r} is given twice in one mapping "
                                       f"(first at line {seen.line + 1})", key_node.start_mark)
            first[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def load(stream):
    """The value of YAML text or an open file `stream`, read with StrictLoader."""
    return yaml.load(stream, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)

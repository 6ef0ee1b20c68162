"""A YAML reader that refuses what PyYAML silently accepts: duplicate keys, undecodable bytes.

PyYAML keeps the last of two equal keys, so a pasted section silently replaces another one. The
document is composed into nodes first, duplicates are looked for with their key paths and line
numbers, and only a clean tree is constructed. Every problem becomes one
`<source>: <key path>: <problem>` line, never a traceback.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlError(Exception):
    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def decode(raw: bytes, source: str) -> str:
    """UTF-8 text; a BOM is accepted (editors on Windows write one), other encodings are refused."""
    text_bytes = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return text_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = text_bytes[: exc.start].count(b"\n") + 1
        raise YamlError([f"{source}: line {line}: not UTF-8 (byte 0x{text_bytes[exc.start]:02x}): "
                            f"save the file as UTF-8"]) from None


def load(text: str, source: str) -> Any:
    """The document's data; CRLF line ends are fine, tabs and duplicate keys are refused."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlError([_syntax(exc, text, source)]) from None
    if node is None:
        return None
    duplicates = list(_duplicates(node, ""))
    if duplicates:
        raise YamlError([f"{source}: {line}" for line in duplicates])
    try:
        return yaml.SafeLoader(text).construct_document(node)
    except yaml.YAMLError as exc:  # e.g. an unhashable key, a bad timestamp
        raise YamlError([_syntax(exc, text, source)]) from None


def _syntax(exc: yaml.YAMLError, text: str, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]:
        problem += " (line has a tab character: YAML indents with spaces only)"
    return f"{source}: not valid YAML{where}: {problem}"


def _join(path: str, key: str) -> str:
    # Under `config`, key paths read as the error lines of the schema do: `refarch:network.cidr`.
    if path in ("", "config"):
        return key
    return f"{path}.{key}"


def _duplicates(node: yaml.Node, path: str):
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = _join(path, str(key))
            if key is not None:
                line = key_node.start_mark.line + 1
                if key in seen:
                    yield (f"{child}: duplicate key (lines {seen[key]} and {line}): YAML would keep only the "
                           f"last one; merge them")
                else:
                    seen[key] = line
            yield from _duplicates(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicates(item, f"{path}[{i}]")

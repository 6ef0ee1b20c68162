"""The diagram's graph (nodes, edges, the resources each node stands for) and its Mermaid text.

Kept apart from `diagram`, which decides from the synth what the nodes and edges are: this module
only holds them and writes them out, quoting every label so no resource name can break the chart.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

SUBGRAPH_ORDER = ("edge", "client", "auth", "gateway", "services", "flags", "database", "cache", "analytics", "monitoring",
                  "network")


@dataclass
class Node:
    id: str
    label: str
    layer: str
    shape: str = "box"  # box | round | circle | cylinder


@dataclass
class Edge:
    src: str
    dst: str
    labels: list[str] = field(default_factory=list)
    dotted: bool = False


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str], Edge] = field(default_factory=dict)
    by_urn: dict[str, str] = field(default_factory=dict)  # resource URN -> node id

    def add_node(self, key: str, label: str, layer: str, shape: str = "box", urns: tuple[str, ...] = ()) -> str:
        node_id = unique_id(key, self.nodes)
        self.nodes[node_id] = Node(node_id, label, layer, shape)
        for urn in urns:
            self.by_urn[urn] = node_id
        return node_id

    def connect(self, src: str | None, dst: str | None, label: str = "", dotted: bool = False) -> None:
        if src is None or dst is None or src == dst:
            return
        edge = self.edges.setdefault((src, dst), Edge(src, dst, dotted=dotted))
        edge.dotted = edge.dotted and dotted  # a solid reference wins over a placement line
        if label and label not in edge.labels:
            edge.labels.append(label)

    def has_edge(self, src: str, dst: str) -> bool:
        return (src, dst) in self.edges


def render(graph: Graph) -> str:
    lines = ["flowchart LR"]
    by_layer: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes.values():
        by_layer[node.layer].append(node)
    for node in by_layer.pop("internet", []):
        lines.append(f"  {_shape(node)}")
    order = sorted(by_layer, key=lambda layer: (SUBGRAPH_ORDER.index(layer) if layer in SUBGRAPH_ORDER else 99, layer))
    for layer in order:
        lines.append(f'  subgraph layer_{_sanitize(layer)}["{_escape(layer)}"]')
        lines += [f"    {_shape(node)}" for node in by_layer[layer]]
        lines.append("  end")
    for edge in graph.edges.values():
        arrow = "-.->" if edge.dotted else "-->"
        text = ", ".join(sorted(edge.labels, key=_label_key))
        lines.append(f'  {edge.src} {arrow}|"{_escape(text)}"| {edge.dst}' if text else f"  {edge.src} {arrow} {edge.dst}")
    return "\n".join(lines) + "\n"


def _label_key(label: str) -> tuple[int, str]:
    # Ports in numeric order (:80 before :443), words after them.
    digits = re.match(r"^:(\d+)", label)
    return (int(digits.group(1)) if digits else 1 << 20, label)


def _shape(node: Node) -> str:
    label = _escape(node.label)
    return {
        "circle": f'{node.id}(("{label}"))',
        "round": f'{node.id}("{label}")',
        "cylinder": f'{node.id}[("{label}")]',
    }.get(node.shape, f'{node.id}["{label}"]')


def label_lines(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def _escape(text: str) -> str:
    # Inside a quoted Mermaid label: `#` (Mermaid's entity prefix), quotes and angle brackets
    # become entity codes so a name can neither end the label nor inject HTML; newlines become <br/>.
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("\n", "<br/>")


def _sanitize(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def unique_id(key: str, taken: dict[str, Node]) -> str:
    # Letters, digits and underscores only; a kind prefix keeps ids off Mermaid keywords (`end`, `graph`).
    base = _sanitize(key)
    node_id, n = base, 2
    while node_id in taken:
        node_id, n = f"{base}_{n}", n + 1
    return node_id

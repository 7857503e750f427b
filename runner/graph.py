"""The canvas as a graph: who listens to which channel of whom, and who is upstream of whom."""

from __future__ import annotations

from collections import defaultdict, deque
from functools import cached_property

from daytonaflow.runner.canvas import Canvas, Node


class CanvasGraph:
    """Adjacency views of a canvas; edges naming unknown nodes are skipped (validation reports them)."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.nodes: dict[str, Node] = {}
        for node in canvas.spec.nodes:
            self.nodes.setdefault(node.id, node)
        self._listeners: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._parents: dict[str, set[str]] = defaultdict(set)
        self._children: dict[str, set[str]] = defaultdict(set)
        for edge in canvas.spec.edges:
            if edge.source_id in self.nodes and edge.target_id in self.nodes:
                targets = self._listeners[(edge.source_id, edge.channel)]
                if edge.target_id not in targets:
                    targets.append(edge.target_id)
                self._parents[edge.target_id].add(edge.source_id)
                self._children[edge.source_id].add(edge.target_id)

    def listeners(self, source_id: str, channel: str) -> list[str]:
        """Nodes that run when ``source_id`` emits on ``channel``, in edge order."""
        return list(self._listeners.get((source_id, channel), ()))

    @cached_property
    def cycle_nodes(self) -> list[str]:
        """Nodes on or behind a cycle (empty when the graph is acyclic), in canvas order."""
        indegree = {node_id: len(self._parents.get(node_id, ())) for node_id in self.nodes}
        ready = deque(node_id for node_id, degree in indegree.items() if degree == 0)
        while ready:
            node_id = ready.popleft()
            for child in self._children.get(node_id, ()):
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        return [node_id for node_id, degree in indegree.items() if degree > 0]

    def ancestors(self, node_id: str) -> set[str]:
        """Every node with a path to ``node_id`` (not including itself unless on a cycle)."""
        seen: set[str] = set()
        pending = list(self._parents.get(node_id, ()))
        while pending:
            parent = pending.pop()
            if parent not in seen:
                seen.add(parent)
                pending.extend(self._parents.get(parent, ()))
        return seen

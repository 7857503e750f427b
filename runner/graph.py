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
        nodes = self.nodes
        for node in canvas.spec.nodes:
            nodes.setdefault(node.id, node)
        # Ordered sets (dicts) of targets: an edge repeated is one listener, found in O(1).
        self._listeners: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
        self._parents: dict[str, set[str]] = defaultdict(set)
        self._children: dict[str, set[str]] = defaultdict(set)
        self._sources: dict[str, dict[str, None]] = defaultdict(dict)
        #: (node id, key) -> whether a node upstream of it has that id, name or component
        self._key_upstream: dict[tuple[str, str], bool] = {}
        listeners, parents, children = self._listeners, self._parents, self._children
        for edge in canvas.spec.edges:
            source, target = edge.source_id, edge.target_id
            if source in nodes and target in nodes:
                listeners[(source, edge.channel)][target] = None
                parents[target].add(source)
                self._sources[target][source] = None
                children[source].add(target)

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

    def has_upstream(self, node_id: str, key: str) -> bool:
        """Whether a node with a path to ``node_id`` has ``key`` as its id, name or component.

        Searches up from ``node_id`` and stops at the first such node, or at a node already known
        to have one upstream; a node already known to have none is not searched past. Every node
        of a 10,000-node chain naming the trigger then costs O(1), not a walk up the chain.
        """
        known = self._key_upstream.get((node_id, key))
        if known is not None:
            return known
        #: each node reached -> the node it was reached from (to mark the path found)
        reached_from: dict[str, str] = {}
        pending = deque(self._parents.get(node_id, ()))
        for parent in pending:
            reached_from[parent] = node_id
        while pending:
            current = pending.popleft()
            node = self.nodes[current]
            if key in (node.id, node.name, node.component) or self._key_upstream.get((current, key)):
                self._mark_found(current, node_id, key, reached_from)
                return True
            if self._key_upstream.get((current, key)) is False:
                continue  # nothing upstream of it has the key: no need to look past it
            for parent in self._parents.get(current, ()):
                if parent not in reached_from:
                    reached_from[parent] = current
                    pending.append(parent)
        # Searched to the top: nothing upstream of any node reached has the key either.
        for reached in (*reached_from, node_id):
            self._key_upstream.setdefault((reached, key), False)
        return False

    def _mark_found(self, found: str, node_id: str, key: str, reached_from: dict[str, str]) -> None:
        """Remember ``key`` as upstream of every node on the path from ``found`` down to ``node_id``."""
        below = reached_from[found]
        while True:
            self._key_upstream[(below, key)] = True
            if below == node_id:
                return
            below = reached_from[below]

    def sources(self, node_id: str) -> tuple[str, ...]:
        """The distinct nodes with an edge into ``node_id``, in edge order."""
        return tuple(self._sources.get(node_id, ()))

    def parents(self, node_id: str) -> set[str]:
        """Nodes with an edge into ``node_id``."""
        return set(self._parents.get(node_id, ()))

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

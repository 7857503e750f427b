// The graph pane shared by the editor (editable) and the run view (read-only).
import {
  Background,
  BackgroundVariant,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  applyEdgeChanges,
  applyNodeChanges,
  useNodesInitialized,
  useReactFlow,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
  type OnDelete,
} from "@xyflow/react";
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState, type DragEvent } from "react";
import type { PaletteEntry } from "../palette";
import type { CanvasDoc } from "../types";
import { buildEdges, buildNodes, type RunOverlay } from "./convert";
import { accentColour, nodeTypes, type CardData } from "./nodes";

export const DRAG_TYPE = "application/x-daytonaflow-component";

/** Lets the top bar and the palette reach the graph (fit, the viewport centre) without prop chains. */
export const graphHandle: {
  fit: () => void;
  centre: () => { x: number; y: number };
} = { fit: () => undefined, centre: () => ({ x: 0, y: 0 }) };

export interface GraphProps {
  doc: CanvasDoc;
  byName: Map<string, PaletteEntry>;
  issueCounts: Map<string, number>;
  autoPositions: Record<string, { x: number; y: number }>;
  selected: string | null;
  generation: number;
  overlay: RunOverlay | null;
  readOnly: boolean;
  onSelect: (id: string | null) => void;
  onMove?: (positions: Map<string, { x: number; y: number }>) => void;
  onConnect?: (source: string, channel: string, target: string) => void;
  onDelete?: (nodeIds: Set<string>, edgeKeys: Set<string>) => void;
  onDrop?: (component: string, position: { x: number; y: number }) => void;
}

function minimapColour(node: Node): string {
  const data = node.data as CardData;
  return accentColour(data.entry?.manifest.color);
}

function GraphInner(props: GraphProps) {
  const { doc, byName, issueCounts, autoPositions, selected, generation, overlay, readOnly } = props;
  const flow = useReactFlow();
  // Built during the first render already: no empty pass before the document shows.
  const [nodes, setNodes] = useState<Node<CardData>[]>(() => buildNodes(doc, byName, issueCounts, autoPositions, [], overlay, selected));
  const [edges, setEdges] = useState<Edge[]>(() => buildEdges(doc, overlay?.taken ?? null, []));
  const callbacks = useRef(props);
  callbacks.current = props;

  useLayoutEffect(() => {
    setNodes((previous) => buildNodes(doc, byName, issueCounts, autoPositions, previous, overlay, selected));
  }, [doc, byName, issueCounts, autoPositions, overlay, selected]);

  useLayoutEffect(() => {
    setEdges((previous) => buildEdges(doc, overlay?.taken ?? null, previous));
  }, [doc, overlay]);

  useEffect(() => {
    graphHandle.fit = () => void flow.fitView({ padding: 0.2, duration: 200 });
    graphHandle.centre = () => {
      const pane = document.querySelector('[data-testid="canvas"]')?.getBoundingClientRect();
      if (!pane) return { x: 0, y: 0 };
      return flow.screenToFlowPosition({ x: pane.left + pane.width / 2, y: pane.top + pane.height / 2 });
    };
  }, [flow]);

  // The first document is fitted by the fitView prop; one opened later, once its nodes are measured.
  const initialised = useNodesInitialized();
  const fitted = useRef(generation);
  useEffect(() => {
    if (fitted.current === generation || !initialised) return;
    fitted.current = generation;
    void flow.fitView({ padding: 0.2, maxZoom: 1.2 });
  }, [generation, initialised, flow]);

  const onNodesChange = useCallback((changes: NodeChange<Node<CardData>>[]) => {
    // Removals go through onDelete (one undoable document edit); the rest is local view state.
    const local = changes.filter((change) => change.type !== "remove");
    if (local.length > 0) setNodes((current) => applyNodeChanges(local, current));
    for (const change of changes) {
      if (change.type === "select" && change.selected) callbacks.current.onSelect(change.id);
    }
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    // Selection lives on the edges so that Delete can remove the selected one.
    const local = changes.filter((change) => change.type !== "remove");
    if (local.length > 0) setEdges((current) => applyEdgeChanges(local, current));
  }, []);

  const onNodeDragStop = useCallback((_event: unknown, _node: Node, dragged: Node[]) => {
    callbacks.current.onMove?.(new Map(dragged.map((node) => [node.id, node.position])));
  }, []);

  const onConnect = useCallback((connection: Connection) => {
    if (!connection.source || !connection.target) return;
    callbacks.current.onConnect?.(connection.source, connection.sourceHandle || "default", connection.target);
  }, []);

  const onDelete: OnDelete = useCallback(({ nodes: gone, edges: cut }) => {
    callbacks.current.onDelete?.(new Set(gone.map((node) => node.id)), new Set(cut.map((edge) => edge.id)));
  }, []);

  const onPaneClick = useCallback(() => callbacks.current.onSelect(null), []);
  const onNodeClick = useCallback((_event: unknown, node: Node) => callbacks.current.onSelect(node.id), []);

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(DRAG_TYPE)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }, []);

  const onDrop = useCallback(
    (event: DragEvent) => {
      const component = event.dataTransfer.getData(DRAG_TYPE);
      if (!component) return;
      event.preventDefault();
      const position = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      callbacks.current.onDrop?.(component, { x: position.x - 110, y: position.y - 30 });
    },
    [flow],
  );

  return (
    <div className="graph" data-testid="canvas" onDragOver={onDragOver} onDrop={onDrop}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeDragStop={onNodeDragStop}
        onConnect={onConnect}
        onDelete={onDelete}
        onNodeClick={onNodeClick}
        onPaneClick={onPaneClick}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        edgesFocusable={!readOnly}
        deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
        multiSelectionKeyCode={readOnly ? null : "Shift"}
        fitView
        fitViewOptions={{ padding: 0.2, maxZoom: 1.2 }}
        minZoom={0.1}
        maxZoom={2}
        proOptions={{ hideAttribution: true }}
        defaultEdgeOptions={{ type: "default" }}
      >
        <Background variant={BackgroundVariant.Dots} gap={18} size={1.2} color="#cbd5e1" />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable nodeColor={minimapColour} nodeStrokeWidth={0} />
      </ReactFlow>
    </div>
  );
}

export const Graph = memo(function Graph(props: GraphProps) {
  return (
    <ReactFlowProvider>
      <GraphInner {...props} />
    </ReactFlowProvider>
  );
});

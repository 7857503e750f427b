"""The hello canvas built by hand in the browser: palette, handles, forms, save, reload, run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ui_support import (
    HELLO,
    NODE_IDS_JS,
    UiServer,
    add_from_palette,
    by_testid,
    connect,
    fit,
    node_ids,
    open_path,
    save_as,
    select_node,
    set_field,
    start_run,
    wait_for_node_state,
    wait_for_run_status,
)

from daytonaflow.runner import load_canvas

pytestmark = [pytest.mark.browser, pytest.mark.sandbox]


def _defaults(server: UiServer) -> dict[str, dict[str, Any]]:
    """Each component's top-level field defaults, from the palette the form is generated from."""
    with server.client() as api:
        palette = api.get("/api/palette").json()
    return {
        manifest["name"]: {
            field["name"]: field["default"] for field in manifest.get("fields", []) if "default" in field
        }
        for manifest in palette["components"] + palette["triggers"]
    }


def test_hello_built_from_the_palette_saves_reloads_and_runs_to_success(
    page: Any, ui_server: UiServer, tmp_path: Path, shot: Any
) -> None:
    hello = load_canvas(HELLO)
    by_testid(page, "palette").wait_for()
    by_testid(page, "canvas").wait_for()
    # A new canvas holds its Manual Run trigger only; built from nothing, that goes too.
    for node_id in node_ids(page):
        select_node(page, node_id)
        by_testid(page, "delete-node").click()
    page.wait_for_function(f"() => ({NODE_IDS_JS})().length === 0")

    built: dict[str, str] = {}  # hello's node id -> the id the editor gave the new node
    for node in hello.spec.nodes:
        built[node.id] = add_from_palette(page, node.component)
        select_node(page, built[node.id])
        by_testid(page, "node-name").fill(node.name)
        for name, value in node.configuration.items():
            set_field(page, name, value)
    fit(page)
    for edge in hello.spec.edges:
        connect(page, built[edge.source_id], edge.channel, built[edge.target_id])
    select_node(page, built["say-hello"])
    shot(page, "editor-built")

    saved = tmp_path / "built.yaml"
    assert save_as(page, saved)["written"] is True
    checked = ui_server.cli("validate", str(saved))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The saved file is hello's graph: same names, components, configuration and edges.
    canvas = load_canvas(saved)
    defaults = _defaults(ui_server)
    for node in hello.spec.nodes:
        made = canvas.node(built[node.id])
        assert (made.name, made.component, made.type) == (node.name, node.component, node.type)
        for key, value in node.configuration.items():
            assert made.configuration.get(key) == value, (node.id, key, made.configuration.get(key))
        # A form may write a field's default; it may write nothing else.
        extra = {k: v for k, v in made.configuration.items() if k not in node.configuration}
        assert all(defaults[node.component].get(k) == v for k, v in extra.items()), (node.id, extra)
    wanted = {(built[e.source_id], e.channel, built[e.target_id]) for e in hello.spec.edges}
    assert {(e.source_id, e.channel, e.target_id) for e in canvas.spec.edges} == wanted

    page.reload()
    open_path(page, saved)
    by_testid(page, f"node-{built['say-hello']}").wait_for()
    start_run(page)
    assert wait_for_run_status(page, ["succeeded", "failed", "cancelled"]) == "succeeded"
    for node in hello.spec.nodes:
        wait_for_node_state(page, built[node.id], ["emitted"], timeout_ms=10_000)
    success = by_testid(page, f"edge-{built['say-hello']}-success-{built['delete-sandbox']}")
    assert success.get_attribute("data-taken") == "true"
    shot(page, "run-built")

"""Execution: events flow along the channel they were emitted on, with the run's chain in scope."""

from __future__ import annotations

import json
from pathlib import Path

from run_fakes import FAKE_COMPONENTS, FakeBackend, make_canvas

from daytonaflow.runner import Engine, RunStore, RunUpdate, parse_canvas
from daytonaflow.secrets import FileSecretsProvider


def executed_nodes(store: RunStore, run_id: str) -> list[str]:
    return [e.node_id for e in store.executions(run_id) if e.node_id != "start"]


async def test_a_node_runs_when_its_upstream_emits_and_the_run_succeeds(
    engine: Engine, store: RunStore
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [{"id": "hello", "component": "test.echo", "configuration": {"value": "hi"}}],
            [("start", "hello")],
        )
    )
    record = await engine.run(canvas)
    assert record.status == "succeeded"
    events = {event.node_id: event for event in store.events(record.id)}
    assert events["hello"].event["type"] == "test.value"
    assert events["hello"].event["data"] == {"value": "hi"}
    assert events["hello"].channel == "default"


async def test_only_the_edge_on_the_emitted_channel_is_followed(engine: Engine, store: RunStore) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "branch", "component": "test.branch", "configuration": {"ok": False}},
                {"id": "on-success", "component": "test.echo", "configuration": {"value": "yes"}},
                {"id": "on-failure", "component": "test.echo", "configuration": {"value": "no"}},
            ],
            [("start", "branch"), ("branch", "on-success", "success"), ("branch", "on-failure", "failed")],
        )
    )
    record = await engine.run(canvas)
    assert record.status == "succeeded"
    assert executed_nodes(store, record.id) == ["branch", "on-failure"]
    branch = next(e for e in store.executions(record.id) if e.node_id == "branch")
    assert branch.channel == "failed"


async def test_one_channel_fans_out_to_every_listener(engine: Engine, store: RunStore) -> None:
    canvas = parse_canvas(
        make_canvas(
            [{"id": f"leaf{i}", "component": "test.echo", "configuration": {"value": i}} for i in range(3)],
            [("start", f"leaf{i}") for i in range(3)],
        )
    )
    record = await engine.run(canvas)
    assert sorted(executed_nodes(store, record.id)) == ["leaf0", "leaf1", "leaf2"]


async def test_expressions_see_upstream_events_previous_and_root(engine: Engine, store: RunStore) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "first", "name": "First", "component": "test.echo", "configuration": {"value": "one"}},
                {
                    "id": "second",
                    "component": "test.echo",
                    "configuration": {"value": "{{ previous().data.value }}-2"},
                },
                {
                    "id": "third",
                    "component": "test.echo",
                    "configuration": {
                        "value": '<< $["First"].data.value >>/{{ root().data.who }}'
                        "/{{ previous().data.value }}"
                    },
                },
            ],
            [("start", "first"), ("first", "second"), ("second", "third")],
        )
    )
    record = await engine.run(canvas, {"who": "ada"})
    assert record.status == "succeeded"
    data = {event.node_id: event.event["data"] for event in store.events(record.id)}
    assert data["start"] == {"who": "ada"}
    assert data["second"] == {"value": "one-2"}
    assert data["third"] == {"value": "one/ada/one-2"}


async def test_the_start_trigger_emits_a_manual_run_event_with_the_input(
    engine: Engine, store: RunStore
) -> None:
    record = await engine.run(parse_canvas(make_canvas([], [])), {"n": 1})
    (event,) = store.events(record.id)
    assert event.event["type"] == "manual.run"
    assert event.event["data"] == {"n": 1}
    assert event.event["timestamp"].endswith("Z")


async def test_a_long_wait_is_a_scheduled_check_resumed_from_metadata(
    engine: Engine, store: RunStore
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [{"id": "poll", "component": "test.poll", "configuration": {"polls": 3, "every": 0.001}}],
            [("start", "poll")],
        )
    )
    record = await engine.run(canvas)
    assert record.status == "succeeded"
    poll = next(e for e in store.executions(record.id) if e.node_id == "poll")
    assert poll.metadata == {"checks": 3}
    assert store.events(record.id)[-1].event["data"] == {"value": 3}


async def test_a_failing_node_fails_the_run_with_its_message(
    engine: Engine, store: RunStore, updates: list[RunUpdate]
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {"id": "fail", "component": "test.fail", "configuration": {"message": "no luck"}},
                {"id": "after", "component": "test.echo", "configuration": {"value": 1}},
            ],
            [("start", "fail"), ("fail", "after")],
        )
    )
    record = await engine.run(canvas)
    assert record.status == "failed"
    assert record.error == 'node "fail": no luck'
    assert executed_nodes(store, record.id) == ["fail"]
    failed = [u for u in updates if u.kind == "node.failed"]
    assert [(u.node_id, u.error) for u in failed] == [("fail", "no luck")]


async def test_an_unexpected_exception_fails_the_node_with_its_type(engine: Engine) -> None:
    canvas = parse_canvas(make_canvas([{"id": "crash", "component": "test.crash"}], [("start", "crash")]))
    record = await engine.run(canvas)
    assert record.status == "failed"
    assert record.error == 'node "crash": RuntimeError: boom'


async def test_an_expression_that_fails_at_run_time_fails_the_node(engine: Engine) -> None:
    canvas = parse_canvas(
        make_canvas(
            [
                {
                    "id": "echo",
                    "component": "test.echo",
                    "configuration": {"value": "{{ root().data.missing }}"},
                }
            ],
            [("start", "echo")],
        )
    )
    record = await engine.run(canvas, {"present": 1})
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.startswith('node "echo": node "echo"') or 'node "echo"' in record.error
    assert "missing" in record.error


async def test_updates_report_each_node_with_channel_and_event(
    engine: Engine, updates: list[RunUpdate], backend: FakeBackend
) -> None:
    canvas = parse_canvas(
        make_canvas(
            [{"id": "echo", "component": "test.echo", "configuration": {"value": "x"}}], [("start", "echo")]
        )
    )
    record = await engine.run(canvas)
    kinds = [(u.kind, u.node_id) for u in updates]
    assert kinds == [
        ("run.started", None),
        ("node.emitted", "start"),
        ("node.started", "echo"),
        ("node.emitted", "echo"),
        ("run.finished", None),
    ]
    emitted = updates[3]
    assert emitted.channel == "default"
    assert emitted.event is not None and emitted.event["data"] == {"value": "x"}
    assert updates[-1].status == record.status == "succeeded"


async def test_without_input_the_first_start_template_is_the_payload(engine: Engine, store: RunStore) -> None:
    document = make_canvas([], [])
    document["spec"]["nodes"][0]["configuration"] = {"templates": [{"name": "Demo", "payload": {"n": 7}}]}
    record = await engine.run(parse_canvas(document))
    assert store.events(record.id)[0].event["data"] == {"n": 7}
    explicit = await engine.run(parse_canvas(document), {"n": 8})
    assert store.events(explicit.id)[0].event["data"] == {"n": 8}


REVEAL_SECRET = make_canvas(
    [{"id": "reveal", "component": "test.secret", "configuration": {"secret": "api", "key": "TOKEN"}}],
    [("start", "reveal")],
)


async def test_components_read_secrets_from_the_engine_provider(store: RunStore, tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"api": {"TOKEN": "s3cret"}}))
    engine = Engine(store, registry=FAKE_COMPONENTS, secrets=FileSecretsProvider(secrets_file))
    record = await engine.run(parse_canvas(REVEAL_SECRET))
    assert store.events(record.id)[-1].event["data"] == {"value": "s3cret"}


async def test_without_a_provider_a_secret_lookup_fails_the_node_clearly(engine: Engine) -> None:
    record = await engine.run(parse_canvas(REVEAL_SECRET))
    assert record.status == "failed"
    assert (
        record.error
        == 'node "reveal": secret "api" (key "TOKEN") is not configured: no secrets provider is set'
    )

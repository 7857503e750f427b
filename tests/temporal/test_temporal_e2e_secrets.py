"""Secrets are resolved on the worker: the Temporal history of a run whose sandbox gets a secret holds
neither the value nor its base64 anywhere (inputs, results, signals, failures), while the command
really had it (it reports the value's length and hash, never the value)."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from temporal_testkit import Rig, command_canvas, wait_ended, workflow_id

from daytonaflow.secrets import env_variable_name

pytestmark = pytest.mark.sandbox
_RUN_SECONDS = 300.0
_SECRET, _KEY = "api-key-secret", "API_KEY"
_COMMAND = 'echo "length=${#API_KEY} sha256=$(printf %s "$API_KEY" | sha256sum | cut -d " " -f 1)"'


def _base64_forms(value: bytes) -> list[bytes]:
    """The base64 text of ``value`` at each of the three alignments it can have inside a larger
    base64-encoded payload (only the characters that depend on ``value`` alone)."""
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value)
        first_group = -(-offset // 3)
        last_group = (offset + len(value)) // 3
        forms.append(encoded[first_group * 4 : last_group * 4])
    return forms


def _found_in(blobs: list[bytes], needles: list[bytes]) -> list[bytes]:
    return [needle for needle in needles if any(needle in blob for blob in blobs)]


async def test_the_history_of_a_run_using_a_secret_holds_no_secret_value(rig: Rig) -> None:
    value = f"s3cret-{uuid.uuid4().hex}"
    rig.workers.start(env={env_variable_name(_SECRET, _KEY): value})
    secret_env = {"name": "API_KEY", "type": "env", "value": {"secret": _SECRET, "key": _KEY}}
    canvas = command_canvas(rig.label, _COMMAND, create={"secrets": [secret_env]})
    run_id = await rig.runs.start(canvas)
    await wait_ended(rig.client, run_id, timeout=_RUN_SECONDS)
    snapshot = await rig.runs.get(run_id)
    assert snapshot.record.status == "succeeded", snapshot.record.error
    (ran,) = [e.event["data"] for e in snapshot.events(run_id) if e.node_id == "run-command"]
    digest = hashlib.sha256(value.encode()).hexdigest()
    assert ran["result"].strip() == f"length={len(value)} sha256={digest}"

    history = await rig.client.get_workflow_handle(workflow_id(run_id)).fetch_history()
    blobs = [event.SerializeToString() for event in history.events] + [history.to_json().encode()]
    # The search sees inside payloads: the sandbox id, which the history does carry, is found.
    (created,) = [e.event["data"]["id"] for e in snapshot.events(run_id) if e.node_id == "create-sandbox"]
    assert _found_in(blobs, [created.encode()]) == [created.encode()]
    needles = [value.encode(), *_base64_forms(value.encode())]
    assert _found_in(blobs, needles) == []

"""Volumes and snapshots through the official Python SDK: ``daytona.volume``, ``daytona.snapshot``,
``Sandbox.create_snapshot`` and creates naming them, against a real ``daytonaflow serve``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daytona import (
    CreateSandboxFromSnapshotParams,
    CreateSnapshotParams,
    Daytona,
    DaytonaError,
    DaytonaNotFoundError,
    Image,
    Sandbox,
    VolumeMount,
)
from daytona_api_client.exceptions import ApiException, NotFoundException
from package_index import MODULE, PACKAGE, VALUE, served_index

# Releases before the SDK wrapped its volume service's errors (0.129 among them) raise the API
# client's own exceptions: the server's answer reaches the caller either way.
_REFUSED = (DaytonaError, ApiException)
_NOT_FOUND = (DaytonaNotFoundError, NotFoundException)


@pytest.fixture
def made(client: Daytona) -> Iterator[Callable[..., Sandbox]]:
    sandboxes: list[Sandbox] = []

    def create(**params: object) -> Sandbox:
        sandbox = client.create(CreateSandboxFromSnapshotParams(**params))  # type: ignore[arg-type]
        sandboxes.append(sandbox)
        return sandbox

    yield create
    for sandbox in sandboxes:
        with contextlib.suppress(DaytonaNotFoundError):  # the test deleted it itself
            client.delete(sandbox)


def test_a_volume_made_with_the_sdk_is_shared_and_kept_until_deleted(
    client: Daytona, made: Callable[..., Sandbox]
) -> None:
    name = f"sdk-volume-{uuid.uuid4().hex[:8]}"
    volume = client.volume.create(name)
    assert (volume.state, client.volume.get(name).id) == ("ready", volume.id)
    writer = made(volumes=[VolumeMount(volume_id=volume.id, mount_path="/data")])
    writer.process.exec("echo via-sdk > /data/shared.txt")
    reader = made(volumes=[VolumeMount(volume_id=name, mount_path="/home/daytona/cache", subpath="")])
    assert reader.process.exec("cat /home/daytona/cache/shared.txt").result.strip() == "via-sdk"
    with pytest.raises(_REFUSED, match="in use by one or more sandboxes"):
        client.volume.delete(volume)
    client.delete(writer)
    client.delete(reader)
    client.volume.delete(volume)
    assert name not in [v.name for v in client.volume.list()]


def test_get_with_create_makes_a_volume_once_then_finds_it(client: Daytona) -> None:
    name = f"sdk-get-create-{uuid.uuid4().hex[:8]}"
    with pytest.raises(_NOT_FOUND):
        client.volume.get(name)
    made = client.volume.get(name, create=True)
    try:
        assert client.volume.get(name, create=True).id == made.id
    finally:
        client.volume.delete(made)


@pytest.mark.skipif(
    not hasattr(Sandbox, "create_snapshot"), reason="this SDK release has no Sandbox.create_snapshot"
)
def test_a_snapshot_taken_with_the_sdk_is_listed_and_starts_new_sandboxes(
    client: Daytona, made: Callable[..., Sandbox]
) -> None:
    name = f"sdk-snapshot-{uuid.uuid4().hex[:8]}"
    source = made()
    source.process.exec("mkdir -p work && echo from-source > work/state.txt")
    source.create_snapshot(name)
    try:
        listed = client.snapshot.list()
        copy = made(snapshot=name)
        assert name in [s.name for s in listed.items]
        assert client.snapshot.get(name).state == "active"
        assert copy.snapshot == name
        assert copy.process.exec("cat work/state.txt").result.strip() == "from-source"
    finally:
        client.snapshot.delete(client.snapshot.get(name))


def test_an_unknown_snapshot_is_refused_by_name(client: Daytona) -> None:
    with pytest.raises(DaytonaError, match="Snapshot no-such-sdk-snapshot not found"):
        client.create(CreateSandboxFromSnapshotParams(snapshot="no-such-sdk-snapshot"))


def test_a_snapshot_built_from_an_sdk_image_has_its_pip_package(
    client: Daytona, made: Callable[..., Sandbox], tmp_path: Path
) -> None:
    name = f"sdk-built-{uuid.uuid4().hex[:8]}"
    with served_index(tmp_path) as index:
        image = Image.debian_slim("3.12").pip_install(
            [PACKAGE], index_url=f"http://127.0.0.1:{index.port}/simple"
        )
        snapshot = client.snapshot.create(CreateSnapshotParams(name=name, image=image), timeout=300)
    try:
        sandbox = made(snapshot=name)
        result = sandbox.process.exec(f"python3 -c 'import {MODULE}; print({MODULE}.VALUE)'")
        assert snapshot.state == "active"
        assert result.result.strip() == VALUE
    finally:
        client.snapshot.delete(client.snapshot.get(name))

"""Daytona's volume and snapshot endpoints as respx routes, with state and a request log.

They join the routes of ``comp_support.FakeDaytona`` on its router, answering with the shapes of
``fixtures/daytona/volume.json`` and ``snapshot.json`` (Daytona's ``VolumeDto`` and ``SnapshotDto``).
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import httpx
import respx
from comp_support import API_URL, error_body, fixture


class FakeVolumes:
    def __init__(self, router: respx.MockRouter) -> None:
        self.volumes: dict[str, dict[str, Any]] = {}
        #: States successive reads of a volume report; the last one repeats.
        self.states: dict[str, list[str]] = {}
        #: The states a volume created through the API goes through.
        self.create_states: list[str] = ["ready"]
        self.create_bodies: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        #: Volumes a sandbox mounts: deleting one answers 409, as Daytona does.
        self.in_use: set[str] = set()
        self._ids = itertools.count(1)
        router.get(f"{API_URL}/volumes", name="list_volumes").mock(side_effect=self._list)
        router.post(f"{API_URL}/volumes", name="create_volume").mock(side_effect=self._create)
        router.get(url__regex=rf"^{API_URL}/volumes/(?P<vid>[^/]+)$", name="get_volume").mock(
            side_effect=self._get
        )
        router.delete(url__regex=rf"^{API_URL}/volumes/(?P<vid>[^/]+)$", name="delete_volume").mock(
            side_effect=self._delete
        )

    def add(self, name: str, state: str = "ready") -> dict[str, Any]:
        """A volume that exists before the component runs."""
        volume = fixture("volume", id=f"vol-{next(self._ids):08d}", name=name, state=state)
        self.volumes[volume["id"]] = volume
        self.states[volume["id"]] = [state]
        return volume

    def _current(self, vid: str) -> dict[str, Any]:
        states = self.states[vid]
        state = states.pop(0) if len(states) > 1 else states[0]
        self.volumes[vid]["state"] = state
        return self.volumes[vid]

    def _list(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[self._current(vid) for vid in list(self.volumes)])

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.create_bodies.append(body)
        if any(volume["name"] == body["name"] for volume in self.volumes.values()):
            message = f"Volume with name {body['name']} already exists"
            return httpx.Response(409, json=error_body(409, message, "Conflict"))
        volume = self.add(body["name"], self.create_states[0])
        self.states[volume["id"]] = list(self.create_states)
        return httpx.Response(200, json=self._current(volume["id"]))

    def _get(self, request: httpx.Request, vid: str) -> httpx.Response:
        if vid not in self.volumes:
            return httpx.Response(404, json=error_body(404, f"Volume {vid} not found", "Not Found"))
        return httpx.Response(200, json=self._current(vid))

    def _delete(self, request: httpx.Request, vid: str) -> httpx.Response:
        if vid not in self.volumes:
            return httpx.Response(404, json=error_body(404, f"Volume {vid} not found", "Not Found"))
        if vid in self.in_use:
            message = f"Volume {vid} is in use by one or more sandboxes"
            return httpx.Response(409, json=error_body(409, message, "Conflict"))
        self.deleted.append(vid)
        self.states[vid] = ["pending_delete"]
        return httpx.Response(200)


class FakeSnapshots:
    def __init__(self, router: respx.MockRouter) -> None:
        self.snapshots: list[dict[str, Any]] = []
        router.get(url__regex=rf"^{API_URL}/snapshots(\?.*)?$", name="list_snapshots").mock(
            side_effect=self._list
        )

    def add(self, name: str, **overrides: Any) -> dict[str, Any]:
        snapshot = fixture("snapshot", id=f"snapshot-{len(self.snapshots) + 1:08d}", name=name, **overrides)
        self.snapshots.append(snapshot)
        return snapshot

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        page, limit = int(params.get("page", "1")), int(params.get("limit", "100"))
        assert limit <= 200, "Daytona's pages hold at most 200 snapshots"
        matching = [item for item in self.snapshots if params.get("name", "") in item["name"]]
        items = matching[(page - 1) * limit : page * limit]
        pages = max(1, math.ceil(len(matching) / limit))
        return httpx.Response(
            200, json={"items": items, "total": len(matching), "page": page, "totalPages": pages}
        )

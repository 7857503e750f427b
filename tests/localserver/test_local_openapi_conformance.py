"""Every operation the server serves answers as Daytona's OpenAPI specs and generated models say.

The specs are read from ``$DAYTONA_OPENAPI_DIR`` (default ``/work/shared/specs``): the module is
skipped when they are absent, and fails instead when ``DAYTONAFLOW_REQUIRE_SPECS=1``.

How it works: each route the running server serves (its Starlette routes, mounts walked) is mapped
by path template and method to an operation of a spec: ``/api/...`` to the API spec; the toolbox's
two mounts, ``/toolbox/{sandbox}/...`` and the legacy ``/api/toolbox/{sandbox}/toolbox/...``, to the
toolbox spec. (The API spec keeps deprecated copies of the legacy paths from before the toolbox had
a spec of its own; they differ from it in status codes, 200 for its 201 and 204, and no SDK the
server claims calls them, so the one toolbox answers as its own spec says.)

Every served route must have a row in :data:`API_CASES` or :data:`TOOLBOX_CASES` (a real request
against a real sandbox), or be listed in :data:`EXTENSIONS` or :data:`WEBSOCKETS` with the reason
it has no JSON to check: a new route without one fails :func:`test_every_served_route_has_a_case`.
Each row's response must have a status the operation declares, validate against the operation's
response schema (``$ref`` resolved, OpenAPI 3.0's ``nullable`` honoured) and parse with the
official generated model of that schema (``daytona_api_client`` / ``daytona_toolbox_api_client``).

Adding a route's row: write a function taking a :class:`World` (API) or a :class:`Toolbox` (the
toolbox, run through both of its mounts) that makes the request and returns the response, and add
it to the table under the spec's ``METHOD path`` (the spec's own path template, e.g.
``"POST /files/bulk-upload"``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata
import inspect
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from localserver_testkit import served
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from daytonaflow.localserver import LocalServer

pytestmark = pytest.mark.sandbox

SPEC_DIR = Path(os.environ.get("DAYTONA_OPENAPI_DIR", "/work/shared/specs"))
API_SPEC_FILE = "daytona-api.openapi.yaml"
TOOLBOX_SPEC_FILE = "daytona-toolbox.openapi.yaml"

if not all((SPEC_DIR / name).is_file() for name in (API_SPEC_FILE, TOOLBOX_SPEC_FILE)):
    if os.environ.get("DAYTONAFLOW_REQUIRE_SPECS") == "1":
        pytest.fail(f"DAYTONAFLOW_REQUIRE_SPECS=1 but the Daytona specs are not in {SPEC_DIR}", pytrace=False)
    pytest.skip(
        f"Daytona's OpenAPI specs are not in {SPEC_DIR} (set DAYTONA_OPENAPI_DIR)", allow_module_level=True
    )

pytest.importorskip("daytona_api_client", reason="the generated API models come with the `daytona` SDK")
pytest.importorskip(
    "daytona_toolbox_api_client", reason="the generated toolbox models come with the `daytona` SDK"
)

_PARAMETER = re.compile(r"\{[^}]+\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


# ---- the specs -------------------------------------------------------------------------------------


def _openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema dialect as JSON Schema: ``nullable: true`` adds null to the type."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi_to_json_schema(value) for key, value in node.items() if key != "example"}
    if converted.pop("nullable", False) is True:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if "$ref" in converted or "allOf" in converted:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


@dataclass
class Spec:
    """One spec: its operations by path shape, its schemas, and the generated models for them."""

    name: str
    document: dict[str, Any]
    models_package: str
    schemas: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.schemas = _openapi_to_json_schema({"components": self.document.get("components", {})})

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The spec's ``(path template, operation)`` of this method on a path of this shape."""
        shape = _PARAMETER.sub("{}", path)
        for template, operations in self.document["paths"].items():
            if _PARAMETER.sub("{}", template) == shape and method.lower() in operations:
                return template, operations[method.lower()]
        return None

    def validate(self, schema: dict[str, Any], value: Any) -> None:
        converted = _openapi_to_json_schema(schema)
        jsonschema.Draft202012Validator({**converted, **self.schemas}).validate(value)

    @functools.cached_property
    def _model_modules(self) -> dict[str, str]:
        """The generated package's module of each model, by its name's letters and digits (the
        package imports its models lazily, so its files are what lists them)."""
        package = importlib.import_module(self.models_package)
        directory = Path(str(package.__file__)).parent
        return {_letters(path.stem): path.stem for path in directory.glob("*.py") if path.stem != "__init__"}

    def model_for(self, schema_name: str) -> type | None:
        """The generated model class of a schema, or None when the package has none for it."""
        key = _letters(schema_name)
        module_name = self._model_modules.get(key)
        if module_name is None:
            return None
        module = importlib.import_module(f"{self.models_package}.{module_name}")
        for value in vars(module).values():
            if inspect.isclass(value) and hasattr(value, "from_dict") and _letters(value.__name__) == key:
                return value
        return None

    def parse(self, schema: dict[str, Any], value: Any) -> list[str]:
        """Parse ``value`` with the generated model of every named schema it is made of (the
        outermost that has one); the names of the models used. A model's refusal raises."""
        reference = schema.get("$ref")
        if isinstance(reference, str):
            name = reference.rsplit("/", 1)[-1]
            model = self.model_for(name)
            if model is not None and isinstance(value, dict):
                parsed = model.from_dict(value)  # type: ignore[attr-defined]
                assert parsed is not None, f"{model.__name__}.from_dict gave nothing"
                return [model.__name__]
            return self.parse(self.document["components"]["schemas"][name], value)
        used: list[str] = []
        for part in schema.get("allOf", []):
            used += self.parse(part, value)
        if schema.get("type") == "array" and isinstance(value, list):
            for item in value:
                used += self.parse(schema.get("items", {}), item)
        if isinstance(value, dict):
            for key, member in schema.get("properties", {}).items():
                if key in value:
                    used += self.parse(member, value[key])
        return used


def _letters(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def _specs() -> tuple[Spec, Spec]:
    def load(name: str) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load((SPEC_DIR / name).read_text())
        return document

    return (
        Spec("api", load(API_SPEC_FILE), "daytona_api_client.models"),
        Spec("toolbox", load(TOOLBOX_SPEC_FILE), "daytona_toolbox_api_client.models"),
    )


# ---- the served routes -----------------------------------------------------------------------------


def _served(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(METHOD, path template)`` of every route; ``WEBSOCKET`` for a WebSocket route."""
    for route in routes:
        if isinstance(route, Mount):
            yield from _served(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                yield method, prefix + route.path
        elif isinstance(route, WebSocketRoute):
            yield "WEBSOCKET", prefix + route.path
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")


_API_TOOLBOX_MOUNT = re.compile(r"^/api/toolbox/\{[^}]+\}/toolbox(?P<rest>/.*)$")
_TOOLBOX_MOUNT = re.compile(r"^/toolbox/\{[^}]+\}(?P<rest>/.*)$")


def _spec_path(path: str) -> tuple[str, str, str]:
    """``(spec name, path in that spec, toolbox-relative path or "")`` of a served path."""
    if found := _API_TOOLBOX_MOUNT.match(path) or _TOOLBOX_MOUNT.match(path):
        return "toolbox", found["rest"], found["rest"]
    assert path.startswith("/api/"), f"served outside the API and toolbox mounts: {path}"
    return "api", path.removeprefix("/api"), ""


# ---- the world the requests run in -----------------------------------------------------------------


@dataclass
class World:
    """The server, an HTTP client with the API key, and a started sandbox for the requests."""

    server: LocalServer
    http: httpx.Client
    sandbox: str
    repository: Path
    made: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.server.api_url}{path}", **kwargs)

    def create(self, **body: Any) -> str:
        response = self.api("POST", "/sandbox", json=body)
        assert response.status_code == 200, response.text
        sandbox_id: str = response.json()["id"]
        self.made.append(sandbox_id)
        return sandbox_id


@dataclass
class Toolbox:
    """Toolbox calls on the world's sandbox through one of the two mounts."""

    world: World
    base: str

    @property
    def sandbox(self) -> str:
        return self.world.sandbox

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.world.http.request(method, f"{self.base}{path}", **kwargs)

    def run(self, command: str) -> None:
        response = self.call("POST", "/process/execute", json={"command": command})
        assert response.status_code == 200, response.text

    def session(self) -> str:
        session_id = f"s-{uuid.uuid4().hex[:8]}"
        response = self.call("POST", "/process/session", json={"sessionId": session_id})
        assert response.status_code == 201, response.text
        return session_id

    def command(self) -> tuple[str, str]:
        session_id = self.session()
        response = self.call("POST", f"/process/session/{session_id}/exec", json={"command": "echo logged"})
        assert response.status_code == 200, response.text
        return session_id, response.json()["cmdId"]


# ---- the rows: one real request per spec operation -------------------------------------------------


def _signed_token(w: World) -> str:
    response = w.api("GET", f"/sandbox/{w.sandbox}/ports/3000/signed-preview-url")
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def _stopped(w: World) -> str:
    sandbox_id = w.create()
    assert w.api("POST", f"/sandbox/{sandbox_id}/stop").status_code == 200
    return sandbox_id


def _volume(w: World) -> str:
    response = w.api("POST", "/volumes", json={"name": f"conformance-{uuid.uuid4().hex[:8]}"})
    assert response.status_code == 200, response.text
    volume_id: str = response.json()["id"]
    return volume_id


def _volume_name(w: World) -> str:
    name: str = w.api("GET", f"/volumes/{_volume(w)}").json()["name"]
    return name


def _sandbox_snapshot(w: World) -> str:
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    response = w.api("POST", f"/sandbox/{w.sandbox}/snapshot", json={"name": name})
    assert response.status_code == 200, response.text
    snapshot_id: str = w.api("GET", f"/snapshots/{name}").json()["id"]
    return snapshot_id


def _built_snapshot(w: World) -> httpx.Response:
    dockerfile = "FROM python:3.12.10-slim-bookworm\nRUN echo built > /home/daytona/built.txt\n"
    return w.api(
        "POST",
        "/snapshots",
        json={"name": f"conformance-{uuid.uuid4().hex[:8]}", "buildInfo": {"dockerfileContent": dockerfile}},
    )


API_CASES: dict[str, Callable[[World], httpx.Response]] = {
    "GET /config": lambda w: w.api("GET", "/config"),
    "GET /sandbox": lambda w: w.api("GET", "/sandbox", params={"limit": 5}),
    "POST /sandbox": lambda w: w.api(
        "POST", "/sandbox", json={"name": f"conform-{uuid.uuid4().hex[:8]}", "labels": {"conformance": "1"}}
    ),
    "GET /sandbox/paginated": lambda w: w.api("GET", "/sandbox/paginated", params={"page": 1, "limit": 5}),
    "GET /sandbox/{sandboxIdOrName}": lambda w: w.api("GET", f"/sandbox/{w.sandbox}"),
    "DELETE /sandbox/{sandboxIdOrName}": lambda w: w.api("DELETE", f"/sandbox/{w.create()}"),
    "POST /sandbox/{sandboxIdOrName}/start": lambda w: w.api("POST", f"/sandbox/{_stopped(w)}/start"),
    "POST /sandbox/{sandboxIdOrName}/stop": lambda w: w.api("POST", f"/sandbox/{w.create()}/stop"),
    "POST /sandbox/{sandboxIdOrName}/autostop/{interval}": lambda w: w.api(
        "POST", f"/sandbox/{w.sandbox}/autostop/0"
    ),
    "POST /sandbox/{sandboxIdOrName}/autoarchive/{interval}": lambda w: w.api(
        "POST", f"/sandbox/{w.sandbox}/autoarchive/60"
    ),
    "POST /sandbox/{sandboxIdOrName}/autodelete/{interval}": lambda w: w.api(
        "POST", f"/sandbox/{w.sandbox}/autodelete/-1"
    ),
    "POST /sandbox/{sandboxId}/last-activity": lambda w: w.api("POST", f"/sandbox/{w.sandbox}/last-activity"),
    "POST /sandbox/{sandboxIdOrName}/public/{isPublic}": lambda w: w.api(
        "POST", f"/sandbox/{w.sandbox}/public/false"
    ),
    "PUT /sandbox/{sandboxIdOrName}/labels": lambda w: w.api(
        "PUT", f"/sandbox/{w.sandbox}/labels", json={"labels": {"conformance": "1"}}
    ),
    "GET /sandbox/{sandboxId}/toolbox-proxy-url": lambda w: w.api(
        "GET", f"/sandbox/{w.sandbox}/toolbox-proxy-url"
    ),
    "GET /sandbox/{sandboxIdOrName}/ports/{port}/preview-url": lambda w: w.api(
        "GET", f"/sandbox/{w.sandbox}/ports/3000/preview-url"
    ),
    "GET /sandbox/{sandboxIdOrName}/ports/{port}/signed-preview-url": lambda w: w.api(
        "GET", f"/sandbox/{w.sandbox}/ports/3000/signed-preview-url", params={"expiresInSeconds": 60}
    ),
    "POST /sandbox/{sandboxIdOrName}/snapshot": lambda w: w.api(
        "POST", f"/sandbox/{w.sandbox}/snapshot", json={"name": f"conformance-{uuid.uuid4().hex[:8]}"}
    ),
    "GET /volumes": lambda w: (_volume(w), w.api("GET", "/volumes"))[1],
    "POST /volumes": lambda w: w.api(
        "POST", "/volumes", json={"name": f"conformance-{uuid.uuid4().hex[:8]}"}
    ),
    "GET /volumes/{volumeId}": lambda w: w.api("GET", f"/volumes/{_volume(w)}"),
    "GET /volumes/by-name/{name}": lambda w: w.api("GET", f"/volumes/by-name/{_volume_name(w)}"),
    "DELETE /volumes/{volumeId}": lambda w: w.api("DELETE", f"/volumes/{_volume(w)}"),
    "GET /snapshots": lambda w: (_sandbox_snapshot(w), w.api("GET", "/snapshots", params={"limit": 5}))[1],
    "POST /snapshots": _built_snapshot,
    "GET /snapshots/{id}": lambda w: w.api("GET", f"/snapshots/{_sandbox_snapshot(w)}"),
    "DELETE /snapshots/{id}": lambda w: w.api("DELETE", f"/snapshots/{_sandbox_snapshot(w)}"),
    "POST /sandbox/{sandboxIdOrName}/ports/{port}/signed-preview-url/{token}/expire": lambda w: w.api(
        "POST", f"/sandbox/{w.sandbox}/ports/3000/signed-preview-url/{_signed_token(w)}/expire"
    ),
}


def _sessions(t: Toolbox) -> httpx.Response:
    t.command()  # a session with a command in it: the list has items for the model to parse
    return t.call("GET", "/process/session")


def _session_exec(t: Toolbox) -> httpx.Response:
    return t.call("POST", f"/process/session/{t.session()}/exec", json={"command": "echo hi"})


def _command(t: Toolbox) -> httpx.Response:
    session_id, command_id = t.command()
    return t.call("GET", f"/process/session/{session_id}/command/{command_id}")


def _command_logs(t: Toolbox) -> httpx.Response:
    session_id, command_id = t.command()
    return t.call("GET", f"/process/session/{session_id}/command/{command_id}/logs")


def _files(t: Toolbox) -> httpx.Response:
    t.run("touch listed.txt")  # an entry for the model to parse
    return t.call("GET", "/files", params={"path": "/home/daytona"})


def _upload(t: Toolbox) -> httpx.Response:
    return t.call("POST", "/files/upload", params={"path": "uploaded.txt"}, files={"file": ("f", b"data")})


def _delete_file(t: Toolbox) -> httpx.Response:
    t.run("touch doomed.txt")
    return t.call("DELETE", "/files", params={"path": "doomed.txt"})


def _download(t: Toolbox) -> httpx.Response:
    t.run("echo content > downloaded.txt")
    return t.call("GET", "/files/download", params={"path": "downloaded.txt"})


def _bulk_upload(t: Toolbox) -> httpx.Response:
    parts = {"files[0].path": (None, b"bulk/one.txt"), "files[0].file": ("one.txt", b"one")}
    return t.call("POST", "/files/bulk-upload", files=parts)


def _bulk_download(t: Toolbox) -> httpx.Response:
    t.run("echo content > bulk-downloaded.txt")
    return t.call("POST", "/files/bulk-download", json={"paths": ["bulk-downloaded.txt", "missing.txt"]})


def _move(t: Toolbox) -> httpx.Response:
    name = f"moved-{uuid.uuid4().hex[:8]}"
    t.run(f"touch {name}")
    return t.call("POST", "/files/move", params={"source": name, "destination": f"{name}.done"})


def _find(t: Toolbox) -> httpx.Response:
    t.run("mkdir -p found && echo needle > found/haystack.txt")
    return t.call("GET", "/files/find", params={"path": "found", "pattern": "needle"})


def _search(t: Toolbox) -> httpx.Response:
    t.run("mkdir -p searched && touch searched/a.py")
    return t.call("GET", "/files/search", params={"path": "searched", "pattern": "*.py"})


def _replace(t: Toolbox) -> httpx.Response:
    t.run("echo old > replaced.txt")
    body = {"files": ["replaced.txt", "absent.txt"], "pattern": "old", "newValue": "new"}
    return t.call("POST", "/files/replace", json=body)


def _permissions(t: Toolbox) -> httpx.Response:
    t.run("touch permitted.txt")
    return t.call("POST", "/files/permissions", params={"path": "permitted.txt", "mode": "640"})


def _clone(t: Toolbox) -> httpx.Response:
    target = f"clone-{uuid.uuid4().hex[:8]}"
    return t.call("POST", "/git/clone", json={"url": str(t.world.repository), "path": target})


def _git_remote(t: Toolbox) -> Path:
    """A bare copy of the world's repository the sandbox's host uid may read and write (push and
    pull run git as that uid), under the server's root, which goes with it."""
    remote = t.world.server.state_dir.parent / "git-remote.git"
    if not remote.exists():
        subprocess.run(["git", "clone", "-q", "--bare", str(t.world.repository), str(remote)], check=True)
        subprocess.run(["chmod", "-R", "a+rwX", str(remote)], check=True)
    return remote


def _git_repo(t: Toolbox) -> str:
    """A fresh clone in the sandbox (of :func:`_git_remote`, so push and pull may reach it)."""
    target = f"git-{uuid.uuid4().hex[:8]}"
    response = t.call("POST", "/git/clone", json={"url": str(_git_remote(t)), "path": target})
    assert response.status_code == 200, response.text
    return target


def _git_committed(t: Toolbox) -> str:
    repo = _git_repo(t)
    t.run(f"cd {repo} && echo more >> README.md && git -c user.name=t -c user.email=t@e commit -qam more")
    return repo


def _git_call(method: str, route: str, **body: Any) -> Callable[[Toolbox], httpx.Response]:
    """A git row on a fresh clone: ``body`` (``repo`` standing for its path) as JSON or the query."""

    def row(t: Toolbox) -> httpx.Response:
        repo = _git_repo(t)
        fields = {key: repo if value == "repo" else value for key, value in body.items()}
        if method == "GET":
            return t.call("GET", route, params={"path": repo, **fields})
        return t.call(method, route, json={"path": repo, **fields})

    return row


def _git_delete_branch(t: Toolbox) -> httpx.Response:
    repo = _git_repo(t)
    t.run(f"git -C {repo} branch doomed")
    return t.call("DELETE", "/git/branches", json={"path": repo, "name": "doomed"})


def _git_checkout(t: Toolbox) -> httpx.Response:
    repo = _git_repo(t)
    t.run(f"git -C {repo} branch other")
    return t.call("POST", "/git/checkout", json={"path": repo, "branch": "other"})


def _git_add(t: Toolbox) -> httpx.Response:
    repo = _git_repo(t)
    t.run(f"echo new > {repo}/new.txt")
    return t.call("POST", "/git/add", json={"path": repo, "files": ["new.txt"]})


TOOLBOX_CASES: dict[str, Callable[[Toolbox], httpx.Response]] = {
    "POST /process/execute": lambda t: t.call("POST", "/process/execute", json={"command": "echo hi"}),
    "POST /process/code-run": lambda t: t.call(
        "POST", "/process/code-run", json={"code": "print(1)", "language": "python"}
    ),
    "GET /process/session": _sessions,
    "POST /process/session": lambda t: t.call(
        "POST", "/process/session", json={"sessionId": f"s-{uuid.uuid4().hex[:8]}"}
    ),
    "GET /process/session/{sessionId}": lambda t: t.call("GET", f"/process/session/{t.session()}"),
    "DELETE /process/session/{sessionId}": lambda t: t.call("DELETE", f"/process/session/{t.session()}"),
    "POST /process/session/{sessionId}/exec": _session_exec,
    "GET /process/session/{sessionId}/command/{commandId}": _command,
    "GET /process/session/{sessionId}/command/{commandId}/logs": _command_logs,
    "GET /files": _files,
    "DELETE /files": _delete_file,
    "GET /files/info": lambda t: t.call("GET", "/files/info", params={"path": "/home/daytona"}),
    "POST /files/folder": lambda t: t.call(
        "POST", "/files/folder", params={"path": f"dir-{uuid.uuid4().hex[:8]}", "mode": "755"}
    ),
    "GET /files/download": _download,
    "POST /files/upload": _upload,
    "POST /files/bulk-upload": _bulk_upload,
    "POST /files/bulk-download": _bulk_download,
    "POST /files/move": _move,
    "GET /files/find": _find,
    "GET /files/search": _search,
    "POST /files/replace": _replace,
    "POST /files/permissions": _permissions,
    "POST /git/clone": _clone,
    "GET /git/status": _git_call("GET", "/git/status"),
    "GET /git/branches": _git_call("GET", "/git/branches"),
    "POST /git/branches": _git_call("POST", "/git/branches", name="created"),
    "DELETE /git/branches": _git_delete_branch,
    "POST /git/checkout": _git_checkout,
    "POST /git/add": _git_add,
    "POST /git/commit": _git_call(
        "POST", "/git/commit", message="m", author="A", email="a@e", allow_empty=True
    ),
    "GET /git/history": _git_call("GET", "/git/history"),
    "POST /git/push": lambda t: t.call("POST", "/git/push", json={"path": _git_committed(t)}),
    "POST /git/pull": lambda t: t.call("POST", "/git/pull", json={"path": _git_repo(t)}),
    # The git routes of newer SDKs (0.226's toolbox client), which the spec predates: EXTENSIONS.
    "POST /git/init": lambda t: t.call("POST", "/git/init", json={"path": f"init-{uuid.uuid4().hex[:8]}"}),
    "POST /git/reset": _git_call("POST", "/git/reset", mode="hard"),
    "POST /git/restore": _git_call("POST", "/git/restore", files=["README.md"]),
    "GET /git/remotes": _git_call("GET", "/git/remotes"),
    "POST /git/remotes": _git_call("POST", "/git/remotes", name="other", url="/srv/other.git"),
    "GET /git/config": lambda t: t.call("GET", "/git/config", params={"key": "user.name"}),
    "POST /git/config": lambda t: t.call("POST", "/git/config", json={"key": "core.editor", "value": "vi"}),
    "POST /git/config/user": lambda t: t.call("POST", "/git/config/user", json={"name": "n", "email": "e@e"}),
    "POST /git/credentials": lambda t: t.call(
        "POST", "/git/credentials", json={"username": "u", "password": "p", "host": "example.com"}
    ),
    "GET /user-home-dir": lambda t: t.call("GET", "/user-home-dir"),
    "GET /work-dir": lambda t: t.call("GET", "/work-dir"),
    # Only the API spec's deprecated toolbox path has it; through the proxy mount it is an extension.
    "GET /project-dir": lambda t: t.call("GET", "/project-dir"),
}

#: Served routes without a Daytona operation to conform to, and why.
EXTENSIONS: dict[str, str] = {
    "GET /api/local/isolation": "local extension: the isolation mechanisms and limits in force on this host",
    "GET /toolbox/{sandbox}/project-dir": (
        "only the API spec's deprecated toolbox copy has project-dir (answered as work-dir is)"
    ),
    "GET /api/toolbox/{sandbox}/toolbox/project-dir": "the same through the legacy mount",
    "POST /api/sandbox/{sandbox}/archive": (
        "refused with a 400 (this server has no archive tier), which the spec's operation does not "
        "declare: test_local_api.py checks the refusal"
    ),
    **{
        f"{route} {mount}/git/{name}": (
            "a git route of newer SDKs (daytona 0.226's toolbox client) that the spec predates; "
            "tests/sdk/test_sdk_git.py parses its answers with the SDK's models"
        )
        for mount in ("/toolbox/{sandbox}", "/api/toolbox/{sandbox}/toolbox")
        for route, name in (
            ("POST", "init"),
            ("POST", "reset"),
            ("POST", "restore"),
            ("GET", "remotes"),
            ("POST", "remotes"),
            ("GET", "config"),
            ("POST", "config"),
            ("POST", "config/user"),
            ("POST", "credentials"),
        )
    },
}

#: WebSocket upgrades of spec operations: what they send is frames, which no response schema
#: describes; tests/sdk drives them through the SDK.
WEBSOCKETS: dict[str, str] = {
    "WEBSOCKET /toolbox/{sandbox}/process/session/{session}/command/{command}/logs": (
        "logs?follow=true as the SDK streams it (GET .../logs is checked as JSON)"
    ),
    "WEBSOCKET /api/toolbox/{sandbox}/toolbox/process/session/{session}/command/{command}/logs": (
        "logs?follow=true through the API's toolbox mount (GET .../logs is checked as JSON)"
    ),
}

_TOOLBOX_MOUNTS = {
    "toolbox": lambda server, sandbox: f"{server.toolbox_url}/{sandbox}",
    "api-toolbox": lambda server, sandbox: f"{server.api_url}/toolbox/{sandbox}/toolbox",
}


# ---- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with served() as instance:
        yield instance


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("conformance-repo")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "first"]):
        if args[0] == "add":
            (repo / "README.md").write_text("cloned\n")
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
            check=True,
            capture_output=True,
        )
    return repo


@pytest.fixture(scope="module")
def world(server: LocalServer, repository: Path) -> Iterator[World]:
    with httpx.Client(headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60) as http:
        created = http.post(f"{server.api_url}/sandbox", json={"autoStopInterval": 0})
        assert created.status_code == 200, created.text
        instance = World(server, http, created.json()["id"], repository, [created.json()["id"]])
        yield instance
        for sandbox_id in instance.made:
            with contextlib.suppress(httpx.HTTPError):
                http.delete(f"{server.api_url}/sandbox/{sandbox_id}")
        # What the create row made, found by its label.
        listed = http.get(f"{server.api_url}/sandbox", params={"labels": '{"conformance": "1"}'})
        for sandbox in listed.json()["items"]:
            http.delete(f"{server.api_url}/sandbox/{sandbox['id']}")


# ---- the checks ------------------------------------------------------------------------------------


def _route_key(method: str, path: str) -> str:
    return f"{method} {path}"


def test_every_served_route_has_a_case(server: LocalServer) -> None:
    api, toolbox = _specs()
    missing: list[str] = []
    for method, path in _served(server.routes):
        key = _route_key(method, path)
        if key in EXTENSIONS or key in WEBSOCKETS:
            continue
        spec_name, spec_path, toolbox_path = _spec_path(path)
        spec = api if spec_name == "api" else toolbox
        operation = spec.operation(method, spec_path)
        if operation is None:
            missing.append(f"{key}: no {method} {spec_path} in the {spec_name} spec (an extension? list it)")
            continue
        template = operation[0]
        if toolbox_path:
            toolbox_operation = toolbox.operation(method, toolbox_path)
            row = _route_key(method, toolbox_operation[0] if toolbox_operation else toolbox_path)
            if row not in TOOLBOX_CASES:
                missing.append(f"{key}: no row {row!r} in TOOLBOX_CASES")
        elif _route_key(method, template) not in API_CASES:
            missing.append(f"{key}: no row {_route_key(method, template)!r} in API_CASES")
    assert not missing, "served routes without a conformance case:\n" + "\n".join(missing)


def test_every_row_and_listed_extension_is_served(server: LocalServer) -> None:
    served_keys = {_route_key(method, path) for method, path in _served(server.routes)}
    stale = [key for key in (*EXTENSIONS, *WEBSOCKETS) if key not in served_keys]
    api_rows = {
        _route_key(method, _spec_path(path)[1])
        for method, path in _served(server.routes)
        if _spec_path(path)[0] == "api" and not _spec_path(path)[2]
    }
    toolbox_rows = {_route_key(method, _spec_path(path)[2]) for method, path in _served(server.routes)}
    for row in API_CASES:
        method, template = row.split(" ", 1)
        if not any(
            key.split(" ", 1)[0] == method and _same_shape(key.split(" ", 1)[1], template) for key in api_rows
        ):
            stale.append(f"API_CASES {row}")
    for row in TOOLBOX_CASES:
        method, template = row.split(" ", 1)
        if not any(
            key.split(" ", 1)[0] == method and _same_shape(key.split(" ", 1)[1], template)
            for key in toolbox_rows
        ):
            stale.append(f"TOOLBOX_CASES {row}")
    assert not stale, "listed but not served:\n" + "\n".join(stale)


def _same_shape(first: str, second: str) -> bool:
    return _PARAMETER.sub("{}", first) == _PARAMETER.sub("{}", second)


def _check(spec: Spec, method: str, path: str, response: httpx.Response) -> None:
    """The response's status is one the operation declares; its JSON validates and parses."""
    found = spec.operation(method, path)
    assert found is not None, f"no {method} {path} in the {spec.name} spec"
    declared = found[1]["responses"]
    status = str(response.status_code)
    assert status in declared, (
        f"{method} {path} answered {status} ({response.text[:300]}); the spec has {list(declared)}"
    )
    content: dict[str, Any] = declared[status].get("content") or {}
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if not content:
        assert response.content == b"", (
            f"{method} {path}: the spec has no body for {status}, got {response.text[:200]}"
        )
        return
    schema = (content.get(media) or content.get("*/*") or {}).get("schema")
    assert schema is not None, f"{method} {path}: a {media!r} body; the spec has {list(content)}"
    if media != "application/json":
        return  # a file's bytes or a text log: nothing for a JSON schema or model to check
    body = response.json()
    spec.validate(schema, body)
    used = spec.parse(schema, body)
    if used or schema.get("$ref", "").endswith("/gin.H"):  # gin.H: a free-form object, no model
        return
    version = importlib.metadata.version(spec.models_package.split(".")[0].replace("_", "-"))
    if version != _pinned_sdk():
        # An older SDK (PYTHONPATH=/tmp/sdk-old) predates some of the spec's schemas: the answer
        # was still checked against the schema, and the pinned SDK must parse it.
        pytest.skip(f"{spec.models_package} {version} has no model for the schema of {method} {path}")
    raise AssertionError(f"{method} {path}: no generated model of {spec.models_package} parsed the answer")


@functools.cache
def _pinned_sdk() -> str:
    """The ``daytona`` release the project's test extra pins (its generated clients share it)."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    found = re.search(r'"daytona==([^"]+)"', pyproject)
    assert found, "pyproject.toml pins no daytona release"
    return found[1]


@pytest.mark.parametrize("row", API_CASES, ids=API_CASES)
def test_an_api_answer_conforms(world: World, row: str) -> None:
    method, path = row.split(" ", 1)
    _check(_specs()[0], method, path, API_CASES[row](world))


@pytest.mark.parametrize("mount", _TOOLBOX_MOUNTS)
@pytest.mark.parametrize("row", TOOLBOX_CASES, ids=TOOLBOX_CASES)
def test_a_toolbox_answer_conforms(world: World, row: str, mount: str) -> None:
    method, path = row.split(" ", 1)
    response = TOOLBOX_CASES[row](Toolbox(world, _TOOLBOX_MOUNTS[mount](world.server, world.sandbox)))
    if _specs()[1].operation(method, path) is None:
        extension = _route_key(method, f"/toolbox/{{sandbox}}{path}")
        assert extension in EXTENSIONS, f"{row} is in no spec and not listed as an extension"
        assert response.is_success, response.text
        return
    _check(_specs()[1], method, path, response)

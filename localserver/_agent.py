"""The toolbox daemon that runs inside each sandbox.

It is started by bubblewrap as ``/usr/bin/python3 -S -I /opt/daytonaflow/agent.py FD CONFIG`` where
FD is a listening Unix socket created by the server (so the socket path is never visible inside the
sandbox) and CONFIG a JSON object. Only the standard library is used and only what serving a ping
needs is imported before the ping is answered (startup time is the sandbox's create latency); the
rest is imported meanwhile in a thread (see ``_preload``).

Wire protocol, one request per connection: the client sends one JSON line ``{"op": ..., ...}``; the
agent answers one JSON line ``{"ok": true, ...}`` or ``{"ok": false, "status": N, "message": ...}``.
Some operations carry raw bytes after the header lines:

- ``upload``: after the request line, frames of an 8-byte big-endian length plus data, length 0 ends.
- ``download``: after the answer line (which holds ``size``), exactly ``size`` bytes.
- ``logs`` with ``follow``: after the answer line, the command's combined output until it ends.
- ``connect``: after the answer line, bytes are spliced to ``127.0.0.1:port`` inside the sandbox.
"""

from __future__ import annotations

import os
import sys

# Not ``typing.TYPE_CHECKING``: importing typing alone costs a quarter of the agent's start time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    # Imported for real by ``main`` once the readiness ping is answered (see _answer_first_ping).
    import contextlib
    import json
    import socket
    import threading
    from typing import Any, TypeAlias

    Json: TypeAlias = dict[str, Any]

_HOME = "/home/daytona"
_WRITABLE_ROOTS = (_HOME, "/tmp")
_STATE_DIR = "/run/daytonaflow"
_HEAD_CAP = 1 << 20
_TAIL_CAP = 1 << 20
_MAX_REQUEST_LINE = 64 << 20
_LINE_PEEK = 64 << 10
_DRAIN_GRACE_SECONDS = 0.05
# Only a pump starved of CPU for this long loses output (a machine far beyond overloaded).
_FLUSH_TIMEOUT_SECONDS = 30.0
_KEPT_COMMAND_OUTPUTS = 100
_SWITCH_INTERVAL_SECONDS = 0.005
_PRELOAD_SWITCH_INTERVAL_SECONDS = 0.0005


class _Fail(Exception):
    """A request the agent refuses; becomes an ``ok: false`` answer with an HTTP-like status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Output:
    """A command's output kept within bounded memory: the first and the last megabyte.

    Offsets are absolute byte positions in the whole stream, so a follower can resume where it was
    even when the middle of a flood has been dropped.
    """

    def __init__(self, cond: threading.Condition | None = None) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.closed = False
        # A command's outputs share one: a follower of both streams waits for either.
        self.cond = cond or threading.Condition()

    def write(self, data: bytes) -> None:
        with self.cond:
            self.total += len(data)
            room = _HEAD_CAP - len(self.head)
            if room > 0:
                self.head += data[:room]
                data = data[room:]
            if data:
                self.tail += data
                excess = len(self.tail) - _TAIL_CAP
                if excess > 0:
                    del self.tail[:excess]
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def text(self) -> str:
        with self.cond:
            omitted = self.total - len(self.head) - len(self.tail)
            data = bytes(self.head)
            if omitted > 0:
                data += f"\n[daytonaflow: {omitted} bytes of output omitted]\n".encode()
            data += bytes(self.tail)
        return data.decode("utf-8", "replace")

    def read_from(self, offset: int) -> tuple[bytes, int]:
        """Bytes available at ``offset`` and the offset after them (caller holds ``cond``)."""
        skipped = self.skipped_at(offset)
        if skipped:
            return _omitted(skipped), offset + skipped
        return self.read_kept(offset)

    def skipped_at(self, offset: int) -> int:
        """How many bytes from ``offset`` on were dropped from the middle (caller holds ``cond``)."""
        if offset < len(self.head):
            return 0
        return max(0, self.total - len(self.tail) - offset)

    def read_kept(self, offset: int) -> tuple[bytes, int]:
        """Kept bytes at ``offset`` (not in the dropped middle) and the offset after them."""
        if offset < len(self.head):
            return bytes(self.head[offset:]), len(self.head)
        tail_start = self.total - len(self.tail)
        return bytes(self.tail[offset - tail_start :]), self.total


def _omitted(skipped: int) -> bytes:
    return f"\n[daytonaflow: {skipped} bytes of output omitted]\n".encode()


def _pump(
    sources: dict[int, list[Any]],
    on_done: threading.Event | None = None,
    flush_request: int | None = None,
    flushed: threading.Event | None = None,
) -> None:
    """Copy every fd in ``sources`` into its outputs until each reaches end of file.

    A byte on ``flush_request`` asks for everything the pipes hold right now to be copied, then
    ``flushed`` is set: a command has ended, but background children keep its pipe open.
    """
    import select

    pending = dict(sources)
    requests = [flush_request] if flush_request is not None else []
    try:
        while pending:
            ready, _, _ = select.select(list(pending) + requests, [], [])
            if requests and requests[0] in ready:
                requests = []
                _copy_available(pending)
                if flushed is not None:
                    flushed.set()
                continue
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    os.close(fd)
                    del pending[fd]
                    continue
                for output in pending[fd]:
                    output.write(chunk)
    finally:
        for fd in pending:
            os.close(fd)
        if flush_request is not None:
            os.close(flush_request)
        if flushed is not None:
            flushed.set()
        if on_done is not None:
            on_done.set()


def _take_output(drained: threading.Event, flush_write: int, flushed: threading.Event) -> None:
    """Return once the pump has copied all that a finished command wrote, whether or not
    background children still hold its pipe open; then close the request end."""
    if not drained.is_set():
        with contextlib.suppress(OSError):
            os.write(flush_write, b"x")
        flushed.wait(_FLUSH_TIMEOUT_SECONDS)
    with contextlib.suppress(OSError):
        os.close(flush_write)


def _copy_available(pending: dict[int, list[Any]]) -> None:
    """Copy what each pipe holds now, without waiting for more; forget pipes at end of file."""
    for fd in list(pending):
        os.set_blocking(fd, False)
        try:
            while chunk := os.read(fd, 65536):
                for output in pending[fd]:
                    output.write(chunk)
            os.close(fd)
            del pending[fd]
        except BlockingIOError:
            os.set_blocking(fd, True)


class _Agent:
    def __init__(self, config: Json) -> None:
        self.config = config
        self.sessions: dict[str, _Session] = {}
        self.lock = threading.Lock()
        self.counter = 0
        self.children: set[int] = set()

    # ---- environment and process helpers -------------------------------------------------------

    def env(self, extra: Any) -> dict[str, str]:
        env = dict(self.config.get("env", {}))
        if isinstance(extra, dict):
            env.update({str(k): str(v) for k, v in extra.items()})
        return env

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self.counter += 1
            return f"{prefix}{os.getpid()}-{self.counter}-{os.urandom(4).hex()}"

    def limited(self, argv: list[str]) -> list[str]:
        """``argv`` behind a shell that first sets the per-process CPU limit, then execs it.

        The agent cannot hold that limit itself (its own CPU time would trip it) and may not set
        it on a child: the seccomp filter refuses prlimit64 on any other process, so that sandbox
        code cannot use it on the agent. The child sets it on itself before its command runs.
        """
        cpu = self.config.get("cpu_seconds")
        if not cpu:
            return argv
        return ["/bin/sh", "-c", f'ulimit -t {int(cpu)} && exec "$@"', "sh", *argv]

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str], **kwargs: Any) -> Any:
        import subprocess

        if not os.path.isdir(cwd):
            raise _Fail(400, f"cwd {cwd!r} is not a directory")
        with self.lock:
            proc = subprocess.Popen(
                self.limited(argv),
                cwd=cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
                restore_signals=True,
                **kwargs,
            )
            self.children.add(proc.pid)
        return proc

    def reap_orphans(self, wakeup_fd: int) -> None:
        """As the namespace's init, collect orphans' exit statuses: zombies count against pids.max.

        ``wakeup_fd`` receives a byte per SIGCHLD (``signal.set_wakeup_fd``): a handler that only
        sets an Event would take a lock, and a signal arriving inside it would deadlock.
        """
        import select

        while True:
            ready, _, _ = select.select([wakeup_fd], [], [], 0.5)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wakeup_fd, 4096)
            self.reap_zombies()

    def reap_zombies(self) -> None:
        with self.lock:
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in self.children:
                    continue  # our own children are waited for by whoever started them
                try:
                    with open(f"/proc/{entry}/stat", "rb") as handle:
                        fields = handle.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                if fields[0] == b"Z" and fields[1] == b"1":
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(entry), os.WNOHANG)

    def kill_group(self, pgid: int, leader: Any = None) -> None:
        """SIGKILL a process group and collect its dead before answering, so their slots are free.

        ``leader`` (the group's ``Popen``, our own child) is waited for here: ``reap_zombies``
        leaves our children alone, and its zombie alone keeps the group alive to ``killpg(0)``,
        which made every timeout last the whole grace period longer.
        """
        import signal
        import time

        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        if leader is not None:
            leader.wait()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            self.reap_zombies()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)

    def run(self, argv: list[str], cwd: str, env: dict[str, str], timeout: float | None) -> Json:
        """Run to completion; on timeout kill the whole process group and keep what it printed."""
        import subprocess

        read_fd, write_fd = os.pipe()
        try:
            proc = self.spawn(argv, cwd, env, stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        output = _Output()
        drained, flushed = threading.Event(), threading.Event()
        flush_read, flush_write = os.pipe2(os.O_CLOEXEC)
        try:
            _start_thread(_pump, {read_fd: [output]}, drained, flush_read, flushed)
        except _Fail:
            self.kill_group(proc.pid, proc)
            self.children.discard(proc.pid)
            for fd in (read_fd, flush_read, flush_write):
                os.close(fd)
            raise
        timed_out = False
        try:
            code = proc.wait(timeout=timeout if timeout and timeout > 0 else None)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill_group(proc.pid, proc)
            code = proc.wait()
        self.children.discard(proc.pid)
        # Background children may keep the pipe open forever: never wait for them, but take all
        # the command printed, which is in the pipe by now, however long the pump takes to run.
        _take_output(drained, flush_write, flushed)
        # Like a shell: a process killed by signal N exits with 128 + N.
        return {"exitCode": code if code >= 0 else 128 - code, "result": output.text(), "timedOut": timed_out}

    # ---- operations --------------------------------------------------------------------------------

    def op_ping(self, request: Json, conn: socket.socket) -> Json:
        return {"pid": os.getpid()}

    def op_execute(self, request: Json, conn: socket.socket) -> Json:
        command = request.get("command")
        if not isinstance(command, str) or not command.strip():
            raise _Fail(400, "command is required")
        cwd = request.get("cwd") or _HOME
        return self.run(["/bin/sh", "-c", command], cwd, self.env(request.get("env")), request.get("timeout"))

    def op_code_run(self, request: Json, conn: socket.socket) -> Json:
        interpreter = request["interpreter"]
        suffix = request["suffix"]
        code = request.get("code")
        if not isinstance(code, str):
            raise _Fail(400, "code is required")
        os.makedirs(f"{_STATE_DIR}/code", exist_ok=True)
        path = f"{_STATE_DIR}/code/{self.next_id('run-')}{suffix}"
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(code)
        try:
            argv = [*interpreter, path, *[str(a) for a in request.get("argv") or []]]
            return self.run(argv, _HOME, self.env(request.get("env")), request.get("timeout"))
        finally:
            os.unlink(path)

    def session(self, request: Json) -> _Session:
        session = self.sessions.get(str(request.get("sessionId")))
        if session is None:
            raise _Fail(404, f"session {request.get('sessionId')!r} not found")
        return session

    def op_session_create(self, request: Json, conn: socket.socket) -> Json:
        session_id = request.get("sessionId")
        if not isinstance(session_id, str) or not session_id:
            raise _Fail(400, "sessionId is required")
        if session_id in self.sessions:
            raise _Fail(409, f"session {session_id!r} already exists")
        session = _Session(self, session_id, self.env(request.get("env")))
        with self.lock:
            if session_id in self.sessions:
                session.kill()
                raise _Fail(409, f"session {session_id!r} already exists")
            self.sessions[session_id] = session
        return {}

    def op_session_list(self, request: Json, conn: socket.socket) -> Json:
        return {"sessions": [s.describe() for s in list(self.sessions.values())]}

    def op_session_get(self, request: Json, conn: socket.socket) -> Json:
        return self.session(request).describe()

    def op_session_delete(self, request: Json, conn: socket.socket) -> Json:
        session = self.session(request)
        with self.lock:
            self.sessions.pop(session.session_id, None)
        session.kill()
        return {}

    def op_session_exec(self, request: Json, conn: socket.socket) -> Json:
        command = request.get("command")
        if not isinstance(command, str) or not command.strip():
            raise _Fail(400, "command is required")
        cmd = self.session(request).execute(command)
        if request.get("async"):
            return {"cmdId": cmd.cmd_id}
        cmd.done.wait()
        cmd.drained.wait(_DRAIN_GRACE_SECONDS)
        return {
            "cmdId": cmd.cmd_id,
            "exitCode": cmd.exit_code,
            "output": (cmd.marked if request.get("marked") else cmd.output).text(),
            "stdout": cmd.stdout.text(),
            "stderr": cmd.stderr.text(),
        }

    def op_command_get(self, request: Json, conn: socket.socket) -> Json:
        return self.session(request).command(str(request.get("commandId"))).describe()

    def op_logs(self, request: Json, conn: socket.socket) -> Json | None:
        cmd = self.session(request).command(str(request.get("commandId")))
        if not request.get("follow"):
            output = cmd.marked if request.get("marked") else cmd.output
            return {"output": output.text(), "stdout": cmd.stdout.text(), "stderr": cmd.stderr.text()}
        _send_json(conn, {"ok": True})
        if request.get("framed"):
            _follow_framed(cmd, conn)
            return None
        offset = 0
        output = cmd.output
        while True:
            with cmd.cond:
                # Once the command has ended, all it wrote is in the output (``_Command.end``
                # took it): a background child still holding the stream open is not waited for.
                while offset >= output.total and not cmd.done.is_set():
                    cmd.cond.wait()
                output = cmd.output  # replaced once the command is old enough to be forgotten
                chunk, offset = output.read_from(offset)
                finished = cmd.done.is_set() and offset >= output.total
            if chunk:
                conn.sendall(chunk)
            if finished:
                return None

    def op_terminate_all(self, request: Json, conn: socket.socket) -> Json:
        """SIGTERM every process of the sandbox but the agent; wait up to ``grace`` for them to end."""
        import signal
        import time

        me = os.getpid()
        for pid in _other_processes(me):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + float(request.get("grace") or 0)
        while (remaining := _other_processes(me, live_only=True)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {"remaining": len(remaining)}

    def op_kill_all(self, request: Json, conn: socket.socket) -> Json:
        """Kill every process of the sandbox but the agent and the namespace's init."""
        import signal

        me = os.getpid()
        others = _other_processes(me)
        killed = len(others)
        if me == 1:
            # One kill(-1) from init reaches every other process of the namespace at once; a walk
            # over /proc misses the children a process forks between the listing and its kill.
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
        else:
            for pid in others:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with self.lock:
            self.sessions.clear()
        return {"killed": killed}

    # ---- files ----------------------------------------------------------------------------------

    def op_folder(self, request: Json, conn: socket.socket) -> Json:
        path = _writable_path(request.get("path"))
        try:
            mode = int(str(request.get("mode") or "755"), 8)
        except ValueError:
            raise _Fail(400, f"mode {request.get('mode')!r} is not an octal permission") from None
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
        except FileExistsError:
            raise _Fail(409, f"{path} exists and is not a directory") from None
        return {"path": path}

    def op_upload(self, request: Json, conn: socket.socket) -> Json:
        path = _writable_path(request.get("path"))
        if path in _WRITABLE_ROOTS:
            raise _Fail(400, f"{path} is a directory")
        limit = int(self.config.get("upload_limit", 1 << 30))
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise _Fail(400, f"cannot create {directory}: {error}") from None
        # Only now may the server stream the bytes: a refusal above must not race its frames.
        _send_json(conn, {"ok": True, "ready": True})
        temp = f"{directory}/.daytonaflow-upload-{os.urandom(6).hex()}"
        written = 0
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            refusal: _Fail | None = None
            with os.fdopen(fd, "wb") as handle:
                while True:
                    size = int.from_bytes(_recv_exact(conn, 8), "big")
                    if size == 0:
                        break
                    written += size
                    data = _recv_exact(conn, size)
                    if refusal is not None:
                        continue  # keep reading: closing with unread bytes would reset the answer
                    if written > limit:
                        refusal = _Fail(413, f"upload exceeds the limit of {limit} bytes")
                        continue
                    try:
                        handle.write(data)
                    except OSError as error:
                        status = 507 if error.errno in (27, 28, 122) else 400
                        refusal = _Fail(status, f"cannot write {path}: {error}")
            if refusal is not None:
                raise refusal
            if os.path.islink(path) or os.path.isdir(path):
                raise _Fail(400, f"{path} is a directory or a symlink")
            os.rename(temp, path)
        except OSError as error:
            status = 507 if error.errno in (27, 28, 122) else 400
            raise _Fail(status, f"cannot write {path}: {error}") from None
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        return {"path": path, "size": written}

    def op_download(self, request: Json, conn: socket.socket) -> None:
        path = _readable_path(request.get("path"))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise _Fail(404, f"{path} not found") from None
        except OSError as error:
            raise _Fail(400, f"cannot read {path}: {error}") from None
        with os.fdopen(fd, "rb") as handle:
            import stat

            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Fail(400, f"{path} is not a regular file")
            _send_json(conn, {"ok": True, "size": info.st_size})
            remaining = info.st_size
            while remaining > 0:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    # The file shrank while we read it: pad so the framing stays correct.
                    chunk = b"\0" * remaining
                conn.sendall(chunk)
                remaining -= len(chunk)
        return None

    def op_list(self, request: Json, conn: socket.socket) -> Json:
        path = _readable_path(request.get("path") or _HOME)
        depth = request.get("depth") or 1
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise _Fail(400, f"depth must be an integer of at least 1, not {depth!r}")
        try:
            os.listdir(path)
        except FileNotFoundError:
            raise _Fail(404, f"{path} not found") from None
        except NotADirectoryError:
            raise _Fail(400, f"{path} is not a directory") from None
        return {"items": _list_tree(path, depth)}

    def op_info(self, request: Json, conn: socket.socket) -> Json:
        return _file_info(_readable_path(request.get("path")))

    def op_delete(self, request: Json, conn: socket.socket) -> Json:
        path = _writable_path(request.get("path"))
        if path in _WRITABLE_ROOTS:
            raise _Fail(400, f"refusing to delete {path}")
        if os.path.isdir(path) and not os.path.islink(path):
            if not request.get("recursive"):
                try:
                    os.rmdir(path)
                except OSError:
                    raise _Fail(400, f"{path} is a non-empty directory; pass recursive=true") from None
            else:
                import shutil

                shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        else:
            raise _Fail(404, f"{path} not found")
        return {}

    def op_move(self, request: Json, conn: socket.socket) -> Json:
        return _move(request)

    def op_find(self, request: Json, conn: socket.socket) -> Json:
        return {"matches": _find_in_files(request)}

    def op_search(self, request: Json, conn: socket.socket) -> Json:
        return {"files": _search_files(request)}

    def op_replace(self, request: Json, conn: socket.socket) -> Json:
        return {"results": _replace_in_files(request)}

    def op_permissions(self, request: Json, conn: socket.socket) -> Json:
        return _set_permissions(request)

    # ---- port bridge ----------------------------------------------------------------------------

    def op_connect(self, request: Json, conn: socket.socket) -> None:
        port = request.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise _Fail(400, "port must be an integer between 1 and 65535")
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            raise _Fail(502, f"nothing is listening on port {port} in the sandbox") from None
        upstream.settimeout(None)
        _send_json(conn, {"ok": True})
        _splice(conn, upstream)
        return None

    def op_egress_start(self, request: Json, conn: socket.socket) -> Json:
        """Open the sandbox's way out (the server's egress proxy, see localserver/egress.py):
        relay ``127.0.0.1:port`` to the proxy's socket and point the proxy variables of every
        later command, session and code run at it. Asked once per start, before sandbox code runs."""
        port, proxy_socket = request["port"], request["socket"]
        if not isinstance(port, int) or not isinstance(proxy_socket, str):
            raise _Fail(400, "port must be an integer and socket a path")
        with self.lock:
            if not self.config.get("egress_port"):
                _start_egress_relay(port, proxy_socket)
                proxy = f"http://127.0.0.1:{port}"
                names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
                env = {
                    **dict.fromkeys(names, proxy),
                    "NO_PROXY": "localhost,127.0.0.1",
                    "no_proxy": "localhost,127.0.0.1",
                }
                self.config["env"] = {**self.config.get("env", {}), **env}
                self.config["egress_port"] = port
        return {"port": port}


# ---- file-system operations beyond upload/download (the SDK's find, search, replace, move, chmod) --

# Each answer is one JSON line the server holds in memory: results are capped, and past a cap the
# request is refused (narrow it) rather than answered in part as if that were all.
_MAX_LISTED = 50_000
_MAX_FOUND = 10_000
_MAX_MATCH_CHARS = 4096
_MAX_SEARCHED_FILE = 64 << 20
_MAX_REPLACE_FILES = 1000
_MAX_REPLACED_SIZE = 64 << 20
_BINARY_PEEK = 512


def _list_tree(path: str, depth: int) -> list[Json]:
    """The entries under ``path`` down to ``depth`` levels, never following a symlinked directory."""
    import stat

    items: list[Json] = []
    level = [path]
    for _ in range(depth):
        below: list[str] = []
        for directory in level:
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue  # unreadable or vanished meanwhile: its entries cannot be listed
            for name in names:
                info = _file_info(os.path.join(directory, name))
                items.append(info)
                if len(items) > _MAX_LISTED:
                    raise _Fail(400, f"{path} holds more than {_MAX_LISTED} entries at depth {depth}")
                if stat.S_ISDIR(os.lstat(info["path"]).st_mode):
                    below.append(info["path"])
        level = below
    return items


def _required_text(request: Json, field: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not value:
        raise _Fail(400, f"{field} is required and must be a non-empty string")
    if "\0" in value:
        raise _Fail(400, f"{field} must not contain NUL bytes")
    return value


def _walk_files(root: str) -> Any:
    """Regular files under ``root`` (or ``root`` itself), symlinks neither followed nor listed."""
    import stat

    if not os.path.isdir(root) or os.path.islink(root):
        if os.path.isfile(root) and not os.path.islink(root):
            yield root
        elif not os.path.lexists(root):
            raise _Fail(404, f"{root} not found")
        return
    for directory, _dirs, names in os.walk(root, followlinks=False):
        for name in sorted(names):
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    yield path


def _find_in_files(request: Json) -> list[Json]:
    """Lines containing ``pattern`` (plain text, as Daytona's) in the text files under ``path``."""
    root = _readable_path(request.get("path"))
    pattern = _required_text(request, "pattern")
    matches: list[Json] = []
    for path in _walk_files(root):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as handle:
            if os.fstat(fd).st_size > _MAX_SEARCHED_FILE or b"\0" in handle.read(_BINARY_PEEK):
                continue  # binary files, as Daytona's, and huge ones are not searched
            handle.seek(0)
            for number, raw in enumerate(handle, start=1):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if pattern not in line:
                    continue
                if len(matches) >= _MAX_FOUND:
                    raise _Fail(400, f"more than {_MAX_FOUND} lines match {pattern!r}: narrow the search")
                matches.append({"file": path, "line": number, "content": line[:_MAX_MATCH_CHARS]})
    return matches


def _glob_regex(pattern: str) -> Any:
    """A glob with ``**`` (any depth), ``*``, ``?``, ``[...]`` and ``{a,b}`` as a compiled regex."""
    import re

    out: list[str] = []
    index, groups = 0, 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 2)
            if end < 0:
                raise _Fail(400, f"invalid glob pattern {pattern!r}: '[' without ']'")
            body = pattern[index + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            index = end
        elif char == "{":
            groups += 1
            out.append("(?:")
        elif char == "}" and groups:
            groups -= 1
            out.append(")")
        elif char == "," and groups:
            out.append("|")
        else:
            out.append(re.escape(char))
        index += 1
    if groups:
        raise _Fail(400, f"invalid glob pattern {pattern!r}: '{{' without '}}'")
    try:
        return re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as error:
        raise _Fail(400, f"invalid glob pattern {pattern!r}: {error}") from None


def _search_files(request: Json) -> list[str]:
    """Files under ``path`` whose path relative to it matches the glob; a pattern without a ``/``
    also matches a file's name at any depth (what Daytona's older daemons did)."""
    root = _readable_path(request.get("path"))
    pattern = _required_text(request, "pattern")
    matcher = _glob_regex(pattern)
    by_name = "/" not in pattern
    found: list[str] = []
    for path in _walk_files(root):
        relative = os.path.relpath(path, root) if path != root else os.path.basename(path)
        if matcher.match(relative) or (by_name and matcher.match(os.path.basename(path))):
            if len(found) >= _MAX_FOUND:
                raise _Fail(400, f"more than {_MAX_FOUND} files match {pattern!r}: narrow the search")
            found.append(path)
    return found


def _replace_in_files(request: Json) -> list[Json]:
    """Replace every occurrence of ``pattern`` by ``newValue`` in each file; a result per file."""
    files = request.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise _Fail(400, "files must be a list of paths")
    if len(files) > _MAX_REPLACE_FILES:
        raise _Fail(400, f"files lists {len(files)} paths; at most {_MAX_REPLACE_FILES} per request")
    pattern = _required_text(request, "pattern")
    new_value = request.get("newValue")
    if not isinstance(new_value, str):
        raise _Fail(400, "newValue is required and must be a string")
    results: list[Json] = []
    for raw in files:
        try:
            _replace_in_file(_writable_path(raw), pattern.encode(), new_value.encode())
            results.append({"file": raw, "success": True})
        except _Fail as failure:
            results.append({"file": raw, "success": False, "error": failure.message})
        except OSError as error:
            results.append({"file": raw, "success": False, "error": f"{error.strerror or error}"})
    return results


def _replace_in_file(path: str, pattern: bytes, new_value: bytes) -> None:
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Fail(400, f"{path} is not a regular file")
        if info.st_size > _MAX_REPLACED_SIZE:
            raise _Fail(400, f"{path} is larger than {_MAX_REPLACED_SIZE} bytes")
        content = handle.read()
    count = content.count(pattern)
    if len(content) + count * (len(new_value) - len(pattern)) > _MAX_REPLACED_SIZE:
        raise _Fail(400, f"{path} would grow past {_MAX_REPLACED_SIZE} bytes")
    if not count:
        return
    # Written beside it and renamed over: a failure (disk full) leaves the file as it was.
    temp = f"{os.path.dirname(path)}/.daytonaflow-replace-{os.urandom(6).hex()}"
    out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IMODE(info.st_mode))
    try:
        with os.fdopen(out, "wb") as handle:
            handle.write(content.replace(pattern, new_value))
        os.rename(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _move(request: Json) -> Json:
    import shutil

    source = _writable_path(request.get("source"))
    destination = _writable_path(request.get("destination"))
    if source in _WRITABLE_ROOTS or destination in _WRITABLE_ROOTS:
        raise _Fail(400, f"refusing to move {source} to {destination}: a root of the sandbox's data")
    if not os.path.lexists(source):
        raise _Fail(404, f"{source} not found")
    if os.path.lexists(destination):
        raise _Fail(409, f"{destination} already exists")
    try:
        os.rename(source, destination)
    except OSError as error:
        if error.errno != 18:  # EXDEV: /tmp and /home/daytona are separate filesystems
            raise _Fail(400, f"cannot move {source} to {destination}: {error.strerror}") from None
        shutil.move(source, destination)
    return {}


def _own_id(raw: Any, field: str, names: tuple[str, ...], own: int) -> int | None:
    """``owner``/``group`` as the sandbox's own id; any other is refused (none other may be set)."""
    if raw is None or raw == "":
        return None
    if str(raw) in (*names, str(own)):
        return own
    raise _Fail(
        400,
        f"{field} {raw!r} is not allowed: files in the sandbox can only belong to its own user "
        f"daytona (uid {own})",
    )


def _set_permissions(request: Json) -> Json:
    path = _writable_path(request.get("path"))
    if not os.path.lexists(path):
        raise _Fail(404, f"{path} not found")
    if os.path.islink(path):
        raise _Fail(400, f"{path} is a symlink; set the permissions of its target")
    raw_mode = request.get("mode")
    mode = None
    if raw_mode not in (None, ""):
        try:
            mode = int(str(raw_mode), 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o7777:
            raise _Fail(400, f"mode {raw_mode!r} is not an octal permission such as 755")
    uid = _own_id(request.get("owner"), "owner", ("daytona",), os.getuid())
    gid = _own_id(request.get("group"), "group", ("daytona",), os.getgid())
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid, follow_symlinks=False)
    if mode is not None:
        os.chmod(path, mode)
    return {}


class _MarkedOutput:
    """Writes each chunk to an output behind a stream's marker (stdout 1-1-1, stderr 2-2-2)."""

    def __init__(self, output: _Output, marker: bytes) -> None:
        self.output = output
        self.marker = marker

    def write(self, data: bytes) -> None:
        self.output.write(self.marker + data)


def _marked_outputs(cmd: _Command, out_fd: int, err_fd: int) -> dict[int, list[Any]]:
    """Where the pump copies a session command's stdout and stderr."""
    return {
        out_fd: [cmd.stdout, cmd.output, _MarkedOutput(cmd.marked, b"\x01\x01\x01")],
        err_fd: [cmd.stderr, cmd.output, _MarkedOutput(cmd.marked, b"\x02\x02\x02")],
    }


def _follow_framed(cmd: _Command, conn: socket.socket) -> None:
    """Send a command's stdout and stderr as frames until it has ended and all is sent.

    A frame is one byte naming the stream (1 stdout, 2 stderr), four bytes of big-endian length
    and the bytes; a frame of stream 0 and length 0 says the command ended and nothing is left.
    What a slow follower missed of the dropped middle of either stream comes as the omitted
    marker on stdout.
    """
    offsets = {1: 0, 2: 0}
    while True:
        with cmd.cond:
            streams = {1: cmd.stdout, 2: cmd.stderr}
            while not cmd.done.is_set() and all(offsets[s] >= streams[s].total for s in streams):
                cmd.cond.wait()
            frames = []
            for stream, output in streams.items():
                skipped = output.skipped_at(offsets[stream])
                if skipped:
                    frames.append((1, _omitted(skipped)))
                    offsets[stream] += skipped
                chunk, offsets[stream] = output.read_kept(offsets[stream])
                if chunk:
                    frames.append((stream, chunk))
            finished = cmd.done.is_set() and all(offsets[s] >= streams[s].total for s in streams)
        for stream, data in frames:
            conn.sendall(bytes([stream]) + len(data).to_bytes(4, "big") + data)
        if finished:
            conn.sendall(b"\0\0\0\0\0")
            return


def _other_processes(me: int, live_only: bool = False) -> list[int]:
    """Pids of the sandbox but ours and init's; ``live_only`` leaves out zombies."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (1, me):
            continue
        if live_only:
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        continue
            except OSError:
                continue
        pids.append(int(entry))
    return pids


def _start_thread(target: Any, *args: Any) -> None:
    """Start a daemon thread; threads count against the sandbox's process limit, so a full
    process table (a fork bomb) is a 503 for this request, never a crash of the agent."""
    try:
        threading.Thread(target=target, args=args, daemon=True).start()
    except RuntimeError:
        raise _Fail(503, "the sandbox has reached its process limit; retry once processes end") from None


def _start_egress_relay(port: int, proxy_socket: str) -> None:
    """Listen on 127.0.0.1:``port`` and splice each connection to the Unix socket of the proxy
    (a thread per connection; the proxy bounds how many it serves at once)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)

    def relay(client: socket.socket) -> None:
        try:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(proxy_socket)
            except OSError:
                upstream.close()
                return
            _splice(client, upstream)
        finally:
            client.close()

    def accept_forever() -> None:
        import time

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                time.sleep(0.1)  # out of fds, say: wait for some to close rather than spin
                continue
            try:
                _start_thread(relay, client)
            except _Fail:
                client.close()

    _start_thread(accept_forever)


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides have ended. A side that can no longer be written to (a
    server that answered and closed without reading the whole request) has what is sent to it
    discarded, so the other side is never stuck writing and still gets the answer."""
    import select

    open_ends = {a: b, b: a}
    deaf: set[socket.socket] = set()
    try:
        while open_ends:
            ready, _, _ = select.select(list(open_ends), [], [])
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                peer = open_ends[sock]
                if not data:
                    del open_ends[sock]
                    with contextlib.suppress(OSError):
                        peer.shutdown(socket.SHUT_WR)
                    continue
                if peer in deaf:
                    continue
                try:
                    peer.sendall(data)
                except OSError:
                    deaf.add(peer)
    finally:
        b.close()


class _Command:
    def __init__(self, cmd_id: str, command: str) -> None:
        self.cmd_id = cmd_id
        self.command = command
        self.exit_code: int | None = None
        self.cond = threading.Condition()
        self.output = _Output(self.cond)
        self.stdout = _Output(self.cond)
        self.stderr = _Output(self.cond)
        # The combined output with each chunk behind its stream's marker, as SDKs older than
        # 0.163 split it themselves (see ``_marked_outputs``).
        self.marked = _Output(self.cond)
        self.done = threading.Event()
        self.drained = threading.Event()
        self.flushed = threading.Event()
        self.flush_read, self.flush_write = os.pipe2(os.O_CLOEXEC)

    def end(self, exit_code: int) -> None:
        """Record the exit status once the output the command wrote is copied (the pump may lag
        on a busy machine, and a background child may hold the stream open past the end)."""
        _take_output(self.drained, self.flush_write, self.flushed)
        self.exit_code = exit_code
        with self.cond:
            self.done.set()
            # Followers wait on the outputs' condition: the exit wakes them at once, even while
            # a background child keeps the streams open.
            self.cond.notify_all()

    def describe(self) -> Json:
        return {"id": self.cmd_id, "command": self.command, "exitCode": self.exit_code}


class _Session:
    """A long-lived bash: commands run one after another and share its cwd and environment.

    Each command's stdout and stderr go to FIFOs the agent reads; its exit status comes back on a
    control pipe the command itself cannot see (its fd is closed for the command).
    """

    def __init__(self, agent: _Agent, session_id: str, env: dict[str, str]) -> None:
        import subprocess

        self.agent = agent
        self.session_id = session_id
        self.commands: dict[str, _Command] = {}
        self.order: list[str] = []
        self.lock = threading.Lock()
        self.dir = f"{_STATE_DIR}/sessions/{agent.next_id('s')}"
        os.makedirs(self.dir, exist_ok=True)
        control_read, control_write = os.pipe()
        self.control_fd = control_write
        self.proc = agent.spawn(
            ["/bin/bash", "--noprofile", "--norc"],
            _HOME,
            env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(control_write,),
        )
        os.close(control_write)
        try:
            _start_thread(self._watch_control, control_read)
        except _Fail:
            self.kill()
            os.close(control_read)
            raise

    def _watch_control(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as control:
            for line in control:
                cmd_id, _, code = line.decode().strip().partition(" ")
                command = self.commands.get(cmd_id)
                if command is not None:
                    command.end(int(code) if code.lstrip("-").isdigit() else -1)
        # The shell is gone (exit in a command, or killed): nothing still pending will finish.
        code = self.proc.wait()
        self.agent.children.discard(self.proc.pid)
        for command in list(self.commands.values()):
            if not command.done.is_set():
                command.end(code if code >= 0 else 128 - code)

    def execute(self, command: str) -> _Command:
        cmd_id = self.agent.next_id("cmd-")
        cmd = _Command(cmd_id, command)
        base = f"{self.dir}/{cmd_id}"
        script = f"{base}.sh"
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(command + "\n")
        os.mkfifo(f"{base}.out", 0o600)
        os.mkfifo(f"{base}.err", 0o600)
        out_fd = os.open(f"{base}.out", os.O_RDONLY | os.O_NONBLOCK)
        err_fd = os.open(f"{base}.err", os.O_RDONLY | os.O_NONBLOCK)
        # Our own writer ends keep the readers from seeing end-of-file before bash opens the FIFOs.
        keep_out = os.open(f"{base}.out", os.O_WRONLY | os.O_NONBLOCK)
        keep_err = os.open(f"{base}.err", os.O_WRONLY | os.O_NONBLOCK)
        for fd in (out_fd, err_fd):
            os.set_blocking(fd, True)
        try:
            _start_thread(
                _pump,
                _marked_outputs(cmd, out_fd, err_fd),
                cmd.drained,
                cmd.flush_read,
                cmd.flushed,
            )
        except _Fail:
            for fd in (out_fd, err_fd, keep_out, keep_err, cmd.flush_read, cmd.flush_write):
                os.close(fd)
            raise
        try:
            _start_thread(self._finish, cmd, base, (keep_out, keep_err))
        except _Fail:
            # Closing our writer ends lets the pump see end-of-file and finish.
            for fd in (keep_out, keep_err, cmd.flush_write):
                os.close(fd)
            raise
        with self.lock:
            self.commands[cmd_id] = cmd
            self.order.append(cmd_id)
            self._forget_old_output()
        control = self.control_fd
        wrapper = (
            f"{{ . '{script}'; }} >'{base}.out' 2>'{base}.err' </dev/null {control}>&-; "
            f'echo "{cmd_id} $?" >&{control}\n'
        )
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(wrapper.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            cmd.stderr.write(b"session shell has exited\n")
            cmd.end(-1)
        return cmd

    def _forget_old_output(self) -> None:
        """Keep the output of the last commands only, so a long session's memory stays bounded."""
        for old_id in self.order[:-_KEPT_COMMAND_OUTPUTS]:
            old = self.commands[old_id]
            if old.done.is_set() and old.output.total:
                for name in ("output", "stdout", "stderr", "marked"):
                    forgotten = _Output(old.cond)
                    forgotten.write(b"[daytonaflow: output of this old command was discarded]\n")
                    forgotten.close()
                    setattr(old, name, forgotten)

    def _finish(self, cmd: _Command, base: str, keepers: tuple[int, ...]) -> None:
        cmd.done.wait()
        for fd in keepers:
            os.close(fd)
        cmd.drained.wait()
        for output in (cmd.output, cmd.stdout, cmd.stderr, cmd.marked):
            output.close()
        for suffix in (".sh", ".out", ".err"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base + suffix)

    def command(self, cmd_id: str) -> _Command:
        command = self.commands.get(cmd_id)
        if command is None:
            raise _Fail(404, f"command {cmd_id!r} not found in session {self.session_id!r}")
        return command

    def describe(self) -> Json:
        with self.lock:
            commands = [self.commands[c].describe() for c in self.order]
        return {"sessionId": self.session_id, "commands": commands}

    def kill(self) -> None:
        """End the shell and everything its commands started, in whatever process group: a command
        under coreutils ``timeout`` runs in a group of its own, which the shell's group does not reach."""
        import signal

        # Once the shell is reaped its pid may be another process's: no descendants are looked up
        # then (its own group keeps its id while any member lives, so that kill stays safe).
        reaped = self.proc.returncode is not None
        groups = set() if reaped else _descendant_groups(self.proc.pid) - {os.getpgrp()}
        for pgid in (self.proc.pid, *groups):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def _descendant_groups(root: int) -> set[int]:
    """The process groups of the processes descending from ``root`` (read from ``/proc`` first, so
    none is reparented away by the kills that follow)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)], groups[int(entry)] = int(fields[1]), int(fields[2])
    found: set[int] = set()
    for pid in parents:
        ancestor, steps = pid, 0
        # Bounded: a pid reused while /proc was read can make the parent links a cycle.
        while ancestor > 1 and ancestor != root and steps <= len(parents):
            ancestor, steps = parents.get(ancestor, 0), steps + 1
        if ancestor == root and pid != root:
            found.add(groups[pid])
    return found


def _clean_path(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise _Fail(400, "path is required")
    if "\0" in raw:
        raise _Fail(400, "path must not contain NUL bytes")
    if ".." in raw.replace("\\", "/").split("/"):
        raise _Fail(400, f"path {raw!r} must not contain '..'")
    path = raw if raw.startswith("/") else f"{_HOME}/{raw}"
    return os.path.normpath(path)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _writable_path(raw: Any) -> str:
    """A path in the sandbox's own data whose parent, symlinks resolved, stays there too.

    A writable root itself (``/home/daytona``, ``/tmp``) qualifies although its parent does not:
    the roots are directories the sandbox is built with, not paths sandbox code can redirect, and
    creating a file directly in one asks for the root as the file's folder.
    """
    path = _clean_path(raw)
    if path in _WRITABLE_ROOTS:
        return path
    parent = os.path.realpath(os.path.dirname(path))
    if not _inside(path, _WRITABLE_ROOTS) or not _inside(parent, _WRITABLE_ROOTS):
        raise _Fail(403, f"{raw!r} is outside the sandbox's writable areas {', '.join(_WRITABLE_ROOTS)}")
    return path


def _readable_path(raw: Any) -> str:
    path = _clean_path(raw)
    real = os.path.realpath(path)
    if not _inside(path, _WRITABLE_ROOTS) or not _inside(real, _WRITABLE_ROOTS):
        raise _Fail(403, f"{raw!r} resolves outside {', '.join(_WRITABLE_ROOTS)}")
    return path


def _file_info(path: str) -> Json:
    import stat

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise _Fail(404, f"{path} not found") from None
    names = {0: "root", os.getuid(): "daytona"}
    return {
        "name": os.path.basename(path) or path,
        "path": path,
        "size": info.st_size,
        "isDir": stat.S_ISDIR(info.st_mode),
        "mode": stat.filemode(info.st_mode),
        "permissions": format(stat.S_IMODE(info.st_mode), "04o"),
        "modTime": _go_time_string(info.st_mtime_ns),
        "modifiedAt": _rfc3339(info.st_mtime_ns),
        "owner": names.get(info.st_uid, str(info.st_uid)),
        "group": names.get(info.st_gid, str(info.st_gid)),
    }


def _utc_parts(ns: int) -> tuple[str, str]:
    """``ns`` since the epoch as UTC seconds (``2006-01-02 15:04:05``) and the fraction's digits
    with trailing zeros dropped, as Go prints them."""
    import time

    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)), f"{fraction:09d}".rstrip("0")


def _go_time_string(ns: int) -> str:
    """Go's ``time.String()`` layout, which Daytona's deprecated ``modTime`` carries."""
    whole, fraction = _utc_parts(ns)
    return f"{whole}{'.' + fraction if fraction else ''} +0000 UTC"


def _rfc3339(ns: int) -> str:
    whole, fraction = _utc_parts(ns)
    return f"{whole.replace(' ', 'T')}{'.' + fraction if fraction else ''}Z"


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            raise _Fail(400, "connection closed mid-request")
        chunks += chunk
    return bytes(chunks)


def _recv_line(conn: socket.socket) -> bytes:
    """The request line, and not a byte past it (raw bytes may follow it): what has arrived is
    peeked at and only the line taken, a system call or two where one per byte took hundreds."""
    data = bytearray()
    while not data.endswith(b"\n"):
        peeked = conn.recv(_LINE_PEEK, socket.MSG_PEEK)
        if not peeked:
            break
        end = peeked.find(b"\n")
        data += conn.recv(end + 1 if end >= 0 else len(peeked))
        if len(data) > _MAX_REQUEST_LINE:
            raise _Fail(413, "request too large")
    return bytes(data)


def _send_json(conn: socket.socket, payload: Json) -> None:
    conn.sendall(json.dumps(payload).encode() + b"\n")


def _serve_connection(agent: _Agent, conn: socket.socket) -> None:
    try:
        request: Json | None = None
        try:
            request = json.loads(_recv_line(conn) or b"null")
            if not isinstance(request, dict):
                raise _Fail(400, "request must be a JSON object")
            handler = getattr(agent, f"op_{request.get('op')}", None)
            if handler is None:
                raise _Fail(400, f"unknown op {request.get('op')!r}")
            answer = handler(request, conn)
            if answer is not None:
                _send_json(conn, {"ok": True, **answer})
        except _Fail as failure:
            _send_json(conn, {"ok": False, "status": failure.status, "message": failure.message})
        except (ValueError, KeyError, TypeError) as error:
            _send_json(conn, {"ok": False, "status": 400, "message": f"bad request: {error}"})
        except BlockingIOError:
            message = "the sandbox has reached its process limit; retry once processes end"
            _send_json(conn, {"ok": False, "status": 503, "message": message})
        except OSError as error:
            _send_json(conn, {"ok": False, "status": 500, "message": f"{type(error).__name__}: {error}"})
        except RuntimeError as error:
            _send_json(conn, {"ok": False, "status": 503, "message": f"agent cannot serve this now: {error}"})
    except OSError:
        pass  # the server hung up
    finally:
        conn.close()


def _apply_limits(config: Json) -> None:
    import resource

    names = {
        "nofile": resource.RLIMIT_NOFILE,
        "fsize": resource.RLIMIT_FSIZE,
        "nproc": resource.RLIMIT_NPROC,
        "as": resource.RLIMIT_AS,
    }
    for name, value in (config.get("rlimits") or {}).items():
        resource.setrlimit(names[name], (int(value), int(value)))


def _make_undumpable() -> None:
    """Sandbox code runs as our uid: without this it could ptrace us or take our fds from /proc/1/fd."""
    import ctypes

    pr_set_dumpable = 4
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def _answer_first_ping(listen_fd: int, lifeline_fd: int) -> None:
    """Answer the server's readiness ping before anything else is imported (``_preload`` runs meanwhile).

    Importing ``json``/``socket``/``threading`` costs more than the rest of the sandbox start, so
    the first connection, always the server's ping, is served with C-level modules alone. A
    server that dies before it pings never connects: end of file on the lifeline ends the wait.
    """
    import _signal  # type: ignore[import-not-found]
    import _socket
    import select

    # Writes past RLIMIT_FSIZE must fail with EFBIG in the agent, not kill it.
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
    ready, _, _ = select.select([listen_fd, lifeline_fd], [], [])
    if lifeline_fd in ready:
        os._exit(0)
    listener = _socket.socket(fileno=listen_fd)
    fd, _ = listener._accept()  # type: ignore[attr-defined]
    conn = _socket.socket(fileno=fd)
    request = b""
    while not request.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        request += chunk
    if b'"ping"' in request:
        conn.sendall(b'{"ok": true, "pid": %d}\n' % os.getpid())
    else:
        conn.sendall(b'{"ok": false, "status": 503, "message": "agent is starting"}\n')
    conn.close()
    listener.detach()


def _exit_with_the_server(lifeline_fd: int) -> None:
    """The server holds the only write end: EOF means it is gone, and so is the sandbox (the
    agent is init: its exit ends every process of the namespace)."""
    try:
        while os.read(lifeline_fd, 1):
            pass
    finally:
        os._exit(0)


def _preload() -> None:
    """Import what serving commands needs while the first ping is awaited and answered.

    Imported on the first command instead, they cost it three times a later one's latency. In a
    thread of its own (``_thread``: ``threading`` is one of them), the ping is not kept waiting
    for them: a short switch interval hands the GIL to the main thread within a millisecond
    when the ping arrives, and the default comes back once all is imported.
    """
    try:
        import contextlib  # noqa: F401
        import json  # noqa: F401
        import select  # noqa: F401
        import signal  # noqa: F401
        import socket  # noqa: F401
        import subprocess  # noqa: F401
        import threading  # noqa: F401
        import time  # noqa: F401
    finally:
        sys.setswitchinterval(_SWITCH_INTERVAL_SECONDS)


def main(argv: list[str]) -> int:
    import _thread

    listen_fd, lifeline_fd = int(argv[1]), int(argv[2])
    sys.setswitchinterval(_PRELOAD_SWITCH_INTERVAL_SECONDS)
    _thread.start_new_thread(_preload, ())
    _answer_first_ping(listen_fd, lifeline_fd)
    import contextlib
    import json
    import socket
    import threading

    globals().update(contextlib=contextlib, json=json, socket=socket, threading=threading)
    config: Json = json.loads(argv[3])
    listener = socket.socket(fileno=listen_fd)
    os.set_inheritable(listen_fd, False)
    os.makedirs(_STATE_DIR, mode=0o700, exist_ok=True)
    _apply_limits(config)
    _make_undumpable()
    os.set_inheritable(lifeline_fd, False)
    _start_thread(_exit_with_the_server, lifeline_fd)
    agent = _Agent(config)
    if os.getpid() == 1:
        import signal

        wakeup_read, wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        # The kernel drops signals sandbox code sends its init, unless init handles them: Python's
        # own SIGINT handler would let `kill -INT 1` end the agent. A handler that does nothing,
        # not SIG_IGN, so that commands (which inherit ignored signals) still get SIGINT.
        signal.signal(signal.SIGINT, lambda signum, frame: None)
        _start_thread(agent.reap_orphans, wakeup_read)
    while True:
        conn, _ = listener.accept()
        try:
            _start_thread(_serve_connection, agent, conn)
        except _Fail as failure:
            # No thread to serve it (the process table is full): answer from here, after reading
            # the request line, since closing a socket with unread bytes resets it, answer and all.
            with contextlib.suppress(OSError, _Fail):
                conn.settimeout(2.0)
                _recv_line(conn)
                _send_json(conn, {"ok": False, "status": failure.status, "message": failure.message})
            conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))

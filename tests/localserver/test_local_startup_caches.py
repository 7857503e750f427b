"""What a server's start makes once and reuses: the synthetic /etc, the compiled agent, the loop
probe's answer; each made again when what it was made from changes. And a stop that still
answers the requests in flight."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from localserver_testkit import served

from daytonaflow.localserver import disk
from daytonaflow.localserver._bwrap import compile_agent
from daytonaflow.localserver._etc import write_synthetic_etc
from daytonaflow.localserver.disk import DiskQuotaUnavailableError, LoopVolumes, VolumeError

LOOP_AVAILABLE = os.geteuid() == 0 and Path("/dev/loop-control").exists() and shutil.which("mkfs.ext4")
needs_loop = pytest.mark.skipif(not LOOP_AVAILABLE, reason="needs root and loop devices")


# ---- the synthetic /etc ------------------------------------------------------------------------------


@pytest.fixture
def host_etc(tmp_path: Path) -> Path:
    """A host /etc of a few of the copied entries, with private material beside them."""
    source = tmp_path / "host-etc"
    (source / "ssl" / "certs").mkdir(parents=True)
    (source / "ssl" / "certs" / "root.pem").write_text("certificate\n")
    (source / "ssl" / "certs" / "other.pem").write_text("other certificate\n")
    (source / "ssl" / "certs" / "1a2b3c4d.0").symlink_to("root.pem")
    (source / "ssl" / "private").mkdir()
    (source / "ssl" / "private" / "server.key").write_text("secret key\n")
    (source / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (source / "os-release").symlink_to("../usr/lib/os-release")
    (source / "shadow").write_text("root:$6$secret:::\n")
    return source


def test_a_synthetic_etc_over_unchanged_host_files_is_not_copied_again(
    host_etc: Path, tmp_path: Path
) -> None:
    etc = tmp_path / "state" / "etc"
    assert write_synthetic_etc(etc, source=host_etc)
    copied = (etc / "ld.so.conf").stat().st_ino
    assert not write_synthetic_etc(etc, source=host_etc)
    assert (etc / "ld.so.conf").stat().st_ino == copied


def test_a_host_file_changed_in_place_is_copied_again_even_with_its_size_and_mtime_kept(
    host_etc: Path, tmp_path: Path
) -> None:
    etc = tmp_path / "state" / "etc"
    write_synthetic_etc(etc, source=host_etc)
    conf = host_etc / "ld.so.conf"
    before = conf.stat()
    conf.write_text("include /evil/ld.so.conf.d/*.conf\n"[: before.st_size])
    os.utime(conf, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert write_synthetic_etc(etc, source=host_etc)
    assert (etc / "ld.so.conf").read_text() == conf.read_text()


def test_a_host_file_added_to_a_copied_directory_is_copied(host_etc: Path, tmp_path: Path) -> None:
    etc = tmp_path / "state" / "etc"
    write_synthetic_etc(etc, source=host_etc)
    (host_etc / "ssl" / "certs" / "new.pem").write_text("new certificate\n")
    assert write_synthetic_etc(etc, source=host_etc)
    assert (etc / "ssl" / "certs" / "new.pem").read_text() == "new certificate\n"


def test_a_symlink_repointed_in_a_copied_directory_is_copied_again(host_etc: Path, tmp_path: Path) -> None:
    etc = tmp_path / "state" / "etc"
    write_synthetic_etc(etc, source=host_etc)
    certs = host_etc / "ssl" / "certs"
    (certs / "link.tmp").symlink_to("other.pem")
    (certs / "link.tmp").replace(certs / "1a2b3c4d.0")  # as ``ln -sf`` or update-ca-certificates
    assert write_synthetic_etc(etc, source=host_etc)
    assert os.readlink(etc / "ssl" / "certs" / "1a2b3c4d.0") == "other.pem"


def test_a_tampered_copy_is_made_again_from_the_host(host_etc: Path, tmp_path: Path) -> None:
    etc = tmp_path / "state" / "etc"
    write_synthetic_etc(etc, source=host_etc)
    (etc / "passwd").write_text("root::0:0::/:/bin/sh\n")
    (etc / "hosts").chmod(0o666)
    (etc / "ssl" / "certs" / "1a2b3c4d.0").unlink()
    (etc / "ssl" / "certs" / "1a2b3c4d.0").symlink_to("/proc/self/root/etc/shadow")
    assert write_synthetic_etc(etc, source=host_etc)
    assert os.readlink(etc / "ssl" / "certs" / "1a2b3c4d.0") == "root.pem"
    assert (etc / "passwd").read_text().startswith("root:x:0:0:")
    assert (etc / "hosts").stat().st_mode & 0o777 == 0o644


def test_copies_a_killed_server_left_half_made_are_removed_at_the_next_refresh(
    host_etc: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    (state / "etc.4242.0123abcd.tmp" / "ssl").mkdir(parents=True)
    (state / "etc.4242.0123abcd.tmp.old").mkdir()
    write_synthetic_etc(state / "etc", source=host_etc)
    assert sorted(p.name for p in state.iterdir()) == ["etc", "etc.signature"]


def test_a_cached_etc_holds_no_private_material_and_no_leftover(host_etc: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    etc = state / "etc"
    write_synthetic_etc(etc, source=host_etc)
    (host_etc / "ssl" / "private" / "another.key").write_text("secret\n")
    (host_etc / "ld.so.conf").write_text("changed\n")
    assert write_synthetic_etc(etc, source=host_etc)
    assert not (etc / "ssl" / "private").exists()
    assert not (etc / "shadow").exists()
    assert etc.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in state.iterdir()) == ["etc", "etc.signature"]


# ---- the compiled agent ------------------------------------------------------------------------------


@pytest.fixture
def agent_source(tmp_path: Path) -> Path:
    source = tmp_path / "agent.py"
    source.write_text("print('agent')\n")
    return source


def test_an_unchanged_agent_is_not_compiled_again(agent_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "runtime" / "agent.pyc"
    target.parent.mkdir()
    assert compile_agent(sys.executable, agent_source, target)
    compiled = target.stat().st_ino
    assert not compile_agent(sys.executable, agent_source, target)
    assert target.stat().st_ino == compiled


def test_a_changed_agent_source_is_compiled_again(agent_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "agent.pyc"
    compile_agent(sys.executable, agent_source, target)
    before = target.read_bytes()
    agent_source.write_text("print('agent, changed')\n")
    assert compile_agent(sys.executable, agent_source, target)
    assert target.read_bytes() != before


def test_an_agent_for_another_interpreter_is_compiled_again(agent_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "agent.pyc"
    compile_agent(sys.executable, agent_source, target)
    other = tmp_path / "python3"
    other.symlink_to(sys.executable)
    assert compile_agent(str(other), agent_source, target)


def test_a_damaged_compiled_agent_is_compiled_again(agent_source: Path, tmp_path: Path) -> None:
    target = tmp_path / "agent.pyc"
    compile_agent(sys.executable, agent_source, target)
    target.write_bytes(target.read_bytes()[:10])
    assert compile_agent(sys.executable, agent_source, target)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- the loop probe ----------------------------------------------------------------------------------


@pytest.fixture
def attaches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Every test filesystem mounted, under a boot id of the test's own."""
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("boot-one\n")
    monkeypatch.setattr(disk, "BOOT_ID", boot_id)
    mounted: list[Path] = []
    real_attach = LoopVolumes.attach

    def counting_attach(self: LoopVolumes, directory: Path, size_bytes: int) -> Path:
        mounted.append(directory)
        return real_attach(self, directory, size_bytes)

    monkeypatch.setattr(LoopVolumes, "attach", counting_attach)
    return mounted


@needs_loop
def test_a_successful_loop_probe_is_not_repeated_within_one_boot(
    attaches: list[Path], tmp_path: Path
) -> None:
    records = tmp_path / "records"
    LoopVolumes.probe(tmp_path, records)
    LoopVolumes.probe(tmp_path, records)
    assert len(attaches) == 1


@needs_loop
def test_a_loop_probe_is_repeated_after_a_reboot(attaches: list[Path], tmp_path: Path) -> None:
    records = tmp_path / "records"
    LoopVolumes.probe(tmp_path, records)
    disk.BOOT_ID.write_text("boot-two\n")
    LoopVolumes.probe(tmp_path, records)
    assert len(attaches) == 2


@needs_loop
def test_a_failed_loop_probe_is_not_recorded(
    attaches: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = tmp_path / "records"
    with monkeypatch.context() as patched:
        patched.setattr(LoopVolumes, "detach", staticmethod(_failing_detach))
        with pytest.raises(DiskQuotaUnavailableError):
            LoopVolumes.probe(tmp_path, records)
    LoopVolumes.probe(tmp_path, records)
    assert len(attaches) == 2


@needs_loop
def test_a_recorded_probe_that_a_failed_mount_belies_is_probed_again(
    attaches: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = tmp_path / "records"
    volumes = LoopVolumes.probe(tmp_path, records)
    home = tmp_path / "home-of-a-sandbox"
    home.mkdir()
    with monkeypatch.context() as patched:
        patched.setattr(disk, "_mount_on_loop_device", _failing_mount)
        volumes.mount = "/bin/false"  # mount(8), the fallback, fails too
        with pytest.raises(VolumeError):
            volumes.attach(home, 8 << 20)
    LoopVolumes.probe(tmp_path, records)
    assert len(attaches) == 3  # the probe, the failed mount, the probe again


@needs_loop
def test_no_probe_record_is_trusted_without_a_boot_id(
    attaches: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk, "BOOT_ID", tmp_path / "no-such-file")
    LoopVolumes.probe(tmp_path, tmp_path / "records")
    LoopVolumes.probe(tmp_path, tmp_path / "records")
    assert len(attaches) == 2


def _failing_detach(directory: Path) -> None:
    raise VolumeError(f"cannot unmount {directory}: forced by the test")


def _failing_mount(image: Path, volume: Path) -> None:
    raise OSError("no loop device: forced by the test")


# ---- stopping ----------------------------------------------------------------------------------------


@pytest.mark.sandbox
def test_a_request_in_flight_when_the_server_stops_gets_its_answer() -> None:
    with served(keep_spare=False) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        with httpx.Client(headers=headers, timeout=60) as http:
            sandbox_id = http.post(f"{server.api_url}/sandbox", json={}).json()["id"]
            answers: list[httpx.Response] = []
            slow = threading.Thread(
                target=lambda: answers.append(
                    http.post(
                        f"{server.toolbox_url}/{sandbox_id}/process/execute",
                        json={"command": "sleep 0.8; echo finished"},
                    )
                )
            )
            slow.start()
            time.sleep(0.3)  # the command runs; the stop comes while its request waits
            server.stop()
            slow.join(timeout=60)
    assert answers[0].status_code == 200
    assert answers[0].json()["result"].strip() == "finished"

"""A seccomp filter refusing the syscalls sandboxes never need and kernel exploits often use.

Namespaces and dropped capabilities already make most of these fail; the filter removes the
kernel code behind them from the sandbox's reach (keyrings, eBPF, perf events, io_uring,
userfaultfd, module and kexec loading, mount APIs…). It is a classic BPF program handed to
bubblewrap (``--seccomp FD``), built here so no libseccomp is needed; hosts whose architecture
has no syscall table below run without it, and the isolation report says so.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

# Syscall numbers of x86_64 (asm/unistd_64.h).
_REFUSED_X86_64 = {
    "syslog": 103,
    "vhangup": 153,
    "pivot_root": 155,
    "acct": 163,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "perf_event_open": 298,
    "open_by_handle_at": 304,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}

_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_IF_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_IF_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
_OFFSET_NR = 0  # struct seccomp_data: int nr; __u32 arch; ...
_OFFSET_ARCH = 4
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_EPERM = 0x00050000 | errno.EPERM


def refused_syscalls() -> tuple[str, ...]:
    """The syscalls the filter refuses on this host (empty when it has no filter)."""
    return tuple(_REFUSED_X86_64) if platform.machine() == "x86_64" else ()


def filter_program() -> bytes | None:
    """The filter as ``struct sock_filter`` records, or ``None`` on an unsupported architecture.

    Foreign-architecture syscalls (an x86_64 host also runs i386 code) kill the process: their
    numbers mean other syscalls. x32 syscalls are refused with ``EPERM``.
    """
    if platform.machine() != "x86_64":
        return None
    program = [
        (_LOAD_WORD, 0, 0, _OFFSET_ARCH),
        (_JUMP_IF_EQUAL, 1, 0, _AUDIT_ARCH_X86_64),
        (_RETURN, 0, 0, _RET_KILL_PROCESS),
        (_LOAD_WORD, 0, 0, _OFFSET_NR),
        (_JUMP_IF_AT_LEAST, 0, 1, _X32_SYSCALL_BIT),
        (_RETURN, 0, 0, _RET_EPERM),
    ]
    for number in _REFUSED_X86_64.values():
        program += [(_JUMP_IF_EQUAL, 0, 1, number), (_RETURN, 0, 0, _RET_EPERM)]
    program.append((_RETURN, 0, 0, _RET_ALLOW))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def filter_fd(program: bytes) -> int:
    """A readable fd holding ``program`` from its start, for bubblewrap's ``--seccomp``."""
    fd = os.memfd_create("daytonaflow-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd

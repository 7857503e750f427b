"""A seccomp filter refusing the syscalls sandboxes never need and kernel exploits often use.

Namespaces and dropped capabilities already make most of these fail; the filter removes the
kernel code behind them from the sandbox's reach (keyrings, eBPF, perf events, io_uring,
userfaultfd, module and kexec loading, mount APIs…). It is a classic BPF program handed to
bubblewrap (``--seccomp FD``), built here so no libseccomp is needed; hosts whose architecture
has no syscall table below run without it, and the isolation report says so.

A second group of syscalls is allowed on the caller only. Sandbox code runs as the same uid as
the agent (the namespace's pid 1), and the kernel lets a process change the resource limits,
nice value, io priority, scheduling policy and CPU affinity of any other process of its uid:
without these checks a command could starve the agent of file descriptors or processes, or of
CPU and disk time, with ``prlimit --pid 1``, ``renice``, ``ionice``, ``chrt`` or ``taskset -p``.
Aiming at a thread of the agent is the same as aiming at the agent, so every other pid is
refused, not just 1.
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

# name: (number, index of its pid/"who" argument, index of its "which" argument or None, the
# "which" value that selects every process of a uid or None). Allowed only on the caller: pid 0.
_SELF_ONLY_X86_64: dict[str, tuple[int, int, int | None, int | None]] = {
    "sched_setparam": (142, 0, None, None),
    "sched_setscheduler": (144, 0, None, None),
    "setpriority": (141, 1, 0, 2),  # PRIO_USER
    "ioprio_set": (251, 1, 0, 3),  # IOPRIO_WHO_USER
    "sched_setattr": (314, 0, None, None),
    # The CPU mask is inherited: pinning the agent to one CPU pins every command it starts later.
    "sched_setaffinity": (203, 0, None, None),
}
_PRLIMIT64_X86_64 = 302

_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_IF_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_IF_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
_OFFSET_NR = 0  # struct seccomp_data: int nr; __u32 arch; ...
_OFFSET_ARCH = 4
_OFFSET_ARGS = 16  # __u64 args[6], little-endian: the low word of args[i] is at 16 + 8 * i
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_EPERM = 0x00050000 | errno.EPERM


def refused_syscalls() -> tuple[str, ...]:
    """The syscalls the filter refuses on this host (empty when it has no filter)."""
    return tuple(_REFUSED_X86_64) if platform.machine() == "x86_64" else ()


def self_only_syscalls() -> tuple[str, ...]:
    """The syscalls the filter allows only on the calling process (empty when it has no filter)."""
    if platform.machine() != "x86_64":
        return ()
    return ("prlimit64", *_SELF_ONLY_X86_64)


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
    program += _guarded(_PRLIMIT64_X86_64, _prlimit_check())
    for number, pid_arg, which_arg, every_process_of_uid in _SELF_ONLY_X86_64.values():
        program += _guarded(number, _self_only_check(pid_arg, which_arg, every_process_of_uid))
    program.append((_RETURN, 0, 0, _RET_ALLOW))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


_Instruction = tuple[int, int, int, int]


def _guarded(number: int, check: list[_Instruction]) -> list[_Instruction]:
    """``check`` runs for syscall ``number`` only (the syscall number is in the accumulator).

    Each check ends in a return on every path, so it never falls through into the next rule.
    """
    return [(_JUMP_IF_EQUAL, 0, len(check), number), *check]


def _low_word(arg: int) -> int:
    return _OFFSET_ARGS + 8 * arg


def _prlimit_check() -> list[_Instruction]:
    """prlimit64(pid, resource, new, old): reading any limit, or setting the caller's, is allowed.

    ``pid`` is a C int, so its low word is all the kernel reads; ``new`` is a pointer, so both
    words must be zero for NULL.
    """
    return [
        (_LOAD_WORD, 0, 0, _low_word(0)),
        (_JUMP_IF_EQUAL, 4, 0, 0),  # pid 0: the caller -> allow
        (_LOAD_WORD, 0, 0, _low_word(2)),
        (_JUMP_IF_EQUAL, 0, 3, 0),  # new limit's low word set -> refuse
        (_LOAD_WORD, 0, 0, _low_word(2) + 4),
        (_JUMP_IF_EQUAL, 0, 1, 0),  # new limit's high word set -> refuse
        (_RETURN, 0, 0, _RET_ALLOW),
        (_RETURN, 0, 0, _RET_EPERM),
    ]


def _self_only_check(
    pid_arg: int, which_arg: int | None, every_process_of_uid: int | None
) -> list[_Instruction]:
    """Allow when the pid ("who") argument is 0, and, for setpriority/ioprio_set, "which" does not
    select every process of a uid (``who`` 0 then means the caller's uid, which includes the agent).
    """
    check: list[_Instruction] = [(_LOAD_WORD, 0, 0, _low_word(pid_arg))]
    if which_arg is None or every_process_of_uid is None:
        check += [(_JUMP_IF_EQUAL, 0, 1, 0)]
    else:
        check += [
            (_JUMP_IF_EQUAL, 0, 3, 0),  # another process -> refuse
            (_LOAD_WORD, 0, 0, _low_word(which_arg)),
            (_JUMP_IF_EQUAL, 1, 0, every_process_of_uid),  # every process of the uid -> refuse
        ]
    check += [(_RETURN, 0, 0, _RET_ALLOW), (_RETURN, 0, 0, _RET_EPERM)]
    return check


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

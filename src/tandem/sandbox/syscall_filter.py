"""The sandbox's seccomp filter: code inside cannot make or enter namespaces.

Without it, `unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)` succeeded inside the sandbox
(unprivileged user namespaces are on in most kernels) and handed the code a full capability set
in a namespace of its own: mounts, its own network stack, and the kernel code behind every
capability check that namespace unlocks, which is where container escapes usually start.

The filter (built here with libseccomp through `pyseccomp`, exported as classic BPF, and
installed by the jail with `prctl` just before it runs the code, after no_new_privs) answers:

* `unshare` and `setns`: EPERM, whatever the arguments (nothing a notebook cell does needs them);
* `clone` with any namespace flag: EPERM (plain fork and thread clones pass);
* `clone3`: ENOSYS for every call. Its flags sit in a struct in memory, which a seccomp filter
  cannot read, so it cannot be filtered by flag; "not implemented" makes glibc fall back to
  `clone`, which is filtered (Docker's and systemd's profiles do the same);
* system calls of another ABI (x32 or i386 on x86_64): the process is killed, since the
  filter only knows the native numbers (libseccomp's default for a foreign architecture).

Everything else is allowed: this filter is one layer on top of the namespaces, the
unprivileged uid and the rlimits, not the sandbox's only wall.

    program = syscall_filter()   # bytes of `struct sock_filter`, cached; FilterUnavailable
"""

from __future__ import annotations

import errno
import functools
import platform
import tempfile

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
# CLONE_NEWTIME (0x80) exists for unshare and clone3 only: in clone() that bit is part of the
# exit signal, so it cannot ask for a namespace there.
CLONE_NAMESPACES = (
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
)


class FilterUnavailable(RuntimeError):
    """libseccomp is missing or refused the filter; the message says why."""


@functools.cache
def syscall_filter() -> bytes:
    """The filter as a BPF program (an array of 8-byte `struct sock_filter`) for this machine's
    architecture."""
    try:
        import pyseccomp as seccomp  # loads libseccomp.so.2 with ctypes
    except (ImportError, OSError, RuntimeError) as exc:
        raise FilterUnavailable(
            "the code sandbox needs libseccomp (Debian and Ubuntu: libseccomp2) and the "
            f"pyseccomp package: {exc}"
        ) from None
    try:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "unshare")
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "setns")
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        # clone's flags are its first argument, except on s390x (the stack comes first there).
        flags_arg = 1 if platform.machine() == "s390x" else 0
        for flag in CLONE_NAMESPACES:  # several rules for one call: any that matches applies
            masked = seccomp.Arg(flags_arg, seccomp.MASKED_EQ, flag, flag)
            rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", masked)
        with tempfile.TemporaryFile() as out:
            rules.export_bpf(out)
            out.seek(0)
            program = out.read()
    except (OSError, ValueError) as exc:
        raise FilterUnavailable(f"libseccomp could not build the sandbox's filter: {exc}") from None
    if not program or len(program) % 8:
        raise FilterUnavailable("libseccomp exported an empty or malformed filter")
    return program

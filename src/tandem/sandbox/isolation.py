"""Which isolation this machine allows for the sandbox, found once at run time.

Two ways, strongest first, both through util-linux `unshare` with new mount, PID, network,
IPC and UTS namespaces:

* **root** (the server runs as root, as in the container images and CI): the jail drops the
  child to an unprivileged uid of its own;
* **userns** (an unprivileged server): a user namespace maps the server's uid to root inside,
  and the jail strips that root of every capability before running the code.

Either way the code runs under a seccomp filter that stops it making namespaces of its own
(`tandem.sandbox.syscall_filter`).

When neither works (no `unshare`, namespaces disabled by the kernel or a seccomp profile), or
the filter cannot be built (no libseccomp), `detect_isolation` raises `SandboxUnavailable`:
code is never run without isolation.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from tandem.sandbox.syscall_filter import FilterUnavailable, syscall_filter

NAMESPACES = ("--mount", "--pid", "--net", "--ipc", "--uts")


class SandboxUnavailable(RuntimeError):
    """This machine cannot isolate code; the message says why, for the user."""


@dataclass(frozen=True)
class Isolation:
    mode: str  # "root" or "userns"
    command: tuple[str, ...]  # the `unshare ...` prefix that starts the jail
    # The seccomp program the jail installs before the code runs (BPF, tandem.sandbox.
    # syscall_filter).
    syscall_filter: bytes = field(repr=False)


def _works(command: list[str]) -> bool:
    try:
        done = subprocess.run(
            [*command, "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def detect_isolation() -> Isolation:
    """The strongest isolation that works here (cached; a failure is re-checked next time)."""
    try:
        program = syscall_filter()
    except FilterUnavailable as exc:
        raise SandboxUnavailable(str(exc)) from None
    unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if unshare is None:
        raise SandboxUnavailable(
            "the code sandbox needs util-linux `unshare`, which is not installed on this server"
        )
    # --kill-child: if the parent kills `unshare`, the jail (PID 1) dies, and with it the
    # whole PID namespace.
    base = [unshare, *NAMESPACES, "--kill-child"]
    if os.geteuid() == 0 and _works(base):
        return Isolation("root", tuple(base), program)
    userns = [unshare, "--user", "--map-root-user", *NAMESPACES, "--kill-child"]
    if _works(userns):
        return Isolation("userns", tuple(userns), program)
    raise SandboxUnavailable(
        "this server cannot create Linux namespaces (neither as root nor through an "
        "unprivileged user namespace), so the code sandbox is switched off"
    )

"""Code run through the sandbox exactly as a user's code is cannot make new namespaces, and a
result it forges cannot break the server.

The attack: inside the sandbox, `unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)`
succeeded and gave the code a full capability set in a nested user namespace (its own network
stack to bring `lo` up in, mounts). A seccomp filter (tandem.sandbox.syscall_filter) now
refuses unshare and setns with EPERM, clone with any namespace flag with EPERM, and clone3
with ENOSYS (its flags are in memory a filter cannot read, so libc falls back to clone).

Hermetic: real namespaces, as in tests/test_sandbox.py (no skip on a machine that cannot
isolate code: the sandbox refuses to run there, and these tests fail).

    .venv/bin/python -m pytest -q tests/security/test_sandbox_escapes.py
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tandem.sandbox import SandboxLimits, SandboxUnavailable, detect_isolation, run_code
from tandem.sandbox import isolation as isolation_module
from tandem.sandbox.syscall_filter import FilterUnavailable

LIMITS = SandboxLimits(wall_s=10.0, cpu_s=5, memory_mb=256, processes=16, file_mb=4)

NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWTIME": 0x00000080,
}

# Every attempt runs in the sandboxed Python, each in a child process of its own (a call that
# worked would have moved the probe into a new namespace); each reports "ok" (it worked: an
# escape) or the errno name it failed with.
PROBES = r"""
import ctypes, errno, json, os, platform, signal, struct, threading, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {
    "x86_64": {"clone": 56, "unshare": 272, "setns": 308, "clone3": 435},
    "aarch64": {"clone": 220, "unshare": 97, "setns": 268, "clone3": 435},
}[platform.machine()]
FLAGS = %(flags)s
SIGCHLD = int(signal.SIGCHLD)
report = {}

def outcome(rc, err):
    return errno.errorcode.get(err, str(err)) if rc == -1 else "ok"

def syscall(name, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(NR[name]), *args)
    if rc == 0 and name in ("clone", "clone3"):
        os._exit(0)  # the child of a clone that should never have happened
    if rc > 0 and name in ("clone", "clone3"):
        os.waitpid(rc, 0)
    return outcome(rc, ctypes.get_errno())

def in_child(label, call):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, call().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        report[label] = f.read()
    os.waitpid(pid, 0)

def number(value):
    return ctypes.c_long(value)

for flag_name, flag in FLAGS.items():
    in_child("unshare " + flag_name, lambda: syscall("unshare", number(flag)))
    in_child(
        "unshare CLONE_NEWUSER|" + flag_name,
        lambda: syscall("unshare", number(FLAGS["CLONE_NEWUSER"] | flag)),
    )
    if flag_name != "CLONE_NEWTIME":  # its bit is the exit signal's in clone()
        in_child(
            "clone " + flag_name,
            lambda: syscall(
                "clone", *map(number, (FLAGS["CLONE_NEWUSER"] | flag | SIGCHLD, 0, 0, 0, 0))
            ),
        )
everything = 0
for flag in FLAGS.values():
    everything |= flag
in_child("unshare all", lambda: syscall("unshare", number(everything)))
def libc_unshare():
    rc = libc.unshare(FLAGS["CLONE_NEWUSER"] | FLAGS["CLONE_NEWNET"] | FLAGS["CLONE_NEWNS"])
    return outcome(rc, ctypes.get_errno())
in_child("libc unshare USER|NET|NS", libc_unshare)
# struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls
for label, flags in (("clone3 CLONE_NEWUSER", FLAGS["CLONE_NEWUSER"]), ("clone3 plain", 0)):
    args = ctypes.create_string_buffer(struct.pack("8Q", flags, 0, 0, 0, SIGCHLD, 0, 0, 0))
    in_child(label, lambda: syscall("clone3", args, number(64)))
in_child("setns bad fd", lambda: syscall("setns", number(-1), number(0)))
def setns_own_net():
    try:
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    except OSError:
        return "no /proc"
    return syscall("setns", number(fd), number(FLAGS["CLONE_NEWNET"]))
in_child("setns own net", setns_own_net)
report["CapEff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
# Ordinary work still runs: a thread (glibc tries clone3 first), fork, a subprocess.
box = []
t = threading.Thread(target=lambda: box.append(1))
t.start(); t.join()
report["thread"] = "ok" if box == [1] else "failed"
pid = os.fork()
if pid == 0:
    os._exit(7)
report["fork"] = "ok" if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7 else "failed"
done = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
report["subprocess"] = "ok" if done.stdout.strip() == "42" else done.stderr[-300:]
print(json.dumps(report))
"""


def _probe(tandem_home) -> dict[str, str]:
    result = run_code(PROBES % {"flags": NAMESPACE_FLAGS}, home=tandem_home, limits=LIMITS)
    assert result.status == "ok", (result.error, result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_namespaces_cannot_be_made_or_entered_from_the_sandbox(tandem_home):
    report = _probe(tandem_home)
    refused = {k: v for k, v in report.items() if k.startswith(("unshare", "libc", "clone "))}
    assert len(refused) == 2 * len(NAMESPACE_FLAGS) + len(NAMESPACE_FLAGS) - 1 + 2
    escapes = {k: v for k, v in refused.items() if v != "EPERM"}
    assert not escapes, f"namespace calls that were not refused with EPERM: {escapes}"
    # clone3 is refused as if the kernel did not have it (glibc then falls back to clone).
    assert report["clone3 CLONE_NEWUSER"] == report["clone3 plain"] == "ENOSYS", report
    # setns is refused by the filter, before the kernel even looks at the descriptor.
    assert report["setns bad fd"] == "EPERM", report
    assert report["setns own net"] in ("EPERM", "no /proc"), report
    assert int(report["CapEff"], 16) == 0, report
    # Threads, fork and subprocesses, which numpy, pandas and matplotlib code uses, still work.
    assert (report["thread"], report["fork"], report["subprocess"]) == ("ok", "ok", "ok"), report


def test_the_syscall_filter_covers_the_other_abi_of_the_machine(tandem_home):
    """x32 system calls (numbers with bit 30 set, same instruction on x86_64) would reach
    unshare by another number; the filter kills the process or the kernel lacks x32."""
    code = r"""
import ctypes, os, platform
if platform.machine() != "x86_64":
    print("not x86_64")
else:
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.syscall(ctypes.c_long(0x40000000 + 272), ctypes.c_long(0x10000000))
        os._exit(0 if rc == 0 else 3)
    status = os.waitpid(pid, 0)[1]
    print("escaped" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else "refused")
"""
    result = run_code(code, home=tandem_home, limits=LIMITS)
    assert result.status == "ok", (result.error, result.stderr[-2000:])
    assert result.stdout.strip() in ("refused", "not x86_64")


def test_without_the_filter_the_code_never_runs(tandem_home, monkeypatch):
    def missing():
        raise FilterUnavailable("the code sandbox needs libseccomp")

    detect_isolation.cache_clear()
    monkeypatch.setattr(isolation_module, "syscall_filter", missing)
    try:
        with pytest.raises(SandboxUnavailable, match="libseccomp"):
            detect_isolation()
    finally:
        monkeypatch.undo()
        detect_isolation.cache_clear()
    # A jail handed no filter refuses to start the code at all.
    unfiltered = dataclasses.replace(detect_isolation(), syscall_filter=b"")
    result = run_code(
        "open('ran', 'w'); print('ran')", home=tandem_home, limits=LIMITS, isolation=unfiltered
    )
    assert result.status != "ok" and "ran" not in result.stdout
    assert "the syscall filter is missing or malformed" in result.stderr


def test_a_result_nested_too_deeply_is_a_clear_error(tandem_home):
    """result.json is written by the user's process: one nested 100,000 levels deep used to
    raise RecursionError in the server while reading it."""
    deep = '"[" * 100_000 + "]" * 100_000'
    code = f"import os\nopen('/sandbox/outputs/result.json', 'w').write({deep})\nos._exit(0)\n"
    result = run_code(code, home=tandem_home, limits=LIMITS)
    assert result.status == "error"
    assert result.error == (
        "The code sandbox could not read your code's result: it is nested too deeply."
    )


def test_forged_result_fields_never_break_the_error_message(tandem_home):
    """A result.json shaped by the code itself: an error whose type and message are deep
    lists (turned into text, they used to recurse) reads as a plain sentence."""
    code = (
        "import json, os\n"
        "deep = []\n"
        "for _ in range(900):\n"
        "    deep = [deep]\n"
        "error = {'type': deep, 'message': deep, 'kind': deep}\n"
        "result = {'value': deep, 'tables': deep, 'figures': deep, 'error': error}\n"
        "open('/sandbox/outputs/result.json', 'w').write(json.dumps(result))\n"
        "os._exit(0)\n"
    )
    result = run_code(code, home=tandem_home, limits=LIMITS)
    assert (result.status, result.error) == ("error", "Your code raised an error.")
    assert result.value is None and result.tables == [] and result.charts == []

"""The sandbox's init: PID 1 of fresh mount, PID, network, IPC and UTS namespaces.

The parent starts it through util-linux `unshare` (see `tandem.sandbox.isolation`):

    unshare --mount --pid --net --ipc --uts --kill-child python -I -S jail.py CONFIG.json

It builds a new root from read-only bind mounts (the Python runtime and its site-packages,
/usr), size-capped tmpfs for /sandbox/work (the code's working directory), /tmp and
/sandbox/outputs, a minimal /dev, pivots into it and
detaches the host's tree, then forks the child that runs the user's code as an unprivileged
uid with resource limits and, last before exec, the seccomp filter that refuses new
namespaces (`tandem.sandbox.syscall_filter` builds it; here it is only installed). As PID 1
it reaps every process; when the child ends or the wall time runs out it kills everything
left in the namespace (`kill(-1)` from PID 1 spares only itself), copies the runner's result
and charts out through a directory descriptor the child never sees, and exits. Its own death
takes the whole PID namespace with it.

Standard library only: it runs with `-I -S`, before anything is importable from the venv.
Any setup failure exits with status 70 before user code runs: the code never runs with less
isolation than configured.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import resource
import signal
import sys
import time

SETUP_FAILED = 70

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECUREBITS = 28
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP(_LOCKED) | KEEP_CAPS_LOCKED:
# uid 0 inside a user namespace gets no capabilities back on execve.
SECUREBITS_NO_ROOT = 0x01 | 0x02 | 0x04 | 0x08 | 0x20
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
CAPSET = {"x86_64": 126, "aarch64": 91, "riscv64": 91, "ppc64le": 184, "s390x": 185}

libc = ctypes.CDLL(None, use_errno=True)


def fail(message: str) -> None:
    sys.stderr.write(f"tandem-sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        fail(f"{what}: {os.strerror(err)}")


def mount(src: str, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(
        libc.mount(
            src.encode(),
            dst.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {src} on {dst}",
    )


def bind_readonly(src: str, dst: str) -> None:
    mount(src, dst, None, MS_BIND | MS_REC)
    # A bind mount takes the read-only flag only on a remount; nosuid/nodev also keep any
    # flags the kernel locked on the source (required inside a user namespace).
    mount("none", dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def make_dirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def build_root(cfg: dict) -> str:
    new = cfg["root_dir"]
    mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing propagates back to the host
    mount("tandem-root", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    # /dev: only the harmless character devices Python and numpy use.
    make_dirs(new + "/dev")
    mount("tandem-dev", new + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for dev in ("null", "zero", "random", "urandom"):
        open(new + "/dev/" + dev, "w").close()
        mount("/dev/" + dev, new + "/dev/" + dev, None, MS_BIND)
    os.symlink("/proc/self/fd", new + "/dev/fd")
    uid, gid = cfg["uid"], cfg["gid"]
    owner = f"uid={uid},gid={gid}"
    flags = MS_NOSUID | MS_NODEV
    for path, size_mb, mode in (
        ("/sandbox/work", cfg["disk_mb"], "0700"),
        ("/tmp", cfg["tmp_mb"], "1777"),
        ("/sandbox/outputs", cfg["outputs_mb"], "0700"),
    ):
        make_dirs(new + path)
        mount(
            "tandem-" + os.path.basename(path),
            new + path,
            "tmpfs",
            flags,
            f"size={size_mb}m,nr_inodes=4096,mode={mode},{owner}",
        )
    # The runtime is bound after the private /tmp is mounted, so a Python that lives under
    # /tmp (a checkout in /tmp, as CI machines often have) is visible inside it, read-only.
    for src in cfg["ro_binds"]:
        if src.startswith(("/sandbox", "/dev", "/proc")):
            fail(f"{src} cannot be bound: the sandbox's own directories live there")
        make_dirs(new + src)
        bind_readonly(src, new + src)
    for link, target in cfg["symlinks"].items():
        os.symlink(target, new + link)
    make_dirs(new + "/sandbox/code")
    bind_readonly(cfg["in_dir"], new + "/sandbox/code")
    # The chat's files, copied (not bound: the child may read them, never the host's copy).
    files_dir = os.path.join(cfg["in_dir"], "files")
    for name in sorted(os.listdir(files_dir)):
        with (
            open(os.path.join(files_dir, name), "rb") as src,
            open(f"{new}/sandbox/work/{name}", "xb") as dst,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
        os.chmod(f"{new}/sandbox/work/{name}", 0o444)
    # /proc of this PID namespace; refused in some containers (masked paths), then absent.
    make_dirs(new + "/proc")
    if (
        libc.mount(
            b"proc",
            (new + "/proc").encode(),
            b"proc",
            ctypes.c_ulong(MS_NOSUID | MS_NODEV | MS_NOEXEC),
            None,
        )
        != 0
    ):
        os.rmdir(new + "/proc")
    return new


def pivot(new: str) -> None:
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        fail(f"pivot_root is not known on {platform.machine()}")
    os.chdir(new)
    make_dirs(new + "/.old")
    check(libc.syscall(number, b".", b".old"), "pivot_root")
    os.chdir("/")
    check(libc.umount2(b"/.old", MNT_DETACH), "detaching the host's tree")
    os.rmdir("/.old")
    mount("none", "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def drop_privileges(cfg: dict) -> None:
    """In the child: an unprivileged uid (root mode), or uid 0 of the user namespace with no
    capabilities now or after exec (user-namespace mode); never regains any."""
    if cfg["mode"] == "root":
        os.setgroups([])
        os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    else:
        check(libc.prctl(PR_SET_SECUREBITS, SECUREBITS_NO_ROOT, 0, 0, 0), "securebits")
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (ctypes.c_uint32 * 6)()
        check(libc.syscall(CAPSET[platform.machine()], header, data), "dropping capabilities")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


class SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def install_syscall_filter(program: bytes) -> None:
    """Load the BPF program (8-byte `struct sock_filter` entries) for this process and all it
    starts. Needs no_new_privs (set by drop_privileges); it cannot be removed afterwards."""
    if not program or len(program) % 8 or len(program) // 8 > 4096:
        fail("the syscall filter is missing or malformed")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    check(
        libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), 0, 0),
        "installing the syscall filter",
    )


def set_limits(limits: dict) -> None:
    cpu = limits["cpu_s"]
    # Soft limit: SIGXCPU; one second later the hard limit's SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    size = limits["file_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))


def run_child(cfg: dict, syscall_filter: bytes) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            drop_privileges(cfg)
            set_limits(cfg["limits"])
            os.chdir("/sandbox/work")
            install_syscall_filter(syscall_filter)
            argv = [cfg["python"], "-I", "-S", "/sandbox/code/runner.py"]
            os.execve(cfg["python"], argv, cfg["env"])
        except BaseException as exc:
            sys.stderr.write(f"tandem-sandbox: starting the code failed: {exc}\n")
        os._exit(SETUP_FAILED)
    return pid


def supervise(child: int, wall_s: float) -> dict:
    """Reap everything (PID 1 inherits orphans) until the child ends or time runs out; then
    kill whatever is left in the namespace."""
    deadline = time.monotonic() + wall_s
    status: int | None = None
    timed_out = False
    while status is None:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == child:
            status = st
        elif pid == 0:
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):  # nothing else left
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            pid, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child and status is None:
            status = st
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "timed_out": timed_out,
        "exit_code": os.WEXITSTATUS(status)
        if status is not None and os.WIFEXITED(status)
        else None,
        "signal": os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_kb": usage.ru_maxrss,
    }


def copy_outputs(out_fd: int, limits: dict) -> None:
    """The runner's result and charts, out to the host. Only expected names, regular files
    opened without following links, sizes capped: /outputs is writable by the user's code."""
    wanted = {"result.json"} | {f"figure-{i}.png" for i in range(limits["max_images"])}
    for entry in os.scandir("/sandbox/outputs"):
        if entry.name not in wanted or not entry.is_file(follow_symlinks=False):
            continue
        cap = limits["result_bytes"] if entry.name == "result.json" else limits["image_bytes"]
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as src:
            data = src.read(cap + 1)
        if len(data) > cap:
            continue
        dst = os.open(
            entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=out_fd
        )
        with os.fdopen(dst, "wb") as f:
            f.write(data)


def write_json(out_fd: int, name: str, value: dict) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=out_fd)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    if os.getpid() != 1:
        fail("not PID 1 of a new PID namespace")
    # Not dumpable: a child of the same uid (user-namespace mode) cannot open /proc/1/fd.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    out_fd = os.open(cfg["out_dir"], os.O_RDONLY | os.O_DIRECTORY)
    with open(cfg["syscall_filter"], "rb") as f:  # the host's tree is gone after the pivot
        syscall_filter = f.read()
    pivot(build_root(cfg))
    child = run_child(cfg, syscall_filter)
    report = supervise(child, cfg["limits"]["wall_s"])
    copy_outputs(out_fd, cfg["limits"])
    write_json(out_fd, "exit.json", report)
    os._exit(0)


if __name__ == "__main__":
    main()

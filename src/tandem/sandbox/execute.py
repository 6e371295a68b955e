"""Run Python in the sandbox and collect what it produced.

    result = run_code("import math\\nmath.pi", files=[("sales.csv", path)], home=home)
    result = await run_code_async(code, files, home=settings.home)   # from the event loop

A run stages `$TANDEM_HOME/sandbox/<run-id>/` (0700): `in/` (the code, the runner, copies of
the chat's files), `out/` (what the jail copies back), `root/` (the new root's mount point),
then starts the jail (`tandem.sandbox.jail`) under `unshare` and reads the code's stdout and
stderr from pipes, killing the whole process group (and so the PID namespace) when the output
passes its cap or the wall time runs out. The run directory is removed afterwards.

Runs happen on a small thread pool of their own (`concurrency` threads), so the event loop
keeps serving other users and a queue of runs never starves other work in the default pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.sandbox.isolation import Isolation, detect_isolation
from tandem.sandbox.limits import SandboxLimits
from tandem.sandbox.outcome import classify
from tandem.sandbox.outputs import (
    UnreadableOutput,
    clean_tables,
    collect_charts,
    read_json,
    safe_name,
)

# Starting the namespaces and building the root takes a fraction of a second; the jail
# enforces the wall time itself and the parent's hard stop allows for that and for copying.
STARTUP_GRACE_S = 5.0
MAX_CODE_BYTES = 100_000
HERE = Path(__file__).resolve().parent


@dataclass
class SandboxResult:
    status: str  # "ok" | "error" | "timeout" | "memory" | "output_limit" | "killed"
    error: str | None = None  # a sentence for the user
    stdout: str = ""
    stderr: str = ""
    value: str | None = None  # repr of the last expression
    tables: list[dict[str, Any]] = field(default_factory=list)
    charts: list[tuple[str, bytes]] = field(default_factory=list)  # (name, PNG bytes)
    files_skipped: list[str] = field(default_factory=list)  # too big for the work directory
    duration_s: float = 0.0
    cpu_s: float | None = None


def _runtime_mounts() -> tuple[list[str], dict[str, str], list[str]]:
    """(read-only binds, top-level symlinks, site-packages dirs): what the child's Python
    needs and nothing else of the host."""
    binds = ["/usr"]
    # Font configuration (read by the libraries matplotlib loads); no secrets in it.
    if os.path.isdir("/etc/fonts"):
        binds.append("/etc/fonts")
    symlinks = {}
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            symlinks[top] = os.readlink(top)
        elif os.path.isdir(top):
            binds.append(top)
    site = [
        os.path.realpath(p)
        for p in sys.path
        if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)
    ]
    for path in [os.path.realpath(sys.base_prefix), *site]:
        if not any(path == b or path.startswith(b + "/") for b in binds):
            binds.append(path)
    return binds, symlinks, list(dict.fromkeys(site))


def _stage(
    run_dir: Path,
    code: str,
    files: Sequence[tuple[str, Path]],
    limits: SandboxLimits,
    site: list[str],
) -> list[str]:
    """Write the run's inputs; returns the names of files left out for size."""
    in_dir, files_dir = run_dir / "in", run_dir / "in" / "files"
    files_dir.mkdir(parents=True, mode=0o755)
    os.chmod(in_dir, 0o755)
    os.chmod(files_dir, 0o755)
    (run_dir / "out").mkdir(mode=0o700)
    (run_dir / "root").mkdir(mode=0o755)
    shutil.copyfile(HERE / "runner.py", in_dir / "runner.py")
    (in_dir / "code.py").write_text(code, encoding="utf-8")
    config = {"site_packages": site, "max_images": limits.max_images}
    (in_dir / "config.json").write_text(json.dumps(config))
    # Leave room in the work directory for what the code writes.
    budget = max(0, (limits.disk_mb - 8) * 1_000_000)
    used, skipped, taken = 0, [], set()
    for name, source in files:
        clean = safe_name(name)
        stem, dot, ext = clean.rpartition(".")
        n = 2
        while clean in taken or clean in ("runner.py", "code.py", "config.json"):
            clean = f"{stem}-{n}.{ext}" if dot else f"{ext}-{n}"
            n += 1
        size = source.stat().st_size
        if used + size > budget:
            skipped.append(clean)
            continue
        shutil.copyfile(source, files_dir / clean, follow_symlinks=False)
        used += size
        taken.add(clean)
    for path in in_dir.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o444)
    return skipped


def _read_pipes(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, str]:
    """The process's stdout and stderr until it exits, the deadline passes ("timeout") or
    together they pass `cap` bytes ("output"); then the whole process group is killed."""
    out: dict[Any, bytearray] = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    total, stop = 0, ""
    with selectors.DefaultSelector() as sel:
        for pipe in out:
            sel.register(pipe, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                stop = "timeout"
                break
            for key, _ in sel.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                room = cap - total
                out[key.fileobj] += chunk[: max(room, 0)]
                total += len(chunk)
                if total > cap:
                    stop = "output"
                    break
            if stop:
                break
    if stop:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return bytes(out[proc.stdout]), bytes(out[proc.stderr]), stop


class _Slots:
    """Which of the `concurrency` sandbox uids are free (root mode gives each run its own
    uid, so RLIMIT_NPROC counts one run's processes only)."""

    def __init__(self, n: int) -> None:
        self.free: queue.Queue[int] = queue.Queue()
        for i in range(n):
            self.free.put(i)


_lock = threading.Lock()
_pool: tuple[ThreadPoolExecutor, _Slots] | None = None


def _shared(concurrency: int) -> tuple[ThreadPoolExecutor, _Slots]:
    global _pool
    with _lock:
        if _pool is None:
            _pool = (
                ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sandbox"),
                _Slots(concurrency),
            )
        return _pool


def run_code(
    code: str,
    files: Sequence[tuple[str, Path]] = (),
    *,
    home: Path,
    limits: SandboxLimits | None = None,
    isolation: Isolation | None = None,
) -> SandboxResult:
    """Run `code` (blocking) with copies of `files` ((name, host path)) in its working
    directory. Raises SandboxUnavailable when this machine cannot isolate it."""
    limits = limits or SandboxLimits.from_env()
    if len(code.encode()) > MAX_CODE_BYTES:
        return SandboxResult("error", f"The code is longer than {MAX_CODE_BYTES} bytes.")
    isolation = isolation or detect_isolation()
    _, slots = _shared(limits.concurrency)
    slot = slots.free.get()
    try:
        return _run(code, files, home, limits, isolation, slot)
    finally:
        slots.free.put(slot)


async def run_code_async(
    code: str,
    files: Sequence[tuple[str, Path]] = (),
    *,
    home: Path,
    limits: SandboxLimits | None = None,
) -> SandboxResult:
    """`run_code` off the event loop, at most `concurrency` at once; the rest wait."""
    limits = limits or SandboxLimits.from_env()
    pool, _ = _shared(limits.concurrency)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, lambda: run_code(code, files, home=home, limits=limits))


def _run(
    code: str,
    files: Sequence[tuple[str, Path]],
    home: Path,
    limits: SandboxLimits,
    isolation: Isolation,
    slot: int,
) -> SandboxResult:
    start = time.monotonic()
    base = home / "sandbox"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    run_dir = base / secrets.token_hex(8)
    run_dir.mkdir(mode=0o700)
    try:
        binds, symlinks, site = _runtime_mounts()
        skipped = _stage(run_dir, code, files, limits, site)
        root_mode = isolation.mode == "root"
        uid = limits.uid_base + slot if root_mode else 0
        jail_config = {
            "mode": isolation.mode,
            "uid": uid,
            "gid": uid,
            "root_dir": str(run_dir / "root"),
            "in_dir": str(run_dir / "in"),
            "out_dir": str(run_dir / "out"),
            "ro_binds": binds,
            "symlinks": symlinks,
            "python": os.path.realpath(sys.executable),
            "disk_mb": limits.disk_mb,
            "tmp_mb": limits.tmp_mb,
            "outputs_mb": limits.outputs_mb,
            "limits": limits.to_jail(),
            "env": {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": "/sandbox/work",
                "TMPDIR": "/tmp",
                "LANG": "C.UTF-8",
                "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": "/tmp/matplotlib",
                # One BLAS thread: threads count as processes, and each reserves memory.
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            },
        }
        # Read by the jail before it pivots away from the host's tree; installed in the child.
        (run_dir / "syscall-filter.bpf").write_bytes(isolation.syscall_filter)
        jail_config["syscall_filter"] = str(run_dir / "syscall-filter.bpf")
        (run_dir / "jail.json").write_text(json.dumps(jail_config))
        command = [
            *isolation.command,
            os.path.realpath(sys.executable),
            "-I",
            "-S",
            str(HERE / "jail.py"),
            str(run_dir / "jail.json"),
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        try:
            deadline = time.monotonic() + limits.wall_s + STARTUP_GRACE_S
            stdout, stderr, stop = _read_pipes(proc, deadline, limits.output_bytes)
        finally:
            with contextlib.suppress(ProcessLookupError):  # stragglers holding no pipe
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for pipe in (proc.stdout, proc.stderr):  # never None: both are PIPEs
                if pipe is not None:
                    pipe.close()
        out_dir = run_dir / "out"
        report = read_json(out_dir, "exit.json", 65536)
        unreadable = None
        try:
            result = read_json(out_dir, "result.json", limits.result_bytes)
        except UnreadableOutput as exc:
            result, unreadable = None, str(exc)
        err_text = stderr.decode("utf-8", "replace")
        jail_lines = [ln for ln in err_text.splitlines() if ln.startswith("tandem-sandbox: ")]
        outcome = classify(
            limits,
            output_exceeded=stop == "output",
            parent_timed_out=stop == "timeout",
            report=report,
            result=result,
            jail_error=jail_lines[-1].removeprefix("tandem-sandbox: ") if jail_lines else None,
            unreadable_result=unreadable,
        )
        value = (result or {}).get("value")
        return SandboxResult(
            status=outcome.status,
            error=outcome.error,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=err_text,
            value=value[:10_000] if isinstance(value, str) else None,
            tables=clean_tables((result or {}).get("tables")),
            charts=collect_charts(
                out_dir, (result or {}).get("figures"), limits.max_images, limits.image_bytes
            ),
            files_skipped=skipped,
            duration_s=time.monotonic() - start,
            cpu_s=(report or {}).get("cpu_s"),
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)

"""Run one function in a fresh Python process, so the memory it takes goes back to the OS.

    result = run_in_child("tandem.flywheel.training:train_candidate", {"method": "dpo", ...})
    result["child_peak_rss_mb"]          # the child's peak resident memory, MiB

Training a candidate takes ~8 GB that a Python process never hands back (the allocator keeps
freed arenas), and the flywheel then evaluates for as long again: running the training in a
child that exits is what keeps the flywheel process small. The child is
`sys.executable -m tandem.flywheel.child`, not a multiprocessing worker: nothing is pickled,
a child killed by the OOM killer reads as an exit status, not as a hung pipe, and its stdout
and stderr are the parent's own (progress bars and logs appear where the parent's do).
Arguments and the result travel as JSON files in a temporary directory, never over stdout,
where the libraries the target uses may print. The target must return a JSON-able dict.

    python -m tandem.flywheel.child REQUEST.json    # what the parent runs; not for people
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from tandem.core.memory import status_kib

PEAK_KEY = "child_peak_rss_mb"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"


def run_in_child(target: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call `target` ("package.module:function") with `kwargs` in a new Python process and
    return its dict, plus `child_peak_rss_mb`. Raises RuntimeError when the child raised (with
    its traceback), exited nonzero or was killed by a signal (with the signal's name)."""
    module, _, function = target.partition(":")
    if not module or not function:
        raise ValueError(f"target must be 'module:function', not {target!r}")
    with tempfile.TemporaryDirectory(prefix="tandem-child-") as tmp:
        workdir = Path(tmp)
        request = {
            "target": target,
            "kwargs": kwargs,
            # The parent can import what is on its sys.path (a test's helper module, a
            # checkout's directory): so must the child, as multiprocessing's spawn does.
            "sys_path": [p for p in sys.path if p],
            "logging": _logging_setup(),
            "workdir": str(workdir),
        }
        request_file = workdir / "request.json"
        # Fails here, in the parent, when the arguments are not JSON-able.
        request_file.write_text(json.dumps(request), encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tandem.flywheel.child", str(request_file)],
            stdin=subprocess.DEVNULL,
        )
        try:
            returncode = proc.wait()
        except BaseException:
            # Ctrl-C or an error in the parent: the child must not train on unwatched.
            proc.kill()
            proc.wait()
            raise
        error_file = workdir / ERROR_FILE
        result_file = workdir / RESULT_FILE
        if returncode != 0:
            raise RuntimeError(_failure(target, returncode, error_file))
        if not result_file.exists():  # the target called sys.exit(0)
            raise RuntimeError(f"child process running {target} exited without a result")
        return json.loads(result_file.read_text(encoding="utf-8"))


def _failure(target: str, returncode: int, error_file: Path) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:  # a real-time signal has no name
            name = "unnamed"
        how = f"was killed by signal {-returncode} ({name})"
        if name == "SIGKILL":
            how += ", which is what the kernel's OOM killer sends"
    else:
        how = f"exited with code {returncode}"
    message = f"child process running {target} {how}"
    if error_file.exists():
        message += ":\n" + error_file.read_text(encoding="utf-8", errors="replace")
    return message


def _logging_setup() -> dict[str, Any] | None:
    """The parent's root logging level and format, for the child to log the same way to
    stderr; None when the parent configured no logging (then neither does the child)."""
    root = logging.getLogger()
    if not root.handlers:
        return None
    formatter = root.handlers[0].formatter
    return {"level": root.level, "format": getattr(formatter, "_fmt", None)}


def _peak_rss_mb() -> float:
    """The child's peak resident memory, or that of a process it started (the ONNX model
    builder) when larger. Read in the child: the parent's ru_maxrss for a child also counts
    the parent's own size at the fork, which Linux carries across exec."""
    own_kib = status_kib(os.getpid(), "VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own_kib, children_kib) / 1024, 1)


def _main(request_file: Path) -> int:
    request = json.loads(request_file.read_text(encoding="utf-8"))
    workdir = Path(request["workdir"])
    for entry in request["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    if request["logging"] is not None:
        logging.basicConfig(level=request["logging"]["level"], format=request["logging"]["format"])
    try:
        module_name, _, function_name = request["target"].partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(**request["kwargs"])
        if not isinstance(result, dict):
            raise TypeError(f"{request['target']} returned {type(result).__name__}, not a dict")
        result = {**result, PEAK_KEY: _peak_rss_mb()}
        # Written to a temporary name and renamed: the parent reads a whole result or none.
        tmp = workdir / (RESULT_FILE + ".tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        tmp.replace(workdir / RESULT_FILE)
    except Exception:
        # The parent raises with this text; printing it here as well would show it twice.
        (workdir / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(Path(sys.argv[1])))

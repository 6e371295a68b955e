"""tandem.sandbox: run untrusted Python in Linux namespaces with resource limits.

    from tandem.sandbox import run_code_async
    result = await run_code_async("print(1 + 1)", home=settings.home)
    result.status, result.stdout, result.charts

Layers (docs/tools.md, "Code interpreter"): new mount/PID/network/IPC/UTS namespaces
(`isolation`), a fresh root of read-only binds and size-capped tmpfs (`jail`), an
unprivileged uid with rlimits, and a parent that enforces wall time and output size
(`execute`).
"""

from tandem.sandbox.execute import SandboxResult, run_code, run_code_async
from tandem.sandbox.isolation import SandboxUnavailable, detect_isolation
from tandem.sandbox.limits import SandboxLimits

__all__ = [
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "detect_isolation",
    "run_code",
    "run_code_async",
]

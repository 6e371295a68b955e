"""One module per engine; `ADAPTERS` maps the `--engines` keys to their classes, in table order."""

from __future__ import annotations

import importlib

from bench.protocol import Adapter

# key -> "module:Class"; imported only in the worker that runs it, so no engine's libraries
# count toward another engine's peak memory.
ADAPTERS: dict[str, str] = {
    "transformers": "bench.adapters.transformers_fp32:TransformersAdapter",
    "ctranslate2": "bench.adapters.ctranslate2_int8:CTranslate2Adapter",
    "ortgenai": "bench.adapters.ortgenai_onnx:OrtGenaiAdapter",
    "llamacpp": "bench.adapters.llamacpp_q4:LlamaCppAdapter",
    "tandem": "bench.adapters.tandem_onnx:TandemOnnxAdapter",
    "tandem-alt": "bench.adapters.tandem_onnx:TandemOnnxAltAdapter",
}
# tandem-alt is the default engine on the builder's other precision (int4 when the registry
# ships int8): the measurement behind the registry's choice of precision.
DEFAULT_ENGINES = ("transformers", "ctranslate2", "ortgenai", "llamacpp", "tandem", "tandem-alt")


def adapter_class(key: str) -> type[Adapter]:
    module, _, name = ADAPTERS[key].partition(":")
    return getattr(importlib.import_module(module), name)

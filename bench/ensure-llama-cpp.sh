#!/usr/bin/env bash
# Make llama-cpp-python importable in the given interpreter's environment, for `make bench`.
#
#   bash bench/ensure-llama-cpp.sh .venv/bin/python
#
# PyPI ships llama-cpp-python only as an sdist; compiling all of it takes ~17 minutes on two
# cores, the library alone (the flags below) about 4 minutes (230 s measured here),
# so the wheel is built ONCE into a cache shared by every checkout; later runs only install it.
# The compile time is written next to the wheel the first time, so the bench can report it
# without compiling again. Installed with --no-deps: its runtime needs are four small packages.
set -euo pipefail

PY=${1:?usage: ensure-llama-cpp.sh PYTHON}
VERSION=0.3.36
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/tandem/wheels"
TIMING="$WHEELS/llama_cpp_python-$VERSION.build.json"
mkdir -p "$WHEELS"

if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$VERSION')" 2>/dev/null; then
    exit 0
fi

wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [[ -z "$wheel" ]]; then
    echo "building llama-cpp-python $VERSION once into $WHEELS (about 4 minutes on 2 cores)..." >&2
    start=$(date +%s)
    # Only the library: examples, tests, server and tools would double the compile time.
    # GGML_NATIVE picks up this CPU's AVX-512/VNNI; the wheel is for this machine's cache only.
    CMAKE_ARGS="-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DGGML_NATIVE=ON" \
        "$PY" -m pip wheel -q --no-deps "llama-cpp-python==$VERSION" -w "$WHEELS"
    end=$(date +%s)
    wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
    printf '{"version": "%s", "compile_s": %d, "measured": true, "cores": %d}\n' \
        "$VERSION" "$((end - start))" "$(nproc)" >"$TIMING"
fi

"$PY" -m pip install -q --no-deps "$wheel"
"$PY" -m pip install -q "typing-extensions>=4.5" "numpy>=1.20" "diskcache>=5.6.1" "jinja2>=2.11.3"

#!/usr/bin/env bash
# Runs the kendo-bridge plugin component in Python with wasmtime-py: creates
# .venv, installs the pinned wasmtime, runs map_call.py.
# Usage: examples/python/run.sh [COMPONENT.wasm]
set -euo pipefail

wasmtime_version="50.0.1"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
component="${1:-$repo/target/guest/kendo_bridge_plugin.wasm}"

if [[ ! -f "$component" ]]; then
    echo "run.sh: no component at $component (build it with ./dev, or pass a path)" >&2
    exit 2
fi
component="$(cd "$(dirname "$component")" && pwd)/$(basename "$component")"

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('wasmtime') != '$wasmtime_version')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "wasmtime==$wasmtime_version" >&2
fi

KENDO_BRIDGE_COMPONENT="$component" "$venv/bin/python" "$here/map_call.py"

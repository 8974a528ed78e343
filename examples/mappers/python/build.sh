#!/bin/sh
# Builds mapper.wasm (needs Python 3.10 or newer; installs componentize-py
# into .venv on the first run). --stub-wasi leaves the component no WASI
# imports at all. The WIT is the repository's.
set -eu
cd "$(dirname "$0")"
componentize=${COMPONENTIZE_PY:-.venv/bin/componentize-py}
if [ ! -x "$componentize" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet componentize-py==0.25.1
fi
"$componentize" --wit-path ../../../wit --world mapper-world componentize --stub-wasi app -o mapper.wasm

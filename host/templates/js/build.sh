#!/bin/sh
# Builds mapper.wasm (needs Node.js 18 or newer; installs componentize-js
# into node_modules on the first run).
set -eu
cd "$(dirname "$0")"
[ -d node_modules/@bytecodealliance/componentize-js ] || npm install --no-audit --no-fund --silent
node build.mjs mapper.js mapper.wasm

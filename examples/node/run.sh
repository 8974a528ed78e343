#!/usr/bin/env bash
# Runs the kendo-bridge plugin component in Node: transpiles it with jco into
# out/ and runs map-call.mjs. Usage: examples/node/run.sh [COMPONENT.wasm]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
component="${1:-$repo/target/guest/kendo_bridge_plugin.wasm}"

if [[ ! -f "$component" ]]; then
    echo "run.sh: no component at $component (build it with ./dev, or pass a path)" >&2
    exit 2
fi
component="$(cd "$(dirname "$component")" && pwd)/$(basename "$component")"

cd "$here"
if [[ ! -x node_modules/.bin/jco ]]; then
    # No lockfile: the one npm wrote here lacked other platforms' optional
    # binaries, so `npm ci` refused it. jco itself is pinned in package.json.
    npm install --no-audit --no-fund --no-package-lock >&2
fi

rm -rf out
node_modules/.bin/jco transpile "$component" --name kendo_bridge -o out --quiet
node map-call.mjs

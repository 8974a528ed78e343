#!/bin/sh
# Builds mapper.wasm (needs `rustup target add wasm32-wasip2`).
set -eu
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2 --quiet
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/my_mapper.wasm" mapper.wasm
echo "wrote $(pwd)/mapper.wasm"

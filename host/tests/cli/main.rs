//! The cli tests, one binary: each module is one area, each test one scenario.
//! One binary links wasmtime once instead of once per file.

mod support;

mod help;
mod map;
mod plugin;
mod settle;
mod status;
mod verify;

//! The component tests, one binary: each module is one area, each test one scenario.
//! One binary links wasmtime once instead of once per file.

mod support;

mod aloware;
mod artifact;
mod bad_input;
mod cache;
mod hubspot;
mod mapper;
mod mapping;
mod salesloft;
mod signatures;
mod trap;

//! The e2e tests, one binary: each module is one area, each test one scenario.
//! One binary links wasmtime once instead of once per file.

mod support;

mod aloware;
mod crash;
mod dedup;
mod doctor;
mod hubspot;
mod kendo_faults;
mod mappers;
mod operator;
mod oversize;
mod pacing;
mod page;
mod redecide;
mod salesloft;
mod shared_db;
mod signatures;
mod visibility;
mod write_back;

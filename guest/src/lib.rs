//! The kendo-bridge plugin.
//!
//! Everything kendo-bridge decides about a record lives here, behind the WIT
//! world `kendo:bridge/bridge`: reading source pages and webhooks, deciding
//! whether a call is sent, skipped or kept waiting, building the Kendo
//! payload, reading Kendo's answers, and verifying signatures.
//!
//! Each call decision goes through the `kendo:bridge/mapper` import
//! (`mapping.rs`), so the component is plugged together with a mapper
//! before use: the default one (`default-mapper/`) at build time, a team's
//! by the host or `spin build`. Natively the default mapper's answer (the
//! proposal itself) is used.
//!
//! The crate is pure: no network, clock or filesystem. It is built as a
//! `wasm32-wasip2` component for the host (and Spin, jco, wasmtime-py), and
//! as an ordinary `rlib` so the benchmark can run the very same code
//! natively.
//!
//! It is `no_std` (with `alloc`): the component must stay under 256 KB, and
//! std's panic, print and I/O machinery alone cost about 30 KB, along with
//! every `wasi:cli` and `wasi:io` import; without them the component
//! imports nothing but its mapper. Built into the component, the crate brings its own
//! allocator and panic handler (`runtime.rs`); as a library (the benchmark,
//! the test suite's trapping guest) it uses its user's std.

#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

extern crate alloc;

/// What std's prelude would bring, from `alloc`.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec::Vec;
    pub(crate) use alloc::{format, vec};
}

mod aloware;
mod datetime;
mod decimal;
mod fields;
mod hubspot;
mod kendo;
mod mapping;
mod rules;
#[cfg(all(feature = "runtime", target_arch = "wasm32", not(test)))]
mod runtime;
mod salesloft;
mod signatures;

/// Bindings generated from `wit/`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "bridge",
        pub_export_macro: true,
    });
}

pub use bindings::exports::kendo::bridge::{
    aloware as aloware_api, hubspot as hubspot_api, kendo as kendo_api, salesloft as salesloft_api,
    signatures as signatures_api, types,
};

/// The component's implementation of every exported interface.
pub struct Plugin;

// Behind a default feature so a wrapper component (a team's own plugin, or
// the test suite's trapping guest) can depend on this crate and export its
// own implementation without clashing symbols; and only on wasm, because the
// component-model symbol names (`kendo:bridge/...`) do not link natively,
// where the crate serves the tests and the native side of the benchmark.
#[cfg(all(feature = "export", target_arch = "wasm32"))]
bindings::export!(Plugin with_types_in bindings);

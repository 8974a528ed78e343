//! kendo-bridge host library.
//!
//! The host does all I/O; every decision about a record is a call into the
//! plugin component ([`plugin`]), configured by the user's rules
//! ([`config`]).

pub mod clock;
/// Plugging a mapper into the bridge component.
pub use kendo_bridge_compose as compose;
pub mod config;
pub mod context;
pub mod delivery;
#[cfg(feature = "demo")]
pub mod demo;
pub mod engine;
pub mod inbox;
pub mod metrics;
/// Pacing and back-off: shared with every driver, from the core crate.
pub use kendo_bridge_core::pacing;
pub mod page;
pub mod plugin;
pub mod pool;
pub mod ports;
pub mod server;
pub mod snapshot;
pub mod source_http;
pub mod sources;
pub mod store;
pub mod timefmt;

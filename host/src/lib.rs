//! kendo-bridge host library.
//!
//! The host does all I/O; every decision about a record is a call into the
//! plugin component ([`plugin`]), configured by the user's rules
//! ([`config`]).

pub mod config;
pub mod plugin;
pub mod store;
pub mod clock;
pub mod delivery;
pub mod engine;
pub mod pacing;
pub mod pool;
pub mod server;
pub mod sources;
pub mod timefmt;
pub mod demo;

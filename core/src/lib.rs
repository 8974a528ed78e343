//! The rules of a call's delivery that every kendo-bridge driver shares.
//!
//! No clock and no network: a driver (the `kendo-bridge` host on tokio and
//! SQLite, the Spin app on Spin's APIs) passes the time and what happened,
//! and gets back what to do. The ledger's statements run through the
//! [`ledger::Database`] trait each driver implements; the one adapter kept
//! here, on rusqlite (feature `rusqlite`), is the host's and the core's own
//! tests' (an in-memory database), so it is the only I/O in this crate:
//!
//! - [`pacing`]: when the next request of a Kendo key may leave (30 per
//!   minute, evenly spaced), and the one back-off policy with full jitter,
//!   used for Kendo sends, source API requests and stored webhooks alike;
//! - [`answer`]: what a Kendo answer (or its absence) means for the call:
//!   created, wait for `Retry-After`, back off, re-send after a lost
//!   answer, park, dead-letter, fail, or pause the key;
//! - [`ledger`]: a call's life in the state database (intake, claim,
//!   record the answer, recover, inbox, holds, checkpoints), the operator's
//!   transitions (`settle`, `replay`), every report `status`, the pages,
//!   `/metrics` and Spin's `GET /status` show, and what a driver runs when
//!   it opens the database, written once over the small
//!   [`ledger::Database`] interface each driver implements;
//! - [`policy`]: every default and each named retry schedule, in one
//!   place both drivers read their configuration into;
//! - [`due`]: when the next thing is due (sends, stored deliveries,
//!   transcript waits, write-backs), the one answer the host's timers and
//!   Spin's ticks ask;
//! - [`inbox`]: a stored webhook delivery handed to its source's workflow,
//!   and what that makes of it (done, deferred, closed);
//! - [`send`]: one send to Kendo, start to end;
//! - [`sources`]: each source's workflow (which request next, what is
//!   cached, what a failed request costs), for the plugin to plan and the
//!   driver to carry out; [`sources::ALL`] names every source.

pub mod answer;
pub mod decision;
pub mod due;
pub mod inbox;
pub mod ledger;
pub mod pacing;
pub mod policy;
pub mod ports;
pub mod schema;
pub mod send;
pub mod sources;
pub mod webhooks;

/// Milliseconds since the Unix epoch (or a test's own epoch).
pub type Millis = i64;

/// A short, non-reversible fingerprint of a Kendo key, safe to store and
/// print: a pause recorded under one key is lifted when the configured
/// key's fingerprint differs.
pub fn key_fingerprint(api_key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(api_key.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

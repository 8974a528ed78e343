//! The HTTP port for the sources: the client that makes the requests the
//! plugin (or the core's write-back) planned against a source's API.
//!
//! - [`client`]: [`SourceApi`], with the bearer token, 429 waits,
//!   retries of 5xx and transport failures, and the counts `/metrics`
//!   shows;
//! - [`pacing`]: requests a source limits on their own, spaced
//!   ([`RequestPacing`]);
//! - [`budget`]: a budget every request of a source spends (Salesloft's
//!   team-wide cost points, [`TeamBudget`]);
//! - [`configured`]: each source's client as its configuration sets it up;
//! - [`answer`]: what an answer that is not a 2xx tells the operator;
//! - [`write_back`]: the core's write-back requests on this client.

pub mod answer;
pub mod budget;
pub mod client;
pub mod configured;
pub mod pacing;
pub mod write_back;

pub use budget::{RateBudget, TeamBudget};
pub use client::SourceApi;
pub use pacing::RequestPacing;

//! Salesloft on Spin: how it is read (`settings`, which the inbox's engine
//! uses for a stored delivery too) and a tick's poll, the core's workflows
//! (`kendo_bridge_core::sources::salesloft`) on the app's ports
//! (`plugin_port.rs`), which say what each does, in which order, and what
//! each failure costs; the API client is `source_http.rs`.
//!
//! A tick's poll is capped (the core's `tick.salesloft_*`: requests to the
//! calls and records, transcripts started) and stops early when the team's
//! cost points are nearly out, the last ones left to its other
//! integrations; the next tick goes on.

use anyhow::Result;
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::sources::salesloft::{self as workflow, Limits, Polled, Settings};

use crate::delivery::Db;
use crate::plugin_port::SpinPorts;
use crate::variable;

/// How Salesloft is read here: transcripts with `salesloft_transcripts`;
/// a finished call waits for its call data record only where a poll reads
/// the records (`salesloft_poll`).
pub(crate) fn settings() -> Settings {
    let polls = variable("salesloft_poll").is_some_and(|v| v == "true");
    Settings {
        transcripts: variable("salesloft_transcripts").is_some_and(|v| v == "true"),
        direction_wait_ms: if polls {
            crate::policy::salesloft_direction_wait_ms()
        } else {
            0
        },
        first_look_back_ms: crate::policy::first_look_back_ms(),
    }
}

/// A tick's share of Salesloft's requests.
const LIMITS: Limits = Limits {
    transcripts: Some(Policy::DEFAULT.tick.salesloft_transcript_requests),
    records: Some(Policy::DEFAULT.tick.salesloft_requests / 3),
    calls: Some(Policy::DEFAULT.tick.salesloft_requests),
};

/// One tick's poll; the tick sends what it queued.
pub async fn poll(db: &Db) -> Result<Polled> {
    let ports = SpinPorts::new(db)?;
    let polled = workflow::poll(&ports, settings(), LIMITS, |_| {}).await?;
    for note in &polled.notes {
        crate::log::line("salesloft", &[("note", note)]);
    }
    Ok(polled)
}

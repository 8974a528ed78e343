//! The core's `Policy` with the app's variables: an unset or empty
//! variable keeps the core's default (`Policy::DEFAULT`), so the defaults
//! are stated once for both drivers. Each variable is read when first
//! needed: a variable is a trip to the host, and most requests need few.

use kendo_bridge_core::Millis;
use kendo_bridge_core::answer::AnswerPolicy;
use kendo_bridge_core::policy::Policy;

use crate::variable;

const DEFAULT: Policy = Policy::DEFAULT;

/// A variable's whole number of `unit` milliseconds, at least 0.
fn scaled(value: Option<String>, unit: Millis) -> Option<Millis> {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|n| n.max(0).saturating_mul(unit))
}

/// How sends are retried, with `kendo_timeout_seconds` as the answer
/// timeout: the claim's lease follows it, so a request never outlives its
/// claim.
pub(crate) fn answers() -> AnswerPolicy {
    let mut answers = DEFAULT.answers();
    if let Some(ms) = scaled(variable("kendo_timeout_seconds"), 1000).filter(|ms| *ms > 0) {
        answers.timeout_ms = ms;
    }
    answers
}

/// Larger webhook bodies are answered 413 before they are read
/// (`max_body_bytes`).
pub(crate) fn max_webhook_body() -> u64 {
    variable("max_body_bytes")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT.webhooks.max_body_bytes)
}

/// How far back a source's first poll reads (`first_look_back_hours`).
pub(crate) fn first_look_back_ms() -> Millis {
    scaled(variable("first_look_back_hours"), 3_600_000)
        .unwrap_or(DEFAULT.polling.first_look_back_ms)
}

/// How long an Aloware call ready with its recording waits for its
/// transcript (`aloware_transcript_wait_seconds`).
pub(crate) fn aloware_transcript_wait_ms() -> Millis {
    scaled(variable("aloware_transcript_wait_seconds"), 1000)
        .unwrap_or(DEFAULT.aloware.transcript_wait_ms)
}

/// How long a finished Salesloft call waits for its call data record
/// (`salesloft_direction_wait_seconds`).
pub(crate) fn salesloft_direction_wait_ms() -> Millis {
    scaled(variable("salesloft_direction_wait_seconds"), 1000)
        .unwrap_or(DEFAULT.salesloft.direction_wait_ms)
}

/// How long one `POST /tick` may last (`tick_seconds`).
pub(crate) fn tick_ms() -> Millis {
    scaled(variable("tick_seconds"), 1000).unwrap_or(DEFAULT.tick.duration_ms)
}

/// How a commit reaches the disk (`database_sync`: `normal` or `full`;
/// anything else keeps the default, logged once a request).
pub(crate) fn sync() -> kendo_bridge_core::ledger::connection::Sync {
    use kendo_bridge_core::ledger::connection::Sync;
    match variable("database_sync") {
        None => DEFAULT.sync,
        Some(value) => Sync::parse(&value).unwrap_or_else(|| {
            crate::log::line(
                "setting-ignored",
                &[
                    ("variable", "database_sync"),
                    ("value", &value),
                    ("expected", "normal or full"),
                ],
            );
            DEFAULT.sync
        }),
    }
}

/// Kendo's base URL (`kendo_url`).
pub(crate) fn kendo_url() -> String {
    variable("kendo_url").unwrap_or_else(|| DEFAULT.kendo.url.into())
}

/// HubSpot's API base (`hubspot_api_url`).
pub(crate) fn hubspot_api_url() -> String {
    variable("hubspot_api_url").unwrap_or_else(|| DEFAULT.hubspot.api_url.into())
}

/// Salesloft's API base (`salesloft_api_url`).
pub(crate) fn salesloft_api_url() -> String {
    variable("salesloft_api_url").unwrap_or_else(|| DEFAULT.salesloft.api_url.into())
}

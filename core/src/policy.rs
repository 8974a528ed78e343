//! Every default the bridge has and each named retry schedule, in one
//! place.
//!
//! The host reads its TOML into a [`Policy`] (a key left out keeps the
//! value here); the Spin app reads its variables into one (an empty
//! variable keeps the value here). Nothing else states a default: when a
//! vendor's limit or a schedule changes, it changes here, for both drivers.
//! Each value that comes from a vendor's document names it; the citations
//! are collected in `docs/vendor-contracts.md`.

use crate::Millis;
use crate::answer::AnswerPolicy;
use crate::ledger::send::SendPacing;
use crate::pacing::Backoff;

/// Kendo's Push API ingest path, appended to the configured base URL
/// (`seeds/` Push API guide: `POST /api/integrations/push-api/ingest`).
pub const KENDO_INGEST_PATH: &str = "/api/integrations/push-api/ingest";

/// The ingest endpoint under a Kendo base URL (a trailing `/` is ignored).
pub fn ingest_url(base: &str) -> String {
    format!("{}{KENDO_INGEST_PATH}", base.trim_end_matches('/'))
}

/// The defaults and schedules of one running bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kendo: Kendo,
    pub webhooks: Webhooks,
    pub polling: Polling,
    pub hubspot: Hubspot,
    pub salesloft: Salesloft,
    pub aloware: Aloware,
    pub retry: Retries,
    pub tick: Tick,
    /// How a commit reaches the disk
    /// ([`crate::ledger::connection::Sync`]): `Normal` survives any crash
    /// of the process; `Full` a power loss too, at a cost (on Spin, about
    /// half the webhook intake).
    pub sync: crate::ledger::connection::Sync,
}

/// Kendo's Push API as the bridge uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kendo {
    /// The production base URL.
    pub url: &'static str,
    /// Requests per window and key: Kendo allows 30 a minute.
    pub requests_per_window: u32,
    pub window_ms: Millis,
    /// Extra spacing between requests, as a fraction (0.01 = 1%), so that
    /// clock skew never puts a 31st request in Kendo's window.
    pub pacing_margin: f64,
    /// How long the first request of a send waits for Kendo's answer.
    pub timeout_ms: Millis,
    /// Kendo's largest body: 5 MB.
    pub max_body_bytes: u64,
    /// Re-sends after lost answers before a call is parked as
    /// `outcome-unknown` (Kendo has no idempotency key).
    pub ambiguous_resends: u32,
    /// How long a send the runtime refused (Spin's `allowed_outbound_hosts`)
    /// waits before it is tried again.
    pub misconfigured_retry_ms: Millis,
    /// How often a paused key is looked at again, at most.
    pub paused_poll_ms: Millis,
}

/// The webhook server (the host's `[server]`, the Spin app's routes).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhooks {
    /// Larger bodies are answered 413 before they are read.
    pub max_body_bytes: u64,
    /// After SIGTERM, how long in-flight work may take to finish.
    pub shutdown_grace_ms: Millis,
    /// The status page reports calls Kendo accepted longer ago than this
    /// that have no score yet.
    pub unscored_after_ms: Millis,
    /// How long a stored delivery's claim holds.
    pub lease_ms: Millis,
    /// A delivery whose processing stopped this many times is closed.
    pub max_abandoned: u32,
    /// A delivery processing longer than this shows as stuck.
    pub stuck_after_ms: Millis,
}

/// Polling a source's lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Polling {
    pub interval_ms: Millis,
    /// How far back the very first poll reads.
    pub first_look_back_ms: Millis,
    /// How long one request to a source's API waits for its answer.
    pub request_timeout_ms: Millis,
}

/// HubSpot's CRM.
#[derive(Debug, Clone, PartialEq)]
pub struct Hubspot {
    pub api_url: &'static str,
    /// Search lags writes: each cycle re-reads this much before the newest
    /// change it saw.
    pub search_look_back_ms: Millis,
    /// Results per search page (HubSpot's maximum is 200).
    pub page_size: u32,
    /// HubSpot's changelog raised search to four requests per second per
    /// token; later limits pages speak of about five per account. Four
    /// keeps under both.
    pub search_per_second: u32,
    /// Two a second is 20 in any 10 s, a fifth of the smallest burst limit
    /// for private apps (100 per 10 s).
    pub write_back_per_second: u32,
}

/// Salesloft's API.
#[derive(Debug, Clone, PartialEq)]
pub struct Salesloft {
    pub api_url: &'static str,
    /// How long a finished call waits for its call data record (its
    /// direction) before it goes without.
    pub direction_wait_ms: Millis,
    /// The share of the team's cost-point budget the bridge may spend.
    pub budget_share: f64,
    /// The team's budget: 600 cost points a minute for the whole team.
    pub team_points: u64,
    pub budget_window_ms: Millis,
}

/// Aloware's webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Aloware {
    /// How long a call ready with its recording waits for its transcript
    /// (captured traffic had it 44 s after the recording).
    pub transcript_wait_ms: Millis,
}

/// One tick of a driver without timers of its own (the Spin app's
/// `POST /tick`): a request with the platform's time limit, so each tick
/// does a bounded share and the next goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// How long one tick may send for: under Fermyon Wasm Functions' 30 s
    /// request limit.
    pub duration_ms: Millis,
    /// Stored deliveries processed per tick.
    pub inbox_batch: u32,
    /// HubSpot search pages read per tick: four, so a tick's searches stay
    /// within HubSpot's search limit even when they all fall in one second.
    pub hubspot_pages: usize,
    /// Salesloft requests per tick (each costs points of the team's budget).
    pub salesloft_requests: u32,
    /// Of those, the most a tick spends reading transcripts.
    pub salesloft_transcript_requests: u32,
    /// HubSpot write-backs per tick.
    pub write_backs: u32,
}

/// Each named retry schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retries {
    /// A send Kendo answered 5xx or 408, or that never left.
    pub kendo_send: Backoff,
    /// A source API request (a poll rides out a brief outage; a longer one
    /// waits for the next cycle).
    pub source_request: Backoff,
    /// A stored webhook delivery whose processing failed.
    pub stored_delivery: Backoff,
    /// A HubSpot write-back.
    pub write_back: Backoff,
}

const SECOND: Millis = 1_000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;

impl Policy {
    /// The defaults.
    pub const DEFAULT: Policy = Policy {
        kendo: Kendo {
            url: "https://app.kendo.ai",
            requests_per_window: 30,
            window_ms: MINUTE,
            pacing_margin: 0.01,
            timeout_ms: 30 * SECOND,
            max_body_bytes: 5_000_000,
            ambiguous_resends: 1,
            misconfigured_retry_ms: 15 * SECOND,
            paused_poll_ms: 30 * SECOND,
        },
        webhooks: Webhooks {
            max_body_bytes: 8 * 1024 * 1024,
            shutdown_grace_ms: 10 * SECOND,
            unscored_after_ms: 2 * HOUR,
            lease_ms: 5 * MINUTE,
            max_abandoned: 3,
            stuck_after_ms: 30 * SECOND,
        },
        polling: Polling {
            interval_ms: MINUTE,
            first_look_back_ms: 24 * HOUR,
            request_timeout_ms: 30 * SECOND,
        },
        hubspot: Hubspot {
            api_url: "https://api.hubapi.com",
            search_look_back_ms: 30 * SECOND,
            page_size: 200,
            search_per_second: 4,
            write_back_per_second: 2,
        },
        salesloft: Salesloft {
            api_url: "https://api.salesloft.com",
            direction_wait_ms: 5 * MINUTE,
            budget_share: 0.5,
            team_points: 600,
            budget_window_ms: MINUTE,
        },
        aloware: Aloware {
            transcript_wait_ms: 5 * MINUTE,
        },
        tick: Tick {
            duration_ms: 25 * SECOND,
            inbox_batch: 20,
            hubspot_pages: 4,
            salesloft_requests: 60,
            salesloft_transcript_requests: 20,
            write_backs: 20,
        },
        sync: crate::ledger::connection::Sync::Normal,
        retry: Retries {
            kendo_send: Backoff {
                base_ms: 2 * SECOND,
                cap_ms: 10 * MINUTE,
                max_attempts: 8,
            },
            // Up to 2, 4, 8, 16 and 32 s between six attempts.
            source_request: Backoff {
                base_ms: 2 * SECOND,
                cap_ms: MINUTE,
                max_attempts: 6,
            },
            // 5 s, doubling to 5 minutes, never given up: Aloware does not
            // send a webhook twice, so the stored one is the call.
            stored_delivery: Backoff {
                base_ms: 5 * SECOND,
                cap_ms: 5 * MINUTE,
                max_attempts: u32::MAX,
            },
            write_back: Backoff {
                base_ms: 2 * SECOND,
                cap_ms: 10 * MINUTE,
                max_attempts: 8,
            },
        },
    };

    /// How Kendo's answers are handled under this policy.
    pub fn answers(&self) -> AnswerPolicy {
        AnswerPolicy {
            backoff: self.retry.kendo_send,
            timeout_ms: self.kendo.timeout_ms,
            ambiguous_resends: self.kendo.ambiguous_resends,
        }
    }

    /// The pacing of one Kendo key under this policy.
    pub fn send_pacing(&self) -> SendPacing {
        SendPacing {
            limit: self.kendo.requests_per_window,
            window_ms: self.kendo.window_ms,
            margin: self.kendo.pacing_margin,
        }
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_url_ignores_a_trailing_slash() {
        assert_eq!(
            ingest_url("https://app.kendo.ai/"),
            "https://app.kendo.ai/api/integrations/push-api/ingest"
        );
    }

    #[test]
    fn a_claim_outlasts_every_request_of_a_send() {
        let answers = Policy::DEFAULT.answers();
        assert!(answers.lease_ms() > answers.timeout_after(answers.ambiguous_resends));
    }
}

//! A call's life in the state database, written once for every driver.
//!
//! The ledger holds one row per call and Kendo team with its one typed
//! [`State`]; a call the plugin decided to send also has a row in the
//! outbox (its payload and its send's bookkeeping: when it may go next,
//! the claim it is in flight under, the answers it lost). Each stage is a
//! module named for it, in the order a call passes through them:
//!
//! - [`checkpoint`]: where a source's polling stands;
//! - [`inbox`]: a verified webhook delivery, stored before it is answered,
//!   processed under a lease, deferred on its own when it fails;
//! - [`hold`]: parts of a call that arrive apart (Aloware's body and
//!   transcript), merged until the call can be decided;
//! - [`intake`]: the plugin's decision recorded, once per call, whichever
//!   path brings it and however often;
//! - [`send`]: a send claimed under a lease, in the key's pacing, across
//!   every instance sharing the database; sends a dead instance left in
//!   flight recovered; the key paused and resumed;
//! - [`health`]: how each part of a source is doing, for `status`;
//! - [`record`]: what Kendo's answer means ([`crate::answer::Action`])
//!   carried out on the ledger and the outbox;
//! - [`results`]: Kendo's scores of the calls it received, matched to them;
//! - [`operator`]: what an operator does by hand (`settle`, `replay`), and
//!   [`redecide`]: the calls a change of rules decides again;
//! - [`report`]: every count and list `status`, the page, `/metrics` and
//!   Spin's `GET /status` show;
//! - [`connection`]: what each driver runs on a connection it opens, and
//!   the migrations.
//!
//! Every function takes the [`Database`] the driver implements: the host on
//! rusqlite (feature `rusqlite`), the Spin app on Spin's SQLite API, tests
//! on an in-memory database. Each change a rule makes is one transaction
//! ([`database::write`]), so any number of instances on one database never
//! send a call twice except after a lost answer (counted and flagged).

pub mod checkpoint;
pub mod connection;
pub mod database;
pub mod health;
pub mod hold;
pub mod inbox;
pub mod intake;
pub mod operator;
pub mod record;
pub mod records;
pub mod redecide;
pub mod report;
pub mod results;
pub mod send;
#[cfg(any(feature = "rusqlite", test))]
pub mod sqlite;
pub mod write_back;

pub use database::{Database, Row, Value, write};

use crate::Millis;

/// Why the ledger could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The driver's database failed (locked past its timeout, disk full,
    /// connection lost).
    #[error("state database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// A row holds a value this build does not understand.
    #[error("the state database holds an unknown {what} `{value}`")]
    Corrupt { what: &'static str, value: String },
    /// The send is already in flight or no longer queued.
    #[error("the send of {source_id} is not queued (another instance may be sending it)")]
    NotClaimable { source_id: String },
}

/// Where a call stands: the one state of a call, in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Not ready yet (recording processing, transcript pending); the source
    /// will bring it back when it changes.
    Waiting,
    /// Not to be sent; the reason is kept.
    Skipped,
    /// In the outbox, waiting for its turn (or its retry time).
    Queued,
    /// A request is (or was, before a crash) in flight.
    Sending,
    /// Kendo answered 2xx. Never sent again.
    Sent,
    /// Kendo rejected it for good (400, 413), or it could not be mapped.
    Failed,
    /// Retries ran out. `replay` puts it back in the queue.
    Dead,
    /// Kendo's answer was lost more often than `kendo.ambiguous_resends`
    /// allows: Kendo may hold the call. Never sent again by itself; the
    /// operator checks Kendo and runs `settle --sent` or `settle --resend`.
    OutcomeUnknown,
}

impl State {
    /// Every state, in the order `status` shows them.
    pub const ALL: [State; 8] = [
        State::Queued,
        State::Sending,
        State::OutcomeUnknown,
        State::Sent,
        State::Waiting,
        State::Skipped,
        State::Failed,
        State::Dead,
    ];

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Skipped => "skipped",
            State::Queued => "queued",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Dead => "dead",
            State::OutcomeUnknown => "outcome-unknown",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Reads a stored name, or says the row is corrupt.
    pub fn read(s: String) -> Result<State, LedgerError> {
        State::parse(&s).ok_or(LedgerError::Corrupt {
            what: "ledger state",
            value: s,
        })
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one call for one Kendo team.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    pub source: String,
    pub source_id: String,
    pub team: String,
}

impl CallKey {
    fn params(&self) -> [Value; 3] {
        [
            (&self.source).into(),
            (&self.source_id).into(),
            (&self.team).into(),
        ]
    }
}

/// Counter names kept in `counters`.
pub mod counter {
    /// Kendo answered 429 although the bridge paced (scope: team).
    pub const KENDO_429: &str = "kendo_429";
    /// Sends whose answer was lost (the process crashed, the request timed
    /// out, the connection dropped before the answer) and that were sent
    /// again: each may be a duplicate in Kendo (scope: team).
    pub const RESENT_AFTER_LOST_ANSWER: &str = "resent_after_lost_answer";
    /// Retries after a 5xx or a timeout (scope: team).
    pub const RETRIES: &str = "retries";
    /// 429s from a source API (scope: source).
    pub const SOURCE_429: &str = "source_429";
    /// Webhook deliveries refused for their signature (scope: source).
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// Webhook deliveries stored (scope: source).
    pub const WEBHOOKS: &str = "webhooks";
    /// Duplicate webhook deliveries (same delivery id) (scope: source).
    pub const DUPLICATE_WEBHOOKS: &str = "duplicate_webhooks";
    /// Source API requests answered 2xx or 404 (scope: source).
    pub const SOURCE_REQUESTS_OK: &str = "source_requests_ok";
    /// Source API requests that failed: any other status, or no answer
    /// (scope: source).
    pub const SOURCE_REQUESTS_ERROR: &str = "source_requests_error";
    /// Cost points the source said its requests cost (Salesloft's
    /// `x-ratelimit-endpoint-cost`) (scope: source).
    pub const SOURCE_COST_POINTS: &str = "source_cost_points";
}

/// Adds `by` to a counter.
pub fn bump<D: Database + ?Sized>(
    db: &D,
    scope: &str,
    name: &str,
    by: i64,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO counters (scope, name, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope, name) DO UPDATE SET value = value + excluded.value",
        &[scope.into(), name.into(), by.into()],
    )?;
    Ok(())
}

/// Moves a call's ledger row to `state`, keeping its reason unless a new
/// one is given.
pub fn set_state<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
    state: State,
    code: Option<&str>,
    reason: Option<&str>,
    now: Millis,
) -> Result<(), LedgerError> {
    let [source, source_id, team] = key.params();
    db.run(
        "UPDATE ledger SET state = ?4, reason_code = COALESCE(?5, reason_code),
            reason = COALESCE(?6, reason), updated_at = ?7
         WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        &[
            source,
            source_id,
            team,
            state.as_str().into(),
            code.into(),
            reason.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// Kendo may hold the call more than once.
pub fn flag_maybe_duplicated<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE ledger SET maybe_duplicated = 1 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        &key.params(),
    )?;
    Ok(())
}

/// Keeps every callId Kendo returned for a call.
pub fn record_call_id<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
    call_id: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    let [source, source_id, team] = key.params();
    db.run(
        "INSERT INTO kendo_call_ids (source, source_id, team, kendo_call_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[source, source_id, team, call_id.into(), now.into()],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;

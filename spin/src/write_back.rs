//! HubSpot write-back on Spin, by the core's workflow
//! (`kendo_bridge_core::sources::write_back`) and ledger
//! (`kendo_bridge_core::ledger::write_back`), as the host does it: with
//! `hubspot_write_back = "true"`, Kendo's 201 queues `Kendo Sent` and the
//! `callId`, and Kendo's score queues the score, each in the transaction
//! of its cause; `POST /tick` writes what is due, at most
//! [`WRITE_BACKS_PER_TICK`] a tick, each claimed under a lease so instances
//! sharing the database never write one twice at once.
//!
//! What the host does and this does not: pace the writes
//! (`write_back_per_second`); a tick's few writes, one at a time, stay far
//! under HubSpot's burst limit.

use anyhow::Result;
use kendo_bridge_core::ledger::{CallKey, health, write_back as ledger};
use kendo_bridge_core::sources::write_back::{
    self as workflow, CLAIM_LEASE_MS, Ensure, EnsureNeed, Failure, Request, SOURCE, TOPIC,
    WriteAction,
};

use crate::Failed;
use crate::delivery::Db;
use crate::hubspot::fetch;
use crate::plugin::kendo::bridge::types::{Header, HttpRequest};
use crate::{jitter, now_ms, variable};
use kendo_bridge_core::policy::Policy;

/// Write-backs a tick attempts at most: a tick is one request, with the
/// platform's time limit.
pub const WRITE_BACKS_PER_TICK: u32 = Policy::DEFAULT.tick.write_backs;

/// Whether write-back is on (`hubspot_write_back = "true"`; off by
/// default, as on the host).
pub fn enabled() -> bool {
    variable("hubspot_write_back").is_some_and(|v| v == "true")
}

/// For the core's `record`: queues `Kendo Sent` for a HubSpot call Kendo
/// just created, inside the record's transaction.
pub fn on_created(
    db: &Db,
    key: &CallKey,
    call_id: Option<&str>,
) -> Result<(), kendo_bridge_core::ledger::LedgerError> {
    if key.source == SOURCE && enabled() {
        ledger::enqueue_sent(db, key, call_id, now_ms() as i64)?;
    }
    Ok(())
}

/// For the core's results `record`: queues a HubSpot call's score.
pub fn on_scored(
    db: &Db,
    source: &str,
    source_id: &str,
    score: f64,
    scored_at: i64,
) -> Result<(), kendo_bridge_core::ledger::LedgerError> {
    if source == SOURCE && enabled() {
        ledger::enqueue_score(db, source, source_id, score, scored_at, now_ms() as i64)?;
    }
    Ok(())
}

/// What a tick's write-backs did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Pass {
    pub written: u32,
    pub retried: u32,
    pub dead: u32,
    /// HubSpot refused the token or a scope: every write-back waits.
    pub held: bool,
}

/// Writes what is due, as the core says each answer means.
pub async fn pass(db: &Db) -> Result<Pass> {
    let mut pass = Pass::default();
    let mut ensured = false;
    for item in ledger::due(db, now_ms() as i64, WRITE_BACKS_PER_TICK)? {
        let now = now_ms() as i64;
        if !ledger::claim(db, &item, CLAIM_LEASE_MS, now)? {
            continue;
        }
        let ensured_now = if ensured { Ok(None) } else { ensure().await };
        let action = if let Err(e) = &ensured_now {
            workflow::after_ensure(failure(e), &Policy::DEFAULT.retry.write_back, now)
        } else if let Ok(Some(problem)) = ensured_now {
            // A `kendo_*` property made by hand with another type: a
            // person must fix it; every write-back waits.
            workflow::after_mismatch(problem, &Policy::DEFAULT.retry.write_back, now)
        } else {
            ensured = true;
            let answer = fetch(&http(workflow::patch(&item))).await;
            let answer = match &answer {
                Ok(body) => Ok(body.is_some()),
                Err(e) => Err(failure(e)),
            };
            workflow::after_write(
                &item,
                answer,
                &Policy::DEFAULT.retry.write_back,
                now,
                jitter(),
            )
        };
        let now = now_ms() as i64;
        match action {
            WriteAction::Done => {
                ledger::done(db, &item, now)?;
                health::ok(db, SOURCE, TOPIC, now)?;
                pass.written += 1;
            }
            WriteAction::Retry {
                at,
                error,
                remake_properties,
            } => {
                ensured &= !remake_properties;
                ledger::retry(db, &item, at, &error, now)?;
                pass.retried += 1;
            }
            WriteAction::Dead {
                reason,
                health_problem,
            } => {
                if health_problem {
                    health::problem(db, SOURCE, TOPIC, &reason, now)?;
                }
                ledger::dead(db, &item, &reason, now)?;
                pass.dead += 1;
            }
            WriteAction::HoldAll { until, problem } => {
                health::problem(db, SOURCE, TOPIC, &problem, now)?;
                ledger::hold(db, SOURCE, Some(&item), until, &problem, now)?;
                pass.held = true;
                break;
            }
        }
    }
    Ok(pass)
}

/// Makes the group and each property unless HubSpot already has them, in
/// the order the core's [`Ensure`] asks; a create's 409 (made meanwhile)
/// is as good as its 201. `Some(problem)` when one exists with another
/// type or field type (the core's `property_problem`).
async fn ensure() -> Result<Option<String>, Failed> {
    let mut ensure = Ensure::new();
    loop {
        match ensure.next() {
            EnsureNeed::Done => return Ok(None),
            EnsureNeed::Read(request) => match fetch(&http(request)).await? {
                Some(body) => {
                    if let Err(problem) = ensure.found(&body) {
                        return Ok(Some(problem));
                    }
                }
                None => ensure.read(false),
            },
            EnsureNeed::Create(request) => match fetch(&http(request)).await {
                Ok(_) => ensure.created(),
                Err(e) if e.status == Some(409) => ensure.created(),
                Err(e) => return Err(e),
            },
        }
    }
}

/// The core's planned request as the plugin's request type, which
/// [`fetch`] makes.
fn http(request: Request) -> HttpRequest {
    let header = |value: &str| Header {
        name: "Content-Type".into(),
        value: value.into(),
    };
    HttpRequest {
        method: request.method.into(),
        headers: request.content_type().map(header).into_iter().collect(),
        path: request.path,
        body: request.body,
    }
}

/// A failed request as the core's workflow reads it.
fn failure(e: &Failed) -> Failure<'_> {
    Failure {
        status: e.status,
        passing: e.passing,
        method: &e.method,
        path: &e.path,
        message: &e.message,
    }
}

//! The inbox's engine, written once for both drivers: a stored webhook
//! delivery is taken, handed to its source's workflow, and what came of it
//! decides the delivery's fate: done; deferred to its own next attempt
//! (the others go on); or closed with its reason, shown as the source's
//! `webhook` problem. A delivery that stopped whatever processed it (a
//! plugin trap takes a Spin instance down with it) is closed after
//! [`inbox::MAX_ABANDONED`] takings, and the calls it names are recorded as
//! failed: the trap costs those calls, never the bridge.
//!
//! The driver only runs it: the host on its blocking pool after each
//! webhook and when a deferred delivery falls due, Spin after a webhook's
//! answer and in each tick. It then wakes its sender for what was queued.

use crate::Millis;
use crate::ledger::inbox::{self, AfterFailure, Cause, InboxEntry};
use crate::ledger::intake::{self, Intake, IntakeReport, Outcome};
use crate::ledger::results::{self, KendoResult};
use crate::ledger::{CallKey, LedgerError, health, write_back};
use crate::ports::{HubspotPlugin, Ports, Read, SalesloftApi, SalesloftPlugin, Trap, Via};
use crate::sources::{aloware, hubspot, salesloft};

/// The inbox's name for Kendo's result webhooks.
pub const KENDO: &str = "kendo";

/// What each workflow needs from the driver's configuration; `None`: the
/// source is off.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// HubSpot: whether calls' transcripts are read.
    pub hubspot: Option<bool>,
    pub salesloft: Option<salesloft::Settings>,
    /// Aloware: how long a call ready with its recording waits for its
    /// transcript.
    pub aloware: Option<Millis>,
    /// The sources whose calls get a score written back once Kendo scores
    /// them.
    pub write_backs: Vec<String>,
}

/// A Kendo result webhook, as the driver's reader read it.
#[derive(Debug, Clone, PartialEq)]
pub enum KendoEvent {
    Result {
        /// `call.uploaded` or `ai.training.completed`.
        event: &'static str,
        id: String,
        subject_id: String,
        ai_score: Option<f64>,
        is_test: bool,
        created_at: Option<String>,
    },
    /// An event this bridge does not know: its name.
    Unknown(String),
}

/// Everything the engine runs over: each source's ports, the one table of
/// what an error costs, and Kendo's result reader.
pub trait InboxPorts: SalesloftApi + Ports<Plugin: HubspotPlugin + SalesloftPlugin> {
    /// What made a workflow's error happen ([`inbox::failure`] says what
    /// it costs).
    fn cause(&self, error: &Self::Error) -> Cause;

    /// A uniform number in [0, 1), the back-off's jitter.
    fn jitter(&self) -> f64;

    /// Reads a Kendo result webhook.
    fn kendo_read_webhook(&self, body: &str) -> Result<Read<KendoEvent>, Trap>;
}

/// What processing one delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    /// Done: what it was, and what its calls' intake queued (the driver's
    /// sender goes when something was).
    Done {
        summary: String,
        queued: IntakeReport,
    },
    /// Kept for its own next attempt at `at`.
    Deferred { at: Millis, reason: String },
    /// Closed with its reason, the source's `webhook` problem (`new`: not
    /// shown before, worth a warning).
    Closed { reason: String, new: bool },
}

impl Processed {
    /// Whether the sender has calls to send.
    pub fn queued(&self) -> bool {
        matches!(self, Processed::Done { queued, .. } if queued.enqueued + queued.updated > 0)
    }
}

/// What a source's workflow made of a delivery.
enum Came {
    Decided(IntakeReport),
    /// Nothing to send (held, ignored, a result): why, for the log.
    Nothing(String),
    /// It can never be read.
    Unreadable(String),
}

/// Processes the delivery `entry` (taken already): its source's workflow,
/// then done, deferred or closed as [`inbox::after_failure`] says. `Err` is
/// the database failing while recording that: the delivery stays taken
/// until its lease ends, and is tried again.
pub async fn process<P: InboxPorts>(
    ports: &P,
    settings: &Settings,
    entry: &InboxEntry,
) -> Result<Processed, LedgerError> {
    let came = dispatch(ports, settings, entry).await;
    let (db, now) = (ports.db(), ports.now());
    match came {
        Ok(Came::Decided(report)) => {
            inbox::done(db, entry.id, None, now)?;
            Ok(Processed::Done {
                summary: format!(
                    "{} queued, {} updated, {} seen before, {} waiting, {} skipped, {} failed",
                    report.enqueued,
                    report.updated,
                    report.duplicates,
                    report.waiting,
                    report.skipped,
                    report.failed
                ),
                queued: report,
            })
        }
        Ok(Came::Nothing(summary)) => {
            inbox::done(db, entry.id, None, now)?;
            Ok(Processed::Done {
                summary,
                queued: IntakeReport::default(),
            })
        }
        Ok(Came::Unreadable(reason)) => close(ports, entry, reason),
        Err(error) => {
            let reason = error.to_string();
            let failure = inbox::failure(ports.cause(&error));
            match inbox::after_failure(failure, entry.attempts, ports.jitter(), now) {
                AfterFailure::Defer { at, problem } => {
                    inbox::defer(db, entry.id, at, &reason)?;
                    if problem {
                        health::problem(db, &entry.source, "webhook", &reason, now)?;
                    }
                    Ok(Processed::Deferred { at, reason })
                }
                AfterFailure::Close => close(ports, entry, reason),
            }
        }
    }
}

/// Closes `entry` with `reason`, the source's `webhook` problem.
fn close<P: Ports>(
    ports: &P,
    entry: &InboxEntry,
    reason: String,
) -> Result<Processed, LedgerError> {
    let (db, now) = (ports.db(), ports.now());
    inbox::done(db, entry.id, Some(&reason), now)?;
    let new = health::problem(db, &entry.source, "webhook", &reason, now)?;
    Ok(Processed::Closed { reason, new })
}

/// Hands `entry` to its source's workflow.
async fn dispatch<P: InboxPorts>(
    ports: &P,
    settings: &Settings,
    entry: &InboxEntry,
) -> Result<Came, P::Error> {
    let body = String::from_utf8_lossy(&entry.body);
    let off = |source: &str| {
        Ok(Came::Unreadable(format!(
            "{source} is off in this bridge's configuration: the delivery was not processed"
        )))
    };
    match entry.source.as_str() {
        hubspot::SOURCE => {
            let Some(transcripts) = settings.hubspot else {
                return off(hubspot::SOURCE);
            };
            let via = if entry.event.as_deref() == Some(crate::sources::via::WORKFLOW) {
                Via::Workflow
            } else {
                Via::Webhook
            };
            Ok(
                match hubspot::receive_webhook(ports, &body, via, transcripts).await? {
                    hubspot::Handled::Decided(report) => Came::Decided(report),
                    hubspot::Handled::Unreadable(reason) => Came::Unreadable(reason),
                },
            )
        }
        salesloft::SOURCE => {
            let Some(sl) = settings.salesloft else {
                return off(salesloft::SOURCE);
            };
            let event = entry.event.as_deref().unwrap_or_default();
            Ok(
                match salesloft::receive_webhook(ports, event, &body, sl).await? {
                    salesloft::Handled::Decided(report) => Came::Decided(report),
                    salesloft::Handled::Ignored(reason) => Came::Nothing(reason),
                    salesloft::Handled::Unreadable(reason) => Came::Unreadable(reason),
                },
            )
        }
        aloware::SOURCE => {
            let Some(wait_ms) = settings.aloware else {
                return off(aloware::SOURCE);
            };
            // Deliveries carry no id or time of their own: the inbox's
            // sequence versions them.
            Ok(
                match aloware::receive(ports, entry.id, &body, wait_ms).map_err(P::Error::from)? {
                    aloware::Handled::Decided(report) => Came::Decided(report),
                    aloware::Handled::Held => {
                        Came::Nothing("transcript held until its call arrives".into())
                    }
                    aloware::Handled::Ignored(reason) => Came::Nothing(reason),
                    aloware::Handled::Rejected { id, reason } => {
                        Came::Unreadable(format!("{reason} (recorded as failed under {id})"))
                    }
                },
            )
        }
        KENDO => Ok(kendo_result(ports, settings, &body)?),
        other => Ok(Came::Unreadable(format!(
            "no workflow reads deliveries from `{other}`"
        ))),
    }
}

/// Records a Kendo result once per event id; a new score of a call whose
/// source writes back queues its write-back in the same transaction.
fn kendo_result<P: InboxPorts>(
    ports: &P,
    settings: &Settings,
    body: &str,
) -> Result<Came, P::Error> {
    let (event, id, subject_id, ai_score, is_test, created_at) =
        match ports.kendo_read_webhook(body)? {
            Err(problem) => return Ok(Came::Unreadable(problem.to_string())),
            Ok(KendoEvent::Unknown(name)) => {
                return Ok(Came::Nothing(format!(
                    "ignored unknown Kendo event `{name}`"
                )));
            }
            Ok(KendoEvent::Result {
                event,
                id,
                subject_id,
                ai_score,
                is_test,
                created_at,
            }) => (event, id, subject_id, ai_score, is_test, created_at),
        };
    let now = ports.now();
    let new = results::record(
        ports.db(),
        &KendoResult {
            event_id: &id,
            event,
            subject_id: &subject_id,
            ai_score,
            is_test,
            scored_at: results::scored_at(created_at.as_deref()),
        },
        now,
        |db, source, source_id, score, scored_at| {
            if settings.write_backs.iter().any(|s| s == source) {
                write_back::enqueue_score(db, source, source_id, score, scored_at, now)?;
            }
            Ok(())
        },
    )?;
    Ok(Came::Nothing(format!(
        "{event} for {subject_id} (score {}){}{}",
        ai_score.map_or("-".to_string(), |s| s.to_string()),
        if is_test { ", a test delivery" } else { "" },
        if new { "" } else { ", seen before" },
    )))
}

/// What one pass over the inbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub processed: u32,
    pub deferred: u32,
    pub closed: u32,
    /// Closed because they stopped their processor too often.
    pub abandoned: u32,
}

/// How much one pass takes on.
#[derive(Debug, Clone, Copy)]
pub struct PassLimits {
    /// Deliveries taken at a time.
    pub batch: u32,
    /// Batches at most (`None`: until none is due).
    pub batches: Option<u32>,
}

/// One pass over the deliveries due now, batch by batch: each processed
/// ([`process`]) and told to `on_processed`. Once `stopping` says so, no
/// delivery is started and those taken but not started are given back
/// (they stay stored, for the next pass).
pub async fn pass<P: InboxPorts>(
    ports: &P,
    settings: &Settings,
    limits: PassLimits,
    stopping: impl Fn() -> bool,
    mut on_processed: impl FnMut(&InboxEntry, &Processed),
) -> Result<Progress, LedgerError> {
    let mut progress = Progress::default();
    let mut batches = 0;
    while limits.batches.is_none_or(|most| batches < most) && !stopping() {
        batches += 1;
        let taken = take(ports, limits.batch)?;
        progress.abandoned += taken.abandoned;
        if taken.due.is_empty() {
            break;
        }
        let mut due = taken.due.into_iter();
        while let Some(entry) = due.next() {
            if stopping() {
                let untouched: Vec<i64> = std::iter::once(entry.id)
                    .chain(due.by_ref().map(|e| e.id))
                    .collect();
                inbox::release(ports.db(), &untouched)?;
                return Ok(progress);
            }
            let processed = process(ports, settings, &entry).await?;
            match &processed {
                Processed::Done { .. } => progress.processed += 1,
                Processed::Deferred { .. } => progress.deferred += 1,
                Processed::Closed { .. } => progress.closed += 1,
            }
            on_processed(&entry, &processed);
        }
    }
    Ok(progress)
}

/// What a taking got.
struct Taken {
    due: Vec<InboxEntry>,
    abandoned: u32,
}

/// Takes up to `limit` due deliveries; those that stopped their processor
/// too often are closed by the ledger, and here the calls they name are
/// recorded as failed with the reason.
fn take<P: Ports>(ports: &P, limit: u32) -> Result<Taken, LedgerError> {
    let now = ports.now();
    let claimed = inbox::take(ports.db(), limit, inbox::LEASE_MS, now)?;
    let abandoned = claimed.abandoned.len() as u32;
    for (entry, reason) in &claimed.abandoned {
        health::problem(ports.db(), &entry.source, "webhook", reason, now)?;
        let team = ports.team(&entry.source, None);
        let failed: Vec<Intake> = named_calls(&entry.source, &entry.body)
            .into_iter()
            .map(|id| Intake {
                key: CallKey {
                    source: entry.source.clone(),
                    source_id: id,
                    team: team.clone(),
                },
                // The lowest version: a call the ledger holds already keeps
                // its row, and the call, once processed, replaces this one.
                version: "0".into(),
                sync_method: crate::sources::via::WEBHOOK.into(),
                outcome: Outcome::Fail {
                    code: "stopped".into(),
                    detail: reason.clone(),
                },
            })
            .collect();
        intake::intake(ports.db(), &failed, None, now)?;
    }
    Ok(Taken {
        due: claimed.due,
        abandoned,
    })
}

/// The ids of the calls a delivery names, read without the plugin (which
/// may be what stopped): Aloware's `body.id`, a Salesloft call's `id`, the
/// `objectId` of each HubSpot event. Best effort: none when it cannot say.
pub fn named_calls(source: &str, body: &[u8]) -> Vec<String> {
    use serde_json::Value;
    let id = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    match source {
        aloware::SOURCE => aloware::call_id_hint(&String::from_utf8_lossy(body))
            .into_iter()
            .collect(),
        salesloft::SOURCE => value.get("id").and_then(id).into_iter().collect(),
        hubspot::SOURCE => {
            let events = match &value {
                Value::Array(events) => events.iter().collect(),
                single => vec![single],
            };
            let mut ids: Vec<String> = events
                .into_iter()
                .filter_map(|e| e.get("objectId").and_then(id))
                .collect();
            ids.dedup();
            ids
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calls_a_delivery_names_are_read_without_the_plugin() {
        assert_eq!(
            named_calls("salesloft", br#"{"id": 62000, "note": "x"}"#),
            vec!["62000"]
        );
        assert_eq!(
            named_calls(
                "hubspot",
                br#"[{"objectId": 7, "subscriptionType": "object.creation"}, {"objectId": 7}, {"objectId": "8"}]"#
            ),
            vec!["7", "8"]
        );
        assert_eq!(
            named_calls(
                "aloware",
                br#"{"event": "Call-Disposed", "body": {"id": 52}}"#
            ),
            vec!["52"]
        );
        assert!(named_calls("salesloft", b"not json").is_empty());
        assert!(named_calls("kendo", br#"{"id": 1}"#).is_empty());
    }

    #[test]
    fn only_a_done_delivery_that_queued_a_call_wakes_the_sender() {
        let done = |enqueued| Processed::Done {
            summary: String::new(),
            queued: IntakeReport {
                enqueued,
                ..IntakeReport::default()
            },
        };
        assert!(done(1).queued());
        assert!(!done(0).queued());
        assert!(
            !Processed::Closed {
                reason: String::new(),
                new: true
            }
            .queued()
        );
    }
}

//! Kendo's answer recorded: what [`crate::answer::after_answer`] decided
//! the answer means ([`Action`]), carried out on the ledger and the outbox
//! in one transaction, while the send's claim still holds it.

use super::health;
use super::send::{OutboxItem, pause};
use super::{
    CallKey, Database, LedgerError, State, bump, counter, flag_maybe_duplicated, record_call_id,
    set_state, write,
};
use crate::Millis;
use crate::answer::Action;

/// Where a send the runtime refuses shows, as a source part's problem:
/// Kendo's `send`.
pub const KENDO_SEND: (&str, &str) = ("kendo", "send");

/// Kendo holds the call: the send leaves the outbox, the ledger says
/// `sent` (with `why` as its reason, when it was not Kendo's own answer
/// read), and `on_created` runs in the same transaction. The one way a call
/// becomes sent: a 201 read, a 2xx kept before a crash, and the operator's
/// `settle --sent` all come here. Inside a write.
pub(crate) fn created<D: Database + ?Sized>(
    db: &D,
    outbox_id: i64,
    key: &CallKey,
    call_id: Option<&str>,
    why: Option<(&str, &str)>,
    now: Millis,
    on_created: impl FnOnce(&D, &CallKey, Option<&str>) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    db.run("DELETE FROM outbox WHERE id = ?1", &[outbox_id.into()])?;
    let [source, source_id, team] = key.params();
    let (code, reason) = why.unzip();
    // A callId already known stays when this one is not (the operator's
    // `settle --sent` without `--call-id`).
    db.run(
        "UPDATE ledger SET state = ?8, kendo_call_id = COALESCE(?4, kendo_call_id), sent_at = ?5,
                updated_at = ?5, reason_code = ?6, reason = ?7
         WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        &[
            source,
            source_id,
            team,
            call_id.into(),
            now.into(),
            code.into(),
            reason.into(),
            State::Sent.as_str().into(),
        ],
    )?;
    if let Some(call_id) = call_id {
        record_call_id(db, key, call_id, now)?;
    }
    on_created(db, key, call_id)
}

/// A request to Kendo went through: a refusal by the runtime is over.
pub(crate) fn send_went_through<D: Database + ?Sized>(
    db: &D,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE source_health SET problem = NULL, problem_since = NULL, problem_count = 0,
             ok_at = ?3
         WHERE source = ?1 AND topic = ?2 AND problem IS NOT NULL",
        &[KENDO_SEND.0.into(), KENDO_SEND.1.into(), now.into()],
    )?;
    Ok(())
}

/// Carries out `action` for the send `item` (claimed under `item.claim`).
/// `key_fingerprint` is the key the request used (a pause names it).
/// `on_created` runs inside the same transaction when Kendo created the
/// call, for what a driver adds (the host queues its write-backs there).
///
/// Returns false, and changes nothing, when the send's claim no longer
/// holds it: its lease ran out (this instance stalled past its own
/// timeout) and another instance recovered the send, which now decides its
/// fate. A 201 is recorded whatever the claim: Kendo has the call, and
/// sending it again would duplicate it.
pub fn record<D: Database + ?Sized>(
    db: &D,
    item: &OutboxItem,
    action: &Action,
    key_fingerprint: &str,
    now: Millis,
    on_created: impl FnOnce(&D, &CallKey, Option<&str>) -> Result<(), LedgerError>,
) -> Result<bool, LedgerError> {
    let key = &item.key;
    write(db, |db| {
        if let Action::Created { call_id, .. } = action {
            created(db, item.id, key, call_id.as_deref(), None, now, on_created)?;
            send_went_through(db, now)?;
            return Ok(true);
        }
        // What the answer says about the key holds whoever holds the send.
        match action {
            Action::RateLimited { retry_at, .. } => {
                // Every send of the key waits, from every instance.
                db.run(
                    "INSERT INTO key_blocks (team, until) VALUES (?1, ?2)
                     ON CONFLICT (team) DO UPDATE SET until = MAX(until, excluded.until)",
                    &[(&key.team).into(), (*retry_at).into()],
                )?;
                bump(db, &key.team, counter::KENDO_429, 1)?;
            }
            Action::PauseKey { reason } => pause(db, &key.team, reason, key_fingerprint, now)?,
            _ => {}
        }
        // The claim ends here, if it is still this send's.
        let held = db.run(
            "UPDATE outbox SET claim = NULL, lease_until = NULL
             WHERE id = ?1 AND claim IS ?2
               AND EXISTS (SELECT 1 FROM ledger l WHERE l.source = outbox.source
                   AND l.source_id = outbox.source_id AND l.team = outbox.team AND l.state = 'sending')
             RETURNING id",
            &[item.id.into(), item.claim.as_deref().into()],
        )?;
        if held.is_empty() {
            return Ok(false);
        }
        match action {
            Action::Created { .. } => {}
            Action::RateLimited { retry_at, reason } => {
                requeue(db, item, *retry_at, "rate-limited", reason, now)?;
            }
            Action::Retry { retry_at, reason } => {
                bump(db, &key.team, counter::RETRIES, 1)?;
                requeue(db, item, *retry_at, "transient", reason, now)?;
            }
            Action::ResendAfterLostAnswer {
                retry_at, reason, ..
            } => {
                db.run(
                    "UPDATE outbox SET ambiguous = ambiguous + 1 WHERE id = ?1",
                    &[item.id.into()],
                )?;
                requeue(db, item, *retry_at, "answer-lost", reason, now)?;
                flag_maybe_duplicated(db, key)?;
                bump(db, &key.team, counter::RETRIES, 1)?;
                bump(db, &key.team, counter::RESENT_AFTER_LOST_ANSWER, 1)?;
            }
            Action::PauseKey { reason } => {
                // Not the call's fault: it keeps its place.
                requeue(db, item, now, "key-refused", reason, now)?;
            }
            Action::Park { reason } => {
                db.run(
                    "UPDATE outbox SET last_error = ?2, ambiguous = ambiguous + 1 WHERE id = ?1",
                    &[item.id.into(), reason.into()],
                )?;
                set_state(
                    db,
                    key,
                    State::OutcomeUnknown,
                    Some("outcome-unknown"),
                    Some(reason),
                    now,
                )?;
                flag_maybe_duplicated(db, key)?;
            }
            Action::Dead { reason } => {
                dead_letter(db, item, State::Dead, "retries-exhausted", reason, now)?;
            }
            Action::Fail { code, reason } => {
                dead_letter(db, item, State::Failed, code, reason, now)?;
            }
            Action::NotSent {
                retry_at,
                code,
                reason,
            } => {
                // Nothing left: the attempt is not the call's.
                let [source, source_id, team] = key.params();
                db.run(
                    "UPDATE ledger SET attempts = MAX(attempts - 1, 0)
                     WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                    &[source, source_id, team],
                )?;
                db.run(
                    "UPDATE outbox SET attempts = MAX(attempts - 1, 0) WHERE id = ?1",
                    &[item.id.into()],
                )?;
                requeue(db, item, *retry_at, code, reason, now)?;
                health::problem(db, KENDO_SEND.0, KENDO_SEND.1, reason, now)?;
            }
        }
        Ok(true)
    })
}

/// The send goes back to the queue, not before `not_before`.
fn requeue<D: Database + ?Sized>(
    db: &D,
    item: &OutboxItem,
    not_before: Millis,
    code: &str,
    reason: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE outbox SET not_before = ?2, last_error = ?3 WHERE id = ?1",
        &[item.id.into(), not_before.into(), reason.into()],
    )?;
    set_state(db, &item.key, State::Queued, Some(code), Some(reason), now)
}

/// Ends the send for good; the payload stays in the outbox (as a dead
/// letter) so `replay` can send it again.
fn dead_letter<D: Database + ?Sized>(
    db: &D,
    item: &OutboxItem,
    state: State,
    code: &str,
    reason: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE outbox SET last_error = ?2 WHERE id = ?1",
        &[item.id.into(), reason.into()],
    )?;
    set_state(db, &item.key, state, Some(code), Some(reason), now)
}

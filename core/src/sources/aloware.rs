//! Aloware's workflow: webhook deliveries only, each stored in the inbox
//! first (its inbox id, the order of arrival, versions it: deliveries carry
//! no id or time of their own). A call's body (in several events, merged
//! by the plugin) and its transcript arrive apart and are held; a call
//! ready with its recording waits a bounded time for its transcript, then
//! goes with its recording alone. A delivery that cannot be read costs
//! that delivery only: it is a failed ledger row, under its call id when
//! the JSON names one the ledger does not have yet.

use crate::Millis;
use crate::ledger::hold::{self, HeldCall, TranscriptWaitDue};
use crate::ledger::intake::{self, Intake, IntakeReport, Outcome};
use crate::ledger::{CallKey, Database, LedgerError};
use crate::ports::{AlowareEvent, Decision, Plugin, Ports, Via, WorkflowError};

/// The ledger's name for this source.
pub const SOURCE: &str = "aloware";

/// The ledger version of what the delivery `sequence` brought.
pub fn version(sequence: i64) -> String {
    format!("{sequence:020}")
}

/// How long after Aloware's last transcript calls still wait for theirs:
/// an account with transcription sends one for most calls within minutes,
/// so a week without one means it is off (or was never on).
pub const TRANSCRIPT_WINDOW_MS: Millis = 7 * 24 * 60 * 60 * 1000;

/// Whether a call ready with its recording waits for its transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptMode {
    /// A transcript arrived within [`TRANSCRIPT_WINDOW_MS`] (at `last_at`):
    /// calls wait up to the configured `transcript_wait`.
    Wait { last_at: Millis },
    /// None did (`last_at`: the last one, if ever): a call goes with its
    /// recording at once; the first transcript to arrive turns waiting on.
    NoWait { last_at: Option<Millis> },
}

/// The transcript mode at `now`, from when Aloware last sent a transcript.
pub fn transcript_mode<D: Database + ?Sized>(
    db: &D,
    now: Millis,
) -> Result<TranscriptMode, LedgerError> {
    Ok(match hold::last_transcript_at(db, SOURCE)? {
        Some(last_at) if now.saturating_sub(last_at) <= TRANSCRIPT_WINDOW_MS => {
            TranscriptMode::Wait { last_at }
        }
        last_at => TranscriptMode::NoWait { last_at },
    })
}

/// What to do once a delivery's part of a call is held.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The call's body has not arrived: nothing to decide yet.
    Held,
    /// The ledger has the call at this version already: a sighting.
    Seen(Intake),
    /// Have the plugin map the call (`awaiting`: it may wait for its
    /// transcript) and record its decision at `version`.
    Decide {
        body: String,
        transcript: Option<String>,
        awaiting: bool,
        version: String,
    },
}

/// Decides what follows the delivery `sequence` for `call_id`, with what is
/// held for the call now. `transcript_wait_ms` is how long a call ready
/// with its recording waits for its transcript (0: never), on an account
/// that sends transcripts ([`transcript_mode`]).
pub fn after_hold<D: Database + ?Sized>(
    db: &D,
    team: &str,
    sequence: i64,
    call_id: &str,
    held: HeldCall,
    transcript_wait_ms: Millis,
    now: Millis,
) -> Result<Next, LedgerError> {
    let Some(body) = held.body else {
        return Ok(Next::Held);
    };
    let version = version(sequence);
    if intake::is_settled(db, SOURCE, call_id, &version)? {
        let key = CallKey {
            source: SOURCE.into(),
            source_id: call_id.into(),
            team: team.into(),
        };
        return Ok(Next::Seen(Intake::seen(key, &version, "webhook")));
    }
    let awaiting = held.transcript.is_none()
        && transcript_wait_ms > 0
        && held.transcript_due_at.is_none_or(|due| now < due)
        && matches!(transcript_mode(db, now)?, TranscriptMode::Wait { .. });
    Ok(Next::Decide {
        body,
        transcript: held.transcript,
        awaiting,
        version,
    })
}

/// After the plugin decided: a call that now waits for its transcript
/// (`awaiting` and a `transcript-pending` wait) starts its wait, once.
pub fn after_decision<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
    awaiting: bool,
    waits_for_transcript: bool,
    transcript_wait_ms: Millis,
    now: Millis,
) -> Result<(), LedgerError> {
    if awaiting && waits_for_transcript {
        hold::start_transcript_wait(db, SOURCE, call_id, now + transcript_wait_ms)?;
    }
    Ok(())
}

/// Calls whose wait for a transcript ran out by `now`: each is decided
/// again without waiting, at [`TranscriptWaitDue::version`] made newer by
/// [`version_after_wait`], then [`wait_over`].
pub fn waits_due<D: Database + ?Sized>(
    db: &D,
    now: Millis,
) -> Result<Vec<TranscriptWaitDue>, LedgerError> {
    hold::transcript_waits_due(db, SOURCE, now)
}

/// Newer than the waiting row, older than any later delivery (`...05+`
/// sorts after `...05` and before `...06`).
pub fn version_after_wait(version: &str) -> String {
    format!("{version}+transcript-wait-over")
}

/// The wait of `call_id` is over (only once its new decision is recorded:
/// a sweep that failed before finds the call again).
pub fn wait_over<D: Database + ?Sized>(db: &D, call_id: &str) -> Result<(), LedgerError> {
    hold::set_transcript_due(db, SOURCE, call_id, 0)
}

/// Records a delivery that cannot be read as a failed ledger row, so it
/// costs that delivery only and shows in `status`: under the call id its
/// JSON names, unless the ledger has that call already (a broken repeat
/// must not cancel a queued call), else under `unreadable:inbox-<sequence>`.
/// Returns the id it was recorded under.
pub fn reject<D: Database + ?Sized>(
    db: &D,
    team: &str,
    sequence: i64,
    body: &str,
    reason: &str,
    now: Millis,
) -> Result<String, LedgerError> {
    let synthetic = format!("unreadable:inbox-{sequence}");
    let id = match call_id_hint(body) {
        Some(id) => {
            let known = db
                .first(
                    "SELECT 1 FROM ledger WHERE source = ?1 AND source_id = ?2",
                    &[SOURCE.into(), (&id).into()],
                )?
                .is_some();
            if known { synthetic } else { id }
        }
        None => synthetic,
    };
    let failed = Intake {
        key: CallKey {
            source: SOURCE.into(),
            source_id: id.clone(),
            team: team.into(),
        },
        version: version(sequence),
        sync_method: "webhook".into(),
        outcome: Outcome::Fail {
            code: "unreadable".into(),
            detail: reason.to_string(),
        },
    };
    intake::intake(db, &[failed], None, now)?;
    Ok(id)
}

/// The call id of a delivery the plugin could not read, when its JSON has
/// one (`body.id`, or `body.communication.id` on transcript events).
pub fn call_id_hint(body: &str) -> Option<String> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(body).ok()?;
    let inner = value.get("body")?;
    let id = inner
        .get("id")
        .or_else(|| inner.get("communication").and_then(|c| c.get("id")))?;
    match id {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Merges tried before a body is kept as merged last: another instance
/// would have to change it between every read and write.
pub const MERGE_ATTEMPTS: u32 = 10;

/// What one delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// The call was decided (or seen again): its intake is recorded.
    Decided(IntakeReport),
    /// A transcript for a call not seen yet: held until the call arrives.
    Held,
    /// Not a call (an SMS, a test payload, a summary without transcript).
    Ignored(String),
    /// The delivery could not be read: recorded as failed under `id` (the
    /// call id it names, or `unreadable:inbox-<sequence>`).
    Rejected { id: String, reason: String },
}

/// The stored delivery `sequence`, start to end: read by the plugin; a
/// call's body merged into what is held (kept only if no other instance
/// changed it meanwhile) or its transcript held; then, once the body is
/// there, decided and recorded. `transcript_wait_ms`: how long a call
/// ready with its recording waits for its transcript.
pub fn receive<P: Ports>(
    ports: &P,
    sequence: i64,
    body: &str,
    transcript_wait_ms: Millis,
) -> Result<Handled, WorkflowError> {
    let (db, plugin) = (ports.db(), ports.plugin());
    let now = ports.now();
    let event = match plugin.aloware_read_event(body)? {
        Ok(event) => event,
        Err(problem) => {
            let reason = format!("an Aloware delivery could not be read: {problem}");
            let team = ports.team(SOURCE, None);
            let id = reject(db, &team, sequence, body, &reason, now)?;
            return Ok(Handled::Rejected { id, reason });
        }
    };
    let (call_id, held) = match event {
        AlowareEvent::Ignore { code, detail } => {
            return Ok(Handled::Ignored(format!("ignored ({code}): {detail}")));
        }
        AlowareEvent::Call { call_id, body } => {
            // `Recording-Saved` alone carries `direct_recording_url`, and
            // `Call-Disposed` follows it: each body is merged into what is
            // held, so a later one without the URL does not lose it.
            let mut attempts = 0;
            let held = loop {
                attempts += 1;
                let before = hold::held(db, SOURCE, &call_id)?.and_then(|h| h.body);
                let merged = plugin.aloware_merge_bodies(before.as_deref(), &body)?;
                if attempts >= MERGE_ATTEMPTS {
                    // Changing under every attempt: kept as merged last.
                    break hold::hold(db, SOURCE, &call_id, Some(&merged), None, now)?;
                }
                if let Some(held) =
                    hold::merge_body(db, SOURCE, &call_id, before.as_deref(), &merged, now)?
                {
                    break held;
                }
            };
            (call_id, held)
        }
        AlowareEvent::Transcript {
            name,
            call_id,
            transcript,
        } => {
            // A summary is not a transcript: only the text of the call is
            // ever sent as one.
            let Some(text) = transcript else {
                return Ok(Handled::Ignored(format!(
                    "{name} for call {call_id} carries no transcript text (a summary is not sent)"
                )));
            };
            let held = hold::hold(db, SOURCE, &call_id, None, Some(&text), now)?;
            (call_id, held)
        }
    };
    let team = ports.team(SOURCE, None);
    let intake = match after_hold(db, &team, sequence, &call_id, held, transcript_wait_ms, now)? {
        Next::Held => return Ok(Handled::Held),
        Next::Seen(seen) => seen,
        Next::Decide {
            body,
            transcript,
            awaiting,
            version,
        } => decide(
            ports,
            &call_id,
            &body,
            transcript.as_deref(),
            awaiting,
            &version,
            transcript_wait_ms,
        )?,
    };
    Ok(Handled::Decided(intake::intake(db, &[intake], None, now)?))
}

/// Calls whose wait for a transcript ran out go with their recording
/// alone: each decided again, recorded, and only then its wait over (a
/// sweep that failed before finds the call again).
pub fn sweep<P: Ports>(ports: &P) -> Result<IntakeReport, WorkflowError> {
    let db = ports.db();
    let mut report = IntakeReport::default();
    for call in waits_due(db, ports.now())? {
        let version = version_after_wait(&call.version);
        let intake = decide(ports, &call.source_id, &call.body, None, false, &version, 0)?;
        report.add(intake::intake(db, &[intake], None, ports.now())?);
        wait_over(db, &call.source_id)?;
    }
    Ok(report)
}

/// A call decided again from what is held for it (`redecide`), at
/// `version`; `None` when no body is held. It does not start a new wait
/// for a transcript: what is held is what it goes with.
pub fn redecide<P: Ports>(
    ports: &P,
    call_id: &str,
    version: &str,
) -> Result<Option<Intake>, WorkflowError> {
    let Some(HeldCall {
        body: Some(body),
        transcript,
        ..
    }) = hold::held(ports.db(), SOURCE, call_id)?
    else {
        return Ok(None);
    };
    Ok(Some(decide(
        ports,
        call_id,
        &body,
        transcript.as_deref(),
        false,
        version,
        0,
    )?))
}

/// The plugin maps a held call; a call that now waits for its transcript
/// starts its wait, once.
fn decide<P: Ports>(
    ports: &P,
    call_id: &str,
    body: &str,
    transcript: Option<&str>,
    awaiting: bool,
    version: &str,
    transcript_wait_ms: Millis,
) -> Result<Intake, WorkflowError> {
    let decision = ports
        .plugin()
        .aloware_map_call(body, transcript, awaiting, Via::Webhook);
    let waits_for_transcript = matches!(
        &decision,
        Ok(Ok(Decision::Wait { code, .. })) if code == TRANSCRIPT_PENDING
    );
    after_decision(
        ports.db(),
        call_id,
        awaiting,
        waits_for_transcript,
        transcript_wait_ms,
        ports.now(),
    )?;
    Ok(crate::decision::intake(
        ports,
        SOURCE,
        call_id,
        version,
        Via::Webhook,
        decision,
    ))
}

/// The plugin's wait code for a call whose transcript is coming.
pub const TRANSCRIPT_PENDING: &str = "transcript-pending";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_id_of_an_unreadable_delivery_is_found_when_present() {
        assert_eq!(
            call_id_hint(r#"{"body":{"id":940868616,"created_at":"x"}}"#).as_deref(),
            Some("940868616")
        );
        assert_eq!(
            call_id_hint(r#"{"body":{"communication":{"id":"cw_1"}}}"#).as_deref(),
            Some("cw_1")
        );
        assert_eq!(call_id_hint("not json"), None);
    }

    #[test]
    fn the_version_after_a_wait_sorts_between_deliveries() {
        let waited = version_after_wait(&version(5));
        assert!(version(5) < waited && waited < version(6));
    }
}

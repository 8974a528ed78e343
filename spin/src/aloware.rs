//! Aloware on Spin, as the host does it, by the core's workflow
//! (`kendo_bridge_core::sources::aloware`): each delivery stored first and
//! versioned by its inbox id; a call's body and transcript held in the
//! ledger and merged by the plugin; a call ready with its recording waits
//! up to `aloware_transcript_wait_seconds` (the host's
//! `aloware.transcript_wait`, 300 s) for its transcript, and `POST /tick`
//! sends it with its recording alone once the wait is over; a delivery
//! that cannot be read is a failed ledger row, under its call id when it
//! names one.

use anyhow::Result;
use kendo_bridge_core::decision::InputProblem;
use kendo_bridge_core::ledger::{hold, intake};
use kendo_bridge_core::sources::aloware::{self, Next, SOURCE};

use crate::delivery::{Db, TEAM};
use crate::plugin::kendo::bridge::aloware::{self as aloware_api, Event};
use crate::plugin::kendo::bridge::types::{Decision, SyncMethod, WaitCode};
use crate::{Processed, now_ms, rules, settle};

/// Merges tried before a body is kept as merged last: another instance
/// would have to change it between every read and write.
const MERGE_ATTEMPTS: u32 = 10;

/// Processes the stored delivery `sequence`.
pub async fn process(db: &Db, sequence: i64, body: &str) -> Result<Processed> {
    let now = now_ms() as i64;
    let event = match aloware_api::read_event(body) {
        Ok(event) => event,
        Err(e) => {
            let reason = format!(
                "an Aloware delivery could not be read: {}",
                InputProblem::from(&e)
            );
            let id = aloware::reject(db, TEAM, sequence, body, &reason, now)?;
            return Ok(Processed::Unreadable(format!(
                "{reason} (recorded as {id})"
            )));
        }
    };
    let (call_id, held) = match event {
        Event::Ignore(reason) => {
            return Ok(Processed::Answer(
                serde_json::json!({ "ignored": reason.detail }),
            ));
        }
        Event::Call(call) => {
            // The plugin merges: `Recording-Saved` alone carries
            // `direct_recording_url`, and `Call-Disposed` follows it. Kept
            // only if no other instance changed the body meanwhile (else
            // merged again with what it kept).
            let mut attempts = 0;
            let held = loop {
                attempts += 1;
                let before = hold::held(db, SOURCE, &call.call_id)?.and_then(|h| h.body);
                let merged = aloware_api::merge_bodies(before.as_deref(), &call.body);
                if attempts >= MERGE_ATTEMPTS {
                    // Changing under every attempt: kept as merged last.
                    break hold::hold(db, SOURCE, &call.call_id, Some(&merged), None, now)?;
                }
                if let Some(held) =
                    hold::merge_body(db, SOURCE, &call.call_id, before.as_deref(), &merged, now)?
                {
                    break held;
                }
            };
            (call.call_id, held)
        }
        Event::Transcript(t) => {
            // A summary is not a transcript: only the text of the call is
            // ever sent as one.
            let Some(text) = t.transcript else {
                return Ok(Processed::Answer(
                    serde_json::json!({ "ignored": "a summary is not a transcript" }),
                ));
            };
            let held = hold::hold(db, SOURCE, &t.call_id, None, Some(&text), now)?;
            (t.call_id, held)
        }
    };
    let wait = crate::policy::aloware_transcript_wait_ms();
    match aloware::after_hold(db, TEAM, sequence, &call_id, held, wait, now)? {
        Next::Held => Ok(Processed::Answer(
            serde_json::json!({ "status": "held until the call arrives" }),
        )),
        Next::Seen(seen) => {
            intake::intake(db, &[seen], None, now)?;
            Ok(Processed::Answer(
                serde_json::json!({ "status": "already sent or queued" }),
            ))
        }
        Next::Decide {
            body,
            transcript,
            awaiting,
            version,
        } => Ok(Processed::Answer(
            decide(db, &call_id, &body, transcript, awaiting, &version).await?,
        )),
    }
}

/// Calls whose wait for a transcript is over go with their recording.
pub async fn sweep(db: &Db) -> Result<usize> {
    let due = aloware::waits_due(db, now_ms() as i64)?;
    for call in &due {
        let version = aloware::version_after_wait(&call.version);
        decide(db, &call.source_id, &call.body, None, false, &version).await?;
        aloware::wait_over(db, &call.source_id)?;
    }
    Ok(due.len())
}

async fn decide(
    db: &Db,
    call_id: &str,
    body: &str,
    transcript: Option<String>,
    awaiting: bool,
    version: &str,
) -> Result<serde_json::Value> {
    let decision = aloware_api::map_call(
        body,
        transcript.as_deref(),
        awaiting,
        &rules()?,
        SyncMethod::Webhook,
    );
    let waits_for_transcript = matches!(
        &decision,
        Ok(Decision::Wait(reason)) if reason.code == WaitCode::TranscriptPending
    );
    aloware::after_decision(
        db,
        call_id,
        awaiting,
        waits_for_transcript,
        crate::policy::aloware_transcript_wait_ms(),
        now_ms() as i64,
    )?;
    settle(
        db,
        SOURCE,
        call_id,
        version,
        decision,
        crate::via_name(SyncMethod::Webhook),
    )
    .await
}

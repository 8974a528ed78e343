//! Aloware: webhook deliveries only. A call's disposition, its recording and
//! its transcript arrive as separate deliveries; what arrived is held until
//! the call can be sent, and a transcript that comes later is merged into a
//! call not yet sent.
//!
//! Captured real traffic for one call (docs: external-apis.md, Aloware):
//! `OutboundPhoneCall` at 0 s, `...-DispositionCompleted` at 70.4 s,
//! `Recording-Saved` at 74.4 s (the only event with `direct_recording_url`),
//! `Call-Disposed` at 77.0 s (the same state again), the summary at 118.6 s
//! and the transcript at 118.65 s. So each call delivery is merged into what
//! is held (a later body without the recording URL does not lose it), the
//! call is counted once by its id whatever event names the user subscribed
//! to, and a call ready with its recording waits a bounded time
//! (`aloware.transcript_wait`) for its transcript.

use super::{Context, SourceError, decide};
use crate::plugin::aloware::Event;
use crate::plugin::types::{Decision, SyncMethod, WaitCode};
use crate::store::{Intake, IntakeReport, Millis};
use kendo_bridge_core::sources::aloware::{self, Next};

/// The ledger's name for this source.
pub const SOURCE: &str = "aloware";

/// What a delivery amounted to.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Decided(IntakeReport),
    /// A transcript for a call not seen yet: held until the call arrives.
    Held,
    /// Not a call (SMS, test payload, a summary without transcript, ...).
    Ignored(String),
    /// The delivery could not be read: recorded as failed in the ledger
    /// under the call id when one could be found, else under
    /// `unreadable:inbox-<sequence>`.
    Rejected {
        id: String,
        reason: String,
    },
}

/// Merges tried before a body is kept as merged last: another instance
/// would have to change it between every read and write.
const MERGE_ATTEMPTS: u32 = 10;

/// The Aloware side of the bridge.
#[derive(Clone)]
pub struct Aloware {
    ctx: Context,
    /// `aloware.transcript_wait` in milliseconds (0: never wait).
    transcript_wait_ms: Millis,
}

impl Aloware {
    /// None when `[aloware]` is absent or disabled.
    pub fn new(ctx: &Context) -> Option<Aloware> {
        ctx.config
            .aloware
            .as_ref()
            .filter(|c| c.enabled)
            .map(|c| Aloware {
                ctx: ctx.clone(),
                transcript_wait_ms: c.transcript_wait.as_millis() as Millis,
            })
    }

    /// Handles the stored delivery `sequence` (its inbox id: deliveries carry
    /// no id or timestamp of their own, so arrival order versions them).
    pub async fn handle(&self, sequence: i64, body: &str) -> Result<Handled, SourceError> {
        let raw = body.to_string();
        let read = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_aloware().call_read_event(s, &raw))
            .await?;
        let now = self.ctx.clock.now_ms();
        let event = match read {
            Ok(event) => event,
            Err(error) => {
                let reason = format!("an Aloware delivery could not be read: {}", error.explain());
                return self.reject(sequence, body, reason).await;
            }
        };
        let (call_id, held) = match event {
            Event::Ignore(reason) => return Ok(Handled::Ignored(reason.to_string())),
            Event::Call(call) => {
                let (id, body) = (call.call_id.clone(), call.body);
                // The plugin merges (the same rule in every host); the
                // merge is kept only if no other instance changed the body
                // meanwhile, else merged again with what it kept.
                let mut attempts = 0;
                let held = loop {
                    attempts += 1;
                    let before = {
                        let id = id.clone();
                        self.ctx
                            .store
                            .run(move |s| Ok(s.held(SOURCE, &id)?.and_then(|h| h.body)))
                            .await?
                    };
                    let (merge_before, body) = (before.clone(), body.clone());
                    let merged = self
                        .ctx
                        .plugin
                        .call(move |b, s| {
                            b.kendo_bridge_aloware().call_merge_bodies(
                                s,
                                merge_before.as_deref(),
                                &body,
                            )
                        })
                        .await?;
                    let id = id.clone();
                    let kept = self
                        .ctx
                        .store
                        .run(move |s| {
                            if attempts >= MERGE_ATTEMPTS {
                                // Changing under every attempt: kept as merged last.
                                return Ok(Some(s.hold(SOURCE, &id, Some(&merged), None, now)?));
                            }
                            Ok(kendo_bridge_core::ledger::hold::merge_body(
                                s.database(),
                                SOURCE,
                                &id,
                                before.as_deref(),
                                &merged,
                                now,
                            )?)
                        })
                        .await?;
                    if let Some(held) = kept {
                        break held;
                    }
                };
                (call.call_id, held)
            }
            Event::Transcript(t) => {
                // A summary is not a transcript: only the text of the call
                // (`transcription.open_search.saved`) is ever sent as one.
                let Some(text) = t.transcript else {
                    return Ok(Handled::Ignored(format!(
                        "{} for call {} carries no transcript text (a summary is not sent)",
                        t.name, t.call_id
                    )));
                };
                let id = t.call_id.clone();
                let held = self
                    .ctx
                    .store
                    .run(move |s| s.hold(SOURCE, &id, None, Some(&text), now))
                    .await?;
                (t.call_id, held)
            }
        };
        let team = self.ctx.config.route(SOURCE, None).to_string();
        let wait = self.transcript_wait_ms;
        let next = {
            let id = call_id.clone();
            self.ctx
                .store
                .run(move |s| {
                    Ok(aloware::after_hold(
                        s.database(),
                        &team,
                        sequence,
                        &id,
                        held,
                        wait,
                        now,
                    )?)
                })
                .await?
        };
        let intake = match next {
            Next::Held => return Ok(Handled::Held),
            Next::Seen(seen) => seen,
            Next::Decide {
                body,
                transcript,
                awaiting,
                version,
            } => {
                self.decide(&call_id, body, transcript, awaiting, &version)
                    .await?
            }
        };
        Ok(Handled::Decided(self.ctx.intake(vec![intake], None).await?))
    }

    /// Re-decides the calls whose wait for a transcript ran out: they go
    /// with their recording alone. Run by `serve` when the next wait ends
    /// and by `sync --once`.
    pub async fn sweep(&self) -> Result<IntakeReport, SourceError> {
        let now = self.ctx.clock.now_ms();
        let due = self
            .ctx
            .store
            .run(move |s| Ok(aloware::waits_due(s.database(), now)?))
            .await?;
        let mut report = IntakeReport::default();
        for call in due {
            // Newer than the waiting row, older than any later delivery
            // (`...05+` sorts after `...05` and before `...06`).
            let version = aloware::version_after_wait(&call.version);
            let intake = self
                .decide(&call.source_id, call.body, None, false, &version)
                .await?;
            tracing::info!(
                source = SOURCE,
                id = %call.source_id,
                "no transcript arrived in time; the call goes with its recording"
            );
            let r = self.ctx.intake(vec![intake], None).await?;
            // Only once decided: a sweep that failed before this point
            // finds the call again next time.
            let id = call.source_id.clone();
            self.ctx
                .store
                .run(move |s| Ok(aloware::wait_over(s.database(), &id)?))
                .await?;
            report.add(r);
        }
        Ok(report)
    }

    /// The bridge's clock, now.
    pub fn now_ms(&self) -> Millis {
        self.ctx.clock.now_ms()
    }

    /// When the sweep next has something to do.
    pub async fn next_sweep_at(&self) -> Result<Option<Millis>, SourceError> {
        Ok(self
            .ctx
            .store
            .run(|s| s.next_transcript_due(SOURCE))
            .await?)
    }

    /// Decides a call again from what is held for it (see
    /// [`super::redecide`]). `None` when nothing is held. It does not start
    /// a new wait for a transcript: what is held is what it goes with.
    pub async fn redecide(
        &self,
        call_id: &str,
        version: String,
    ) -> Result<Option<Intake>, SourceError> {
        let id = call_id.to_string();
        let held = self.ctx.store.run(move |s| s.held(SOURCE, &id)).await?;
        let Some(crate::store::HeldCall {
            body: Some(body),
            transcript,
            ..
        }) = held
        else {
            return Ok(None);
        };
        Ok(Some(
            self.decide(call_id, body, transcript, false, &version)
                .await?,
        ))
    }

    /// Asks the plugin about a held call and, when it starts waiting for
    /// its transcript, starts the clock on that wait.
    async fn decide(
        &self,
        call_id: &str,
        body: String,
        transcript: Option<String>,
        awaiting: bool,
        version: &str,
    ) -> Result<Intake, SourceError> {
        let rules = self.ctx.rules.clone();
        let decision = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_aloware().call_map_call(
                    s,
                    &body,
                    transcript.as_deref(),
                    awaiting,
                    &rules,
                    SyncMethod::Webhook,
                )
            })
            .await;
        if let Ok(Ok(Decision::Send(call))) = &decision {
            // The call goes without the fields it names; the operator sees
            // why in the log (the ledger has no place for them yet).
            for warning in &call.warnings {
                tracing::warn!(
                    source = SOURCE,
                    id = %call_id,
                    field = %warning.field,
                    detail = %warning.detail,
                    "an optional field could not be read and was left out"
                );
            }
        }
        let waits_for_transcript = matches!(
            &decision,
            Ok(Ok(Decision::Wait(reason))) if reason.code == WaitCode::TranscriptPending
        );
        let (id, wait, now) = (
            call_id.to_string(),
            self.transcript_wait_ms,
            self.ctx.clock.now_ms(),
        );
        self.ctx
            .store
            .run(move |s| {
                Ok(aloware::after_decision(
                    s.database(),
                    &id,
                    awaiting,
                    waits_for_transcript,
                    wait,
                    now,
                )?)
            })
            .await?;
        Ok(decide(
            &self.ctx,
            SOURCE,
            call_id,
            version,
            SyncMethod::Webhook,
            decision,
        )
        .await)
    }

    /// Records an unreadable delivery as failed, so it costs that delivery
    /// only and shows in `status` (the inbox also keeps it, with the
    /// reason, and the `webhook` health of the source names it).
    async fn reject(
        &self,
        sequence: i64,
        body: &str,
        reason: String,
    ) -> Result<Handled, SourceError> {
        let team = self.ctx.config.route(SOURCE, None).to_string();
        let (body, why, now) = (body.to_string(), reason.clone(), self.ctx.clock.now_ms());
        let id = self
            .ctx
            .store
            .run(move |s| {
                Ok(aloware::reject(
                    s.database(),
                    &team,
                    sequence,
                    &body,
                    &why,
                    now,
                )?)
            })
            .await?;
        Ok(Handled::Rejected { id, reason })
    }
}

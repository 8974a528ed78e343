//! Aloware: webhook deliveries only. A call's disposition, its recording and
//! its transcript arrive as separate deliveries; what arrived is held until
//! the call can be sent, and a transcript that comes later is merged into a
//! call not yet sent.

use super::{Context, SourceError, decide};
use crate::plugin::aloware::Event;
use crate::plugin::types::SyncMethod;
use crate::store::IntakeReport;

/// The ledger's name for this source.
pub const SOURCE: &str = "aloware";

/// What a delivery amounted to.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Decided(IntakeReport),
    /// A transcript for a call not seen yet: held until the call arrives.
    Held,
    /// Not a call (SMS, test payload, the repeated `Call-Disposed`, ...).
    Ignored(String),
}

/// The Aloware side of the bridge.
#[derive(Clone)]
pub struct Aloware {
    ctx: Context,
}

impl Aloware {
    /// None when `[aloware]` is absent or disabled.
    pub fn new(ctx: &Context) -> Option<Aloware> {
        ctx.config
            .aloware
            .as_ref()
            .filter(|c| c.enabled)
            .map(|_| Aloware { ctx: ctx.clone() })
    }

    /// Handles the stored delivery `sequence` (its inbox id: deliveries carry
    /// no id or timestamp of their own, so arrival order versions them).
    pub async fn handle(&self, sequence: i64, body: &str) -> Result<Handled, SourceError> {
        let raw = body.to_string();
        let event = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_aloware().call_read_event(s, &raw))
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        let now = self.ctx.clock.now_ms();
        let (call_id, held) = match event {
            Event::Ignore(reason) => return Ok(Handled::Ignored(reason.to_string())),
            Event::Call(call) => {
                let (id, body) = (call.call_id.clone(), call.body);
                let held = self
                    .ctx
                    .store
                    .run(move |s| s.hold(SOURCE, &id, Some(&body), None, now))
                    .await?;
                (call.call_id, held)
            }
            Event::Transcript(t) => {
                let Some(text) = t.transcript.or(t.summary.map(|s| format!("Summary: {s}"))) else {
                    return Ok(Handled::Ignored(format!(
                        "{} for call {} carries no transcript text",
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
        let Some(call_body) = held.body else {
            return Ok(Handled::Held);
        };
        let version = format!("{sequence:020}");
        let settled = {
            let (id, v) = (call_id.clone(), version.clone());
            self.ctx
                .store
                .run(move |s| s.is_settled(SOURCE, &id, &v))
                .await?
        };
        if settled {
            let seen = self
                .ctx
                .seen(SOURCE, &call_id, &version, SyncMethod::Webhook);
            return Ok(Handled::Decided(self.ctx.intake(vec![seen], None).await?));
        }
        let intake = self
            .decide_held(&call_id, version, call_body, held.transcript)
            .await;
        Ok(Handled::Decided(self.ctx.intake(vec![intake], None).await?))
    }

    /// Decides a call again from what is held for it (see
    /// [`super::redecide`]). `None` when nothing is held.
    pub async fn redecide(
        &self,
        call_id: &str,
        version: String,
    ) -> Result<Option<crate::store::Intake>, SourceError> {
        let id = call_id.to_string();
        let held = self.ctx.store.run(move |s| s.held(SOURCE, &id)).await?;
        let Some(crate::store::HeldCall {
            body: Some(body),
            transcript,
        }) = held
        else {
            return Ok(None);
        };
        Ok(Some(
            self.decide_held(call_id, version, body, transcript).await,
        ))
    }

    async fn decide_held(
        &self,
        call_id: &str,
        version: String,
        call_body: String,
        transcript: Option<String>,
    ) -> crate::store::Intake {
        let rules = self.ctx.rules.clone();
        let decision = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_aloware().call_map_call(
                    s,
                    &call_body,
                    transcript.as_deref(),
                    &rules,
                    SyncMethod::Webhook,
                )
            })
            .await;
        decide(
            &self.ctx,
            SOURCE,
            call_id,
            &version,
            SyncMethod::Webhook,
            decision,
        )
        .await
    }
}

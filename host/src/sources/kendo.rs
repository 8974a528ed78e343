//! Kendo's outgoing webhooks: the AI score of a call the bridge sent, which
//! `deliveries` shows next to the call.

use super::{Context, SourceError};
use crate::plugin::kendo::WebhookEvent;
use crate::store::KendoResult;

/// The inbox's name for Kendo deliveries.
pub const SOURCE: &str = "kendo";

/// Records a stored Kendo delivery. Returns what it was, for the log.
pub async fn handle(ctx: &Context, body: &str) -> Result<String, SourceError> {
    let raw = body.to_string();
    let event = ctx
        .plugin
        .call(move |b, s| b.kendo_bridge_kendo().call_read_webhook(s, &raw))
        .await?
        .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
    let (name, result) = match event {
        WebhookEvent::CallUploaded(r) => ("call.uploaded", r),
        WebhookEvent::TrainingCompleted(r) => ("ai.training.completed", r),
        WebhookEvent::Unknown(name) => return Ok(format!("ignored unknown Kendo event `{name}`")),
    };
    let now = ctx.clock.now_ms();
    let summary = format!(
        "{name} for {} (score {}){}",
        result.subject_id,
        result.ai_score.map_or("-".to_string(), |s| s.to_string()),
        if result.is_test {
            ", a test delivery"
        } else {
            ""
        }
    );
    // Kendo's time for the event, when it can be read, is when the call
    // was scored; otherwise the time it arrived is close.
    let scored_at = kendo_bridge_core::ledger::results::scored_at(result.created_at.as_deref());
    ctx.store
        .run(move |s| {
            s.record_result_and_write_back(
                &KendoResult {
                    event_id: &result.id,
                    event: name,
                    subject_id: &result.subject_id,
                    ai_score: result.ai_score,
                    is_test: result.is_test,
                    scored_at,
                },
                now,
            )
        })
        .await?;
    Ok(summary)
}

//! Kendo's outgoing webhooks: the AI score of a call the bridge sent, which
//! `deliveries` shows next to the call.

use super::{Context, SourceError};
use crate::plugin::kendo::WebhookEvent;

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
    ctx.store
        .run(move |s| {
            s.record_result(
                &result.id,
                name,
                &result.subject_id,
                result.ai_score,
                result.is_test,
                now,
            )
        })
        .await?;
    Ok(summary)
}

//! Where every source and every Kendo team stands, read from the state
//! database in one place: `kendo-bridge status` prints it and the status
//! page (`GET /`, `GET /api/status`) shows it, so the two never disagree.
//!
//! Nothing secret is in the state database's reporting tables (a refused
//! key is kept only as a fingerprint), so nothing secret is in a snapshot.

use kendo_bridge_core::ledger::report;
use kendo_bridge_core::sources::aloware::TranscriptMode;
use serde_json::{Value, json};

pub use kendo_bridge_core::ledger::report::{
    SendsChart, Status as Snapshot, StatusOptions as SnapshotOptions, TeamSends,
    TeamStatus as TeamSnapshot,
};

use crate::store::{Millis, State, Store, StoreError, counter, write_back_counter};
use crate::timefmt;

/// The Aloware transcript mode in words, for `status` and its JSON.
pub fn transcript_mode_words(mode: TranscriptMode) -> String {
    let window = kendo_bridge_core::sources::aloware::TRANSCRIPT_WINDOW_MS / 86_400_000;
    match mode {
        TranscriptMode::Wait { last_at } => format!(
            "waiting: a call with its recording waits up to aloware.transcript_wait for its transcript (Aloware's last transcript arrived {})",
            timefmt::iso(last_at)
        ),
        TranscriptMode::NoWait { last_at: None } => format!(
            "not waiting: Aloware has sent no transcript, so a call goes with its recording at once; waiting starts with the first transcript (and stops after {window} days without one)"
        ),
        TranscriptMode::NoWait { last_at: Some(at) } => format!(
            "not waiting: no transcript from Aloware in the last {window} days (the last arrived {}), so a call goes with its recording at once; waiting starts again with the next transcript",
            timefmt::iso(at)
        ),
    }
}

/// Reads the snapshot from the store: the core's report
/// ([`report::status`]), which Spin's `GET /status` reads too.
pub fn gather(
    store: &Store,
    now: Millis,
    options: &SnapshotOptions,
) -> Result<Snapshot, StoreError> {
    Ok(report::status(store.database(), now, options)?)
}

/// The snapshot as `status --json` prints it (with `recentDeliveries` and
/// `sends` when they were read).
pub fn to_json(snap: &Snapshot) -> Value {
    let mut value = json!({
        "checkpoints": snap.checkpoints.iter().map(|(s, c, at)| json!({
            "source": s, "cursor": serde_json::from_str::<Value>(c).unwrap_or(json!(c)),
            "updatedAt": timefmt::iso(*at)})).collect::<Vec<_>>(),
        "teams": snap.teams.iter().map(|t| json!({
            "team": t.team(),
            "queueDepth": t.queue_depth,
            "states": State::ALL.iter().map(|st| (st.as_str().to_string(), json!(t.counts.get(*st)))).collect::<serde_json::Map<_, _>>(),
            "paused": t.paused.as_ref().map(|p| p.reason.clone()),
        })).collect::<Vec<_>>(),
        "sources": snap.health.iter().map(|h| json!({
            "source": h.source, "topic": h.topic,
            "okAt": h.ok_at.map(timefmt::iso),
            "problem": h.problem, "problemSince": h.problem_since.map(timefmt::iso),
            "problemCount": h.problem_count})).collect::<Vec<_>>(),
        "skipped": snap.skipped.iter().map(|(c, n)| json!({"reason": c, "count": n, "fix": fix_for(c)})).collect::<Vec<_>>(),
        "waiting": snap.waiting.iter().map(|(c, n)| json!({"reason": c, "count": n})).collect::<Vec<_>>(),
        "errorsByReason": snap.errors_by_reason.iter().map(|(st, c, n)| json!({"state": st.as_str(), "reason": c, "count": n})).collect::<Vec<_>>(),
        "counters": snap.counters.iter().map(|(scope, name, v)| json!({"scope": scope, "name": name, "value": v})).collect::<Vec<_>>(),
        "inboxBacklog": snap.inbox_backlog,
        "alowareTranscripts": snap.aloware_transcripts.map(|mode| json!({
            "mode": match mode {
                TranscriptMode::Wait { .. } => "wait",
                TranscriptMode::NoWait { .. } => "no-wait",
            },
            "lastTranscriptAt": match mode {
                TranscriptMode::Wait { last_at } => Some(last_at),
                TranscriptMode::NoWait { last_at } => last_at,
            }.map(timefmt::iso),
            "detail": transcript_mode_words(mode),
        })),
        "results": {
            "unscoredAfterSeconds": snap.unscored_after_ms / 1000,
            "unscored": snap.unscored.iter().map(|(team, n, oldest)| json!({
                "team": team, "count": n, "oldestSentAt": timefmt::iso(*oldest)})).collect::<Vec<_>>(),
            "unmatched": {
                "count": snap.unmatched.0,
                "latest": snap.unmatched.1.iter().map(|u| json!({
                    "eventId": u.event_id, "event": u.event, "callId": u.call_id,
                    "receivedAt": timefmt::iso(u.received_at)})).collect::<Vec<_>>(),
            },
        },
        "writeBacks": snap.write_backs.iter().map(|w| json!({
            "source": w.source, "pending": w.pending, "done": w.done, "dead": w.dead,
            "lastError": w.last_error.as_ref().map(|e| e.0.clone()),
            "lastErrorAt": w.last_error.as_ref().map(|e| timefmt::iso(e.1))})).collect::<Vec<_>>(),
        "troubledDeliveries": snap.troubled.iter().map(|t| json!({
            "id": t.id, "source": t.source, "receivedAt": timefmt::iso(t.received_at),
            "attempts": t.attempts, "stopped": t.stopped, "problem": t.problem})).collect::<Vec<_>>(),
        "lastErrors": snap.errors.iter().map(|r| json!({
            "source": r.key.source, "sourceId": r.key.source_id, "team": r.key.team,
            "state": r.state.as_str(), "code": r.reason_code, "reason": r.reason,
            "at": timefmt::iso(r.updated_at)})).collect::<Vec<_>>(),
    });
    if let Some(map) = value.as_object_mut() {
        if !snap.recent.is_empty() {
            map.insert(
                "recentDeliveries".into(),
                snap.recent
                    .iter()
                    .map(|r| {
                        json!({
                            "updatedAt": timefmt::iso(r.updated_at),
                            "state": r.state.as_str(),
                            "source": r.key.source,
                            "sourceId": r.key.source_id,
                            "team": r.key.team,
                            "kendoCallId": r.kendo_call_id,
                            "aiScore": r.ai_score,
                            "code": r.reason_code,
                            "reason": r.reason,
                        })
                    })
                    .collect(),
            );
        }
        if let Some((chart, series)) = &snap.sends {
            map.insert(
                "sends".into(),
                json!({
                    "bucketSeconds": chart.bucket_ms as f64 / 1000.0,
                    "limit": chart.limit,
                    "teams": series.iter().map(|s| json!({
                        "team": s.team, "perBucket": s.per_bucket})).collect::<Vec<_>>(),
                }),
            );
        }
    }
    value
}

/// What an operator can do about calls skipped for `code`.
pub fn fix_for(code: &str) -> &'static str {
    match code {
        "unknown-rep" => {
            "no email for the rep: add them to `[[reps]]` (or give the user an email in the source); \
             these calls are decided again on the next start"
        }
        "invalid-rep-email" => {
            "the rep's email is not an address: map the rep in `[[reps]]` or fix it in the source; \
             decided again on the next start"
        }
        "below-minimum-duration" => {
            "shorter than `rules.min_duration_seconds`: lower it to keep them; decided again on the next start"
        }
        "disposition-filtered" => {
            "disposition not in `rules.allowed_dispositions`: add it to keep them; decided again on the next start"
        }
        "not-completed" => "the call did not connect: nothing to do",
        "no-media" => "no recording and no transcript at the source: nothing Kendo can analyse",
        "not-a-call" => "the record is not a call: nothing to do",
        "archived" => "deleted or archived in the source: nothing to do",
        _ => "see the README's Operations section",
    }
}

/// A counter's name in words (`--json` and the page's data keep names).
pub fn counter_words(name: &str) -> String {
    match name {
        counter::SOURCE_429 => "rate-limit answers (429) from the source",
        counter::BAD_SIGNATURE => "webhooks refused for a bad signature",
        counter::WEBHOOKS => "webhooks stored",
        counter::DUPLICATE_WEBHOOKS => "repeated webhook deliveries absorbed",
        counter::KENDO_429 => "Kendo 429s",
        counter::RETRIES => "retries",
        counter::RESENT_AFTER_LOST_ANSWER => "re-sent after a lost answer",
        write_back_counter::DONE => "write-backs done",
        write_back_counter::RETRIED => "write-back attempts retried",
        write_back_counter::DEAD => "write-backs given up",
        write_back_counter::HELD => "times write-backs were held for a refused credential or scope",
        other => return other.replace('_', " "),
    }
    .to_string()
}

/// How long ago, as a person reads it: `42 s`, `3 min 5 s`, `2 h 4 min`,
/// `3 d 2 h`.
pub fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

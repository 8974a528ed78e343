//! Where every source and every Kendo team stands, read from the state
//! database in one place: `kendo-bridge status` prints it and the status
//! page (`GET /`, `GET /api/status`) shows it, so the two never disagree.
//!
//! Nothing secret is in the state database's reporting tables (a refused
//! key is kept only as a fingerprint), so nothing secret is in a snapshot.

use kendo_bridge_core::sources::aloware::TranscriptMode;
use serde_json::{Value, json};

use crate::store::{
    LedgerRow, Millis, Paused, SourceHealth, State, Store, StoreError, TeamCounts, UnmatchedResult,
    WriteBackCounts, counter, write_back_counter,
};
use crate::timefmt;

/// What to read beyond what `status` always shows.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// How many of the latest errors (failed, dead, outcome-unknown).
    pub errors: u32,
    /// A call sent longer ago than this with no score is "unscored".
    pub unscored_after_ms: i64,
    /// How many Kendo results about unknown calls to list.
    pub unmatched: u32,
    /// How many recent deliveries (any state) to list; 0 for none.
    pub recent: u32,
    /// Teams to show even before they have a call (the configured ones).
    pub teams: Vec<String>,
    /// Requests to Kendo per time bucket, per team; `None` for no chart.
    pub sends: Option<SendsChart>,
}

/// The shape of the requests-per-window chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendsChart {
    /// One bucket's length: Kendo's pacing window (a minute for Kendo).
    pub bucket_ms: i64,
    /// How many buckets, newest last.
    pub buckets: u32,
    /// The limit per bucket the bridge paces to.
    pub limit: u32,
}

/// One team's line.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamSnapshot {
    pub counts: TeamCounts,
    pub queue_depth: u64,
    pub paused: Option<Paused>,
}

impl TeamSnapshot {
    pub fn team(&self) -> &str {
        &self.counts.team
    }
}

/// Requests to Kendo of one team, per bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSends {
    pub team: String,
    /// Oldest first; the last bucket ends now.
    pub per_bucket: Vec<u64>,
}

/// Everything `status` and the page show, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub now: Millis,
    pub unscored_after_ms: i64,
    /// `(source, cursor, moved at)`.
    pub checkpoints: Vec<(String, String, Millis)>,
    pub teams: Vec<TeamSnapshot>,
    /// `(reason code, count)`.
    pub skipped: Vec<(String, u64)>,
    pub waiting: Vec<(String, u64)>,
    /// `(state, reason code, count)` for failed, dead and outcome-unknown.
    pub errors_by_reason: Vec<(State, String, u64)>,
    /// `(scope, name, value)`.
    pub counters: Vec<(String, String, i64)>,
    pub errors: Vec<LedgerRow>,
    pub inbox_backlog: u64,
    pub health: Vec<SourceHealth>,
    /// `(team, count, oldest sent at)`.
    pub unscored: Vec<(String, u64, Millis)>,
    pub unmatched: (u64, Vec<UnmatchedResult>),
    pub recent: Vec<LedgerRow>,
    pub sends: Option<(SendsChart, Vec<TeamSends>)>,
    /// Write-backs to the sources (`hubspot.write_back`), per source.
    pub write_backs: Vec<WriteBackCounts>,
    /// Whether Aloware's calls wait for their transcript now; None when
    /// Aloware has sent nothing.
    pub aloware_transcripts: Option<TranscriptMode>,
}

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

impl Snapshot {
    /// Reads the snapshot from the store.
    pub fn gather(
        store: &Store,
        now: Millis,
        options: &SnapshotOptions,
    ) -> Result<Snapshot, StoreError> {
        let mut counts = store.counts()?;
        for team in &options.teams {
            if !counts.iter().any(|c| &c.team == team) {
                counts.push(TeamCounts {
                    team: team.clone(),
                    by_state: Vec::new(),
                });
            }
        }
        counts.sort_by(|a, b| a.team.cmp(&b.team));
        let mut teams = Vec::new();
        for tc in counts {
            teams.push(TeamSnapshot {
                queue_depth: store.queue_depth(&tc.team)?,
                paused: store.paused(&tc.team)?,
                counts: tc,
            });
        }
        let recent = if options.recent > 0 {
            store.recent(&[], options.recent)?
        } else {
            Vec::new()
        };
        let sends = match options.sends {
            Some(chart) => {
                let mut series = Vec::new();
                for t in &teams {
                    series.push(TeamSends {
                        team: t.team().to_string(),
                        per_bucket: store.sends_per_bucket(
                            t.team(),
                            now,
                            chart.bucket_ms,
                            chart.buckets,
                        )?,
                    });
                }
                Some((chart, series))
            }
            None => None,
        };
        let mut errors_by_reason = Vec::new();
        for state in [State::Failed, State::Dead, State::OutcomeUnknown] {
            for (code, n) in store.reasons(state)? {
                errors_by_reason.push((state, code, n));
            }
        }
        Ok(Snapshot {
            now,
            errors_by_reason,
            unscored_after_ms: options.unscored_after_ms,
            checkpoints: store.checkpoints()?,
            teams,
            skipped: store.reasons(State::Skipped)?,
            waiting: store.reasons(State::Waiting)?,
            counters: store.counters()?,
            errors: store.recent(
                &[State::Failed, State::Dead, State::OutcomeUnknown],
                options.errors,
            )?,
            inbox_backlog: store.inbox_backlog()?,
            health: store.health()?,
            unscored: store.unscored(now - options.unscored_after_ms)?,
            unmatched: store.unmatched_results(options.unmatched)?,
            recent,
            sends,
            write_backs: store.write_back_counts()?,
            aloware_transcripts: if store.source_seen("aloware")? {
                Some(store.aloware_transcript_mode(now)?)
            } else {
                None
            },
        })
    }

    /// A per-team counter (0 when never bumped).
    pub fn team_counter(&self, team: &str, name: &str) -> i64 {
        self.counters
            .iter()
            .find(|(s, n, _)| s == team && n == name)
            .map_or(0, |(_, _, v)| *v)
    }

    /// The snapshot as `status --json` prints it (with `recentDeliveries`
    /// and `sends` when they were read).
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "checkpoints": self.checkpoints.iter().map(|(s, c, at)| json!({
                "source": s, "cursor": serde_json::from_str::<Value>(c).unwrap_or(json!(c)),
                "updatedAt": timefmt::iso(*at)})).collect::<Vec<_>>(),
            "teams": self.teams.iter().map(|t| json!({
                "team": t.team(),
                "queueDepth": t.queue_depth,
                "states": State::ALL.iter().map(|st| (st.as_str().to_string(), json!(t.counts.get(*st)))).collect::<serde_json::Map<_, _>>(),
                "paused": t.paused.as_ref().map(|p| p.reason.clone()),
            })).collect::<Vec<_>>(),
            "sources": self.health.iter().map(|h| json!({
                "source": h.source, "topic": h.topic,
                "okAt": h.ok_at.map(timefmt::iso),
                "problem": h.problem, "problemSince": h.problem_since.map(timefmt::iso),
                "problemCount": h.problem_count})).collect::<Vec<_>>(),
            "skipped": self.skipped.iter().map(|(c, n)| json!({"reason": c, "count": n, "fix": fix_for(c)})).collect::<Vec<_>>(),
            "waiting": self.waiting.iter().map(|(c, n)| json!({"reason": c, "count": n})).collect::<Vec<_>>(),
            "errorsByReason": self.errors_by_reason.iter().map(|(st, c, n)| json!({"state": st.as_str(), "reason": c, "count": n})).collect::<Vec<_>>(),
            "counters": self.counters.iter().map(|(scope, name, v)| json!({"scope": scope, "name": name, "value": v})).collect::<Vec<_>>(),
            "inboxBacklog": self.inbox_backlog,
            "alowareTranscripts": self.aloware_transcripts.map(|mode| json!({
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
                "unscoredAfterSeconds": self.unscored_after_ms / 1000,
                "unscored": self.unscored.iter().map(|(team, n, oldest)| json!({
                    "team": team, "count": n, "oldestSentAt": timefmt::iso(*oldest)})).collect::<Vec<_>>(),
                "unmatched": {
                    "count": self.unmatched.0,
                    "latest": self.unmatched.1.iter().map(|u| json!({
                        "eventId": u.event_id, "event": u.event, "callId": u.call_id,
                        "receivedAt": timefmt::iso(u.received_at)})).collect::<Vec<_>>(),
                },
            },
            "writeBacks": self.write_backs.iter().map(|w| json!({
                "source": w.source, "pending": w.pending, "done": w.done, "dead": w.dead,
                "lastError": w.last_error.as_ref().map(|e| e.0.clone()),
                "lastErrorAt": w.last_error.as_ref().map(|e| timefmt::iso(e.1))})).collect::<Vec<_>>(),
            "lastErrors": self.errors.iter().map(|r| json!({
                "source": r.key.source, "sourceId": r.key.source_id, "team": r.key.team,
                "state": r.state.as_str(), "code": r.reason_code, "reason": r.reason,
                "at": timefmt::iso(r.updated_at)})).collect::<Vec<_>>(),
        });
        if let Some(map) = value.as_object_mut() {
            if !self.recent.is_empty() {
                map.insert(
                    "recentDeliveries".into(),
                    self.recent
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
            if let Some((chart, series)) = &self.sends {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CallKey, Intake, Outcome};

    fn queued(team: &str, id: &str) -> Intake {
        Intake {
            key: CallKey {
                source: "salesloft".into(),
                source_id: id.into(),
                team: team.into(),
            },
            version: "v1".into(),
            sync_method: "polling".into(),
            outcome: Outcome::Send {
                payload: "{}".into(),
                title: "t".into(),
                rep_email: None,
                warnings: None,
            },
        }
    }

    #[test]
    fn a_configured_team_without_calls_is_shown_with_zero_counts() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[queued("emea", "1")], None, 10).unwrap();
        let options = SnapshotOptions {
            teams: vec!["apac".into(), "emea".into()],
            ..SnapshotOptions::default()
        };
        let snap = Snapshot::gather(&store, 20, &options).unwrap();
        let teams: Vec<(&str, u64)> = snap
            .teams
            .iter()
            .map(|t| (t.team(), t.queue_depth))
            .collect();
        assert_eq!(teams, vec![("apac", 0), ("emea", 1)]);
    }

    #[test]
    fn the_chart_counts_each_request_in_the_bucket_it_fell_in() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[queued("emea", "1")], None, 10).unwrap();
        let options = SnapshotOptions {
            sends: Some(SendsChart {
                bucket_ms: 60_000,
                buckets: 3,
                limit: 30,
            }),
            ..SnapshotOptions::default()
        };
        let now = 10 * 60_000;
        // Three buckets end at `now`: (7, 8], (8, 9], (9, 10] minutes.
        for at in [6 * 60_000, 7 * 60_000, 8 * 60_000 + 1, 8 * 60_000 + 2, now] {
            store.record_send_for_test("emea", at).unwrap();
        }
        let snap = Snapshot::gather(&store, now, &options).unwrap();
        let (_, series) = snap.sends.unwrap();
        assert_eq!(series[0].per_bucket, vec![0, 2, 1]);
    }
}

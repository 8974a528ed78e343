//! `/metrics`: the bridge's state in Prometheus's text format. Every value
//! is read from the state database at each scrape, so processes sharing one
//! database report the same numbers and a restart loses no counter.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use kendo_bridge_core::ledger::{health, inbox, report, send, write_back};

use crate::store::{Millis, State, Store, StoreError, WriteBackState, counter};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The exposition text for one scrape.
/// `now` and `window_ms` (Kendo's rate-limit window) date the pacing gauge.
pub fn render(store: &Store, now: Millis, window_ms: Millis) -> Result<String, StoreError> {
    let db = store.database();
    let mut registry = Registry::with_prefix("kendo_bridge");

    let calls = Family::<Labels, Gauge>::default();
    let queue = Family::<Labels, Gauge>::default();
    let paused = Family::<Labels, Gauge>::default();
    let teams = report::counts(db)?;
    for tc in &teams {
        for state in State::ALL {
            calls
                .get_or_create(&labels(&[("team", &tc.team), ("state", state.as_str())]))
                .set(tc.get(state) as i64);
        }
        queue
            .get_or_create(&labels(&[("team", &tc.team)]))
            .set(send::queue_depth(db, &tc.team)? as i64);
        paused
            .get_or_create(&labels(&[("team", &tc.team)]))
            .set(i64::from(send::paused(db, &tc.team)?.is_some()));
    }
    registry.register(
        "calls",
        "Calls in the ledger, by Kendo team and state",
        calls,
    );
    registry.register(
        "queue_depth",
        "Sends waiting for a pacing slot, by team",
        queue,
    );
    registry.register(
        "team_paused",
        "1 while Kendo refuses the team's key (401)",
        paused,
    );

    let kendo_429 = Family::<Labels, Counter>::default();
    let retries = Family::<Labels, Counter>::default();
    let resent = Family::<Labels, Counter>::default();
    let source_429 = Family::<Labels, Counter>::default();
    let webhooks = Family::<Labels, Counter>::default();
    let source_requests = Family::<Labels, Counter>::default();
    let cost_points = Family::<Labels, Counter>::default();
    for (scope, name, value) in report::counters(db)? {
        let value = value.max(0) as u64;
        let (family, label_set) = match name.as_str() {
            counter::KENDO_429 => (&kendo_429, labels(&[("team", &scope)])),
            counter::RETRIES => (&retries, labels(&[("team", &scope)])),
            counter::RESENT_AFTER_LOST_ANSWER => (&resent, labels(&[("team", &scope)])),
            counter::SOURCE_429 => (&source_429, labels(&[("source", &scope)])),
            counter::WEBHOOKS => (
                &webhooks,
                labels(&[("source", &scope), ("verdict", "stored")]),
            ),
            counter::BAD_SIGNATURE => (
                &webhooks,
                labels(&[("source", &scope), ("verdict", "bad_signature")]),
            ),
            counter::DUPLICATE_WEBHOOKS => (
                &webhooks,
                labels(&[("source", &scope), ("verdict", "duplicate")]),
            ),
            counter::SOURCE_REQUESTS_OK => (
                &source_requests,
                labels(&[("source", &scope), ("outcome", "ok")]),
            ),
            counter::SOURCE_REQUESTS_ERROR => (
                &source_requests,
                labels(&[("source", &scope), ("outcome", "error")]),
            ),
            counter::SOURCE_COST_POINTS => (&cost_points, labels(&[("source", &scope)])),
            _ => continue,
        };
        family.get_or_create(&label_set).inc_by(value);
    }
    registry.register(
        "kendo_429",
        "429 answers from Kendo although the bridge paced",
        kendo_429,
    );
    registry.register(
        "kendo_retries",
        "Sends retried after a 5xx or a timeout",
        retries,
    );
    registry.register(
        "kendo_resent_after_lost_answer",
        "Sends whose answer was lost and that were sent again (each may be a duplicate in Kendo)",
        resent,
    );
    registry.register("source_429", "429 answers from a source API", source_429);
    registry.register(
        "webhook_deliveries",
        "Webhook deliveries by source and verdict (stored, bad_signature, duplicate)",
        webhooks,
    );

    registry.register(
        "source_requests",
        "Source API requests by outcome (ok: 2xx or 404; error: any other status or no answer)",
        source_requests,
    );
    registry.register(
        "source_cost_points",
        "Cost points the source reported for the bridge's requests (Salesloft x-ratelimit-endpoint-cost)",
        cost_points,
    );

    let by_reason = Family::<Labels, Gauge>::default();
    for state in [State::Skipped, State::Failed, State::Dead, State::Waiting] {
        for (reason, count) in report::reasons(db, state)? {
            by_reason
                .get_or_create(&labels(&[("state", state.as_str()), ("reason", &reason)]))
                .set(count as i64);
        }
    }
    registry.register(
        "calls_by_reason",
        "Calls skipped, failed, dead or waiting, by reason code (plugin-trap: the plugin trapped on the record; retries-exhausted: dead letters)",
        by_reason,
    );

    let slots = Family::<Labels, Gauge>::default();
    for team in teams.iter().map(|c| &c.team) {
        let used = send::sends_since(db, team, now.saturating_sub(window_ms))?.len();
        slots
            .get_or_create(&labels(&[("team", team)]))
            .set(used as i64);
    }
    registry.register(
        "pacing_slots_used",
        "Kendo requests of each key in the last rate-limit window (Kendo allows 30 a minute)",
        slots,
    );

    let problem = Family::<Labels, Gauge>::default();
    let last_ok = Family::<Labels, Gauge>::default();
    for h in health::all(db)? {
        let set = labels(&[("source", &h.source), ("topic", &h.topic)]);
        problem
            .get_or_create(&set)
            .set(i64::from(h.problem.is_some()));
        if let Some(at) = h.ok_at {
            last_ok.get_or_create(&set).set(at / 1000);
        }
    }
    registry.register(
        "source_problem",
        "1 while a part of a source (poll, transcripts, dispositions, ...) is failing",
        problem,
    );
    registry.register(
        "source_last_ok_timestamp_seconds",
        "When a part of a source last worked (Unix seconds)",
        last_ok,
    );

    let backlog = Gauge::<i64>::default();
    backlog.set(inbox::backlog(db)? as i64);
    registry.register(
        "inbox_backlog",
        "Stored webhook deliveries not processed yet",
        backlog,
    );

    register_write_backs(&mut registry, db)?;

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _infallible = encode(&mut text, &registry);
    Ok(text)
}

/// Write-backs to the sources: how many wait (the queue), and every
/// attempt's outcome.
fn register_write_backs(
    registry: &mut Registry,
    db: &rusqlite::Connection,
) -> Result<(), StoreError> {
    use crate::store::write_back_counter;
    let rows = Family::<Labels, Gauge>::default();
    let depth = Family::<Labels, Gauge>::default();
    for c in write_back::counts(db)? {
        for state in WriteBackState::ALL {
            rows.get_or_create(&labels(&[("source", &c.source), ("state", state.as_str())]))
                .set(c.get(state) as i64);
        }
        depth
            .get_or_create(&labels(&[("source", &c.source)]))
            .set(c.pending as i64);
    }
    registry.register(
        "write_back_rows",
        "Write-backs to source records (Kendo Sent, Call ID, AI score), by source and state",
        rows,
    );
    registry.register(
        "write_back_queue_depth",
        "Write-backs waiting to be written, by source",
        depth,
    );
    let outcomes = Family::<Labels, Counter>::default();
    for (scope, name, value) in report::counters(db)? {
        let outcome = match name.as_str() {
            write_back_counter::DONE => "done",
            write_back_counter::RETRIED => "retried",
            write_back_counter::DEAD => "dead",
            write_back_counter::HELD => "held",
            _ => continue,
        };
        outcomes
            .get_or_create(&labels(&[("source", &scope), ("outcome", outcome)]))
            .inc_by(value.max(0) as u64);
    }
    registry.register(
        "write_backs",
        "Write-back attempts by outcome (done, retried, dead; held: all waiting on a refused credential or scope)",
        outcomes,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CallKey, Intake, Outcome};
    use kendo_bridge_core::ledger as core_ledger;

    #[test]
    fn a_scrape_shows_calls_by_team_and_state_and_the_counters() {
        let store = Store::open_in_memory().unwrap();
        let item = Intake {
            key: CallKey {
                source: "salesloft".into(),
                source_id: "1".into(),
                team: "emea".into(),
            },
            version: "v1".into(),
            sync_method: "polling".into(),
            outcome: Outcome::Send {
                payload: "{}".into(),
                title: "t".into(),
                rep_email: None,
                warnings: None,
            },
        };
        core_ledger::intake::intake(store.database(), &[item], None, 10).unwrap();
        let due = core_ledger::send::due(store.database(), "emea", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &due, 20).unwrap();
        core_ledger::bump(store.database(), "emea", counter::KENDO_429, 2).unwrap();
        core_ledger::bump(
            store.database(),
            "salesloft",
            counter::SOURCE_REQUESTS_ERROR,
            3,
        )
        .unwrap();
        core_ledger::bump(
            store.database(),
            "salesloft",
            counter::SOURCE_COST_POINTS,
            7,
        )
        .unwrap();
        core_ledger::bump(store.database(), "aloware", counter::BAD_SIGNATURE, 1).unwrap();
        core_ledger::health::problem(store.database(), "salesloft", "poll", "401", 10).unwrap();
        let text = render(&store, 30, 60_000).unwrap();
        assert!(
            text.contains(r#"kendo_bridge_calls{team="emea",state="sending"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kendo_bridge_queue_depth{team="emea"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kendo_bridge_pacing_slots_used{team="emea"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"kendo_bridge_source_requests_total{source="salesloft",outcome="error"} 3"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"kendo_bridge_source_cost_points_total{source="salesloft"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"kendo_bridge_kendo_429_total{team="emea"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"kendo_bridge_webhook_deliveries_total{source="aloware",verdict="bad_signature"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"kendo_bridge_source_problem{source="salesloft",topic="poll"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_scrape_shows_the_write_back_queue_and_attempts_by_outcome() {
        let mut store = Store::open_in_memory().unwrap();
        store.set_write_back_sources(&["hubspot"]);
        let item = Intake {
            key: CallKey {
                source: "hubspot".into(),
                source_id: "512".into(),
                team: "main".into(),
            },
            version: "v1".into(),
            sync_method: "polling".into(),
            outcome: Outcome::Send {
                payload: "{}".into(),
                title: "t".into(),
                rep_email: None,
                warnings: None,
            },
        };
        core_ledger::intake::intake(store.database(), &[item], None, 10).unwrap();
        let out = core_ledger::send::due(store.database(), "main", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &out, 10).unwrap();
        store.mark_created(&out, Some("call_1"), 20).unwrap();
        let wb = core_ledger::write_back::due(store.database(), 20, 1)
            .unwrap()
            .remove(0);
        core_ledger::write_back::retry(store.database(), &wb, 30, "503", 21).unwrap();
        let text = render(&store, 0, 60_000).unwrap();
        assert!(
            text.contains(r#"kendo_bridge_write_back_queue_depth{source="hubspot"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"kendo_bridge_write_backs_total{source="hubspot",outcome="retried"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"kendo_bridge_write_back_rows{source="hubspot",state="pending"} 1"#),
            "{text}"
        );
    }
}

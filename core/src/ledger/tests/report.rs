//! What `status`, the page, `/metrics` and Spin's `GET /status` read.

use super::*;
use crate::ledger::report::{self, SendsChart, StatusOptions};
use crate::ledger::results::{self, KendoResult};

fn skip(id: &str) -> Intake {
    let mut item = send(id, "a");
    item.outcome = Outcome::Skip {
        code: "no-media".into(),
        detail: "no recording and no transcript".into(),
    };
    item
}

fn wait(id: &str) -> Intake {
    let mut item = send(id, "a");
    item.outcome = Outcome::Wait {
        code: "recording-processing".into(),
        detail: "recording still processing".into(),
    };
    item
}

fn for_team(mut item: Intake, team: &str) -> Intake {
    item.key.team = team.into();
    item
}

/// Calls `ids` sent, each created in Kendo as `call_<id>` at 20.
fn sent(db: &rusqlite::Connection, ids: &[&str]) {
    let calls: Vec<Intake> = ids.iter().map(|id| send(id, "a")).collect();
    intake(db, &calls, None, 10).unwrap();
    for id in ids {
        let item = send::due(db, TEAM, 10, 1).unwrap().remove(0);
        send::begin_send(db, &item, 10).unwrap();
        let created = Action::Created {
            call_id: Some(format!("call_{id}")),
            after_lost_answers: 0,
        };
        assert!(apply(db, &item, created, 20));
    }
}

fn result(db: &rusqlite::Connection, event_id: &str, call_id: &str, is_test: bool, now: Millis) {
    let result = KendoResult {
        event_id,
        event: "call.uploaded",
        subject_id: call_id,
        ai_score: Some(80.0),
        is_test,
        scored_at: None,
    };
    results::record(db, &result, now, |_, _, _, _, _| Ok(())).unwrap();
}

#[test]
fn counts_and_recent_rows_report_per_team_state() {
    let db = db();
    intake(&db, &[send("1", "a"), skip("2"), wait("3")], None, 10).unwrap();
    let counts = report::counts(&db).unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].get(State::Queued), 1);
    assert_eq!(counts[0].get(State::Skipped), 1);
    assert_eq!(counts[0].get(State::Waiting), 1);
    assert_eq!(
        report::reasons(&db, State::Skipped).unwrap(),
        vec![("no-media".to_string(), 1)]
    );
    assert_eq!(
        report::recent(&db, &[State::Skipped], false, 10)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn every_state_is_counted_across_teams_those_without_calls_at_zero() {
    let db = db();
    intake(
        &db,
        &[send("1", "a"), for_team(send("2", "a"), "other"), skip("3")],
        None,
        10,
    )
    .unwrap();
    let by_state = report::calls_by_state(&db).unwrap();
    assert_eq!(by_state.len(), State::ALL.len());
    let count = |state| by_state.iter().find(|(s, _)| *s == state).unwrap().1;
    assert_eq!(
        (
            count(State::Queued),
            count(State::Skipped),
            count(State::Dead)
        ),
        (2, 1, 0)
    );
    assert_eq!(report::calls_in(&db, State::Queued).unwrap(), 2);
}

#[test]
fn a_sent_call_without_a_score_after_the_wait_is_unscored_until_its_result_arrives() {
    let db = db();
    sent(&db, &["1", "2"]);
    assert_eq!(report::unscored(&db, 15).unwrap(), vec![]);
    assert_eq!(
        report::unscored(&db, 100).unwrap(),
        vec![(TEAM.to_string(), 2, 20)]
    );
    result(&db, "e1", "call_1", false, 30);
    assert_eq!(report::unscored(&db, 100).unwrap()[0].1, 1);
}

#[test]
fn a_kendo_result_for_a_call_the_bridge_never_sent_is_unmatched() {
    let db = db();
    sent(&db, &["1"]);
    result(&db, "e1", "call_1", false, 30);
    result(&db, "e2", "call_999", false, 40);
    result(&db, "e3", "call_test", true, 50);
    let (count, latest) = report::unmatched_results(&db, 10).unwrap();
    assert_eq!(count, 1);
    assert_eq!(latest[0].call_id, "call_999");
}

#[test]
fn a_recent_row_carries_kendos_newest_score() {
    let db = db();
    sent(&db, &["1"]);
    result(&db, "e1", "call_1", false, 30);
    let row = report::call(&db, "aloware", "1").unwrap().remove(0);
    assert_eq!((row.state, row.ai_score), (State::Sent, Some(80.0)));
}

#[test]
fn a_parked_call_is_listed_as_possibly_duplicated_without_a_call_id() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 10).unwrap();
    let item = claimed(claim(&db, "x", 10));
    let park = Action::Park {
        reason: "no answer within 30s".into(),
    };
    assert!(apply(&db, &item, park, 11));
    let flagged = report::possible_duplicates(&db, 10).unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].state, State::OutcomeUnknown);
    assert_eq!(flagged[0].call_ids, vec![]);
    assert_eq!(report::recent(&db, &[], true, 10).unwrap().len(), 1);
}

#[test]
fn a_call_sent_after_a_lost_answer_stays_flagged_with_its_call_id() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 10).unwrap();
    let item = claimed(claim(&db, "x", 10));
    let lost = Action::ResendAfterLostAnswer {
        retry_at: 100,
        timeout_ms: 60_000,
        reason: "no answer within 30s".into(),
    };
    assert!(apply(&db, &item, lost, 11));
    let item = send::due(&db, TEAM, 100, 1).unwrap().remove(0);
    send::begin_send(&db, &item, 100).unwrap();
    let created = Action::Created {
        call_id: Some("call_2".into()),
        after_lost_answers: 1,
    };
    assert!(apply(&db, &item, created, 101));
    let flagged = report::possible_duplicates(&db, 10).unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].state, State::Sent);
    assert_eq!(flagged[0].call_ids, vec![("call_2".to_string(), 101)]);
}

#[test]
fn a_counter_never_bumped_reads_zero() {
    let db = db();
    bump(&db, TEAM, counter::RETRIES, 2).unwrap();
    assert_eq!(report::counter(&db, TEAM, counter::RETRIES).unwrap(), 2);
    assert_eq!(report::counter(&db, TEAM, counter::KENDO_429).unwrap(), 0);
}

#[test]
fn only_the_sources_counters_are_listed_as_the_sources() {
    let db = db();
    bump(&db, TEAM, counter::RETRIES, 1).unwrap();
    for source in crate::sources::ALL {
        bump(&db, source, counter::WEBHOOKS, 1).unwrap();
    }
    let counters = report::counters(&db).unwrap();
    let scopes: Vec<&str> = report::source_counters(&counters)
        .iter()
        .map(|(scope, _, _)| scope.as_str())
        .collect();
    assert_eq!(scopes.len(), crate::sources::ALL.len());
    assert!(!scopes.contains(&TEAM));
}

#[test]
fn a_configured_team_without_calls_is_shown_with_zero_counts() {
    let db = db();
    intake(&db, &[for_team(send("1", "a"), "emea")], None, 10).unwrap();
    let options = StatusOptions {
        teams: vec!["apac".into(), "emea".into()],
        ..StatusOptions::default()
    };
    let status = report::status(&db, 20, &options).unwrap();
    let teams: Vec<(&str, u64)> = status
        .teams
        .iter()
        .map(|t| (t.team(), t.queue_depth))
        .collect();
    assert_eq!(teams, vec![("apac", 0), ("emea", 1)]);
}

#[test]
fn the_chart_counts_each_request_in_the_bucket_it_fell_in() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 10).unwrap();
    let options = StatusOptions {
        sends: Some(SendsChart {
            bucket_ms: 60_000,
            buckets: 3,
            limit: 30,
        }),
        ..StatusOptions::default()
    };
    let now = 10 * 60_000;
    // Three buckets end at `now`: (7, 8], (8, 9], (9, 10] minutes.
    for at in [6 * 60_000, 7 * 60_000, 8 * 60_000 + 1, 8 * 60_000 + 2, now] {
        db.run(
            "INSERT INTO sends (team, at) VALUES (?1, ?2)",
            &[TEAM.into(), at.into()],
        )
        .unwrap();
    }
    let status = report::status(&db, now, &options).unwrap();
    let (_, series) = status.sends.unwrap();
    assert_eq!(series[0].per_bucket, vec![0, 2, 1]);
}

#[test]
fn aloware_s_transcript_mode_is_reported_once_aloware_sent_anything() {
    let db = db();
    let options = StatusOptions::default();
    assert_eq!(
        report::status(&db, 20, &options)
            .unwrap()
            .aloware_transcripts,
        None
    );
    intake(&db, &[send("1", "a")], None, 10).unwrap();
    assert!(
        report::status(&db, 20, &options)
            .unwrap()
            .aloware_transcripts
            .is_some()
    );
}

#[test]
fn stored_deliveries_that_failed_are_listed_when_asked_for() {
    use crate::ledger::inbox;
    let db = db();
    inbox::insert(&db, "hubspot", "d1", None, b"[]", 10).unwrap();
    let taken = inbox::claim(&db, 10, inbox::LEASE_MS, 20).unwrap();
    inbox::defer(&db, taken[0].id, 5_000, "hubspot answered 503").unwrap();
    let quiet = report::status(&db, 30, &StatusOptions::default()).unwrap();
    assert!(quiet.troubled.is_empty(), "none unless asked for");
    let options = StatusOptions {
        troubled: 10,
        ..StatusOptions::default()
    };
    let status = report::status(&db, 30, &options).unwrap();
    let listed: Vec<(&str, u32)> = status
        .troubled
        .iter()
        .map(|t| (t.source.as_str(), t.attempts))
        .collect();
    assert_eq!(listed, vec![("hubspot", 1)]);
    assert!(
        status.troubled[0].problem.contains("hubspot answered 503"),
        "{:?}",
        status.troubled[0]
    );
}

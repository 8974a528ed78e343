//! The operator's transitions: `settle` and `replay`, and the calls a
//! change of rules decides again.

use super::*;
use crate::ledger::operator::{self, ReplayFilter, SettleFilter};
use crate::ledger::{redecide, report, write_back};

/// Call `id` parked as outcome-unknown after its answers were lost, at 11.
fn parked_call(db: &rusqlite::Connection, id: &str) {
    intake(db, &[send(id, "a")], None, 10).unwrap();
    let item = claimed(claim(db, &format!("park-{id}"), 10));
    let park = Action::Park {
        reason: "no answer within 30s".into(),
    };
    assert!(apply(db, &item, park, 11));
}

/// Call `id` ended by Kendo's answer `action`, at 11.
fn ended(db: &rusqlite::Connection, id: &str, action: Action) {
    intake(db, &[send(id, "a")], None, 10).unwrap();
    let item = send::due(db, TEAM, 10, 1).unwrap().remove(0);
    send::begin_send(db, &item, 10).unwrap();
    assert!(apply(db, &item, action, 11));
}

fn settle(id: &str) -> SettleFilter {
    SettleFilter {
        source_id: id.into(),
        ..SettleFilter::default()
    }
}

fn settle_sent(db: &rusqlite::Connection, id: &str, call_id: Option<&str>) -> Vec<CallKey> {
    operator::settle_sent(db, &settle(id), call_id, 20, |_, _, _| Ok(())).unwrap()
}

fn dead() -> Action {
    Action::Dead {
        reason: "500 x8".into(),
    }
}

#[test]
fn replay_puts_dead_letters_back_in_the_queue_with_no_attempts() {
    let db = db();
    ended(&db, "1", dead());
    assert_eq!(send::queue_depth(&db, TEAM).unwrap(), 0);
    assert_eq!(
        operator::replay(&db, &ReplayFilter::default(), 12).unwrap(),
        1
    );
    assert_eq!(send::due(&db, TEAM, 12, 10).unwrap()[0].attempts, 0);
    assert_eq!(
        state(&db, "1"),
        (State::Queued, Some("replayed".into()), false)
    );
}

#[test]
fn replay_leaves_permanent_rejections_unless_asked() {
    let db = db();
    let fail = Action::Fail {
        code: "bad-request",
        reason: "invalid email".into(),
    };
    ended(&db, "1", fail);
    assert_eq!(
        operator::replay(&db, &ReplayFilter::default(), 12).unwrap(),
        0
    );
    let all = ReplayFilter {
        include_failed: true,
        ..ReplayFilter::default()
    };
    assert_eq!(operator::replay(&db, &all, 12).unwrap(), 1);
    assert_eq!(state(&db, "1").0, State::Queued);
}

#[test]
fn replay_takes_only_the_calls_its_filter_names() {
    let db = db();
    ended(&db, "1", dead());
    ended(&db, "2", dead());
    let one = ReplayFilter {
        source_id: Some("2".into()),
        ..ReplayFilter::default()
    };
    assert_eq!(operator::replay(&db, &one, 12).unwrap(), 1);
    assert_eq!(
        (state(&db, "1").0, state(&db, "2").0),
        (State::Dead, State::Queued)
    );
}

#[test]
fn replay_leaves_a_parked_call_alone() {
    let db = db();
    parked_call(&db, "1");
    let everything = ReplayFilter {
        include_failed: true,
        ..ReplayFilter::default()
    };
    assert_eq!(operator::replay(&db, &everything, 12).unwrap(), 0);
    assert_eq!(state(&db, "1").0, State::OutcomeUnknown);
}

#[test]
fn settle_sent_marks_a_parked_call_sent_with_the_call_id_the_operator_found() {
    let db = db();
    parked_call(&db, "1");
    assert_eq!(settle_sent(&db, "1", Some("call_9")), vec![key("1")]);
    let row = report::call(&db, "aloware", "1").unwrap().remove(0);
    assert_eq!(row.state, State::Sent);
    assert_eq!(row.kendo_call_id.as_deref(), Some("call_9"));
    assert_eq!(row.reason_code.as_deref(), Some("settled-sent"));
    assert_eq!(row.sent_at, Some(20));
    assert!(send::due(&db, TEAM, 1_000, 10).unwrap().is_empty());
    assert_eq!(
        report::kendo_call_ids(&db, &key("1")).unwrap(),
        vec![("call_9".to_string(), 20)]
    );
    assert_eq!(
        report::possible_duplicates(&db, 10).unwrap().len(),
        1,
        "settling does not undo what may have happened in Kendo"
    );
}

#[test]
fn settle_sent_queues_the_write_back_a_201_would_have_queued() {
    let db = db();
    parked_call(&db, "1");
    operator::settle_sent(&db, &settle("1"), Some("call_9"), 20, |db, key, call_id| {
        write_back::enqueue_sent(db, key, call_id, 20)
    })
    .unwrap();
    let counts = write_back::counts(&db).unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0].pending, 1, "{counts:?}");
}

#[test]
fn settle_sent_without_a_call_id_records_none() {
    let db = db();
    parked_call(&db, "1");
    settle_sent(&db, "1", None);
    let row = report::call(&db, "aloware", "1").unwrap().remove(0);
    assert_eq!((row.state, row.kendo_call_id), (State::Sent, None));
    assert!(report::kendo_call_ids(&db, &key("1")).unwrap().is_empty());
}

#[test]
fn settle_resend_puts_a_parked_call_back_in_the_queue_with_a_fresh_budget() {
    let db = db();
    parked_call(&db, "1");
    assert_eq!(
        operator::settle_resend(&db, &settle("1"), 20).unwrap(),
        vec![key("1")]
    );
    let due = send::due(&db, TEAM, 20, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].ambiguous, 0);
    assert_eq!(state(&db, "1").0, State::Queued);
}

#[test]
fn settle_touches_only_parked_calls() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 10).unwrap();
    assert_eq!(settle_sent(&db, "1", None), vec![]);
    assert_eq!(
        operator::settle_resend(&db, &settle("1"), 20).unwrap(),
        vec![]
    );
    assert_eq!(
        operator::parked(&db, &settle("1")).unwrap(),
        Vec::<CallKey>::new()
    );
    assert_eq!(state(&db, "1").0, State::Queued);
}

#[test]
fn a_call_in_the_queue_can_be_settled_once_it_is_parked_by_recovery() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 10).unwrap();
    claimed(claim(&db, "x", 10));
    // Its instance died with no lost answer left to spend.
    let recovered = recover_in_flight(&db, 0, LEASE + 20, no_write_back).unwrap();
    assert_eq!(recovered.parked, vec![key("1")]);
    assert_eq!(
        operator::settle_resend(&db, &settle("1"), LEASE + 30).unwrap(),
        vec![key("1")]
    );
}

#[test]
fn the_candidates_for_a_new_decision_are_the_calls_with_the_named_reasons() {
    let db = db();
    let mut skips = Vec::new();
    for (id, code) in [("1", "unknown-rep"), ("2", "no-media")] {
        let mut skip = send(id, "a");
        skip.outcome = Outcome::Skip {
            code: code.into(),
            detail: String::new(),
        };
        skips.push(skip);
    }
    intake(&db, &skips, None, 10).unwrap();
    let found = redecide::decided_for(&db, State::Skipped, &["unknown-rep"]).unwrap();
    assert_eq!(found, vec![(key("1"), "a".to_string())]);
    assert_eq!(
        redecide::decided_for(&db, State::Skipped, &[])
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn the_rules_fingerprint_is_kept_until_it_changes() {
    let db = db();
    assert_eq!(redecide::fingerprint(&db).unwrap(), None);
    redecide::set_fingerprint(&db, "a", 1).unwrap();
    redecide::set_fingerprint(&db, "b", 2).unwrap();
    assert_eq!(redecide::fingerprint(&db).unwrap().as_deref(), Some("b"));
}

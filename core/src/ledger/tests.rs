//! The ledger driven in memory: every rule of a call's life, without HTTP,
//! on the schema every driver applies.

use super::inbox::{self, InboxInsert};
use super::intake::{self, Intake, Outcome, intake};
use super::record::record;
use super::send::{
    Claim, ClaimRequest, OutboxItem, SendPacing, claim_send, paused, recover_in_flight,
};
use super::*;
use crate::answer::Action;
use crate::schema::{MIGRATIONS, statements};

const TEAM: &str = "t";
const KEY: &str = "fp-1";
const LEASE: Millis = 45_000;

/// A migrated in-memory database, for the core's tests.
pub(crate) fn memory() -> rusqlite::Connection {
    db()
}

fn db() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for sql in MIGRATIONS {
        for statement in statements(sql) {
            conn.execute_batch(&statement).unwrap();
        }
    }
    conn
}

fn key(id: &str) -> CallKey {
    CallKey {
        source: "aloware".into(),
        source_id: id.into(),
        team: TEAM.into(),
    }
}

fn send(id: &str, version: &str) -> Intake {
    Intake {
        key: key(id),
        version: version.into(),
        sync_method: "webhook".into(),
        outcome: Outcome::Send {
            payload: format!("{{\"id\":\"{id}\",\"v\":\"{version}\"}}"),
            title: format!("call {id}"),
            rep_email: None,
            warnings: None,
        },
    }
}

fn claim(db: &rusqlite::Connection, token: &str, now: Millis) -> Claim {
    claim_with(db, token, KEY, now)
}

fn claim_with(db: &rusqlite::Connection, token: &str, fingerprint: &str, now: Millis) -> Claim {
    claim_send(
        db,
        &ClaimRequest {
            team: TEAM,
            key_fingerprint: fingerprint,
            pacing: SendPacing::KENDO,
            lease_ms: LEASE,
            token,
        },
        now,
    )
    .unwrap()
}

fn claimed(c: Claim) -> OutboxItem {
    match c {
        Claim::Claimed(item) => item,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn state(db: &rusqlite::Connection, id: &str) -> (State, Option<String>, bool) {
    let row = db
        .first(
            "SELECT state, reason_code, maybe_duplicated FROM ledger WHERE source_id = ?1",
            &[id.into()],
        )
        .unwrap()
        .unwrap();
    (
        State::read(row.text(0).unwrap()).unwrap(),
        row.opt_text(1).unwrap(),
        row.int(2).unwrap() == 1,
    )
}

fn apply(db: &rusqlite::Connection, item: &OutboxItem, action: Action, now: Millis) -> bool {
    record(db, item, &action, KEY, now, |_, _, _| Ok(())).unwrap()
}

fn counter_value(db: &rusqlite::Connection, name: &str) -> i64 {
    db.first(
        "SELECT value FROM counters WHERE scope = ?1 AND name = ?2",
        &[TEAM.into(), name.into()],
    )
    .unwrap()
    .map_or(0, |r| r.int(0).unwrap())
}

#[test]
fn a_call_arriving_many_times_is_queued_once() {
    let db = db();
    let first = intake(&db, &[send("1", "a")], None, 0).unwrap();
    let again = intake(&db, &[send("1", "a"), send("1", "a")], None, 1).unwrap();
    assert_eq!((first.enqueued, again.duplicates), (1, 2));
    assert_eq!(send::queue_depth(&db, TEAM).unwrap(), 1);
}

#[test]
fn a_newer_version_replaces_a_queued_payload_and_an_older_one_does_not() {
    let db = db();
    intake(&db, &[send("1", "b")], None, 0).unwrap();
    let older = intake(&db, &[send("1", "a")], None, 1).unwrap();
    let newer = intake(&db, &[send("1", "c")], None, 2).unwrap();
    assert_eq!((older.duplicates, newer.updated), (1, 1));
    let item = claimed(claim(&db, "x", 10));
    assert!(item.payload.contains("\"v\":\"c\""), "{}", item.payload);
}

#[test]
fn a_skipped_call_is_recorded_with_its_reason_and_never_queued() {
    let db = db();
    let mut skip = send("1", "a");
    skip.outcome = Outcome::Skip {
        code: "too-short".into(),
        detail: "3 s".into(),
    };
    intake(&db, &[skip], Some(("aloware", "cursor-1")), 0).unwrap();
    assert_eq!(state(&db, "1").0, State::Skipped);
    assert_eq!(claim(&db, "x", 10), Claim::Idle(None));
    assert_eq!(
        checkpoint::get(&db, "aloware").unwrap().as_deref(),
        Some("cursor-1")
    );
}

#[test]
fn a_claimed_send_is_not_claimed_again_while_its_lease_holds() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    claimed(claim(&db, "x", 10));
    assert_eq!(claim(&db, "y", 3_000), Claim::Idle(None));
    assert_eq!(state(&db, "1").0, State::Sending);
}

#[test]
fn claims_keep_the_keys_thirty_a_minute_evenly_spaced() {
    let db = db();
    let calls: Vec<Intake> = (0..40).map(|i| send(&i.to_string(), "a")).collect();
    intake(&db, &calls, None, 0).unwrap();
    let mut now = 0;
    let mut at = Vec::new();
    while now < 60_000 {
        match claim(&db, &format!("t{now}"), now) {
            Claim::Claimed(item) => {
                at.push(now);
                assert!(apply(&db, &item, created(), now));
            }
            Claim::Pace(slot) => now = slot,
            other => panic!("{other:?}"),
        }
    }
    assert!(at.len() <= 30, "{} sends in the first minute", at.len());
    assert!(at.windows(2).all(|w| w[1] - w[0] >= 1_900), "{at:?}");
}

fn created() -> Action {
    Action::Created {
        call_id: Some("call_1".into()),
        after_lost_answers: 0,
    }
}

#[test]
fn a_created_call_is_sent_for_good_with_its_call_id() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 10));
    assert!(apply(&db, &item, created(), 20));
    assert_eq!(state(&db, "1").0, State::Sent);
    // However often it comes back, it is never queued again.
    let again = intake(&db, &[send("1", "z")], None, 30).unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(claim(&db, "y", 40), Claim::Idle(None));
}

#[test]
fn a_429_holds_every_send_of_the_key_until_retry_after_and_is_counted() {
    let db = db();
    intake(&db, &[send("1", "a"), send("2", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    let action = Action::RateLimited {
        retry_at: 30_000,
        reason: "429".into(),
    };
    assert!(apply(&db, &item, action, 100));
    assert_eq!(
        state(&db, "1"),
        (State::Queued, Some("rate-limited".into()), false)
    );
    assert_eq!(claim(&db, "y", 5_000), Claim::Pace(30_000));
    assert_eq!(counter_value(&db, counter::KENDO_429), 1);
    claimed(claim(&db, "z", 30_000));
}

#[test]
fn a_retry_waits_for_its_own_time_while_the_next_send_goes() {
    let db = db();
    intake(&db, &[send("1", "a"), send("2", "a")], None, 0).unwrap();
    let first = claimed(claim(&db, "x", 0));
    let action = Action::Retry {
        retry_at: 50_000,
        reason: "503".into(),
    };
    assert!(apply(&db, &first, action, 100));
    let next = claimed(claim(&db, "y", 2_100));
    assert_eq!(next.key.source_id, "2");
    assert_eq!(counter_value(&db, counter::RETRIES), 1);
}

#[test]
fn a_lost_answer_requeues_the_call_flagged_as_possibly_duplicated() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    let action = Action::ResendAfterLostAnswer {
        retry_at: 10_000,
        timeout_ms: 60_000,
        reason: "timed out".into(),
    };
    assert!(apply(&db, &item, action, 100));
    assert_eq!(
        state(&db, "1"),
        (State::Queued, Some("answer-lost".into()), true)
    );
    let again = claimed(claim(&db, "y", 10_000));
    assert_eq!((again.attempts, again.ambiguous), (1, 1));
    assert_eq!(counter_value(&db, counter::RESENT_AFTER_LOST_ANSWER), 1);
}

#[test]
fn a_refused_key_pauses_every_send_until_the_key_changes() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    let action = Action::PauseKey {
        reason: "401".into(),
    };
    assert!(apply(&db, &item, action, 100));
    assert_eq!(claim(&db, "y", 5_000), Claim::Paused("401".into()));
    assert!(paused(&db, TEAM).unwrap().is_some());
    claimed(claim_with(&db, "z", "fp-2", 5_000));
}

#[test]
fn a_parked_call_leaves_the_queue_until_the_operator_settles_it() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    let action = Action::Park {
        reason: "two lost answers".into(),
    };
    assert!(apply(&db, &item, action, 100));
    assert_eq!(state(&db, "1").0, State::OutcomeUnknown);
    assert_eq!(claim(&db, "y", 100_000), Claim::Idle(None));
    // A new arrival never queues a call Kendo may hold.
    assert_eq!(
        intake(&db, &[send("1", "b")], None, 200)
            .unwrap()
            .duplicates,
        1
    );
}

#[test]
fn dead_and_failed_sends_end_with_their_codes() {
    let db = db();
    intake(&db, &[send("1", "a"), send("2", "a")], None, 0).unwrap();
    let one = claimed(claim(&db, "x", 0));
    let dead = Action::Dead {
        reason: "503 x8".into(),
    };
    assert!(apply(&db, &one, dead, 100));
    let two = claimed(claim(&db, "y", 2_100));
    let fail = Action::Fail {
        code: "bad-request",
        reason: "400".into(),
    };
    assert!(apply(&db, &two, fail, 2_200));
    assert_eq!(
        state(&db, "1"),
        (State::Dead, Some("retries-exhausted".into()), false)
    );
    assert_eq!(
        state(&db, "2"),
        (State::Failed, Some("bad-request".into()), false)
    );
    assert_eq!(claim(&db, "z", 100_000), Claim::Idle(None));
}

#[test]
fn an_answer_after_the_claim_expired_changes_nothing_but_a_201_is_kept() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let stale = claimed(claim(&db, "x", 0));
    let recovered = recover_in_flight(&db, 1, LEASE + 1, no_write_back).unwrap();
    assert_eq!(recovered.resent, vec![key("1")]);
    let fresh = claimed(claim(&db, "y", LEASE + 1));
    let late = Action::Retry {
        retry_at: 0,
        reason: "503".into(),
    };
    assert!(!apply(&db, &stale, late, LEASE + 2));
    assert_eq!(state(&db, "1").0, State::Sending);
    // Kendo created it on the stale request: it is sent whatever the claim.
    assert!(apply(&db, &stale, created(), LEASE + 3));
    assert_eq!(state(&db, "1").0, State::Sent);
    assert!(!apply(&db, &fresh, late_retry(), LEASE + 4));
}

fn late_retry() -> Action {
    Action::Retry {
        retry_at: 0,
        reason: "503".into(),
    }
}

#[test]
fn a_send_left_in_flight_is_resent_within_its_budget_then_parked() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    claimed(claim(&db, "x", 0));
    let first = recover_in_flight(&db, 1, LEASE + 1, no_write_back).unwrap();
    assert_eq!((first.resent.len(), first.parked.len()), (1, 0));
    assert_eq!(
        state(&db, "1"),
        (State::Queued, Some("unknown-outcome".into()), true)
    );
    claimed(claim(&db, "y", LEASE + 1));
    let second = recover_in_flight(&db, 1, 3 * LEASE, no_write_back).unwrap();
    assert_eq!((second.resent.len(), second.parked.len()), (0, 1));
    assert_eq!(state(&db, "1").0, State::OutcomeUnknown);
}

fn no_write_back<D: Database + ?Sized>(
    _: &D,
    _: &CallKey,
    _: Option<&str>,
) -> Result<(), crate::ledger::LedgerError> {
    Ok(())
}

#[test]
fn a_send_whose_instance_died_reading_kendos_2xx_is_recorded_sent_not_resent() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    crate::ledger::send::answered(&db, &item, 201).unwrap();
    let queued = std::cell::RefCell::new(Vec::new());
    let recovered = recover_in_flight(
        &db,
        1,
        LEASE + 1,
        |_: &_, key: &CallKey, _: Option<&str>| {
            queued.borrow_mut().push(key.clone());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(recovered.sent, vec![key("1")]);
    assert!(recovered.resent.is_empty());
    assert_eq!(
        state(&db, "1"),
        (State::Sent, Some("answer-unread".into()), false)
    );
    assert_eq!(
        queued.into_inner(),
        vec![key("1")],
        "its write-back is queued"
    );
    assert_eq!(claim(&db, "y", LEASE + 2), Claim::Idle(None));
}

#[test]
fn a_non_2xx_answer_is_not_kept_so_a_dead_instance_send_is_resent() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    crate::ledger::send::answered(&db, &item, 503).unwrap();
    let recovered = recover_in_flight(&db, 1, LEASE + 1, no_write_back).unwrap();
    assert_eq!(recovered.resent, vec![key("1")]);
}

#[test]
fn a_live_claim_is_not_recovered() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    claimed(claim(&db, "x", 0));
    assert_eq!(
        recover_in_flight(&db, 1, LEASE - 1, no_write_back).unwrap(),
        Default::default()
    );
}

#[test]
fn a_failing_step_after_a_201_rolls_the_whole_record_back() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "x", 0));
    let failed = record(&db, &item, &created(), KEY, 10, |_, _, _| {
        Err(LedgerError::Corrupt {
            what: "test",
            value: "hook".into(),
        })
    });
    assert!(failed.is_err());
    assert_eq!(state(&db, "1").0, State::Sending);
    // The connection is usable again: nothing was left half-open.
    assert!(apply(&db, &item, created(), 20));
}

#[test]
fn a_webhook_delivery_is_stored_once() {
    let db = db();
    let first = inbox::insert(&db, "hubspot", "d1", None, b"{}", 0).unwrap();
    let again = inbox::insert(&db, "hubspot", "d1", None, b"{}", 1).unwrap();
    assert!(matches!(first, InboxInsert::Stored(_)));
    assert_eq!(again, InboxInsert::Duplicate);
    assert_eq!(inbox::backlog(&db).unwrap(), 1);
}

#[test]
fn a_deferred_delivery_waits_for_its_own_attempt_while_the_others_go_on() {
    let db = db();
    for id in ["d1", "d2"] {
        inbox::insert(&db, "hubspot", id, None, b"{}", 0).unwrap();
    }
    let taken = inbox::claim(&db, 10, 30_000, 0).unwrap();
    assert_eq!(taken.len(), 2);
    // Another instance finds both leased.
    assert!(inbox::claim(&db, 10, 30_000, 1).unwrap().is_empty());
    inbox::defer(&db, taken[0].id, 60_000, "HubSpot 503").unwrap();
    inbox::done(&db, taken[1].id, None, 2).unwrap();
    assert!(inbox::claim(&db, 10, 30_000, 59_999).unwrap().is_empty());
    assert_eq!(inbox::next_due(&db).unwrap(), Some(60_000));
    let retried = inbox::claim(&db, 10, 30_000, 60_000).unwrap();
    assert_eq!((retried.len(), retried[0].attempts), (1, 1));
}

#[test]
fn held_parts_of_a_call_merge_in_either_order() {
    let db = db();
    hold::hold(&db, "aloware", "9", None, Some("hello"), 0).unwrap();
    let held = hold::hold(&db, "aloware", "9", Some("{\"id\":9}"), None, 1).unwrap();
    assert_eq!(held.body.as_deref(), Some("{\"id\":9}"));
    assert_eq!(held.transcript.as_deref(), Some("hello"));
}

#[test]
fn a_delivery_whose_processor_keeps_stopping_is_closed_with_that_reason() {
    let db = db();
    inbox::insert(&db, "aloware", "d1", None, b"{}", 0).unwrap();
    inbox::insert(&db, "aloware", "d2", None, b"{}", 0).unwrap();
    let mut now = 0;
    for _ in 0..inbox::MAX_ABANDONED {
        let taken = inbox::claim(&db, 1, 1_000, now).unwrap();
        assert_eq!(taken[0].delivery_id, "d1");
        // The processor died holding it: no done, no defer.
        now += 1_001;
    }
    let next = inbox::claim(&db, 1, 1_000, now).unwrap();
    assert_eq!(next[0].delivery_id, "d2", "the others go on");
    let closed = db
        .first("SELECT error FROM inbox WHERE delivery_id = 'd1'", &[])
        .unwrap()
        .unwrap()
        .text(0)
        .unwrap();
    assert!(closed.contains("stopped 3 times"), "{closed}");
}

#[test]
fn a_deferred_delivery_is_not_counted_as_abandoned() {
    let db = db();
    inbox::insert(&db, "hubspot", "d1", None, b"{}", 0).unwrap();
    for i in 0..5 {
        let taken = inbox::claim(&db, 1, 1_000, i * 10_000).unwrap();
        assert_eq!(taken.len(), 1, "attempt {i}");
        inbox::defer(&db, taken[0].id, i * 10_000 + 1, "HubSpot 503").unwrap();
    }
}

#[test]
fn a_send_in_flight_before_the_one_state_migration_is_sending_after_it() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let at = MIGRATIONS
        .iter()
        .position(|m| m.contains("DROP COLUMN in_flight_since"))
        .unwrap();
    let (before, after) = MIGRATIONS.split_at(at);
    for sql in before {
        for statement in statements(sql) {
            conn.execute_batch(&statement).unwrap();
        }
    }
    conn.execute_batch(
        "INSERT INTO ledger (source, source_id, team, state, version, sync_method, first_seen_at, updated_at)
         VALUES ('aloware', '1', 't', 'queued', 'a', 'webhook', 0, 0);
         INSERT INTO outbox (source, source_id, team, payload, not_before, in_flight_since)
         VALUES ('aloware', '1', 't', '{}', 0, 5);",
    )
    .unwrap();
    for sql in after {
        for statement in statements(sql) {
            conn.execute_batch(&statement).unwrap();
        }
    }
    assert_eq!(state(&conn, "1").0, State::Sending);
    // And it is recovered as any send left in flight.
    let recovered = recover_in_flight(&conn, 1, 10, no_write_back).unwrap();
    assert_eq!(recovered.resent, vec![key("1")]);
}

#[test]
fn a_checkpoint_moved_by_another_instance_is_not_moved_back() {
    let db = db();
    // Two instances read the same (absent) checkpoint and poll.
    let (_, first) =
        intake::intake_advancing(&db, &[send("1", "a")], "salesloft", None, "p1", 0).unwrap();
    let (report, second) =
        intake::intake_advancing(&db, &[send("1", "a")], "salesloft", None, "p1-late", 1).unwrap();
    assert!(first && !second, "only the first moves it");
    assert_eq!(
        report.duplicates, 1,
        "what the second read is still recorded"
    );
    // The first goes on from what it wrote; the second would start over.
    let (_, third) = intake::intake_advancing(&db, &[], "salesloft", Some("p1"), "p2", 2).unwrap();
    let (_, stale) =
        intake::intake_advancing(&db, &[], "salesloft", Some("p1"), "p2-stale", 3).unwrap();
    assert!(third && !stale);
    assert_eq!(
        checkpoint::get(&db, "salesloft").unwrap().as_deref(),
        Some("p2")
    );
}

#[test]
fn a_body_merged_from_a_stale_read_is_refused_so_no_event_is_lost() {
    let db = db();
    let first = hold::merge_body(&db, "aloware", "9", None, "{\"a\":1}", 0).unwrap();
    assert_eq!(first.unwrap().body.as_deref(), Some("{\"a\":1}"));
    // Another instance read nothing held either, and merged alone: refused.
    assert_eq!(
        hold::merge_body(&db, "aloware", "9", None, "{\"b\":2}", 1).unwrap(),
        None
    );
    // Merged into what is held now: kept.
    let merged = hold::merge_body(
        &db,
        "aloware",
        "9",
        Some("{\"a\":1}"),
        "{\"a\":1,\"b\":2}",
        2,
    )
    .unwrap()
    .unwrap();
    assert_eq!(merged.body.as_deref(), Some("{\"a\":1,\"b\":2}"));
    // A transcript held first leaves room for the first body.
    hold::hold(&db, "aloware", "10", None, Some("hi"), 3).unwrap();
    let body = hold::merge_body(&db, "aloware", "10", None, "{}", 4)
        .unwrap()
        .unwrap();
    assert_eq!(
        (body.body.as_deref(), body.transcript.as_deref()),
        (Some("{}"), Some("hi"))
    );
}

#[test]
fn a_poll_cycle_moves_its_checkpoint_page_by_page_until_another_instance_does() {
    use crate::sources::poll::{After, Cycle};
    let db = db();
    let (mut mine, stored) = Cycle::start(&db, "hubspot", 10).unwrap();
    assert_eq!(stored, None);
    let (mut theirs, _) = Cycle::start(&db, "hubspot", 10).unwrap();
    let (_, after) = mine
        .page(&db, &[send("1", "a")], "p1".into(), true, 0)
        .unwrap();
    assert_eq!(after, After::Next);
    // The other instance read the same first page: its cycle ends there.
    let (report, after) = theirs
        .page(&db, &[send("1", "a")], "p1".into(), true, 1)
        .unwrap();
    assert_eq!((after, report.duplicates), (After::Moved, 1));
    let (_, after) = mine.page(&db, &[], "p2".into(), false, 2).unwrap();
    assert_eq!(after, After::Done);
    assert_eq!(
        checkpoint::get(&db, "hubspot").unwrap().as_deref(),
        Some("p2")
    );
}

#[test]
fn a_poll_cycle_ends_after_its_pages() {
    use crate::sources::poll::{After, Cycle};
    let db = db();
    let (mut cycle, _) = Cycle::start(&db, "salesloft", 2).unwrap();
    assert_eq!(
        cycle.page(&db, &[], "p1".into(), true, 0).unwrap().1,
        After::Next
    );
    assert_eq!(
        cycle.page(&db, &[], "p2".into(), true, 1).unwrap().1,
        After::Done
    );
    assert_eq!(cycle.pages(), 2);
}

fn salesloft(id: &str, version: &str, outcome: Outcome) -> Intake {
    Intake {
        key: CallKey {
            source: "salesloft".into(),
            source_id: id.into(),
            team: TEAM.into(),
        },
        version: version.into(),
        sync_method: "polling".into(),
        outcome,
    }
}

fn waits_for_record() -> Outcome {
    use crate::sources::salesloft::AWAITING_CALL_DATA_RECORD;
    Outcome::Wait {
        code: AWAITING_CALL_DATA_RECORD.into(),
        detail: "waits for its record".into(),
    }
}

#[test]
fn a_salesloft_call_whose_transcript_comes_during_its_direction_wait_is_released() {
    use crate::sources::salesloft::{version_with_record, version_with_transcript};
    let db = db();
    let updated = "2026-12-01T10:00:00.000000Z";
    intake(&db, &[salesloft("7", updated, waits_for_record())], None, 0).unwrap();
    // The transcript comes during the wait: decided again, still waiting.
    hold::hold(&db, "salesloft", "7", Some("{}"), Some("[\"hi\"]"), 1).unwrap();
    let with_transcript = version_with_transcript(&db, "7", updated).unwrap();
    intake(
        &db,
        &[salesloft("7", &with_transcript, waits_for_record())],
        None,
        1,
    )
    .unwrap();
    // The wait ends: the release is newer, and the call goes.
    let released = version_with_record(&db, "7", updated).unwrap();
    assert!(
        released > with_transcript,
        "{released} <= {with_transcript}"
    );
    let report = intake(&db, &[send_salesloft("7", &released)], None, 2).unwrap();
    assert_eq!(report.enqueued + report.updated, 1, "{report:?}");
    assert_eq!(state(&db, "7").0, State::Queued);
}

#[test]
fn a_salesloft_transcript_read_after_the_release_still_updates_the_queued_call() {
    use crate::sources::salesloft::{version_with_record, version_with_transcript};
    let db = db();
    let updated = "2026-12-01T10:00:00.000000Z";
    intake(&db, &[salesloft("8", updated, waits_for_record())], None, 0).unwrap();
    let released = version_with_record(&db, "8", updated).unwrap();
    intake(&db, &[send_salesloft("8", &released)], None, 1).unwrap();
    hold::hold(&db, "salesloft", "8", Some("{}"), Some("[\"hi\"]"), 2).unwrap();
    let with_transcript = version_with_transcript(&db, "8", updated).unwrap();
    assert!(
        with_transcript > released,
        "{with_transcript} <= {released}"
    );
    let report = intake(&db, &[send_salesloft("8", &with_transcript)], None, 3).unwrap();
    assert_eq!(report.updated, 1, "{report:?}");
}

#[test]
fn a_release_is_newer_than_the_suffixes_stored_before_the_fix() {
    use crate::sources::salesloft::version_with_record;
    let db = db();
    let updated = "2026-12-01T10:00:00.000000Z";
    let old = format!("{updated}+transcript");
    intake(&db, &[salesloft("9", &old, waits_for_record())], None, 0).unwrap();
    let released = version_with_record(&db, "9", updated).unwrap();
    let report = intake(&db, &[send_salesloft("9", &released)], None, 1).unwrap();
    assert_eq!(report.enqueued + report.updated, 1, "{report:?}");
}

fn send_salesloft(id: &str, version: &str) -> Intake {
    let Intake { outcome, .. } = send(id, version);
    salesloft(id, version, outcome)
}

#[test]
fn a_send_the_runtime_refuses_stays_queued_with_kendos_send_problem_until_one_goes() {
    let db = db();
    intake(&db, &[send("1", "a")], None, 0).unwrap();
    let item = claimed(claim(&db, "c1", 0));
    let refused = crate::answer::after_answer(
        &crate::answer::AnswerPolicy {
            backoff: crate::pacing::Backoff::default(),
            timeout_ms: 30_000,
            ambiguous_resends: 1,
        },
        crate::answer::Sent {
            attempts: 0,
            ambiguous: 0,
        },
        crate::answer::Answer::Refused("HttpRequestDenied".into()),
        0,
        0.5,
        "1",
        TEAM,
    );
    assert!(apply(&db, &item, refused, 0));
    let (st, code, maybe_duplicated) = state(&db, "1");
    assert_eq!(
        (st, code.as_deref(), maybe_duplicated),
        (State::Queued, Some("send-refused"), false)
    );
    let attempts = db
        .first("SELECT attempts FROM ledger WHERE source_id = '1'", &[])
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(attempts, 0, "a refused send is not the call's attempt");
    let problem = |db: &rusqlite::Connection| {
        health::all(db)
            .unwrap()
            .into_iter()
            .find(|h| (h.source.as_str(), h.topic.as_str()) == record::KENDO_SEND)
            .and_then(|h| h.problem)
    };
    assert!(problem(&db).is_some_and(|p| p.contains("allowed_outbound_hosts")));
    // The manifest fixed: the next send goes, the problem is gone.
    let item = claimed(claim(&db, "c2", 61_000));
    assert!(apply(
        &db,
        &item,
        Action::Created {
            call_id: Some("k1".into()),
            after_lost_answers: 0
        },
        61_000
    ));
    assert_eq!(state(&db, "1").0, State::Sent);
    assert_eq!(problem(&db), None);
}

#[test]
fn deliveries_given_back_on_stopping_are_due_at_once_and_not_counted_as_abandoned() {
    let db = db();
    inbox::insert(&db, "aloware", "d1", None, b"{}", 0).unwrap();
    inbox::insert(&db, "aloware", "d2", None, b"{}", 0).unwrap();
    for _ in 0..inbox::MAX_ABANDONED + 1 {
        let taken = inbox::claim(&db, 10, 300_000, 1).unwrap();
        assert_eq!(taken.len(), 2, "both given back and due again");
        let ids: Vec<i64> = taken.iter().map(|e| e.id).collect();
        inbox::release(&db, &ids).unwrap();
    }
    assert_eq!(inbox::backlog(&db).unwrap(), 2);
}

#[test]
fn aloware_calls_wait_for_a_transcript_only_after_one_came_within_the_window() {
    use crate::sources::aloware::{self, TRANSCRIPT_WINDOW_MS, TranscriptMode};
    let db = db();
    let ready = |call: &str, now| {
        let held = hold::hold(&db, "aloware", call, Some("{}"), None, now).unwrap();
        match aloware::after_hold(&db, "t", 1, call, held, 300_000, now).unwrap() {
            aloware::Next::Decide { awaiting, .. } => awaiting,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        aloware::transcript_mode(&db, 0).unwrap(),
        TranscriptMode::NoWait { last_at: None }
    );
    assert!(!ready("1", 0), "no transcript ever: the call goes at once");
    hold::hold(&db, "aloware", "1", None, Some("Rep: hi"), 10).unwrap();
    assert_eq!(
        aloware::transcript_mode(&db, 20).unwrap(),
        TranscriptMode::Wait { last_at: 10 }
    );
    assert!(ready("2", 20), "transcripts come: the next call waits");
    let later = 10 + TRANSCRIPT_WINDOW_MS + 1;
    assert!(
        !ready("3", later),
        "none for a week: calls go at once again"
    );
}

mod operator;
mod report;
mod results;

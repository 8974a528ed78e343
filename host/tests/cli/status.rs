//! `status` reads a state database another process wrote.

use kendo_bridge::store::{CallKey, Intake, KendoResult, Outcome, Store};
use serde_json::Value;

use crate::support::{assert_exit, kendo_bridge, run, stdout};

/// A database with one call Kendo accepted at `sent_at` and a Kendo result
/// for a call this bridge never sent.
fn database(dir: &tempfile::TempDir, sent_at: i64) -> std::path::PathBuf {
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).expect("the database opens");
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
    kendo_bridge_core::ledger::intake::intake(store.database(), &[item], None, sent_at)
        .expect("intake");
    let due = kendo_bridge_core::ledger::send::due(store.database(), "emea", sent_at, 1)
        .expect("due")
        .remove(0);
    kendo_bridge_core::ledger::send::begin_send(store.database(), &due, sent_at).expect("begin");
    store
        .mark_created(&due, Some("call_1"), sent_at)
        .expect("created");
    let result = KendoResult {
        event_id: "e9",
        event: "call.uploaded",
        subject_id: "call_999",
        ai_score: Some(61.0),
        is_test: false,
        scored_at: None,
    };
    store
        .record_result_and_write_back(&result, sent_at)
        .expect("result");
    path
}

fn status_json(db: &std::path::Path, unscored_after: &str) -> Value {
    let mut command = kendo_bridge();
    command
        .args([
            "status",
            "--json",
            "--unscored-after",
            unscored_after,
            "--db",
        ])
        .arg(db);
    let output = run(command, None);
    assert_exit(&output, 0);
    serde_json::from_str(&stdout(&output)).expect("JSON")
}

#[test]
fn a_call_sent_long_ago_without_a_score_is_reported_per_team() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database(&dir, 1_000);
    let status = status_json(&db, "1h");
    let unscored = &status["results"]["unscored"];
    assert_eq!(unscored[0]["team"], "emea", "{status:#}");
    assert_eq!(unscored[0]["count"], 1, "{status:#}");
}

#[test]
fn a_kendo_result_for_a_call_this_bridge_never_sent_is_counted_and_listed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database(&dir, 1_000);
    let status = status_json(&db, "1h");
    let unmatched = &status["results"]["unmatched"];
    assert_eq!(unmatched["count"], 1, "{status:#}");
    assert_eq!(unmatched["latest"][0]["callId"], "call_999", "{status:#}");
}

#[test]
fn a_call_sent_within_the_wait_is_not_reported_as_unscored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let db = database(&dir, now);
    let status = status_json(&db, "1h");
    assert_eq!(
        status["results"]["unscored"],
        serde_json::json!([]),
        "{status:#}"
    );
}

/// A database with one HubSpot call Kendo accepted, its write-back retried
/// once after HubSpot answered 503.
fn database_with_a_write_back(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).expect("the database opens");
    store.set_write_back_sources(&["hubspot"]);
    let item = Intake {
        key: CallKey {
            source: "hubspot".into(),
            source_id: "512".into(),
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
    kendo_bridge_core::ledger::intake::intake(store.database(), &[item], None, 1_000)
        .expect("intake");
    let due = kendo_bridge_core::ledger::send::due(store.database(), "emea", 1_000, 1)
        .expect("due")
        .remove(0);
    kendo_bridge_core::ledger::send::begin_send(store.database(), &due, 1_000).expect("begin");
    store
        .mark_created(&due, Some("call_1"), 1_000)
        .expect("created");
    let wb = kendo_bridge_core::ledger::write_back::due(store.database(), 1_000, 1)
        .expect("due")
        .remove(0);
    kendo_bridge_core::ledger::write_back::retry(
        store.database(),
        &wb,
        5_000,
        "hubspot answered 503 to PATCH",
        1_100,
    )
    .expect("retry");
    path
}

#[test]
fn pending_write_backs_and_their_last_error_are_shown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database_with_a_write_back(&dir);
    let status = status_json(&db, "1h");
    let wb = &status["writeBacks"][0];
    assert_eq!(wb["source"], "hubspot", "{status:#}");
    assert_eq!(
        (wb["pending"].as_u64(), wb["done"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        wb["lastError"], "hubspot answered 503 to PATCH",
        "{status:#}"
    );

    let mut command = kendo_bridge();
    command.args(["status", "--db"]).arg(&db);
    let output = run(command, None);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.contains("hubspot: 1 pending, 0 done, 0 dead"),
        "{text}"
    );
    assert!(text.contains("hubspot answered 503 to PATCH"), "{text}");
}

/// A database with one HubSpot delivery stored and failed once (HubSpot
/// answered 503 while it was processed): it waits to be tried again.
fn database_with_a_failing_delivery(dir: &tempfile::TempDir) -> std::path::PathBuf {
    use kendo_bridge_core::ledger::inbox;
    let path = dir.path().join("state.db");
    let store = Store::open(&path).expect("the database opens");
    let db = store.database();
    inbox::insert(db, "hubspot", "d1", None, b"[]", 1_000).expect("the delivery is stored");
    let taken = inbox::claim(db, 10, 60_000, 1_000).expect("it is taken");
    inbox::defer(
        db,
        taken[0].id,
        9_000,
        "hubspot answered 503 to GET /crm/v3/objects/calls/7",
    )
    .expect("it is deferred");
    path
}

#[test]
fn a_stored_delivery_that_failed_is_listed_with_its_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database_with_a_failing_delivery(&dir);
    let status = status_json(&db, "1h");
    let listed = &status["troubledDeliveries"];
    assert_eq!(listed[0]["source"], "hubspot", "{status:#}");
    assert_eq!(listed[0]["attempts"], 1, "{status:#}");
    assert!(
        listed[0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("hubspot answered 503")),
        "{status:#}"
    );

    let mut command = kendo_bridge();
    command.args(["status", "--db"]).arg(&db);
    let output = run(command, None);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("Stored deliveries in trouble"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("from hubspot"))
        .unwrap_or_default();
    assert!(line.contains("hubspot answered 503"), "{text}");
}

//! Kendo misbehaving: 5xx answers, a 429 from a window someone else filled,
//! an answer slower than the bridge's timeout, an answer lost after the call
//! was created. Every call arrives in the end, or is parked as
//! outcome-unknown for the operator once its answers were lost too often;
//! the only duplicates are the ones a lost answer makes unavoidable, and the
//! bridge flags those.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    KEY, Running, TEAM, client, eventually, operator, staged, status_json, team_status,
};
use kendo_bridge::demo::StageOptions;
use kendo_bridge::store::{State, counter};
use kendo_bridge_sim::Dataset;

/// Waits until every expected call is in Kendo and the outbox is empty.
async fn delivered(bridge: &Running) {
    eventually("every call reached Kendo", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    eventually("the outbox is empty", || {
        bridge
            .store
            .run_here(|s| {
                Ok(kendo_bridge_core::ledger::send::queue_depth(
                    s.database(),
                    TEAM,
                )?)
            })
            .expect("the store reads")
            == 0
    })
    .await;
}

fn all_sent(bridge: &Running, n: usize) {
    let ledger = bridge.ledger();
    assert_eq!(ledger.len(), n);
    for row in &ledger {
        assert_eq!(
            row.state,
            State::Sent,
            "{} {}",
            row.key.source,
            row.key.source_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kendo_5xx_answers_are_retried_until_every_call_is_delivered_once() {
    let (dir, stage) = staged(Dataset::backlog(10, 3), StageOptions::default()).await;
    stage.sims.kendo.fail_next(2, 500);
    stage.sims.kendo.fail_next(1, 502);
    stage.sims.kendo.fail_next(1, 503);
    let bridge = Running::serve(dir, stage);

    delivered(&bridge).await;

    let kendo = &bridge.stage.sims.kendo;
    assert_eq!(kendo.stats().server_errors_5xx, 4);
    assert_eq!(kendo.duplicates(), vec![]);
    assert_eq!(bridge.counter(TEAM, counter::RETRIES), 4);
    assert_eq!(
        bridge.counter(TEAM, counter::RESENT_AFTER_LOST_ANSWER),
        0,
        "a 5xx is no lost answer"
    );
    all_sent(&bridge, 10);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_429_is_waited_out_without_drawing_a_second_one() {
    // x10: Kendo's window is 6 s, time enough for the bridge to start and
    // walk into the full window.
    let options = StageOptions {
        time_scale: 10.0,
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(10, 4), options).await;
    // Another integration on the same key fills the window: 30 requests that
    // Kendo admits (then refuses as empty payloads).
    let http = client();
    for i in 0..30 {
        let status = http
            .post(stage.sims.kendo.ingest_url())
            .header("X-API-Key", KEY)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("Kendo answers")
            .status();
        assert_eq!(
            status.as_u16(),
            400,
            "noise request {i} is admitted, then refused"
        );
    }
    let bridge = Running::serve(dir, stage);

    delivered(&bridge).await;

    let kendo = &bridge.stage.sims.kendo;
    assert_eq!(
        kendo.stats().rate_limited_429,
        1,
        "the bridge met the full window once and then waited for Retry-After"
    );
    assert_eq!(bridge.counter(TEAM, counter::KENDO_429), 1);
    assert_eq!(kendo.duplicates(), vec![]);
    all_sent(&bridge, 10);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_slower_than_the_timeout_is_sent_again_and_the_possible_duplicate_is_counted() {
    let options = StageOptions {
        kendo_timeout: Duration::from_millis(1_000),
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(10, 5), options).await;
    // Kendo creates the call, then answers after the bridge gave up.
    stage.sims.kendo.delay_next(1, Duration::from_millis(3_000));
    let bridge = Running::serve(dir, stage);

    delivered(&bridge).await;

    let kendo = &bridge.stage.sims.kendo;
    let duplicates = kendo.duplicates();
    let counted = bridge.counter(TEAM, counter::RESENT_AFTER_LOST_ANSWER);
    assert_eq!(
        duplicates.len(),
        1,
        "the timed-out call was created twice: {duplicates:?}"
    );
    assert!(
        duplicates.len() as i64 <= counted,
        "{} duplicate(s) but {counted} counted",
        duplicates.len()
    );
    assert_eq!(bridge.counter(TEAM, counter::RETRIES), 1);
    all_sent(&bridge, 10);
    bridge.stop().await;
}

/// Waits until `n` calls are parked as outcome-unknown.
async fn parked(bridge: &Running, n: usize) {
    eventually("the calls are parked as outcome-unknown", || {
        let ledger = bridge.ledger();
        ledger.len() == n && ledger.iter().all(|r| r.state == State::OutcomeUnknown)
    })
    .await;
}

/// `kendo-bridge deliveries --maybe-duplicated --json`, parsed.
fn maybe_duplicated(db: &str) -> Vec<Value> {
    let output = operator(&["deliveries", "--db", db, "--maybe-duplicated", "--json"]);
    let value: Value = serde_json::from_slice(&output.stdout).expect("deliveries prints JSON");
    value.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_slower_than_the_timeout_gets_one_resend_per_call_then_the_calls_are_parked() {
    let options = StageOptions {
        kendo_timeout: Duration::from_millis(1_000),
        ambiguous_resends: 1,
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(2, 11), options).await;
    // Kendo creates every call, then answers after the bridge's first (1 s)
    // and doubled (2 s) timeouts.
    stage
        .sims
        .kendo
        .delay_next(1_000, Duration::from_millis(3_000));
    let bridge = Running::serve(dir, stage);
    let db = bridge.db();
    let db_arg = db.to_str().expect("a UTF-8 path");

    parked(&bridge, 2).await;

    let kendo = &bridge.stage.sims.kendo;
    assert_eq!(
        kendo.stats().requests,
        4,
        "the first request and one re-send per call, no more"
    );
    let duplicates = kendo.duplicates();
    assert_eq!(duplicates.len(), 2, "{duplicates:?}");
    assert!(duplicates.iter().all(|d| d.count == 2), "{duplicates:?}");
    assert_eq!(bridge.counter(TEAM, counter::RESENT_AFTER_LOST_ANSWER), 2);
    let status = status_json(&db);
    assert_eq!(team_status(&status, TEAM)["states"]["outcome-unknown"], 2);
    assert_eq!(team_status(&status, TEAM)["queueDepth"], 0);
    let flagged = maybe_duplicated(db_arg);
    assert_eq!(flagged.len(), 2, "{flagged:#?}");
    assert!(
        flagged
            .iter()
            .all(|d| d["state"] == "outcome-unknown" && d["maybeDuplicated"] == true),
        "{flagged:#?}"
    );
    let text = operator(&["status", "--db", db_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("2 call(s) OUTCOME-UNKNOWN") && text.contains("kendo-bridge settle"),
        "status tells the operator: {text}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_calls_are_settled_by_the_operator_as_sent_or_sent_again() {
    let options = StageOptions {
        kendo_timeout: Duration::from_millis(1_000),
        ambiguous_resends: 0,
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(2, 12), options).await;
    stage.sims.kendo.delay_next(2, Duration::from_millis(2_000));
    let bridge = Running::serve(dir, stage);
    let db = bridge.db();
    let db_arg = db.to_str().expect("a UTF-8 path");

    parked(&bridge, 2).await;
    let kendo = &bridge.stage.sims.kendo;
    assert_eq!(kendo.stats().requests, 2, "no re-send is allowed");
    let ledger = bridge.ledger();
    let (found, lost) = (&ledger[0].key, &ledger[1].key);
    // The operator finds the first in Kendo, with its callId, and pretends
    // the second was not there.
    let in_kendo = kendo
        .accepted()
        .into_iter()
        .find(|c| c.source_call_id().as_deref() == Some(found.source_id.as_str()))
        .expect("Kendo created the first call");
    let settled = operator(&[
        "settle",
        "--db",
        db_arg,
        "--sent",
        &found.source_id,
        "--call-id",
        &in_kendo.call_id,
    ]);
    assert!(
        String::from_utf8_lossy(&settled.stdout).contains("marked sent"),
        "{}",
        String::from_utf8_lossy(&settled.stdout)
    );
    operator(&[
        "settle",
        "--db",
        db_arg,
        "--resend",
        &lost.source_id,
        "--source",
        &lost.source,
    ]);

    eventually("the re-sent call is sent", || {
        bridge
            .row(&lost.source, &lost.source_id)
            .is_some_and(|r| r.state == State::Sent)
    })
    .await;
    assert_eq!(
        kendo.stats().requests,
        3,
        "only the call settled for re-sending"
    );
    let sent = bridge
        .row(&found.source, &found.source_id)
        .expect("the settled call's row");
    assert_eq!(sent.state, State::Sent);
    assert_eq!(
        sent.kendo_call_id.as_deref(),
        Some(in_kendo.call_id.as_str())
    );
    let flagged = maybe_duplicated(db_arg);
    assert_eq!(
        flagged.len(),
        2,
        "settling does not undo a possible duplicate"
    );
    let resent = flagged
        .iter()
        .find(|d| d["sourceId"] == lost.source_id.as_str())
        .expect("the re-sent call is listed");
    assert_eq!(
        resent["kendoCallIds"].as_array().map(Vec::len),
        Some(1),
        "the callId of the re-send: {resent:#}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_an_id_that_is_not_parked_is_refused_with_exit_2() {
    let (dir, stage) = staged(Dataset::backlog(1, 13), StageOptions::default()).await;
    let bridge = Running::serve(dir, stage);
    delivered(&bridge).await;
    let db = bridge.db();
    let id = bridge.ledger()[0].key.source_id.clone();

    let output = crate::support::kendo_bridge()
        .args([
            "settle",
            "--db",
            db.to_str().expect("a UTF-8 path"),
            "--sent",
            &id,
        ])
        .output()
        .expect("kendo-bridge starts");

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is parked as outcome-unknown"), "{stderr}");
    assert_eq!(
        bridge
            .row(&bridge.ledger()[0].key.source, &id)
            .map(|r| r.state),
        Some(State::Sent)
    );
    bridge.stop().await;
}

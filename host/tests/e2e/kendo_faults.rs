//! Kendo misbehaving: 5xx answers, a 429 from a window someone else filled,
//! an answer slower than the bridge's timeout, an answer lost after the call
//! was created. Every call arrives in the end; the only duplicates are the
//! ones a lost answer makes unavoidable, and the bridge counts those.

use std::time::Duration;

use crate::support::{KEY, Running, TEAM, client, eventually, staged};
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
            .run_here(|s| s.queue_depth(TEAM))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lost_after_kendo_created_the_call_is_the_one_duplicate_and_is_counted() {
    let (dir, stage) = staged(Dataset::backlog(10, 6), StageOptions::default()).await;
    stage.sims.kendo.drop_after_create_next(1);
    let bridge = Running::serve(dir, stage);

    delivered(&bridge).await;

    let kendo = &bridge.stage.sims.kendo;
    assert_eq!(kendo.stats().dropped_after_create, 1);
    let duplicates = kendo.duplicates();
    assert_eq!(duplicates.len(), 1, "{duplicates:?}");
    assert_eq!(duplicates[0].count, 2);
    assert_eq!(
        bridge.counter(TEAM, counter::RESENT_AFTER_LOST_ANSWER),
        1,
        "the send whose answer was lost is counted as possibly duplicated"
    );
    all_sent(&bridge, 10);
    bridge.stop().await;
}

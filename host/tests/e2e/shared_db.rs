//! Several bridges on one state database (several `serve` processes on one
//! file, or instances scaled out on a shared database): every call reaches
//! Kendo once, and together they keep each key's limit.

use crate::support::{KEY, PATIENCE, Running, TEAM, eventually};
use kendo_bridge::demo::StageOptions;
use kendo_bridge::plugin::Plugin;
use kendo_bridge::store::counter;
use kendo_bridge_sim::Dataset;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_send_each_call_once_within_the_keys_limit() {
    // 90 calls at x30 (30 per 2 s): three windows' worth, read and sent by
    // two bridges polling the same account with the same key.
    let first = Running::start(Dataset::backlog(90, 31), StageOptions::default()).await;
    let second = first
        .stage
        .engine(Plugin::embedded().expect("the embedded plugin loads"))
        .expect("a second bridge opens the same state database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listening socket");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(second.serve(listener, stopped));

    let kendo = &first.stage.sims.kendo;
    eventually("the whole backlog reached Kendo", || {
        first.stage.missing().is_empty()
    })
    .await;

    assert_eq!(kendo.duplicates(), vec![], "no call reached Kendo twice");
    assert_eq!(
        kendo.stats().rate_limited_429,
        0,
        "Kendo refused none of the bridges' requests"
    );
    assert_eq!(first.counter(TEAM, counter::KENDO_429), 0);
    let busiest = kendo.max_requests_in_any_window(KEY);
    assert!(
        busiest <= 30,
        "{busiest} requests of the two bridges fell in one of Kendo's windows"
    );
    assert!(
        busiest >= 25,
        "only {busiest} requests in the busiest window: two bridges drained slower than one"
    );

    let _ = stop.send(true);
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the second bridge stops when asked")
        .expect("the second bridge did not panic")
        .expect("the second bridge ended without an error");
    first.stop().await;
}

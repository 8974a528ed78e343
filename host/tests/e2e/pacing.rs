//! Kendo allows 30 requests per minute per key. A backlog drained at that
//! limit never draws a 429 the bridge caused.

use crate::support::{KEY, Running, TEAM, eventually};
use kendo_bridge::demo::StageOptions;
use kendo_bridge::store::counter;
use kendo_bridge_sim::Dataset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drained_at_kendos_limit_never_draws_a_429() {
    // 90 calls at x30 (30 per 2 s): three full windows and more.
    let bridge = Running::start(
        Dataset::backlog(90, 21),
        StageOptions {
            // 100 ms of slack in the 2 s minute: see `pacing_margin`.
            pacing_margin: 0.05,
            ..StageOptions::default()
        },
    )
    .await;
    let kendo = &bridge.stage.sims.kendo;

    eventually("the whole backlog reached Kendo", || {
        bridge.stage.missing().is_empty()
    })
    .await;

    assert_eq!(
        kendo.stats().rate_limited_429,
        0,
        "Kendo refused none of the bridge's requests"
    );
    assert_eq!(bridge.counter(TEAM, counter::KENDO_429), 0);
    let busiest = kendo.max_requests_in_any_window(KEY);
    assert!(
        busiest <= 30,
        "{busiest} requests fell in one of Kendo's windows"
    );
    // Paced at the limit, not below it: a window holds (almost) 30.
    assert!(
        busiest >= 25,
        "only {busiest} requests in the busiest window: the drain was slow"
    );
    assert_eq!(kendo.duplicates(), vec![]);
    bridge.stop().await;
}

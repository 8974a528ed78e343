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
    let first = Running::start(
        Dataset::backlog(90, 31),
        StageOptions {
            // 100 ms of slack in the 2 s minute: see `pacing_margin`.
            pacing_margin: 0.05,
            ..StageOptions::default()
        },
    )
    .await;
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

/// Two `kendo-bridge serve` processes on one state file (a rolling restart,
/// a standby): the second starts (no "database is locked"), both keep
/// running, and the backlog reaches Kendo once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_one_state_file() {
    use crate::support::{kendo_bridge, staged};
    use std::process::Stdio;

    let (dir, mut stage) = staged(Dataset::backlog(60, 41), StageOptions::default()).await;
    // The binaries listen on the configured addresses themselves.
    drop(stage.listener.take());
    let config = std::fs::read_to_string(&stage.config_path).expect("the staged configuration");
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let second_addr = free.local_addr().expect("an address");
    drop(free);
    let first_addr = stage.bridge_url.trim_start_matches("http://").to_string();
    let second_config = dir.path().join("second.toml");
    std::fs::write(
        &second_config,
        config.replace(&first_addr, &second_addr.to_string()),
    )
    .expect("the second configuration");
    let start = |path: &std::path::Path, log: &str| {
        let out = std::fs::File::create(dir.path().join(log)).expect("a log file");
        let err = out.try_clone().expect("the log file, again");
        kendo_bridge()
            .args(["serve", "--config"])
            .arg(path)
            .env("RUST_LOG", "kendo_bridge=info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("kendo-bridge serve starts")
    };
    let mut first = start(&stage.config_path, "serve-1.log");
    let mut second = start(&second_config, "serve-2.log");

    let kendo = stage.sims.kendo.clone();
    eventually("the whole backlog reached Kendo", || {
        stage.missing().is_empty()
    })
    .await;
    let first_alive = first.try_wait().expect("the first process").is_none();
    let second_alive = second.try_wait().expect("the second process").is_none();
    let _ = first.kill();
    let _ = second.kill();
    let _ = first.wait();
    let _ = second.wait();
    let log = std::fs::read_to_string(dir.path().join("serve-2.log")).unwrap_or_default();
    assert!(
        first_alive && second_alive,
        "both bridges kept running:\n{log}"
    );
    assert!(!log.contains("database is locked"), "{log}");
    assert_eq!(kendo.duplicates(), vec![], "no call reached Kendo twice");
    assert_eq!(kendo.stats().rate_limited_429, 0);
    assert!(kendo.max_requests_in_any_window(KEY) <= 30);
}

//! What an operator sees when a source fails: `status` names the failing
//! part of the source, since when, and the configuration key to check; a
//! failing first poll does not slide the first look-back.

use std::path::Path;
use std::process::Output;

use crate::support::{kendo_bridge, staged, status_json};
use kendo_bridge::demo::StageOptions;
use kendo_bridge_sim::Dataset;
use serde_json::Value;

/// `sync --once` on the stage's configuration, whatever its exit code.
fn sync_once(config: &Path) -> Output {
    kendo_bridge()
        .args(["sync", "--once", "--wait", "0s", "--config"])
        .arg(config)
        .output()
        .expect("kendo-bridge starts")
}

/// The `status --json` entry for `source`'s `topic`.
fn health<'a>(status: &'a Value, source: &str, topic: &str) -> &'a Value {
    status["sources"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|h| h["source"] == source && h["topic"] == topic)
        })
        .unwrap_or_else(|| panic!("status has no {source} {topic} entry: {status:#}"))
}

fn edit_config(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("the staged configuration");
    assert!(text.contains(from), "the staged configuration has {from}");
    std::fs::write(path, text.replace(from, to)).expect("the configuration is written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_salesloft_key_shows_in_status_naming_the_key_to_check() {
    let (dir, stage) = staged(Dataset::backlog(3, 3), StageOptions::default()).await;
    std::fs::write(dir.path().join("salesloft-key.secret"), "not-the-key")
        .expect("the secret file is written");

    let first = sync_once(&stage.config_path);
    assert!(!first.status.success(), "a refused key fails the sync");
    let second = sync_once(&stage.config_path);
    assert!(!second.status.success());

    let status = status_json(&dir.path().join("kendo-bridge.db"));
    let poll = health(&status, "salesloft", "poll");
    let problem = poll["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("401"), "{problem}");
    assert!(problem.contains("salesloft.api_key"), "{problem}");
    assert_eq!(poll["problemCount"], 2, "{poll:#}");
    assert!(poll["problemSince"].is_string(), "{poll:#}");
    assert!(poll["okAt"].is_null(), "it never worked: {poll:#}");
    assert!(
        health(&status, "hubspot", "poll")["problem"].is_null(),
        "the other source still polled: {status:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_url_ending_in_v2_is_reported_as_a_doubled_path_not_an_unreadable_page() {
    let (dir, stage) = staged(Dataset::backlog(3, 3), StageOptions::default()).await;
    let url = stage.sims.salesloft.url();
    edit_config(
        &stage.config_path,
        &format!("api_url = \"{url}\""),
        &format!("api_url = \"{url}/v2\""),
    );

    let out = sync_once(&stage.config_path);
    assert!(!out.status.success());
    let status = status_json(&dir.path().join("kendo-bridge.db"));
    let problem = health(&status, "salesloft", "poll")["problem"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(problem.contains("404"), "{problem}");
    assert!(problem.contains("/v2/v2/"), "{problem}");
    assert!(problem.contains("must not end with `/v2`"), "{problem}");
    assert!(!problem.contains("JSON"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_look_back_stays_where_the_first_failing_poll_put_it() {
    let (dir, stage) = staged(Dataset::backlog(1, 3), StageOptions::default()).await;
    edit_config(
        &stage.config_path,
        "initial_lookback = \"20000days\"",
        "initial_lookback = \"1s\"",
    );
    let key_file = dir.path().join("salesloft-key.secret");
    let key = std::fs::read_to_string(&key_file).expect("the staged key");
    std::fs::write(&key_file, "not-the-key").expect("the secret file is written");
    assert!(!sync_once(&stage.config_path).status.success());

    // A call made right after the first start, then more than the whole
    // look-back passes before the key is fixed.
    let mut call = stage.dataset.salesloft_calls[0].clone();
    call.id = 91_000_001;
    call.created_at = time::OffsetDateTime::now_utc();
    call.updated_at = call.created_at;
    stage.sims.salesloft.add_call(call);
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    std::fs::write(&key_file, key).expect("the key is restored");

    let out = sync_once(&stage.config_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = dir.path().join("kendo-bridge.db");
    let rows = crate::support::sql_count(
        &db,
        "SELECT COUNT(*) FROM ledger WHERE source = 'salesloft' AND source_id = '91000001'",
    );
    assert_eq!(rows, 1, "the call made after the first start was read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_the_calls_sent_per_team_in_prometheus_text() {
    let bridge =
        crate::support::Running::start(Dataset::backlog(3, 3), StageOptions::default()).await;
    crate::support::eventually("the backlog reached Kendo", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    let url = format!("{}/metrics", bridge.stage.bridge_url);
    let answer = crate::support::client()
        .get(&url)
        .send()
        .await
        .expect("the bridge answers");
    assert_eq!(answer.status(), 200);
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = answer.text().await.expect("a body");
    let team = crate::support::TEAM;
    assert!(
        text.contains(&format!(
            "kendo_bridge_calls{{team=\"{team}\",state=\"sent\"}} 3"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("kendo_bridge_queue_depth{{team=\"{team}\"}} 0")),
        "{text}"
    );
    bridge.stop().await;
}

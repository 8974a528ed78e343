//! Calls skipped for a reason the configuration can fix are decided again
//! when the configuration changes: on the next start with no command, or
//! on demand with `kendo-bridge redecide`.

use std::time::Duration;

use crate::support::{Running, eventually, operator, staged};
use kendo_bridge::demo::StageOptions;
use kendo_bridge::store::State;
use kendo_bridge_sim::Dataset;
use kendo_bridge_sim::dataset::Expected;

/// The demo's Aloware part only, with its call from an agent missing from
/// the rep directory.
fn aloware_only() -> (Dataset, String) {
    let mut data = Dataset::demo(7);
    data.salesloft_calls.clear();
    data.salesloft_cdrs.clear();
    data.salesloft_transcripts.clear();
    data.hubspot_calls.clear();
    data.later.clear();
    let id = data
        .cases
        .iter()
        .find(|c| c.expected == Expected::Skip("unknown-rep") && c.what.contains("5099"))
        .map(|c| c.source_id.clone())
        .expect("the demo has an Aloware call from agent 5099");
    (data, id)
}

const NEW_REP: &str =
    "\n[[reps]]\nkey = \"5099\"\nemail = \"robin@yourco.com\"\nname = \"Robin Ng\"\n";

fn no_polling() -> StageOptions {
    StageOptions {
        poll_interval: Duration::ZERO,
        ..StageOptions::default()
    }
}

async fn skipped_as_unknown_rep() -> (tempfile::TempDir, kendo_bridge::demo::Stage, String) {
    let (data, id) = aloware_only();
    let (dir, stage) = staged(data, no_polling()).await;
    let bridge = Running::serve(dir, stage);
    bridge.stage.deliver_aloware().await;
    eventually("the agent's call is skipped as unknown-rep", || {
        bridge.row("aloware", &id).is_some_and(|r| {
            r.state == State::Skipped && r.reason_code.as_deref() == Some("unknown-rep")
        })
    })
    .await;
    let (dir, stage) = bridge.stop_keeping_stage().await;
    (dir, stage, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_added_after_a_skip_reaches_kendo_on_the_next_start_with_no_command() {
    let (dir, stage, id) = skipped_as_unknown_rep().await;
    let config = std::fs::read_to_string(&stage.config_path).expect("the configuration");
    std::fs::write(&stage.config_path, config + NEW_REP).expect("the rep is added");

    let bridge = Running::serve(dir, stage);
    eventually("the call reached Kendo", || {
        bridge
            .row("aloware", &id)
            .is_some_and(|r| r.state == State::Sent)
    })
    .await;
    let row = bridge.row("aloware", &id).expect("the row");
    assert_eq!(row.rep_email.as_deref(), Some("robin@yourco.com"));
    let sent_for_it = bridge
        .stage
        .sims
        .kendo
        .accepted()
        .iter()
        .filter(|c| c.body.to_string().contains("robin@yourco.com"))
        .count();
    assert_eq!(sent_for_it, 1, "Kendo received the call once");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redecide_queues_a_call_whose_rep_was_added_and_reports_the_counts() {
    let (dir, stage, id) = skipped_as_unknown_rep().await;
    let config = std::fs::read_to_string(&stage.config_path).expect("the configuration");
    std::fs::write(&stage.config_path, config + NEW_REP).expect("the rep is added");
    let config = stage
        .config_path
        .to_str()
        .expect("a UTF-8 path")
        .to_string();

    let out = operator(&["redecide", "--reason", "unknown-rep", "--config", &config]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 queued for Kendo"), "{text}");
    let db = dir.path().join("kendo-bridge.db");
    let state: String = rusqlite::Connection::open(&db)
        .expect("the state database")
        .query_row(
            "SELECT state FROM ledger WHERE source = 'aloware' AND source_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .expect("the row");
    assert_eq!(state, "queued");
    drop(stage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_calls_skipped_under_a_minimum_duration_are_sent_once_it_is_lowered() {
    let mut data = Dataset::demo(7);
    data.aloware_events.clear();
    let options = StageOptions {
        min_duration_seconds: 100_000,
        ..StageOptions::default()
    };
    let (dir, stage) = staged(data, options).await;
    let bridge = Running::serve(dir, stage);
    let skipped_for_duration = |bridge: &Running| {
        bridge
            .ledger()
            .iter()
            .filter(|r| r.reason_code.as_deref() == Some("below-minimum-duration"))
            .map(|r| (r.key.source.clone(), r.key.source_id.clone()))
            .collect::<Vec<_>>()
    };
    eventually(
        "Salesloft and HubSpot calls are skipped as too short",
        || {
            let skipped = skipped_for_duration(&bridge);
            skipped.iter().any(|(s, _)| s == "salesloft")
                && skipped.iter().any(|(s, _)| s == "hubspot")
        },
    )
    .await;
    let (dir, mut stage) = bridge.stop_keeping_stage().await;
    let config = std::fs::read_to_string(&stage.config_path).expect("the configuration");
    std::fs::write(
        &stage.config_path,
        config.replace("min_duration_seconds = 100000", "min_duration_seconds = 0"),
    )
    .expect("the rule is lowered");
    stage.options.min_duration_seconds = 0;

    let bridge = Running::serve(dir, stage);
    // The data set's Aloware cases were left out with its events.
    let polled_missing = |bridge: &Running| {
        bridge
            .stage
            .missing()
            .into_iter()
            .filter(|(source, _)| source != "aloware")
            .collect::<Vec<_>>()
    };
    // The recordings still processing finish, the calls in progress end.
    bridge
        .stage
        .dataset
        .apply_later(&bridge.stage.sims)
        .expect("the later changes apply");
    eventually(
        "every polled call the data set expects reached Kendo",
        || polled_missing(&bridge).is_empty(),
    )
    .await;
    assert!(
        skipped_for_duration(&bridge).is_empty(),
        "no call is left skipped for its duration"
    );
    let accepted = bridge.stage.sims.kendo.accepted();
    let mut ids: Vec<String> = accepted
        .iter()
        .map(|c| c.body["metadata"].to_string())
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "no call reached Kendo twice");
    bridge.stop().await;
}

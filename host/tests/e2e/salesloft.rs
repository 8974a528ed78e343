//! Salesloft end to end: directions joined from call data records read as
//! pages, a call waiting for its record, transcripts that fail without
//! stopping polling, a poison record among good ones, an unreadable
//! optional field, and the team-wide rate budget shared with others.

use crate::support::{Running, eventually, operator, staged};
use kendo_bridge::demo::{Stage, StageOptions};
use kendo_bridge::store::State;
use kendo_bridge_core::ledger;
use kendo_bridge_sim::Dataset;
use kendo_bridge_sim::dataset::Change;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The guide's example call (Jamie Rivera, outbound, Connected).
const GUIDE_CALL: &str = "98765432";

/// The demo data set's Salesloft part only.
fn salesloft_only() -> Dataset {
    let mut data = Dataset::demo(7);
    data.hubspot_owners.clear();
    data.hubspot_calls.clear();
    data.hubspot_transcripts.clear();
    data.aloware_events.clear();
    data.later.clear();
    data
}

/// Salesloft calls the data set expects in Kendo without the later changes
/// (which these tests do not apply).
fn expected_now(stage: &Stage) -> Vec<String> {
    let changing: Vec<String> = Dataset::demo(7)
        .later
        .iter()
        .filter_map(|c| match c {
            Change::SalesloftRecordingFinishes { call_id, .. } => Some(call_id.to_string()),
            Change::HubspotUpdate { .. } => None,
        })
        .collect();
    stage
        .missing()
        .into_iter()
        .filter(|(source, id)| source == "salesloft" && !changing.contains(id))
        .map(|(_, id)| id)
        .collect()
}

fn kendo_body(bridge: &Running, id: &str) -> Option<Value> {
    bridge
        .stage
        .sims
        .kendo
        .accepted()
        .into_iter()
        .find(|c| c.source() == Some("salesloft") && c.source_call_id().as_deref() == Some(id))
        .map(|c| c.body)
}

fn health_problem(bridge: &Running, topic: &str) -> Option<String> {
    bridge
        .store
        .run_here(|s| Ok(ledger::health::all(s.database())?))
        .expect("health reads")
        .into_iter()
        .find(|h| h.source == "salesloft" && h.topic == topic)
        .and_then(|h| h.problem)
}

/// Sets a `[salesloft]` setting in the staged configuration.
fn configure(stage: &Stage, setting: &str) {
    let config = std::fs::read_to_string(&stage.config_path).expect("the staged configuration");
    let config = config.replacen("[salesloft]\n", &format!("[salesloft]\n{setting}\n"), 1);
    std::fs::write(&stage.config_path, config).expect("the configuration is written");
}

/// The data set without the guide call's call data record.
fn without_guide_record() -> (Dataset, kendo_bridge_sim::salesloft::CallDataRecord) {
    let mut data = salesloft_only();
    let at = data
        .salesloft_cdrs
        .iter()
        .position(|c| c.call_id.to_string() == GUIDE_CALL)
        .expect("the guide call has a call data record");
    let record = data.salesloft_cdrs.remove(at);
    (data, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_takes_its_direction_from_its_own_call_data_record_read_as_pages() {
    let data = salesloft_only();
    let directions: HashMap<String, String> = data
        .salesloft_cdrs
        .iter()
        .map(|c| (c.call_id.to_string(), c.direction.clone()))
        .collect();
    let (dir, stage) = staged(data, StageOptions::default()).await;
    let expected = expected_now(&stage);
    assert!(expected.len() > 3);
    let bridge = Running::serve(dir, stage);
    eventually("every Salesloft call reached Kendo", || {
        expected.iter().all(|id| kendo_body(&bridge, id).is_some())
    })
    .await;
    let mut inbound = 0;
    for id in &expected {
        let body = kendo_body(&bridge, id).unwrap_or_default();
        let direction = &directions[id];
        assert_eq!(
            body["metadata"]["salesloftDirection"], *direction,
            "call {id}: {body}"
        );
        inbound += usize::from(direction == "inbound");
    }
    assert!(inbound > 0, "the data set has inbound calls too");

    let requests = bridge.stage.sims.salesloft.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.query.as_deref().unwrap_or_default().contains("call_id")),
        "no request relies on a call_id filter"
    );
    let records = requests
        .iter()
        .filter(|r| r.path == "/v2/call_data_records")
        .count();
    let lists = requests
        .iter()
        .filter(|r| r.path == "/v2/activities/calls")
        .count();
    assert!(
        records <= lists + 1,
        "{records} call data record pages for {lists} call pages: read as pages, not per call"
    );
    assert_eq!(health_problem(&bridge, "call_data_records"), None);
    assert_eq!(health_problem(&bridge, "transcripts"), None);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_data_record_arriving_later_gives_the_waiting_call_its_direction() {
    let (data, mut record) = without_guide_record();
    let newest = data
        .salesloft_cdrs
        .iter()
        .map(|c| c.updated_at)
        .max()
        .expect("other records");
    let (dir, stage) = staged(data, StageOptions::default()).await;
    configure(&stage, "direction_wait = \"10m\"");
    let bridge = Running::serve(dir, stage);
    eventually("the guide call waits for its call data record", || {
        bridge
            .row("salesloft", GUIDE_CALL)
            .is_some_and(|r| r.state == State::Waiting)
    })
    .await;
    record.direction = "inbound".into();
    record.updated_at = newest + time::Duration::minutes(1);
    bridge.stage.sims.salesloft.add_call_data_record(record);
    eventually("the guide call reached Kendo with its record", || {
        kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let body = kendo_body(&bridge, GUIDE_CALL).unwrap_or_default();
    assert_eq!(body["callTitle"], "Inbound - Connected", "{body}");
    assert_eq!(body["metadata"]["salesloftDirection"], "inbound", "{body}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transcript_sweep_never_stops_call_polling() {
    let data = salesloft_only();
    // A call with no recording has only its transcript to offer.
    let transcribed: Vec<String> = data
        .salesloft_transcripts
        .iter()
        .map(|t| t.call_id.to_string())
        .collect();
    let (dir, stage) = staged(data, StageOptions::default()).await;
    // A key without the transcript scope (or a team without Conversations).
    stage.sims.salesloft.fail_path("/v2/transcriptions", 403);
    let expected: Vec<String> = expected_now(&stage)
        .into_iter()
        .filter(|id| !transcribed.contains(id))
        .collect();
    assert!(expected.len() > 3);
    let bridge = Running::serve(dir, stage);
    eventually("every Salesloft call reached Kendo", || {
        expected.iter().all(|id| kendo_body(&bridge, id).is_some())
    })
    .await;
    let problem = health_problem(&bridge, "transcripts").expect("a transcripts problem");
    assert!(problem.contains("403"), "{problem}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_between_good_ones_costs_that_record_only() {
    let (dir, stage) = staged(salesloft_only(), StageOptions::default()).await;
    let sim = &stage.sims.salesloft;
    let id: u64 = GUIDE_CALL.parse().expect("a numeric id");
    let mut poison = sim.call_json(id).expect("the guide call");
    poison["user"] = json!("Jamie Rivera");
    sim.poison_call(id, poison);
    let others: Vec<String> = expected_now(&stage)
        .into_iter()
        .filter(|c| c != GUIDE_CALL)
        .collect();
    assert!(!others.is_empty());
    let bridge = Running::serve(dir, stage);
    eventually("every other Salesloft call reached Kendo", || {
        others.iter().all(|id| kendo_body(&bridge, id).is_some())
    })
    .await;
    eventually("the poison record is failed", || {
        bridge
            .row("salesloft", GUIDE_CALL)
            .is_some_and(|r| r.state == State::Failed)
    })
    .await;
    let row = bridge.row("salesloft", GUIDE_CALL).expect("a ledger row");
    assert_eq!(row.reason_code.as_deref(), Some("unreadable"));
    let reason = row.reason.clone().unwrap_or_default();
    assert!(reason.contains(".user"), "{row:?}");
    assert!(kendo_body(&bridge, GUIDE_CALL).is_none());

    let db = bridge.db();
    let db = db.to_str().expect("a UTF-8 path");
    let listed = operator(&["deliveries", "--db", db, "--state", "failed", "--json"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(GUIDE_CALL), "{listed}");
    assert!(listed.contains("user"), "{listed}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_duration_is_left_out_and_the_call_is_still_sent() {
    let (dir, stage) = staged(salesloft_only(), StageOptions::default()).await;
    let sim = &stage.sims.salesloft;
    let id: u64 = GUIDE_CALL.parse().expect("a numeric id");
    let mut odd = sim.call_json(id).expect("the guide call");
    odd["duration"] = json!("about five minutes");
    sim.poison_call(id, odd);
    let bridge = Running::serve(dir, stage);
    eventually("the guide call reached Kendo", || {
        kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let body = kendo_body(&bridge, GUIDE_CALL).unwrap_or_default();
    assert!(body.get("duration").is_none(), "{body}");
    assert_eq!(body["callTitle"], "Outbound - Connected", "{body}");
    let row = bridge.row("salesloft", GUIDE_CALL).expect("the ledger row");
    let warnings = row.warnings.unwrap_or_default();
    assert!(
        warnings.contains("duration"),
        "the call carries the warning: {warnings:?}"
    );
    bridge.stop().await;
}

/// Salesloft calls in the ledger, whatever their state.
fn salesloft_rows(bridge: &Running) -> usize {
    bridge
        .ledger()
        .iter()
        .filter(|r| r.key.source == "salesloft")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_over_a_large_backlog_spends_at_most_its_share_of_the_team_budget() {
    // x10: a simulated minute is 6 s, so the share is kept over several.
    let options = StageOptions {
        time_scale: 10.0,
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(750, 21), options).await;
    // 3% of 600: 18 points per minute, against a first run that needs
    // about 25 requests (pages of calls and of call data records, users).
    configure(&stage, "budget_share = 0.03");
    let bridge = Running::serve(dir, stage);
    eventually("every backlog call is in the ledger", || {
        salesloft_rows(&bridge) >= 750
    })
    .await;
    let sim = &bridge.stage.sims.salesloft;
    let busiest = sim.max_points_in_any_window();
    assert!(
        busiest <= 18,
        "{busiest} points in one minute of the team's budget: over the share"
    );
    assert_eq!(sim.rate_limited(), 0, "no 429 from Salesloft");
    let requests = sim.requests().len();
    assert!(
        requests < 750,
        "{requests} requests for 750 calls: not one per call"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_other_integrations_have_spent_the_team_budget_the_bridge_waits_instead_of_drawing_429s()
 {
    let (dir, stage) = staged(salesloft_only(), StageOptions::default()).await;
    let expected = expected_now(&stage);
    // Other integrations of the team spent almost all of this minute.
    assert!(stage.sims.salesloft.spend_points(590));
    let bridge = Running::serve(dir, stage);
    eventually("every Salesloft call reached Kendo", || {
        expected.iter().all(|id| kendo_body(&bridge, id).is_some())
    })
    .await;
    assert_eq!(bridge.stage.sims.salesloft.rate_limited(), 0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_id_cannot_be_read_is_failed_under_a_synthetic_id() {
    let (dir, stage) = staged(salesloft_only(), StageOptions::default()).await;
    let sim = &stage.sims.salesloft;
    let id: u64 = GUIDE_CALL.parse().expect("a numeric id");
    let mut poison = sim.call_json(id).expect("the guide call");
    poison["id"] = json!({"value": id});
    sim.poison_call(id, poison);
    let others: Vec<String> = expected_now(&stage)
        .into_iter()
        .filter(|c| c != GUIDE_CALL)
        .collect();
    let bridge = Running::serve(dir, stage);
    eventually("every other Salesloft call reached Kendo", || {
        others.iter().all(|id| kendo_body(&bridge, id).is_some())
    })
    .await;
    let failed: Vec<_> = bridge
        .ledger()
        .into_iter()
        .filter(|r| r.key.source == "salesloft" && r.state == State::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].key.source_id.starts_with("unreadable:"),
        "{failed:?}"
    );
    assert!(
        failed[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains(".id"),
        "{failed:?}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_polling_a_webhook_call_is_sent_at_once_without_waiting_for_a_record() {
    let options = StageOptions {
        poll_interval: std::time::Duration::ZERO,
        ..StageOptions::default()
    };
    let bridge = Running::start(salesloft_only(), options).await;
    let id: u64 = GUIDE_CALL.parse().expect("a numeric id");
    let status = bridge
        .stage
        .sims
        .salesloft
        .send_webhook(
            &bridge.stage.webhook_url("salesloft"),
            kendo_bridge::demo::SALESLOFT_CALLBACK_TOKEN,
            "call_created",
            id,
        )
        .await;
    assert_eq!(status.ok(), Some(200));
    eventually("the guide call reached Kendo", || {
        kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let body = kendo_body(&bridge, GUIDE_CALL).unwrap_or_default();
    // Only polling reads call data records: no direction, and no wait.
    assert_eq!(body["callTitle"], "Connected", "{body}");
    assert_eq!(body["metadata"]["syncMethod"], "webhook", "{body}");
    bridge.stop().await;
}

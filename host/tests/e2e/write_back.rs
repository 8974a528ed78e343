//! HubSpot write-back end to end: Kendo's answers (the 201's `callId`, the
//! score webhook) end as properties of the HubSpot call, created on first
//! use; a failing HubSpot never holds up a Kendo send; a refused scope is
//! shown in `status` with the scope to add.

use std::time::Duration;

use crate::support::{Running, eventually, staged, status_json};
use kendo_bridge::demo::{KENDO_WEBHOOK_SECRET, StageOptions};
use kendo_bridge_core::ledger;
use kendo_bridge_sim::Dataset;
use kendo_bridge_sim::dataset::Change;
use kendo_bridge_sim::kendo::AcceptedCall;

/// The guide's example call.
const GUIDE_CALL: u64 = 987_654_321;

/// The demo data set's HubSpot part only.
fn hubspot_only() -> Dataset {
    let mut data = Dataset::demo(7);
    data.salesloft_calls.clear();
    data.salesloft_cdrs.clear();
    data.salesloft_transcripts.clear();
    data.aloware_events.clear();
    // Kept (never applied here) to know which calls wait for a change.
    data.later
        .retain(|c| matches!(c, Change::HubspotUpdate { .. }));
    data
}

/// Every HubSpot call the data set expects sent has reached Kendo, but for
/// those that become sendable only after a later change (not applied here).
fn hubspot_calls_all_sent(bridge: &Running) -> bool {
    let later: Vec<String> = bridge
        .stage
        .dataset
        .later
        .iter()
        .filter_map(|c| match c {
            Change::HubspotUpdate { call_id, .. } => Some(call_id.to_string()),
            _ => None,
        })
        .collect();
    bridge
        .stage
        .missing()
        .iter()
        .all(|(source, id)| source != "hubspot" || later.contains(id))
}

fn writing_back() -> StageOptions {
    StageOptions {
        hubspot_write_back: true,
        ..StageOptions::default()
    }
}

fn accepted(bridge: &Running, hubspot_id: u64) -> Option<AcceptedCall> {
    let id = hubspot_id.to_string();
    bridge
        .stage
        .sims
        .kendo
        .accepted()
        .into_iter()
        .find(|c| c.source() == Some("hubspot") && c.source_call_id().as_deref() == Some(&id))
}

/// A property of the simulated HubSpot call, as `GET` by id reads it.
fn property(bridge: &Running, id: u64, name: &str) -> Option<String> {
    bridge
        .stage
        .sims
        .hubspot
        .call(id)
        .and_then(|c| c.properties.get(name).cloned())
}

/// Kendo scores `call` and posts its signed `call.uploaded` webhook.
async fn score(bridge: &Running, call: &AcceptedCall, ai_score: u32) {
    let kendo = &bridge.stage.sims.kendo;
    let event = kendo.call_uploaded_event(call, ai_score);
    let delivery = kendo
        .send_webhook(
            &bridge.stage.webhook_url("kendo"),
            KENDO_WEBHOOK_SECRET,
            &event,
        )
        .await;
    assert!(delivery.delivered, "{:?}", delivery.attempts);
}

/// Requests the simulated HubSpot answered for `method path`, with their
/// statuses.
fn answered(bridge: &Running, method: &str, path: &str) -> Vec<u16> {
    bridge
        .stage
        .sims
        .hubspot
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .map(|r| r.status)
        .collect()
}

async fn guide_call_sent(bridge: &Running) -> AcceptedCall {
    eventually("the guide's call reached Kendo", || {
        accepted(bridge, GUIDE_CALL).is_some()
    })
    .await;
    accepted(bridge, GUIDE_CALL).expect("accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kendo_sends_go_on_while_hubspot_fails_and_the_write_back_arrives_after_it_recovers() {
    let (dir, stage) = staged(hubspot_only(), writing_back()).await;
    stage
        .sims
        .hubspot
        .fail_patches(503, Duration::from_secs(3_600));
    let bridge = Running::serve(dir, stage);
    let patch = format!("/crm/v3/objects/calls/{GUIDE_CALL}");
    eventually(
        "every HubSpot call reached Kendo while HubSpot refused the write-backs",
        || hubspot_calls_all_sent(&bridge) && answered(&bridge, "PATCH", &patch).contains(&503),
    )
    .await;
    assert_eq!(
        property(&bridge, GUIDE_CALL, "kendo_sent"),
        None,
        "nothing was written meanwhile"
    );
    let kendo = bridge.stage.sims.kendo.clone();
    assert!(
        kendo.max_requests_in_any_window(crate::support::KEY) <= 30,
        "paced as usual"
    );
    assert_eq!(kendo.stats().rate_limited_429, 0);
    assert!(kendo.duplicates().is_empty());

    bridge.stage.sims.hubspot.heal_patches();
    let call = accepted(&bridge, GUIDE_CALL).expect("accepted");
    eventually("the write-back arrived once HubSpot recovered", || {
        property(&bridge, GUIDE_CALL, "kendo_call_id").as_deref() == Some(call.call_id.as_str())
    })
    .await;
    let statuses = answered(&bridge, "PATCH", &patch);
    assert_eq!(
        statuses.last(),
        Some(&200),
        "failed first, then written: {statuses:?}"
    );
    let row = bridge
        .store
        .run_here(|s| {
            Ok(ledger::write_back::state(
                s.database(),
                "hubspot",
                &GUIDE_CALL.to_string(),
                "sent",
            )?)
        })
        .expect("the write-back reads");
    assert!(
        matches!(row, Some((kendo_bridge::store::WriteBackState::Done, n, None)) if n >= 2),
        "{row:?}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kendo_properties_are_created_once_when_missing_and_not_again_after_a_restart() {
    let bridge = Running::start(hubspot_only(), writing_back()).await;
    let first = guide_call_sent(&bridge).await;
    eventually("the first write-back landed", || {
        property(&bridge, GUIDE_CALL, "kendo_sent").is_some()
    })
    .await;
    let (groups, properties) = bridge.stage.sims.hubspot.created_properties();
    assert_eq!(groups, vec!["kendo".to_string()]);
    assert_eq!(
        properties,
        vec![
            "kendo_ai_score".to_string(),
            "kendo_call_id".to_string(),
            "kendo_scored_at".to_string(),
            "kendo_sent".to_string(),
        ]
    );
    let creates = |b: &Running| {
        (
            answered(b, "POST", "/crm/v3/properties/calls/groups").len(),
            answered(b, "POST", "/crm/v3/properties/calls").len(),
        )
    };
    assert_eq!(creates(&bridge), (1, 4), "each made once");

    let (dir, mut stage) = bridge.stop_keeping_stage().await;
    if let Some(addr) = stage.listener.as_ref().and_then(|l| l.local_addr().ok()) {
        // Kendo's webhook goes to where the bridge listens now.
        stage.bridge_url = format!("http://{addr}");
    }
    let again = Running::serve(dir, stage);
    score(&again, &first, 64).await;
    eventually("the score was written after the restart", || {
        property(&again, GUIDE_CALL, "kendo_ai_score").as_deref() == Some("64")
    })
    .await;
    assert_eq!(
        creates(&again),
        (1, 4),
        "found by reading, not created again"
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_on_property_creation_shows_in_status_with_the_scope_to_add() {
    let (dir, stage) = staged(hubspot_only(), writing_back()).await;
    stage.sims.hubspot.refuse_property_creation(true);
    let bridge = Running::serve(dir, stage);
    let problem = || {
        bridge
            .store
            .run_here(|s| Ok(ledger::health::all(s.database())?))
            .expect("health reads")
            .into_iter()
            .find(|h| h.source == "hubspot" && h.topic == "write-back")
            .and_then(|h| h.problem)
    };
    eventually("the refused scope is a write-back problem", || {
        problem().is_some()
    })
    .await;
    eventually("every HubSpot call still reached Kendo", || {
        hubspot_calls_all_sent(&bridge)
    })
    .await;

    let status = status_json(&bridge.db());
    let source = status["sources"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["source"] == "hubspot" && s["topic"] == "write-back")
        })
        .cloned()
        .unwrap_or_default();
    let text = source["problem"].as_str().unwrap_or_default();
    assert!(text.contains("403"), "{text}");
    assert!(text.contains("crm.schemas.contacts.write"), "{text}");
    let write_backs = &status["writeBacks"][0];
    assert_eq!(write_backs["source"], "hubspot", "{status:#}");
    assert!(
        write_backs["pending"].as_u64().unwrap_or(0) >= 1,
        "{status:#}"
    );
    assert_eq!(
        write_backs["dead"], 0,
        "a refused scope kills none: {status:#}"
    );
    assert!(
        write_backs["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("crm.schemas.contacts.write"),
        "{status:#}"
    );

    bridge.stage.sims.hubspot.refuse_property_creation(false);
    eventually("the write-backs continue once the scope is granted", || {
        property(&bridge, GUIDE_CALL, "kendo_sent").as_deref() == Some("true")
    })
    .await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sync_run_sends_the_calls_then_writes_back_to_hubspot() {
    let (_dir, stage) = staged(hubspot_only(), writing_back()).await;
    let engine = stage
        .engine(kendo_bridge::plugin::Plugin::embedded().expect("the embedded plugin loads"))
        .expect("the engine opens");
    engine
        .sync_once(Duration::from_secs(5), |_| {})
        .await
        .expect("the run");
    let call = stage
        .sims
        .kendo
        .accepted()
        .into_iter()
        .find(|c| c.source_call_id() == Some(GUIDE_CALL.to_string()))
        .expect("the guide's call reached Kendo");
    let marked = stage
        .sims
        .hubspot
        .call(GUIDE_CALL)
        .map(|c| c.properties)
        .unwrap_or_default();
    assert_eq!(marked.get("kendo_sent").map(String::as_str), Some("true"));
    assert_eq!(marked.get("kendo_call_id"), Some(&call.call_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reads_the_kendo_properties_and_names_the_scopes_writing_needs() {
    let (_dir, stage) = staged(hubspot_only(), writing_back()).await;
    let out = crate::support::kendo_bridge()
        .args(["doctor", "--config"])
        .arg(&stage.config_path)
        .output()
        .expect("kendo-bridge starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ok    hubspot write-back properties"))
        .unwrap_or_default();
    assert!(line.contains("not yet in HubSpot"), "{text}");
    assert!(line.contains("crm.schemas.contacts.write"), "{line}");
    assert!(line.contains("crm.objects.contacts.write"), "{line}");
    assert_eq!(
        stage.sims.hubspot.created_properties(),
        (Vec::new(), Vec::new()),
        "doctor creates nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_deleted_in_hubspot_is_created_again_before_the_next_write() {
    let bridge = Running::start(hubspot_only(), writing_back()).await;
    let call = guide_call_sent(&bridge).await;
    eventually("the first write-back landed", || {
        property(&bridge, GUIDE_CALL, "kendo_sent").is_some()
    })
    .await;
    bridge.stage.sims.hubspot.delete_property("kendo_ai_score");

    score(&bridge, &call, 71).await;
    eventually("the score was written once the property was back", || {
        property(&bridge, GUIDE_CALL, "kendo_ai_score").as_deref() == Some("71")
    })
    .await;
    let patch = format!("/crm/v3/objects/calls/{GUIDE_CALL}");
    assert!(
        answered(&bridge, "PATCH", &patch).contains(&400),
        "the first try found it missing"
    );
    assert_eq!(
        answered(&bridge, "POST", "/crm/v3/properties/calls")
            .iter()
            .filter(|s| **s == 201)
            .count(),
        5,
        "four at first, then the deleted one again"
    );
    bridge.stop().await;
}

/// `status`'s text for the write-back topic of HubSpot, if it has a problem.
fn write_back_problem(bridge: &Running) -> Option<String> {
    let status = status_json(&bridge.db());
    status["sources"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["source"] == "hubspot" && s["topic"] == "write-back")
        })
        .and_then(|s| s["problem"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_property_made_by_hand_as_text_fails_doctor_naming_it() {
    let (_dir, stage) = staged(hubspot_only(), writing_back()).await;
    stage
        .sims
        .hubspot
        .define_property("kendo", "kendo_scored_at", "string", "text");
    let out = crate::support::kendo_bridge()
        .args(["doctor", "--config"])
        .arg(&stage.config_path)
        .output()
        .expect("kendo-bridge starts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL  hubspot write-back properties"))
        .unwrap_or_default();
    assert!(line.contains("`kendo_scored_at`"), "{text}");
    assert!(line.contains("type `string`"), "{line}");
    assert!(line.contains("`datetime`"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_property_made_by_hand_as_text_holds_the_write_backs_and_shows_in_status() {
    let (dir, stage) = staged(hubspot_only(), writing_back()).await;
    stage
        .sims
        .hubspot
        .define_property("kendo", "kendo_scored_at", "string", "text");
    let bridge = Running::serve(dir, stage);
    eventually("the property's type is a write-back problem", || {
        write_back_problem(&bridge).is_some_and(|p| p.contains("`kendo_scored_at`"))
    })
    .await;
    let problem = write_back_problem(&bridge).unwrap_or_default();
    assert!(problem.contains("type `string`"), "{problem}");
    assert!(problem.contains("delete"), "says what to do: {problem}");
    assert_eq!(
        property(&bridge, GUIDE_CALL, "kendo_sent"),
        None,
        "nothing is written meanwhile"
    );
    bridge.stop().await;
}

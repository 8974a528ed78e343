//! HubSpot end to end: associations read per page, departed reps, a
//! dispositions list that cannot be read, a search result that cannot be
//! read, and webhooks signed v1, v2 or v3 under one configuration.

use std::time::Duration;

use crate::support::{Running, client, eventually, staged};
use kendo_bridge::demo::{HUBSPOT_CLIENT_SECRET, StageOptions};
use kendo_bridge::store::State;
use kendo_bridge_core::ledger;
use kendo_bridge_sim::Dataset;
use kendo_bridge_sim::dataset::Change;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The guide's example call: contact 501, deal 123456.
const GUIDE_CALL: &str = "987654321";

/// The demo data set's HubSpot part only.
fn hubspot_only() -> Dataset {
    let mut data = Dataset::demo(7);
    data.salesloft_calls.clear();
    data.salesloft_cdrs.clear();
    data.salesloft_transcripts.clear();
    data.aloware_events.clear();
    data.later.clear();
    data
}

fn kendo_body(bridge: &Running, hubspot_id: &str) -> Option<Value> {
    bridge
        .stage
        .sims
        .kendo
        .accepted()
        .into_iter()
        .find(|c| {
            c.source() == Some("hubspot") && c.source_call_id().as_deref() == Some(hubspot_id)
        })
        .map(|c| c.body)
}

fn health_problem(bridge: &Running, topic: &str) -> Option<String> {
    bridge
        .store
        .run_here(|s| Ok(ledger::health::all(s.database())?))
        .expect("health reads")
        .into_iter()
        .find(|h| h.source == "hubspot" && h.topic == topic)
        .and_then(|h| h.problem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_calls_carry_contact_and_deal_ids_read_in_two_batch_requests_per_page() {
    let bridge = Running::start(hubspot_only(), StageOptions::default()).await;
    eventually("the guide's call reached Kendo", || {
        kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let body = kendo_body(&bridge, GUIDE_CALL).unwrap_or_default();
    assert_eq!(body["metadata"]["hubspotContactIds"], "501", "{body}");
    assert_eq!(body["metadata"]["hubspotDealIds"], "123456", "{body}");
    assert_eq!(body["metadata"]["syncMethod"], "polling", "{body}");

    let requests = bridge.stage.sims.hubspot.requests();
    let searches = requests.iter().filter(|r| r.search).count();
    let batches = requests
        .iter()
        .filter(|r| r.path.starts_with("/crm/v4/associations/calls/"))
        .count();
    assert!(batches >= 2, "the associations were read in batches");
    assert!(
        batches <= 2 * searches,
        "{batches} batch reads for {searches} search pages: at most two per page"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.path.starts_with("/crm/v3/objects/calls/") && r.method == "GET"),
        "no call was fetched one by one"
    );
    assert_eq!(bridge.stage.sims.hubspot.rate_limited(), 0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_reps_owner_record_is_found_among_archived_owners() {
    let mut data = hubspot_only();
    let owner_id = data
        .hubspot_calls
        .iter()
        .find(|c| c.id.to_string() == GUIDE_CALL)
        .and_then(|c| c.properties.get("hubspot_owner_id").cloned())
        .unwrap_or_default();
    for owner in &mut data.hubspot_owners {
        if owner.id.to_string() == owner_id {
            owner.archived = true;
        }
    }
    let bridge = Running::start(data, StageOptions::default()).await;
    eventually("the departed rep's call reached Kendo", || {
        kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let owner_path = format!("/crm/v3/owners/{owner_id}");
    let lookups: Vec<(Option<String>, u16)> = bridge
        .stage
        .sims
        .hubspot
        .requests()
        .into_iter()
        .filter(|r| r.path == owner_path)
        .map(|r| (r.query, r.status))
        .collect();
    assert_eq!(
        lookups.first(),
        Some(&(None, 404)),
        "the plain lookup misses a deactivated owner: {lookups:?}"
    );
    assert!(
        lookups.contains(&(Some("archived=true".to_owned()), 200)),
        "{lookups:?}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispositions_that_cannot_be_read_are_a_health_problem_and_the_call_is_still_sent() {
    let (dir, stage) = staged(hubspot_only(), StageOptions::default()).await;
    stage.sims.hubspot.fail_dispositions(true);
    let bridge = Running::serve(dir, stage);
    eventually("the guide's call reached Kendo", || {
        kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let problem = health_problem(&bridge, "dispositions").unwrap_or_default();
    assert!(problem.contains("403"), "{problem}");
    let body = kendo_body(&bridge, GUIDE_CALL).unwrap_or_default();
    assert_eq!(
        body["metadata"]["hubspotDisposition"], "Connected",
        "HubSpot's default labels are known without the list: {body}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_result_that_cannot_be_read_costs_that_record_only() {
    let (dir, stage) = staged(hubspot_only(), StageOptions::default()).await;
    stage.sims.hubspot.poison_search_result(
        987_654_321,
        json!({"id": GUIDE_CALL, "properties": "not an object"}),
    );
    // Calls that change later in the demo day are sent only after those
    // changes, which this data set leaves out.
    let changing: Vec<String> = Dataset::demo(7)
        .later
        .iter()
        .filter_map(|c| match c {
            Change::HubspotUpdate { call_id, .. } => Some(call_id.to_string()),
            Change::SalesloftRecordingFinishes { .. } => None,
        })
        .collect();
    let expected_others: Vec<String> = stage
        .missing()
        .into_iter()
        .filter(|(source, id)| source == "hubspot" && id != GUIDE_CALL && !changing.contains(id))
        .map(|(_, id)| id)
        .collect();
    assert!(!expected_others.is_empty());
    let bridge = Running::serve(dir, stage);
    eventually("every other HubSpot call reached Kendo", || {
        expected_others
            .iter()
            .all(|id| kendo_body(&bridge, id).is_some())
    })
    .await;
    let row = bridge.row("hubspot", GUIDE_CALL).expect("a ledger row");
    assert_eq!(row.state, State::Failed);
    assert_eq!(row.reason_code.as_deref(), Some("unreadable"));
    assert!(
        row.reason
            .as_deref()
            .unwrap_or_default()
            .contains("results["),
        "{row:?}"
    );
    assert!(kendo_body(&bridge, GUIDE_CALL).is_none());
    bridge.stop().await;
}

/// A call's search result as HubSpot's schema allows it (every property a
/// string or absent), with `odd` properties replaced (None: left out) and
/// top-level fields replaced.
fn odd_result(
    bridge_stage: &kendo_bridge::demo::Stage,
    id: &str,
    odd: &[(&str, Option<&str>)],
    top: &[(&str, &str)],
) -> Value {
    let numeric: u64 = id.parse().expect("a numeric id");
    let call = bridge_stage
        .sims
        .hubspot
        .call(numeric)
        .expect("the call exists");
    let mut properties: serde_json::Map<String, Value> = call
        .properties
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    for (k, v) in odd {
        match v {
            Some(v) => properties.insert((*k).into(), Value::String((*v).into())),
            None => properties.remove(*k),
        };
    }
    let created = call
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a date");
    let mut result = json!({
        "id": id, "properties": properties,
        "createdAt": created, "updatedAt": created, "archived": false,
    });
    for (k, v) in top {
        result[*k] = Value::String((*v).into());
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_valid_odd_values_cost_at_most_their_own_record_and_the_cursor_moves_on() {
    let (dir, stage) = staged(hubspot_only(), StageOptions::default()).await;
    // Valid by HubSpot's schema, none of it what the bridge hopes for.
    stage.sims.hubspot.search_total(Some(-7));
    stage.sims.hubspot.poison_search_result(
        987_654_321,
        odd_result(
            &stage,
            GUIDE_CALL,
            &[
                ("hs_timestamp", Some("last Tuesday")),
                ("hs_call_has_transcript", Some("maybe")),
            ],
            &[],
        ),
    );
    let changing: Vec<String> = Dataset::demo(7)
        .later
        .iter()
        .filter_map(|c| match c {
            Change::HubspotUpdate { call_id, .. } => Some(call_id.to_string()),
            Change::SalesloftRecordingFinishes { .. } => None,
        })
        .collect();
    let others: Vec<String> = stage
        .missing()
        .into_iter()
        .filter(|(source, id)| source == "hubspot" && id != GUIDE_CALL && !changing.contains(id))
        .map(|(_, id)| id)
        .collect();
    // One call without hs_lastmodifieddate whose updatedAt is before 1970.
    let undated = others.first().cloned().expect("another HubSpot call");
    let numeric: u64 = undated.parse().expect("a numeric id");
    stage.sims.hubspot.poison_search_result(
        numeric,
        odd_result(
            &stage,
            &undated,
            &[("hs_lastmodifieddate", None)],
            &[("updatedAt", "1969-07-20T20:17:40Z")],
        ),
    );
    let bridge = Running::serve(dir, stage);
    eventually("every readable HubSpot call reached Kendo", || {
        others
            .iter()
            .skip(1)
            .all(|id| kendo_body(&bridge, id).is_some())
            && kendo_body(&bridge, GUIDE_CALL).is_some()
    })
    .await;
    let body = kendo_body(&bridge, GUIDE_CALL).unwrap_or_default();
    assert!(
        body["callDate"]
            .as_str()
            .is_some_and(|d| d.starts_with("20")),
        "the date came from createdAt: {body}"
    );
    let row = bridge.row("hubspot", GUIDE_CALL).expect("a ledger row");
    assert_eq!(row.state, State::Sent, "{row:?}");
    let failed: Vec<String> = bridge
        .ledger()
        .into_iter()
        .filter(|r| r.key.source == "hubspot" && r.state == State::Failed)
        .map(|r| format!("{} {}", r.key.source_id, r.reason.unwrap_or_default()))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].starts_with(&undated), "{failed:?}");
    assert!(
        failed[0].contains("updatedAt"),
        "names the field read: {failed:?}"
    );
    bridge.stop().await;
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part);
    }
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn webhooks_only() -> Running {
    let options = StageOptions {
        poll_interval: Duration::ZERO,
        ..StageOptions::default()
    };
    Running::start(hubspot_only(), options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_workflow_delivery_signed_v2_is_answered_recorded_and_not_fetched_as_a_call() {
    let bridge = webhooks_only().await;
    let url = bridge.stage.webhook_url("hubspot");
    let body = json!({
        "hs_object_id": "501", "email": "alex.morgan@acme.example",
        "firstname": "Alex", "lastname": "Morgan",
    })
    .to_string();
    let signature = sha256_hex(&[
        HUBSPOT_CLIENT_SECRET.as_bytes(),
        b"POST",
        url.as_bytes(),
        body.as_bytes(),
    ]);
    let answer = client()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-HubSpot-Signature", signature)
        .header("X-HubSpot-Signature-Version", "v2")
        .body(body)
        .send()
        .await
        .expect("the bridge answers");
    assert_eq!(answer.status().as_u16(), 200);
    eventually("the delivery is recorded as not a call", || {
        health_problem(&bridge, "webhook").is_some_and(|p| p.contains("not a call"))
    })
    .await;
    assert!(
        !bridge
            .stage
            .sims
            .hubspot
            .requests()
            .iter()
            .any(|r| r.path == "/crm/v3/objects/calls/501"),
        "the contact id was not fetched as a call"
    );
    assert!(bridge.row("hubspot", "501").is_none());
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_without_any_hubspot_signature_header_is_refused() {
    let bridge = webhooks_only().await;
    let answer = client()
        .post(bridge.stage.webhook_url("hubspot"))
        .header("Content-Type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("the bridge answers");
    assert_eq!(answer.status().as_u16(), 401);
    bridge.stop().await;
}

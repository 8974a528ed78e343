//! The simulated HubSpot CRM v3 Calls API, tested over HTTP.

mod common;

use std::time::Duration;

use base64::Engine;
use kendo_bridge_sim::hubspot::{
    self, HubspotCall, HubspotOptions, HubspotOwner, HubspotSim, Utterance,
};
use serde_json::{Value, json};
use time::Duration as TimeDuration;
use time::macros::datetime;

use common::{Receiver, client, hmac_sha256};

const TOKEN: &str = "pat-na1-test";

async fn hubspot(time_scale: f64) -> HubspotSim {
    HubspotSim::start(HubspotOptions {
        time_scale,
        tokens: vec![TOKEN.into()],
        ..HubspotOptions::default()
    })
    .await
    .unwrap()
}

/// `n` completed calls, ids 1..=n, modified one minute apart from
/// 2026-04-22T15:00:00Z (epoch ms 1776870000000).
fn seed(sim: &HubspotSim, n: u64) {
    let t0 = datetime!(2026-04-22 15:00 UTC);
    for i in 1..=n {
        let modified = t0 + TimeDuration::minutes(i as i64);
        let mut c = HubspotCall::new(
            i,
            modified - TimeDuration::seconds(30),
            &[
                ("hs_call_title", &format!("Call {i}")),
                (
                    "hs_call_status",
                    if i % 2 == 0 { "COMPLETED" } else { "NO_ANSWER" },
                ),
                ("hs_call_duration", &(i * 1000).to_string()),
                ("hubspot_owner_id", "41629711"),
                (
                    "hs_lastmodifieddate",
                    &kendo_bridge_sim::timefmt::millis_z(modified),
                ),
            ],
        );
        c.deal_ids = vec![123_456];
        sim.add_call(c);
    }
}

const T0_MS: i64 = 1_776_870_000_000;

async fn search_raw(sim: &HubspotSim, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/crm/v3/objects/calls/search", sim.url()))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn search(sim: &HubspotSim, body: &Value) -> Value {
    let r = search_raw(sim, body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn since(ms: i64) -> Value {
    json!({
        "filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": ms.to_string()}
        ]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["hs_call_title", "hs_call_status"],
        "limit": 200
    })
}

#[tokio::test]
async fn search_without_a_token_is_401() {
    let sim = hubspot(1.0).await;
    let r = client()
        .post(format!("{}/crm/v3/objects/calls/search", sim.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["category"], "INVALID_AUTHENTICATION");
}

#[tokio::test]
async fn gte_on_lastmodifieddate_with_epoch_ms_returns_ascending_results() {
    let sim = hubspot(1.0).await;
    seed(&sim, 10);
    let v = search(&sim, &since(T0_MS + 8 * 60_000)).await;
    assert_eq!(ids(&v), vec!["8", "9", "10"]);
    assert_eq!(v["total"], 3);
    assert!(v.get("paging").is_none());
    assert_eq!(
        v["results"][0]["properties"]["hs_lastmodifieddate"],
        "2026-04-22T15:08:00.000Z"
    );
}

#[tokio::test]
async fn filter_values_may_be_iso_dates() {
    let sim = hubspot(1.0).await;
    seed(&sim, 10);
    let mut body = since(0);
    body["filterGroups"][0]["filters"][0]["value"] = json!("2026-04-22T15:09:00Z");
    let v = search(&sim, &body).await;
    assert_eq!(ids(&v), vec!["9", "10"]);
}

#[tokio::test]
async fn descending_sort_puts_the_newest_first() {
    let sim = hubspot(1.0).await;
    seed(&sim, 3);
    let mut body = since(0);
    body["sorts"][0]["direction"] = json!("DESCENDING");
    let v = search(&sim, &body).await;
    assert_eq!(ids(&v), vec!["3", "2", "1"]);
}

#[tokio::test]
async fn filter_groups_are_ored_and_filters_within_a_group_anded() {
    let sim = hubspot(1.0).await;
    seed(&sim, 6);
    let v = search(
        &sim,
        &json!({
            "filterGroups": [
                {"filters": [
                    {"propertyName": "hs_call_status", "operator": "EQ", "value": "COMPLETED"},
                    {"propertyName": "hs_call_duration", "operator": "GT", "value": "3000"}
                ]},
                {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "1"}]}
            ],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        }),
    )
    .await;
    assert_eq!(ids(&v), vec!["1", "4", "6"]);
}

#[tokio::test(start_paused = true)]
async fn has_property_matches_only_calls_with_a_value() {
    let sim = hubspot(1.0).await;
    seed(&sim, 2);
    sim.update_call(
        2,
        &[("hs_call_recording_url", Some("https://r.example/2.mp3"))],
    )
    .unwrap();
    sim.add_call(HubspotCall::new(
        3,
        datetime!(2026-04-22 16:00 UTC),
        &[("hs_call_recording_url", "https://r.example/3.mp3")],
    ));
    let v = search(
        &sim,
        &json!({"filterGroups": [{"filters": [
            {"propertyName": "hs_call_recording_url", "operator": "HAS_PROPERTY"}
        ]}]}),
    )
    .await;
    // Call 2's new recording is not searchable yet; call 3 was there already.
    assert_eq!(ids(&v), vec!["3"]);
}

#[tokio::test]
async fn only_requested_properties_come_back_and_unknown_ones_are_left_out() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let v = search(
        &sim,
        &json!({"properties": ["hs_call_title", "hs_call_body", "no_such_property"]}),
    )
    .await;
    let props = v["results"][0]["properties"].as_object().unwrap();
    let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "hs_call_body",
            "hs_call_title",
            "hs_createdate",
            "hs_lastmodifieddate",
            "hs_object_id"
        ]
    );
    assert!(props["hs_call_body"].is_null());
    assert_eq!(props["hs_call_title"], "Call 1");
    assert_eq!(v["results"][0]["archived"], false);
}

#[tokio::test]
async fn after_pages_through_every_result() {
    let sim = hubspot(1.0).await;
    seed(&sim, 25);
    let mut body = since(0);
    body["limit"] = json!(10);
    let mut seen = Vec::new();
    loop {
        let v = search(&sim, &body).await;
        seen.extend(ids(&v));
        match v["paging"]["next"]["after"].as_str() {
            Some(after) => body["after"] = json!(after),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.first().map(String::as_str), Some("1"));
    assert_eq!(seen.last().map(String::as_str), Some("25"));
}

#[tokio::test]
async fn limit_over_200_is_400() {
    let sim = hubspot(1.0).await;
    let mut body = since(0);
    body["limit"] = json!(201);
    let r = search_raw(&sim, &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "error");
}

#[tokio::test]
async fn unknown_operator_is_400() {
    let sim = hubspot(1.0).await;
    let r = search_raw(
        &sim,
        &json!({"filterGroups": [{"filters": [
            {"propertyName": "hs_call_status", "operator": "GREATER", "value": "x"}
        ]}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn paging_past_ten_thousand_results_is_400_though_next_is_offered() {
    let sim = hubspot(1.0).await;
    seed(&sim, 10_050);
    let mut body = since(0);
    body["after"] = json!("9800");
    let v = search(&sim, &body).await;
    assert_eq!(v["total"], 10_050);
    assert_eq!(v["paging"]["next"]["after"], "10000");
    body["after"] = json!("10000");
    body["limit"] = json!(1);
    let r = search_raw(&sim, &body).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("10000"));
}

#[tokio::test]
async fn after_plus_limit_past_ten_thousand_is_400() {
    let sim = hubspot(1.0).await;
    let mut body = since(0);
    body["after"] = json!("9900");
    body["limit"] = json!(200);
    assert_eq!(search_raw(&sim, &body).await.status(), 400);
}

#[tokio::test(start_paused = true)]
async fn a_created_call_reaches_search_only_after_the_lag() {
    let sim = hubspot(1.0).await;
    let id = sim.create_call(&[("hs_call_title", "Fresh"), ("hs_call_status", "COMPLETED")]);
    let got = client()
        .get(format!("{}/crm/v3/objects/calls/{id}", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert!(ids(&search(&sim, &since(0)).await).is_empty());
    tokio::time::advance(Duration::from_millis(1999)).await;
    assert!(ids(&search(&sim, &since(0)).await).is_empty());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(ids(&search(&sim, &since(0)).await), vec![id.to_string()]);
}

#[tokio::test(start_paused = true)]
async fn search_sees_the_old_version_of_an_updated_call_until_the_lag_passes() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    sim.update_call(1, &[("hs_call_title", Some("Renamed"))])
        .unwrap();
    let v = search(&sim, &since(0)).await;
    assert_eq!(v["results"][0]["properties"]["hs_call_title"], "Call 1");
    let direct: Value = client()
        .get(format!(
            "{}/crm/v3/objects/calls/1?properties=hs_call_title",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(direct["properties"]["hs_call_title"], "Renamed");
    tokio::time::advance(sim.search_lag()).await;
    let v = search(&sim, &since(0)).await;
    assert_eq!(v["results"][0]["properties"]["hs_call_title"], "Renamed");
}

#[tokio::test(start_paused = true)]
async fn the_search_lag_is_scaled() {
    let sim = hubspot(4.0).await;
    assert_eq!(sim.search_lag(), Duration::from_millis(500));
}

#[tokio::test]
async fn get_by_id_returns_properties_and_associations() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let v: Value = client()
        .get(format!(
            "{}/crm/v3/objects/calls/1?properties=hs_call_duration,hubspot_owner_id&associations=contacts,deals",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "1");
    assert_eq!(v["properties"]["hs_call_duration"], "1000");
    assert_eq!(v["properties"]["hubspot_owner_id"], "41629711");
    assert_eq!(
        v["associations"]["deals"]["results"],
        json!([{"id": "123456", "type": "call_to_deal"}])
    );
    // No contacts: HubSpot leaves the key out rather than sending [].
    assert!(v["associations"].get("contacts").is_none());
}

#[tokio::test]
async fn unknown_call_is_404() {
    let sim = hubspot(1.0).await;
    let r = client()
        .get(format!("{}/crm/v3/objects/calls/999", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn patch_updates_properties_and_bumps_lastmodifieddate() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    sim.define_property("kendo", "kendo_sent", "bool", "booleancheckbox");
    sim.define_property("kendo", "kendo_call_id", "string", "text");
    let r = client()
        .patch(format!("{}/crm/v3/objects/calls/1", sim.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"kendo_sent": "true", "kendo_call_id": "call_9"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["properties"]["kendo_call_id"], "call_9");
    let stored = sim.call(1).unwrap();
    assert_eq!(stored.properties["kendo_sent"], "true");
    assert_ne!(
        stored.properties["hs_lastmodifieddate"],
        "2026-04-22T15:01:00.000Z"
    );
}

#[tokio::test]
async fn patch_of_an_unknown_property_is_400_and_changes_nothing() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let r = client()
        .patch(format!("{}/crm/v3/objects/calls/1", sim.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"no_such_property": "x", "hs_call_title": "y"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(sim.call(1).unwrap().properties["hs_call_title"], "Call 1");
}

async fn send(
    sim: &HubspotSim,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{}{path}", sim.url()))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn kendo_sent_property() -> Value {
    json!({"name": "kendo_sent", "label": "Kendo Sent", "type": "bool",
           "fieldType": "booleancheckbox", "groupName": "kendo",
           "options": [{"label": "Yes", "value": "true", "hidden": false}]})
}

#[tokio::test]
async fn a_custom_property_cannot_be_written_until_it_is_created_in_its_group() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let patch = || json!({"properties": {"kendo_sent": "true"}});
    let (status, body) = send(
        &sim,
        reqwest::Method::PATCH,
        "/crm/v3/objects/calls/1",
        Some(patch()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("PROPERTY_DOESNT_EXIST"),
        "{body}"
    );
    let (status, _) = send(
        &sim,
        reqwest::Method::GET,
        "/crm/v3/properties/calls/kendo_sent",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &sim,
        reqwest::Method::POST,
        "/crm/v3/properties/calls",
        Some(kendo_sent_property()),
    )
    .await;
    assert_eq!(status, 400, "its group does not exist yet");
    let (status, _) = send(
        &sim,
        reqwest::Method::POST,
        "/crm/v3/properties/calls/groups",
        Some(json!({"name": "kendo", "label": "Kendo"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        &sim,
        reqwest::Method::POST,
        "/crm/v3/properties/calls",
        Some(kendo_sent_property()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        &sim,
        reqwest::Method::GET,
        "/crm/v3/properties/calls/kendo_sent",
        None,
    )
    .await;
    assert_eq!((status, body["groupName"].as_str()), (200, Some("kendo")));
    let (status, _) = send(
        &sim,
        reqwest::Method::PATCH,
        "/crm/v3/objects/calls/1",
        Some(patch()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sim.call(1).unwrap().properties["kendo_sent"], "true");
}

#[tokio::test]
async fn creating_a_property_or_group_that_exists_is_409() {
    let sim = hubspot(1.0).await;
    let group = json!({"name": "kendo", "label": "Kendo"});
    let path = "/crm/v3/properties/calls/groups";
    assert_eq!(
        send(&sim, reqwest::Method::POST, path, Some(group.clone()))
            .await
            .0,
        201
    );
    let (status, body) = send(&sim, reqwest::Method::POST, path, Some(group)).await;
    assert_eq!((status, body["category"].as_str()), (409, Some("CONFLICT")));
    let prop = "/crm/v3/properties/calls";
    assert_eq!(
        send(
            &sim,
            reqwest::Method::POST,
            prop,
            Some(kendo_sent_property())
        )
        .await
        .0,
        201
    );
    assert_eq!(
        send(
            &sim,
            reqwest::Method::POST,
            prop,
            Some(kendo_sent_property())
        )
        .await
        .0,
        409
    );
    let mut builtin = kendo_sent_property();
    builtin["name"] = json!("hs_call_title");
    assert_eq!(
        send(&sim, reqwest::Method::POST, prop, Some(builtin))
            .await
            .0,
        409
    );
}

#[tokio::test]
async fn a_property_without_a_required_field_or_with_an_unknown_type_is_400() {
    let sim = hubspot(1.0).await;
    let prop = "/crm/v3/properties/calls";
    let mut no_type = kendo_sent_property();
    no_type["groupName"] = json!("callinformation");
    no_type.as_object_mut().unwrap().remove("type");
    assert_eq!(
        send(&sim, reqwest::Method::POST, prop, Some(no_type))
            .await
            .0,
        400
    );
    let mut bad_type = kendo_sent_property();
    bad_type["groupName"] = json!("callinformation");
    bad_type["type"] = json!("boolean");
    assert_eq!(
        send(&sim, reqwest::Method::POST, prop, Some(bad_type))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn the_properties_api_needs_the_token_and_refuses_a_missing_scope_with_403() {
    let sim = hubspot(1.0).await;
    let r = client()
        .post(format!("{}/crm/v3/properties/calls/groups", sim.url()))
        .json(&json!({"name": "kendo", "label": "Kendo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    sim.refuse_property_creation(true);
    let (status, body) = send(
        &sim,
        reqwest::Method::POST,
        "/crm/v3/properties/calls/groups",
        Some(json!({"name": "kendo", "label": "Kendo"})),
    )
    .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (403, Some("MISSING_SCOPES"))
    );
    let scopes = body["errors"][0]["context"]["requiredScopes"].to_string();
    assert!(scopes.contains("crm.schemas.contacts.write"), "{scopes}");
    assert!(sim.created_properties().0.is_empty());
}

#[tokio::test]
async fn patches_fail_while_the_fault_lasts_and_succeed_after_it_heals() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let patch = || Some(json!({"properties": {"hs_call_title": "renamed"}}));
    sim.fail_patches(503, Duration::from_secs(3_600));
    assert_eq!(
        send(
            &sim,
            reqwest::Method::PATCH,
            "/crm/v3/objects/calls/1",
            patch()
        )
        .await
        .0,
        503
    );
    sim.fail_patches(429, Duration::from_secs(3_600));
    let (status, body) = send(
        &sim,
        reqwest::Method::PATCH,
        "/crm/v3/objects/calls/1",
        patch(),
    )
    .await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (429, Some("RATE_LIMIT"))
    );
    assert_eq!(sim.call(1).unwrap().properties["hs_call_title"], "Call 1");
    sim.heal_patches();
    assert_eq!(
        send(
            &sim,
            reqwest::Method::PATCH,
            "/crm/v3/objects/calls/1",
            patch()
        )
        .await
        .0,
        200
    );
    assert_eq!(sim.call(1).unwrap().properties["hs_call_title"], "renamed");
}

#[tokio::test]
async fn a_patch_with_an_undocumented_query_parameter_is_400() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let (status, _) = send(
        &sim,
        reqwest::Method::PATCH,
        "/crm/v3/objects/calls/1?propertiesWithHistory=x",
        Some(json!({"properties": {"hs_call_title": "y"}})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn owners_are_found_by_id() {
    let sim = hubspot(1.0).await;
    sim.add_owner(HubspotOwner {
        id: 41_629_711,
        email: "sam@yourco.com".into(),
        first_name: "Sam".into(),
        last_name: "Lee".into(),
        user_id: 9102,
        archived: false,
    });
    let v: Value = client()
        .get(format!("{}/crm/v3/owners/41629711", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "41629711");
    assert_eq!(v["email"], "sam@yourco.com");
    assert_eq!(v["firstName"], "Sam");
    assert_eq!(v["userId"], 9102);
}

#[tokio::test]
async fn dispositions_list_hubspots_default_guids() {
    let sim = hubspot(1.0).await;
    let v: Value = client()
        .get(format!("{}/calling/v1/dispositions", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert!(list.contains(&json!({
        "id": "f240bbac-87c9-4f6e-bf70-924b57d47db7", "label": "Connected"
    })));
    assert!(
        list.iter()
            .any(|d| d["id"] == hubspot::NO_ANSWER && d["label"] == "No answer")
    );
}

async fn get(sim: &HubspotSim, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

/// HubSpot's error body: `{status: "error", message, correlationId, category}`.
async fn assert_hubspot_error(r: reqwest::Response, status: u16, category: &str) -> String {
    assert_eq!(r.status(), status);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["category"], category, "{v}");
    assert!(v["correlationId"].is_string(), "{v}");
    v["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_wrong_dispositions_path_is_hubspots_404() {
    let sim = hubspot(1.0).await;
    let r = get(&sim, "/calls/v1/dispositions").await;
    assert_hubspot_error(r, 404, "OBJECT_NOT_FOUND").await;
}

#[tokio::test]
async fn an_unknown_path_is_hubspots_404() {
    let sim = hubspot(1.0).await;
    let r = get(&sim, "/crm/v3/objects/calls/1/transcript").await;
    assert_hubspot_error(r, 404, "OBJECT_NOT_FOUND").await;
}

#[tokio::test]
async fn an_unknown_query_parameter_is_hubspots_400() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let message = assert_hubspot_error(
        get(&sim, "/crm/v3/objects/calls/1?includeAssociations=true").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(message.contains("includeAssociations"), "{message}");
    assert_hubspot_error(
        get(&sim, "/calling/v1/dispositions?limit=5").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_hubspot_error(
        get(&sim, "/crm/v3/owners/1?email=x").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

fn departed_rep() -> HubspotOwner {
    HubspotOwner {
        id: 41_629_799,
        email: "left@yourco.com".into(),
        first_name: "Alex".into(),
        last_name: "Gone".into(),
        user_id: 9199,
        archived: true,
    }
}

#[tokio::test]
async fn an_archived_owner_is_404_unless_asked_for_with_archived_true() {
    let sim = hubspot(1.0).await;
    sim.add_owner(departed_rep());
    assert_hubspot_error(
        get(&sim, "/crm/v3/owners/41629799").await,
        404,
        "OBJECT_NOT_FOUND",
    )
    .await;
    let r = get(&sim, "/crm/v3/owners/41629799?archived=true").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["email"], "left@yourco.com");
    assert_eq!(v["archived"], true);
}

#[tokio::test]
async fn an_active_owner_is_not_found_among_archived_ones() {
    let sim = hubspot(1.0).await;
    sim.add_owner(HubspotOwner {
        archived: false,
        ..departed_rep()
    });
    assert_eq!(
        get(&sim, "/crm/v3/owners/41629799?archived=true")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn associations_batch_read_lists_each_calls_targets_and_errors_for_the_rest() {
    let sim = hubspot(1.0).await;
    seed(&sim, 3);
    sim.associate(1, &[51, 52], &[123_456]).unwrap();
    sim.associate(2, &[], &[]).unwrap();
    let r = client()
        .post(format!(
            "{}/crm/v4/associations/calls/contacts/batch/read",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"inputs": [{"id": "1"}, {"id": "2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207, "some inputs have no associations");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "COMPLETE");
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(v["results"][0]["from"]["id"], "1");
    let to: Vec<&Value> = v["results"][0]["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["toObjectId"])
        .collect();
    assert_eq!(to, [&json!(51), &json!(52)]);
    assert_eq!(
        v["results"][0]["to"][0]["associationTypes"][0]["category"],
        "HUBSPOT_DEFINED"
    );
    assert_eq!(v["numErrors"], 1);
    assert_eq!(v["errors"][0]["context"]["fromObjectId"][0], "2");
}

#[tokio::test]
async fn associations_batch_read_of_deals_is_200_when_every_call_has_some() {
    let sim = hubspot(1.0).await;
    seed(&sim, 2);
    let r = client()
        .post(format!(
            "{}/crm/v4/associations/calls/deals/batch/read",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"inputs": [{"id": "1"}, {"id": "2"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][1]["to"][0]["toObjectId"], 123_456);
}

#[tokio::test]
async fn dispositions_can_be_made_to_fail_with_hubspots_missing_scopes() {
    let sim = hubspot(1.0).await;
    sim.fail_dispositions(true);
    assert_hubspot_error(
        get(&sim, "/calling/v1/dispositions").await,
        403,
        "MISSING_SCOPES",
    )
    .await;
}

#[tokio::test]
async fn a_transcript_is_linked_from_its_call_and_served_as_utterances() {
    let sim = hubspot(1.0).await;
    seed(&sim, 1);
    let tid = sim
        .transcribe(
            1,
            vec![Utterance {
                speaker_name: "Sam Lee".into(),
                speaker_email: Some("sam@yourco.com".into()),
                text: "Thanks for your time today.".into(),
                start_ms: 0,
                end_ms: 2400,
            }],
        )
        .unwrap();
    let call = sim.call(1).unwrap();
    assert_eq!(call.properties["hs_call_transcription_id"], tid.to_string());
    let v: Value = client()
        .get(format!(
            "{}/crm/v3/extensions/calling/transcripts/{tid}",
            sim.url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let u = &v["transcriptUtterances"][0];
    assert_eq!(u["speaker"]["name"], "Sam Lee");
    assert_eq!(u["speaker"]["email"], "sam@yourco.com");
    assert_eq!(u["text"], "Thanks for your time today.");
    assert_eq!(u["endTimeMillis"], 2400);
}

#[tokio::test(start_paused = true)]
async fn a_sixth_search_within_a_second_gets_429_rate_limit() {
    let sim = hubspot(1.0).await;
    for _ in 0..5 {
        assert_eq!(search_raw(&sim, &since(0)).await.status(), 200);
    }
    let r = search_raw(&sim, &since(0)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorType"], "RATE_LIMIT");
    assert_eq!(sim.rate_limited(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(search_raw(&sim, &since(0)).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn the_101st_request_in_ten_seconds_gets_429() {
    let sim = hubspot(1.0).await;
    let c = client();
    let url = format!("{}/calling/v1/dispositions", sim.url());
    for i in 0..100 {
        let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        if i == 0 {
            assert_eq!(r.headers()["x-hubspot-ratelimit-max"], "100");
            assert_eq!(r.headers()["x-hubspot-ratelimit-remaining"], "99");
        }
    }
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "10");
}

#[tokio::test(start_paused = true)]
async fn retry_after_can_be_left_out() {
    let sim = HubspotSim::start(HubspotOptions {
        tokens: vec![TOKEN.into()],
        send_retry_after: false,
        searches_per_second: 1,
        ..HubspotOptions::default()
    })
    .await
    .unwrap();
    search_raw(&sim, &since(0)).await;
    let r = search_raw(&sim, &since(0)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn webhook_v3_signature_covers_method_uri_body_and_timestamp() {
    let sim = hubspot(1.0).await;
    let rx = Receiver::start().await;
    let status = sim
        .send_webhook_v3(&rx.url, "client-secret-xyz", &[987_654_321, 5])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let hit = &rx.hits()[0];
    let ts = hit.header("x-hubspot-request-timestamp");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ts_ms: u128 = ts.parse().unwrap();
    assert!(now_ms.abs_diff(ts_ms) < 60_000);
    let mut signed = b"POST".to_vec();
    signed.extend_from_slice(rx.url.as_bytes());
    signed.extend_from_slice(&hit.body);
    signed.extend_from_slice(ts.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(b"client-secret-xyz", &signed));
    assert_eq!(hit.header("x-hubspot-signature-v3"), expected);
    let events: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(events[0]["objectId"], 987_654_321);
    assert_eq!(events[0]["objectTypeId"], "0-48");
    assert_eq!(events[0]["subscriptionType"], "object.creation");
    assert_eq!(events[1]["objectId"], 5);
    assert_ne!(events[0]["eventId"], events[1]["eventId"]);
}

//! All four simulators started together, loaded with the demo data set.

mod common;

use std::time::{Duration, Instant};

use kendo_bridge_sim::dataset::{Dataset, Expected, Source};
use kendo_bridge_sim::{
    DEMO_HUBSPOT_TOKEN, DEMO_KENDO_KEY, DEMO_SALESLOFT_KEY, SimOptions, Simulators,
};
use serde_json::{Value, json};

use common::client;

#[tokio::test]
async fn the_bundle_starts_in_milliseconds() {
    let started = Instant::now();
    let sims = Simulators::start(SimOptions::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    for url in [sims.salesloft_url(), sims.hubspot_url(), sims.kendo_url()] {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
}

#[tokio::test]
async fn the_demo_serves_the_guides_example_calls() {
    let sims = Simulators::start(SimOptions::default()).await.unwrap();
    Dataset::demo(7).load(&sims);
    let c = client();
    let sl: Value = c
        .get(format!(
            "{}/v2/activities/calls/98765432",
            sims.salesloft_url()
        ))
        .bearer_auth(DEMO_SALESLOFT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sl["data"]["duration"], 485);
    assert_eq!(sl["data"]["created_at"], "2026-04-22T11:30:00.000000-04:00");
    let user: Value = c
        .get(format!("{}/v2/users/1001", sims.salesloft_url()))
        .bearer_auth(DEMO_SALESLOFT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["data"]["name"], "Jamie Rivera");
    assert_eq!(user["data"]["email"], "jamie@yourco.com");

    let hs: Value = c
        .get(format!(
            "{}/crm/v3/objects/calls/987654321?properties=hs_call_title,hs_call_duration,hs_timestamp&associations=deals",
            sims.hubspot_url()
        ))
        .bearer_auth(DEMO_HUBSPOT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hs["properties"]["hs_call_title"], "Discovery - Acme");
    assert_eq!(hs["properties"]["hs_call_duration"], "1250000");
    assert_eq!(hs["properties"]["hs_timestamp"], "2026-03-04T16:30:00.000Z");
    assert_eq!(hs["associations"]["deals"]["results"][0]["id"], "123456");
}

#[tokio::test]
async fn the_demo_keys_reach_kendo() {
    let sims = Simulators::start(SimOptions::default()).await.unwrap();
    let r = client()
        .post(sims.kendo.ingest_url())
        .header("X-API-Key", DEMO_KENDO_KEY)
        .json(&json!({"transcript": "Rep: hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn dropping_the_bundle_closes_its_ports() {
    let sims = Simulators::start(SimOptions::default()).await.unwrap();
    let addr = sims.kendo.addr();
    drop(sims);
    tokio::task::yield_now().await;
    let r = client()
        .post(format!("http://{addr}/api/integrations/push-api/ingest"))
        .send()
        .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn apply_later_finishes_the_processing_recording_and_completes_the_hubspot_call() {
    let sims = Simulators::start(SimOptions::default()).await.unwrap();
    let data = Dataset::demo(7);
    data.load(&sims);
    let processing: Vec<u64> = data
        .salesloft_calls
        .iter()
        .filter(|c| {
            c.recordings
                .first()
                .is_some_and(|r| r.recording_status == "processing")
        })
        .map(|c| c.id)
        .collect();
    assert_eq!(processing.len(), 1);
    let in_progress: Vec<u64> = data
        .hubspot_calls
        .iter()
        .filter(|c| c.properties["hs_call_status"] == "IN_PROGRESS")
        .map(|c| c.id)
        .collect();
    assert_eq!(in_progress.len(), 1);

    data.apply_later(&sims).unwrap();

    let sl = sims.salesloft.call(processing[0]).unwrap();
    assert_eq!(sl.recordings[0].recording_status, "completed");
    assert!(sl.recordings[0].url.is_some());
    let newest = data
        .salesloft_calls
        .iter()
        .map(|c| c.updated_at)
        .max()
        .unwrap();
    assert!(sl.updated_at > newest);
    let hs = sims.hubspot.call(in_progress[0]).unwrap();
    assert_eq!(hs.properties["hs_call_status"], "COMPLETED");
    assert!(hs.properties.contains_key("hs_call_recording_url"));
}

#[test]
fn the_rep_directory_maps_every_source_id_to_a_yourco_email() {
    let d = Dataset::demo(7);
    let dir = d.rep_directory();
    assert_eq!(dir.len(), 18);
    assert!(dir.iter().all(|e| e.email.ends_with("@yourco.com")));
    let sam = dir
        .iter()
        .find(|e| e.source == Source::Hubspot && e.key == "41629711")
        .unwrap();
    assert_eq!(sam.name, "Sam Lee");
    let nina = dir
        .iter()
        .find(|e| e.source == Source::Aloware && e.email == "nina@yourco.com")
        .unwrap();
    assert_eq!(nina.name, "Nina Patel");
    assert!(!dir.iter().any(|e| e.key == "5099"));
}

#[test]
fn the_demo_has_every_case_a_bridge_must_handle() {
    let d = Dataset::demo(7);
    let skips: Vec<&str> = d
        .cases
        .iter()
        .filter_map(|c| match c.expected {
            Expected::Skip(code) => Some(code),
            _ => None,
        })
        .collect();
    for code in [
        "not-completed",
        "no-media",
        "unknown-rep",
        "not-a-call",
        "archived",
    ] {
        assert!(skips.contains(&code), "{code}");
    }
    assert!(
        d.cases
            .iter()
            .any(|c| matches!(c.expected, Expected::Wait(_)))
    );
    assert!(d.salesloft_calls.iter().any(|c| c.recordings.is_empty()));
    let total = d.salesloft_calls.len() + d.hubspot_calls.len();
    assert!(total >= 24, "{total}");
}

#[test]
fn a_ten_thousand_call_backlog_builds_quickly() {
    let started = Instant::now();
    let d = Dataset::backlog(10_000, 1);
    assert_eq!(d.salesloft_calls.len(), 10_000);
    assert_eq!(d.expected_sent(0).len(), 10_000);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_ten_thousand_call_backlog_pages_in_a_hundred_requests() {
    let sims = Simulators::start(SimOptions::default()).await.unwrap();
    Dataset::backlog(10_000, 1).load(&sims);
    let c = client();
    let mut page = 1;
    let mut seen = 0;
    loop {
        let v: Value = c
            .get(format!(
                "{}/v2/activities/calls?per_page=100&page={page}&sort_by=updated_at&sort_direction=ASC",
                sims.salesloft_url()
            ))
            .bearer_auth(DEMO_SALESLOFT_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += v["data"].as_array().unwrap().len();
        match v["metadata"]["paging"]["next_page"].as_u64() {
            Some(n) => page = n,
            None => break,
        }
    }
    assert_eq!(seen, 10_000);
    assert_eq!(sims.salesloft.max_page_requested(), 100);
    assert_eq!(sims.salesloft.points_remaining(), 500);
}

//! The simulated Salesloft REST API v2, tested over HTTP.

mod common;

use std::time::Duration;

use kendo_bridge_sim::salesloft::{
    CallDataRecord, Recording, SalesloftCall, SalesloftOptions, SalesloftSim, SalesloftUser,
};
use serde_json::Value;
use time::macros::datetime;
use time::{Duration as TimeDuration, OffsetDateTime};

use common::{Receiver, client, hmac_sha1};

const KEY: &str = "ak_0000000000000000000000000000000000000000000000000000000000000001";

async fn salesloft(time_scale: f64) -> SalesloftSim {
    SalesloftSim::start(SalesloftOptions {
        time_scale,
        api_keys: vec![KEY.into()],
        ..SalesloftOptions::default()
    })
    .await
    .unwrap()
}

fn call(id: u64, updated_at: OffsetDateTime) -> SalesloftCall {
    SalesloftCall {
        id,
        to: Some("+14155550142".into()),
        duration: Some(120),
        disposition: Some("Connected".into()),
        sentiment: None,
        created_at: updated_at - TimeDuration::minutes(5),
        updated_at,
        recordings: vec![Recording {
            url: Some(format!("https://recordings.salesloft.example/{id}.mp3")),
            status: "completed".into(),
            recording_status: "completed".into(),
        }],
        user_id: Some(1001),
        action_id: None,
        called_person_id: Some(55),
        crm_activity_id: None,
        note_id: None,
        cadence_id: None,
        step_id: None,
    }
}

/// `n` calls one second apart from 2026-04-22T15:00:00Z, ids from 1.
fn seed(sim: &SalesloftSim, n: u64) {
    let t0 = datetime!(2026-04-22 15:00 UTC);
    sim.add_calls((1..=n).map(|i| call(i, t0 + TimeDuration::seconds(i as i64))));
}

async fn get(sim: &SalesloftSim, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path_and_query}", sim.url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
}

async fn get_json(sim: &SalesloftSim, path_and_query: &str) -> Value {
    let r = get(sim, path_and_query).await;
    assert_eq!(r.status(), 200, "{path_and_query}");
    r.json().await.unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn request_without_a_bearer_key_is_401() {
    let sim = salesloft(1.0).await;
    let r = client()
        .get(format!("{}/v2/activities/calls", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{}/v2/activities/calls", sim.url()))
        .bearer_auth("ak_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn paging_walks_every_call_and_next_page_is_null_on_the_last_page() {
    let sim = salesloft(1.0).await;
    seed(&sim, 250);
    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let v = get_json(
            &sim,
            &format!(
                "/v2/activities/calls?per_page=100&page={page}&sort_by=updated_at&sort_direction=ASC"
            ),
        )
        .await;
        seen.extend(ids(&v));
        let paging = &v["metadata"]["paging"];
        assert_eq!(paging["current_page"], page);
        assert_eq!(paging["per_page"], 100);
        match paging["next_page"].as_u64() {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(page, 3);
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
}

#[tokio::test]
async fn default_order_is_updated_at_descending_twenty_five_per_page() {
    let sim = salesloft(1.0).await;
    seed(&sim, 30);
    let v = get_json(&sim, "/v2/activities/calls").await;
    assert_eq!(ids(&v), (6..=30).rev().collect::<Vec<_>>());
    assert_eq!(v["metadata"]["sorting"]["sort_direction"], "DESC");
}

#[tokio::test]
async fn updated_at_gt_compares_microseconds_as_instants_across_offsets() {
    let sim = salesloft(1.0).await;
    let t = datetime!(2026-04-22 15:30:00.123456 UTC);
    sim.add_call(call(1, t));
    sim.add_call(call(2, t + TimeDuration::microseconds(1)));
    // The same instant as `t`, written in Salesloft's -04:00.
    let v = get_json(
        &sim,
        "/v2/activities/calls?sort_by=updated_at&sort_direction=ASC&updated_at%5Bgt%5D=2026-04-22T11%3A30%3A00.123456-04%3A00",
    )
    .await;
    assert_eq!(ids(&v), vec![2]);
    let v = get_json(
        &sim,
        "/v2/activities/calls?sort_direction=ASC&updated_at[gte]=2026-04-22T15:30:00.123456Z",
    )
    .await;
    assert_eq!(ids(&v), vec![1, 2]);
}

#[tokio::test]
async fn a_millisecond_cursor_re_reads_the_call_it_stopped_at() {
    let sim = salesloft(1.0).await;
    sim.add_call(call(1, datetime!(2026-04-22 15:30:00.123456 UTC)));
    let v = get_json(
        &sim,
        "/v2/activities/calls?updated_at[gt]=2026-04-22T15:30:00.123Z",
    )
    .await;
    assert_eq!(ids(&v), vec![1]);
}

#[tokio::test]
async fn an_unencoded_plus_in_an_offset_arrives_as_a_space_and_is_refused() {
    let sim = salesloft(1.0).await;
    let r = get(
        &sim,
        "/v2/activities/calls?updated_at[gt]=2026-04-22T15:30:00.000000+00:00",
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"]["updated_at[gt]"].is_array());
}

#[tokio::test]
async fn created_at_lt_and_ids_filters_combine() {
    let sim = salesloft(1.0).await;
    seed(&sim, 10);
    let v = get_json(
        &sim,
        "/v2/activities/calls?ids[]=2&ids[]=5&ids[]=9&created_at[lt]=2026-04-22T14:55:06Z&sort_direction=ASC",
    )
    .await;
    assert_eq!(ids(&v), vec![2, 5]);
}

#[tokio::test]
async fn sort_by_created_at_descending_breaks_ties_by_id() {
    let sim = salesloft(1.0).await;
    let t = datetime!(2026-04-22 15:00 UTC);
    let mut a = call(7, t);
    let mut b = call(3, t);
    a.created_at = t;
    b.created_at = t;
    sim.add_call(a);
    sim.add_call(b);
    sim.add_call(call(9, t - TimeDuration::hours(1)));
    let v = get_json(
        &sim,
        "/v2/activities/calls?sort_by=created_at&sort_direction=DESC",
    )
    .await;
    assert_eq!(ids(&v), vec![3, 7, 9]);
}

#[tokio::test]
async fn per_page_over_100_is_422() {
    let sim = salesloft(1.0).await;
    let r = get(&sim, "/v2/activities/calls?per_page=101").await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"]["per_page"].is_array());
}

#[tokio::test]
async fn unknown_sort_field_is_422() {
    let sim = salesloft(1.0).await;
    let r = get(&sim, "/v2/activities/calls?sort_by=id").await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn call_records_have_the_documented_shape() {
    let sim = salesloft(1.0).await;
    sim.add_call(call(98_765_432, datetime!(2026-04-22 15:38:34.542517 UTC)));
    let v = get_json(&sim, "/v2/activities/calls/98765432").await;
    let c = &v["data"];
    assert_eq!(c["id"], 98_765_432);
    assert_eq!(c["updated_at"], "2026-04-22T11:38:34.542517-04:00");
    assert_eq!(c["recordings"][0]["recording_status"], "completed");
    assert_eq!(c["user"]["id"], 1001);
    assert_eq!(c["user"]["_href"], format!("{}/v2/users/1001", sim.url()));
    assert!(c["cadence"].is_null());
    assert!(c.get("direction").is_none());
    assert!(c.get("status").is_none());
}

#[tokio::test]
async fn a_json_suffix_finds_the_same_call() {
    let sim = salesloft(1.0).await;
    seed(&sim, 1);
    let v = get_json(&sim, "/v2/activities/calls/1.json").await;
    assert_eq!(v["data"]["id"], 1);
}

#[tokio::test]
async fn unknown_call_is_404() {
    let sim = salesloft(1.0).await;
    assert_eq!(get(&sim, "/v2/activities/calls/404").await.status(), 404);
}

#[tokio::test]
async fn every_answer_carries_cost_and_remaining_points() {
    let sim = salesloft(1.0).await;
    seed(&sim, 1);
    let r = get(&sim, "/v2/activities/calls").await;
    assert_eq!(r.headers()["x-ratelimit-endpoint-cost"], "1");
    assert_eq!(r.headers()["x-ratelimit-remaining-minute"], "599");
    let r = get(&sim, "/v2/activities/calls?page=101").await;
    assert_eq!(r.headers()["x-ratelimit-endpoint-cost"], "3");
    assert_eq!(r.headers()["x-ratelimit-remaining-minute"], "596");
    let r = get(&sim, "/v2/activities/calls?page=501").await;
    assert_eq!(r.headers()["x-ratelimit-endpoint-cost"], "30");
    assert_eq!(r.headers()["x-ratelimit-remaining-minute"], "566");
}

#[tokio::test(start_paused = true)]
async fn requests_past_600_points_get_429_with_retry_after() {
    let sim = salesloft(1.0).await;
    // Page 501 costs 30: twenty of them spend the whole minute.
    for i in 0..20 {
        let r = get(&sim, "/v2/activities/calls?page=501").await;
        assert_eq!(r.status(), 200, "request {i}");
    }
    let r = get(&sim, "/v2/activities/calls").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(r.headers()["x-ratelimit-remaining-minute"], "0");
    assert_eq!(sim.rate_limited(), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_returns_after_a_scaled_minute() {
    let sim = salesloft(30.0).await;
    for _ in 0..20 {
        get(&sim, "/v2/activities/calls?page=501").await;
    }
    let r = get(&sim, "/v2/activities/calls").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(get(&sim, "/v2/activities/calls").await.status(), 200);
    assert_eq!(sim.points_remaining(), 599);
}

#[tokio::test]
async fn the_request_log_shows_the_deepest_page() {
    let sim = salesloft(1.0).await;
    get(&sim, "/v2/activities/calls?page=3").await;
    get(&sim, "/v2/activities/calls?per_page=100&page=100").await;
    get(&sim, "/v2/users/1001").await;
    assert_eq!(sim.max_page_requested(), 100);
    let log = sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[1].cost, 1);
    assert_eq!(log[2].path, "/v2/users/1001");
}

#[tokio::test]
async fn a_finished_recording_moves_the_call_past_every_earlier_cursor() {
    let sim = salesloft(1.0).await;
    seed(&sim, 3);
    let mut processing = call(4, datetime!(2026-04-22 15:00:04 UTC));
    processing.recordings = vec![Recording {
        url: None,
        status: "completed".into(),
        recording_status: "processing".into(),
    }];
    sim.add_call(processing);
    let cursor = "2026-04-22T15:00:04.000000Z";
    let before = get_json(
        &sim,
        &format!("/v2/activities/calls?updated_at[gt]={cursor}"),
    )
    .await;
    assert!(ids(&before).is_empty());
    let stamp = sim
        .finish_recording(4, "https://recordings.salesloft.example/4.mp3")
        .unwrap();
    let after = get_json(
        &sim,
        &format!("/v2/activities/calls?updated_at[gt]={cursor}"),
    )
    .await;
    assert_eq!(ids(&after), vec![4]);
    let c = &after["data"][0];
    assert_eq!(c["updated_at"], stamp);
    assert_eq!(c["recordings"][0]["recording_status"], "completed");
    assert_eq!(
        c["recordings"][0]["url"],
        "https://recordings.salesloft.example/4.mp3"
    );
    // Six fractional digits and an offset, as Salesloft writes them.
    let s = stamp.as_str();
    assert_eq!(s.len(), "2026-04-22T11:38:34.542517-04:00".len());
    assert!(s.ends_with("-04:00"));
}

#[tokio::test]
async fn users_carry_name_and_email() {
    let sim = salesloft(1.0).await;
    sim.add_user(SalesloftUser {
        id: 1001,
        guid: "2a4a3a4e-1f5b-4a3c-9e47-2f1c1d0e9b11".into(),
        first_name: "Jamie".into(),
        last_name: "Rivera".into(),
        email: "jamie@yourco.com".into(),
        active: true,
    });
    let v = get_json(&sim, "/v2/users/1001").await;
    assert_eq!(v["data"]["name"], "Jamie Rivera");
    assert_eq!(v["data"]["email"], "jamie@yourco.com");
    assert_eq!(v["data"]["guid"], "2a4a3a4e-1f5b-4a3c-9e47-2f1c1d0e9b11");
}

fn two_call_data_records(sim: &SalesloftSim) {
    let t = datetime!(2026-04-22 15:00 UTC);
    for (id, call_id, direction, minutes) in [(71, 1, "outbound", 0), (72, 2, "inbound", 1)] {
        sim.add_call_data_record(CallDataRecord {
            id,
            call_id,
            direction: direction.into(),
            from: "+14155550100".into(),
            to: "+14155550142".into(),
            status: "completed".into(),
            duration: Some(120),
            user_id: Some(1001),
            called_person_id: None,
            recording: None,
            created_at: t + TimeDuration::minutes(minutes),
            updated_at: t + TimeDuration::minutes(minutes),
        });
    }
}

#[tokio::test]
async fn call_data_records_ignore_an_undocumented_call_id_filter_and_answer_the_whole_team() {
    let sim = salesloft(1.0).await;
    two_call_data_records(&sim);
    let v = get_json(&sim, "/v2/call_data_records?call_id[]=1").await;
    // Newest first (the documented default order), call 1's record last.
    let calls: Vec<u64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["call"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(calls, [2, 1]);
}

#[tokio::test]
async fn call_data_records_are_read_by_updated_at_with_has_call() {
    let sim = salesloft(1.0).await;
    two_call_data_records(&sim);
    let v = get_json(
        &sim,
        "/v2/call_data_records?has_call=true&sort_by=updated_at&sort_direction=ASC&per_page=100\
         &updated_at%5Bgte%5D=2026-04-22T15:00:30Z",
    )
    .await;
    assert_eq!(ids(&v), [72]);
    assert_eq!(v["data"][0]["direction"], "inbound");
    let none = get_json(&sim, "/v2/call_data_records?has_call=false").await;
    assert_eq!(ids(&none), Vec::<u64>::new());
}

#[tokio::test]
async fn transcriptions_refuse_the_undocumented_sort_direction() {
    let sim = salesloft(1.0).await;
    let r = get(
        &sim,
        "/v2/transcriptions?sort_by=updated_at&sort_direction=ASC",
    )
    .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(body["errors"]["sort_direction"].is_array(), "{body}");
    let ok = get(
        &sim,
        "/v2/transcriptions?sort_by=updated_at&per_page=100&page=1",
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn calls_refuse_an_undocumented_parameter() {
    let sim = salesloft(1.0).await;
    seed(&sim, 2);
    let r = get(&sim, "/v2/activities/calls?call_status=completed").await;
    assert_eq!(r.status(), 422);
    let ok = get(
        &sim,
        "/v2/activities/calls?disposition=Connected&user_guid[]=x",
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_transcript_leads_from_transcription_to_call_and_pages_its_sentences() {
    let sim = salesloft(1.0).await;
    seed(&sim, 1);
    let lines: Vec<(String, String)> = (0..30)
        .map(|i| {
            (
                if i % 2 == 0 { "rep" } else { "prospect" }.to_owned(),
                format!("sentence {i}"),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = lines
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let tid = sim.transcribe(1, &borrowed).unwrap();

    let list = get_json(&sim, "/v2/transcriptions?sort_by=updated_at").await;
    assert_eq!(list["data"][0]["id"], tid);
    let conversation = list["data"][0]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let conv = get_json(&sim, &format!("/v2/conversations/{conversation}/extensive")).await;
    assert_eq!(conv["data"]["call_id"], "1");

    let p1 = get_json(
        &sim,
        &format!("/v2/transcriptions/{tid}/sentences?per_page=25"),
    )
    .await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 25);
    assert_eq!(p1["data"][0]["order_number"], 0);
    assert_eq!(p1["data"][0]["text"], "sentence 0");
    assert_eq!(p1["metadata"]["paging"]["next_page"], 2);
    let p2 = get_json(
        &sim,
        &format!("/v2/transcriptions/{tid}/sentences?per_page=25&page=2"),
    )
    .await;
    assert_eq!(p2["data"].as_array().unwrap().len(), 5);
    assert!(p2["metadata"]["paging"]["next_page"].is_null());
    assert_ne!(
        p1["data"][0]["recording_attendee_id"],
        p1["data"][1]["recording_attendee_id"]
    );
}

#[tokio::test]
async fn webhook_is_signed_with_hex_hmac_sha1_of_the_raw_body() {
    let sim = salesloft(1.0).await;
    seed(&sim, 1);
    let rx = Receiver::start().await;
    let status = sim
        .send_webhook(&rx.url, "cb_token_123", "call_updated", 1)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let hit = &rx.hits()[0];
    assert_eq!(hit.header("x-salesloft-event"), "call_updated");
    assert_eq!(
        hit.header("x-salesloft-signature"),
        hex::encode(hmac_sha1(b"cb_token_123", &hit.body))
    );
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["id"], 1);
}

//! The simulated Kendo Push API and Kendo webhooks, tested over HTTP.

mod common;

use std::time::Duration;

use base64::Engine;
use kendo_bridge_sim::kendo::{
    Attempt, AuthMethod, KendoOptions, KendoSim, SignatureEncoding, TEST_EVENT_HEADER,
};
use serde_json::{Value, json};

use common::{Receiver, client, hmac_sha256};

const KEY: &str = "pk_test_alpha";
const OTHER_KEY: &str = "pk_test_beta";

async fn kendo(time_scale: f64) -> KendoSim {
    KendoSim::start(KendoOptions {
        time_scale,
        keys: vec![
            (KEY.into(), "Alpha Team".into()),
            (OTHER_KEY.into(), "Beta Team".into()),
        ],
        ..KendoOptions::default()
    })
    .await
    .unwrap()
}

fn payload(call_id: &str) -> Value {
    json!({
        "callTitle": "Outbound - Connected",
        "repName": "Jamie Rivera",
        "repEmail": "jamie@yourco.com",
        "callDate": "2026-04-22T15:30:00Z",
        "duration": 485,
        "audioUrl": "https://recordings.salesloft.example/calls/98765432.mp3",
        "metadata": {"source": "salesloft", "salesloftCallId": call_id, "syncMethod": "polling"}
    })
}

async fn post(k: &KendoSim, body: &Value) -> reqwest::Response {
    client()
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn error_of(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.unwrap();
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn key_in_x_api_key_header_creates_the_call_with_201_and_a_call_id() {
    let k = kendo(1.0).await;
    let resp = post(&k, &payload("98765432")).await;
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, json!({"success": true, "callId": "call_1"}));
    let accepted = k.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].auth, AuthMethod::ApiKeyHeader);
    assert_eq!(accepted[0].team, "Alpha Team");
    assert_eq!(accepted[0].source_call_id().as_deref(), Some("98765432"));
    assert_eq!(
        accepted[0].content_type.as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn key_as_bearer_token_is_accepted() {
    let k = kendo(1.0).await;
    let resp = client()
        .post(k.ingest_url())
        .bearer_auth(OTHER_KEY)
        .json(&payload("1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(k.accepted()[0].auth, AuthMethod::Bearer);
    assert_eq!(k.accepted()[0].team, "Beta Team");
}

#[tokio::test]
async fn key_in_api_key_query_parameter_is_accepted() {
    let k = kendo(1.0).await;
    let resp = client()
        .post(format!("{}?apiKey={KEY}", k.ingest_url()))
        .json(&payload("1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(k.accepted()[0].auth, AuthMethod::Query);
}

#[tokio::test]
async fn key_in_body_api_key_field_is_accepted() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body["apiKey"] = json!(KEY);
    let resp = client()
        .post(k.ingest_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(k.accepted()[0].auth, AuthMethod::Body);
}

#[tokio::test]
async fn unknown_key_is_answered_401_and_creates_nothing() {
    let k = kendo(1.0).await;
    let resp = client()
        .post(k.ingest_url())
        .header("X-API-Key", "pk_wrong")
        .json(&payload("1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(error_of(resp).await, "Invalid API key");
    assert!(k.accepted().is_empty());
    assert_eq!(k.stats().rejected_401, 1);
}

#[tokio::test]
async fn request_without_any_key_is_answered_401() {
    let k = kendo(1.0).await;
    let resp = client()
        .post(k.ingest_url())
        .json(&payload("1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn revoked_key_is_answered_401_until_restored() {
    let k = kendo(1.0).await;
    assert_eq!(post(&k, &payload("1")).await.status(), 201);
    k.revoke_key(KEY);
    assert_eq!(post(&k, &payload("2")).await.status(), 401);
    k.restore_key(KEY);
    assert_eq!(post(&k, &payload("3")).await.status(), 201);
    assert_eq!(k.accepted().len(), 2);
}

#[tokio::test]
async fn malformed_json_is_answered_400() {
    let k = kendo(1.0).await;
    let resp = client()
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .header("Content-Type", "application/json")
        .body("{\"callTitle\": \"x\",")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error_of(resp).await, "Invalid JSON body");
    assert_eq!(k.stats().rejected_400, 1);
}

#[tokio::test]
async fn payload_without_transcript_or_audio_url_is_answered_400() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body["audioUrl"] = json!("");
    let resp = post(&k, &body).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        error_of(resp).await,
        "Either transcript or audioUrl is required"
    );
}

#[tokio::test]
async fn transcript_alone_is_enough() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body.as_object_mut().unwrap().remove("audioUrl");
    body["transcript"] = json!("Rep: Hi, this is Nina from YourCo.");
    assert_eq!(post(&k, &body).await.status(), 201);
}

#[tokio::test]
async fn rep_email_that_is_not_an_email_is_answered_400() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body["repEmail"] = json!("Jamie Rivera");
    let resp = post(&k, &body).await;
    assert_eq!(resp.status(), 400);
    assert!(error_of(resp).await.contains("repEmail"));
}

#[tokio::test]
async fn call_date_that_is_not_iso_8601_is_answered_400() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body["callDate"] = json!("2026-03-05 18:10:00");
    let resp = post(&k, &body).await;
    assert_eq!(resp.status(), 400);
    assert!(error_of(resp).await.contains("callDate"));
}

#[tokio::test]
async fn body_one_byte_over_five_megabytes_is_answered_413() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body["transcript"] = json!("");
    let base = body.to_string().len();
    body["transcript"] = json!("a".repeat(5_000_001 - base));
    let raw = body.to_string();
    assert_eq!(raw.len(), 5_000_001);
    let resp = client()
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(k.stats().rejected_413, 1);
    assert!(k.accepted().is_empty());
}

#[tokio::test]
async fn body_of_exactly_five_megabytes_is_accepted() {
    let k = kendo(1.0).await;
    let mut body = payload("1");
    body["transcript"] = json!("");
    let base = body.to_string().len();
    body["transcript"] = json!("a".repeat(5_000_000 - base));
    let raw = body.to_string();
    assert_eq!(raw.len(), 5_000_000);
    let resp = client()
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let k = KendoSim::start(KendoOptions {
        keys: vec![(KEY.into(), "Alpha Team".into())],
        max_body_bytes: 100,
        ..KendoOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(post(&k, &payload("1")).await.status(), 413);
}

#[tokio::test(start_paused = true)]
async fn thirty_first_request_in_a_scaled_minute_gets_429_with_retry_after() {
    // At scale 30 the 60 s window lasts 2 s.
    let k = kendo(30.0).await;
    assert_eq!(k.window(), Duration::from_secs(2));
    for i in 0..30 {
        let resp = post(&k, &payload(&i.to_string())).await;
        assert_eq!(resp.status(), 201, "request {i}");
    }
    let resp = post(&k, &payload("30")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(k.stats().rate_limited_429, 1);
    assert_eq!(k.accepted().len(), 30);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_window_slides_with_scaled_time() {
    let k = kendo(30.0).await;
    for i in 0..30 {
        assert_eq!(post(&k, &payload(&i.to_string())).await.status(), 201);
    }
    assert_eq!(post(&k, &payload("x")).await.status(), 429);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(post(&k, &payload("31")).await.status(), 201);
}

#[tokio::test(start_paused = true)]
async fn each_key_has_its_own_window() {
    let k = kendo(30.0).await;
    for i in 0..30 {
        assert_eq!(post(&k, &payload(&i.to_string())).await.status(), 201);
    }
    let resp = client()
        .post(k.ingest_url())
        .header("X-API-Key", OTHER_KEY)
        .json(&payload("other"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test(start_paused = true)]
async fn arrivals_show_a_client_that_outpaced_the_limit() {
    let k = kendo(30.0).await;
    for i in 0..20 {
        post(&k, &payload(&i.to_string())).await;
    }
    tokio::time::advance(Duration::from_millis(1500)).await;
    for i in 20..32 {
        post(&k, &payload(&i.to_string())).await;
    }
    assert_eq!(k.arrivals(KEY).len(), 32);
    assert_eq!(k.max_requests_in_any_window(KEY), 32);
    tokio::time::advance(Duration::from_secs(2)).await;
    post(&k, &payload("late")).await;
    assert_eq!(k.max_requests_in_any_window(KEY), 32);
}

#[tokio::test(start_paused = true)]
async fn a_paced_client_never_fills_a_window() {
    let k = kendo(30.0).await;
    // One request every 70 ms: 28 per 2 s window.
    for i in 0..60 {
        assert_eq!(post(&k, &payload(&i.to_string())).await.status(), 201);
        tokio::time::advance(Duration::from_millis(70)).await;
    }
    assert!(k.max_requests_in_any_window(KEY) <= 30);
    assert_eq!(k.stats().rate_limited_429, 0);
}

#[tokio::test]
async fn fail_next_answers_500_then_recovers() {
    let k = kendo(1.0).await;
    k.fail_next(2, 500);
    assert_eq!(post(&k, &payload("1")).await.status(), 500);
    assert_eq!(post(&k, &payload("1")).await.status(), 500);
    assert_eq!(post(&k, &payload("1")).await.status(), 201);
    let stats = k.stats();
    assert_eq!(stats.server_errors_5xx, 2);
    assert_eq!(stats.created, 1);
    assert_eq!(stats.requests, 3);
}

#[tokio::test(start_paused = true)]
async fn an_injected_429_carries_retry_after_and_the_window_429_body() {
    // At scale 30 the 60 s window lasts 2 s.
    let k = kendo(30.0).await;
    k.fail_next(1, 429);
    let resp = post(&k, &payload("1")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Rate limit exceeded. Try again later.");
    assert_eq!(k.stats().rate_limited_429, 1);
    assert!(k.accepted().is_empty());
    for i in 0..30 {
        let resp = post(&k, &payload(&i.to_string())).await;
        assert_eq!(resp.status(), 201, "the injected 429 used no room: {i}");
    }
}

#[tokio::test]
async fn gateway_faults_answer_502_and_503_in_html() {
    let k = kendo(1.0).await;
    k.fail_next(1, 502);
    k.fail_next(1, 503);
    let first = post(&k, &payload("1")).await;
    assert_eq!(first.status(), 502);
    assert!(
        first.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(post(&k, &payload("1")).await.status(), 503);
    assert!(k.accepted().is_empty());
}

#[tokio::test(start_paused = true)]
async fn delayed_answer_outlasts_the_client_timeout_yet_the_call_is_created() {
    let k = kendo(1.0).await;
    k.delay_next(1, Duration::from_secs(30));
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = impatient
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .json(&payload("98765432"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(k.accepted().len(), 1);
    assert!(!k.accepted()[0].response_lost);
}

#[tokio::test(start_paused = true)]
async fn delayed_answer_arrives_after_the_delay() {
    let k = kendo(1.0).await;
    k.delay_next(1, Duration::from_secs(5));
    let start = tokio::time::Instant::now();
    assert_eq!(post(&k, &payload("1")).await.status(), 201);
    assert!(start.elapsed() >= Duration::from_secs(5));
}

#[tokio::test]
async fn create_then_drop_records_the_call_but_the_client_gets_no_answer() {
    let k = kendo(1.0).await;
    k.drop_after_create_next(1);
    let err = client()
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .json(&payload("98765432"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err}");
    let accepted = k.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].response_lost);
    let stats = k.stats();
    assert_eq!(stats.created, 1);
    assert_eq!(stats.dropped_after_create, 1);
    assert_eq!(k.requests()[0].status, None);
}

#[tokio::test]
async fn create_then_drop_skips_requests_that_create_nothing() {
    let k = kendo(1.0).await;
    k.drop_after_create_next(1);
    let mut bad = payload("1");
    bad["repEmail"] = json!("nope");
    assert_eq!(post(&k, &bad).await.status(), 400);
    assert!(
        client()
            .post(k.ingest_url())
            .header("X-API-Key", KEY)
            .json(&payload("1"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_retry_after_a_lost_201_is_counted_as_a_duplicate() {
    let k = kendo(1.0).await;
    k.drop_after_create_next(1);
    let _ = client()
        .post(k.ingest_url())
        .header("X-API-Key", KEY)
        .json(&payload("98765432"))
        .send()
        .await;
    assert_eq!(post(&k, &payload("98765432")).await.status(), 201);
    assert_eq!(post(&k, &payload("11111111")).await.status(), 201);
    let dups = k.duplicates();
    assert_eq!(dups.len(), 1);
    assert_eq!(dups[0].source, "salesloft");
    assert_eq!(dups[0].source_call_id, "98765432");
    assert_eq!(dups[0].count, 2);
    assert_eq!(dups[0].call_ids, vec!["call_1", "call_2"]);
}

#[tokio::test]
async fn webhook_is_signed_with_hex_hmac_sha256_of_the_raw_body() {
    let k = kendo(1.0).await;
    let rx = Receiver::start().await;
    post(&k, &payload("98765432")).await;
    let event = k.call_uploaded_event(&k.accepted()[0], 87);
    let delivery = k.send_webhook(&rx.url, "whsec_kendo", &event).await;
    assert!(delivery.delivered);
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    let expected = hex::encode(hmac_sha256(b"whsec_kendo", &hit.body));
    assert_eq!(hit.header("x-kendo-signature"), expected);
    assert_eq!(hit.header("x-kendo-event"), "call.uploaded");
    assert_eq!(hit.header("x-kendo-delivery-id"), event.id);
    assert_eq!(hit.header("content-type"), "application/json");
}

#[tokio::test]
async fn webhook_signature_can_be_base64() {
    let k = kendo(1.0).await;
    let rx = Receiver::start().await;
    let event = k.training_completed_event("trn_1", "Sales Agent", 90);
    k.send_webhook_with(&rx.url, "s3cret", &event, SignatureEncoding::Base64)
        .await;
    let hit = &rx.hits()[0];
    let expected =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"s3cret", &hit.body));
    assert_eq!(hit.header("x-kendo-signature"), expected);
}

#[tokio::test]
async fn webhook_signature_can_be_sha256_prefixed_hex() {
    let k = kendo(1.0).await;
    let rx = Receiver::start().await;
    let event = k.training_completed_event("trn_1", "Sales Agent", 90);
    k.send_webhook_with(&rx.url, "s3cret", &event, SignatureEncoding::PrefixedHex)
        .await;
    let hit = &rx.hits()[0];
    let expected = format!("sha256={}", hex::encode(hmac_sha256(b"s3cret", &hit.body)));
    assert_eq!(hit.header("x-kendo-signature"), expected);
}

#[tokio::test]
async fn call_uploaded_event_carries_the_call_id_and_the_score_as_a_string() {
    let k = kendo(1.0).await;
    post(&k, &payload("98765432")).await;
    let event = k.call_uploaded_event(&k.accepted()[0], 87);
    let body: Value = serde_json::from_str(&event.body()).unwrap();
    assert_eq!(body["event"], "call.uploaded");
    assert_eq!(body["id"], json!(event.id));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["data"]["callId"], "call_1");
    assert_eq!(body["data"]["aiScore"], "87");
    assert_eq!(body["data"]["agentName"], "Jamie Rivera");
    assert_eq!(body["data"]["duration"], 485.0);
}

#[tokio::test]
async fn training_completed_event_carries_the_training_id() {
    let k = kendo(1.0).await;
    let event = k.training_completed_event("trn_42", "Sales Agent", 90);
    let body: Value = serde_json::from_str(&event.body()).unwrap();
    assert_eq!(body["event"], "ai.training.completed");
    assert_eq!(body["data"]["trainingId"], "trn_42");
    assert_eq!(body["data"]["aiScore"], "90");
    assert!(body["data"].get("callId").is_none());
}

#[tokio::test]
async fn test_delivery_is_marked_is_test_under_the_test_event_header() {
    let k = kendo(1.0).await;
    let rx = Receiver::start().await;
    let event = k.test_event();
    k.send_webhook(&rx.url, "s", &event).await;
    let hit = &rx.hits()[0];
    assert_eq!(hit.header("x-kendo-event"), TEST_EVENT_HEADER);
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["data"]["_isTest"], true);
}

#[tokio::test(start_paused = true)]
async fn webhook_is_retried_after_non_2xx_with_one_then_two_seconds_of_back_off() {
    let k = kendo(1.0).await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500, 503]);
    let event = k.training_completed_event("trn_1", "Sales Agent", 90);
    let delivery = k.send_webhook(&rx.url, "s", &event).await;
    assert!(delivery.delivered);
    assert_eq!(
        delivery.attempts,
        vec![
            Attempt::Status(500),
            Attempt::Status(503),
            Attempt::Status(200)
        ]
    );
    let hits = rx.hits();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[1].at - hits[0].at, Duration::from_secs(1));
    assert_eq!(hits[2].at - hits[1].at, Duration::from_secs(2));
    assert!(hits.iter().all(|h| h.body == hits[0].body));
    assert!(
        hits.iter()
            .all(|h| h.header("x-kendo-delivery-id") == event.id)
    );
}

#[tokio::test(start_paused = true)]
async fn webhook_back_off_is_scaled() {
    let k = kendo(10.0).await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500]);
    let event = k.training_completed_event("trn_1", "Sales Agent", 90);
    k.send_webhook(&rx.url, "s", &event).await;
    let hits = rx.hits();
    assert_eq!(hits[1].at - hits[0].at, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn webhook_gives_up_after_three_attempts() {
    let k = kendo(1.0).await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500, 500, 500, 500]);
    let event = k.training_completed_event("trn_1", "Sales Agent", 90);
    let delivery = k.send_webhook(&rx.url, "s", &event).await;
    assert!(!delivery.delivered);
    assert_eq!(delivery.attempts.len(), 3);
    assert_eq!(rx.hits().len(), 3);
}

#[tokio::test]
async fn webhook_to_a_closed_port_records_failed_attempts() {
    let k = kendo(1000.0).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let event = k.training_completed_event("trn_1", "Sales Agent", 90);
    let delivery = k
        .send_webhook(&format!("http://{closed}/hook"), "s", &event)
        .await;
    assert!(!delivery.delivered);
    assert!(
        delivery
            .attempts
            .iter()
            .all(|a| matches!(a, Attempt::Failed(_)))
    );
}

#[tokio::test]
async fn wrong_path_is_404_and_get_is_405() {
    let k = kendo(1.0).await;
    let c = client();
    let r = c
        .post(format!("{}/api/ingest", k.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(k.ingest_url()).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

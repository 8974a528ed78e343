//! The Aloware webhook sender, tested against a recording receiver.

mod common;

use base64::Engine;
use kendo_bridge_sim::aloware::{
    self, AlowareAuth, AlowareCall, AlowareContact, AlowareSim, Direction, Outcome,
};
use kendo_bridge_sim::dataset::Dataset;
use serde_json::{Value, json};
use time::macros::datetime;

use common::Receiver;

fn call(numbers_as_strings: bool) -> AlowareCall {
    AlowareCall {
        id: json!(940_868_616u64),
        direction: Direction::Outbound,
        outcome: Outcome::Completed,
        duration: 66,
        talk_time: 63,
        wait_time: 3,
        disposition: Some((31_221, "Interested".into())),
        has_recording: true,
        recording_url: None,
        has_transcription: false,
        lead_number: "+12025550142".into(),
        incoming_number: "+14155550199".into(),
        contact: AlowareContact {
            id: json!(33_441_122u64),
            first_name: "Alex".into(),
            last_name: "Morgan".into(),
            phone_number: "+12025550142".into(),
            email: None,
            company_name: Some("Acme Corp".into()),
        },
        campaign_id: json!(44),
        user_id: 5013,
        notes: None,
        created_at: datetime!(2026-08-05 20:58:49 UTC),
        numbers_as_strings,
    }
}

fn body_of(hit: &common::Hit) -> Value {
    serde_json::from_slice(&hit.body).unwrap()
}

#[tokio::test]
async fn delivery_posts_the_envelope_with_a_bearer_token() {
    let rx = Receiver::start().await;
    let sim = AlowareSim::new().unwrap();
    let status = sim
        .deliver(
            &rx.url,
            &AlowareAuth::Bearer("alo-secret".into()),
            &aloware::disposition_completed(&call(false)),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let hit = &rx.hits()[0];
    assert_eq!(hit.header("authorization"), "Bearer alo-secret");
    let v = body_of(hit);
    assert_eq!(v["event"], "OutboundPhoneCall-DispositionCompleted");
    assert_eq!(v["body"]["id"], 940_868_616u64);
    assert_eq!(v["body"]["type"], 1);
    assert_eq!(v["body"]["direction"], 2);
    assert_eq!(v["body"]["created_at"], "2026-08-05 20:58:49");
    assert!(hit.headers.get("x-signature").is_none());
}

#[tokio::test]
async fn basic_auth_sends_base64_of_user_colon_password() {
    let rx = Receiver::start().await;
    let sim = AlowareSim::new().unwrap();
    sim.deliver(
        &rx.url,
        &AlowareAuth::Basic("bridge".into(), "p@ss:word".into()),
        &aloware::test_payload(),
    )
    .await
    .unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bridge:p@ss:word")
    );
    assert_eq!(rx.hits()[0].header("authorization"), expected);
}

#[tokio::test]
async fn no_auth_sends_no_authorization_header() {
    let rx = Receiver::start().await;
    let sim = AlowareSim::new().unwrap();
    sim.deliver(&rx.url, &AlowareAuth::None, &aloware::test_payload())
        .await
        .unwrap();
    let hit = &rx.hits()[0];
    assert!(hit.headers.get("authorization").is_none());
    assert_eq!(body_of(hit), json!({"test_payload": true}));
}

#[tokio::test]
async fn a_500_is_reported_and_never_retried() {
    let rx = Receiver::start().await;
    rx.respond_with(&[500]);
    let sim = AlowareSim::new().unwrap();
    let status = sim
        .deliver(
            &rx.url,
            &AlowareAuth::None,
            &aloware::call_disposed(&call(false)),
        )
        .await
        .unwrap();
    assert_eq!(status, 500);
    assert_eq!(rx.hits().len(), 1);
    assert_eq!(sim.deliveries()[0].status, Some(500));
    assert_eq!(sim.deliveries()[0].event.as_deref(), Some("Call-Disposed"));
}

#[test]
fn inbound_calls_use_the_inbound_event_name_and_direction_one() {
    let mut c = call(false);
    c.direction = Direction::Inbound;
    let e = aloware::disposition_completed(&c);
    assert_eq!(e["event"], "InboundPhoneCall-DispositionCompleted");
    assert_eq!(e["body"]["direction"], 1);
}

#[test]
fn numbers_can_arrive_as_strings() {
    let e = aloware::disposition_completed(&call(true));
    assert_eq!(e["body"]["duration"], "66");
    assert_eq!(e["body"]["talk_time"], "63");
    assert_eq!(e["body"]["user_id"], "5013");
    let e = aloware::disposition_completed(&call(false));
    assert_eq!(e["body"]["duration"], 66);
}

#[test]
fn recording_saved_carries_the_direct_recording_url() {
    let c = call(false);
    assert!(aloware::disposition_completed(&c)["body"]["direct_recording_url"].is_null());
    let e = aloware::recording_saved(&c, "https://app.aloware.example/static/recording/abc");
    assert_eq!(e["event"], "Recording-Saved");
    assert_eq!(
        e["body"]["direct_recording_url"],
        "https://app.aloware.example/static/recording/abc"
    );
}

#[test]
fn call_summarized_nests_the_call_id_in_communication_and_holds_no_transcript_text() {
    let e = aloware::call_summarized(&call(false), "Short summary.");
    assert_eq!(e["event"], "transcription.call.summarized");
    assert!(e["body"].get("id").is_none());
    assert_eq!(e["body"]["communication"]["id"], 940_868_616u64);
    assert_eq!(e["body"]["summary"], "Short summary.");
    assert!(e["body"]["transcription"].is_object(), "ids, not text");
    assert!(e["body"].get("parsed_transcription").is_none());
}

#[test]
fn transcript_saved_carries_the_text_as_parsed_messages() {
    let e = aloware::transcript_saved(&call(false), "Short summary.", "Rep: Hi.\nContact: Hello.");
    assert_eq!(e["event"], "transcription.open_search.saved");
    assert_eq!(e["body"]["communication"]["id"], 940_868_616u64);
    let messages = &e["body"]["parsed_transcription"]["messages"];
    assert_eq!(messages[0]["speaker"], "Rep");
    assert_eq!(messages[0]["text"], "Hi.");
    assert_eq!(messages[1]["speaker"], "Contact");
    assert!(messages[1]["start"].as_u64() > messages[0]["start"].as_u64());
}

#[test]
fn the_captured_completed_call_has_the_captured_names_offsets_and_shapes() {
    let seq = aloware::captured_completed_call(
        &call(false),
        "https://app.aloware.io/static/recording/32c1a2f8",
        "Summary.",
        "Rep: Hi.",
    );
    let names: Vec<(&str, u128)> = seq.iter().map(|s| (s.event(), s.at.as_millis())).collect();
    assert_eq!(
        names,
        [
            ("OutboundPhoneCall", 0),
            ("OutboundPhoneCall-DispositionCompleted", 70_365),
            ("Recording-Saved", 74_375),
            ("Call-Disposed", 77_001),
            ("transcription.call.summarized", 118_634),
            ("transcription.open_search.saved", 118_651),
        ]
    );
    let initiated = &seq[0].payload["body"];
    for absent in [
        "current_status",
        "disposition_status",
        "direct_recording_url",
        "call_disposition",
    ] {
        assert!(
            initiated.get(absent).is_none(),
            "{absent} is absent, not null"
        );
    }
    assert_eq!(initiated["current_status2"], 1);
    let with_url: Vec<&str> = seq
        .iter()
        .filter(|s| s.payload["body"].get("direct_recording_url").is_some())
        .map(|s| s.event())
        .collect();
    assert_eq!(with_url, ["Recording-Saved"]);
    let completed = &seq[1].payload["body"];
    assert_eq!(
        (
            completed["talk_time"].clone(),
            completed["wait_time"].clone(),
            completed["duration"].clone()
        ),
        (json!(63), json!(3), json!(66))
    );
    assert_eq!(completed["has_transcription"], false);
}

#[test]
fn the_captured_failed_dial_fails_after_thirty_seconds_of_agent_ringing() {
    let seq = aloware::captured_failed_dial(&call(false));
    assert_eq!(seq.len(), 2);
    assert_eq!(seq[1].event(), "OutboundPhoneCall-DispositionFailed");
    assert_eq!(seq[1].at.as_millis(), 31_746);
    let body = &seq[1].payload["body"];
    assert_eq!(body["wait_time"], 30);
    assert_eq!(body["talk_time"], 0);
    assert_eq!(body["disposition_status2"], 5);
    assert!(body["customer_leg_status"].is_null());
}

#[tokio::test(start_paused = true)]
async fn replay_keeps_the_captured_gaps_divided_by_the_time_scale() {
    let rx = Receiver::start().await;
    let sim = AlowareSim::new().unwrap();
    let seq = aloware::captured_failed_dial(&call(false));
    let started = tokio::time::Instant::now();
    let statuses = sim.replay(&rx.url, &AlowareAuth::None, &seq, 1_000.0).await;
    assert_eq!(statuses.iter().filter(|s| matches!(s, Ok(200))).count(), 2);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_micros(31_746),
        "{elapsed:?}: the gap was kept"
    );
    let names: Vec<String> = rx
        .hits()
        .iter()
        .map(|h| body_of(h)["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        ["OutboundPhoneCall", "OutboundPhoneCall-DispositionFailed"]
    );
}

#[test]
fn sms_is_type_two() {
    let c = call(false);
    let e = aloware::inbound_sms(7, &c.contact, 5013, "hi", c.created_at);
    assert_eq!(e["event"], "InboundSMS-DispositionCompleted");
    assert_eq!(e["body"]["type"], 2);
}

#[test]
fn demo_events_repeat_the_disposition_and_include_sms_and_the_test_payload() {
    let d = Dataset::demo(11);
    let names: Vec<&str> = d
        .aloware_events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    let example_events: Vec<&str> = d
        .aloware_events
        .iter()
        .filter(|e| e["body"]["id"] == "cw_12345" || e["body"]["communication"]["id"] == "cw_12345")
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        example_events,
        vec![
            "OutboundPhoneCall-DispositionCompleted",
            "Recording-Saved",
            "Call-Disposed",
            "transcription.call.summarized",
            "transcription.open_search.saved"
        ]
    );
    assert!(names.contains(&"InboundSMS-DispositionCompleted"));
    assert!(names.contains(&"InboundPhoneCall-DispositionCompleted"));
    assert!(names.contains(&"OutboundPhoneCall-DispositionFailed"));
    assert!(d.aloware_events.contains(&json!({"test_payload": true})));
}

#[tokio::test]
async fn the_dataset_delivers_every_event_in_order() {
    let rx = Receiver::start().await;
    let sim = AlowareSim::new().unwrap();
    let d = Dataset::demo(11);
    let results = d
        .deliver_aloware(&sim, &rx.url, &AlowareAuth::None, std::time::Duration::ZERO)
        .await;
    assert_eq!(results.len(), d.aloware_events.len());
    assert!(results.iter().all(|r| matches!(r, Ok(200))));
    let bodies: Vec<Value> = rx.hits().iter().map(body_of).collect();
    assert_eq!(bodies, d.aloware_events);
}

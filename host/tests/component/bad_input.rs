//! The bad-input matrix, through the release component inside wasmtime:
//! each kind of broken or hostile input comes back as a value the host can
//! act on (an input error, a build error, a skip, an ignore, a refused
//! signature), never as a trap.

use crate::support::{
    MAX_BODY_BYTES, build_ingest, default_rules, instance, map_aloware, map_salesloft,
    read_aloware_event, read_fixture, salesloft_inputs,
};
use kendo_bridge::plugin::{
    aloware::{Event, IgnoreCode},
    kendo::BuildError,
    signatures::{Scheme, SignatureError, SignedRequest},
    types::{Call, Decision, InputError, RepEntry, Rules, SkipCode, SyncMethod},
};
use serde_json::{Value, json};

/// Kendo's limit is 5 MB; this transcript is 6 MB of ASCII.
const SIX_MB: usize = 6_000_000;

fn seed_call() -> Value {
    serde_json::from_str(&read_fixture("seed-examples/inputs/salesloft-call.json"))
        .expect("the seed call is JSON")
}

fn seed_user() -> String {
    read_fixture("seed-examples/inputs/salesloft-user.json")
}

fn map_seed_call(call: &Value) -> Result<Decision, InputError> {
    let mut instance = instance();
    let mut inputs = salesloft_inputs(call.to_string());
    inputs.user = Some(seed_user());
    map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    )
    .expect("map-call does not trap")
}

fn sent_call(decision: Decision) -> Call {
    match decision {
        Decision::Send(call) => call,
        other => panic!("expected a send, got {other:?}"),
    }
}

/// An Aloware call body (the seed delivery's) with its recording URL set or
/// removed.
fn aloware_body(audio: bool) -> String {
    let delivery: Value =
        serde_json::from_str(&read_fixture("seed-examples/inputs/aloware-delivery.json"))
            .expect("the seed delivery is JSON");
    let mut body = delivery["body"].clone();
    if !audio {
        body["direct_recording_url"] = Value::Null;
        body["has_recording"] = json!(false);
    }
    body["has_transcription"] = json!(false);
    body.to_string()
}

fn nina_rules() -> Rules {
    let mut rules = default_rules();
    rules.rep_directory.push(RepEntry {
        key: "4242".into(),
        email: "nina@yourco.com".into(),
        name: Some("Nina Patel".into()),
    });
    rules
}

#[test]
fn malformed_json_is_an_invalid_json_error() {
    let mut instance = instance();
    let inputs = salesloft_inputs(r#"{"id": 98765432, "recordings": [}"#.to_owned());
    let result = map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    )
    .expect("no trap");
    match result {
        Err(InputError::InvalidJson(message)) => {
            assert!(message.contains("line"), "names line and column: {message}");
        }
        other => panic!("expected invalid-json, got {other:?}"),
    }
}

#[test]
fn a_list_where_an_object_belongs_is_a_wrong_type_naming_the_field() {
    let mut call = seed_call();
    call["recordings"] = json!({ "url": "https://example.com/a.mp3" });
    match map_seed_call(&call) {
        Err(InputError::WrongType(problem)) => {
            assert_eq!(problem.field, "recordings", "{problem:?}");
        }
        other => panic!("expected wrong-type on recordings, got {other:?}"),
    }
}

#[test]
fn a_call_without_an_id_is_a_missing_field() {
    let mut call = seed_call();
    call.as_object_mut().expect("an object").remove("id");
    match map_seed_call(&call) {
        Err(InputError::MissingField(field)) => assert_eq!(field, "id"),
        other => panic!("expected missing-field id, got {other:?}"),
    }
}

#[test]
fn a_six_megabyte_transcript_with_audio_is_cut_to_fit_five_megabytes() {
    let mut instance = instance();
    let transcript = "word ".repeat(SIX_MB / 5);
    let decision = map_aloware(
        &mut instance,
        &aloware_body(true),
        Some(&transcript),
        &nina_rules(),
        SyncMethod::Webhook,
    )
    .expect("no trap")
    .expect("maps");
    let call = sent_call(decision);
    let request = build_ingest(&mut instance, &call, MAX_BODY_BYTES)
        .expect("no trap")
        .unwrap_or_else(|error| panic!("expected a cut payload, got {}", error.explain()));
    assert!(
        request.body.len() as u64 <= MAX_BODY_BYTES,
        "the body is {} bytes",
        request.body.len()
    );
    let cut = request.truncated.expect("the transcript was cut");
    assert_eq!(cut.original_chars, transcript.trim().chars().count() as u64);
    assert!(cut.kept_chars < cut.original_chars, "{cut:?}");
    let payload: Value = serde_json::from_str(&request.body).expect("JSON");
    assert_eq!(
        payload["audioUrl"], "https://...",
        "the audio still carries the call"
    );
}

#[test]
fn a_six_megabyte_transcript_without_audio_is_too_large() {
    let mut instance = instance();
    let transcript = "word ".repeat(SIX_MB / 5);
    let decision = map_aloware(
        &mut instance,
        &aloware_body(false),
        Some(&transcript),
        &nina_rules(),
        SyncMethod::Webhook,
    )
    .expect("no trap")
    .expect("maps");
    let call = sent_call(decision);
    match build_ingest(&mut instance, &call, MAX_BODY_BYTES).expect("no trap") {
        Err(BuildError::TooLarge(size)) => {
            assert_eq!(size.limit, MAX_BODY_BYTES);
            assert!(size.size > MAX_BODY_BYTES, "{size:?}");
        }
        other => panic!("expected too-large, got {other:?}"),
    }
}

#[test]
fn an_invalid_rep_email_is_never_sent() {
    let mut instance = instance();
    let mut rules = default_rules();
    rules.rep_directory.push(RepEntry {
        key: "1001".into(),
        email: "jamie at yourco".into(),
        name: None,
    });
    let inputs = salesloft_inputs(seed_call().to_string());
    let decision = map_salesloft(&mut instance, &inputs, &rules, SyncMethod::Polling)
        .expect("no trap")
        .expect("maps");
    match decision {
        Decision::Skip(skip) => assert_eq!(skip.code, SkipCode::InvalidRepEmail, "{skip}"),
        Decision::Send(call) => {
            match build_ingest(&mut instance, &call, MAX_BODY_BYTES).expect("no trap") {
                Err(BuildError::InvalidRepEmail(email)) => assert_eq!(email, "jamie at yourco"),
                other => panic!("expected invalid-rep-email, got {other:?}"),
            }
        }
        Decision::Wait(wait) => panic!("expected invalid-rep-email, got {wait}"),
    }
}

#[test]
fn an_aloware_call_without_recording_or_transcript_is_skipped_as_no_media() {
    let mut instance = instance();
    let decision = map_aloware(
        &mut instance,
        &aloware_body(false),
        None,
        &nina_rules(),
        SyncMethod::Webhook,
    )
    .expect("no trap")
    .expect("maps");
    match decision {
        Decision::Skip(skip) => assert_eq!(skip.code, SkipCode::NoMedia, "{skip}"),
        other => panic!("expected a no-media skip, got {other:?}"),
    }
}

#[test]
fn a_call_with_no_media_cannot_be_built() {
    let mut instance = instance();
    let decision = map_aloware(
        &mut instance,
        &aloware_body(true),
        None,
        &nina_rules(),
        SyncMethod::Webhook,
    )
    .expect("no trap")
    .expect("maps");
    let mut call = sent_call(decision);
    call.audio_url = None;
    call.transcript = None;
    match build_ingest(&mut instance, &call, MAX_BODY_BYTES).expect("no trap") {
        Err(BuildError::NoMedia) => {}
        other => panic!("expected no-media, got {other:?}"),
    }
}

#[test]
fn an_unknown_aloware_event_is_ignored_with_its_name() {
    let mut instance = instance();
    let delivery = r#"{"event": "Contact-Merged-Into-Void", "body": {"id": 1}}"#;
    match read_aloware_event(&mut instance, delivery).expect("no trap") {
        Ok(Event::Ignore(ignored)) => {
            assert_eq!(ignored.code, IgnoreCode::UnknownEvent, "{ignored}");
            assert!(
                ignored.detail.contains("Contact-Merged-Into-Void"),
                "names the event: {ignored}"
            );
        }
        other => panic!("expected unknown-event, got {other:?}"),
    }
}

fn kendo_request(body: &str, signature: &str) -> SignedRequest {
    SignedRequest {
        method: "POST".into(),
        uri: "https://bridge.example.com/webhooks/kendo".into(),
        headers: vec![kendo_bridge::plugin::types::Header {
            name: "X-Kendo-Signature".into(),
            value: signature.into(),
        }],
        body: body.as_bytes().to_vec(),
    }
}

fn own_vectors() -> Value {
    serde_json::from_str(&read_fixture("signatures/own-vectors.json")).expect("JSON")
}

#[test]
fn a_tampered_kendo_webhook_body_is_a_mismatch() {
    let vectors = own_vectors();
    let kendo = &vectors["kendo"];
    let secret = kendo["secret"].as_str().expect("secret");
    let body = kendo["body"].as_str().expect("body");
    let signature = kendo["hex_lower"].as_str().expect("signature");
    let tampered = body.replace("\"aiScore\":\"87\"", "\"aiScore\":\"97\"");
    assert_ne!(
        tampered, body,
        "the vector's body changed: update the tamper"
    );
    let mut instance = instance();
    let verdict = instance
        .call(|bridge, store| {
            bridge.kendo_bridge_signatures().call_verify(
                store,
                Scheme::Kendo,
                secret,
                &kendo_request(&tampered, signature),
                0,
            )
        })
        .expect("no trap");
    assert!(
        matches!(verdict, Err(SignatureError::Mismatch)),
        "expected a mismatch, got {verdict:?}"
    );
}

#[test]
fn a_hubspot_v3_request_older_than_five_minutes_is_stale() {
    let vectors = own_vectors();
    let vector = &vectors["hubspot_v3_plus_in_signature"];
    let field = |key: &str| vector[key].as_str().expect(key).to_owned();
    let timestamp: u64 = field("timestamp").parse().expect("ms");
    let request = SignedRequest {
        method: field("method"),
        uri: field("uri"),
        headers: vec![
            kendo_bridge::plugin::types::Header {
                name: "X-HubSpot-Signature-v3".into(),
                value: field("signature"),
            },
            kendo_bridge::plugin::types::Header {
                name: "X-HubSpot-Request-Timestamp".into(),
                value: field("timestamp"),
            },
        ],
        body: field("body").into_bytes(),
    };
    let now_ms = timestamp + 5 * 60 * 1000 + 1;
    let mut instance = instance();
    let verdict = instance
        .call(|bridge, store| {
            bridge.kendo_bridge_signatures().call_verify(
                store,
                Scheme::HubspotV3,
                &field("client_secret"),
                &request,
                now_ms,
            )
        })
        .expect("no trap");
    match verdict {
        Err(SignatureError::Stale(staleness)) => {
            assert_eq!(staleness.now_ms, now_ms);
            assert_eq!(
                staleness.timestamp_ms,
                i64::try_from(timestamp).expect("fits")
            );
        }
        other => panic!("expected stale, got {other:?}"),
    }
}

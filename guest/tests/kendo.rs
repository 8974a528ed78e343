//! The Kendo side of the plugin: Push API payloads, ingest responses and
//! Kendo's outgoing webhooks, called natively through the generated `Guest`
//! trait exactly as the component exports them.

use std::fmt;

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::kendo_api::{
    BuildError, Guest, IngestOutcome, IngestRequest, PayloadOptions, RejectionKind, ResultEvent,
    WebhookEvent,
};
use kendo_bridge_guest::types::{
    Call, Direction, FieldProblem, Header, InputError, SizeProblem, Source, SyncMethod,
};
use proptest::prelude::*;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

const FIVE_MB: u64 = 5_000_000;

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn build(call: Call, max_body_bytes: u64) -> Result<IngestRequest, BuildError> {
    <Plugin as Guest>::build_ingest(call, PayloadOptions { max_body_bytes })
}

fn body_of(call: Call) -> String {
    let request = build(call, FIVE_MB).unwrap();
    assert!(request.truncated.is_none());
    request.body
}

fn strings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A complete call from the Salesloft seed guide's example payload.
fn salesloft_seed_call() -> Call {
    Call {
        source: Source::Salesloft,
        source_id: "98765432".into(),
        title: "Outbound - Connected".into(),
        rep_name: Some("Jamie Rivera".into()),
        rep_email: Some("jamie@yourco.com".into()),
        started_at: Some("2026-04-22T15:30:00Z".into()),
        duration_seconds: Some(485),
        audio_url: Some("https://salesloft-recording-url...".into()),
        transcript: None,
        direction: Some(Direction::Outbound),
        disposition: Some("Connected".into()),
        sync_method: SyncMethod::Polling,
        metadata: strings(&[
            ("salesloftUserId", "4321"),
            ("salesloftDisposition", "Connected"),
            ("salesloftDirection", "outbound"),
        ]),
        warnings: Vec::new(),
    }
}

fn hubspot_seed_call() -> Call {
    Call {
        source: Source::Hubspot,
        source_id: "987654321".into(),
        title: "Discovery - Acme".into(),
        rep_name: Some("Sam Lee".into()),
        rep_email: Some("sam@yourco.com".into()),
        started_at: Some("2026-03-04T16:30:00Z".into()),
        // The guide's 1250000 is HubSpot's milliseconds; the bridge sends seconds.
        duration_seconds: Some(1250),
        audio_url: Some("https://...".into()),
        transcript: None,
        direction: None,
        disposition: None,
        sync_method: SyncMethod::Workflow,
        metadata: strings(&[("hubspotOwnerId", "41629711"), ("hubspotDealIds", "123456")]),
        warnings: Vec::new(),
    }
}

fn aloware_seed_call() -> Call {
    Call {
        source: Source::Aloware,
        source_id: "cw_12345".into(),
        title: "Outbound - Renewal Follow-up".into(),
        rep_name: Some("Nina Patel".into()),
        rep_email: Some("nina@yourco.com".into()),
        started_at: Some("2026-03-05T18:10:00Z".into()),
        duration_seconds: Some(742),
        audio_url: Some("https://...".into()),
        transcript: Some("Rep: Hi, this is Nina from...".into()),
        direction: Some(Direction::Outbound),
        disposition: None,
        sync_method: SyncMethod::Webhook,
        metadata: strings(&[
            ("alowareContactId", "ct_7788"),
            ("alowareCampaignId", "cmp_44"),
        ]),
        warnings: Vec::new(),
    }
}

/// The fewest fields a sendable call can have.
fn minimal_call() -> Call {
    Call {
        source: Source::Hubspot,
        source_id: "1".into(),
        title: "HubSpot call".into(),
        rep_name: None,
        rep_email: Some("rep@yourco.com".into()),
        started_at: None,
        duration_seconds: None,
        audio_url: Some("https://recordings.example/1.mp3".into()),
        transcript: None,
        direction: None,
        disposition: None,
        sync_method: SyncMethod::Polling,
        metadata: Vec::new(),
        warnings: Vec::new(),
    }
}

/// A JSON value whose objects keep their keys in document order, so a
/// pretty-printed snapshot shows the order on the wire (`serde_json::Value`
/// would sort them).
enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Ordered::Null, Ordered::Number))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered::Object(entries))
            }
        }
        deserializer.deserialize_any(OrderedVisitor)
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Null => serializer.serialize_unit(),
            Ordered::Bool(b) => serializer.serialize_bool(*b),
            Ordered::Number(n) => n.serialize(serializer),
            Ordered::String(s) => serializer.serialize_str(s),
            Ordered::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Ordered::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl Ordered {
    fn keys(&self) -> Vec<&str> {
        match self {
            Ordered::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object"),
        }
    }

    fn get(&self, key: &str) -> &Ordered {
        match self {
            Ordered::Object(entries) => &entries.iter().find(|(k, _)| k == key).unwrap().1,
            _ => panic!("not an object"),
        }
    }
}

fn ordered(body: &str) -> Ordered {
    serde_json::from_str(body).unwrap()
}

fn pretty(body: &str) -> String {
    serde_json::to_string_pretty(&ordered(body)).unwrap()
}

fn transcript_of(body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap();
    json["transcript"].as_str().unwrap().to_string()
}

fn marker(kept: u64, original: u64) -> String {
    format!("\n[transcript truncated by kendo-bridge: kept {kept} of {original} characters]")
}

/// A call whose only media worth cutting is `transcript`.
fn call_with_transcript(transcript: String) -> Call {
    Call {
        transcript: Some(transcript),
        ..salesloft_seed_call()
    }
}

/// Checks everything a truncated body promises and returns its transcript
/// without the marker.
fn assert_truncated_fits(original: &str, request: &IngestRequest, limit: u64) -> String {
    let truncation = request.truncated.as_ref().expect("the transcript was cut");
    assert!(
        request.body.len() as u64 <= limit,
        "{} > {limit}",
        request.body.len()
    );
    assert_eq!(truncation.original_chars, original.chars().count() as u64);
    let transcript = transcript_of(&request.body);
    let expected_marker = marker(truncation.kept_chars, truncation.original_chars);
    let kept = transcript
        .strip_suffix(&expected_marker)
        .expect("the transcript ends with the marker");
    assert_eq!(kept.chars().count() as u64, truncation.kept_chars);
    assert!(
        original.starts_with(kept),
        "the kept text is the start of the original"
    );
    kept.to_string()
}

// ---------------------------------------------------------------------------
// build-ingest: the seed guides' examples
// ---------------------------------------------------------------------------

#[test]
fn salesloft_seed_example_comes_out_exactly() {
    let body = body_of(salesloft_seed_call());
    assert_eq!(
        body,
        r#"{"callTitle":"Outbound - Connected","repName":"Jamie Rivera","repEmail":"jamie@yourco.com","callDate":"2026-04-22T15:30:00Z","duration":485,"audioUrl":"https://salesloft-recording-url...","metadata":{"source":"salesloft","salesloftCallId":"98765432","salesloftUserId":"4321","salesloftDisposition":"Connected","salesloftDirection":"outbound","syncMethod":"polling"}}"#
    );
    insta::assert_snapshot!("salesloft_seed_payload", pretty(&body));
}

#[test]
fn hubspot_seed_example_comes_out_exactly_with_duration_in_seconds() {
    let body = body_of(hubspot_seed_call());
    assert_eq!(
        body,
        r#"{"callTitle":"Discovery - Acme","repName":"Sam Lee","repEmail":"sam@yourco.com","callDate":"2026-03-04T16:30:00Z","duration":1250,"audioUrl":"https://...","metadata":{"source":"hubspot","hubspotCallId":"987654321","hubspotOwnerId":"41629711","hubspotDealIds":"123456","syncMethod":"workflow"}}"#
    );
    insta::assert_snapshot!("hubspot_seed_payload", pretty(&body));
}

#[test]
fn aloware_seed_example_comes_out_exactly_with_its_transcript() {
    let body = body_of(aloware_seed_call());
    assert_eq!(
        body,
        r#"{"callTitle":"Outbound - Renewal Follow-up","repName":"Nina Patel","repEmail":"nina@yourco.com","callDate":"2026-03-05T18:10:00Z","duration":742,"audioUrl":"https://...","transcript":"Rep: Hi, this is Nina from...","metadata":{"source":"aloware","alowareCallId":"cw_12345","alowareContactId":"ct_7788","alowareCampaignId":"cmp_44","syncMethod":"webhook"}}"#
    );
    insta::assert_snapshot!("aloware_seed_payload", pretty(&body));
}

// ---------------------------------------------------------------------------
// build-ingest: shape
// ---------------------------------------------------------------------------

#[test]
fn payload_keys_come_in_the_push_api_order() {
    let body = body_of(aloware_seed_call());
    assert_eq!(
        ordered(&body).keys(),
        [
            "callTitle",
            "repName",
            "repEmail",
            "callDate",
            "duration",
            "audioUrl",
            "transcript",
            "metadata"
        ]
    );
}

#[test]
fn metadata_starts_with_source_and_call_id_keeps_call_order_and_ends_with_sync_method() {
    let call = Call {
        metadata: strings(&[("zeta", "1"), ("alpha", "2"), ("middle", "3")]),
        ..salesloft_seed_call()
    };
    let body = body_of(call);
    assert_eq!(
        ordered(&body).get("metadata").keys(),
        [
            "source",
            "salesloftCallId",
            "zeta",
            "alpha",
            "middle",
            "syncMethod"
        ]
    );
}

#[test]
fn metadata_entries_that_repeat_a_reserved_key_are_dropped() {
    let call = Call {
        metadata: strings(&[
            ("source", "spoofed"),
            ("hubspotCallId", "spoofed"),
            ("hubspotOwnerId", "41629711"),
            ("syncMethod", "spoofed"),
        ]),
        ..hubspot_seed_call()
    };
    let body = body_of(call);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["metadata"],
        serde_json::json!({
            "source": "hubspot",
            "hubspotCallId": "987654321",
            "hubspotOwnerId": "41629711",
            "syncMethod": "workflow",
        })
    );
    assert!(!body.contains("spoofed"));
}

#[test]
fn a_repeated_metadata_key_keeps_its_first_value() {
    let call = Call {
        metadata: strings(&[("hubspotDealIds", "1"), ("hubspotDealIds", "2")]),
        ..hubspot_seed_call()
    };
    let body = body_of(call);
    assert!(body.contains(r#""hubspotDealIds":"1""#));
    assert!(!body.contains(r#""hubspotDealIds":"2""#));
}

#[test]
fn absent_options_are_omitted_not_null() {
    let body = body_of(minimal_call());
    assert_eq!(
        body,
        r#"{"callTitle":"HubSpot call","repEmail":"rep@yourco.com","audioUrl":"https://recordings.example/1.mp3","metadata":{"source":"hubspot","hubspotCallId":"1","syncMethod":"polling"}}"#
    );
}

#[test]
fn empty_transcript_beside_audio_is_omitted() {
    let call = Call {
        transcript: Some(String::new()),
        ..minimal_call()
    };
    assert!(!body_of(call).contains("transcript"));
}

#[test]
fn transcript_without_audio_is_sent_alone() {
    let call = Call {
        audio_url: None,
        transcript: Some("Rep: hello".into()),
        ..minimal_call()
    };
    let body = body_of(call);
    assert!(!body.contains("audioUrl"));
    assert!(body.contains(r#""transcript":"Rep: hello""#));
}

#[test]
fn call_date_with_an_offset_is_accepted_as_rfc3339() {
    let call = Call {
        started_at: Some("2026-04-22T11:30:00.123456-04:00".into()),
        ..minimal_call()
    };
    assert!(body_of(call).contains(r#""callDate":"2026-04-22T11:30:00.123456-04:00""#));
}

// ---------------------------------------------------------------------------
// build-ingest: errors
// ---------------------------------------------------------------------------

#[test]
fn call_without_audio_or_transcript_is_no_media() {
    let call = Call {
        audio_url: None,
        transcript: None,
        ..salesloft_seed_call()
    };
    assert!(matches!(build(call, FIVE_MB), Err(BuildError::NoMedia)));
}

#[test]
fn empty_audio_url_and_empty_transcript_are_no_media() {
    let call = Call {
        audio_url: Some(String::new()),
        transcript: Some(String::new()),
        ..salesloft_seed_call()
    };
    assert!(matches!(build(call, FIVE_MB), Err(BuildError::NoMedia)));
}

#[test]
fn call_without_rep_email_is_missing_rep_email() {
    let call = Call {
        rep_email: None,
        ..salesloft_seed_call()
    };
    assert!(matches!(
        build(call, FIVE_MB),
        Err(BuildError::MissingRepEmail)
    ));
}

#[test]
fn empty_rep_email_is_missing_rep_email() {
    let call = Call {
        rep_email: Some(String::new()),
        ..salesloft_seed_call()
    };
    assert!(matches!(
        build(call, FIVE_MB),
        Err(BuildError::MissingRepEmail)
    ));
}

#[test]
fn malformed_rep_emails_are_invalid_and_carry_the_value() {
    let too_long = format!("{}@yourco.com", "a".repeat(250));
    let cases = [
        "jamie",
        "jamie@",
        "@yourco.com",
        "jamie@@yourco.com",
        "jamie@your@co.com",
        "jamie rivera@yourco.com",
        " jamie@yourco.com",
        "jamie@yourco.com ",
        "jamie\t@yourco.com",
        "jamie@localhost",
        "jamie@yourco..com",
        "jamie@.yourco.com",
        "jamie@yourco.com.",
        "jamie@your co.com",
        too_long.as_str(),
    ];
    for email in cases {
        let call = Call {
            rep_email: Some(email.to_string()),
            ..salesloft_seed_call()
        };
        match build(call, FIVE_MB) {
            Err(BuildError::InvalidRepEmail(value)) => assert_eq!(value, email),
            other => panic!("{email:?} gave {other:?}"),
        }
    }
}

#[test]
fn ordinary_rep_emails_are_valid() {
    let longest = format!("{}@yourco.com", "a".repeat(254 - "@yourco.com".len()));
    for email in [
        "jamie@yourco.com",
        "jamie.rivera+calls@sales.yourco.co.uk",
        "J.O'Neil@your-co.com",
        "rené@exämple.de",
        longest.as_str(),
    ] {
        let call = Call {
            rep_email: Some(email.to_string()),
            ..minimal_call()
        };
        assert!(build(call, FIVE_MB).is_ok(), "{email:?} was refused");
    }
}

#[test]
fn call_date_that_is_not_rfc3339_is_invalid_and_carries_the_value() {
    for date in [
        "2026-04-22 15:30:00",
        "2026-04-22T15:30:00",
        "22/04/2026",
        "yesterday",
        "",
    ] {
        let call = Call {
            started_at: Some(date.to_string()),
            ..salesloft_seed_call()
        };
        match build(call, FIVE_MB) {
            Err(BuildError::InvalidCallDate(value)) => assert_eq!(value, date),
            other => panic!("{date:?} gave {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// build-ingest: size
// ---------------------------------------------------------------------------

#[test]
fn six_megabyte_transcript_with_audio_is_cut_to_fit_five_million_bytes() {
    let original = "Rep: thanks for taking the call today. ".repeat(6_000_000 / 39 + 1);
    assert!(original.len() > 6_000_000);
    let request = build(call_with_transcript(original.clone()), FIVE_MB).unwrap();
    let kept = assert_truncated_fits(&original, &request, FIVE_MB);
    // All ASCII: one more character would have gone over, so the cut is as
    // late as it can be.
    assert!(request.body.len() as u64 >= FIVE_MB - 1);
    assert!(kept.len() > 4_900_000);
}

#[test]
fn transcript_of_quotes_and_newlines_is_cut_by_its_escaped_length() {
    let original = "\"\n".repeat(50_000);
    let limit = 60_000;
    let request = build(call_with_transcript(original.clone()), limit).unwrap();
    assert_truncated_fits(&original, &request, limit);
    // Each character costs two bytes escaped; the cut leaves less room than
    // one more character (two bytes) plus a longer count in the marker.
    assert!(request.body.len() as u64 >= limit - 2);
}

#[test]
fn transcript_of_control_characters_is_cut_by_its_escaped_length() {
    let original = "\u{1}\u{7f}\\".repeat(20_000);
    let limit = 30_000;
    let request = build(call_with_transcript(original.clone()), limit).unwrap();
    assert_truncated_fits(&original, &request, limit);
    assert!(request.body.len() as u64 >= limit - 6);
}

#[test]
fn multibyte_transcript_is_cut_at_a_character_boundary_and_counted_in_characters() {
    let original = "é漢🎉".repeat(10_000);
    let limit = 20_000;
    let request = build(call_with_transcript(original.clone()), limit).unwrap();
    let kept = assert_truncated_fits(&original, &request, limit);
    assert_eq!(
        request.truncated.unwrap().original_chars,
        30_000,
        "characters, not bytes"
    );
    assert!(kept.chars().count() > 1_000);
}

#[test]
fn transcript_that_fits_is_left_whole() {
    let original = "Rep: hello".to_string();
    let request = build(call_with_transcript(original.clone()), FIVE_MB).unwrap();
    assert!(request.truncated.is_none());
    assert_eq!(transcript_of(&request.body), original);
}

#[test]
fn oversized_transcript_without_audio_is_too_large() {
    let call = Call {
        audio_url: None,
        ..call_with_transcript("x".repeat(10_000))
    };
    let full_size = {
        let roomy = build(call.clone(), u64::MAX).unwrap();
        roomy.body.len() as u64
    };
    match build(call, 5_000) {
        Err(BuildError::TooLarge(SizeProblem { size, limit })) => {
            assert_eq!(size, full_size);
            assert_eq!(limit, 5_000);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn limit_too_small_even_for_the_marker_is_too_large() {
    let call = call_with_transcript("x".repeat(10_000));
    let without_transcript = body_of(salesloft_seed_call()).len() as u64;
    assert!(matches!(
        build(call, without_transcript + 20),
        Err(BuildError::TooLarge(SizeProblem { limit, .. })) if limit == without_transcript + 20
    ));
}

#[test]
fn oversized_body_with_audio_but_no_transcript_is_too_large() {
    let call = Call {
        metadata: strings(&[("notes", &"n".repeat(10_000))]),
        ..salesloft_seed_call()
    };
    assert!(matches!(
        build(call, 5_000),
        Err(BuildError::TooLarge(SizeProblem { limit: 5_000, .. }))
    ));
}

// ---------------------------------------------------------------------------
// read-ingest-response
// ---------------------------------------------------------------------------

const NOW: u64 = 1_776_871_800; // 2026-04-22T15:30:00Z

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> IngestOutcome {
    let headers = headers
        .iter()
        .map(|(name, value)| Header {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    <Plugin as Guest>::read_ingest_response(status, headers, body.to_string(), NOW)
}

fn retry_after(headers: &[(&str, &str)]) -> u32 {
    match respond(429, headers, r#"{"error":"Rate limit exceeded"}"#) {
        IngestOutcome::RetryAfter(seconds) => seconds,
        other => panic!("{other:?}"),
    }
}

fn rejection(status: u16, body: &str) -> (RejectionKind, u16, String) {
    match respond(status, &[], body) {
        IngestOutcome::Rejected(r) => (r.kind, r.status, r.reason),
        other => panic!("{other:?}"),
    }
}

fn created(status: u16, body: &str) -> Option<String> {
    match respond(status, &[], body) {
        IngestOutcome::Created(id) => id,
        other => panic!("{other:?}"),
    }
}

fn retry_reason(status: u16, body: &str) -> String {
    match respond(status, &[], body) {
        IngestOutcome::Retry(reason) => reason,
        other => panic!("{other:?}"),
    }
}

#[test]
fn created_201_carries_the_call_id() {
    assert_eq!(
        created(201, r#"{"success":true,"callId":"cl_abc123"}"#).as_deref(),
        Some("cl_abc123")
    );
}

#[test]
fn created_call_id_is_also_read_from_data() {
    assert_eq!(
        created(201, r#"{"data":{"callId":"cl_nested"}}"#).as_deref(),
        Some("cl_nested")
    );
}

#[test]
fn created_call_id_falls_back_to_id() {
    assert_eq!(
        created(200, r#"{"id":"cl_plain"}"#).as_deref(),
        Some("cl_plain")
    );
}

#[test]
fn numeric_call_id_is_read_as_text() {
    assert_eq!(
        created(201, r#"{"callId":12345}"#).as_deref(),
        Some("12345")
    );
}

#[test]
fn success_without_a_call_id_is_still_created() {
    assert_eq!(created(201, r#"{"success":true}"#), None);
}

#[test]
fn success_with_an_empty_body_is_still_created() {
    assert_eq!(created(204, ""), None);
}

#[test]
fn success_with_an_html_body_is_still_created() {
    assert_eq!(created(200, "<html><body>OK</body></html>"), None);
}

#[test]
fn rate_limited_429_waits_for_retry_after_seconds() {
    assert_eq!(retry_after(&[("Retry-After", "17")]), 17);
}

#[test]
fn retry_after_header_name_is_case_insensitive() {
    assert_eq!(retry_after(&[("retry-after", "42")]), 42);
}

#[test]
fn retry_after_http_date_is_counted_from_now() {
    // NOW + 90 s.
    assert_eq!(
        retry_after(&[("Retry-After", "Wed, 22 Apr 2026 15:31:30 GMT")]),
        90
    );
}

#[test]
fn retry_after_rfc850_date_is_counted_from_now() {
    assert_eq!(
        retry_after(&[("Retry-After", "Wednesday, 22-Apr-26 15:32:00 GMT")]),
        120
    );
}

#[test]
fn retry_after_asctime_date_is_counted_from_now() {
    assert_eq!(
        retry_after(&[("Retry-After", "Wed Apr 22 15:30:45 2026")]),
        45
    );
}

#[test]
fn retry_after_date_in_the_past_waits_one_second() {
    assert_eq!(
        retry_after(&[("Retry-After", "Wed, 22 Apr 2026 15:00:00 GMT")]),
        1
    );
}

#[test]
fn retry_after_zero_waits_one_second() {
    assert_eq!(retry_after(&[("Retry-After", "0")]), 1);
}

#[test]
fn missing_retry_after_waits_sixty_seconds() {
    assert_eq!(retry_after(&[]), 60);
}

#[test]
fn unreadable_retry_after_waits_sixty_seconds() {
    assert_eq!(retry_after(&[("Retry-After", "soon")]), 60);
}

#[test]
fn retry_after_is_capped_at_an_hour() {
    assert_eq!(retry_after(&[("Retry-After", "86400")]), 3600);
}

#[test]
fn retry_after_too_long_for_any_integer_is_capped_at_an_hour() {
    assert_eq!(
        retry_after(&[("Retry-After", "99999999999999999999999999")]),
        3600
    );
}

#[test]
fn timeout_408_is_retried_with_the_status_text() {
    assert_eq!(retry_reason(408, ""), "408 Request Timeout");
}

#[test]
fn server_error_is_retried_with_kendos_message() {
    assert_eq!(
        retry_reason(500, r#"{"error":"database unavailable"}"#),
        "database unavailable"
    );
}

#[test]
fn server_error_with_an_html_page_is_retried_with_the_status_text() {
    assert_eq!(
        retry_reason(503, "<html><h1>503 Service Unavailable</h1></html>"),
        "503 Service Unavailable"
    );
}

#[test]
fn bad_request_400_is_rejected_with_the_error_field() {
    assert_eq!(
        rejection(400, r#"{"error":"Invalid repEmail"}"#),
        (
            RejectionKind::BadRequest,
            400,
            "Invalid repEmail".to_string()
        )
    );
}

#[test]
fn rejection_reason_is_read_from_message() {
    assert_eq!(
        rejection(400, r#"{"message":"audioUrl or transcript is required"}"#).2,
        "audioUrl or transcript is required"
    );
}

#[test]
fn rejection_reason_is_read_from_detail() {
    assert_eq!(
        rejection(400, r#"{"detail":"malformed JSON"}"#).2,
        "malformed JSON"
    );
}

#[test]
fn rejection_without_a_message_uses_the_status_text() {
    assert_eq!(rejection(400, "").2, "400 Bad Request");
}

#[test]
fn rejection_with_invalid_json_uses_the_status_text() {
    assert_eq!(rejection(400, "{\"error\": ").2, "400 Bad Request");
}

#[test]
fn unauthorized_401_pauses_the_key() {
    assert_eq!(
        rejection(401, r#"{"error":"Invalid API key"}"#),
        (
            RejectionKind::Unauthorized,
            401,
            "Invalid API key".to_string()
        )
    );
}

#[test]
fn forbidden_403_pauses_the_key() {
    assert_eq!(rejection(403, "").0, RejectionKind::Unauthorized);
}

#[test]
fn payload_too_large_413_is_rejected_as_too_large() {
    assert_eq!(
        rejection(413, ""),
        (
            RejectionKind::TooLarge,
            413,
            "413 Content Too Large".to_string()
        )
    );
}

#[test]
fn other_client_error_is_rejected_as_other() {
    assert_eq!(rejection(404, "").0, RejectionKind::Other);
}

#[test]
fn redirect_is_rejected_as_other() {
    assert_eq!(
        rejection(302, ""),
        (RejectionKind::Other, 302, "302 Found".to_string())
    );
}

// ---------------------------------------------------------------------------
// read-webhook
// ---------------------------------------------------------------------------

fn webhook(body: &str) -> Result<WebhookEvent, InputError> {
    <Plugin as Guest>::read_webhook(body.to_string())
}

fn call_uploaded(body: &str) -> ResultEvent {
    match webhook(body) {
        Ok(WebhookEvent::CallUploaded(event)) => event,
        other => panic!("{other:?}"),
    }
}

const CALL_UPLOADED: &str = r#"{ "id": "evt_123", "event": "call.uploaded", "created_at": "2026-03-05T12:00:00Z", "data": { "callId": "abc", "agentId": "agent_1", "agentName": "Sales Agent", "userId": "user_1", "teamMemberUserId": "member_1", "duration": 245.5, "aiScore": "87", "timestamp": "2026-03-05T12:00:00Z" } }"#;

const TRAINING_COMPLETED: &str = r#"{ "id": "evt_456", "event": "ai.training.completed", "created_at": "2026-03-05T12:02:00Z", "data": { "trainingId": "abc", "agentId": "agent_1", "agentName": "Sales Agent", "userId": "user_1", "teamMemberUserId": "member_1", "duration": 300, "aiScore": "90", "timestamp": "2026-03-05T12:02:00Z" } }"#;

#[test]
fn call_uploaded_seed_example_is_read_completely() {
    let event = call_uploaded(CALL_UPLOADED);
    assert_eq!(event.id, "evt_123");
    assert_eq!(event.created_at.as_deref(), Some("2026-03-05T12:00:00Z"));
    assert_eq!(event.subject_id, "abc");
    assert_eq!(event.agent_id.as_deref(), Some("agent_1"));
    assert_eq!(event.agent_name.as_deref(), Some("Sales Agent"));
    assert_eq!(event.user_id.as_deref(), Some("user_1"));
    assert_eq!(event.team_member_user_id.as_deref(), Some("member_1"));
    assert_eq!(event.duration_seconds, Some(245.5));
    assert_eq!(event.ai_score, Some(87.0));
    assert!(!event.is_test);
}

#[test]
fn training_completed_seed_example_uses_the_training_id() {
    match webhook(TRAINING_COMPLETED) {
        Ok(WebhookEvent::TrainingCompleted(event)) => {
            assert_eq!(event.id, "evt_456");
            assert_eq!(event.subject_id, "abc");
            assert_eq!(event.duration_seconds, Some(300.0));
            assert_eq!(event.ai_score, Some(90.0));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ai_score_sent_as_a_number_is_read() {
    let body = CALL_UPLOADED.replace(r#""aiScore": "87""#, r#""aiScore": 91.5"#);
    assert_eq!(call_uploaded(&body).ai_score, Some(91.5));
}

#[test]
fn duration_sent_as_text_is_read() {
    let body = CALL_UPLOADED.replace(r#""duration": 245.5"#, r#""duration": "245.5""#);
    assert_eq!(call_uploaded(&body).duration_seconds, Some(245.5));
}

#[test]
fn absent_optional_fields_are_none() {
    let event = call_uploaded(r#"{"id":"evt_1","event":"call.uploaded","data":{"callId":"c1"}}"#);
    assert_eq!(event.created_at, None);
    assert_eq!(event.agent_id, None);
    assert_eq!(event.agent_name, None);
    assert_eq!(event.duration_seconds, None);
    assert_eq!(event.ai_score, None);
}

#[test]
fn test_delivery_is_marked_as_a_test() {
    let body = CALL_UPLOADED.replace(
        r#""callId": "abc","#,
        r#""callId": "abc", "_isTest": true,"#,
    );
    assert!(call_uploaded(&body).is_test);
}

#[test]
fn test_delivery_without_a_call_id_has_an_empty_subject() {
    let event = call_uploaded(
        r#"{"id":"evt_test","event":"call.uploaded","created_at":"2026-03-05T12:00:00Z","data":{"_isTest":true,"aiScore":"87"}}"#,
    );
    assert!(event.is_test);
    assert_eq!(event.subject_id, "");
    assert_eq!(event.ai_score, Some(87.0));
}

#[test]
fn real_delivery_without_a_call_id_is_missing_data_call_id() {
    assert!(matches!(
        webhook(r#"{"id":"evt_1","event":"call.uploaded","data":{"aiScore":"87"}}"#),
        Err(InputError::MissingField(field)) if field == "data.callId"
    ));
}

#[test]
fn training_without_a_training_id_is_missing_data_training_id() {
    assert!(matches!(
        webhook(r#"{"id":"evt_1","event":"ai.training.completed","data":{"callId":"c1"}}"#),
        Err(InputError::MissingField(field)) if field == "data.trainingId"
    ));
}

#[test]
fn real_delivery_without_an_id_is_missing_id() {
    assert!(matches!(
        webhook(r#"{"event":"call.uploaded","data":{"callId":"c1"}}"#),
        Err(InputError::MissingField(field)) if field == "id"
    ));
}

#[test]
fn unknown_event_is_reported_by_name() {
    assert!(matches!(
        webhook(r#"{"id":"evt_9","event":"call.deleted","data":{"callId":"c1"}}"#),
        Ok(WebhookEvent::Unknown(name)) if name == "call.deleted"
    ));
}

#[test]
fn malformed_json_is_invalid_json_with_the_parsers_position() {
    match webhook(r#"{"id": "evt_1", "event": "call.uploaded", "#) {
        Err(InputError::InvalidJson(message)) => {
            assert!(message.contains("line 1 column"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn body_that_is_not_an_object_is_wrong_type() {
    assert!(matches!(
        webhook("[1, 2, 3]"),
        Err(InputError::WrongType(FieldProblem { field, .. })) if field == "$"
    ));
}

#[test]
fn missing_event_name_is_missing_event() {
    assert!(matches!(
        webhook(r#"{"id":"evt_1","data":{"callId":"c1"}}"#),
        Err(InputError::MissingField(field)) if field == "event"
    ));
}

#[test]
fn data_that_is_not_an_object_is_wrong_type_at_data() {
    assert!(matches!(
        webhook(r#"{"id":"evt_1","event":"call.uploaded","data":["c1"]}"#),
        Err(InputError::WrongType(FieldProblem { field, .. })) if field == "data"
    ));
}

#[test]
fn ai_score_of_the_wrong_type_names_its_path() {
    let body = CALL_UPLOADED.replace(r#""aiScore": "87""#, r#""aiScore": {"value": 87}"#);
    match webhook(&body) {
        Err(InputError::WrongType(FieldProblem { field, detail })) => {
            assert_eq!(field, "data.aiScore");
            assert!(detail.contains("an object"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ai_score_text_that_is_not_a_number_is_invalid_value() {
    let body = CALL_UPLOADED.replace(r#""aiScore": "87""#, r#""aiScore": "high""#);
    assert!(matches!(
        webhook(&body),
        Err(InputError::InvalidValue(FieldProblem { field, .. })) if field == "data.aiScore"
    ));
}

#[test]
fn is_test_of_the_wrong_type_names_its_path() {
    let body = CALL_UPLOADED.replace(
        r#""callId": "abc","#,
        r#""callId": "abc", "_isTest": "yes","#,
    );
    assert!(matches!(
        webhook(&body),
        Err(InputError::WrongType(FieldProblem { field, .. })) if field == "data._isTest"
    ));
}

// ---------------------------------------------------------------------------
// never a panic
// ---------------------------------------------------------------------------

/// JSON built from the keys the readers look at, so generated bodies reach
/// the typed paths instead of failing at the first brace.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "id",
        "event",
        "created_at",
        "data",
        "callId",
        "trainingId",
        "agentId",
        "agentName",
        "userId",
        "teamMemberUserId",
        "duration",
        "aiScore",
        "_isTest",
        "error",
        "message",
        "detail",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "call.uploaded",
            "ai.training.completed",
            "87",
            "",
            "x"
        ])
        .prop_map(Value::from),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn any_headers() -> impl Strategy<Value = Vec<Header>> {
    prop::collection::vec(
        (
            prop_oneof![Just("Retry-After".to_string()), ".*"],
            prop_oneof![
                "[0-9]{0,30}",
                Just("Wed, 22 Apr 2026 15:31:30 GMT".to_string()),
                Just("Sunday, 06-Nov-94 08:49:37 GMT".to_string()),
                Just("Sun Nov  6 08:49:37 1994".to_string()),
                "[A-Za-z]{3}, [0-9]{1,3} [A-Za-z]{3} [0-9]{1,5} [0-9:]{1,9} GMT",
                ".*",
            ],
        )
            .prop_map(|(name, value)| Header { name, value }),
        0..4,
    )
}

proptest! {
    #[test]
    fn read_ingest_response_never_panics(
        status in any::<u16>(),
        headers in any_headers(),
        body in prop_oneof![".*", json_value().prop_map(|v| v.to_string())],
        now in any::<u64>(),
    ) {
        let _ = <Plugin as Guest>::read_ingest_response(status, headers, body, now);
    }

    #[test]
    fn read_webhook_never_panics_on_any_text(body in ".*") {
        let _ = webhook(&body);
    }

    #[test]
    fn read_webhook_never_panics_on_any_json(
        event in prop::sample::select(vec!["call.uploaded", "ai.training.completed", "other"]),
        data in json_value(),
        id in json_value(),
    ) {
        let body = serde_json::json!({"id": id, "event": event, "data": data}).to_string();
        let _ = webhook(&body);
    }

    #[test]
    fn build_ingest_never_panics_and_respects_the_limit(
        transcript in ".{0,300}",
        audio in any::<bool>(),
        limit in 0u64..2_000,
    ) {
        let call = Call {
            audio_url: audio.then(|| "https://recordings.example/1.mp3".to_string()),
            transcript: Some(transcript),
            ..minimal_call()
        };
        if let Ok(request) = build(call, limit) {
            prop_assert!(request.body.len() as u64 <= limit);
            prop_assert!(serde_json::from_str::<Value>(&request.body).is_ok());
        }
    }
}

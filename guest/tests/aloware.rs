//! Aloware through the plugin's public interface, as the host calls it:
//! `read-event` on each delivery, then `map-call` on a call's body.

mod support;

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::aloware_api::{CallEvent, Event, Guest, IgnoreCode, TranscriptEvent};
use kendo_bridge_guest::types::{
    Decision, Direction, FieldProblem, InputError, Rules, SkipCode, Source, SyncMethod, WaitCode,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{fixture, fixture_json, metadata, rep, rules, sent, skipped, waiting};

/// The rep directory in `tests/fixtures/aloware/rep-directory.toml`.
fn directory_rules() -> Rules {
    Rules {
        rep_directory: vec![rep("58211", "nina@yourco.com", Some("Nina Patel"))],
        ..rules()
    }
}

fn event(name: &str) -> Event {
    <Plugin as Guest>::read_event(fixture(&format!("aloware/{name}"))).unwrap()
}

#[track_caller]
fn call_event(name: &str) -> CallEvent {
    match event(name) {
        Event::Call(call) => call,
        other => panic!("expected a call event, got {other:?}"),
    }
}

#[track_caller]
fn transcript_event(name: &str) -> TranscriptEvent {
    match event(name) {
        Event::Transcript(transcript) => transcript,
        other => panic!("expected a transcript event, got {other:?}"),
    }
}

#[track_caller]
fn ignored(name: &str) -> (IgnoreCode, String) {
    match event(name) {
        Event::Ignore(reason) => (reason.code, reason.detail),
        other => panic!("expected ignore, got {other:?}"),
    }
}

fn map(body: String, transcript: Option<String>, rules: Rules) -> Decision {
    <Plugin as Guest>::map_call(body, transcript, false, rules, SyncMethod::Webhook).unwrap()
}

/// `map-call` while the host still waits for a transcript.
fn map_awaiting(body: String, transcript: Option<String>, rules: Rules) -> Decision {
    <Plugin as Guest>::map_call(body, transcript, true, rules, SyncMethod::Webhook).unwrap()
}

/// The body of an envelope fixture, changed by `edit`.
fn body_with(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut envelope = fixture_json(&format!("aloware/{name}"));
    edit(&mut envelope["body"]);
    envelope["body"].to_string()
}

#[track_caller]
fn problem(error: InputError) -> (String, FieldProblem) {
    match error {
        InputError::WrongType(problem) => ("wrong-type".to_owned(), problem),
        InputError::InvalidValue(problem) => ("invalid-value".to_owned(), problem),
        other => panic!("expected a field problem, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The seed example, delivery by delivery
// ---------------------------------------------------------------------------

#[test]
fn aloware_seed_call_and_its_transcript_map_to_the_guides_example() {
    let call = call_event("outbound-call-disposition-completed.json");
    assert_eq!(call.name, "OutboundPhoneCall-DispositionCompleted");
    assert_eq!(call.call_id, "cw_12345");
    let transcript = transcript_event("transcription-open-search-saved.json");
    assert_eq!(transcript.call_id, "cw_12345");

    let sent = sent(map(call.body, transcript.transcript, directory_rules()));
    assert_eq!(sent.source, Source::Aloware);
    assert_eq!(sent.source_id, "cw_12345");
    assert_eq!(sent.title, "Outbound - Renewal Follow-up");
    assert_eq!(sent.rep_name.as_deref(), Some("Nina Patel"));
    assert_eq!(sent.rep_email.as_deref(), Some("nina@yourco.com"));
    assert_eq!(sent.started_at.as_deref(), Some("2026-03-05T18:10:00Z"));
    assert_eq!(sent.duration_seconds, Some(742));
    assert_eq!(sent.audio_url.as_deref(), Some("https://..."));
    assert_eq!(
        sent.transcript.as_deref(),
        Some("Rep: Hi, this is Nina from...")
    );
    assert_eq!(sent.direction, Some(Direction::Outbound));
    assert_eq!(sent.sync_method, SyncMethod::Webhook);
    assert_eq!(
        metadata(&sent),
        [
            ("alowareContactId", "ct_7788"),
            ("alowareCampaignId", "cmp_44"),
            ("alowareDirection", "outbound"),
            ("alowareUserId", "58211"),
        ]
    );
    insta::assert_debug_snapshot!("aloware_seed_call", sent);
}

#[test]
fn aloware_seed_transcript_fixture_in_plain_text_gives_the_same_call() {
    let call = call_event("outbound-call-disposition-completed.json");
    let sent = sent(map(
        call.body,
        Some(fixture("aloware/transcript-seed.txt")),
        directory_rules(),
    ));
    assert_eq!(
        sent.transcript.as_deref(),
        Some("Rep: Hi, this is Nina from...")
    );
}

#[test]
fn aloware_call_summary_event_carries_the_summary_and_no_transcript() {
    let event = transcript_event("transcription-call-summarized.json");
    assert_eq!(event.name, "transcription.call.summarized");
    assert_eq!(event.call_id, "cw_12345");
    assert_eq!(event.transcript, None);
    assert_eq!(
        event.summary.as_deref(),
        Some(
            "Nina reviewed renewal pricing with Marcus; he asked for a multi-year quote by Friday."
        )
    );
}

#[test]
fn aloware_transcript_as_a_list_of_role_utterances_becomes_speaker_lines() {
    let body = json!({"event": "transcription.call.summarized", "body": {
        "communication": {"id": 940868616},
        "transcription": [
            {"role": "Agent", "content": "Thanks for taking the call."},
            {"role": "Contact", "text": "Happy to."},
            {"text": "  "},
            "(crosstalk)"
        ]
    }});
    let Event::Transcript(event) = <Plugin as Guest>::read_event(body.to_string()).unwrap() else {
        panic!("expected a transcript event");
    };
    assert_eq!(event.call_id, "940868616");
    assert_eq!(
        event.transcript.as_deref(),
        Some("Agent: Thanks for taking the call.\nContact: Happy to.\n(crosstalk)")
    );
}

#[test]
fn aloware_parsed_transcription_messages_are_put_in_the_order_of_their_start() {
    let body = json!({"event": "transcription.open_search.saved", "body": {
        "communication": {"id": 940868616},
        "transcription": {"id": 88121, "transcription_id": "dg_1", "driver": "deepgram"},
        "parsed_transcription": {"messages": [
            {"speaker": "Contact", "text": "Hi Sam.", "start": 2300},
            {"speaker": "Rep", "text": "Hi, this is Sam.", "start": 0},
            {"speaker": "Rep", "text": "Is now a good time?", "start": 4100.5},
        ]},
    }});
    let Event::Transcript(event) = <Plugin as Guest>::read_event(body.to_string()).unwrap() else {
        panic!("expected a transcript event");
    };
    assert_eq!(event.call_id, "940868616");
    assert_eq!(
        event.transcript.as_deref(),
        Some("Rep: Hi, this is Sam.\nContact: Hi Sam.\nRep: Is now a good time?")
    );
}

#[test]
fn aloware_transcript_given_as_a_string_is_kept() {
    let body = json!({"event": "transcription.open_search.saved", "body": {
        "communication": {"id": "cw_9"}, "transcription": "Rep: hello\nLead: hi"
    }});
    let Event::Transcript(event) = <Plugin as Guest>::read_event(body.to_string()).unwrap() else {
        panic!("expected a transcript event");
    };
    assert_eq!(event.transcript.as_deref(), Some("Rep: hello\nLead: hi"));
}

// ---------------------------------------------------------------------------
// read-event: what is ignored
// ---------------------------------------------------------------------------

#[test]
fn aloware_test_payload_is_ignored() {
    let (code, _) = ignored("test-payload.json");
    assert_eq!(code, IgnoreCode::TestPayload);
}

#[test]
fn aloware_test_payload_inside_the_body_is_ignored() {
    let body = json!({"event": "OutboundPhoneCall", "body": {"test_payload": "true"}});
    let Event::Ignore(reason) = <Plugin as Guest>::read_event(body.to_string()).unwrap() else {
        panic!("expected ignore");
    };
    assert_eq!(reason.code, IgnoreCode::TestPayload);
}

#[test]
fn aloware_call_disposed_is_read_as_the_call_not_ignored() {
    // A user who ticked only the event producing `Call-Disposed` must still
    // get the call: the host counts it once by id, not by event name.
    let call = call_event("call-disposed.json");
    assert_eq!(call.name, "Call-Disposed");
    assert_eq!(call.call_id, "cw_12345");
    let body = body_with("call-disposed.json", |body| {
        body["direct_recording_url"] = json!("https://app.aloware.io/static/recording/x");
    });
    let sent = sent(map(body, None, directory_rules()));
    assert_eq!(sent.source_id, "cw_12345");
}

#[test]
fn aloware_sms_event_is_ignored_as_not_a_call() {
    let (code, detail) = ignored("inbound-sms-disposition-completed.json");
    assert_eq!(code, IgnoreCode::NotACall);
    assert_eq!(
        detail,
        "Aloware event \"InboundSMS-DispositionCompleted\" is about an SMS, not a call."
    );
}

#[test]
fn aloware_call_event_whose_body_is_an_sms_is_ignored_as_not_a_call() {
    let body = json!({"event": "Recording-Saved", "body": {"id": 5, "type": "2"}});
    let Event::Ignore(reason) = <Plugin as Guest>::read_event(body.to_string()).unwrap() else {
        panic!("expected ignore");
    };
    assert_eq!(reason.code, IgnoreCode::NotACall);
}

#[test]
fn aloware_unknown_event_is_ignored_with_its_name() {
    let (code, detail) = ignored("contact-updated.json");
    assert_eq!(code, IgnoreCode::UnknownEvent);
    assert!(detail.contains("\"Contact-Updated\""), "{detail}");
}

// ---------------------------------------------------------------------------
// read-event: what is a call
// ---------------------------------------------------------------------------

#[test]
fn aloware_call_lifecycle_events_are_calls() {
    for (fixture, name, id) in [
        (
            "outbound-phone-call-initiated.json",
            "OutboundPhoneCall",
            "cw_12345",
        ),
        (
            "outbound-call-disposition-failed.json",
            "OutboundPhoneCall-DispositionFailed",
            "940868601",
        ),
        ("recording-saved.json", "Recording-Saved", "cw_12345"),
        (
            "inbound-call-with-user.json",
            "InboundPhoneCall-DispositionCompleted",
            "940870233",
        ),
    ] {
        let call = call_event(fixture);
        assert_eq!(
            (call.name.as_str(), call.call_id.as_str()),
            (name, id),
            "{fixture}"
        );
    }
}

#[test]
fn aloware_call_event_body_is_the_body_alone() {
    let call = call_event("recording-saved.json");
    let body: Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body, fixture_json("aloware/recording-saved.json")["body"]);
}

// ---------------------------------------------------------------------------
// map-call: each kind of call
// ---------------------------------------------------------------------------

#[test]
fn aloware_call_that_is_only_initiated_waits_in_progress() {
    let call = call_event("outbound-phone-call-initiated.json");
    let (code, detail) = waiting(map(call.body, None, directory_rules()));
    assert_eq!(code, WaitCode::InProgress);
    assert!(
        detail.contains("cw_12345") && detail.contains("\"in-progress\""),
        "{detail}"
    );
}

#[test]
fn aloware_failed_call_is_skipped_as_not_completed() {
    let call = call_event("outbound-call-disposition-failed.json");
    let (code, detail) = skipped(map(call.body, None, directory_rules()));
    assert_eq!(code, SkipCode::NotCompleted);
    assert_eq!(
        detail,
        "Aloware call 940868601 did not complete (status \"failed\"), \
         so there is no conversation to analyse."
    );
}

#[test]
fn aloware_recording_announced_but_not_saved_waits() {
    let body = fixture_json("aloware/call-recording-not-yet-saved.json")["body"].to_string();
    let (code, detail) = waiting(map(body, None, directory_rules()));
    assert_eq!(code, WaitCode::RecordingProcessing);
    assert!(detail.contains("cw_12345"), "{detail}");
}

#[test]
fn aloware_announced_transcription_without_recording_waits() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body["direct_recording_url"] = Value::Null;
        body["has_recording"] = json!(false);
        body["has_transcription"] = json!(true);
    });
    let (code, _) = waiting(map(body, None, directory_rules()));
    assert_eq!(code, WaitCode::TranscriptPending);
}

#[test]
fn aloware_call_without_recording_or_transcript_is_skipped_as_no_media() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body["direct_recording_url"] = Value::Null;
        body["has_recording"] = json!(false);
    });
    let (code, _) = skipped(map(body, None, directory_rules()));
    assert_eq!(code, SkipCode::NoMedia);
}

#[test]
fn aloware_string_numbers_and_the_payload_user_are_read() {
    let call = call_event("inbound-call-with-user.json");
    let sent = sent(map(call.body, None, rules()));
    assert_eq!(sent.source_id, "940870233");
    assert_eq!(sent.direction, Some(Direction::Inbound));
    assert_eq!(sent.title, "Inbound - Demo booked");
    assert_eq!(sent.duration_seconds, Some(318));
    assert_eq!(sent.rep_name.as_deref(), Some("Owen Brooks"));
    assert_eq!(sent.rep_email.as_deref(), Some("owen@yourco.com"));
    assert_eq!(sent.started_at.as_deref(), Some("2026-03-05T19:02:44Z"));
    assert_eq!(
        metadata(&sent),
        [
            ("alowareContactId", "155092004"),
            ("alowareCampaignId", "65123"),
            ("alowareDirection", "inbound"),
            ("alowareUserId", "58307"),
        ]
    );
}

#[test]
fn aloware_directory_entry_wins_over_the_payload_user() {
    let call = call_event("inbound-call-with-user.json");
    let sent = sent(map(
        call.body,
        None,
        Rules {
            rep_directory: vec![rep("58307", "owen.brooks@yourco.com", Some("Owen B."))],
            ..rules()
        },
    ));
    assert_eq!(sent.rep_email.as_deref(), Some("owen.brooks@yourco.com"));
    assert_eq!(sent.rep_name.as_deref(), Some("Owen B."));
}

#[test]
fn aloware_user_known_only_by_id_is_an_unknown_rep_naming_the_key() {
    let call = call_event("outbound-call-disposition-completed.json");
    let (code, detail) = skipped(map(call.body, None, rules()));
    assert_eq!(code, SkipCode::UnknownRep);
    assert_eq!(
        detail,
        "Aloware call cw_12345: no email is known for Aloware user 58211. \
         Add the rep to the rep directory (key \"58211\") with their Kendo email."
    );
}

#[test]
fn aloware_sms_body_given_to_map_call_is_skipped_as_not_a_call() {
    let body = fixture_json("aloware/inbound-sms-disposition-completed.json")["body"].to_string();
    let (code, detail) = skipped(map(body, None, directory_rules()));
    assert_eq!(code, SkipCode::NotACall);
    assert_eq!(
        detail,
        "Aloware record 940871002 is an SMS (type 2), not a call."
    );
}

#[test]
fn aloware_whole_envelope_given_to_map_call_is_read_like_its_body() {
    let envelope = fixture("aloware/outbound-call-disposition-completed.json");
    let sent = sent(map(envelope, None, directory_rules()));
    assert_eq!(sent.source_id, "cw_12345");
}

#[test]
fn aloware_disposition_may_be_a_plain_string() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body["call_disposition"] = json!("No Answer");
    });
    let sent = sent(map(body, None, directory_rules()));
    assert_eq!(sent.disposition.as_deref(), Some("No Answer"));
}

#[test]
fn aloware_duration_is_the_talk_time_not_the_ringing() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body["talk_time"] = json!(63);
        body["wait_time"] = json!(2);
        body["duration"] = json!(66);
    });
    assert_eq!(
        sent(map(body, None, directory_rules())).duration_seconds,
        Some(63)
    );
}

#[test]
fn aloware_duration_without_talk_time_is_unknown_not_the_ringing_total() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body.as_object_mut().unwrap().remove("talk_time");
    });
    assert_eq!(
        sent(map(body, None, directory_rules())).duration_seconds,
        None
    );
}

#[test]
fn aloware_call_with_its_recording_waits_for_a_transcript_while_the_host_waits() {
    let call = call_event("recording-saved.json");
    let (code, detail) = waiting(map_awaiting(call.body.clone(), None, directory_rules()));
    assert_eq!(code, WaitCode::TranscriptPending);
    assert!(detail.contains("cw_12345"), "{detail}");
    let sent = sent(map(call.body, None, directory_rules()));
    assert_eq!(sent.transcript, None);
    assert!(sent.audio_url.is_some());
}

#[test]
fn aloware_call_with_its_transcript_goes_at_once_while_the_host_waits() {
    let call = call_event("recording-saved.json");
    let transcript = transcript_event("transcription-open-search-saved.json");
    let sent = sent(map_awaiting(
        call.body,
        transcript.transcript,
        directory_rules(),
    ));
    assert_eq!(
        sent.transcript.as_deref(),
        Some("Rep: Hi, this is Nina from...")
    );
}

#[test]
fn aloware_skipped_call_is_not_held_for_a_transcript() {
    let call = call_event("outbound-call-disposition-failed.json");
    let (code, _) = skipped(map_awaiting(call.body, None, directory_rules()));
    assert_eq!(code, SkipCode::NotCompleted);
}

#[test]
fn aloware_summary_event_never_becomes_a_transcript() {
    let event = transcript_event("transcription-call-summarized.json");
    assert_eq!(event.transcript, None);
    // Its `transcription` is an object of ids, not text.
    let value = fixture_json("aloware/transcription-call-summarized.json");
    assert!(value["body"]["transcription"].is_object());
}

// ---------------------------------------------------------------------------
// Inputs that cannot be read
// ---------------------------------------------------------------------------

#[test]
fn aloware_delivery_that_is_not_json_is_invalid_json() {
    let error = <Plugin as Guest>::read_event("event=OutboundPhoneCall".into()).unwrap_err();
    assert!(matches!(error, InputError::InvalidJson(_)), "{error:?}");
}

#[test]
fn aloware_delivery_without_event_name_is_a_missing_field() {
    let error = <Plugin as Guest>::read_event(json!({"body": {"id": 1}}).to_string()).unwrap_err();
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "event"),
        "{error:?}"
    );
}

#[test]
fn aloware_delivery_whose_body_is_not_an_object_is_the_wrong_type() {
    let (kind, problem) = problem(
        <Plugin as Guest>::read_event(
            json!({"event": "OutboundPhoneCall", "body": [1]}).to_string(),
        )
        .unwrap_err(),
    );
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "body")
    );
}

#[test]
fn aloware_call_event_without_id_is_a_missing_field() {
    let error = <Plugin as Guest>::read_event(
        json!({"event": "OutboundPhoneCall", "body": {"type": 1}}).to_string(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "body.id"),
        "{error:?}"
    );
}

#[test]
fn aloware_transcript_event_without_communication_id_is_a_missing_field() {
    let error = <Plugin as Guest>::read_event(
        json!({"event": "transcription.call.summarized", "body": {"communication": {}}})
            .to_string(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "body.communication.id"),
        "{error:?}"
    );
}

#[test]
fn aloware_created_at_that_is_not_a_date_is_an_invalid_value() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body["created_at"] = json!("05/03/2026 6:10 PM");
    });
    let (kind, problem) = problem(
        <Plugin as Guest>::map_call(body, None, false, directory_rules(), SyncMethod::Webhook)
            .unwrap_err(),
    );
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("invalid-value", "created_at")
    );
}

#[test]
fn aloware_id_of_the_wrong_type_is_named() {
    let body = body_with("outbound-call-disposition-completed.json", |body| {
        body["id"] = json!({"id": 1});
    });
    let (kind, problem) = problem(
        <Plugin as Guest>::map_call(body, None, false, directory_rules(), SyncMethod::Webhook)
            .unwrap_err(),
    );
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "id")
    );
}

#[test]
fn aloware_talk_time_of_the_wrong_type_is_left_out_with_a_warning() {
    let body = body_with("recording-saved.json", |body| {
        body["talk_time"] = json!([742]);
    });
    let sent = sent(map(body, None, directory_rules()));
    assert_eq!(sent.duration_seconds, None);
    assert_eq!(
        sent.warnings
            .iter()
            .map(|w| w.field.as_str())
            .collect::<Vec<_>>(),
        ["talk_time"]
    );
}

#[test]
fn aloware_unreadable_direction_and_disposition_are_left_out_with_warnings() {
    let body = body_with("recording-saved.json", |body| {
        body["direction"] = json!(7);
        body["call_disposition"] = json!(["Renewal"]);
    });
    let sent = sent(map(body, None, directory_rules()));
    assert_eq!(sent.direction, None);
    assert_eq!(sent.disposition, None);
    let fields: Vec<&str> = sent.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["direction", "call_disposition"]);
}

// ---------------------------------------------------------------------------
// Nothing panics
// ---------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "event",
    "body",
    "test_payload",
    "id",
    "type",
    "direction",
    "duration",
    "talk_time",
    "current_status",
    "current_status2",
    "disposition_status",
    "disposition_status2",
    "call_disposition",
    "disposition",
    "name",
    "has_recording",
    "has_transcription",
    "direct_recording_url",
    "contact_id",
    "contact",
    "campaign_id",
    "user_id",
    "user",
    "owner",
    "email",
    "first_name",
    "last_name",
    "user_email",
    "created_at",
    "communication",
    "summary",
    "transcription",
    "parsed_transcription",
    "messages",
    "speaker",
    "role",
    "text",
    "content",
];

proptest! {
    #[test]
    fn aloware_readers_never_panic_on_arbitrary_text(body in ".{0,200}", transcript in prop::option::of(".{0,40}")) {
        let _ = <Plugin as Guest>::read_event(body.clone());
        let _ = <Plugin as Guest>::map_call(body, transcript, false, rules(), SyncMethod::Webhook);
    }

    #[test]
    fn aloware_readers_never_panic_on_arbitrary_json(
        value in support::json_with_keys(KEYS),
        name in prop::sample::select(vec![
            "OutboundPhoneCall", "InboundPhoneCall-DispositionCompleted", "Recording-Saved",
            "Call-Disposed", "transcription.call.summarized", "transcription.open_search.saved",
            "InboundSMS-DispositionCompleted", "Contact-Created", "",
        ]),
        rules in support::any_rules(),
    ) {
        let _ = <Plugin as Guest>::read_event(value.to_string());
        let envelope = json!({"event": name, "body": value.clone()});
        if let Ok(Event::Call(call)) = <Plugin as Guest>::read_event(envelope.to_string()) {
            let _ = <Plugin as Guest>::map_call(call.body, None, true, rules.clone(), SyncMethod::Webhook);
        }
        let _ = <Plugin as Guest>::map_call(value.to_string(), Some("Rep: hi".into()), false, rules, SyncMethod::Webhook);
    }

}

proptest! {
    #![proptest_config(support::many_cases())]
    #[test]
    fn aloware_seed_variants_never_panic(
        body_edits in support::edits(KEYS),
        transcript_edits in support::edits(KEYS),
        rules in support::any_rules(),
    ) {
        let mut envelope = fixture_json("aloware/outbound-call-disposition-completed.json");
        for (key, value) in body_edits {
            envelope["body"][key] = value;
        }
        let _ = <Plugin as Guest>::read_event(envelope.to_string());
        let _ = <Plugin as Guest>::map_call(envelope["body"].to_string(), None, true, rules, SyncMethod::Webhook);
        let mut transcript = fixture_json("aloware/transcription-open-search-saved.json");
        for (key, value) in transcript_edits {
            transcript["body"][key] = value;
        }
        let _ = <Plugin as Guest>::read_event(transcript.to_string());
    }
}

#[test]
fn aloware_a_later_body_without_the_recording_url_keeps_it() {
    let saved = r#"{"id":1,"direct_recording_url":"https://r","talk_time":63}"#;
    let disposed = r#"{"id":1,"talk_time":63,"current_status2":9}"#;
    let merged: Value = serde_json::from_str(&<Plugin as Guest>::merge_bodies(
        Some(saved.into()),
        disposed.into(),
    ))
    .expect("JSON");
    assert_eq!(merged["direct_recording_url"], "https://r");
    assert_eq!(merged["current_status2"], 9);
}

#[test]
fn aloware_a_later_null_does_not_erase_an_earlier_value() {
    let merged = <Plugin as Guest>::merge_bodies(
        Some(r#"{"direct_recording_url":"https://r"}"#.into()),
        r#"{"direct_recording_url":null}"#.into(),
    );
    assert!(merged.contains("https://r"), "{merged}");
}

#[test]
fn aloware_a_body_that_is_not_an_object_replaces_what_was_held() {
    let merged = <Plugin as Guest>::merge_bodies(Some("{\"id\":1}".into()), "[1]".into());
    assert_eq!(merged, "[1]");
}

//! Aloware through the release component inside wasmtime: what the host's
//! handling of deliveries depends on, beyond the snapshot cases.

use crate::support::{
    instance, map_aloware, map_aloware_awaiting, read_aloware_event, read_fixture, rules_from,
};
use kendo_bridge::plugin::aloware::Event;
use kendo_bridge::plugin::types::{Call, Decision, Rules, SyncMethod, WaitCode};
use serde_json::{Value, json};

fn rules() -> Rules {
    rules_from("aloware/rep-directory.toml")
}

#[track_caller]
fn sent(decision: Decision) -> Call {
    match decision {
        Decision::Send(call) => call,
        other => panic!("expected a send, got {other:?}"),
    }
}

/// The body of an envelope fixture, changed by `edit`.
fn body_with(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut envelope: Value =
        serde_json::from_str(&read_fixture(&format!("aloware/{name}"))).expect("JSON");
    edit(&mut envelope["body"]);
    envelope["body"].to_string()
}

fn map(body: &str, transcript: Option<&str>, awaiting: bool) -> Decision {
    let mut instance = instance();
    map_aloware_awaiting(
        &mut instance,
        body,
        transcript,
        awaiting,
        &rules(),
        SyncMethod::Webhook,
    )
    .expect("no trap")
    .expect("readable")
}

#[test]
fn call_disposed_is_read_as_the_call_it_repeats() {
    let mut instance = instance();
    let event = read_aloware_event(&mut instance, &read_fixture("aloware/call-disposed.json"))
        .expect("no trap")
        .expect("readable");
    match event {
        Event::Call(call) => {
            assert_eq!(call.name, "Call-Disposed");
            assert_eq!(call.call_id, "cw_12345");
        }
        other => panic!("expected a call event, got {other:?}"),
    }
}

#[test]
fn the_summary_event_carries_no_transcript_and_the_transcript_event_its_messages() {
    let mut instance = instance();
    let read = |instance: &mut _, name: &str| match read_aloware_event(
        instance,
        &read_fixture(&format!("aloware/{name}")),
    )
    .expect("no trap")
    .expect("readable")
    {
        Event::Transcript(event) => event,
        other => panic!("expected a transcript event, got {other:?}"),
    };
    let summary = read(&mut instance, "transcription-call-summarized.json");
    assert_eq!(summary.transcript, None);
    assert!(summary.summary.is_some());
    let text = read(&mut instance, "transcription-open-search-saved.json");
    assert_eq!(
        text.transcript.as_deref(),
        Some("Rep: Hi, this is Nina from...")
    );
}

#[test]
fn the_duration_is_the_talk_time_not_the_ringing() {
    let body = body_with("recording-saved.json", |body| {
        body["talk_time"] = json!(63);
        body["wait_time"] = json!(2);
        body["duration"] = json!(66);
    });
    assert_eq!(sent(map(&body, None, false)).duration_seconds, Some(63));
}

#[test]
fn a_call_ready_with_its_recording_waits_for_its_transcript_only_while_the_host_waits() {
    let body = read_fixture("aloware/recording-saved.json");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    let body = body["body"].to_string();
    match map(&body, None, true) {
        Decision::Wait(reason) => assert_eq!(reason.code, WaitCode::TranscriptPending),
        other => panic!("expected a wait, got {other:?}"),
    }
    let call = sent(map(&body, None, false));
    assert_eq!(call.transcript, None);
    assert_eq!(call.audio_url.as_deref(), Some("https://..."));
    let call = sent(map(&body, Some("Rep: hello"), true));
    assert_eq!(call.transcript.as_deref(), Some("Rep: hello"));
}

#[test]
fn an_unreadable_optional_field_is_left_out_with_a_warning_and_the_call_still_sent() {
    let body = body_with("recording-saved.json", |body| {
        body["talk_time"] = json!({"seconds": 63});
        body["direction"] = json!("sideways");
    });
    let mut instance = instance();
    let call = sent(
        map_aloware(&mut instance, &body, None, &rules(), SyncMethod::Webhook)
            .expect("no trap")
            .expect("readable"),
    );
    assert_eq!(call.duration_seconds, None);
    assert_eq!(call.direction, None);
    let fields: Vec<&str> = call.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["direction", "talk_time"]);
}

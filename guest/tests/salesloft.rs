//! Salesloft through the plugin's public interface, as the host calls it.

mod support;

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::salesloft_api::{CallInputs, Cursor, Guest, Listing, WebhookEvent};
use kendo_bridge_guest::types::{
    Decision, Direction, FieldProblem, InputError, Rules, SkipCode, Source, SyncMethod, WaitCode,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{fixture, fixture_json, metadata, rep, rules, sent, skipped, waiting};

fn inputs(call: &str) -> CallInputs {
    CallInputs {
        call: fixture(&format!("salesloft/{call}")),
        user: None,
        sentences: Vec::new(),
        call_data_record: None,
    }
}

fn seed_inputs() -> CallInputs {
    CallInputs {
        user: Some(fixture("salesloft/user-jamie-rivera.json")),
        call_data_record: Some(fixture("salesloft/call-data-record-outbound.json")),
        ..inputs("call-connected-recorded.json")
    }
}

fn sentence_pages() -> Vec<String> {
    vec![
        fixture("salesloft/sentences-page-1.json"),
        fixture("salesloft/sentences-page-2.json"),
    ]
}

fn map(inputs: CallInputs) -> Decision {
    map_with(inputs, rules())
}

fn map_with(inputs: CallInputs, rules: Rules) -> Decision {
    <Plugin as Guest>::map_call(inputs, rules, SyncMethod::Polling).unwrap()
}

fn map_error(inputs: CallInputs) -> InputError {
    match <Plugin as Guest>::map_call(inputs, rules(), SyncMethod::Polling) {
        Err(error) => error,
        Ok(decision) => panic!("expected an input error, got {decision:#?}"),
    }
}

fn cursor(updated_since: Option<&str>, page: u32) -> Cursor {
    Cursor {
        updated_since: updated_since.map(str::to_owned),
        page,
    }
}

/// A calls page with the given `next_page` and `current_page`.
fn page_body(next_page: Option<u32>, current_page: u32) -> String {
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    page["metadata"]["paging"]["next_page"] = json!(next_page);
    page["metadata"]["paging"]["current_page"] = json!(current_page);
    page.to_string()
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
// map-call: the seed example and each kind of call
// ---------------------------------------------------------------------------

#[test]
fn salesloft_seed_call_maps_to_the_guides_example() {
    let call = sent(map(seed_inputs()));
    assert_eq!(call.source, Source::Salesloft);
    assert_eq!(call.source_id, "98765432");
    assert_eq!(call.title, "Outbound - Connected");
    assert_eq!(call.rep_name.as_deref(), Some("Jamie Rivera"));
    assert_eq!(call.rep_email.as_deref(), Some("jamie@yourco.com"));
    assert_eq!(call.started_at.as_deref(), Some("2026-04-22T15:30:00Z"));
    assert_eq!(call.duration_seconds, Some(485));
    assert_eq!(
        call.audio_url.as_deref(),
        Some("https://salesloft-recording-url...")
    );
    assert_eq!(call.transcript, None);
    assert_eq!(call.direction, Some(Direction::Outbound));
    assert_eq!(call.disposition.as_deref(), Some("Connected"));
    assert_eq!(call.sync_method, SyncMethod::Polling);
    insta::assert_debug_snapshot!("salesloft_seed_call", call);
}

#[test]
fn salesloft_metadata_has_the_source_entries_in_order() {
    let call = sent(map(seed_inputs()));
    assert_eq!(
        metadata(&call),
        [
            ("salesloftUserId", "4321"),
            ("salesloftDisposition", "Connected"),
            ("salesloftDirection", "outbound"),
            ("salesloftPersonId", "556677"),
            ("salesloftCadenceId", "1203"),
        ]
    );
}

#[test]
fn salesloft_metadata_leaves_out_what_the_call_does_not_have() {
    let call = sent(map(CallInputs {
        user: Some(fixture("salesloft/user-jamie-rivera.json")),
        sentences: sentence_pages(),
        ..inputs("call-recordings-empty.json")
    }));
    assert_eq!(
        metadata(&call),
        [
            ("salesloftUserId", "4321"),
            ("salesloftDisposition", "Connected"),
            ("salesloftPersonId", "556702"),
        ]
    );
}

#[test]
fn salesloft_user_id_comes_from_the_user_record_when_the_call_has_none() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["user"] = Value::Null;
    let mut user = fixture_json("salesloft/user-jamie-rivera.json");
    user["data"]["id"] = Value::Null;
    let without_any_id = sent(map(CallInputs {
        call: call.to_string(),
        user: Some(user.to_string()),
        ..seed_inputs()
    }));
    assert_eq!(
        metadata(&without_any_id)[0],
        ("salesloftDisposition", "Connected"),
        "no user id, and not the guid in its place"
    );
    let from_record = sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(metadata(&from_record)[0], ("salesloftUserId", "4321"));
}

#[test]
fn salesloft_call_without_recordings_is_skipped_as_no_media() {
    let (code, detail) = skipped(map(CallInputs {
        user: Some(fixture("salesloft/user-jamie-rivera.json")),
        ..inputs("call-recordings-empty.json")
    }));
    assert_eq!(code, SkipCode::NoMedia);
    assert_eq!(
        detail,
        "Salesloft call 98765501 has no recording and no transcript, so Kendo has nothing to analyse."
    );
}

#[test]
fn salesloft_call_without_a_recording_is_sent_with_its_transcript_in_sentence_order() {
    let call = sent(map(CallInputs {
        user: Some(fixture("salesloft/user-jamie-rivera.json")),
        sentences: sentence_pages(),
        ..inputs("call-recordings-empty.json")
    }));
    assert_eq!(call.audio_url, None);
    assert_eq!(
        call.transcript.as_deref(),
        Some(
            "Hi Dana, this is Jamie from YourCo.\n\
             Hey Jamie, I have a few minutes.\n\
             I saw your team is hiring SDRs and wanted to ask how you ramp them today.\n\
             Mostly shadowing, and it takes about three months.\n\
             That is exactly what we help with."
        )
    );
    assert_eq!(call.title, "Connected");
}

#[test]
fn salesloft_recording_still_processing_waits() {
    let (code, detail) = waiting(map(inputs("call-recording-processing.json")));
    assert_eq!(code, WaitCode::RecordingProcessing);
    assert_eq!(
        detail,
        "Salesloft call 98765519 has a recording that is still processing; \
         it will be sent once the recording is ready."
    );
}

#[test]
fn salesloft_recording_still_processing_is_sent_now_when_a_transcript_exists() {
    let call = sent(map_with(
        CallInputs {
            sentences: sentence_pages(),
            ..inputs("call-recording-processing.json")
        },
        Rules {
            rep_directory: vec![rep("4387", "alex@yourco.com", Some("Alex Kim"))],
            ..rules()
        },
    ));
    assert_eq!(call.audio_url, None);
    assert!(call.transcript.is_some());
}

#[test]
fn salesloft_no_answer_call_is_skipped_as_not_completed() {
    let (code, detail) = skipped(map(inputs("call-no-answer.json")));
    assert_eq!(code, SkipCode::NotCompleted);
    assert_eq!(
        detail,
        "Salesloft call 98765488 did not complete (status \"no-answer\"), \
         so there is no conversation to analyse."
    );
}

#[test]
fn salesloft_ringing_call_waits_in_progress() {
    let (code, detail) = waiting(map(inputs("call-ringing.json")));
    assert_eq!(code, WaitCode::InProgress);
    assert!(
        detail.contains("98765540") && detail.contains("\"ringing\""),
        "{detail}"
    );
}

#[test]
fn a_completed_recording_with_a_url_finishes_the_call_whatever_a_top_level_status_says() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["status"] = json!("busy");
    let call = sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert!(call.audio_url.is_some());
}

#[test]
fn a_top_level_status_without_a_completed_recording_still_decides() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["status"] = json!("busy");
    call["recordings"] = json!([]);
    let (code, detail) = skipped(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(code, SkipCode::NotCompleted);
    assert!(detail.contains("\"busy\""), "{detail}");
}

#[test]
fn one_completed_leg_with_a_url_finishes_a_multi_leg_call_whatever_the_first_legs_outcome() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["recordings"] = json!([
        {"url": null, "status": "no-answer", "recording_status": "not_recorded"},
        {"url": "https://a.example/leg2.mp3", "status": "completed", "recording_status": "completed"}
    ]);
    let call = sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(
        call.audio_url.as_deref(),
        Some("https://a.example/leg2.mp3")
    );
}

#[test]
fn a_multi_leg_call_whose_legs_all_failed_is_not_completed() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["recordings"] = json!([
        {"url": null, "status": "no-answer", "recording_status": "not_recorded"},
        {"url": null, "status": "busy", "recording_status": "not_recorded"}
    ]);
    let (code, _) = skipped(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(code, SkipCode::NotCompleted);
}

#[test]
fn salesloft_unknown_status_is_not_by_itself_a_skip() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["recordings"][0]["status"] = json!("transcoded");
    sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
}

#[test]
fn salesloft_first_completed_recording_with_a_url_is_the_audio() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["recordings"] = json!([
        {"url": "https://a.example/pending.mp3", "status": "completed", "recording_status": "pending"},
        {"url": "", "status": "completed", "recording_status": "completed"},
        {"url": "https://a.example/legacy.mp3", "status": "completed"},
        {"url": "https://a.example/later.mp3", "status": "completed", "recording_status": "completed"}
    ]);
    let call = sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(
        call.audio_url.as_deref(),
        Some("https://a.example/legacy.mp3")
    );
}

#[test]
fn salesloft_call_wrapped_in_data_maps_like_a_bare_record() {
    let wrapped = json!({"data": fixture_json("salesloft/call-connected-recorded.json")});
    let call = sent(map(CallInputs {
        call: wrapped.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(call.source_id, "98765432");
    assert_eq!(call.title, "Outbound - Connected");
}

#[test]
fn salesloft_direction_comes_from_the_call_itself_without_a_data_record() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["direction"] = json!("Inbound");
    let call = sent(map(CallInputs {
        call: call.to_string(),
        call_data_record: None,
        ..seed_inputs()
    }));
    assert_eq!(call.direction, Some(Direction::Inbound));
    assert_eq!(call.title, "Inbound - Connected");
}

#[test]
fn a_call_data_record_of_another_call_is_never_used() {
    let other = json!({"data": {"id": 1, "direction": "inbound", "call": {"id": 11111111}}});
    let list = json!({"data": [
        {"id": 1, "direction": "inbound", "call": {"id": 11111111}},
        {"id": 3, "direction": "inbound", "call": null}
    ]});
    for record in [other, list] {
        let call = sent(map(CallInputs {
            call_data_record: Some(record.to_string()),
            ..seed_inputs()
        }));
        assert_eq!(call.direction, None, "{record}");
        assert_eq!(call.title, "Connected", "{record}");
    }
}

#[test]
fn a_call_data_record_that_cannot_be_read_is_a_warning_and_the_call_goes_without_direction() {
    let call = sent(map(CallInputs {
        call_data_record: Some("{not json".to_owned()),
        ..seed_inputs()
    }));
    assert_eq!(call.direction, None);
    assert_eq!(call.warnings.len(), 1, "{:?}", call.warnings);
}

#[test]
fn salesloft_data_record_list_is_searched_for_this_call() {
    let list = json!({"data": [
        {"id": 1, "direction": "inbound", "call": {"id": 11111111}},
        {"id": 2, "direction": "outbound", "call": {"id": 98765432}}
    ]});
    let call = sent(map(CallInputs {
        call_data_record: Some(list.to_string()),
        ..seed_inputs()
    }));
    assert_eq!(call.direction, Some(Direction::Outbound));
}

#[test]
fn salesloft_without_direction_the_title_is_the_disposition() {
    let call = sent(map(CallInputs {
        call_data_record: None,
        ..seed_inputs()
    }));
    assert_eq!(call.title, "Connected");
    assert_eq!(call.direction, None);
}

#[test]
fn salesloft_rep_comes_from_the_directory_when_no_user_record_was_fetched() {
    let call = sent(map_with(
        inputs("call-connected-recorded.json"),
        Rules {
            rep_directory: vec![rep("4321", "jamie.r@yourco.com", Some("Jamie R."))],
            ..rules()
        },
    ));
    assert_eq!(call.rep_email.as_deref(), Some("jamie.r@yourco.com"));
    assert_eq!(call.rep_name.as_deref(), Some("Jamie R."));
}

#[test]
fn salesloft_rep_without_user_record_or_directory_entry_is_unknown_and_names_the_key() {
    let (code, detail) = skipped(map(inputs("call-connected-recorded.json")));
    assert_eq!(code, SkipCode::UnknownRep);
    assert_eq!(
        detail,
        "Salesloft call 98765432: no email is known for Salesloft user 4321. \
         Add the rep to the rep directory (key \"4321\") with their Kendo email."
    );
}

#[test]
fn salesloft_user_name_falls_back_to_first_and_last_name() {
    let mut user = fixture_json("salesloft/user-jamie-rivera.json");
    user["data"]["name"] = Value::Null;
    user["data"]["last_name"] = json!("Rivera-Diaz");
    let call = sent(map(CallInputs {
        user: Some(user.to_string()),
        ..seed_inputs()
    }));
    assert_eq!(call.rep_name.as_deref(), Some("Jamie Rivera-Diaz"));
}

#[test]
fn salesloft_via_is_carried_to_the_call() {
    let call =
        sent(<Plugin as Guest>::map_call(seed_inputs(), rules(), SyncMethod::Webhook).unwrap());
    assert_eq!(call.sync_method, SyncMethod::Webhook);
}

// ---------------------------------------------------------------------------
// map-call: inputs that cannot be read
// ---------------------------------------------------------------------------

#[test]
fn salesloft_malformed_call_json_is_invalid_json_with_line_and_column() {
    let InputError::InvalidJson(message) = map_error(CallInputs {
        call: "{\"id\": 1,".to_owned(),
        ..seed_inputs()
    }) else {
        panic!("expected invalid-json");
    };
    assert!(message.contains("line 1 column"), "{message}");
}

#[test]
fn salesloft_call_without_id_is_a_missing_field() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["id"] = Value::Null;
    let error = map_error(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    });
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "id"),
        "{error:?}"
    );
}

#[test]
fn an_unreadable_duration_is_left_out_with_a_warning_and_the_call_is_sent() {
    for duration in [json!("about five minutes"), json!(-5), json!({"s": 5})] {
        let mut call = fixture_json("salesloft/call-connected-recorded.json");
        call["duration"] = duration.clone();
        let call = sent(map(CallInputs {
            call: call.to_string(),
            ..seed_inputs()
        }));
        assert_eq!(call.duration_seconds, None, "{duration}");
        assert_eq!(call.warnings.len(), 1, "{duration}");
        assert_eq!(call.warnings[0].field, "duration", "{duration}");
    }
}

#[test]
fn a_disposition_of_the_wrong_type_is_left_out_with_a_warning_and_the_call_is_sent() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["disposition"] = json!({"name": "Connected"});
    let call = sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(call.disposition, None);
    assert_eq!(call.warnings.len(), 1);
    assert_eq!(call.warnings[0].field, "disposition");
    assert_eq!(call.title, "Salesloft call");
}

#[test]
fn linked_ids_of_the_wrong_type_are_left_out_of_the_metadata_with_a_warning() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["called_person"] = json!("person 7");
    call["cadence"] = json!({"id": [1]});
    let call = sent(map(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    let keys: Vec<&str> = metadata(&call).into_iter().map(|(k, _)| k).collect();
    assert!(!keys.contains(&"salesloftPersonId"), "{keys:?}");
    assert!(!keys.contains(&"salesloftCadenceId"), "{keys:?}");
    let fields: Vec<&str> = call.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["called_person", "cadence.id"]);
}

#[test]
fn a_readable_call_carries_no_warnings() {
    assert!(sent(map(seed_inputs())).warnings.is_empty());
}

#[test]
fn salesloft_recordings_that_are_not_a_list_are_the_wrong_type() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["recordings"] = json!({"url": "https://x"});
    let (kind, problem) = problem(map_error(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "recordings")
    );
    assert_eq!(problem.detail, "expected a list, found an object");
}

#[test]
fn salesloft_recording_url_of_the_wrong_type_is_named_by_index() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["recordings"][0]["url"] = json!(42);
    let (kind, problem) = problem(map_error(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "recordings[0].url")
    );
}

#[test]
fn salesloft_created_at_that_is_not_a_date_is_an_invalid_value() {
    let mut call = fixture_json("salesloft/call-connected-recorded.json");
    call["created_at"] = json!("last Tuesday");
    let (kind, problem) = problem(map_error(CallInputs {
        call: call.to_string(),
        ..seed_inputs()
    }));
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("invalid-value", "created_at")
    );
    assert!(
        problem.detail.contains("last Tuesday"),
        "{}",
        problem.detail
    );
}

#[test]
fn salesloft_user_body_errors_are_named_with_the_user_input() {
    let mut user = fixture_json("salesloft/user-jamie-rivera.json");
    user["data"]["email"] = json!(["jamie@yourco.com"]);
    let (kind, problem) = problem(map_error(CallInputs {
        user: Some(user.to_string()),
        ..seed_inputs()
    }));
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "user:data.email")
    );
}

#[test]
fn salesloft_malformed_sentences_page_is_named_by_its_index() {
    let InputError::InvalidJson(message) = map_error(CallInputs {
        sentences: vec![fixture("salesloft/sentences-page-1.json"), "[".to_owned()],
        ..seed_inputs()
    }) else {
        panic!("expected invalid-json");
    };
    assert!(message.starts_with("sentences[1]: "), "{message}");
}

#[test]
fn salesloft_sentence_order_number_of_the_wrong_type_is_named() {
    let mut page = fixture_json("salesloft/sentences-page-2.json");
    page["data"][1]["order_number"] = json!({"n": 4});
    let (kind, problem) = problem(map_error(CallInputs {
        sentences: vec![fixture("salesloft/sentences-page-1.json"), page.to_string()],
        ..seed_inputs()
    }));
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "sentences[1]:data[1].order_number")
    );
}

#[test]
fn salesloft_oversized_call_is_too_large() {
    let huge = format!(
        "{{\"id\": 1, \"pad\": \"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    assert!(matches!(
        map_error(CallInputs {
            call: huge,
            ..seed_inputs()
        }),
        InputError::TooLarge(_)
    ));
}

// ---------------------------------------------------------------------------
// Incremental reads: requests and cursors
// ---------------------------------------------------------------------------

#[test]
fn first_request_reads_page_one_without_a_bound() {
    let request = <Plugin as Guest>::next_request(Listing::Calls, cursor(None, 1));
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        "/v2/activities/calls?sort_by=updated_at&sort_direction=ASC&per_page=100&page=1"
    );
    assert!(request.headers.is_empty());
    assert_eq!(request.body, None);
}

#[test]
fn bounded_request_percent_encodes_the_microsecond_bound() {
    let request = <Plugin as Guest>::next_request(
        Listing::Transcriptions,
        cursor(Some("2026-04-22T15:30:00.123456Z"), 7),
    );
    assert_eq!(
        request.path,
        "/v2/transcriptions?sort_by=updated_at&per_page=100&page=7\
         &updated_at%5Bgte%5D=2026-04-22T15%3A30%3A00.123456Z"
    );
}

#[test]
fn requests_never_ask_for_a_page_past_100_or_below_1() {
    let deep = <Plugin as Guest>::next_request(Listing::Calls, cursor(None, 250));
    assert!(deep.path.ends_with("&page=100"), "{}", deep.path);
    let zero = <Plugin as Guest>::next_request(Listing::Calls, cursor(None, 0));
    assert!(zero.path.ends_with("&page=1"), "{}", zero.path);
}

#[test]
fn page_with_next_lists_its_calls_and_keeps_the_bound() {
    let at = cursor(Some("2026-04-22T15:00:00.000000Z"), 1);
    let page =
        <Plugin as Guest>::read_page(at, fixture("salesloft/calls-page-with-next.json")).unwrap();
    assert!(page.more);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T15:00:00.000000Z")
    );
    assert_eq!(page.next.page, 2);
    let listed: Vec<_> = page
        .calls
        .iter()
        .map(|call| {
            (
                call.id.as_str(),
                call.updated_at.as_str(),
                call.user_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("98765432", "2026-04-22T15:39:12.482913Z", Some("4321")),
            ("98765501", "2026-04-22T17:06:02.771930Z", Some("4321")),
            ("98765530", "2026-04-22T18:22:05.300441Z", Some("4321")),
            ("98765519", "2026-04-22T18:37:39.903114Z", Some("4387")),
        ]
    );
}

#[test]
fn listed_call_json_maps_like_the_record_itself() {
    let page = <Plugin as Guest>::read_page(
        cursor(None, 1),
        fixture("salesloft/calls-page-with-next.json"),
    )
    .unwrap();
    let call = sent(map(CallInputs {
        call: page.calls[0].json.clone(),
        ..seed_inputs()
    }));
    assert_eq!(call.title, "Outbound - Connected");
}

#[test]
fn last_page_moves_the_bound_to_the_newest_instant_read() {
    // The newest `updated_at` as text (18:22 at +00:00) is not the newest
    // instant (14:37 at -04:00, 18:37 UTC).
    let page = <Plugin as Guest>::read_page(
        cursor(Some("2026-04-22T15:00:00.000000Z"), 3),
        page_body(None, 3),
    )
    .unwrap();
    assert!(!page.more);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T18:37:39.903114Z")
    );
    assert_eq!(page.next.page, 1);
}

#[test]
fn empty_last_page_keeps_the_bound() {
    let body = json!({"data": [], "metadata": {"paging": {"next_page": null}}}).to_string();
    let page =
        <Plugin as Guest>::read_page(cursor(Some("2026-04-22T15:00:00.000000Z"), 1), body).unwrap();
    assert!(!page.more);
    assert!(page.calls.is_empty());
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T15:00:00.000000Z")
    );
    assert_eq!(page.next.page, 1);
}

#[test]
fn first_cycle_with_no_calls_stays_unbounded() {
    let body = json!({"data": [], "metadata": {"paging": {"next_page": null}}}).to_string();
    let page = <Plugin as Guest>::read_page(cursor(None, 1), body).unwrap();
    assert_eq!(page.next.updated_since, None);
    assert!(!page.more);
}

#[test]
fn page_100_follows_its_next_page_under_the_same_bound() {
    let page = <Plugin as Guest>::read_page(
        cursor(Some("2026-04-22T15:00:00.000000Z"), 99),
        page_body(Some(100), 99),
    )
    .unwrap();
    assert!(page.more);
    assert_eq!(page.next.page, 100);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T15:00:00.000000Z")
    );
}

#[test]
fn past_page_100_the_cursor_re_anchors_on_the_newest_updated_at() {
    let page = <Plugin as Guest>::read_page(
        cursor(Some("2026-04-22T15:00:00.000000Z"), 100),
        page_body(Some(101), 100),
    )
    .unwrap();
    assert!(page.more, "more calls wait under the new bound");
    assert_eq!(page.next.page, 1);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T18:37:39.903114Z")
    );
}

#[test]
fn a_next_page_that_does_not_advance_ends_the_cycle() {
    let page = <Plugin as Guest>::read_page(
        cursor(Some("2026-04-22T15:00:00.000000Z"), 5),
        page_body(Some(5), 5),
    )
    .unwrap();
    assert!(!page.more);
    assert_eq!(page.next.page, 1);
}

#[test]
fn a_server_ignoring_the_bound_never_moves_the_cursor_backwards() {
    let page = <Plugin as Guest>::read_page(
        cursor(Some("2026-05-01T00:00:00.000000Z"), 1),
        page_body(None, 1),
    )
    .unwrap();
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-05-01T00:00:00.000000Z")
    );
}

#[test]
fn page_record_without_id_is_rejected_alone_and_named_by_index() {
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    let records = page["data"].as_array().unwrap().len();
    page["data"][1].as_object_mut().unwrap().remove("id");
    let read = <Plugin as Guest>::read_page(cursor(None, 1), page.to_string()).unwrap();
    assert_eq!(read.calls.len(), records - 1);
    assert_eq!(read.rejected.len(), 1);
    let rejected = &read.rejected[0];
    assert_eq!(
        (rejected.id.as_deref(), rejected.at.as_str()),
        (None, "data[1]")
    );
    assert!(
        matches!(&rejected.error, InputError::MissingField(field) if field == "data[1].id"),
        "{rejected:?}"
    );
}

#[test]
fn page_record_with_a_bad_updated_at_is_rejected_under_its_id() {
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    let records = page["data"].as_array().unwrap().len();
    let id = page["data"][2]["id"].to_string();
    page["data"][2]["updated_at"] = json!("2026-13-01T00:00:00Z");
    let read = <Plugin as Guest>::read_page(cursor(None, 1), page.to_string()).unwrap();
    assert_eq!(read.calls.len(), records - 1);
    let rejected = &read.rejected[0];
    assert_eq!(rejected.id.as_deref(), Some(id.as_str()));
    let (kind, problem) = problem(rejected.error.clone());
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("invalid-value", "data[2].updated_at")
    );
}

#[test]
fn page_record_whose_user_is_not_an_object_is_rejected_and_the_others_are_read() {
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    let records = page["data"].as_array().unwrap().len();
    page["data"][0]["user"] = json!("jamie");
    let read = <Plugin as Guest>::read_page(cursor(None, 1), page.to_string()).unwrap();
    assert_eq!(read.calls.len(), records - 1);
    assert_eq!(read.rejected.len(), 1);
    assert_eq!(read.rejected[0].at, "data[0]");
    assert!(
        matches!(&read.rejected[0].error, InputError::WrongType(p) if p.field == "data[0].user"),
        "{:?}",
        read.rejected[0]
    );
}

#[test]
fn page_record_whose_id_has_the_wrong_type_is_rejected_without_an_id() {
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    page["data"][1]["id"] = json!({"n": 1});
    page["data"][0]["user"]["id"] = json!([7]);
    let read = <Plugin as Guest>::read_page(cursor(None, 1), page.to_string()).unwrap();
    assert_eq!(read.rejected.len(), 2);
    assert!(
        read.rejected[0].id.is_some(),
        "user.id is wrong, the id is readable"
    );
    assert_eq!(read.rejected[1].id, None);
}

#[test]
fn a_rejected_record_still_moves_the_cursor_past_its_date() {
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    let last = page["data"].as_array().unwrap().len() - 1;
    page["data"][last]["updated_at"] = json!("2030-01-01T00:00:00.000000Z");
    page["data"][last]["user"] = json!(5);
    page["metadata"]["paging"]["next_page"] = json!(null);
    let read = <Plugin as Guest>::read_page(cursor(None, 1), page.to_string()).unwrap();
    assert_eq!(read.rejected.len(), 1);
    assert_eq!(
        read.next.updated_since.as_deref(),
        Some("2030-01-01T00:00:00.000000Z")
    );
}

#[test]
fn page_without_data_is_a_missing_field() {
    let error = <Plugin as Guest>::read_page(cursor(None, 1), "{}".to_owned()).unwrap_err();
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "data"),
        "{error:?}"
    );
}

#[test]
fn page_that_is_not_json_is_invalid_json() {
    let error =
        <Plugin as Guest>::read_page(cursor(None, 1), "<html>502</html>".to_owned()).unwrap_err();
    assert!(matches!(error, InputError::InvalidJson(_)), "{error:?}");
}

#[test]
fn transcriptions_page_lists_ids_conversations_and_utc_times() {
    let page = <Plugin as Guest>::read_transcriptions(
        cursor(None, 1),
        fixture("salesloft/transcriptions-page.json"),
    )
    .unwrap();
    insta::assert_debug_snapshot!("salesloft_transcriptions_page", page);
    assert!(!page.more);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T17:10:00.500000Z")
    );
}

#[test]
fn conversation_gives_the_call_id() {
    let call_id =
        <Plugin as Guest>::read_conversation(fixture("salesloft/conversation-extensive.json"))
            .unwrap();
    assert_eq!(call_id.as_deref(), Some("98765432"));
    let none = <Plugin as Guest>::read_conversation(json!({"data": {"id": "x"}}).to_string());
    assert_eq!(none.unwrap(), None);
}

#[test]
fn user_conversation_and_sentences_requests_encode_their_ids() {
    assert_eq!(
        <Plugin as Guest>::user_request("4321".into()).path,
        "/v2/users/4321"
    );
    assert_eq!(
        <Plugin as Guest>::conversation_request("0f1e2d3c-4b5a".into()).path,
        "/v2/conversations/0f1e2d3c-4b5a/extensive"
    );
    assert_eq!(
        <Plugin as Guest>::sentences_request("a/b".into(), 2).path,
        "/v2/transcriptions/a%2Fb/sentences?per_page=100&page=2"
    );
}

#[test]
fn sentences_pages_say_whether_another_follows() {
    assert!(
        <Plugin as Guest>::sentences_has_more(fixture("salesloft/sentences-page-1.json")).unwrap()
    );
    assert!(
        !<Plugin as Guest>::sentences_has_more(fixture("salesloft/sentences-page-2.json")).unwrap()
    );
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

#[test]
fn call_updated_webhook_carries_the_call() {
    let event = <Plugin as Guest>::read_webhook(
        "call_updated".into(),
        fixture("salesloft/call-connected-recorded.json"),
    )
    .unwrap();
    let WebhookEvent::Call(call) = event else {
        panic!("expected a call, got {event:?}");
    };
    assert_eq!(call.id, "98765432");
    assert_eq!(call.updated_at, "2026-04-22T15:39:12.482913Z");
    assert_eq!(call.user_id.as_deref(), Some("4321"));
}

#[test]
fn call_created_webhook_wrapped_in_data_without_updated_at_uses_created_at() {
    let mut record = fixture_json("salesloft/call-ringing.json");
    record.as_object_mut().unwrap().remove("updated_at");
    let event =
        <Plugin as Guest>::read_webhook("call_created".into(), json!({"data": record}).to_string())
            .unwrap();
    let WebhookEvent::Call(call) = event else {
        panic!("expected a call, got {event:?}");
    };
    assert_eq!(call.updated_at, "2026-04-22T19:01:09.660413Z");
}

#[test]
fn other_webhook_events_are_ignored_with_a_reason() {
    let event =
        <Plugin as Guest>::read_webhook("call_data_record_created".into(), "not even json".into())
            .unwrap();
    let WebhookEvent::Ignore(reason) = event else {
        panic!("expected ignore, got {event:?}");
    };
    assert!(reason.contains("\"call_data_record_created\""), "{reason}");
}

#[test]
fn call_webhook_with_a_broken_body_is_an_error() {
    let error = <Plugin as Guest>::read_webhook("call_updated".into(), "{".into()).unwrap_err();
    assert!(matches!(error, InputError::InvalidJson(_)), "{error:?}");
}

// ---------------------------------------------------------------------------
// Nothing panics
// ---------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "data",
    "metadata",
    "paging",
    "next_page",
    "id",
    "updated_at",
    "created_at",
    "user",
    "status",
    "recordings",
    "url",
    "recording_status",
    "duration",
    "disposition",
    "direction",
    "called_person",
    "cadence",
    "name",
    "first_name",
    "last_name",
    "email",
    "guid",
    "call",
    "call_id",
    "order_number",
    "text",
    "conversation",
];

fn any_cursor() -> impl Strategy<Value = Cursor> {
    (
        prop::option::of(prop_oneof![
            Just("2026-04-22T15:00:00.000000Z".to_owned()),
            ".{0,30}".prop_map(String::from)
        ]),
        any::<u32>(),
    )
        .prop_map(|(updated_since, page)| Cursor {
            updated_since,
            page,
        })
}

proptest! {
    #[test]
    fn salesloft_readers_never_panic_on_arbitrary_text(body in ".{0,200}", at in any_cursor()) {
        let _ = <Plugin as Guest>::read_page(at.clone(), body.clone());
        let _ = <Plugin as Guest>::read_transcriptions(at.clone(), body.clone());
        let _ = <Plugin as Guest>::read_conversation(body.clone());
        let _ = <Plugin as Guest>::sentences_has_more(body.clone());
        let _ = <Plugin as Guest>::read_webhook("call_updated".into(), body.clone());
        let _ = <Plugin as Guest>::next_request(Listing::Calls, at);
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call: body.clone(), user: Some(body.clone()), sentences: vec![body.clone()], call_data_record: Some(body) },
            rules(),
            SyncMethod::Polling,
        );
    }

    #[test]
    fn salesloft_readers_never_panic_on_arbitrary_json(
        call in support::json_with_keys(KEYS),
        other in support::json_with_keys(KEYS),
        at in any_cursor(),
        rules in support::any_rules(),
    ) {
        let call = call.to_string();
        let other = other.to_string();
        let _ = <Plugin as Guest>::read_page(at.clone(), call.clone());
        let _ = <Plugin as Guest>::read_transcriptions(at, call.clone());
        let _ = <Plugin as Guest>::read_conversation(call.clone());
        let _ = <Plugin as Guest>::sentences_has_more(call.clone());
        let _ = <Plugin as Guest>::read_webhook("call_created".into(), call.clone());
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call: call.clone(), user: None, sentences: Vec::new(), call_data_record: None },
            rules.clone(),
            SyncMethod::Polling,
        );
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call, user: Some(other.clone()), sentences: vec![other.clone()], call_data_record: Some(other) },
            rules,
            SyncMethod::Webhook,
        );
    }

}

proptest! {
    #![proptest_config(support::many_cases())]
    #[test]
    fn salesloft_seed_variants_never_panic(
        call_edits in support::edits(KEYS),
        user_edits in support::edits(KEYS),
        recording_edits in support::edits(KEYS),
        rules in support::any_rules(),
    ) {
        let mut call = fixture_json("salesloft/call-connected-recorded.json");
        let mut user = fixture_json("salesloft/user-jamie-rivera.json");
        for (key, value) in call_edits {
            call[key] = value;
        }
        for (key, value) in recording_edits {
            if call["recordings"][0].is_object() {
                call["recordings"][0][key] = value;
            }
        }
        for (key, value) in user_edits {
            user["data"][key] = value;
        }
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call: call.to_string(), user: Some(user.to_string()), ..seed_inputs() },
            rules,
            SyncMethod::Polling,
        );
    }
}

#[test]
fn a_hundred_pages_sharing_the_bound_microsecond_step_past_it_instead_of_looping() {
    // Every call on page 100 carries the bound's own `updated_at`: moving
    // the inclusive bound to it would read the same hundred pages forever.
    let bound = "2026-04-22T15:00:00.000000Z";
    let mut page = fixture_json("salesloft/calls-page-with-next.json");
    for call in page["data"].as_array_mut().unwrap() {
        call["updated_at"] = json!(bound);
    }
    page["metadata"]["paging"]["next_page"] = json!(101);
    page["metadata"]["paging"]["current_page"] = json!(100);
    let page = <Plugin as Guest>::read_page(cursor(Some(bound), 100), page.to_string()).unwrap();
    assert!(page.more);
    assert_eq!(page.next.page, 1);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T15:00:00.000001Z")
    );
}

#[test]
fn call_data_records_are_read_incrementally_with_documented_filters_only() {
    let request = <Plugin as Guest>::next_request(
        Listing::CallDataRecords,
        cursor(Some("2026-04-22T15:30:00.123456Z"), 2),
    );
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        "/v2/call_data_records?has_call=true&sort_by=updated_at&sort_direction=ASC&per_page=100\
         &page=2&updated_at%5Bgte%5D=2026-04-22T15%3A30%3A00.123456Z"
    );
    assert!(!request.path.contains("call_id"));
}

#[test]
fn call_data_records_page_lists_each_record_with_its_call_id() {
    let body = json!({
        "data": [
            {"id": 7001, "updated_at": "2026-04-22T11:31:00.000001-04:00", "direction": "outbound",
             "call": {"id": 98765432, "_href": "https://api.salesloft.com/v2/activities/calls/98765432"}},
            {"id": 7002, "updated_at": "2026-04-22T11:32:00.000002-04:00", "direction": "inbound", "call": null},
            {"id": 7003, "updated_at": "not a date", "call": {"id": 5}},
            {"id": 7004, "updated_at": "2026-04-22T11:33:00.000003-04:00", "call": "98765433"}
        ],
        "metadata": {"paging": {"per_page": 100, "current_page": 1, "next_page": null}}
    });
    let page =
        <Plugin as Guest>::read_call_data_records(cursor(None, 1), body.to_string()).unwrap();
    let read: Vec<(&str, Option<&str>, &str)> = page
        .records
        .iter()
        .map(|r| (r.id.as_str(), r.call_id.as_deref(), r.updated_at.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("7001", Some("98765432"), "2026-04-22T15:31:00.000001Z"),
            ("7002", None, "2026-04-22T15:32:00.000002Z"),
        ]
    );
    let rejected: Vec<Option<&str>> = page.rejected.iter().map(|r| r.id.as_deref()).collect();
    assert_eq!(rejected, [Some("7003"), Some("7004")]);
    assert!(!page.more);
    assert_eq!(
        page.next.updated_since.as_deref(),
        Some("2026-04-22T15:33:00.000003Z")
    );
    let record: Value = serde_json::from_str(&page.records[0].json).unwrap();
    assert_eq!(record["direction"], "outbound");
}

#[test]
fn a_listed_call_data_record_gives_its_call_the_direction() {
    let body = json!({
        "data": [{"id": 7001, "updated_at": "2026-04-22T11:31:00.000001-04:00",
                  "direction": "inbound", "call": {"id": 98765432}}],
        "metadata": {"paging": {"next_page": null}}
    });
    let page =
        <Plugin as Guest>::read_call_data_records(cursor(None, 1), body.to_string()).unwrap();
    let call = sent(map(CallInputs {
        call_data_record: Some(page.records[0].json.clone()),
        ..seed_inputs()
    }));
    assert_eq!(call.direction, Some(Direction::Inbound));
    assert_eq!(call.title, "Inbound - Connected");
}

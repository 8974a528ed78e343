//! HubSpot through the plugin's public interface, as the host calls it.

mod support;

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::hubspot_api::{AssociationKind, CallInputs, Cursor, Guest, SearchOptions};
use kendo_bridge_guest::types::{
    Decision, Direction, FieldProblem, InputError, Rules, SkipCode, Source, SyncMethod, WaitCode,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{fixture, fixture_json, metadata, rep, rules, sent, skipped, waiting};

fn inputs(call: &str) -> CallInputs {
    CallInputs {
        call: fixture(&format!("hubspot/{call}")),
        owner: Some(fixture("hubspot/owner-sam-lee.json")),
        dispositions: None,
        transcript: None,
        contacts: None,
        deals: None,
    }
}

fn map(inputs: CallInputs) -> Decision {
    map_with(inputs, rules())
}

fn map_with(inputs: CallInputs, rules: Rules) -> Decision {
    <Plugin as Guest>::map_call(inputs, rules, SyncMethod::Workflow).unwrap()
}

fn map_error(inputs: CallInputs) -> InputError {
    match <Plugin as Guest>::map_call(inputs, rules(), SyncMethod::Polling) {
        Err(error) => error,
        Ok(decision) => panic!("expected an input error, got {decision:#?}"),
    }
}

/// The seed call with some properties replaced.
fn seed_with(properties: Value) -> String {
    let mut call = fixture_json("hubspot/call-discovery-acme.json");
    for (key, value) in properties.as_object().unwrap() {
        call["properties"][key] = value.clone();
    }
    call.to_string()
}

#[track_caller]
fn problem(error: InputError) -> (String, FieldProblem) {
    match error {
        InputError::WrongType(problem) => ("wrong-type".to_owned(), problem),
        InputError::InvalidValue(problem) => ("invalid-value".to_owned(), problem),
        other => panic!("expected a field problem, got {other:?}"),
    }
}

fn options(limit: u32) -> SearchOptions {
    SearchOptions {
        limit,
        lookback_ms: 30_000,
    }
}

fn cursor(since_ms: Option<u64>, after: Option<&str>, high_water_ms: Option<u64>) -> Cursor {
    Cursor {
        since_ms,
        after: after.map(str::to_owned),
        high_water_ms,
    }
}

/// The fixture search page with `paging.next.after` replaced.
fn search_body(after: Option<&str>) -> String {
    let mut page = fixture_json("hubspot/search-page-with-next.json");
    match after {
        Some(after) => page["paging"]["next"]["after"] = json!(after),
        None => {
            page.as_object_mut().unwrap().remove("paging");
        }
    }
    page.to_string()
}

// Modification times in the search fixture, newest last.
const SEED_MODIFIED: u64 = 1_772_643_182_118; // 2026-03-04T16:53:02.118Z
const NEWEST_MODIFIED: u64 = 1_772_649_687_300; // 2026-03-04T18:41:27.300Z

// ---------------------------------------------------------------------------
// map-call
// ---------------------------------------------------------------------------

#[test]
fn hubspot_seed_call_maps_to_the_guides_example() {
    let call = sent(map(inputs("call-discovery-acme.json")));
    assert_eq!(call.source, Source::Hubspot);
    assert_eq!(call.source_id, "987654321");
    assert_eq!(call.title, "Discovery - Acme");
    assert_eq!(call.rep_name.as_deref(), Some("Sam Lee"));
    assert_eq!(call.rep_email.as_deref(), Some("sam@yourco.com"));
    assert_eq!(call.started_at.as_deref(), Some("2026-03-04T16:30:00Z"));
    assert_eq!(call.duration_seconds, Some(1250), "1,250,000 ms");
    assert_eq!(call.audio_url.as_deref(), Some("https://..."));
    assert_eq!(
        call.transcript, None,
        "notes are not sent when there is a recording"
    );
    assert_eq!(call.direction, Some(Direction::Outbound));
    assert_eq!(call.disposition.as_deref(), Some("Connected"));
    assert_eq!(call.sync_method, SyncMethod::Workflow);
    insta::assert_debug_snapshot!("hubspot_seed_call", call);
}

#[test]
fn hubspot_metadata_has_owner_associations_disposition_and_direction_in_order() {
    let call = sent(map(inputs("call-discovery-acme.json")));
    assert_eq!(
        metadata(&call),
        [
            ("hubspotOwnerId", "41629711"),
            ("hubspotContactIds", "51"),
            ("hubspotDealIds", "123456"),
            ("hubspotDisposition", "Connected"),
            ("hubspotDirection", "outbound"),
        ]
    );
}

#[test]
fn hubspot_several_associations_are_comma_joined() {
    let mut call = fixture_json("hubspot/call-discovery-acme.json");
    call["associations"]["deals"]["results"] =
        json!([{"id": "123456", "type": "call_to_deal"}, {"id": 777, "type": "call_to_deal"}]);
    let call = sent(map(CallInputs {
        call: call.to_string(),
        ..inputs("call-discovery-acme.json")
    }));
    assert!(metadata(&call).contains(&("hubspotDealIds", "123456,777")));
}

#[test]
fn hubspot_busy_call_is_skipped_as_not_completed() {
    let (code, detail) = skipped(map(inputs("call-busy.json")));
    assert_eq!(code, SkipCode::NotCompleted);
    assert_eq!(
        detail,
        "HubSpot call 987654377 did not complete (status \"BUSY\"), \
         so there is no conversation to analyse."
    );
}

#[test]
fn hubspot_call_in_progress_waits() {
    let (code, detail) = waiting(map(inputs("call-in-progress.json")));
    assert_eq!(code, WaitCode::InProgress);
    assert!(
        detail.contains("987654390") && detail.contains("IN_PROGRESS"),
        "{detail}"
    );
}

#[test]
fn hubspot_connecting_and_queued_calls_wait() {
    for status in ["QUEUED", "RINGING", "CONNECTING", "CALLING_CRM_USER"] {
        let decision = map(CallInputs {
            call: seed_with(json!({"hs_call_status": status})),
            ..inputs("call-discovery-acme.json")
        });
        assert_eq!(waiting(decision).0, WaitCode::InProgress, "{status}");
    }
}

#[test]
fn hubspot_statuses_it_does_not_list_as_finished_are_skipped() {
    for status in ["NO_ANSWER", "CANCELED", "FAILED", "MISSED", "SOMETHING_NEW"] {
        let decision = map(CallInputs {
            call: seed_with(json!({"hs_call_status": status})),
            ..inputs("call-discovery-acme.json")
        });
        assert_eq!(skipped(decision).0, SkipCode::NotCompleted, "{status}");
    }
}

#[test]
fn hubspot_archived_call_is_skipped_as_archived() {
    let (code, detail) = skipped(map(inputs("call-archived.json")));
    assert_eq!(code, SkipCode::Archived);
    assert_eq!(detail, "HubSpot call 987654302 is archived in HubSpot.");
}

#[test]
fn hubspot_announced_transcript_without_recording_waits() {
    let (code, detail) = waiting(map(inputs("call-transcript-pending.json")));
    assert_eq!(code, WaitCode::TranscriptPending);
    assert!(detail.contains("987654412"), "{detail}");
}

#[test]
fn hubspot_transcript_is_sent_as_speaker_lines_in_time_order() {
    let call = sent(map(CallInputs {
        transcript: Some(fixture("hubspot/transcript.json")),
        ..inputs("call-transcript-pending.json")
    }));
    assert_eq!(
        call.transcript.as_deref(),
        Some(
            "Sam Lee: Thanks for calling back, this is Sam.\n\
             Priya Shah: Hi Sam, I had a question about the renewal quote.\n\
             Priya Shah: The onboarding fee. Can we drop it if we sign this month?\n\
             Sam Lee: Sure, which line item?"
        )
    );
    assert_eq!(call.audio_url, None);
    // No hs_call_title: the next alternative of HubSpot's default template.
    assert_eq!(call.title, "Inbound - Connected");
    assert_eq!(call.direction, Some(Direction::Inbound));
    assert_eq!(call.duration_seconds, Some(643), "642,500 ms rounds up");
    assert_eq!(
        call.started_at.as_deref(),
        Some("2026-03-04T18:20:00Z"),
        "epoch ms"
    );
}

#[test]
fn hubspot_notes_stand_in_when_there_is_neither_recording_nor_transcript() {
    let call = sent(map(inputs("call-logged-with-notes-only.json")));
    assert_eq!(
        call.transcript.as_deref(),
        Some(
            "Logged from my cell \u{2013} no recording.\nBudget approved\nSend MSA & security review"
        )
    );
    assert_eq!(call.disposition.as_deref(), Some("Left live message"));
    assert_eq!(call.started_at.as_deref(), Some("2026-03-04T19:00:00Z"));
}

#[test]
fn hubspot_call_with_neither_media_nor_notes_is_skipped_as_no_media() {
    let (code, _) = skipped(map(CallInputs {
        call: seed_with(json!({"hs_call_recording_url": null, "hs_call_body": "<p> </p>"})),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(code, SkipCode::NoMedia);
}

#[test]
fn hubspot_disposition_labels_come_from_the_portal_list() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_disposition": "0c1b2a39-4d5e-4f60-8172-93a4b5c6d7e8"})),
        dispositions: Some(fixture("hubspot/dispositions.json")),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.disposition.as_deref(), Some("Meeting booked"));
}

#[test]
fn hubspot_unknown_disposition_guid_is_left_out_with_a_warning_not_shown_as_a_label() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_disposition": "11111111-2222-3333-4444-555555555555"})),
        dispositions: Some(fixture("hubspot/dispositions.json")),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.disposition, None);
    assert!(
        !metadata(&call)
            .iter()
            .any(|(_, v)| v.contains("11111111-2222")),
        "{:?}",
        call.metadata
    );
    assert_eq!(call.warnings.len(), 1, "{:?}", call.warnings);
    assert_eq!(call.warnings[0].field, "properties.hs_call_disposition");
    assert!(
        call.warnings[0]
            .detail
            .contains("11111111-2222-3333-4444-555555555555")
    );
}

#[test]
fn hubspot_custom_disposition_without_the_portal_list_is_left_out_with_a_warning() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_disposition": "0c1b2a39-4d5e-4f60-8172-93a4b5c6d7e8"})),
        dispositions: None,
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.disposition, None);
    assert!(
        call.warnings[0].detail.contains("list was not read"),
        "{:?}",
        call.warnings
    );
}

#[test]
fn hubspot_duration_in_milliseconds_is_rounded_to_seconds() {
    for (ms, seconds) in [
        ("0", 0),
        ("499", 0),
        ("500", 1),
        ("61499.9", 61),
        ("1250000", 1250),
    ] {
        let call = sent(map(CallInputs {
            call: seed_with(json!({"hs_call_duration": ms})),
            ..inputs("call-discovery-acme.json")
        }));
        assert_eq!(call.duration_seconds, Some(seconds), "{ms} ms");
    }
}

#[test]
fn hubspot_rep_directory_keyed_by_user_id_wins_over_the_owner_record() {
    let call = sent(map_with(
        inputs("call-discovery-acme.json"),
        Rules {
            rep_directory: vec![rep("9183345", "samuel.lee@yourco.com", None)],
            ..rules()
        },
    ));
    assert_eq!(call.rep_email.as_deref(), Some("samuel.lee@yourco.com"));
    assert_eq!(
        call.rep_name.as_deref(),
        Some("Sam Lee"),
        "the owner's name fills in"
    );
}

#[test]
fn hubspot_without_owner_record_or_directory_the_rep_is_unknown() {
    let (code, detail) = skipped(map(CallInputs {
        owner: None,
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(code, SkipCode::UnknownRep);
    assert!(detail.contains("HubSpot owner 41629711"), "{detail}");
    assert!(detail.contains("key \"41629711\""), "{detail}");
}

#[test]
fn hubspot_properties_sent_as_numbers_are_read_like_strings() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_duration": 1250000, "hubspot_owner_id": 41629711})),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.duration_seconds, Some(1250));
    assert_eq!(metadata(&call)[0], ("hubspotOwnerId", "41629711"));
}

#[test]
fn hubspot_missing_properties_is_a_missing_field() {
    let error = map_error(CallInputs {
        call: json!({"id": "1", "archived": false}).to_string(),
        ..inputs("call-discovery-acme.json")
    });
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "properties"),
        "{error:?}"
    );
}

#[test]
fn hubspot_unreadable_duration_is_left_out_with_a_warning_and_the_call_is_sent() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_duration": "20 minutes"})),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.duration_seconds, None);
    assert_eq!(
        call.warnings
            .iter()
            .map(|w| w.field.as_str())
            .collect::<Vec<_>>(),
        ["properties.hs_call_duration"]
    );
}

#[test]
fn hubspot_title_of_the_wrong_type_is_left_out_with_a_warning_and_the_call_is_sent() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_title": ["Discovery"]})),
        ..inputs("call-discovery-acme.json")
    }));
    assert_ne!(call.title, "Discovery");
    assert_eq!(call.warnings.len(), 1, "{:?}", call.warnings);
    assert_eq!(call.warnings[0].field, "properties.hs_call_title");
    assert!(
        call.warnings[0].detail.contains("string"),
        "{:?}",
        call.warnings
    );
}

#[test]
fn hubspot_unreadable_direction_and_disposition_are_left_out_with_warnings() {
    let call = sent(map(CallInputs {
        call: seed_with(json!({"hs_call_direction": {"v": 1}, "hs_call_disposition": [1]})),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.direction, None);
    assert_eq!(call.disposition, None);
    let fields: Vec<&str> = call.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "properties.hs_call_direction",
            "properties.hs_call_disposition"
        ]
    );
}

#[test]
fn hubspot_unreadable_timestamp_falls_back_to_created_at_with_a_warning() {
    let Decision::Send(call) = map(CallInputs {
        call: seed_with(json!({"hs_timestamp": "March 4th"})),
        ..inputs("call-discovery-acme.json")
    }) else {
        panic!("expected a send");
    };
    let created = fixture_json("hubspot/call-discovery-acme.json")["createdAt"].clone();
    assert_eq!(
        call.started_at.as_deref().map(|d| &d[..10]),
        created.as_str().map(|d| &d[..10]),
        "{call:?}"
    );
    let warned: Vec<&str> = call.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(warned, ["properties.hs_timestamp"]);
}

#[test]
fn hubspot_owner_errors_are_named_with_the_owner_input() {
    let mut owner = fixture_json("hubspot/owner-sam-lee.json");
    owner["email"] = json!(false);
    let (kind, problem) = problem(map_error(CallInputs {
        owner: Some(owner.to_string()),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "owner:email")
    );
}

#[test]
fn hubspot_transcript_that_is_not_json_is_invalid_json_naming_the_input() {
    let InputError::InvalidJson(message) = map_error(CallInputs {
        transcript: Some("transcript unavailable".to_owned()),
        ..inputs("call-transcript-pending.json")
    }) else {
        panic!("expected invalid-json");
    };
    assert!(message.starts_with("transcript: "), "{message}");
}

#[test]
fn hubspot_dispositions_entry_of_the_wrong_type_is_a_warning_named_by_index() {
    let call = sent(map(CallInputs {
        dispositions: Some(json!([{"id": "x", "label": "X"}, "Connected"]).to_string()),
        call: seed_with(json!({"hs_call_disposition": CONNECTED})),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(
        call.disposition.as_deref(),
        Some("Connected"),
        "the defaults still apply"
    );
    assert_eq!(call.warnings.len(), 1, "{:?}", call.warnings);
    assert_eq!(call.warnings[0].field, "dispositions:[1]");
}

const CONNECTED: &str = "f240bbac-87c9-4f6e-bf70-924b57d47db7";

// ---------------------------------------------------------------------------
// Associations (v4 batch read) for polled calls
// ---------------------------------------------------------------------------

#[test]
fn associations_request_reads_a_whole_page_in_one_batch() {
    let request = <Plugin as Guest>::associations_request(
        AssociationKind::Contacts,
        vec!["1".into(), "2".into()],
    );
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/crm/v4/associations/calls/contacts/batch/read"
    );
    let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({"inputs": [{"id": "1"}, {"id": "2"}]}));
    assert_eq!(
        <Plugin as Guest>::associations_request(AssociationKind::Deals, vec!["1".into()]).path,
        "/crm/v4/associations/calls/deals/batch/read"
    );
}

/// A searched call: no `associations` member.
fn searched_call() -> String {
    let mut call = fixture_json("hubspot/call-discovery-acme.json");
    if let Value::Object(members) = &mut call {
        members.remove("associations");
    }
    call.to_string()
}

#[test]
fn a_polled_call_takes_its_contact_and_deal_ids_from_the_batch_reads() {
    let call = sent(map(CallInputs {
        call: searched_call(),
        contacts: Some(fixture("hubspot/associations-contacts.json")),
        deals: Some(fixture("hubspot/associations-deals.json")),
        ..inputs("call-discovery-acme.json")
    }));
    let metadata = metadata(&call);
    assert!(
        metadata.contains(&("hubspotContactIds", "51,7201")),
        "{metadata:?}"
    );
    assert!(
        metadata.contains(&("hubspotDealIds", "123456")),
        "{metadata:?}"
    );
    assert!(call.warnings.is_empty(), "{:?}", call.warnings);
}

#[test]
fn a_call_absent_from_the_batch_read_has_no_contact_ids() {
    let mut call = fixture_json("hubspot/call-discovery-acme.json");
    call["id"] = json!("555");
    if let Value::Object(members) = &mut call {
        members.remove("associations");
    }
    let call = sent(map(CallInputs {
        call: call.to_string(),
        contacts: Some(fixture("hubspot/associations-contacts.json")),
        ..inputs("call-discovery-acme.json")
    }));
    assert!(
        !metadata(&call)
            .iter()
            .any(|(k, _)| *k == "hubspotContactIds"),
        "{:?}",
        call.metadata
    );
}

#[test]
fn an_unreadable_batch_read_is_a_warning_and_the_call_is_sent() {
    let call = sent(map(CallInputs {
        call: searched_call(),
        contacts: Some(json!({"results": {"from": 1}}).to_string()),
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(call.warnings.len(), 1, "{:?}", call.warnings);
    assert_eq!(call.warnings[0].field, "contacts:results");
}

// ---------------------------------------------------------------------------
// Search: requests and cursors
// ---------------------------------------------------------------------------

fn request_body(at: Cursor, options: SearchOptions) -> Value {
    let request = <Plugin as Guest>::search_request(at, options);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/crm/v3/objects/calls/search");
    assert_eq!(request.headers.len(), 1);
    assert_eq!(request.headers[0].name, "Content-Type");
    assert_eq!(request.headers[0].value, "application/json");
    serde_json::from_str(request.body.as_deref().unwrap()).unwrap()
}

#[test]
fn search_request_filters_sorts_and_pages_on_the_modification_date() {
    let body = request_body(
        cursor(
            Some(1_772_600_000_000),
            Some("200"),
            Some(1_772_650_000_000),
        ),
        options(200),
    );
    assert_eq!(
        body["filterGroups"],
        json!([{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1772600000000"}]}])
    );
    // The spec's form (a list of strings), ascending by HubSpot's Node
    // SDK's reading of a bare property name.
    assert_eq!(body["sorts"], json!(["hs_lastmodifieddate"]));
    assert_eq!(body["limit"], json!(200));
    assert_eq!(body["after"], json!("200"));
    let properties: Vec<&str> = body["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for mapped in [
        "hs_timestamp",
        "hs_call_title",
        "hs_call_body",
        "hs_call_duration",
        "hs_call_status",
        "hs_call_direction",
        "hs_call_recording_url",
        "hs_call_disposition",
        "hubspot_owner_id",
        "hs_call_has_transcript",
        "hs_call_transcription_id",
        "hs_lastmodifieddate",
    ] {
        assert!(properties.contains(&mapped), "{mapped} is requested");
    }
}

#[test]
fn first_search_has_no_filter_and_after_zero() {
    let body = request_body(cursor(None, None, None), options(100));
    assert_eq!(body["filterGroups"], json!([]));
    // The spec requires `after`; the SDK documents 0 for a first search.
    assert_eq!(body["after"], json!("0"));
}

#[test]
fn search_limit_is_kept_between_1_and_200() {
    assert_eq!(
        request_body(cursor(None, None, None), options(0))["limit"],
        json!(1)
    );
    assert_eq!(
        request_body(cursor(None, None, None), options(5000))["limit"],
        json!(200)
    );
}

#[test]
fn search_page_with_next_keeps_the_bound_and_follows_after() {
    let page = <Plugin as Guest>::read_search(
        cursor(Some(1_772_600_000_000), None, None),
        options(4),
        fixture("hubspot/search-page-with-next.json"),
    )
    .unwrap();
    assert!(page.more);
    assert_eq!(page.total, 4);
    assert_eq!(page.next.since_ms, Some(1_772_600_000_000));
    assert_eq!(page.next.after.as_deref(), Some("4"));
    assert_eq!(page.next.high_water_ms, Some(NEWEST_MODIFIED));
    let listed: Vec<_> = page
        .calls
        .iter()
        .map(|call| {
            (
                call.id.as_str(),
                call.modified_ms,
                call.owner_id.as_deref(),
                call.transcription_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("987654321", SEED_MODIFIED, Some("41629711"), None),
            ("987654377", 1_772_643_734_512, Some("41629711"), None),
            ("987654390", 1_772_644_803_781, Some("41629711"), None),
            (
                "987654412",
                NEWEST_MODIFIED,
                Some("41629711"),
                Some("3190027741")
            ),
        ]
    );
}

#[test]
fn last_search_page_points_the_next_cycle_a_look_back_before_the_high_water_mark() {
    let page = <Plugin as Guest>::read_search(
        cursor(Some(1_772_600_000_000), Some("4"), Some(NEWEST_MODIFIED)),
        options(4),
        fixture("hubspot/search-page-last.json"),
    )
    .unwrap();
    assert!(!page.more);
    let notes_modified = 1_772_651_141_650; // 2026-03-04T19:05:41.650Z
    assert_eq!(page.next.high_water_ms, Some(notes_modified));
    assert_eq!(page.next.since_ms, Some(notes_modified - 30_000));
    assert_eq!(page.next.after, None);
    assert_eq!(page.total, 1);
}

#[test]
fn empty_search_keeps_the_high_water_mark_and_the_bound() {
    let body = json!({"total": 0, "results": []}).to_string();
    let at = cursor(Some(1_000), None, Some(50_000));
    let page = <Plugin as Guest>::read_search(at, options(100), body).unwrap();
    assert_eq!(page.next.high_water_ms, Some(50_000));
    assert_eq!(page.next.since_ms, Some(20_000));
    let first = <Plugin as Guest>::read_search(
        cursor(None, None, None),
        options(100),
        json!({"total": 0, "results": []}).to_string(),
    )
    .unwrap();
    assert_eq!(first.next.since_ms, None);
}

#[test]
fn look_back_never_goes_below_zero() {
    let page = <Plugin as Guest>::read_search(
        cursor(None, None, Some(10)),
        SearchOptions {
            limit: 100,
            lookback_ms: u64::MAX,
        },
        json!({"results": []}).to_string(),
    )
    .unwrap();
    assert_eq!(page.next.since_ms, Some(0));
}

#[test]
fn search_re_anchors_on_the_newest_date_before_the_10000_cap() {
    let page = <Plugin as Guest>::read_search(
        cursor(Some(1_772_600_000_000), Some("9996"), None),
        options(4),
        search_body(Some("10000")),
    )
    .unwrap();
    assert!(page.more);
    assert_eq!(page.next.since_ms, Some(NEWEST_MODIFIED));
    assert_eq!(page.next.after, None);
    assert_eq!(page.next.high_water_ms, Some(NEWEST_MODIFIED));
}

#[test]
fn search_right_at_the_cap_still_follows_after() {
    let page = <Plugin as Guest>::read_search(
        cursor(Some(1_772_600_000_000), Some("9992"), None),
        options(4),
        search_body(Some("9996")),
    )
    .unwrap();
    assert_eq!(page.next.after.as_deref(), Some("9996"));
    assert_eq!(page.next.since_ms, Some(1_772_600_000_000));
}

#[test]
fn re_anchoring_on_the_same_millisecond_steps_one_forward() {
    let page = <Plugin as Guest>::read_search(
        cursor(Some(NEWEST_MODIFIED), Some("9996"), None),
        options(4),
        search_body(Some("10000")),
    )
    .unwrap();
    assert_eq!(page.next.since_ms, Some(NEWEST_MODIFIED + 1));
}

#[test]
fn search_results_that_are_not_a_list_are_the_wrong_type() {
    let (kind, problem) = problem(
        <Plugin as Guest>::read_search(
            cursor(None, None, None),
            options(100),
            json!({"results": {"id": "1"}}).to_string(),
        )
        .unwrap_err(),
    );
    assert_eq!(
        (kind.as_str(), problem.field.as_str()),
        ("wrong-type", "results")
    );
}

#[test]
fn search_result_without_a_modification_date_is_a_missing_field() {
    let body = json!({"results": [{"id": "1", "properties": {}}]}).to_string();
    let page =
        <Plugin as Guest>::read_search(cursor(None, None, None), options(100), body).unwrap();
    assert!(page.calls.is_empty());
    let error = &page.rejected[0].error;
    assert!(
        matches!(error, InputError::MissingField(field) if field == "results[0].properties.hs_lastmodifieddate"),
        "{error:?}"
    );
}

#[test]
fn a_search_result_that_cannot_be_read_costs_that_result_only() {
    let body = json!({"total": 4, "results": [
        {"id": "1", "properties": {"hs_lastmodifieddate": "1772641800000"}},
        {"id": "2", "properties": ["not", "an", "object"]},
        {"id": {"no": "id"}, "properties": {"hs_lastmodifieddate": "1772641800500"}},
        {"id": "4", "properties": {"hs_lastmodifieddate": "1772641801000"}}
    ]})
    .to_string();
    let page =
        <Plugin as Guest>::read_search(cursor(None, None, None), options(100), body).unwrap();
    let ids: Vec<&str> = page.calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["1", "4"]);
    let rejected: Vec<(Option<&str>, &str)> = page
        .rejected
        .iter()
        .map(|r| (r.id.as_deref(), r.at.as_str()))
        .collect();
    assert_eq!(rejected, [(Some("2"), "results[1]"), (None, "results[2]")]);
    assert_eq!(
        page.next.high_water_ms,
        Some(1_772_641_801_000),
        "the cursor moves past the rejected results"
    );
}

#[test]
fn search_modification_date_may_be_epoch_milliseconds_or_fall_back_to_updated_at() {
    let body = json!({"results": [
        {"id": "1", "properties": {"hs_lastmodifieddate": "1772641800000"}},
        {"id": 2, "properties": {"hs_lastmodifieddate": null}, "updatedAt": "2026-03-04T16:30:00.001Z"}
    ]})
    .to_string();
    let page =
        <Plugin as Guest>::read_search(cursor(None, None, None), options(100), body).unwrap();
    assert_eq!(page.calls[0].modified_ms, 1_772_641_800_000);
    assert_eq!(page.calls[1].modified_ms, 1_772_641_800_001);
    assert_eq!(page.calls[1].id, "2");
}

// ---------------------------------------------------------------------------
// Single calls, owners, dispositions, transcripts
// ---------------------------------------------------------------------------

#[test]
fn call_request_asks_for_every_mapped_property_and_the_associations() {
    let request = <Plugin as Guest>::call_request("987654321".into());
    assert_eq!(request.method, "GET");
    assert!(
        request
            .path
            .starts_with("/crm/v3/objects/calls/987654321?properties=hs_timestamp,"),
        "{}",
        request.path
    );
    assert!(
        request.path.ends_with("&associations=contacts,deals"),
        "{}",
        request.path
    );
}

#[test]
fn read_call_lists_the_call_for_mapping() {
    let listed = <Plugin as Guest>::read_call(fixture("hubspot/call-discovery-acme.json")).unwrap();
    assert_eq!(listed.id, "987654321");
    assert_eq!(listed.modified_ms, SEED_MODIFIED);
    assert_eq!(listed.owner_id.as_deref(), Some("41629711"));
    let call = sent(map(CallInputs {
        call: listed.json,
        ..inputs("call-discovery-acme.json")
    }));
    assert_eq!(metadata(&call)[2], ("hubspotDealIds", "123456"));
}

#[test]
fn owner_dispositions_and_transcript_requests_have_their_paths() {
    assert_eq!(
        <Plugin as Guest>::owner_request("41629711".into(), false).path,
        "/crm/v3/owners/41629711"
    );
    assert_eq!(
        <Plugin as Guest>::dispositions_request().path,
        "/calling/v1/dispositions"
    );
    assert_eq!(
        <Plugin as Guest>::owner_request("41629711".into(), true).path,
        "/crm/v3/owners/41629711?archived=true",
        "a departed rep is looked up again among archived owners"
    );
    assert_eq!(
        <Plugin as Guest>::transcript_request("3190027741".into()).path,
        "/crm/v3/extensions/calling/transcripts/3190027741"
    );
}

// ---------------------------------------------------------------------------
// Webhooks and workflows
// ---------------------------------------------------------------------------

#[test]
fn webhook_batch_keeps_call_objects_once_each() {
    let delivery = <Plugin as Guest>::read_webhook(fixture("hubspot/webhook-batch.json")).unwrap();
    assert_eq!(delivery.call_ids, ["987654321", "987654412"]);
}

#[test]
fn webhook_batch_without_calls_is_empty() {
    let body =
        json!([{"objectId": 51, "objectTypeId": "0-1", "subscriptionType": "contact.creation"}]);
    assert!(
        <Plugin as Guest>::read_webhook(body.to_string())
            .unwrap()
            .call_ids
            .is_empty()
    );
}

#[test]
fn workflow_body_gives_its_object_id() {
    let ids = <Plugin as Guest>::read_webhook(fixture("hubspot/workflow-body.json")).unwrap();
    assert_eq!(ids.call_ids, ["987654321"]);
    let nested = json!({"properties": {
        "hs_object_id": {"value": "42", "timestamp": 1},
        "hs_call_status": {"value": "COMPLETED"}
    }});
    assert_eq!(
        <Plugin as Guest>::read_webhook(nested.to_string())
            .unwrap()
            .call_ids,
        ["42"]
    );
    let object_id = json!({"objectId": 43, "objectTypeId": "0-48"});
    assert_eq!(
        <Plugin as Guest>::read_webhook(object_id.to_string())
            .unwrap()
            .call_ids,
        ["43"]
    );
}

#[test]
fn a_contact_workflow_body_is_not_a_call_and_says_why() {
    let delivery =
        <Plugin as Guest>::read_webhook(fixture("hubspot/workflow-body-contact.json")).unwrap();
    assert!(delivery.call_ids.is_empty());
    assert_eq!(delivery.ignored.len(), 1);
    assert!(
        delivery.ignored[0].contains("not a call"),
        "{:?}",
        delivery.ignored
    );
}

#[test]
fn a_workflow_body_naming_another_object_type_is_not_a_call() {
    let body = json!({"objectId": 51, "objectTypeId": "0-3", "hs_call_title": "x"});
    let delivery = <Plugin as Guest>::read_webhook(body.to_string()).unwrap();
    assert!(delivery.call_ids.is_empty());
    assert!(
        delivery.ignored[0].contains("`0-3`"),
        "{:?}",
        delivery.ignored
    );
}

#[test]
fn workflow_body_without_an_id_is_a_missing_field() {
    let error =
        <Plugin as Guest>::read_webhook(json!({"hs_call_title": "x"}).to_string()).unwrap_err();
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "hs_object_id"),
        "{error:?}"
    );
}

#[test]
fn webhook_event_without_object_id_is_named_by_index() {
    let body = json!([{"objectTypeId": "0-48"}]);
    let error = <Plugin as Guest>::read_webhook(body.to_string()).unwrap_err();
    assert!(
        matches!(&error, InputError::MissingField(field) if field == "[0].objectId"),
        "{error:?}"
    );
}

#[test]
fn webhook_body_that_is_neither_list_nor_object_is_the_wrong_type() {
    let (kind, problem) = problem(<Plugin as Guest>::read_webhook("\"hi\"".into()).unwrap_err());
    assert_eq!((kind.as_str(), problem.field.as_str()), ("wrong-type", "$"));
}

// ---------------------------------------------------------------------------
// Nothing panics
// ---------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "id",
    "properties",
    "createdAt",
    "updatedAt",
    "archived",
    "associations",
    "contacts",
    "deals",
    "results",
    "total",
    "paging",
    "next",
    "after",
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_duration",
    "hs_call_status",
    "hs_call_direction",
    "hs_call_recording_url",
    "hs_call_disposition",
    "hs_call_has_transcript",
    "hs_call_transcription_id",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
    "hs_object_id",
    "objectId",
    "objectTypeId",
    "subscriptionType",
    "value",
    "email",
    "firstName",
    "lastName",
    "userId",
    "label",
    "transcriptUtterances",
    "speaker",
    "name",
    "text",
    "startTimeMillis",
];

fn any_cursor() -> impl Strategy<Value = Cursor> {
    (
        prop::option::of(any::<u64>()),
        prop::option::of(prop_oneof![
            Just("9999".to_owned()),
            ".{0,8}".prop_map(String::from)
        ]),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(since_ms, after, high_water_ms)| Cursor {
            since_ms,
            after,
            high_water_ms,
        })
}

fn any_options() -> impl Strategy<Value = SearchOptions> {
    (any::<u32>(), any::<u64>())
        .prop_map(|(limit, lookback_ms)| SearchOptions { limit, lookback_ms })
}

proptest! {
    #[test]
    fn hubspot_readers_never_panic_on_arbitrary_text(body in ".{0,200}", at in any_cursor(), options in any_options()) {
        let _ = <Plugin as Guest>::read_search(at.clone(), options, body.clone());
        let _ = <Plugin as Guest>::search_request(at, options);
        let _ = <Plugin as Guest>::read_call(body.clone());
        let _ = <Plugin as Guest>::read_webhook(body.clone());
        let _ = <Plugin as Guest>::call_request(body.clone());
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call: body.clone(), owner: Some(body.clone()), dispositions: Some(body.clone()), transcript: Some(body.clone()), contacts: Some(body.clone()), deals: Some(body) },
            rules(),
            SyncMethod::Polling,
        );
    }

    #[test]
    fn hubspot_readers_never_panic_on_arbitrary_json(
        call in support::json_with_keys(KEYS),
        other in support::json_with_keys(KEYS),
        after in prop::option::of(any::<u64>()),
        at in any_cursor(),
        options in any_options(),
        rules in support::any_rules(),
    ) {
        let mut page = call.clone();
        if let (Some(after), Value::Object(members)) = (after, &mut page) {
            members.insert("paging".into(), json!({"next": {"after": after.to_string()}}));
        }
        let _ = <Plugin as Guest>::read_search(at, options, page.to_string());
        let call = call.to_string();
        let other = other.to_string();
        let _ = <Plugin as Guest>::read_call(call.clone());
        let _ = <Plugin as Guest>::read_webhook(call.clone());
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call: call.clone(), owner: None, dispositions: None, transcript: None, contacts: None, deals: None },
            rules.clone(),
            SyncMethod::Polling,
        );
        let _ = <Plugin as Guest>::map_call(
            CallInputs { call, owner: Some(other.clone()), dispositions: Some(other.clone()), transcript: Some(other.clone()), contacts: Some(other.clone()), deals: Some(other) },
            rules,
            SyncMethod::Workflow,
        );
    }

}

proptest! {
    #![proptest_config(support::many_cases())]
    #[test]
    fn hubspot_seed_variants_never_panic(
        property_edits in support::edits(KEYS),
        call_edits in support::edits(KEYS),
        owner_edits in support::edits(KEYS),
        rules in support::any_rules(),
    ) {
        let mut call = fixture_json("hubspot/call-discovery-acme.json");
        let mut owner = fixture_json("hubspot/owner-sam-lee.json");
        for (key, value) in property_edits {
            call["properties"][key] = value;
        }
        for (key, value) in call_edits {
            call[key] = value;
        }
        for (key, value) in owner_edits {
            owner[key] = value;
        }
        let _ = <Plugin as Guest>::map_call(
            CallInputs {
                call: call.to_string(),
                owner: Some(owner.to_string()),
                dispositions: Some(fixture("hubspot/dispositions.json")),
                transcript: Some(fixture("hubspot/transcript.json")),
                contacts: Some(fixture("hubspot/associations-contacts.json")),
                deals: Some(fixture("hubspot/associations-deals.json")),
            },
            rules,
            SyncMethod::Polling,
        );
    }
}

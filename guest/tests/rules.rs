//! The user's rules, which every source applies the same way. Driven through
//! Aloware's `map-call` (the most compact call body) and, where a source's
//! own title matters, HubSpot's.

mod support;

use kendo_bridge_guest::Plugin;
use kendo_bridge_guest::aloware_api::Guest as Aloware;
use kendo_bridge_guest::hubspot_api::{CallInputs, Guest as Hubspot};
use kendo_bridge_guest::types::{Decision, InputError, Rules, SkipCode, SyncMethod, WaitCode};
use serde_json::{Value, json};
use support::{fixture, rep, rules, sent, skipped, waiting};

/// A finished, recorded outbound call by Nina, with a disposition.
fn call() -> Value {
    json!({
        "id": "cw_1",
        "type": 1,
        "direction": 2,
        "talk_time": 742,
        "disposition_status": "completed",
        "call_disposition": {"id": 31240, "name": "Connected"},
        "has_recording": true,
        "direct_recording_url": "https://rec.example/cw_1.mp3",
        "user_id": 58211,
        "user": {"id": 58211, "name": "Nina Patel", "email": "nina@yourco.com"},
        "created_at": "2026-03-05 18:10:00"
    })
}

fn with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut call = call();
    edit(call.as_object_mut().unwrap());
    call
}

fn decide(call: &Value, rules: Rules) -> Decision {
    <Plugin as Aloware>::map_call(call.to_string(), None, false, rules, SyncMethod::Webhook)
        .unwrap()
}

fn title(template: &str) -> String {
    title_of(&call(), template)
}

fn title_of(call: &Value, template: &str) -> String {
    let rules = Rules {
        title_template: Some(template.to_owned()),
        ..rules()
    };
    sent(decide(call, rules)).title
}

#[track_caller]
fn template_error(template: &str) -> String {
    let rules = Rules {
        title_template: Some(template.to_owned()),
        ..rules()
    };
    match <Plugin as Aloware>::map_call(call().to_string(), None, false, rules, SyncMethod::Webhook)
    {
        Err(InputError::InvalidValue(problem)) => {
            assert_eq!(problem.field, "rules.title-template");
            problem.detail
        }
        other => panic!("expected invalid-value for {template:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Title templates
// ---------------------------------------------------------------------------

#[test]
fn template_placeholders_are_filled_from_the_call() {
    assert_eq!(
        title("{source}: {rep_name} ({direction}, {disposition})"),
        "Aloware: Nina Patel (Outbound, Connected)"
    );
}

#[test]
fn the_first_alternative_whose_placeholders_all_have_values_wins() {
    assert_eq!(
        title("{title} || {direction} call with {rep_name} || {disposition}"),
        "Outbound call with Nina Patel"
    );
}

#[test]
fn with_no_usable_alternative_the_title_is_the_source_name_and_call() {
    let call = with(|call| {
        call.remove("call_disposition");
    });
    assert_eq!(title_of(&call, "{title}||{disposition}"), "Aloware call");
}

#[test]
fn doubled_braces_are_literal_braces() {
    assert_eq!(title("{{{disposition}}}"), "{Connected}");
}

#[test]
fn the_default_aloware_title_is_direction_and_disposition() {
    assert_eq!(sent(decide(&call(), rules())).title, "Outbound - Connected");
    let inbound_unknown = with(|call| {
        call.remove("direction");
    });
    assert_eq!(sent(decide(&inbound_unknown, rules())).title, "Connected");
    let bare = with(|call| {
        call.remove("direction");
        call.remove("call_disposition");
    });
    assert_eq!(sent(decide(&bare, rules())).title, "Aloware call");
}

#[test]
fn the_default_hubspot_title_prefers_the_calls_own_title() {
    let inputs = |call: String| CallInputs {
        call,
        owner: Some(fixture("hubspot/owner-sam-lee.json")),
        dispositions: None,
        transcript: None,
        contacts: None,
        deals: None,
    };
    let seed = fixture("hubspot/call-discovery-acme.json");
    let with_title =
        <Plugin as Hubspot>::map_call(inputs(seed.clone()), rules(), SyncMethod::Polling).unwrap();
    assert_eq!(sent(with_title).title, "Discovery - Acme");

    let mut untitled: Value = serde_json::from_str(&seed).unwrap();
    untitled["properties"]["hs_call_title"] = json!("");
    let without =
        <Plugin as Hubspot>::map_call(inputs(untitled.to_string()), rules(), SyncMethod::Polling)
            .unwrap();
    assert_eq!(sent(without).title, "Outbound - Connected");
}

#[test]
fn unknown_placeholder_is_an_invalid_template_naming_it() {
    let detail = template_error("{direction} - {agent}");
    assert!(detail.contains("{agent}"), "{detail}");
    assert!(
        detail.contains("{rep_name}"),
        "lists the known ones: {detail}"
    );
}

#[test]
fn unclosed_brace_is_an_invalid_template() {
    let detail = template_error("{direction - {disposition}");
    assert!(detail.contains("unknown placeholder"), "{detail}");
    let detail = template_error("Call {disposition");
    assert!(detail.contains("never closed"), "{detail}");
}

#[test]
fn stray_closing_brace_is_an_invalid_template() {
    let detail = template_error("{disposition}}");
    assert!(detail.contains("no matching"), "{detail}");
}

#[test]
fn a_bad_template_is_an_error_even_for_a_call_that_would_be_skipped() {
    let sms = with(|call| {
        call.insert("type".into(), json!(2));
    });
    let rules = Rules {
        title_template: Some("{nope}".into()),
        ..rules()
    };
    let result =
        <Plugin as Aloware>::map_call(sms.to_string(), None, false, rules, SyncMethod::Webhook);
    assert!(
        matches!(result, Err(InputError::InvalidValue(_))),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------
// Minimum duration and allowed dispositions
// ---------------------------------------------------------------------------

fn min_duration(seconds: u32) -> Rules {
    Rules {
        min_duration_seconds: seconds,
        ..rules()
    }
}

fn allowed(dispositions: &[&str]) -> Rules {
    Rules {
        allowed_dispositions: dispositions.iter().map(|d| (*d).to_owned()).collect(),
        ..rules()
    }
}

#[test]
fn calls_shorter_than_the_minimum_are_skipped_with_both_numbers() {
    let (code, detail) = skipped(decide(&call(), min_duration(800)));
    assert_eq!(code, SkipCode::BelowMinimumDuration);
    assert_eq!(
        detail,
        "Aloware call cw_1 lasted 742 s, under the 800 s minimum in rules.min-duration-seconds."
    );
}

#[test]
fn a_call_exactly_at_the_minimum_is_sent() {
    sent(decide(&call(), min_duration(742)));
}

#[test]
fn a_call_whose_duration_is_unknown_is_not_skipped_for_it() {
    let call = with(|call| {
        call.remove("talk_time");
    });
    assert_eq!(
        sent(decide(&call, min_duration(800))).duration_seconds,
        None
    );
}

#[test]
fn allowed_dispositions_compare_labels_case_insensitively() {
    sent(decide(
        &call(),
        allowed(&["  connected ", "Meeting booked"]),
    ));
}

#[test]
fn a_disposition_outside_the_allowed_list_is_skipped_naming_both() {
    let (code, detail) = skipped(decide(&call(), allowed(&["Meeting booked", "Demo set"])));
    assert_eq!(code, SkipCode::DispositionFiltered);
    assert_eq!(
        detail,
        "Aloware call cw_1 has disposition \"Connected\", which is not in \
         rules.allowed-dispositions (\"Meeting booked\", \"Demo set\")."
    );
}

#[test]
fn a_call_without_disposition_is_skipped_when_a_list_is_set() {
    let call = with(|call| {
        call.remove("call_disposition");
    });
    let (code, detail) = skipped(decide(&call, allowed(&["Connected"])));
    assert_eq!(code, SkipCode::DispositionFiltered);
    assert!(detail.contains("has no disposition"), "{detail}");
}

#[test]
fn a_list_of_blank_dispositions_filters_nothing() {
    let call = with(|call| {
        call.remove("call_disposition");
    });
    sent(decide(&call, allowed(&["", "  "])));
}

// ---------------------------------------------------------------------------
// The rep
// ---------------------------------------------------------------------------

fn directory(entries: Vec<kendo_bridge_guest::types::RepEntry>) -> Rules {
    Rules {
        rep_directory: entries,
        ..rules()
    }
}

#[test]
fn the_rep_directory_is_consulted_before_the_sources_user() {
    let call = sent(decide(
        &call(),
        directory(vec![rep("58211", "n.patel@yourco.com", Some("Nina P."))]),
    ));
    assert_eq!(call.rep_email.as_deref(), Some("n.patel@yourco.com"));
    assert_eq!(call.rep_name.as_deref(), Some("Nina P."));
}

#[test]
fn the_directory_matches_the_sources_email_case_insensitively() {
    let call = sent(decide(
        &call(),
        directory(vec![rep(
            " NINA@YourCo.com ",
            "nina.patel@yourco.com",
            None,
        )]),
    ));
    assert_eq!(call.rep_email.as_deref(), Some("nina.patel@yourco.com"));
    assert_eq!(
        call.rep_name.as_deref(),
        Some("Nina Patel"),
        "the source's name fills in"
    );
}

#[test]
fn the_source_user_id_key_wins_over_an_email_key_listed_first() {
    let call = sent(decide(
        &call(),
        directory(vec![
            rep("nina@yourco.com", "by-email@yourco.com", None),
            rep("58211", "by-id@yourco.com", None),
        ]),
    ));
    assert_eq!(call.rep_email.as_deref(), Some("by-id@yourco.com"));
}

#[test]
fn an_entry_for_someone_else_is_not_used() {
    let call = sent(decide(
        &call(),
        directory(vec![rep("99999", "someone@yourco.com", Some("Someone"))]),
    ));
    assert_eq!(call.rep_email.as_deref(), Some("nina@yourco.com"));
}

#[test]
fn an_invalid_email_in_the_directory_is_an_invalid_rep_email_naming_the_entry() {
    let (code, detail) = skipped(decide(
        &call(),
        directory(vec![rep("58211", "nina at yourco", None)]),
    ));
    assert_eq!(code, SkipCode::InvalidRepEmail);
    assert_eq!(
        detail,
        "Aloware call cw_1: the rep email \"nina at yourco\" from the rep directory \
         entry \"58211\" is not a valid address."
    );
}

#[test]
fn an_invalid_email_from_the_source_is_an_invalid_rep_email() {
    let call = with(|call| {
        call.insert(
            "user".into(),
            json!({"name": "Nina Patel", "email": "nina@"}),
        );
    });
    let (code, detail) = skipped(decide(&call, rules()));
    assert_eq!(code, SkipCode::InvalidRepEmail);
    assert!(detail.contains("Aloware user 58211's record"), "{detail}");
}

#[test]
fn a_call_naming_no_rep_at_all_is_an_unknown_rep() {
    let call = with(|call| {
        call.remove("user");
        call.remove("user_id");
    });
    let (code, detail) = skipped(decide(&call, rules()));
    assert_eq!(code, SkipCode::UnknownRep);
    assert!(detail.contains("names no rep"), "{detail}");
}

// ---------------------------------------------------------------------------
// The order of the checks
// ---------------------------------------------------------------------------

/// A call that fails every check at once, with `keep` left intact.
fn failing_everything_but(keep: &[&str]) -> Value {
    with(|call| {
        let breaks: [(&str, Value); 4] = [
            ("disposition_status", json!("no-answer")),
            ("direct_recording_url", Value::Null),
            ("talk_time", json!(3)),
            ("call_disposition", json!({"name": "Wrong number"})),
        ];
        for (key, value) in breaks {
            if !keep.contains(&key) {
                call.insert(key.into(), value);
            }
        }
        call.insert("has_recording".into(), json!(false));
        call.remove("user");
        call.remove("user_id");
    })
}

fn strict() -> Rules {
    Rules {
        min_duration_seconds: 60,
        allowed_dispositions: vec!["Connected".into()],
        ..rules()
    }
}

#[test]
fn completion_is_checked_first() {
    let (code, _) = skipped(decide(&failing_everything_but(&[]), strict()));
    assert_eq!(code, SkipCode::NotCompleted);
}

#[test]
fn media_is_checked_second() {
    let call = failing_everything_but(&["disposition_status"]);
    assert_eq!(skipped(decide(&call, strict())).0, SkipCode::NoMedia);
}

#[test]
fn a_recording_in_progress_waits_before_the_duration_is_checked() {
    let mut call = failing_everything_but(&["disposition_status"]);
    call["has_recording"] = json!(true);
    assert_eq!(
        waiting(decide(&call, strict())).0,
        WaitCode::RecordingProcessing
    );
}

#[test]
fn duration_is_checked_third() {
    let call = failing_everything_but(&["disposition_status", "direct_recording_url"]);
    assert_eq!(
        skipped(decide(&call, strict())).0,
        SkipCode::BelowMinimumDuration
    );
}

#[test]
fn disposition_is_checked_fourth() {
    let call = failing_everything_but(&["disposition_status", "direct_recording_url", "talk_time"]);
    assert_eq!(
        skipped(decide(&call, strict())).0,
        SkipCode::DispositionFiltered
    );
}

#[test]
fn the_rep_is_checked_last() {
    let call = failing_everything_but(&[
        "disposition_status",
        "direct_recording_url",
        "talk_time",
        "call_disposition",
    ]);
    assert_eq!(skipped(decide(&call, strict())).0, SkipCode::UnknownRep);
}

#[test]
fn a_call_that_passes_every_check_is_sent_with_the_sync_method_given() {
    let call = sent(
        <Plugin as Aloware>::map_call(
            call().to_string(),
            None,
            false,
            strict(),
            SyncMethod::Workflow,
        )
        .unwrap(),
    );
    assert_eq!(call.sync_method, SyncMethod::Workflow);
}

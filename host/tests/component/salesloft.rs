//! Salesloft through the release component inside wasmtime: what polling
//! depends on beyond the snapshot cases (call data records read as pages,
//! records that cost themselves only, optional fields as warnings).

use crate::support::{default_rules, instance, map_salesloft, read_fixture, salesloft_inputs};
use kendo_bridge::plugin::salesloft::{Cursor, Listing};
use kendo_bridge::plugin::types::{Decision, Direction, InputError, SyncMethod};
use serde_json::{Value, json};

fn sent(decision: Decision) -> kendo_bridge::plugin::types::Call {
    match decision {
        Decision::Send(call) => call,
        other => panic!("expected a send, got {other:?}"),
    }
}

fn first_page() -> Cursor {
    Cursor {
        updated_since: None,
        page: 1,
    }
}

fn guide_call() -> Value {
    serde_json::from_str(&read_fixture("salesloft/call-connected-recorded.json")).expect("JSON")
}

#[test]
fn call_data_records_are_listed_with_has_call_and_joined_by_call_id() {
    let mut instance = instance();
    let request = instance
        .call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_next_request(s, Listing::CallDataRecords, &first_page())
        })
        .expect("no trap");
    assert_eq!(
        request.path,
        "/v2/call_data_records?has_call=true&sort_by=updated_at&sort_direction=ASC&per_page=100&page=1"
    );
    let body = json!({
        "data": [
            {"id": 1, "updated_at": "2026-04-22T11:31:00.000001-04:00", "direction": "outbound",
             "call": {"id": 11111111}},
            {"id": 2, "updated_at": "2026-04-22T11:32:00.000001-04:00", "direction": "inbound",
             "call": {"id": 98765432}}
        ],
        "metadata": {"paging": {"next_page": null}}
    })
    .to_string();
    let page = instance
        .call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_read_call_data_records(s, &first_page(), &body)
        })
        .expect("no trap")
        .expect("readable");
    assert_eq!(page.records.len(), 2);
    // The other call's record first: only the call's own one counts.
    for (record, direction) in [
        (&page.records[0], None),
        (&page.records[1], Some(Direction::Inbound)),
    ] {
        let mut inputs = salesloft_inputs(guide_call().to_string());
        inputs.user = Some(read_fixture("salesloft/user-jamie-rivera.json"));
        inputs.call_data_record = Some(record.json.clone());
        let call = sent(
            map_salesloft(
                &mut instance,
                &inputs,
                &default_rules(),
                SyncMethod::Polling,
            )
            .expect("no trap")
            .expect("readable"),
        );
        assert_eq!(call.direction, direction, "{}", record.json);
    }
}

#[test]
fn a_poison_record_in_a_calls_page_is_rejected_and_the_others_are_listed() {
    let mut instance = instance();
    let mut page: Value =
        serde_json::from_str(&read_fixture("salesloft/calls-page-with-next.json")).expect("JSON");
    let records = page["data"].as_array().map_or(0, Vec::len);
    page["data"][1]["user"] = json!(["not", "an", "object"]);
    let body = page.to_string();
    let read = instance
        .call(|b, s| {
            b.kendo_bridge_salesloft()
                .call_read_page(s, &first_page(), &body)
        })
        .expect("no trap")
        .expect("the page is readable");
    assert_eq!(read.calls.len(), records - 1);
    assert_eq!(read.rejected.len(), 1);
    assert_eq!(read.rejected[0].at, "data[1]");
    assert!(read.rejected[0].id.is_some());
    assert!(
        matches!(&read.rejected[0].error, InputError::WrongType(p) if p.field == "data[1].user"),
        "{:?}",
        read.rejected[0]
    );
}

#[test]
fn an_unreadable_duration_is_a_warning_and_the_call_is_sent() {
    let mut instance = instance();
    let mut call = guide_call();
    call["duration"] = json!("about five minutes");
    let mut inputs = salesloft_inputs(call.to_string());
    inputs.user = Some(read_fixture("salesloft/user-jamie-rivera.json"));
    let call = sent(
        map_salesloft(
            &mut instance,
            &inputs,
            &default_rules(),
            SyncMethod::Polling,
        )
        .expect("no trap")
        .expect("readable"),
    );
    assert_eq!(call.duration_seconds, None);
    assert_eq!(call.warnings.len(), 1);
    assert_eq!(call.warnings[0].field, "duration");
}

//! HubSpot through the release component inside wasmtime: what polling
//! and webhooks depend on, beyond the snapshot cases.

use crate::support::{default_rules, hubspot_inputs, instance, map_hubspot, read_fixture};
use kendo_bridge::plugin::hubspot::{AssociationKind, Cursor, SearchOptions};
use kendo_bridge::plugin::types::{Decision, SyncMethod};
use serde_json::{Value, json};

fn sent(decision: Decision) -> kendo_bridge::plugin::types::Call {
    match decision {
        Decision::Send(call) => call,
        other => panic!("expected a send, got {other:?}"),
    }
}

/// The guide's call as search returns it: no `associations`.
fn searched_call(properties: Value) -> String {
    let mut call: Value =
        serde_json::from_str(&read_fixture("hubspot/call-discovery-acme.json")).expect("JSON");
    if let Value::Object(members) = &mut call {
        members.remove("associations");
    }
    if let (Value::Object(props), Value::Object(changes)) = (&mut call["properties"], properties) {
        props.extend(changes);
    }
    call.to_string()
}

#[test]
fn a_polled_call_takes_contact_and_deal_ids_from_the_page_batch_reads() {
    let mut instance = instance();
    let mut inputs = hubspot_inputs(searched_call(json!({})));
    inputs.owner = Some(read_fixture("hubspot/owner-sam-lee.json"));
    inputs.contacts = Some(read_fixture("hubspot/associations-contacts.json"));
    inputs.deals = Some(read_fixture("hubspot/associations-deals.json"));
    let call = sent(
        map_hubspot(
            &mut instance,
            &inputs,
            &default_rules(),
            SyncMethod::Polling,
        )
        .expect("no trap")
        .expect("readable"),
    );
    assert!(
        call.metadata
            .contains(&("hubspotContactIds".into(), "51,7201".into())),
        "{:?}",
        call.metadata
    );
    assert!(
        call.metadata
            .contains(&("hubspotDealIds".into(), "123456".into())),
        "{:?}",
        call.metadata
    );
}

#[test]
fn an_unknown_disposition_and_an_unreadable_duration_are_warnings_not_failures() {
    let mut instance = instance();
    let mut inputs = hubspot_inputs(searched_call(json!({
        "hs_call_disposition": "11111111-2222-3333-4444-555555555555",
        "hs_call_duration": "twenty minutes",
    })));
    inputs.owner = Some(read_fixture("hubspot/owner-sam-lee.json"));
    let call = sent(
        map_hubspot(
            &mut instance,
            &inputs,
            &default_rules(),
            SyncMethod::Polling,
        )
        .expect("no trap")
        .expect("readable"),
    );
    assert_eq!(call.disposition, None);
    assert_eq!(call.duration_seconds, None);
    let fields: Vec<&str> = call.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "properties.hs_call_disposition",
            "properties.hs_call_duration"
        ]
    );
}

#[test]
fn a_search_page_keeps_readable_results_and_rejects_the_rest() {
    let mut instance = instance();
    let body = json!({"total": 2, "results": [
        {"id": "1", "properties": "garbage"},
        {"id": "2", "properties": {"hs_lastmodifieddate": "1772641800000"}}
    ]})
    .to_string();
    let at = Cursor {
        since_ms: None,
        after: None,
        high_water_ms: None,
    };
    let options = SearchOptions {
        limit: 100,
        lookback_ms: 0,
    };
    let page = instance
        .call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_read_search(s, &at, options, &body)
        })
        .expect("no trap")
        .expect("the page reads");
    assert_eq!(page.calls.len(), 1);
    assert_eq!(page.rejected.len(), 1);
    assert_eq!(page.rejected[0].id.as_deref(), Some("1"));
    assert_eq!(page.rejected[0].at, "results[0]");
}

#[test]
fn a_contact_workflow_body_names_no_call() {
    let mut instance = instance();
    let body = read_fixture("hubspot/workflow-body-contact.json");
    let delivery = instance
        .call(|b, s| b.kendo_bridge_hubspot().call_read_webhook(s, &body))
        .expect("no trap")
        .expect("readable");
    assert!(delivery.call_ids.is_empty());
    assert_eq!(delivery.ignored.len(), 1);
}

#[test]
fn requests_use_the_documented_paths() {
    let mut instance = instance();
    let dispositions = instance
        .call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
        .expect("no trap");
    assert_eq!(dispositions.path, "/calling/v1/dispositions");
    let owner = instance
        .call(|b, s| b.kendo_bridge_hubspot().call_owner_request(s, "7", true))
        .expect("no trap");
    assert_eq!(owner.path, "/crm/v3/owners/7?archived=true");
    let ids = vec!["1".to_owned(), "2".to_owned()];
    let batch = instance
        .call(|b, s| {
            b.kendo_bridge_hubspot()
                .call_associations_request(s, AssociationKind::Deals, &ids)
        })
        .expect("no trap");
    assert_eq!(batch.method, "POST");
    assert_eq!(batch.path, "/crm/v4/associations/calls/deals/batch/read");
    assert_eq!(
        batch.body.as_deref(),
        Some(r#"{"inputs":[{"id":"1"},{"id":"2"}]}"#)
    );
}

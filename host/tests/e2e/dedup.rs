//! Polling and webhooks on at once for the same calls: the ledger, not luck,
//! keeps every call to one Kendo request.

use std::collections::BTreeSet;

use crate::support::{Running, TEAM, count_paths, eventually};
use kendo_bridge::demo::{HUBSPOT_CLIENT_SECRET, SALESLOFT_CALLBACK_TOKEN, StageOptions};
use kendo_bridge::store::State;
use kendo_bridge_sim::Dataset;
use kendo_bridge_sim::dataset::{Change, Source};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_both_polled_and_pushed_by_webhook_reach_kendo_once_and_the_ledger_counts_the_repeats()
 {
    let bridge = Running::start(Dataset::demo(7), StageOptions::default()).await;
    let stage = &bridge.stage;
    let data = &stage.dataset;

    // While the pollers read the same calls: every Aloware delivery, a
    // Salesloft webhook for every Salesloft call and one HubSpot batch
    // naming every HubSpot call.
    for (i, status) in stage.deliver_aloware().await.into_iter().enumerate() {
        assert_eq!(status.ok(), Some(200), "Aloware delivery {i}");
    }
    for call in &data.salesloft_calls {
        let status = stage
            .sims
            .salesloft
            .send_webhook(
                &stage.webhook_url("salesloft"),
                SALESLOFT_CALLBACK_TOKEN,
                "call_updated",
                call.id,
            )
            .await;
        assert_eq!(status.ok(), Some(200), "Salesloft webhook for {}", call.id);
    }
    let hubspot_ids: Vec<u64> = data.hubspot_calls.iter().map(|c| c.id).collect();
    let status = stage
        .sims
        .hubspot
        .send_webhook_v3(
            &stage.webhook_url("hubspot"),
            HUBSPOT_CLIENT_SECRET,
            &hubspot_ids,
        )
        .await;
    assert_eq!(status.ok(), Some(200), "HubSpot webhook batch");

    // Later in the day, once the bridge has seen them: recordings finish,
    // calls in progress end.
    let changing: Vec<(&str, String)> = data
        .later
        .iter()
        .map(|c| match c {
            Change::SalesloftRecordingFinishes { call_id, .. } => {
                ("salesloft", call_id.to_string())
            }
            Change::HubspotUpdate { call_id, .. } => ("hubspot", call_id.to_string()),
        })
        .collect();
    assert!(
        !changing.is_empty(),
        "the demo data set changes some calls later"
    );
    eventually("the bridge has seen every call that changes later", || {
        changing
            .iter()
            .all(|(source, id)| bridge.row(source, id).is_some())
    })
    .await;
    data.apply_later(&stage.sims)
        .expect("the later changes apply");

    eventually("every call the data set expects reached Kendo", || {
        stage.missing().is_empty()
    })
    .await;
    // A duplicate would come from a later sighting: let one more complete
    // polling cycle of each source pass, then let the bridge go quiet.
    let salesloft_lists = || {
        count_paths(
            stage
                .sims
                .salesloft
                .requests()
                .iter()
                .map(|r| r.path.as_str()),
            "/v2/activities/calls",
        )
    };
    let hubspot_searches = || {
        count_paths(
            stage
                .sims
                .hubspot
                .requests()
                .iter()
                .map(|r| r.path.as_str()),
            "/crm/v3/objects/calls/search",
        )
    };
    let (sl0, hs0) = (salesloft_lists(), hubspot_searches());
    eventually("another full polling cycle of both sources", || {
        salesloft_lists() >= sl0 + 2 && hubspot_searches() >= hs0 + 2
    })
    .await;
    eventually("the outbox and the inbox are empty", || {
        bridge
            .store
            .run_here(|s| {
                Ok(
                    kendo_bridge_core::ledger::send::queue_depth(s.database(), TEAM)? == 0
                        && kendo_bridge_core::ledger::inbox::backlog(s.database())? == 0,
                )
            })
            .expect("the store reads")
            && bridge.ledger().iter().all(|r| r.state != State::Sending)
    })
    .await;

    let kendo = &stage.sims.kendo;
    assert_eq!(
        kendo.duplicates(),
        vec![],
        "no call was created twice in Kendo"
    );
    let accepted: BTreeSet<(String, String)> = kendo
        .accepted()
        .iter()
        .map(|c| {
            (
                c.source().unwrap_or("?").to_string(),
                c.source_call_id().unwrap_or_default(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = data
        .expected_sent(stage.options.min_duration_seconds)
        .into_iter()
        .map(|(s, id)| (s.as_str().to_string(), id))
        .collect();
    assert_eq!(accepted, expected, "Kendo holds exactly the expected calls");
    assert_eq!(kendo.accepted().len(), expected.len());

    // Every polled call that a webhook also named was seen at least twice,
    // and is sent once.
    for (source, id) in data.expected_sent(stage.options.min_duration_seconds) {
        if source == Source::Aloware {
            continue; // webhook only: no second path
        }
        let row = bridge
            .row(source.as_str(), &id)
            .unwrap_or_else(|| panic!("{} {id} is in the ledger", source.as_str()));
        assert!(
            row.seen_count >= 2,
            "{} {id} polled and pushed, yet seen {} time(s)",
            source.as_str(),
            row.seen_count
        );
        assert_eq!(row.state, State::Sent, "{} {id}", source.as_str());
        assert!(
            row.kendo_call_id.is_some(),
            "{} {id} keeps Kendo's callId",
            source.as_str()
        );
    }
    bridge.stop().await;
}

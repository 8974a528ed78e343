//! Kendo refuses bodies over 5 MB. A transcript that does not fit is cut
//! when a recording carries the call, and the call fails (never sent) when
//! nothing else would.

use std::time::Duration;

use crate::support::{Running, TEAM, eventually};
use kendo_bridge::demo::{ALOWARE_SECRET, StageOptions};
use kendo_bridge::store::State;
use kendo_bridge_sim::aloware::{self, AlowareCall, AlowareContact, Direction, Outcome};
use kendo_bridge_sim::{AlowareAuth, Dataset};
use serde_json::{Value, json};
use time::macros::datetime;

const KENDO_LIMIT: usize = 5_000_000;
const MARKER: &str = "\n[transcript truncated by kendo-bridge: kept ";

async fn webhooks_only() -> Running {
    let options = StageOptions {
        poll_interval: Duration::ZERO,
        ..StageOptions::default()
    };
    Running::start(Dataset::demo(7), options).await
}

/// A completed Aloware call by a rep in the bridge's directory.
fn call(bridge: &Running, id: u64, recording: Option<&str>) -> AlowareCall {
    let rep = &bridge.stage.dataset.reps[2];
    AlowareCall {
        id: json!(id),
        direction: Direction::Outbound,
        outcome: Outcome::Completed,
        duration: 3_610,
        talk_time: 3_600,
        wait_time: 10,
        disposition: Some((31_221, "Interested".into())),
        has_recording: recording.is_some(),
        recording_url: recording.map(str::to_owned),
        has_transcription: true,
        lead_number: "+14155550123".into(),
        incoming_number: "+14155550199".into(),
        contact: AlowareContact {
            id: json!(30_000_001),
            first_name: "Alex".into(),
            last_name: "Morgan".into(),
            phone_number: "+14155550123".into(),
            email: Some("alex.morgan@acme.example".into()),
            company_name: Some("Acme Corp".into()),
        },
        campaign_id: json!(412),
        user_id: rep.aloware_user_id,
        notes: None,
        created_at: datetime!(2026-04-22 16:00 UTC),
        numbers_as_strings: false,
    }
}

/// About 6 MB of conversation, with multi-byte characters so a cut has to
/// respect character boundaries.
fn six_megabyte_transcript() -> String {
    // Long turns: Aloware sends each turn as a `parsed_transcription`
    // message object, and short ones would push the delivery past the
    // bridge's 8 MB webhook limit before the transcript reached 6 MB.
    let rep = "Thanks for taking the time today — shall we go through the renewal line by line? "
        .repeat(12);
    let contact =
        "Sure, the café team wants the same seats, and the pricing is déjà vu from last year. "
            .repeat(12);
    let turn = format!("Rep: {}\nContact: {}\n", rep.trim(), contact.trim());
    turn.repeat(6_000_000 / turn.len() + 1)
}

async fn deliver(bridge: &Running, event: &Value) {
    let status = bridge
        .stage
        .sims
        .aloware
        .deliver(
            &bridge.stage.webhook_url("aloware"),
            &AlowareAuth::Bearer(ALOWARE_SECRET.into()),
            event,
        )
        .await;
    assert_eq!(status.ok(), Some(200), "{:?} delivered", event["event"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_megabyte_transcript_with_a_recording_reaches_kendo_cut_to_fit_with_a_marker() {
    let bridge = webhooks_only().await;
    let call = call(
        &bridge,
        940_870_001,
        Some("https://app.aloware.example/static/recording/long-call"),
    );
    let transcript = six_megabyte_transcript();
    assert!(transcript.len() > 6_000_000);

    // The transcript first, so the call is sent with it.
    deliver(
        &bridge,
        &aloware::transcript_saved(&call, "A long renewal call.", &transcript),
    )
    .await;
    deliver(&bridge, &aloware::disposition_completed(&call)).await;

    let kendo = &bridge.stage.sims.kendo;
    eventually("the call reached Kendo", || !kendo.accepted().is_empty()).await;
    let accepted = kendo.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].source_call_id().as_deref(), Some("940870001"));
    let sent = accepted[0]
        .field("transcript")
        .expect("a transcript was sent");
    let (kept, marker) = sent
        .rsplit_once(MARKER)
        .expect("the transcript ends with the marker");
    let original = transcript.trim();
    assert_eq!(
        marker,
        format!(
            "{} of {} characters]",
            kept.chars().count(),
            original.chars().count()
        )
    );
    assert!(
        original.starts_with(kept),
        "the kept text is the transcript's beginning"
    );
    assert!(
        kept.len() > 4_000_000,
        "only {} bytes kept: cut far below the limit",
        kept.len()
    );
    let requests = kendo.requests();
    assert_eq!(requests.len(), 1, "sent once, not refused first");
    assert_eq!(requests[0].status, Some(201));
    assert!(
        requests[0].body_bytes <= KENDO_LIMIT,
        "{} bytes sent",
        requests[0].body_bytes
    );
    assert_eq!(kendo.stats().rejected_413, 0);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_six_megabyte_transcript_without_a_recording_fails_as_too_large_and_is_never_sent() {
    let bridge = webhooks_only().await;
    let call = call(&bridge, 940_870_002, None);
    let transcript = six_megabyte_transcript();

    // Aloware's order: the disposition (transcript pending), then the transcript.
    deliver(&bridge, &aloware::disposition_completed(&call)).await;
    deliver(
        &bridge,
        &aloware::transcript_saved(&call, "A long renewal call.", &transcript),
    )
    .await;

    eventually("the call failed in the ledger", || {
        bridge
            .row("aloware", "940870002")
            .is_some_and(|r| r.state == State::Failed)
    })
    .await;
    let row = bridge.row("aloware", "940870002").expect("the ledger row");
    assert_eq!(row.reason_code.as_deref(), Some("too-large"));
    let reason = row.reason.unwrap_or_default();
    assert!(
        reason.contains("over the 5000000-byte limit"),
        "the reason names the size limit: {reason}"
    );
    let queued = bridge
        .store
        .run_here(|s| {
            Ok(kendo_bridge_core::ledger::send::queue_depth(
                s.database(),
                TEAM,
            )?)
        })
        .expect("the store reads");
    assert_eq!(queued, 0, "nothing is left to send");
    assert_eq!(
        bridge.stage.sims.kendo.stats().requests,
        0,
        "Kendo never saw the call"
    );
    bridge.stop().await;
}

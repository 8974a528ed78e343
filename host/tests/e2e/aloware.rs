//! Aloware end to end: the captured real sequence of a call replayed by the
//! simulator (time scaled), whatever events the user subscribed to; the
//! bounded wait for a transcript and the sweep that ends it (in virtual
//! time); and deliveries that cannot be read, answered 200 and kept.

use std::time::Duration;

use crate::support::{
    PATIENCE, Running, client, eventually, hmac_sha1_hex, hmac_sha256, hmac_sha256_base64, now_ms,
    sql_count, status_json,
};
use kendo_bridge::clock::Clock;
use kendo_bridge::config::BridgeConfig;
use kendo_bridge::demo::{
    ALOWARE_SECRET, HUBSPOT_CLIENT_SECRET, KENDO_WEBHOOK_SECRET, SALESLOFT_CALLBACK_TOKEN,
    StageOptions,
};
use kendo_bridge::engine::Engine;
use kendo_bridge::plugin::Plugin;
use kendo_bridge::store::State;
use kendo_bridge_core::ledger::{self, report};
use kendo_bridge_sim::aloware::{self, AlowareCall, Scheduled};
use kendo_bridge_sim::{AlowareAuth, Dataset};
use serde_json::Value;

const RECORDING: &str = "https://app.aloware.io/static/recording/32c1a2f8-demo";
const SUMMARY: &str = "Alex asked for a two-year quote; Sam will send it by Friday.";
const TRANSCRIPT: &str = "Rep: Hi Alex, this is Sam from YourCo.\nContact: Hi Sam, thanks for calling back.\nRep: Shall we look at the two-year option?";
/// 118.65 s of captured traffic in about 0.12 s.
const TIME_SCALE: f64 = 1_000.0;

/// A bridge on Aloware's webhooks alone, for an account that sends
/// transcripts (one arrived a minute ago): calls wait up to
/// `transcript_wait` for theirs.
async fn webhooks_only(transcript_wait: Duration) -> Running {
    let bridge = never_transcribed(transcript_wait).await;
    let minute_ago = kendo_bridge::clock::Clock::system().now_ms() - 60_000;
    bridge
        .store
        .run_here(move |s| {
            Ok(ledger::hold::transcript_seen(
                s.database(),
                "aloware",
                minute_ago,
            )?)
        })
        .expect("the transcript is noted");
    bridge
}

/// A bridge on Aloware's webhooks alone, for an account that has never
/// sent a transcript.
async fn never_transcribed(transcript_wait: Duration) -> Running {
    let options = StageOptions {
        poll_interval: Duration::ZERO,
        aloware_transcript_wait: transcript_wait,
        ..StageOptions::default()
    };
    Running::start(Dataset::demo(7), options).await
}

/// The captured call (940868616: 63 s of talk, 2 s of agent wait), made by
/// a rep in the bridge's directory.
fn captured_call(bridge: &Running, id: u64) -> AlowareCall {
    let rep = &bridge.stage.dataset.reps[2];
    let mut call = AlowareCall::captured(id, rep.aloware_user_id);
    call.disposition = Some((31_227, "No Answer".into()));
    call.contact.email = Some("capture.demo@example.test".into());
    call
}

/// Replays `sequence` to the bridge and checks every delivery got a 200.
async fn replay(bridge: &Running, sequence: &[Scheduled]) {
    let statuses = bridge
        .stage
        .sims
        .aloware
        .replay(
            &bridge.stage.webhook_url("aloware"),
            &AlowareAuth::Bearer(ALOWARE_SECRET.into()),
            sequence,
            TIME_SCALE,
        )
        .await;
    for (step, status) in sequence.iter().zip(statuses) {
        assert_eq!(status.ok(), Some(200), "{} answered", step.event());
    }
}

/// The captured sequence without the events whose name `drop` picks.
fn without(sequence: Vec<Scheduled>, drop: impl Fn(&str) -> bool) -> Vec<Scheduled> {
    sequence.into_iter().filter(|s| !drop(s.event())).collect()
}

/// The one body Kendo accepted for `id`, after waiting for it.
async fn the_only_call_in_kendo(bridge: &Running, id: &str) -> Value {
    let kendo = &bridge.stage.sims.kendo;
    // Sent, and every delivery processed: a later one could only have sent
    // it again by now.
    eventually("the call was sent and every delivery processed", || {
        bridge
            .row("aloware", id)
            .is_some_and(|r| r.state == State::Sent)
            && bridge
                .store
                .run_here(|s| Ok(kendo_bridge_core::ledger::inbox::backlog(s.database())?))
                .is_ok_and(|backlog| backlog == 0)
    })
    .await;
    let accepted = kendo.accepted();
    assert_eq!(accepted.len(), 1, "the call reached Kendo exactly once");
    assert_eq!(accepted[0].source_call_id().as_deref(), Some(id));
    assert_eq!(kendo.stats().requests, 1);
    accepted[0].body.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_captured_call_reaches_kendo_once_with_its_transcript_talk_time_and_recording() {
    // A wait far longer than the replay, so a slow machine cannot turn this
    // into the wait-expired scenario.
    let bridge = webhooks_only(PATIENCE).await;
    let call = captured_call(&bridge, 940_868_616);
    replay(
        &bridge,
        &aloware::captured_completed_call(&call, RECORDING, SUMMARY, TRANSCRIPT),
    )
    .await;
    let body = the_only_call_in_kendo(&bridge, "940868616").await;
    assert_eq!(body["transcript"], TRANSCRIPT);
    assert_eq!(body["duration"], 63, "talk_time, not duration (66)");
    assert_eq!(body["audioUrl"], RECORDING);
    assert!(
        !body.to_string().contains(SUMMARY),
        "the summary is not sent: {body}"
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_subscribed_only_to_call_disposed_gets_the_call_exactly_once() {
    let bridge = webhooks_only(PATIENCE).await;
    let call = captured_call(&bridge, 940_868_700);
    // Call-Disposed and the transcription events only: no other call event
    // (and so no recording URL) ever arrives.
    let sequence = without(
        aloware::captured_completed_call(&call, RECORDING, SUMMARY, TRANSCRIPT),
        |name| name != "Call-Disposed" && !name.starts_with("transcription."),
    );
    assert_eq!(
        sequence
            .iter()
            .filter(|s| !s.event().starts_with("transcription."))
            .count(),
        1
    );
    replay(&bridge, &sequence).await;
    let body = the_only_call_in_kendo(&bridge, "940868700").await;
    assert_eq!(body["transcript"], TRANSCRIPT);
    assert_eq!(body["duration"], 63);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_subscribed_only_to_the_disposition_events_gets_the_call_exactly_once() {
    let bridge = webhooks_only(PATIENCE).await;
    let call = captured_call(&bridge, 940_868_701);
    // `...-DispositionCompleted` and the transcription events only.
    let sequence = without(
        aloware::captured_completed_call(&call, RECORDING, SUMMARY, TRANSCRIPT),
        |name| !name.contains("PhoneCall-Disposition") && !name.starts_with("transcription."),
    );
    replay(&bridge, &sequence).await;
    let body = the_only_call_in_kendo(&bridge, "940868701").await;
    assert_eq!(body["transcript"], TRANSCRIPT);
    assert_eq!(body["duration"], 63);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_an_account_that_never_sent_a_transcript_goes_with_its_recording_at_once() {
    // The default wait: in this account it must not apply.
    let bridge = never_transcribed(Duration::from_secs(300)).await;
    let call = captured_call(&bridge, 940_868_710);
    let sequence = without(
        aloware::captured_completed_call(&call, RECORDING, SUMMARY, TRANSCRIPT),
        |name| name.starts_with("transcription."),
    );
    replay(&bridge, &sequence).await;
    let last_delivery = std::time::Instant::now();
    let body = the_only_call_in_kendo(&bridge, "940868710").await;
    assert!(
        last_delivery.elapsed() < Duration::from_secs(5),
        "reached Kendo {:?} after the last delivery",
        last_delivery.elapsed()
    );
    assert_eq!(body["audioUrl"], RECORDING);
    assert!(body.get("transcript").is_none(), "{body}");
    let status = bridge
        .store
        .run_here(|s| {
            Ok(kendo_bridge_core::sources::aloware::transcript_mode(
                s.database(),
                kendo_bridge::clock::Clock::system().now_ms(),
            )?)
        })
        .expect("the mode reads");
    assert_eq!(
        status,
        kendo_bridge_core::sources::aloware::TranscriptMode::NoWait { last_at: None }
    );
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_without_its_transcript_is_never_sent_as_the_transcript() {
    let bridge = webhooks_only(Duration::from_millis(300)).await;
    let call = captured_call(&bridge, 940_868_703);
    let sequence = without(
        aloware::captured_completed_call(&call, RECORDING, SUMMARY, TRANSCRIPT),
        |name| name == "transcription.open_search.saved",
    );
    assert_eq!(
        sequence.last().map(Scheduled::event),
        Some("transcription.call.summarized")
    );
    replay(&bridge, &sequence).await;
    let body = the_only_call_in_kendo(&bridge, "940868703").await;
    assert!(body.get("transcript").is_none(), "{body}");
    assert!(!body.to_string().contains(SUMMARY), "{body}");
    bridge.stop().await;
}

/// Posts `body` to the Aloware endpoint with the right token.
async fn post_aloware(bridge: &Running, body: &'static str) -> u16 {
    client()
        .post(bridge.stage.webhook_url("aloware"))
        .bearer_auth(ALOWARE_SECRET)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the bridge answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_aloware_delivery_is_answered_200_and_kept_as_failed_under_its_call_id() {
    let bridge = webhooks_only(PATIENCE).await;
    // No event name: the plugin cannot read it, but the call id is there.
    let status = post_aloware(&bridge, r#"{"body": {"id": 940868799, "type": 1}}"#).await;
    assert_eq!(
        status, 200,
        "Aloware never retries: a refusal loses the call"
    );
    eventually("the delivery was recorded as failed", || {
        bridge
            .row("aloware", "940868799")
            .is_some_and(|r| r.state == State::Failed)
    })
    .await;
    let row = bridge.row("aloware", "940868799").expect("the ledger row");
    assert_eq!(row.reason_code.as_deref(), Some("unreadable"));
    let reason = row.reason.unwrap_or_default();
    assert!(
        reason.contains("event"),
        "the reason names the field: {reason}"
    );
    let status = status_json(&bridge.db());
    let shown = status["lastErrors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .any(|e| e["sourceId"] == "940868799" && e["code"] == "unreadable")
    });
    assert!(shown, "`status` shows it: {status:#}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_delivery_nobody_can_read_is_answered_200_on_every_webhook_route() {
    let bridge = webhooks_only(PATIENCE).await;
    let body = "{\"this is\": not JSON";
    let post = |source: &str| client().post(bridge.stage.webhook_url(source)).body(body);
    let salesloft = post("salesloft")
        .header("x-salesloft-event", "call_updated")
        .header(
            "x-salesloft-signature",
            hmac_sha1_hex(SALESLOFT_CALLBACK_TOKEN, body.as_bytes()),
        );
    let timestamp = now_ms().to_string();
    let url = bridge.stage.webhook_url("hubspot");
    let hubspot = post("hubspot")
        .header(
            "X-HubSpot-Signature-v3",
            hmac_sha256_base64(
                HUBSPOT_CLIENT_SECRET,
                &[
                    b"POST",
                    url.as_bytes(),
                    body.as_bytes(),
                    timestamp.as_bytes(),
                ],
            ),
        )
        .header("X-HubSpot-Request-Timestamp", timestamp);
    let kendo = post("kendo").header(
        "X-Kendo-Signature",
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(KENDO_WEBHOOK_SECRET, &[body.as_bytes()]))
        ),
    );
    let aloware = post("aloware").bearer_auth(ALOWARE_SECRET);
    for (source, request) in [
        ("salesloft", salesloft),
        ("hubspot", hubspot),
        ("kendo", kendo),
        ("aloware", aloware),
    ] {
        let status = request.send().await.expect("the bridge answers").status();
        assert_eq!(status.as_u16(), 200, "{source}: stored, so answered 2xx");
    }
    eventually("every delivery was closed with its reason", || {
        sql_count(
            &bridge.db(),
            "SELECT COUNT(*) FROM inbox WHERE processed_at IS NOT NULL AND error IS NOT NULL",
        ) == 4
    })
    .await;
    let health = bridge
        .store
        .run_here(|s| Ok(ledger::health::all(s.database())?))
        .expect("health reads");
    for source in ["salesloft", "hubspot", "kendo", "aloware"] {
        assert!(
            health
                .iter()
                .any(|h| h.source == source && h.topic == "webhook" && h.problem.is_some()),
            "{source}'s webhook problem is recorded: {health:?}"
        );
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aloware_delivery_with_no_credentials_is_refused_401() {
    let bridge = webhooks_only(PATIENCE).await;
    let status = client()
        .post(bridge.stage.webhook_url("aloware"))
        .body(r#"{"event": "Call-Disposed", "body": {"id": 1}}"#)
        .send()
        .await
        .expect("the bridge answers")
        .status();
    assert_eq!(status.as_u16(), 401);
    assert_eq!(sql_count(&bridge.db(), "SELECT COUNT(*) FROM inbox"), 0);
    bridge.stop().await;
}

// ---- the sweep, in virtual time ------------------------------------------------

/// An engine on an Aloware-only configuration with `transcript_wait`,
/// its clock reading `start` now (tokio's clock must be paused).
fn engine(dir: &std::path::Path, transcript_wait: &str, start: i64) -> Engine {
    let key = dir.join("kendo.key");
    std::fs::write(&key, "pk_test").expect("the key file is written");
    let config = format!(
        r#"state = "{state}"
[kendo]
url = "http://127.0.0.1:9"
[[kendo.teams]]
name = "sales"
api_key = {{ file = "{key}" }}
[aloware]
allow_unauthenticated = true
transcript_wait = "{transcript_wait}"
[[reps]]
key = "58211"
email = "nina@yourco.com"
name = "Nina Patel"
"#,
        state = dir.join("state.db").display(),
        key = key.display(),
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config).expect("the configuration is written");
    let config = BridgeConfig::load(&path).expect("the configuration loads");
    let plugin = Plugin::embedded().expect("the embedded plugin loads");
    let engine = Engine::open(config, plugin, Clock::starting_at(start)).expect("the engine opens");
    // An account that sends transcripts: one arrived a minute before.
    engine
        .ctx
        .store
        .run_here(move |s| {
            Ok(ledger::hold::transcript_seen(
                s.database(),
                "aloware",
                start - 60_000,
            )?)
        })
        .expect("the transcript is noted");
    engine
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/aloware")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(start_paused = true)]
async fn a_call_waiting_for_its_transcript_is_released_by_the_sweep_when_its_wait_ends() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(dir.path(), "2m", 1_780_000_000_000);
    let al = engine.sources.aloware.clone().expect("aloware is enabled");
    let row = || {
        engine
            .ctx
            .store
            .run_here(|s| Ok(report::call(s.database(), "aloware", "cw_12345")?))
            .expect("the ledger reads")
            .into_iter()
            .next()
            .expect("the call's row")
    };

    let deliver = |body: String| {
        let (ctx, sources) = (engine.ctx.clone(), engine.sources.clone());
        async move {
            let now = ctx.clock.now_ms();
            ctx.store
                .ledger(move |db| {
                    kendo_bridge_core::ledger::inbox::insert(
                        db,
                        "aloware",
                        &body,
                        None,
                        body.as_bytes(),
                        now,
                    )
                })
                .await
                .expect("the delivery is stored");
            kendo_bridge::inbox::process_inbox(&ctx, &sources, || false)
                .await
                .expect("the inbox is processed")
        }
    };
    // When the inbox's loop next wakes for a transcript wait: the core's
    // answer to what is due next.
    let next_sweep_at = || {
        let store = engine.ctx.store.clone();
        async move {
            store
                .ledger(|db| kendo_bridge_core::due::next(db, None))
                .await
                .ok()
                .and_then(|due| due.transcript_wait)
        }
    };
    let processed = deliver(fixture("recording-saved.json")).await;
    assert_eq!(processed.processed, 1, "{processed:?}");
    assert_eq!(row().state, State::Waiting);
    assert_eq!(row().reason_code.as_deref(), Some("transcript-pending"));
    let started = engine.ctx.clock.now_ms();
    assert_eq!(next_sweep_at().await, Some(started + 120_000));

    // A repeat (Call-Disposed, without the recording URL) neither sends the
    // call nor extends the wait.
    tokio::time::advance(Duration::from_secs(30)).await;
    deliver(fixture("call-disposed.json")).await;
    assert_eq!(row().state, State::Waiting);
    assert_eq!(next_sweep_at().await, Some(started + 120_000));

    tokio::time::advance(Duration::from_millis(89_999)).await;
    al.sweep().await.expect("the sweep runs");
    assert_eq!(row().state, State::Waiting, "one millisecond early");

    tokio::time::advance(Duration::from_millis(1)).await;
    let report = al.sweep().await.expect("the sweep runs");
    assert_eq!(report.enqueued, 1);
    assert_eq!(row().state, State::Queued);
    assert_eq!(next_sweep_at().await, None);
    let payload: Value = engine
        .ctx
        .store
        .run_here(|s| {
            Ok(kendo_bridge_core::ledger::send::due(
                s.database(),
                "sales",
                i64::MAX,
                10,
            )?)
        })
        .expect("the outbox reads")
        .first()
        .map(|item| serde_json::from_str(&item.payload).unwrap_or_default())
        .expect("the queued send");
    assert_eq!(
        payload["audioUrl"], "https://...",
        "the recording URL survived Call-Disposed"
    );
    assert!(payload.get("transcript").is_none(), "{payload}");

    // A transcript after the wait changes nothing already decided, and a
    // later delivery does not wait again.
    let report = al.sweep().await.expect("the sweep runs");
    assert_eq!(report.enqueued + report.updated, 0);
}

#[tokio::test(start_paused = true)]
async fn sync_once_sends_a_call_whose_wait_for_its_transcript_ended_since_the_last_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = engine(dir.path(), "2m", 1_780_000_000_000);
    let state = || {
        engine
            .ctx
            .store
            .run_here(|s| Ok(report::call(s.database(), "aloware", "cw_12345")?))
            .expect("the ledger reads")
            .into_iter()
            .next()
            .map(|row| (row.state, row.reason_code))
    };
    let body = fixture("recording-saved.json");
    let now = engine.ctx.clock.now_ms();
    engine
        .ctx
        .store
        .run_here(|s| {
            Ok(kendo_bridge_core::ledger::inbox::insert(
                s.database(),
                "aloware",
                "sha256:1",
                None,
                body.as_bytes(),
                now,
            )?)
        })
        .expect("the delivery is stored");

    // Kendo is unreachable here (port 9): only the ledger is looked at.
    engine
        .sync_once(Duration::ZERO, |_| {})
        .await
        .expect("the first run");
    assert_eq!(
        state(),
        Some((State::Waiting, Some("transcript-pending".into())))
    );

    tokio::time::advance(Duration::from_secs(120)).await;
    engine
        .sync_once(Duration::ZERO, |_| {})
        .await
        .expect("the second run");
    let (state, code) = state().expect("the call's row");
    assert_ne!(state, State::Waiting, "released by the sweep ({code:?})");
    assert_ne!(code.as_deref(), Some("transcript-pending"));
}

//! Every scenario, written once against [`Driver`], run on both drivers:
//! `scenarios!` expands each into `host::<name>` and `spin::<name>`. A
//! scenario function not listed there is dead code, which this file denies
//! (so the build fails), and `every_scenario_runs_on_both_drivers` checks
//! the list against the functions; no scenario can exist for one driver
//! only.

#![deny(dead_code)]

use std::time::Duration;

use kendo_bridge_conformance::{
    Driver, HubspotSetup, Operator, PluginChoice, SPACING, SalesloftSetup, Sender, Setup, Webhook,
};
use kendo_bridge_sim::aloware::{AlowareCall, captured_completed_call, captured_failed_dial};
use serde_json::{Value, json};

const RECORDING: &str = "https://app.aloware.io/static/recording/conformance";

/// Expands each scenario into one test per driver.
macro_rules! scenarios {
    ($list:ident: $($name:ident),* $(,)?) => {
        /// The scenarios of this list, by name.
        const $list: &[&str] = &[$(stringify!($name)),*];

        mod host {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<kendo_bridge_conformance::host::HostDriver>().await;
                }
            )*
        }

        mod spin {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name::<kendo_bridge_conformance::spin::SpinDriver>().await;
                }
            )*
        }
    };
}

scenarios!(SCENARIOS:
    an_aloware_call_reaches_kendo_once_however_often_it_is_delivered,
    an_aloware_delivery_with_the_wrong_secret_is_refused_and_nothing_is_stored,
    a_salesloft_delivery_with_a_forged_signature_is_refused_and_nothing_is_stored,
    a_hubspot_delivery_with_a_forged_signature_is_refused_and_nothing_is_stored,
    a_kendo_result_with_a_forged_signature_is_refused_and_nothing_is_stored,
    a_body_over_the_limit_is_answered_413_and_nothing_is_stored,
    a_skip_decision_is_the_same_skipped_row_with_the_plugins_reason,
    a_call_below_the_minimum_duration_is_skipped_with_the_same_reason,
    a_call_the_plugin_cannot_read_is_failed_with_the_plugins_explanation,
    an_unreadable_aloware_delivery_is_kept_and_becomes_a_failed_row,
    a_salesloft_webhook_call_reaches_kendo_once,
    a_hubspot_webhook_names_a_call_that_is_read_and_sent_once,
    a_hubspot_workflow_delivery_is_recorded_as_having_come_by_workflow,
    an_unreadable_call_in_a_hubspot_batch_is_a_failed_row_and_the_others_go,
    a_hubspot_delivery_about_a_contact_is_kept_and_sends_nothing,
    a_delivery_refused_by_the_source_for_a_setting_is_kept_for_a_person,
    a_delivery_the_source_fails_briefly_is_retried_and_goes,
    a_delivery_the_source_rejects_for_good_is_closed_with_its_reason,
    a_kendo_5xx_waits_for_its_back_off_then_goes,
    a_kendo_429_holds_the_key_until_retry_after_then_goes,
    a_lost_answer_is_flagged_and_the_call_re_sent_once,
    a_kendo_answer_slower_than_the_timeout_is_a_lost_answer,
    a_call_kendo_keeps_failing_is_dead_after_its_attempts,
    a_kendo_rejection_fails_the_call_for_good_without_a_retry,
    a_2xx_from_kendo_the_plugin_cannot_read_counts_as_sent,
    calls_arriving_at_once_go_one_a_slot_at_most_thirty_a_minute,
    kendos_score_of_a_sent_call_is_kept_once_and_matched_by_its_call_id,
    a_kendo_result_for_a_call_never_sent_is_kept_unmatched,
    a_scored_hubspot_call_gets_kendo_sent_its_call_id_and_its_score_written_back,
    a_write_back_refused_for_a_scope_waits_and_names_the_scope,
    settle_sent_after_an_unknown_outcome_queues_the_hubspot_write_back,
    replay_puts_a_dead_call_back_in_the_queue_and_it_goes_once,
    status_counts_every_state,
    a_send_the_runtime_refuses_leaves_nothing_and_goes_once_allowed,
    a_tick_polls_hubspot_and_sends_each_call_once,
    a_tick_polls_salesloft_and_sends_each_call_once,
    a_salesloft_call_without_its_record_waits_then_goes_without_a_direction,
    a_salesloft_transcript_arriving_during_the_direction_wait_goes_when_the_wait_ends,
    an_aloware_call_waits_for_its_transcript_then_goes_with_its_recording,
    an_aloware_transcript_within_the_wait_goes_with_the_call,
    a_send_that_never_left_spends_no_attempt_and_is_a_named_problem,
    a_plugin_trap_costs_only_its_call_and_the_next_one_goes,
);

/// How many scenarios the suite must have at least (issue 19).
const AT_LEAST: usize = 30;

#[test]
fn every_scenario_runs_on_both_drivers() {
    let source = include_str!("scenarios.rs");
    // A scenario is a generic `async fn NAME<D: Driver>()`: no argument.
    let mut defined: Vec<&str> = source
        .split("\nasync fn ")
        .skip(1)
        .filter_map(|rest| {
            let (name, generics) = rest.split_once('<')?;
            let (_, after) = generics.split_once('>')?;
            after.starts_with("()").then_some(name)
        })
        .collect();
    defined.sort_unstable();
    let mut listed: Vec<&str> = SCENARIOS.to_vec();
    listed.sort_unstable();
    assert_eq!(
        defined, listed,
        "each scenario function is listed once, in `scenarios!`"
    );
    assert!(
        SCENARIOS.len() >= AT_LEAST,
        "{} scenarios; issue 19 asks for at least {AT_LEAST}",
        SCENARIOS.len()
    );
}

// ---- helpers ---------------------------------------------------------------

fn aloware_call(id: u64) -> AlowareCall {
    AlowareCall::captured(id, 4_242)
}

/// Every delivery of the captured sequence of `id` up to the recording
/// (which makes the call ready), as Aloware sends them; each answered 200.
async fn deliver_aloware_call<D: Driver>(d: &mut D, id: u64) {
    let sequence = captured_completed_call(&aloware_call(id), RECORDING, "summary", "Rep: hi");
    for step in sequence.iter().take(3) {
        let answer = d.deliver(Webhook::aloware(&step.payload)).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
}

/// HubSpot's CRM webhook event for a created call.
fn call_created(event_id: u64, call_id: u64) -> Value {
    json!({
        "eventId": event_id, "subscriptionId": 2, "portalId": 62_515, "appId": 1_234_567,
        "occurredAt": 1_776_870_000_000_i64, "subscriptionType": "object.creation",
        "attemptNumber": 0, "objectId": call_id, "objectTypeId": "0-48",
        "changeSource": "CRM_UI", "changeFlag": "CREATED",
    })
}

fn hubspot_setup() -> Setup {
    Setup {
        hubspot: Some(HubspotSetup::default()),
        ..Setup::default()
    }
}

fn write_back_setup() -> Setup {
    Setup {
        hubspot: Some(HubspotSetup {
            write_back: true,
            ..HubspotSetup::default()
        }),
        ..Setup::default()
    }
}

/// A HubSpot call of Sam's delivered by a signed webhook and sent.
async fn hubspot_call_sent<D: Driver>(d: &mut D) -> u64 {
    let call_id = d.sims().hubspot.add_sams_recorded_call();
    let answer = d
        .deliver(Webhook::hubspot(
            json!([call_created(1, call_id)]).to_string(),
        ))
        .await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    assert_eq!(d.kendo_accepted().len(), 1, "{}: the call is sent", D::NAME);
    call_id
}

/// A finished, recorded Salesloft call of `user` (the simulator's).
fn salesloft_call(
    id: u64,
    user: u64,
    now: time::OffsetDateTime,
    updated_ago: time::Duration,
) -> kendo_bridge_sim::salesloft::SalesloftCall {
    kendo_bridge_sim::salesloft::SalesloftCall::recorded(id, user, now, updated_ago)
}

/// A Salesloft user (a rep).
fn salesloft_user(
    id: u64,
    name: (&str, &str),
    email: &str,
) -> kendo_bridge_sim::salesloft::SalesloftUser {
    kendo_bridge_sim::salesloft::SalesloftUser::rep(id, name, email)
}

/// Salesloft with user 3102 (Sam) and their finished, recorded call 62000,
/// updated five minutes ago.
fn salesloft_with_a_call<D: Driver>(d: &D) {
    let sims = d.sims();
    sims.salesloft
        .add_user(salesloft_user(3_102, ("Sam", "Rivera"), "sam@yourco.com"));
    let now = time::OffsetDateTime::now_utc();
    sims.salesloft.add_call(salesloft_call(
        62_000,
        3_102,
        now,
        time::Duration::minutes(5),
    ));
}

fn salesloft_setup(salesloft: SalesloftSetup) -> Setup {
    Setup {
        salesloft: Some(salesloft),
        ..Setup::default()
    }
}

/// Salesloft's signed `call_updated` for call `id` as the simulator has it.
fn salesloft_webhook<D: Driver>(d: &D, id: u64) -> Webhook {
    let body = d
        .sims()
        .salesloft
        .call_json(id)
        .expect("the call is in the simulator")
        .to_string();
    Webhook::salesloft("call_updated", body)
}

/// Nothing was stored: no delivery in the inbox, no ledger row, nothing
/// sent.
fn nothing_stored<D: Driver>(d: &D) {
    assert_eq!(d.count("SELECT COUNT(*) FROM inbox"), 0, "{}", D::NAME);
    assert_eq!(d.ledger(), vec![], "{}", D::NAME);
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

/// Moves time past a retry of the longest back-off (the cap, 10 minutes)
/// and past the key's spacing, then ticks.
async fn later<D: Driver>(d: &mut D) {
    d.advance(Duration::from_secs(11 * 60));
    d.tick().await;
}

/// An account that sends Aloware transcripts (the last arrived a minute
/// ago): only then does a ready call wait for one.
fn aloware_transcripts_come<D: Driver>(d: &D) {
    d.execute(&format!(
        "INSERT INTO transcripts_seen (source, last_at) VALUES ('aloware', {})",
        d.now_ms() - 60_000
    ));
}

// ---- webhooks in, one POST out ----------------------------------------------

async fn an_aloware_call_reaches_kendo_once_however_often_it_is_delivered<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    deliver_aloware_call(&mut d, 940_868_616).await;
    assert_eq!(d.kendo_accepted().len(), 1, "{}", D::NAME);
    // The same deliveries again (a replayed webhook), and Aloware's
    // `Call-Disposed` repeating the finished call in a new delivery.
    deliver_aloware_call(&mut d, 940_868_616).await;
    let sequence =
        captured_completed_call(&aloware_call(940_868_616), RECORDING, "summary", "Rep: hi");
    let answer = d.deliver(Webhook::aloware(&sequence[3].payload)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}: one call in Kendo", D::NAME);
    assert_eq!(accepted[0].source_call_id().as_deref(), Some("940868616"));
    assert_eq!(accepted[0].field("audioUrl"), Some(RECORDING));
    assert!(d.sims().kendo.duplicates().is_empty(), "{}", D::NAME);
    assert_eq!(
        d.query(
            "SELECT state, kendo_call_id IS NOT NULL FROM ledger WHERE source_id = '940868616'"
        ),
        vec![vec!["sent".to_string(), "1".to_string()]],
        "{}",
        D::NAME
    );
}

async fn an_aloware_delivery_with_the_wrong_secret_is_refused_and_nothing_is_stored<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    let sequence = captured_completed_call(&aloware_call(7), RECORDING, "s", "t");
    let answer = d
        .deliver(Webhook::aloware_with(
            &sequence[2].payload,
            "not-the-secret",
        ))
        .await;
    assert_eq!(answer.status, 401, "{}: {}", D::NAME, answer.body);
    nothing_stored(&d);
}

async fn a_salesloft_delivery_with_a_forged_signature_is_refused_and_nothing_is_stored<
    D: Driver,
>() {
    let mut d = D::start(salesloft_setup(SalesloftSetup::default())).await;
    salesloft_with_a_call(&d);
    let forged = salesloft_webhook(&d, 62_000).with_header("x-salesloft-signature", "00ff");
    let answer = d.deliver(forged).await;
    assert_eq!(answer.status, 401, "{}: {}", D::NAME, answer.body);
    nothing_stored(&d);
    let genuine = d.deliver(salesloft_webhook(&d, 62_000)).await;
    assert_eq!(genuine.status, 200, "{}: {}", D::NAME, genuine.body);
}

async fn a_hubspot_delivery_with_a_forged_signature_is_refused_and_nothing_is_stored<D: Driver>() {
    let mut d = D::start(hubspot_setup()).await;
    let call_id = d.sims().hubspot.add_sams_recorded_call();
    let genuine = Webhook::hubspot(json!([call_created(1, call_id)]).to_string());
    let forged = genuine.clone().with_header("x-hubspot-signature", "00");
    let answer = d.deliver(forged).await;
    assert_eq!(answer.status, 401, "{}: {}", D::NAME, answer.body);
    nothing_stored(&d);
    let answer = d.deliver(genuine).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
}

async fn a_kendo_result_with_a_forged_signature_is_refused_and_nothing_is_stored<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    deliver_aloware_call(&mut d, 55).await;
    let accepted = d.kendo_accepted();
    let event = d.sims().kendo.call_uploaded_event(&accepted[0], 87);
    let forged = Webhook::kendo(&event).with_header("x-kendo-signature", "00");
    let answer = d.deliver(forged).await;
    assert_eq!(answer.status, 401, "{}: {}", D::NAME, answer.body);
    let tampered = Webhook {
        body: event.body().replace("87", "99").into_bytes(),
        ..Webhook::kendo(&event)
    };
    let answer = d.deliver(tampered).await;
    assert_eq!(answer.status, 401, "{}: {}", D::NAME, answer.body);
    assert_eq!(
        d.count("SELECT COUNT(*) FROM inbox WHERE source = 'kendo'"),
        0,
        "{}",
        D::NAME
    );
    assert_eq!(
        d.count("SELECT COUNT(*) FROM kendo_results"),
        0,
        "{}",
        D::NAME
    );
    let genuine = d.deliver(Webhook::kendo(&event)).await;
    assert_eq!(genuine.status, 200, "{}: {}", D::NAME, genuine.body);
}

async fn a_body_over_the_limit_is_answered_413_and_nothing_is_stored<D: Driver>() {
    let mut d = D::start(Setup {
        max_body_bytes: Some(1_000),
        ..Setup::default()
    })
    .await;
    let bearer = format!("Bearer {}", kendo_bridge_conformance::ALOWARE_SECRET);
    let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(2_000));
    let answer = d
        .post_raw(
            Sender::Aloware,
            vec![
                ("authorization".into(), bearer),
                ("content-type".into(), "application/json".into()),
            ],
            body.into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 413, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    nothing_stored(&d);
}

// ---- what the plugin decides becomes the same row (R1) -----------------------

async fn a_skip_decision_is_the_same_skipped_row_with_the_plugins_reason<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    for step in captured_failed_dial(&aloware_call(77)) {
        let answer = d.deliver(Webhook::aloware(&step.payload)).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
    d.tick().await;
    assert_eq!(
        d.row("77"),
        Some(("skipped".to_string(), "not-completed".to_string())),
        "{}",
        D::NAME
    );
    // The plugin's own explanation, in words, on both.
    assert_eq!(
        d.query("SELECT reason FROM ledger WHERE source_id = '77'"),
        vec![vec![
            "Aloware call 77 did not complete (status \"failed\"), so there is no conversation to analyse."
                .to_string()
        ]],
        "{}",
        D::NAME
    );
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

async fn a_call_below_the_minimum_duration_is_skipped_with_the_same_reason<D: Driver>() {
    let mut d = D::start(Setup {
        min_duration_seconds: 120,
        ..salesloft_setup(SalesloftSetup::default())
    })
    .await;
    salesloft_with_a_call(&d);
    let answer = d.deliver(salesloft_webhook(&d, 62_000)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    assert_eq!(
        d.row("62000"),
        Some(("skipped".to_string(), "below-minimum-duration".to_string())),
        "{}",
        D::NAME
    );
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

async fn an_unreadable_aloware_delivery_is_kept_and_becomes_a_failed_row<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    let bearer = format!("Bearer {}", kendo_bridge_conformance::ALOWARE_SECRET);
    let answer = d
        .deliver(Webhook {
            sender: Sender::Aloware,
            headers: vec![("authorization".into(), bearer)],
            body: b"{not json".to_vec(),
        })
        .await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    assert_eq!(
        d.query("SELECT source, error IS NOT NULL FROM inbox"),
        vec![vec!["aloware".to_string(), "1".into()]],
        "{}: kept in the inbox with its reason",
        D::NAME
    );
    let ledger = d.ledger();
    assert_eq!(ledger.len(), 1, "{}: {ledger:?}", D::NAME);
    assert!(
        ledger[0].source_id.starts_with("unreadable:"),
        "{}: {ledger:?}",
        D::NAME
    );
    assert_eq!(
        (ledger[0].state.as_str(), ledger[0].reason_code.as_deref()),
        ("failed", Some("unreadable")),
        "{}",
        D::NAME
    );
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

/// R1 in words: a call the plugin cannot read is failed with the plugin's
/// explanation of what it could not read (the host's `explain()`), not a
/// Rust `Debug` dump.
async fn a_call_the_plugin_cannot_read_is_failed_with_the_plugins_explanation<D: Driver>() {
    let mut d = D::start(hubspot_setup()).await;
    let bad = d
        .sims()
        .hubspot
        .create_call(&[("hs_call_title", "Poisoned")]);
    d.sims().hubspot.poison_search_result(
        bad,
        json!({"id": bad.to_string(), "properties": "not an object"}),
    );
    let body = json!([call_created(1, bad)]).to_string();
    let answer = d.deliver(Webhook::hubspot(body)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    assert_eq!(
        d.query(&format!(
            "SELECT state, reason_code, reason FROM ledger WHERE source_id = '{bad}'"
        )),
        vec![vec![
            "failed".to_string(),
            "unreadable".into(),
            "the field `properties` has the wrong type: expected an object, found a string".into()
        ]],
        "{}",
        D::NAME
    );
}

// ---- each source's webhook ---------------------------------------------------

async fn a_salesloft_webhook_call_reaches_kendo_once<D: Driver>() {
    let mut d = D::start(salesloft_setup(SalesloftSetup::default())).await;
    salesloft_with_a_call(&d);
    for _ in 0..2 {
        let answer = d.deliver(salesloft_webhook(&d, 62_000)).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
    d.advance(SPACING);
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}", D::NAME);
    assert_eq!(accepted[0].source(), Some("salesloft"));
    assert_eq!(accepted[0].field("repEmail"), Some("sam@yourco.com"));
    assert_eq!(
        d.row("62000"),
        Some(("sent".to_string(), String::new())),
        "{}",
        D::NAME
    );
}

async fn a_hubspot_webhook_names_a_call_that_is_read_and_sent_once<D: Driver>() {
    let mut d = D::start(Setup {
        hubspot: Some(HubspotSetup {
            transcripts: true,
            ..HubspotSetup::default()
        }),
        ..Setup::default()
    })
    .await;
    let call_id = d.sims().hubspot.add_sams_recorded_call();
    d.sims()
        .hubspot
        .transcribe(
            call_id,
            vec![kendo_bridge_sim::hubspot::Utterance {
                speaker_name: "Sam Rivera".into(),
                speaker_email: Some("sam@yourco.com".into()),
                text: "Thanks for taking the call.".into(),
                start_ms: 0,
                end_ms: 2_000,
            }],
        )
        .expect("the call is transcribed");
    let event = json!([call_created(1, call_id)]).to_string();
    for _ in 0..2 {
        let answer = d.deliver(Webhook::hubspot(event.clone())).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}", D::NAME);
    assert_eq!(accepted[0].source(), Some("hubspot"));
    assert_eq!(accepted[0].field("repEmail"), Some("sam@yourco.com"));
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("Thanks for taking the call.")),
        "{}: {:?}",
        D::NAME,
        accepted[0].field("transcript")
    );
    assert_eq!(
        d.query(&format!(
            "SELECT sync_method FROM ledger WHERE source_id = '{call_id}'"
        )),
        vec![vec!["webhook".to_string()]],
        "{}",
        D::NAME
    );
}

async fn a_hubspot_workflow_delivery_is_recorded_as_having_come_by_workflow<D: Driver>() {
    let mut d = D::start(hubspot_setup()).await;
    let call_id = d.sims().hubspot.add_sams_recorded_call();
    let body =
        json!({ "hs_object_id": call_id.to_string(), "hs_call_title": "Discovery" }).to_string();
    let answer = d.deliver(Webhook::hubspot(body.clone())).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    assert_eq!(d.kendo_accepted().len(), 1, "{}", D::NAME);
    assert_eq!(
        d.query("SELECT event, delivery_id FROM inbox WHERE source = 'hubspot'"),
        vec![vec![
            "workflow".to_string(),
            kendo_bridge_core::ledger::inbox::delivery_id(None, Some("workflow"), body.as_bytes())
        ]],
        "{}: the same delivery has the same id on either driver",
        D::NAME
    );
    assert_eq!(
        d.query(&format!(
            "SELECT sync_method FROM ledger WHERE source_id = '{call_id}'"
        )),
        vec![vec!["workflow".to_string()]],
        "{}",
        D::NAME
    );
}

/// A HubSpot workflow delivery about a contact, not a call: answered,
/// kept without an error, never read as a call and nothing sent.
async fn a_hubspot_delivery_about_a_contact_is_kept_and_sends_nothing<D: Driver>() {
    let mut d = D::start(hubspot_setup()).await;
    let body = json!({"hs_object_id": "501", "email": "alex@acme.example"}).to_string();
    let answer = d.deliver(Webhook::hubspot(body)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    assert_eq!(
        d.query("SELECT processed_at IS NOT NULL, error FROM inbox WHERE source = 'hubspot'"),
        vec![vec!["1".to_string(), "NULL".into()]],
        "{}: processed, the contact's event ignored without an error",
        D::NAME
    );
    assert_eq!(d.ledger(), vec![], "{}", D::NAME);
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

/// R10: one call HubSpot returns in a form the plugin cannot read costs
/// that call (a failed row with the reason), the others in the same
/// delivery go.
async fn an_unreadable_call_in_a_hubspot_batch_is_a_failed_row_and_the_others_go<D: Driver>() {
    let mut d = D::start(hubspot_setup()).await;
    let good = d.sims().hubspot.add_sams_recorded_call();
    let bad = d
        .sims()
        .hubspot
        .create_call(&[("hs_call_title", "Poisoned")]);
    d.sims().hubspot.poison_search_result(
        bad,
        json!({"id": bad.to_string(), "properties": "not an object"}),
    );
    let body = json!([call_created(1, bad), call_created(2, good)]).to_string();
    let answer = d.deliver(Webhook::hubspot(body)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}: the readable call is sent", D::NAME);
    assert_eq!(accepted[0].source_call_id(), Some(good.to_string()));
    assert_eq!(
        d.query(&format!(
            "SELECT state, reason_code, sync_method FROM ledger WHERE source_id = '{bad}'"
        )),
        vec![vec![
            "failed".to_string(),
            "unreadable".into(),
            "webhook".into()
        ]],
        "{}",
        D::NAME
    );
}

// ---- what a failed delivery costs (R6) ---------------------------------------

/// HubSpot refusing the token (401): a setting a person must fix. The
/// delivery is kept, tried again at the longest back-off, and the problem
/// shows.
async fn a_delivery_refused_by_the_source_for_a_setting_is_kept_for_a_person<D: Driver>() {
    let mut d = D::start(Setup {
        hubspot: Some(HubspotSetup {
            token: "pat-not-a-valid-token".into(),
            ..HubspotSetup::default()
        }),
        ..Setup::default()
    })
    .await;
    let call_id = d.sims().hubspot.add_sams_recorded_call();
    let answer = d
        .deliver(Webhook::hubspot(
            json!([call_created(9, call_id)]).to_string(),
        ))
        .await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    let kept = "SELECT attempts FROM inbox WHERE source = 'hubspot' AND processed_at IS NULL";
    assert_eq!(d.query(kept), vec![vec!["1".to_string()]], "{}", D::NAME);
    let last_error = d.query("SELECT last_error FROM inbox WHERE source = 'hubspot'");
    assert!(
        last_error[0][0].contains("401"),
        "{}: {last_error:?}",
        D::NAME
    );
    // Not tried again before its back-off.
    d.advance(Duration::from_secs(60));
    d.tick().await;
    assert_eq!(d.query(kept), vec![vec!["1".to_string()]], "{}", D::NAME);
    let status = d.status().await;
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.starts_with("hubspot webhook") && p.contains("401")),
        "{}: {:?}",
        D::NAME,
        status.problems
    );
    // At the longest back-off (five minutes) it is tried again, still kept.
    d.advance(Duration::from_secs(250));
    d.tick().await;
    assert_eq!(d.query(kept), vec![vec!["2".to_string()]], "{}", D::NAME);
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

/// Salesloft answering 503 while a delivery is processed: passing. It
/// costs nothing but time (the host rides a brief outage out within the
/// processing, Spin at the delivery's own next attempt): nobody is asked to
/// act, nothing is closed, and the call goes once the source answers.
async fn a_delivery_the_source_fails_briefly_is_retried_and_goes<D: Driver>() {
    let mut d = D::start(salesloft_setup(SalesloftSetup::default())).await;
    salesloft_with_a_call(&d);
    d.sims().salesloft.fail_path_next("/v2/users", 503, 1);
    let answer = d.deliver(salesloft_webhook(&d, 62_000)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    let status = d.status().await;
    assert!(
        !status
            .problems
            .iter()
            .any(|p| p.starts_with("salesloft webhook")),
        "{}: a passing failure needs nobody: {:?}",
        D::NAME,
        status.problems
    );
    later(&mut d).await;
    assert_eq!(d.kendo_accepted().len(), 1, "{}", D::NAME);
    assert_eq!(
        d.query("SELECT processed_at IS NOT NULL, error FROM inbox"),
        vec![vec!["1".to_string(), "NULL".into()]],
        "{}: processed, not closed with an error",
        D::NAME
    );
}

/// Salesloft answering 400: no later attempt fixes it. The delivery is
/// closed with its reason, which shows as a problem.
async fn a_delivery_the_source_rejects_for_good_is_closed_with_its_reason<D: Driver>() {
    let mut d = D::start(salesloft_setup(SalesloftSetup::default())).await;
    salesloft_with_a_call(&d);
    d.sims().salesloft.fail_path("/v2/users", 400);
    let answer = d.deliver(salesloft_webhook(&d, 62_000)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    let closed = d.query("SELECT processed_at IS NOT NULL, error FROM inbox");
    assert_eq!(closed.len(), 1, "{}: {closed:?}", D::NAME);
    assert_eq!(closed[0][0], "1", "{}: closed: {closed:?}", D::NAME);
    assert!(closed[0][1].contains("400"), "{}: {closed:?}", D::NAME);
    let status = d.status().await;
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.starts_with("salesloft webhook") && p.contains("400")),
        "{}: {:?}",
        D::NAME,
        status.problems
    );
    later(&mut d).await;
    assert_eq!(d.kendo_requests(), 0, "{}", D::NAME);
}

// ---- Kendo's answers -----------------------------------------------------------

async fn a_kendo_5xx_waits_for_its_back_off_then_goes<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.fail_next(1, 503);
    deliver_aloware_call(&mut d, 12).await;
    assert_eq!(d.kendo_requests(), 1, "{}", D::NAME);
    assert_eq!(
        d.query("SELECT state, attempts FROM ledger WHERE source_id = '12'"),
        vec![vec!["queued".to_string(), "1".into()]],
        "{}",
        D::NAME
    );
    // The first back-off is at most 2 s (full jitter); then the key's
    // spacing.
    d.advance(SPACING);
    d.tick().await;
    assert_eq!(d.kendo_accepted().len(), 1, "{}", D::NAME);
    assert_eq!(d.kendo_requests(), 2, "{}", D::NAME);
    assert_eq!(d.row("12").map(|r| r.0), Some("sent".into()), "{}", D::NAME);
}

async fn a_kendo_429_holds_the_key_until_retry_after_then_goes<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.fail_next(1, 429);
    deliver_aloware_call(&mut d, 13).await;
    assert_eq!(
        d.row("13"),
        Some(("queued".to_string(), "rate-limited".to_string())),
        "{}",
        D::NAME
    );
    assert_eq!(
        d.query("SELECT value FROM counters WHERE name = 'kendo_429'"),
        vec![vec!["1".to_string()]],
        "{}",
        D::NAME
    );
    // Another call of the key, due now, waits for the block too.
    deliver_aloware_call(&mut d, 15).await;
    d.advance(SPACING);
    d.tick().await;
    assert_eq!(
        d.kendo_requests(),
        1,
        "{}: no request before Retry-After (a whole window)",
        D::NAME
    );
    d.advance(Duration::from_secs(60));
    d.tick().await;
    d.advance(SPACING);
    d.tick().await;
    assert_eq!(d.kendo_accepted().len(), 2, "{}", D::NAME);
    assert_eq!(d.sims().kendo.stats().rate_limited_429, 1, "{}", D::NAME);
}

async fn a_lost_answer_is_flagged_and_the_call_re_sent_once<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.drop_after_create_next(1);
    deliver_aloware_call(&mut d, 14).await;
    assert_eq!(
        d.query("SELECT state, reason_code, maybe_duplicated FROM ledger WHERE source_id = '14'"),
        vec![vec!["queued".to_string(), "answer-lost".into(), "1".into()]],
        "{}",
        D::NAME
    );
    later(&mut d).await;
    later(&mut d).await;
    assert_eq!(
        d.kendo_accepted().len(),
        2,
        "{}: created twice: the lost one and the re-send, no more",
        D::NAME
    );
    assert_eq!(
        d.query("SELECT state, maybe_duplicated FROM ledger WHERE source_id = '14'"),
        vec![vec!["sent".to_string(), "1".into()]],
        "{}",
        D::NAME
    );
    assert_eq!(
        d.query("SELECT value FROM counters WHERE name = 'resent_after_lost_answer'"),
        vec![vec!["1".to_string()]],
        "{}",
        D::NAME
    );
}

async fn a_kendo_answer_slower_than_the_timeout_is_a_lost_answer<D: Driver>() {
    let mut d = D::start(Setup {
        kendo_timeout: Duration::from_secs(1),
        ..Setup::default()
    })
    .await;
    d.sims().kendo.delay_next(1, Duration::from_secs(4));
    deliver_aloware_call(&mut d, 14).await;
    assert_eq!(
        d.row("14"),
        Some(("queued".to_string(), "answer-lost".to_string())),
        "{}",
        D::NAME
    );
    assert_eq!(
        d.query("SELECT ambiguous FROM outbox WHERE source_id = '14'"),
        vec![vec!["1".to_string()]],
        "{}: one lost answer",
        D::NAME
    );
}

async fn a_call_kendo_keeps_failing_is_dead_after_its_attempts<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.fail_next(8, 503);
    deliver_aloware_call(&mut d, 16).await;
    for _ in 0..10 {
        if d.row("16").is_some_and(|r| r.0 == "dead") {
            break;
        }
        later(&mut d).await;
    }
    assert_eq!(
        d.row("16").map(|r| r.0),
        Some("dead".to_string()),
        "{}",
        D::NAME
    );
    assert_eq!(d.kendo_requests(), 8, "{}: eight attempts", D::NAME);
    later(&mut d).await;
    assert_eq!(d.kendo_requests(), 8, "{}: and no more", D::NAME);
    assert!(d.kendo_accepted().is_empty(), "{}", D::NAME);
}

async fn a_kendo_rejection_fails_the_call_for_good_without_a_retry<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.fail_next(1, 422);
    deliver_aloware_call(&mut d, 17).await;
    assert_eq!(
        d.row("17").map(|r| r.0),
        Some("failed".to_string()),
        "{}",
        D::NAME
    );
    later(&mut d).await;
    assert_eq!(d.kendo_requests(), 1, "{}: never sent again", D::NAME);
}

/// R2: Kendo answers 2xx with a body the plugin cannot read. The call may
/// well be in Kendo: it counts as sent and is never posted again.
async fn a_2xx_from_kendo_the_plugin_cannot_read_counts_as_sent<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.fail_next(1, 200);
    deliver_aloware_call(&mut d, 18).await;
    later(&mut d).await;
    later(&mut d).await;
    assert_eq!(d.kendo_requests(), 1, "{}: no second POST", D::NAME);
    assert_eq!(
        d.row("18").map(|r| r.0),
        Some("sent".to_string()),
        "{}",
        D::NAME
    );
}

/// Kendo's 30 requests a minute per key, kept by even spacing: calls
/// arriving at once go one a slot (60 s / 30, +1%), at most thirty in the
/// minute, none draws a 429, and the rest wait queued.
async fn calls_arriving_at_once_go_one_a_slot_at_most_thirty_a_minute<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    let start = d.now_ms();
    for n in 0..32u64 {
        deliver_aloware_call(&mut d, 1_000 + n).await;
    }
    d.tick().await;
    // A minute of slots (the bridge's clock also runs with real time).
    while d.now_ms() - start + (SPACING.as_millis() as i64) < 60_000 {
        let before = d.kendo_accepted().len();
        d.advance(SPACING);
        d.tick().await;
        assert!(
            d.kendo_accepted().len() > before,
            "{}: each slot is used",
            D::NAME
        );
    }
    let elapsed = d.now_ms() - start;
    let sent = d.kendo_accepted().len();
    assert!(sent <= 30, "{}: {sent} in a minute", D::NAME);
    assert!(
        sent as i64 <= elapsed / 2_020 + 1,
        "{}: {sent} sends in {elapsed} ms: more than one a slot",
        D::NAME
    );
    assert_eq!(d.sims().kendo.stats().rate_limited_429, 0, "{}", D::NAME);
    assert!(
        d.sims()
            .kendo
            .max_requests_in_any_window(kendo_bridge_sim::DEMO_KENDO_KEY)
            <= 30,
        "{}",
        D::NAME
    );
    let status = d.status().await;
    assert_eq!(
        status.states.get("sent").copied().unwrap_or(0)
            + status.states.get("queued").copied().unwrap_or(0),
        32,
        "{}: every call is sent or queued: {:?}",
        D::NAME,
        status.states
    );
    assert!(d.sims().kendo.duplicates().is_empty(), "{}", D::NAME);
}

// ---- Kendo's results and HubSpot write-backs -----------------------------------

async fn kendos_score_of_a_sent_call_is_kept_once_and_matched_by_its_call_id<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    deliver_aloware_call(&mut d, 55).await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}", D::NAME);
    let event = d.sims().kendo.call_uploaded_event(&accepted[0], 87);
    for _ in 0..2 {
        let answer = d.deliver(Webhook::kendo(&event)).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
    d.tick().await;
    assert_eq!(
        d.query(
            "SELECT r.ai_score FROM kendo_results r JOIN ledger l ON l.kendo_call_id = r.subject_id
              WHERE l.source_id = '55'"
        ),
        vec![vec!["87".to_string()]],
        "{}: one result, the call's",
        D::NAME
    );
}

/// Kendo's result for a callId the bridge never sent (another integration
/// of the team): kept once, matched to no call, nothing changed.
async fn a_kendo_result_for_a_call_never_sent_is_kept_unmatched<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    let event = kendo_bridge_sim::kendo::KendoEvent::new(
        "call.uploaded",
        "2026-12-07T07:00:00Z".into(),
        json!({"callId": "call_from_elsewhere", "aiScore": "64", "duration": 61.0}),
    );
    for _ in 0..2 {
        let answer = d.deliver(Webhook::kendo(&event)).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
    d.tick().await;
    assert_eq!(
        d.query("SELECT subject_id, ai_score FROM kendo_results"),
        vec![vec!["call_from_elsewhere".to_string(), "64".into()]],
        "{}: kept once",
        D::NAME
    );
    assert_eq!(
        d.query("SELECT processed_at IS NOT NULL, error FROM inbox WHERE source = 'kendo'"),
        vec![vec!["1".to_string(), "NULL".into()]],
        "{}",
        D::NAME
    );
    assert_eq!(d.ledger(), vec![], "{}", D::NAME);
}

async fn a_scored_hubspot_call_gets_kendo_sent_its_call_id_and_its_score_written_back<D: Driver>() {
    let mut d = D::start(write_back_setup()).await;
    let call_id = hubspot_call_sent(&mut d).await;
    let accepted = d.kendo_accepted();
    let event = d.sims().kendo.call_uploaded_event(&accepted[0], 87);
    let answer = d.deliver(Webhook::kendo(&event)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.tick().await;
    assert_eq!(
        d.hubspot_property(call_id, "kendo_sent").as_deref(),
        Some("true"),
        "{}",
        D::NAME
    );
    assert_eq!(
        d.hubspot_property(call_id, "kendo_call_id"),
        Some(accepted[0].call_id.clone()),
        "{}",
        D::NAME
    );
    assert_eq!(
        d.hubspot_property(call_id, "kendo_ai_score").as_deref(),
        Some("87"),
        "{}",
        D::NAME
    );
    assert!(
        d.hubspot_property(call_id, "kendo_scored_at").is_some(),
        "{}",
        D::NAME
    );
    let written = d.hubspot_writes();
    assert!(!written.is_empty(), "{}", D::NAME);
    d.advance(SPACING);
    d.tick().await;
    assert_eq!(
        d.hubspot_writes(),
        written,
        "{}: nothing written twice",
        D::NAME
    );
}

async fn a_write_back_refused_for_a_scope_waits_and_names_the_scope<D: Driver>() {
    let mut d = D::start(write_back_setup()).await;
    hubspot_call_sent(&mut d).await;
    d.sims().hubspot.refuse_call_writes(true);
    d.tick().await;
    assert_eq!(
        d.query("SELECT state, attempts FROM write_backs"),
        vec![vec!["pending".to_string(), "0".into()]],
        "{}: held, no attempt spent",
        D::NAME
    );
    let status = d.status().await;
    assert!(
        status.problems.iter().any(
            |p| p.starts_with("hubspot write-back") && p.contains("crm.objects.contacts.write")
        ),
        "{}: {:?}",
        D::NAME,
        status.problems
    );
}

// ---- operator transitions ------------------------------------------------------

/// R16: `settle --sent` after an unknown outcome makes the call sent as a
/// 201 would have, HubSpot write-back included.
async fn settle_sent_after_an_unknown_outcome_queues_the_hubspot_write_back<D: Driver>() {
    let mut d = D::start(write_back_setup()).await;
    let call_id = d.sims().hubspot.add_sams_recorded_call();
    // The answer is lost, and lost again on the one re-send: parked.
    d.sims().kendo.drop_after_create_next(2);
    let answer = d
        .deliver(Webhook::hubspot(
            json!([call_created(1, call_id)]).to_string(),
        ))
        .await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    later(&mut d).await;
    let id = call_id.to_string();
    assert_eq!(
        d.row(&id).map(|r| r.0),
        Some("outcome-unknown".to_string()),
        "{}",
        D::NAME
    );
    assert_eq!(d.hubspot_property(call_id, "kendo_sent"), None);
    let kendo_call_id = d.kendo_accepted()[0].call_id.clone();
    d.operate(Operator::SettleSent {
        source_id: id.clone(),
        kendo_call_id: Some(kendo_call_id.clone()),
    })
    .await;
    assert_eq!(d.row(&id).map(|r| r.0), Some("sent".into()), "{}", D::NAME);
    d.tick().await;
    assert_eq!(
        d.hubspot_property(call_id, "kendo_sent").as_deref(),
        Some("true"),
        "{}: the write-back a 201 would have queued",
        D::NAME
    );
    assert_eq!(
        d.hubspot_property(call_id, "kendo_call_id"),
        Some(kendo_call_id),
        "{}",
        D::NAME
    );
    assert_eq!(d.kendo_requests(), 2, "{}: nothing re-sent", D::NAME);
}

async fn replay_puts_a_dead_call_back_in_the_queue_and_it_goes_once<D: Driver>() {
    let mut d = D::start(Setup::default()).await;
    d.sims().kendo.fail_next(8, 503);
    deliver_aloware_call(&mut d, 19).await;
    for _ in 0..10 {
        if d.row("19").is_some_and(|r| r.0 == "dead") {
            break;
        }
        later(&mut d).await;
    }
    assert_eq!(d.row("19").map(|r| r.0), Some("dead".into()), "{}", D::NAME);
    d.operate(Operator::Replay {
        source_id: "19".into(),
        include_failed: false,
    })
    .await;
    assert_eq!(
        d.row("19"),
        Some(("queued".to_string(), "replayed".to_string())),
        "{}",
        D::NAME
    );
    later(&mut d).await;
    later(&mut d).await;
    assert_eq!(d.kendo_accepted().len(), 1, "{}", D::NAME);
    assert_eq!(d.row("19").map(|r| r.0), Some("sent".into()), "{}", D::NAME);
}

// ---- status --------------------------------------------------------------------

/// R17: the status counts every state the core knows, those with no call
/// included, and each call in its state.
async fn status_counts_every_state<D: Driver>() {
    let mut d = D::start(Setup {
        aloware_transcript_wait: Duration::from_secs(300),
        ..Setup::default()
    })
    .await;
    let status = d.status().await;
    let all: Vec<String> = kendo_bridge_core::ledger::State::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let shown: Vec<String> = status.states.keys().cloned().collect();
    let mut want = all.clone();
    want.sort();
    assert_eq!(shown, want, "{}: every state, even at zero", D::NAME);
    assert!(status.states.values().all(|n| *n == 0), "{}", D::NAME);
    // One sent, one skipped, one failed (Kendo's 422), and one waiting
    // for its transcript.
    deliver_aloware_call(&mut d, 21).await;
    for step in captured_failed_dial(&aloware_call(22)) {
        d.deliver(Webhook::aloware(&step.payload)).await;
    }
    d.sims().kendo.fail_next(1, 422);
    d.advance(SPACING);
    deliver_aloware_call(&mut d, 24).await;
    aloware_transcripts_come(&d);
    deliver_aloware_call(&mut d, 23).await;
    d.tick().await;
    let status = d.status().await;
    let count = |s: &str| status.states.get(s).copied().unwrap_or(-1);
    assert_eq!(
        (
            count("sent"),
            count("skipped"),
            count("waiting"),
            count("failed")
        ),
        (1, 1, 1, 1),
        "{}: {:?}",
        D::NAME,
        status.states
    );
    assert_eq!(status.states.values().sum::<i64>(), 4, "{}", D::NAME);
}

// ---- the runtime refusing a send -----------------------------------------------

/// A request to Kendo the runtime refuses before it leaves (Spin: the
/// manifest's `allowed_outbound_hosts`; host: nothing listening where
/// Kendo should be, a connect error) left nothing in Kendo: the call stays
/// queued, never outcome-unknown, and goes exactly once when allowed.
async fn a_send_the_runtime_refuses_leaves_nothing_and_goes_once_allowed<D: Driver>() {
    let mut d = D::start(Setup {
        kendo_gate: true,
        ..Setup::default()
    })
    .await;
    d.allow_kendo(false);
    deliver_aloware_call(&mut d, 51).await;
    assert_eq!(d.kendo_requests(), 0, "{}: nothing left", D::NAME);
    assert_eq!(
        d.query("SELECT state, maybe_duplicated FROM ledger WHERE source_id = '51'"),
        vec![vec!["queued".to_string(), "0".into()]],
        "{}",
        D::NAME
    );
    d.allow_kendo(true);
    later(&mut d).await;
    later(&mut d).await;
    assert_eq!(d.kendo_accepted().len(), 1, "{}", D::NAME);
    assert!(d.sims().kendo.duplicates().is_empty(), "{}", D::NAME);
    assert_eq!(
        d.query("SELECT state, maybe_duplicated FROM ledger WHERE source_id = '51'"),
        vec![vec!["sent".to_string(), "0".into()]],
        "{}",
        D::NAME
    );
}

// ---- polling -------------------------------------------------------------------

async fn a_tick_polls_hubspot_and_sends_each_call_once<D: Driver>() {
    use kendo_bridge_sim::hubspot::HubspotOwner;
    let mut d = D::start(Setup {
        hubspot: Some(HubspotSetup {
            poll: true,
            ..HubspotSetup::default()
        }),
        hubspot_search_now: true,
        ..Setup::default()
    })
    .await;
    d.sims().hubspot.add_owner(HubspotOwner {
        id: 78,
        email: "robin@yourco.com".into(),
        first_name: "Robin".into(),
        last_name: "Lee".into(),
        user_id: 7_800,
        archived: false,
    });
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a timestamp");
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(d.sims().hubspot.create_call(&[
            ("hs_timestamp", now.as_str()),
            ("hs_call_title", &format!("Polled {n}")),
            ("hs_call_status", "COMPLETED"),
            ("hs_call_direction", "OUTBOUND"),
            ("hs_call_duration", "63000"),
            ("hubspot_owner_id", "78"),
            (
                "hs_call_recording_url",
                "https://recordings.example/polled.mp3",
            ),
        ]));
    }
    d.sims()
        .hubspot
        .associate(ids[0], &[51, 52], &[123_456])
        .expect("the call exists");
    d.tick().await;
    for _ in 0..3 {
        d.advance(SPACING);
        d.tick().await;
    }
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 3, "{}: each polled call once", D::NAME);
    assert!(d.sims().kendo.duplicates().is_empty(), "{}", D::NAME);
    let associated = accepted
        .iter()
        .find(|c| c.source_call_id() == Some(ids[0].to_string()))
        .expect("the associated call was sent");
    assert_eq!(
        associated.body.pointer("/metadata/hubspotContactIds"),
        Some(&json!("51,52")),
        "{}",
        D::NAME
    );
    assert_eq!(
        d.count("SELECT COUNT(*) FROM ledger WHERE sync_method = 'polling' AND state = 'sent'"),
        3,
        "{}",
        D::NAME
    );
}

async fn a_tick_polls_salesloft_and_sends_each_call_once<D: Driver>() {
    use kendo_bridge_sim::salesloft::CallDataRecord;
    let mut d = D::start(salesloft_setup(SalesloftSetup {
        poll: true,
        ..SalesloftSetup::default()
    }))
    .await;
    let sims = d.sims().clone();
    sims.salesloft
        .add_user(salesloft_user(3_101, ("Robin", "Lee"), "robin@yourco.com"));
    let now = time::OffsetDateTime::now_utc();
    for n in 0..3u64 {
        let updated_ago = time::Duration::minutes(5) - time::Duration::seconds(n as i64);
        sims.salesloft
            .add_call(salesloft_call(61_000 + n, 3_101, now, updated_ago));
        sims.salesloft.add_call_data_record(CallDataRecord {
            id: 71_000 + n,
            call_id: 61_000 + n,
            direction: if n == 1 { "inbound" } else { "outbound" }.into(),
            from: "+14155550100".into(),
            to: "+12025550142".into(),
            status: "completed".into(),
            duration: Some(95),
            user_id: Some(3_101),
            called_person_id: None,
            recording: None,
            created_at: now - time::Duration::minutes(10),
            updated_at: now - time::Duration::minutes(6),
        });
    }
    d.tick().await;
    for _ in 0..3 {
        d.advance(SPACING);
        d.tick().await;
    }
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 3, "{}: each polled call once", D::NAME);
    assert!(d.sims().kendo.duplicates().is_empty(), "{}", D::NAME);
    let mut directions: Vec<(String, String)> = accepted
        .iter()
        .map(|c| {
            (
                c.source_call_id().unwrap_or_default(),
                c.body["metadata"]["salesloftDirection"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    directions.sort();
    assert_eq!(
        directions,
        vec![
            ("61000".to_string(), "outbound".to_string()),
            ("61001".into(), "inbound".into()),
            ("61002".into(), "outbound".into()),
        ],
        "{}",
        D::NAME
    );
    assert!(
        accepted
            .iter()
            .all(|c| c.field("repEmail") == Some("robin@yourco.com")),
        "{}",
        D::NAME
    );
}

async fn a_salesloft_call_without_its_record_waits_then_goes_without_a_direction<D: Driver>() {
    let mut d = D::start(salesloft_setup(SalesloftSetup {
        poll: true,
        direction_wait: Duration::from_secs(300),
        ..SalesloftSetup::default()
    }))
    .await;
    salesloft_with_a_call(&d);
    d.tick().await;
    assert!(d.kendo_accepted().is_empty(), "{}: it waits", D::NAME);
    assert_eq!(
        d.row("62000"),
        Some((
            "waiting".to_string(),
            "call-data-record-pending".to_string()
        )),
        "{}",
        D::NAME
    );
    d.advance(Duration::from_secs(301));
    d.tick().await;
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}", D::NAME);
    assert!(
        accepted[0].body["metadata"]["salesloftDirection"].is_null(),
        "{}",
        D::NAME
    );
}

async fn a_salesloft_transcript_arriving_during_the_direction_wait_goes_when_the_wait_ends<
    D: Driver,
>() {
    let mut d = D::start(salesloft_setup(SalesloftSetup {
        poll: true,
        transcripts: true,
        direction_wait: Duration::from_secs(300),
    }))
    .await;
    salesloft_with_a_call(&d);
    d.tick().await;
    d.sims()
        .salesloft
        .transcribe(62_000, &[("Sam Rivera", "Thanks for taking the call.")])
        .expect("the call is transcribed");
    d.advance(Duration::from_secs(60));
    d.tick().await;
    assert!(d.kendo_accepted().is_empty(), "{}: it still waits", D::NAME);
    assert_eq!(
        d.row("62000"),
        Some((
            "waiting".to_string(),
            "call-data-record-pending".to_string()
        )),
        "{}",
        D::NAME
    );
    d.advance(Duration::from_secs(301));
    d.tick().await;
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(
        accepted.len(),
        1,
        "{}: released when the wait ends",
        D::NAME
    );
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("Thanks for taking the call.")),
        "{}: {:?}",
        D::NAME,
        accepted[0].field("transcript")
    );
    assert!(
        accepted[0].body["metadata"]["salesloftDirection"].is_null(),
        "{}",
        D::NAME
    );
}

async fn an_aloware_call_waits_for_its_transcript_then_goes_with_its_recording<D: Driver>() {
    let mut d = D::start(Setup {
        aloware_transcript_wait: Duration::from_secs(300),
        ..Setup::default()
    })
    .await;
    aloware_transcripts_come(&d);
    deliver_aloware_call(&mut d, 88).await;
    d.tick().await;
    assert!(d.kendo_accepted().is_empty(), "{}: not before", D::NAME);
    d.advance(Duration::from_secs(301));
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}", D::NAME);
    assert_eq!(accepted[0].field("audioUrl"), Some(RECORDING));
    assert_eq!(accepted[0].field("transcript"), None);
    later(&mut d).await;
    assert_eq!(d.kendo_requests(), 1, "{}: once", D::NAME);
}

async fn an_aloware_transcript_within_the_wait_goes_with_the_call<D: Driver>() {
    let mut d = D::start(Setup {
        aloware_transcript_wait: Duration::from_secs(300),
        ..Setup::default()
    })
    .await;
    aloware_transcripts_come(&d);
    let sequence =
        captured_completed_call(&aloware_call(89), RECORDING, "summary", "Rep: hello there");
    for step in &sequence {
        let answer = d.deliver(Webhook::aloware(&step.payload)).await;
        assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    }
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}", D::NAME);
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("hello there")),
        "{}: {:?}",
        D::NAME,
        accepted[0].field("transcript")
    );
}

/// A request to Kendo that never left (refused before it was sent: Spin's
/// allow-list; the host's connect error, `TransportError::Unsent`) spends
/// no attempt of the call's budget, and the status names the problem.
async fn a_send_that_never_left_spends_no_attempt_and_is_a_named_problem<D: Driver>() {
    let mut d = D::start(Setup {
        kendo_gate: true,
        ..Setup::default()
    })
    .await;
    d.allow_kendo(false);
    deliver_aloware_call(&mut d, 52).await;
    assert_eq!(
        d.query("SELECT state, attempts FROM ledger WHERE source_id = '52'"),
        vec![vec!["queued".to_string(), "0".into()]],
        "{}",
        D::NAME
    );
    let status = d.status().await;
    assert!(
        status.problems.iter().any(|p| p.starts_with("kendo")),
        "{}: {:?}",
        D::NAME,
        status.problems
    );
}

/// R1 with a trap: the team's plugin panics on a marked Salesloft call.
/// The trap costs that call alone (a failed row with the reason), never
/// the bridge: the next call goes.
async fn a_plugin_trap_costs_only_its_call_and_the_next_one_goes<D: Driver>() {
    let mut d = D::start(Setup {
        plugin: PluginChoice::Trap,
        ..salesloft_setup(SalesloftSetup::default())
    })
    .await;
    salesloft_with_a_call(&d);
    let now = time::OffsetDateTime::now_utc();
    d.sims().salesloft.add_call(salesloft_call(
        62_001,
        3_102,
        now,
        time::Duration::minutes(5),
    ));
    let mut trapped = d.sims().salesloft.call_json(62_000).expect("the call");
    trapped["note"] = json!("kendo-bridge-test-trap");
    let _ = d
        .try_deliver(Webhook::salesloft("call_updated", trapped.to_string()))
        .await;
    // However often whatever processes it stops, it is let go in the end.
    for _ in 0..4 {
        d.advance(Duration::from_secs(6 * 60));
        let _ = d.try_tick().await;
    }
    let answer = d.deliver(salesloft_webhook(&d, 62_001)).await;
    assert_eq!(answer.status, 200, "{}: {}", D::NAME, answer.body);
    d.advance(SPACING);
    d.tick().await;
    let accepted = d.kendo_accepted();
    assert_eq!(accepted.len(), 1, "{}: the next call goes", D::NAME);
    assert_eq!(accepted[0].source_call_id().as_deref(), Some("62001"));
    assert_eq!(
        d.row("62000").map(|r| r.0),
        Some("failed".to_string()),
        "{}: the trapped call is a failed row",
        D::NAME
    );
}

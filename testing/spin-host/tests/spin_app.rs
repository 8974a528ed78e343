//! The Spin app, built as `spin build` builds it, run in the test host
//! against the simulated Kendo: Aloware webhooks in, calls out, and what
//! Kendo's answers do to them (the core crate's rules, carried out on
//! Spin's key-value store).

use std::collections::HashMap;

use kendo_bridge_sim::aloware::{AlowareCall, captured_completed_call, captured_failed_dial};
use kendo_bridge_sim::{DEMO_KENDO_KEY, SimOptions, Simulators};
use kendo_bridge_spin_host::SpinApp;
use serde_json::{Value, json};

const SECRET: &str = "spin-test-aloware-secret";
/// Kendo's key allows a request every 60 s / 30 (+1%): 2 020 ms, and a
/// little more for the test's own steps.
const SPACING: std::time::Duration = std::time::Duration::from_millis(2_100);
const RECORDING: &str = "https://app.aloware.io/static/recording/spin-test";

async fn started() -> (Simulators, SpinApp) {
    started_with(&[]).await
}

/// The app sending to the simulated Kendo, with these variables besides.
fn loaded(sims: &Simulators, variables: &[(&str, &str)]) -> SpinApp {
    let mut all = HashMap::from([
        ("kendo_api_key".to_string(), DEMO_KENDO_KEY.to_string()),
        ("kendo_url".to_string(), sims.kendo_url()),
        // A tick sends what is due and returns; the paced tick (which
        // waits for the key's next slot) has its own tests.
        ("tick_seconds".to_string(), "0".to_string()),
    ]);
    for (name, value) in variables {
        all.insert(name.to_string(), value.to_string());
    }
    SpinApp::load(&SpinApp::built_component(), &SpinApp::built_plugin(), all).expect(
        "the built Spin component and plugin compose and load (./dev test builds both first)",
    )
}

/// The app with the simulators, the Aloware secret and a rep directory,
/// and `extra` variables.
async fn started_with(extra: &[(&str, &str)]) -> (Simulators, SpinApp) {
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let mut variables = vec![
        ("aloware_secret", SECRET),
        (
            "rep_directory",
            r#"[{"key": "4242", "email": "sam@yourco.com", "name": "Sam Rivera"}]"#,
        ),
        ("min_duration_seconds", "0"),
        // Most tests send a call as soon as its recording is ready; the
        // wait for a transcript has its own test.
        ("aloware_transcript_wait_seconds", "0"),
    ];
    variables.extend_from_slice(extra);
    let app = loaded(&sims, &variables);
    (sims, app)
}

fn call(id: u64) -> AlowareCall {
    AlowareCall::captured(id, 4_242)
}

/// Posts every delivery of the captured sequence of `id` up to the
/// recording (which makes the call ready), as Aloware sends them.
async fn deliver_call(app: &SpinApp, id: u64) -> Vec<(u16, String)> {
    let sequence = captured_completed_call(&call(id), RECORDING, "summary", "Rep: hi");
    let mut answers = Vec::new();
    for step in sequence.iter().take(3) {
        answers.push(post_aloware(app, &step.payload, SECRET).await);
    }
    answers
}

async fn post_aloware(app: &SpinApp, payload: &Value, secret: &str) -> (u16, String) {
    let bearer = format!("Bearer {secret}");
    let answer = app
        .request(
            "POST",
            "/webhooks/aloware",
            &[
                ("content-type", "application/json"),
                ("authorization", bearer.as_str()),
            ],
            payload.to_string(),
        )
        .await
        .expect("the app answers");
    (answer.status, answer.body)
}

async fn tick(app: &SpinApp, query: &str) -> Value {
    let answer = app
        .request("POST", &format!("/tick{query}"), &[], "")
        .await
        .expect("the app answers");
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).expect("drain answers JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aloware_call_reaches_kendo_once_however_often_it_is_delivered() {
    let (sims, app) = started().await;
    let answers = deliver_call(&app, 940_868_616).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(_, body)| body.contains(r#""status":"stored""#)),
        "each delivery is answered once it is stored: {answers:?}"
    );
    assert_eq!(
        sims.kendo.accepted().len(),
        1,
        "the recording makes the call ready and it is sent"
    );
    // The same deliveries again (a replayed webhook) are recognised.
    let again = deliver_call(&app, 940_868_616).await;
    assert!(
        again.iter().all(|(_, body)| body.contains("duplicate")),
        "{again:?}"
    );
    // Aloware's `Call-Disposed` repeats the finished call in a new
    // delivery: the ledger has it already.
    let sequence = captured_completed_call(&call(940_868_616), RECORDING, "summary", "Rep: hi");
    let (status, repeated) = post_aloware(&app, &sequence[3].payload, SECRET).await;
    assert_eq!(status, 200, "{repeated}");
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1, "one call in Kendo");
    assert_eq!(accepted[0].source_call_id().as_deref(), Some("940868616"));
    assert_eq!(accepted[0].field("audioUrl"), Some(RECORDING));
    assert!(sims.kendo.duplicates().is_empty());
    assert_eq!(
        app.query(
            "SELECT state, kendo_call_id IS NOT NULL FROM ledger WHERE source_id = '940868616'"
        )
        .expect("the ledger"),
        vec![vec!["sent".to_string(), "1".to_string()]]
    );
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("the app answers");
    let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(status["calls"]["sent"], 1, "{status}");
    assert_eq!(status["queued"], 0, "{status}");
    assert_eq!(status["paused"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_with_the_wrong_secret_is_refused_and_sends_nothing() {
    let (sims, app) = started().await;
    let sequence = captured_completed_call(&call(7), RECORDING, "s", "t");
    let (status, body) = post_aloware(&app, &sequence[2].payload, "not-the-secret").await;
    assert_eq!(status, 401, "{body}");
    assert!(sims.kendo.requests().is_empty());
    assert!(app.keys().is_empty(), "nothing stored: {:?}", app.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_pauses_sending_until_a_tick_resumes_it() {
    let (sims, app) = started().await;
    sims.kendo.revoke_key(DEMO_KENDO_KEY);
    deliver_call(&app, 11).await;
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '11'")
            .expect("the ledger"),
        vec![vec!["queued".to_string(), "key-refused".to_string()]],
        "a refused key does not fail the call: it keeps its place"
    );
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("the app answers");
    let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(status["queued"], 1, "{status}");
    assert!(
        status["paused"].as_str().is_some_and(|p| p.contains("401")),
        "{status}"
    );
    assert!(
        !status.to_string().contains(DEMO_KENDO_KEY),
        "no key on the status: {status}"
    );

    // Past the key's even spacing (60 s / 30 plus 1%), so only the pause
    // can hold the call back.
    app.advance(SPACING);
    // Paused: a tick sends nothing, even with the key back.
    sims.kendo.restore_key(DEMO_KENDO_KEY);
    let held = tick(&app, "").await;
    assert_eq!(held["sent"], 0, "{held}");
    assert!(held["paused"].is_string(), "{held}");
    assert_eq!(sims.kendo.accepted().len(), 0);
    // The operator resumes after replacing the key.
    assert_eq!(tick(&app, "?resume=1").await["sent"], 1);
    assert_eq!(sims.kendo.accepted().len(), 1);
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    assert!(status.body.contains(r#""paused":null"#), "{}", status.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_5xx_waits_for_its_back_off_then_a_tick_sends_it() {
    let (sims, app) = started().await;
    sims.kendo.fail_next(1, 503);
    deliver_call(&app, 12).await;
    let row = app
        .query("SELECT attempts, not_before FROM outbox WHERE source_id = '12'")
        .expect("the outbox");
    assert_eq!(row[0][0], "1", "{row:?}");
    // The first back-off is at most 2 s (full jitter): not due before it.
    let not_before: i64 = row[0][1].parse().expect("a due time");
    let now = app.now_ms();
    assert!(not_before <= now + 2_000, "{row:?}");
    if not_before > now + 50 {
        assert_eq!(tick(&app, "").await["sent"], 0, "not due yet");
    }
    // Due, and past the key's even spacing since the failed request.
    app.advance(std::time::Duration::from_millis((not_before - now).max(0) as u64).max(SPACING));
    assert_eq!(tick(&app, "").await["sent"], 1);
    assert_eq!(sims.kendo.accepted().len(), 1);
    assert!(sims.kendo.duplicates().is_empty());
}

/// Kendo slower than `kendo_timeout_seconds` to answer: the request ends
/// at the timeout (which the send's claim outlasts, so no other instance
/// takes the send over while it is on the wire) and the call is queued to
/// be sent again as a lost answer, flagged as possibly in Kendo twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_answer_slower_than_the_timeout_is_a_lost_answer() {
    let (sims, app) = started_with(&[("kendo_timeout_seconds", "1")]).await;
    sims.kendo.delay_next(1, std::time::Duration::from_secs(4));
    deliver_call(&app, 14).await;
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '14'")
            .expect("the ledger"),
        vec![vec!["queued".to_string(), "answer-lost".into()]],
        "queued to be re-sent"
    );
    assert_eq!(
        app.query("SELECT ambiguous FROM outbox WHERE source_id = '14'")
            .expect("the outbox"),
        vec![vec!["1".to_string()]],
        "one lost answer"
    );
}

/// Kendo posts its signed `event` to the app (served on a socket, as Kendo
/// reaches it) `times` times; each is delivered.
async fn post_kendo_event(
    sims: &Simulators,
    app: &SpinApp,
    secret: &str,
    event: &kendo_bridge_sim::kendo::KendoEvent,
    times: usize,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listening socket");
    let url = format!(
        "http://{}/webhooks/kendo",
        listener.local_addr().expect("an address")
    );
    let server = tokio::spawn(app.clone().serve(listener));
    for _ in 0..times {
        let delivery = sims.kendo.send_webhook(&url, secret, event).await;
        assert!(delivery.delivered, "{:?}", delivery.attempts);
    }
    server.abort();
}

/// Kendo's signed `call.uploaded` for a call the app sent: kept once in
/// the shared ledger (a repeat is recognised) and matched to the call by
/// the callId Kendo returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kendos_score_of_a_sent_call_is_kept_once_and_matched_to_it() {
    const KENDO_SECRET: &str = "spin-test-kendo-webhook-secret";
    let (sims, app) = started_with(&[("kendo_webhook_secret", KENDO_SECRET)]).await;
    deliver_call(&app, 55).await;
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1);
    let event = sims.kendo.call_uploaded_event(&accepted[0], 87);
    post_kendo_event(&sims, &app, KENDO_SECRET, &event, 2).await;
    assert_eq!(
        app.query(
            "SELECT r.ai_score FROM kendo_results r JOIN ledger l ON l.kendo_call_id = r.subject_id
              WHERE l.source_id = '55'"
        )
        .expect("the results"),
        vec![vec!["87".to_string()]],
        "one result, the call's"
    );
}

/// A Kendo result the host stored in the shared inbox (its server keeps
/// every delivery before processing it) is recorded by a Spin tick, not
/// closed unread: the drivers share one inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_result_the_host_stored_is_recorded_by_a_tick() {
    let (sims, app) = started().await;
    deliver_call(&app, 56).await;
    let accepted = sims.kendo.accepted();
    let body = sims.kendo.call_uploaded_event(&accepted[0], 91).body();
    app.query(&format!(
        "INSERT INTO inbox (source, delivery_id, event, body, received_at)
         VALUES ('kendo', 'from-the-host', 'call.uploaded', '{}', 1) RETURNING id",
        body.replace('\'', "''")
    ))
    .expect("the inbox");
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["inbox"]["processed"], 1, "{ticked}");
    assert_eq!(
        app.query(
            "SELECT processed_at IS NOT NULL, error FROM inbox WHERE delivery_id = 'from-the-host'"
        )
        .expect("the inbox"),
        vec![vec!["1".to_string(), "NULL".to_string()]],
        "processed, with no error"
    );
    assert_eq!(
        app.query(
            "SELECT r.ai_score FROM kendo_results r JOIN ledger l ON l.kendo_call_id = r.subject_id
              WHERE l.source_id = '56'"
        )
        .expect("the results"),
        vec![vec!["91".to_string()]]
    );
}

/// An account that sends transcripts (Aloware's last arrived a minute ago):
/// only then does a call with its recording wait for one (the core's
/// `transcript_mode`).
async fn transcripts_come(app: &SpinApp) {
    // The first tick applies the schema.
    tick(app, "").await;
    app.query(&format!(
        "INSERT INTO transcripts_seen (source, last_at) VALUES ('aloware', {})",
        app.now_ms() - 60_000
    ))
    .expect("the transcript is noted");
}

/// A call ready with its recording waits for its transcript (the host's
/// `aloware.transcript_wait`); when none arrives in time, a tick sends it
/// with its recording alone, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aloware_call_waits_for_its_transcript_then_goes_with_its_recording() {
    let (sims, app) = started_with(&[("aloware_transcript_wait_seconds", "300")]).await;
    transcripts_come(&app).await;
    deliver_call(&app, 88).await;
    assert!(sims.kendo.accepted().is_empty(), "not before the wait ends");
    let early = tick(&app, "").await;
    assert_eq!(early["transcriptWaitsOver"], 0, "{early}");
    app.advance(std::time::Duration::from_secs(301));
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["transcriptWaitsOver"], 1, "{ticked}");
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1, "{ticked}");
    assert_eq!(accepted[0].field("audioUrl"), Some(RECORDING));
    assert_eq!(accepted[0].field("transcript"), None);
    let again = tick(&app, "").await;
    assert_eq!(
        again["transcriptWaitsOver"], 0,
        "the wait ends once: {again}"
    );
}

/// A transcript that arrives within the wait goes with the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aloware_transcript_within_the_wait_goes_with_the_call() {
    let (sims, app) = started_with(&[("aloware_transcript_wait_seconds", "300")]).await;
    transcripts_come(&app).await;
    let sequence = captured_completed_call(&call(89), RECORDING, "summary", "Rep: hello there");
    for step in &sequence {
        let (status, body) = post_aloware(&app, &step.payload, SECRET).await;
        assert_eq!(status, 200, "{body}");
    }
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("hello there")),
        "{:?}",
        accepted[0].field("transcript")
    );
}

/// A call the rules skip is recorded with the plugin's reason code, as
/// the host records it, and never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_captured_failed_dial_is_skipped_with_its_reason_and_never_sent() {
    let (sims, app) = started().await;
    for step in captured_failed_dial(&call(77)) {
        let (status, body) = post_aloware(&app, &step.payload, SECRET).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '77'")
            .expect("the ledger"),
        vec![vec!["skipped".to_string(), "not-completed".into()]]
    );
    assert!(sims.kendo.accepted().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_aloware_delivery_is_kept_and_answered_200() {
    let (_sims, app) = started().await;
    let answer = app
        .request(
            "POST",
            "/webhooks/aloware",
            &[("authorization", &format!("Bearer {SECRET}"))],
            "{not json",
        )
        .await
        .expect("the app answers");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("stored"), "{}", answer.body);
    let kept = app
        .query("SELECT source, body IS NOT NULL, error IS NOT NULL FROM inbox")
        .expect("the inbox");
    assert_eq!(
        kept,
        vec![vec!["aloware".to_string(), "1".into(), "1".into()]],
        "kept in the shared inbox with its reason"
    );
    // And a failed ledger row, as the host records it: it shows in status.
    assert_eq!(
        app.query("SELECT source_id, state, reason_code FROM ledger")
            .expect("the ledger"),
        vec![vec![
            "unreadable:inbox-1".to_string(),
            "failed".into(),
            "unreadable".into()
        ]]
    );
}

/// A team's own mapper replaces the default one on Spin as it does in the
/// host: the app is composed with the plugin with whatever mapper the build
/// plugged in. Here the test mapper (`testing/trap-guest`) that panics on a
/// marked call: the request fails, the default mapper would have kept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_own_mapper_is_composed_in_place_of_the_default_one() {
    use hmac::{Hmac, Mac};
    const SALESLOFT_SECRET: &str = "spin-test-salesloft-secret";
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let variables = HashMap::from([
        ("kendo_api_key".to_string(), DEMO_KENDO_KEY.to_string()),
        ("kendo_url".to_string(), sims.kendo_url()),
        ("salesloft_secret".to_string(), SALESLOFT_SECRET.to_string()),
    ]);
    let trap_mapper = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guest-trap/wasm32-wasip2/release/kendo_bridge_trap_guest.wasm");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/seed-examples/inputs/salesloft-call.json");
    let mut call: Value =
        serde_json::from_slice(&std::fs::read(fixture).expect("the fixture")).expect("JSON");
    call["note"] = json!("kendo-bridge-test-trap");
    let body = call.to_string();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SALESLOFT_SECRET.as_bytes()).expect("a key");
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let post = |app: SpinApp| {
        let (body, signature) = (body.clone(), signature.clone());
        async move {
            app.request(
                "POST",
                "/webhooks/salesloft",
                &[
                    ("content-type", "application/json"),
                    ("x-salesloft-event", "call_updated"),
                    ("x-salesloft-signature", signature.as_str()),
                ],
                body,
            )
            .await
        }
    };

    let built_in = SpinApp::load(
        &SpinApp::built_component(),
        &SpinApp::built_plugin(),
        variables.clone(),
    )
    .expect("the app loads with the built-in plugin");
    let mapped = post(built_in)
        .await
        .expect("the built-in plugin maps the call");
    assert_eq!(mapped.status, 200, "{}", mapped.body);

    let own = SpinApp::load_with_mapper(&SpinApp::built_component(), &trap_mapper, variables)
        .expect("the app loads with the team's mapper");
    let trapped = post(own.clone()).await;
    assert!(
        trapped
            .as_ref()
            .is_err_and(|e| e.to_string().contains("trapped")),
        "the team's mapper ran (and trapped on its marker): {trapped:?}"
    );

    // A trap takes the instance down, but the delivery was stored (and
    // answered) first, and taken for processing: `GET /status` shows it
    // once it is overdue, and each tick takes it again until its processor
    // has stopped three times, then it is closed with that reason and
    // costs only itself.
    own.advance(std::time::Duration::from_secs(31));
    let status = own
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    assert!(
        status.body.contains("stopped 1 time(s)"),
        "the stopped processing shows: {}",
        status.body
    );
    let kept = "SELECT processed_at IS NOT NULL, error FROM inbox";
    // Its lease would end in 5 minutes: moved here, as the test cannot
    // wait for the clock.
    own.query("UPDATE inbox SET lease_until = 0")
        .expect("the inbox");
    for attempt in 0..2 {
        let ticked = own.request("POST", "/tick", &[], "").await;
        assert!(ticked.is_err(), "attempt {attempt} traps: {ticked:?}");
        // Its lease would end in 5 minutes: moved here, as the test
        // cannot wait for the clock.
        own.query("UPDATE inbox SET lease_until = 0")
            .expect("the inbox");
    }
    let ticked = own
        .request("POST", "/tick", &[], "")
        .await
        .expect("the third tick closes the delivery instead of trapping");
    assert_eq!(ticked.status, 200, "{}", ticked.body);
    let rows = own.query(kept).expect("the inbox");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "1", "closed: {rows:?}");
    assert!(rows[0][1].contains("stopped 3 times"), "{rows:?}");
}

/// The Spin app's status page in a real headless Chromium (Debian's, which
/// `./dev test` installs; the browser part runs when KENDO_BRIDGE_BROWSER=1):
/// after one call is sent and one delivery kept unread, the page shows 1 and
/// 1, filled in by its own script from /status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_spin_status_page_shows_the_calls_by_state() {
    let (_sims, app) = started().await;
    deliver_call(&app, 21).await;
    app.request(
        "POST",
        "/webhooks/aloware",
        &[("authorization", &format!("Bearer {SECRET}"))],
        "{not json",
    )
    .await
    .expect("the app answers");
    // A problem that needs a person, as a refused scope records it.
    app.query(
        "INSERT INTO source_health (source, topic, problem, problem_since, problem_count)
         VALUES ('hubspot', 'write-back', 'add <b>crm.objects.contacts.write</b>', 1, 1) RETURNING 1",
    )
    .expect("the health");
    let page = app.request("GET", "/", &[], "").await.expect("the page");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "nothing from elsewhere: {}",
        page.body
    );

    if std::env::var("KENDO_BRIDGE_BROWSER").as_deref() != Ok("1") {
        eprintln!("browser part skipped: set KENDO_BRIDGE_BROWSER=1 (./dev test does)");
        return;
    }
    let chromium = std::env::var_os("KENDO_BRIDGE_CHROMIUM")
        .map_or_else(|| std::path::PathBuf::from("/usr/bin/chromium"), Into::into);
    assert!(
        chromium.exists(),
        "KENDO_BRIDGE_BROWSER=1 but there is no Chromium at {}: install Debian's chromium (./dev test does)",
        chromium.display()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listening socket");
    let url = format!("http://{}/", listener.local_addr().expect("an address"));
    let server = tokio::spawn(app.clone().serve(listener));
    let profile = std::env::temp_dir().join(format!("spin-page-{}", std::process::id()));
    let output = tokio::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("Chromium runs");
    server.abort();
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("data-updated="),
        "the page's script ran: {dom}"
    );
    assert!(dom.contains(r#"<td data-k="sent">1</td>"#), "{dom}");
    assert!(dom.contains(r#"<td data-k="unreadable">1</td>"#), "{dom}");
    assert!(dom.contains(r#"<td data-k="queued">0</td>"#), "{dom}");
    assert!(dom.contains(">sending<"), "the key is not paused: {dom}");
    assert!(
        dom.contains(
            "<li>hubspot write-back: add &lt;b&gt;crm.objects.contacts.write&lt;/b&gt;</li>"
        ),
        "the problem, as text: {dom}"
    );
    assert!(
        dom.contains("<li>none queued</li>"),
        "no write-backs: {dom}"
    );
}

/// Spin runs instances side by side (and, scaled out, on several nodes
/// sharing one database): the same call delivered ten times at once goes
/// to Kendo once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_deliveries_of_one_call_reach_kendo_once() {
    let (sims, app) = started().await;
    let sequence = captured_completed_call(&call(31), RECORDING, "s", "t");
    for step in sequence.iter().take(2) {
        post_aloware(&app, &step.payload, SECRET).await;
    }
    // Ten different deliveries that each make the call ready (a field the
    // mapping ignores tells them apart), so the inbox keeps all ten and
    // the ledger alone must send the call once.
    let deliveries: Vec<_> = (0..10)
        .map(|n| {
            let mut ready = sequence[2 + n % 2].payload.clone();
            ready["delivery"] = json!(n);
            let app = app.instance();
            tokio::spawn(async move { post_aloware(&app, &ready, SECRET).await })
        })
        .collect();
    for d in deliveries {
        let (status, body) = d.await.expect("the delivery task");
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("duplicate"), "{body}");
    }
    assert_eq!(
        app.query("SELECT COUNT(*) FROM inbox").expect("the inbox"),
        vec![vec!["12".to_string()]]
    );
    assert_eq!(sims.kendo.accepted().len(), 1, "one call in Kendo");
    assert!(sims.kendo.duplicates().is_empty());
}

/// Forty calls arriving at once, across instances: the key's window admits
/// thirty (paced in the shared database), none draws a 429, and the rest
/// wait queued for a later tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_together_keep_the_keys_thirty_a_minute() {
    let (sims, app) = started().await;
    let deliveries: Vec<_> = (0..40u64)
        .map(|n| {
            let app = app.instance();
            tokio::spawn(async move { deliver_call(&app, 1_000 + n).await })
        })
        .collect();
    for d in deliveries {
        d.await.expect("the delivery task");
    }
    assert_eq!(sims.kendo.stats().rate_limited_429, 0, "no 429 from Kendo");
    let accepted = sims.kendo.accepted().len();
    assert!(accepted <= 30, "{accepted} requests in one minute");
    assert!(accepted >= 1, "the first calls went out");
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(
        status["queued"].as_u64().unwrap_or(0) + accepted as u64,
        40,
        "every call is sent or queued: {status}"
    );
    assert!(sims.kendo.duplicates().is_empty());
}

/// An instance that died between claiming a send and recording Kendo's
/// answer leaves the send in flight; once its claim's lease ends, the next
/// tick (in any instance) sends it again and flags it as possibly in Kendo
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_left_in_flight_by_a_dead_instance_is_sent_again_after_its_lease() {
    let (sims, app) = started().await;
    sims.kendo.fail_next(1, 503);
    deliver_call(&app, 41).await;
    // What a crash right after the claim leaves: in flight, under a claim
    // whose lease ended a moment ago.
    app.query(
        "UPDATE outbox SET claim = 'dead-instance', lease_until = 2, not_before = 0
         WHERE source_id = '41' RETURNING id",
    )
    .expect("the outbox");
    app.query("UPDATE ledger SET state = 'sending' WHERE source_id = '41' RETURNING 1")
        .expect("the ledger");
    app.advance(SPACING);
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["recovered"], 1, "{ticked}");
    assert_eq!(ticked["sent"], 1, "{ticked}");
    assert_eq!(sims.kendo.accepted().len(), 1);
    assert_eq!(
        app.query("SELECT state, maybe_duplicated FROM ledger WHERE source_id = '41'")
            .expect("the ledger"),
        vec![vec!["sent".to_string(), "1".to_string()]],
        "sent, and flagged: the dead instance's request may have reached Kendo"
    );
}

const HUBSPOT_CLIENT_SECRET: &str = "spin-test-hubspot-client-secret";

/// The simulators with HubSpot owner 77 (sam@yourco.com) and one finished,
/// recorded call of theirs; the call's id.
async fn hubspot_with_a_call() -> (Simulators, u64) {
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let call_id = sims.hubspot.add_sams_recorded_call();
    (sims, call_id)
}

/// The app reading HubSpot (the simulator) with the demo token, with these
/// variables besides.
fn hubspot_app(sims: &Simulators, extra: &[(&str, &str)]) -> SpinApp {
    let url = sims.hubspot_url();
    let mut variables = vec![
        ("hubspot_client_secret", HUBSPOT_CLIENT_SECRET),
        ("hubspot_token", kendo_bridge_sim::DEMO_HUBSPOT_TOKEN),
        ("hubspot_api_url", url.as_str()),
    ];
    variables.extend_from_slice(extra);
    loaded(sims, &variables)
}

/// Posts `body` to the HubSpot webhook, signed v1 with the client secret.
async fn post_hubspot(app: &SpinApp, body: String) -> kendo_bridge_spin_host::Answer {
    use sha2::{Digest, Sha256};
    let signature: String = Sha256::digest(format!("{HUBSPOT_CLIENT_SECRET}{body}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    app.request(
        "POST",
        "/webhooks/hubspot",
        &[
            ("content-type", "application/json"),
            ("x-hubspot-signature", signature.as_str()),
            ("x-hubspot-signature-version", "v1"),
        ],
        body,
    )
    .await
    .expect("the app answers")
}

/// HubSpot's CRM webhook event for a created call.
fn call_created_event(call_id: u64) -> String {
    json!([{
        "eventId": 1, "subscriptionId": 2, "portalId": 62_515, "appId": 1_234_567,
        "occurredAt": 1_776_870_000_000_i64, "subscriptionType": "object.creation",
        "attemptNumber": 0, "objectId": call_id, "objectTypeId": "0-48",
        "changeSource": "CRM_UI", "changeFlag": "CREATED",
    }])
    .to_string()
}

/// A HubSpot CRM webhook (signed v1) names a call: the app reads it and its
/// owner from HubSpot's API (the simulator) and sends it once; a
/// workflow delivery about a contact is answered and not read as a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_webhook_names_a_call_that_is_read_and_sent() {
    let (sims, call_id) = hubspot_with_a_call().await;
    // The portal transcribed the call: with `hubspot_transcripts` the app
    // reads the transcript, as the host does with `[hubspot] transcripts`.
    sims.hubspot
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
    let app = hubspot_app(&sims, &[("hubspot_transcripts", "true")]);
    let post = |body: String| {
        let app = app.clone();
        async move { post_hubspot(&app, body).await }
    };
    let event = call_created_event(call_id);
    let answer = post(event.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].source(), Some("hubspot"));
    assert_eq!(accepted[0].field("repEmail"), Some("sam@yourco.com"));
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("Thanks for taking the call.")),
        "{:?}",
        accepted[0].field("transcript")
    );
    // The dispositions were read (the core's workflow), and say so.
    assert_eq!(
        app.query("SELECT topic, problem IS NULL FROM source_health WHERE source = 'hubspot' ORDER BY topic")
            .expect("the health"),
        vec![
            vec!["dispositions".to_string(), "1".into()],
            vec!["transcripts".to_string(), "1".into()]
        ]
    );
    // HubSpot sends the event again (a retry): recognised, nothing new.
    let again = post(event).await;
    assert!(again.body.contains("duplicate"), "{}", again.body);
    assert_eq!(sims.kendo.accepted().len(), 1);

    let contact =
        post(json!({"hs_object_id": "501", "email": "alex@acme.example"}).to_string()).await;
    assert_eq!(contact.status, 200, "{}", contact.body);
    assert_eq!(
        app.query(
            "SELECT processed_at IS NOT NULL, error FROM inbox WHERE body LIKE '%alex@acme%'"
        )
        .expect("the inbox"),
        vec![vec!["1".to_string(), "NULL".into()]],
        "stored and processed: the contact's event is ignored without an error"
    );
    assert_eq!(sims.kendo.accepted().len(), 1);

    let forged = app
        .request(
            "POST",
            "/webhooks/hubspot",
            &[
                ("x-hubspot-signature", "00"),
                ("x-hubspot-signature-version", "v1"),
            ],
            "[]",
        )
        .await
        .expect("the app answers");
    assert_eq!(forged.status, 401, "{}", forged.body);
}

/// A webhook naming two calls, one of which HubSpot returns in a form the
/// plugin cannot read: that one is a failed row with the reason (the
/// core's `unreadable_call`, as on the host), the other is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_call_in_a_hubspot_webhook_costs_that_call_and_the_other_goes() {
    let (sims, good) = hubspot_with_a_call().await;
    let bad = sims.hubspot.create_call(&[("hs_call_title", "Poisoned")]);
    sims.hubspot.poison_search_result(
        bad,
        json!({"id": bad.to_string(), "properties": "not an object"}),
    );
    let app = hubspot_app(&sims, &[]);
    let event = |n: u64, id: u64| {
        json!({"eventId": n, "subscriptionType": "object.creation", "objectId": id,
               "objectTypeId": "0-48", "occurredAt": 1_776_870_000_000_i64})
    };
    let answer = post_hubspot(&app, json!([event(1, bad), event(2, good)]).to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(sims.kendo.accepted().len(), 1, "the readable call is sent");
    assert_eq!(
        app.query(&format!(
            "SELECT state, reason_code, sync_method FROM ledger WHERE source_id = '{bad}'"
        ))
        .expect("the ledger"),
        vec![vec![
            "failed".to_string(),
            "unreadable".into(),
            "webhook".into()
        ]]
    );
}

/// The app with write-back on and one HubSpot call (owner 77, recorded)
/// delivered by a signed webhook and sent to Kendo.
async fn hubspot_call_sent_with_write_back() -> (Simulators, SpinApp, u64) {
    let (sims, call_id) = hubspot_with_a_call().await;
    let app = hubspot_app(
        &sims,
        &[
            ("hubspot_write_back", "true"),
            ("kendo_webhook_secret", KENDO_WEBHOOK_SECRET),
        ],
    );
    let answer = post_hubspot(&app, call_created_event(call_id)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(sims.kendo.accepted().len(), 1, "the call is sent");
    (sims, app, call_id)
}

/// A HubSpot workflow action's delivery (one object) is stored as the host
/// stores it (event `workflow`, so the same delivery has the same id on
/// either driver) and its call is recorded as having come by workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_workflow_delivery_is_stored_and_recorded_as_the_host_does() {
    let (sims, call_id) = hubspot_with_a_call().await;
    let app = hubspot_app(&sims, &[]);
    let body =
        json!({ "hs_object_id": call_id.to_string(), "hs_call_title": "Discovery" }).to_string();
    let answer = post_hubspot(&app, body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(sims.kendo.accepted().len(), 1, "the call is sent");
    let stored = app
        .query("SELECT event, delivery_id FROM inbox WHERE source = 'hubspot'")
        .expect("the inbox");
    assert_eq!(stored[0][0], "workflow", "{stored:?}");
    assert_eq!(
        stored[0][1],
        kendo_bridge_core::ledger::inbox::delivery_id(None, Some("workflow"), body.as_bytes()),
        "the id the host gives the same delivery"
    );
    assert_eq!(
        app.query(&format!(
            "SELECT sync_method FROM ledger WHERE source_id = '{call_id}'"
        ))
        .expect("the ledger"),
        vec![vec!["workflow".to_string()]]
    );
}

const KENDO_WEBHOOK_SECRET: &str = "spin-test-kendo-webhook-secret";

/// With `hubspot_write_back`, Kendo's 201 and its score become properties
/// on the HubSpot call, written by a tick as the core's workflow says: the
/// group and properties made first, then `Kendo Sent`, its callId, the
/// score and when it was scored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scored_hubspot_call_gets_kendo_sent_its_call_id_and_its_score_written_back() {
    let (sims, app, call_id) = hubspot_call_sent_with_write_back().await;
    let accepted = sims.kendo.accepted();
    let event = sims.kendo.call_uploaded_event(&accepted[0], 87);
    post_kendo_event(&sims, &app, KENDO_WEBHOOK_SECRET, &event, 1).await;
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["writeBack"]["written"], 2, "{ticked}");
    let call = sims.hubspot.call(call_id).expect("the call");
    let property = |name: &str| call.properties.get(name).cloned();
    assert_eq!(property("kendo_sent").as_deref(), Some("true"));
    assert_eq!(
        property("kendo_call_id"),
        Some(accepted[0].call_id.clone()),
        "Kendo's callId"
    );
    assert_eq!(property("kendo_ai_score").as_deref(), Some("87"));
    assert!(property("kendo_scored_at").is_some());
    let (groups, properties) = sims.hubspot.created_properties();
    assert!(groups.iter().any(|g| g == "kendo"), "{groups:?}");
    assert_eq!(properties.len(), 4, "{properties:?}");
    // Nothing is written twice.
    let again = tick(&app, "").await;
    assert_eq!(again["writeBack"]["written"], 0, "{again}");
}

/// HubSpot refusing the write for a missing scope holds every write-back
/// (no attempt spent) and `status` names the scope to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_refused_for_a_scope_waits_and_names_the_scope() {
    let (sims, app, _) = hubspot_call_sent_with_write_back().await;
    sims.hubspot.refuse_call_writes(true);
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["writeBack"]["held"], true, "{ticked}");
    assert_eq!(
        app.query("SELECT state, attempts FROM write_backs")
            .expect("the write-backs"),
        vec![vec!["pending".to_string(), "0".into()]]
    );
    let problem = app
        .query(
            "SELECT problem FROM source_health WHERE source = 'hubspot' AND topic = 'write-back'",
        )
        .expect("the health");
    assert!(
        problem[0][0].contains("crm.objects.contacts.write"),
        "{problem:?}"
    );
    // And `GET /status` says so, with the write-back waiting.
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("the app answers");
    let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(status["problems"][0]["topic"], "write-back", "{status}");
    assert_eq!(status["writeBacks"][0]["pending"], 1, "{status}");
}

/// A `kendo_*` property a person made by hand with another type (a
/// string `kendo_scored_at`) holds every write-back, named with what to
/// do, as on the host: nothing is written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_property_made_by_hand_as_text_holds_the_write_backs_and_names_it() {
    let (sims, app, _) = hubspot_call_sent_with_write_back().await;
    sims.hubspot
        .define_property("kendo", "kendo_scored_at", "string", "text");
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["writeBack"]["held"], true, "{ticked}");
    assert_eq!(ticked["writeBack"]["written"], 0, "{ticked}");
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("the app answers");
    assert!(
        status.body.contains("kendo_scored_at") && status.body.contains("delete"),
        "{}",
        status.body
    );
}

/// HubSpot's API refusing the app (a wrong token here) does not lose the
/// delivery: it is kept in the inbox and each tick tries it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_delivery_that_cannot_be_read_now_is_kept_for_the_next_tick() {
    use sha2::{Digest, Sha256};
    const CLIENT_SECRET: &str = "spin-test-hubspot-client-secret";
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let app = loaded(
        &sims,
        &[
            ("hubspot_client_secret", CLIENT_SECRET),
            ("hubspot_token", "pat-not-a-valid-token"),
            ("hubspot_api_url", &sims.hubspot_url()),
        ],
    );
    let body = json!([{"eventId": 9, "subscriptionType": "object.creation", "objectId": 4242,
        "objectTypeId": "0-48", "occurredAt": 1_776_870_000_000_i64}])
    .to_string();
    let signature: String = Sha256::digest(format!("{CLIENT_SECRET}{body}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let answer = app
        .request(
            "POST",
            "/webhooks/hubspot",
            &[
                ("x-hubspot-signature", signature.as_str()),
                ("x-hubspot-signature-version", "v1"),
            ],
            body,
        )
        .await
        .expect("the app answers");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let last_error = app
        .query("SELECT last_error FROM inbox WHERE source = 'hubspot'")
        .expect("the inbox");
    assert!(
        last_error[0][0].contains("401"),
        "the reason names HubSpot's answer: {last_error:?}"
    );
    let kept = "SELECT attempts FROM inbox WHERE source = 'hubspot' AND processed_at IS NULL";
    assert_eq!(
        app.query(kept).expect("the inbox"),
        vec![vec!["1".to_string()]]
    );
    // It waits for its own next attempt (the back-off), not the next tick.
    tick(&app, "").await;
    assert_eq!(
        app.query(kept).expect("the inbox"),
        vec![vec!["1".to_string()]],
        "not tried before its back-off ends"
    );
    // A refused token needs a person: it shows, and the delivery is tried
    // again at the longest back-off (five minutes), not lost.
    let problem = app
        .query("SELECT problem FROM source_health WHERE source = 'hubspot' AND topic = 'webhook'")
        .expect("the health");
    assert!(problem[0][0].contains("401"), "{problem:?}");
    app.advance(std::time::Duration::from_secs(301));
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["inbox"]["deferred"], 1, "{ticked}");
    assert_eq!(
        app.query(kept).expect("the inbox"),
        vec![vec!["2".to_string()]],
        "still kept, tried again"
    );
}

/// With `hubspot_poll`, each tick reads HubSpot's calls search from the
/// checkpoint (the host's cursor) and sends what it finds once; the next
/// tick goes on from the checkpoint and sends nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_polls_hubspot_from_its_checkpoint_and_sends_each_call_once() {
    use kendo_bridge_sim::DEMO_HUBSPOT_TOKEN;
    use kendo_bridge_sim::hubspot::HubspotOwner;
    let sims = Simulators::start(SimOptions {
        // Search sees a write at once here.
        hubspot_search_lag: std::time::Duration::ZERO,
        ..SimOptions::default()
    })
    .await
    .expect("the simulators start");
    sims.hubspot.add_owner(HubspotOwner {
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
        ids.push(sims.hubspot.create_call(&[
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
    // Search answers no associations: the page's batch reads find them.
    sims.hubspot
        .associate(ids[0], &[51, 52], &[123_456])
        .expect("the call exists");
    let app = loaded(
        &sims,
        &[
            ("hubspot_token", DEMO_HUBSPOT_TOKEN),
            ("hubspot_api_url", &sims.hubspot_url()),
            ("hubspot_poll", "true"),
        ],
    );
    let first = tick(&app, "").await;
    assert_eq!(first["hubspotPoll"]["calls"], 3, "{first}");
    // The key's even spacing lets one out now; the others wait queued.
    assert_eq!(sims.kendo.accepted().len(), 1);
    assert_eq!(first["queued"], 2, "{first}");
    let checkpoint = app
        .query("SELECT cursor FROM checkpoints WHERE source = 'hubspot'")
        .expect("the checkpoint");
    assert!(
        checkpoint[0][0].contains("high_water_ms"),
        "the host's cursor shape: {checkpoint:?}"
    );
    for _ in 0..2 {
        app.advance(SPACING);
        let next = tick(&app, "").await;
        assert!(next["hubspotPoll"]["error"].is_null(), "{next}");
        assert_eq!(next["sent"], 1, "one a slot: {next}");
    }
    assert_eq!(sims.kendo.accepted().len(), 3, "each polled call once");
    assert!(sims.kendo.duplicates().is_empty());
    let associated = sims
        .kendo
        .accepted()
        .into_iter()
        .find(|c| c.source_call_id() == Some(ids[0].to_string()))
        .expect("the associated call was sent");
    assert_eq!(
        associated.body.pointer("/metadata/hubspotContactIds"),
        Some(&json!("51,52"))
    );
    assert_eq!(
        associated.body.pointer("/metadata/hubspotDealIds"),
        Some(&json!("123456"))
    );
    assert_eq!(
        app.query("SELECT COUNT(*) FROM ledger WHERE sync_method = 'polling' AND state = 'sent'")
            .expect("the ledger"),
        vec![vec!["3".to_string()]]
    );
}

/// A finished, recorded Salesloft call of `user`, updated `updated_ago`
/// before `now`.
fn salesloft_call(
    id: u64,
    user: u64,
    now: time::OffsetDateTime,
    updated_ago: time::Duration,
) -> kendo_bridge_sim::salesloft::SalesloftCall {
    use kendo_bridge_sim::salesloft::{Recording, SalesloftCall};
    SalesloftCall {
        id,
        to: Some("+12025550142".into()),
        duration: Some(95),
        disposition: Some("Connected".into()),
        sentiment: None,
        created_at: now - time::Duration::minutes(10),
        updated_at: now - updated_ago,
        recordings: vec![Recording {
            url: Some(format!("https://recordings.example/salesloft-{id}.mp3")),
            status: "completed".into(),
            recording_status: "completed".into(),
        }],
        user_id: Some(user),
        action_id: None,
        called_person_id: None,
        crm_activity_id: None,
        note_id: None,
        cadence_id: None,
        step_id: None,
    }
}

/// A Salesloft user (a rep).
fn salesloft_user(
    id: u64,
    name: (&str, &str),
    email: &str,
) -> kendo_bridge_sim::salesloft::SalesloftUser {
    kendo_bridge_sim::salesloft::SalesloftUser {
        id,
        guid: format!("00000000-0000-4000-8000-{id:012}"),
        first_name: name.0.into(),
        last_name: name.1.into(),
        email: email.into(),
        active: true,
    }
}

/// With `salesloft_poll`, each tick reads Salesloft's calls list from the
/// checkpoint (the host's cursor), reads each call's user once (the core's
/// workflow), and sends each call once; a later tick sends nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_polls_salesloft_from_its_checkpoint_and_sends_each_call_once() {
    use kendo_bridge_sim::DEMO_SALESLOFT_KEY;
    use kendo_bridge_sim::salesloft::CallDataRecord;
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    sims.salesloft
        .add_user(salesloft_user(3_101, ("Robin", "Lee"), "robin@yourco.com"));
    let now = time::OffsetDateTime::now_utc();
    for n in 0..4u64 {
        let updated_ago = time::Duration::minutes(5) - time::Duration::seconds(n as i64);
        sims.salesloft
            .add_call(salesloft_call(61_000 + n, 3_101, now, updated_ago));
    }
    // Each call's direction is in its call data record, listed apart.
    for n in 0..3u64 {
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
    // A fourth call whose `id` is not a number: it costs that record only,
    // kept as failed with the reason under an id naming where it was.
    let mut poison = sims.salesloft.call_json(61_003).expect("the call");
    poison["id"] = json!({ "value": 61_003 });
    sims.salesloft.poison_call(61_003, poison);
    let app = loaded(
        &sims,
        &[
            ("salesloft_api_key", DEMO_SALESLOFT_KEY),
            ("salesloft_api_url", &sims.salesloft_url()),
            ("salesloft_poll", "true"),
        ],
    );
    let first = tick(&app, "").await;
    assert_eq!(first["salesloftPoll"]["calls"], 3, "{first}");
    assert_eq!(first["salesloftPoll"]["rejected"], 1, "{first}");
    assert_eq!(first["salesloftPoll"]["rejected"], 1, "{first}");
    assert_eq!(sims.kendo.accepted().len(), 1, "one a slot: {first}");
    let checkpoint = app
        .query("SELECT cursor FROM checkpoints WHERE source = 'salesloft'")
        .expect("the checkpoint");
    assert!(
        checkpoint[0][0].contains("updated_since"),
        "the host's cursor shape: {checkpoint:?}"
    );
    for _ in 0..2 {
        app.advance(SPACING);
        let next = tick(&app, "").await;
        assert!(next["salesloftPoll"]["error"].is_null(), "{next}");
        assert_eq!(next["sent"], 1, "one a slot: {next}");
    }
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 3, "each polled call once");
    assert!(sims.kendo.duplicates().is_empty());
    assert!(
        accepted
            .iter()
            .all(|c| c.field("repEmail") == Some("robin@yourco.com")),
        "the rep from the user record"
    );
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
        "each call's direction from its own record"
    );
    assert_eq!(
        app.query("SELECT COUNT(*) FROM ledger WHERE source = 'salesloft' AND state = 'sent'")
            .expect("the ledger"),
        vec![vec!["3".to_string()]]
    );
    // Without a readable id it is kept under one naming where it was read;
    // the cursor re-reads the newest records at each cycle's end, so the
    // same record may be kept once more under that position (not again
    // and again: the same position makes the same id).
    let failed = app
        .query("SELECT source_id, reason_code FROM ledger WHERE state = 'failed'")
        .expect("the ledger");
    assert!((1..=2).contains(&failed.len()), "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|f| f[0].starts_with("unreadable:") && f[1] == "unreadable"),
        "{failed:?}"
    );
}

/// The simulators with one finished, recorded Salesloft call (62000) of
/// user 3102 (sam@yourco.com), updated five minutes ago.
async fn salesloft_with_a_call() -> Simulators {
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    sims.salesloft
        .add_user(salesloft_user(3_102, ("Sam", "Rivera"), "sam@yourco.com"));
    let now = time::OffsetDateTime::now_utc();
    sims.salesloft.add_call(salesloft_call(
        62_000,
        3_102,
        now,
        time::Duration::minutes(5),
    ));
    sims
}

/// The app polling Salesloft (the simulator) on each tick, with these
/// variables besides.
fn salesloft_polling_app(sims: &Simulators, extra: &[(&str, &str)]) -> SpinApp {
    let url = sims.salesloft_url();
    let mut variables = vec![
        ("salesloft_api_key", kendo_bridge_sim::DEMO_SALESLOFT_KEY),
        ("salesloft_api_url", url.as_str()),
        ("salesloft_poll", "true"),
    ];
    variables.extend_from_slice(extra);
    loaded(sims, &variables)
}

/// With `salesloft_transcripts`, a tick reads new transcriptions first,
/// follows each to its call through its conversation (the core's
/// `TranscriptRead`), and the call goes to Kendo with its transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesloft_transcript_read_by_the_sweep_goes_with_its_call() {
    let sims = salesloft_with_a_call().await;
    sims.salesloft
        .transcribe(
            62_000,
            &[
                ("Sam Rivera", "Thanks for taking the call."),
                ("Alex", "Sure."),
            ],
        )
        .expect("the call is transcribed");
    let app = salesloft_polling_app(
        &sims,
        &[
            ("salesloft_transcripts", "true"),
            ("salesloft_direction_wait_seconds", "0"),
        ],
    );
    let ticked = tick(&app, "").await;
    assert!(ticked["salesloftPoll"]["error"].is_null(), "{ticked}");
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1, "{ticked}");
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("Thanks for taking the call.")),
        "{:?}",
        accepted[0].field("transcript")
    );
    assert_eq!(
        app.query(
            "SELECT problem IS NULL FROM source_health WHERE source = 'salesloft' AND topic = 'transcripts'"
        )
        .expect("the health"),
        vec![vec!["1".to_string()]]
    );
}

/// A tick starts at most `TRANSCRIPT_REQUESTS` requests of the sweep: a
/// page of transcriptions longer than that is finished over several
/// ticks, the checkpoint keeping how far into the page it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_transcripts_is_read_over_several_ticks_from_where_the_last_stopped() {
    let sims = salesloft_with_a_call().await;
    let now = time::OffsetDateTime::now_utc();
    for n in 1..15u64 {
        sims.salesloft.add_call(salesloft_call(
            62_000 + n,
            3_102,
            now,
            time::Duration::minutes(5),
        ));
    }
    for n in 0..15u64 {
        sims.salesloft
            .transcribe(62_000 + n, &[("Sam Rivera", "Hello.")])
            .expect("the call is transcribed");
    }
    let app = salesloft_polling_app(&sims, &[("salesloft_transcripts", "true")]);
    let held = |app: &SpinApp| {
        app.query(
            "SELECT COUNT(*) FROM held_calls WHERE source = 'salesloft' AND transcript IS NOT NULL",
        )
        .expect("the held transcripts")[0][0]
            .parse::<u32>()
            .expect("a count")
    };
    tick(&app, "").await;
    let first = held(&app);
    assert!(
        (1..15).contains(&first),
        "{first} transcripts in the first tick"
    );
    let checkpoint = app
        .query("SELECT cursor FROM checkpoints WHERE source = 'salesloft-transcripts'")
        .expect("the checkpoint");
    assert!(
        checkpoint[0][0].contains(&format!("\"done\":{first}")),
        "{checkpoint:?}"
    );
    tick(&app, "").await;
    assert_eq!(held(&app), 15, "the rest of the page in the next tick");
}

/// When Salesloft says the team has almost no cost points left this
/// minute, a tick stops reading and leaves the last points to the team's
/// other integrations (the core's `leave_to_others`); the next tick goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_leaves_the_teams_last_cost_points_to_its_other_integrations() {
    let sims = salesloft_with_a_call().await;
    let app = salesloft_polling_app(&sims, &[]);
    // Another integration spent all but 20 of the team's 600 points.
    assert!(sims.salesloft.spend_points(580));
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["salesloftPoll"]["budgetSpent"], true, "{ticked}");
    assert_eq!(ticked["salesloftPoll"]["calls"], 0, "{ticked}");
    assert_eq!(
        sims.salesloft.requests().len(),
        1,
        "one request, then it stops"
    );
    assert!(sims.kendo.accepted().is_empty());
}

/// A stored cursor this build cannot read (another version wrote it) does
/// not stop polling: the poll starts again from its first look-back, as
/// the host's does, and the ledger absorbs what it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_checkpoint_restarts_the_poll_from_its_look_back() {
    let sims = salesloft_with_a_call().await;
    let app = salesloft_polling_app(&sims, &[("salesloft_direction_wait_seconds", "0")]);
    // The first request creates the schema.
    app.request("GET", "/status", &[], "")
        .await
        .expect("status");
    app.query(
        "INSERT INTO checkpoints (source, cursor, updated_at) VALUES ('salesloft', '{\"cursor\": 7}', 0) RETURNING 1",
    )
    .expect("the checkpoint");
    let ticked = tick(&app, "").await;
    assert!(ticked["salesloftPoll"]["error"].is_null(), "{ticked}");
    assert_eq!(ticked["salesloftPoll"]["calls"], 1, "{ticked}");
    assert_eq!(sims.kendo.accepted().len(), 1);
    let checkpoint = app
        .query("SELECT cursor FROM checkpoints WHERE source = 'salesloft'")
        .expect("the checkpoint");
    assert!(checkpoint[0][0].contains("updated_since"), "{checkpoint:?}");
    // Each part of the poll says how it did, as on the host.
    assert_eq!(
        app.query("SELECT topic, problem IS NULL FROM source_health WHERE source = 'salesloft' ORDER BY topic")
            .expect("the health"),
        vec![
            vec!["call_data_records".to_string(), "1".into()],
            vec!["poll".to_string(), "1".into()]
        ]
    );
}

/// A polled Salesloft call skipped for a reason a change of configuration
/// can fix (here the minimum duration) keeps its record, as on the host, so
/// the host's `redecide` can decide it again from the shared database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesloft_call_skipped_for_a_fixable_reason_keeps_its_record() {
    let sims = salesloft_with_a_call().await;
    let app = salesloft_polling_app(&sims, &[("min_duration_seconds", "120")]);
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["salesloftPoll"]["calls"], 1, "{ticked}");
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '62000'")
            .expect("the ledger"),
        vec![vec![
            "skipped".to_string(),
            "below-minimum-duration".to_string()
        ]]
    );
    let held = app
        .query("SELECT body FROM held_calls WHERE source = 'salesloft' AND source_id = '62000'")
        .expect("the held records");
    assert_eq!(held.len(), 1, "the record is kept");
    assert!(held[0][0].contains("62000"), "{held:?}");
    assert!(sims.kendo.accepted().is_empty());
}

/// Kendo answers 429: the send waits for `Retry-After`, and so does every
/// send of the key, from every instance (the core's key block); the 429 is
/// counted; once the block ends a tick sends the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kendo_429_holds_the_key_until_retry_after_then_a_tick_sends_it() {
    let (sims, app) = started().await;
    sims.kendo.fail_next(1, 429);
    deliver_call(&app, 13).await;
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '13'")
            .expect("the ledger"),
        vec![vec!["queued".to_string(), "rate-limited".into()]]
    );
    assert_eq!(
        app.query("SELECT value FROM counters WHERE name = 'kendo_429'")
            .expect("the counters"),
        vec![vec!["1".to_string()]]
    );
    // Another call of the key, due now, waits for the block too.
    let requests = sims.kendo.stats().requests;
    deliver_call(&app, 15).await;
    assert_eq!(
        app.query("SELECT state FROM ledger WHERE source_id = '15'")
            .expect("the ledger"),
        vec![vec!["queued".to_string()]]
    );
    let held = tick(&app, "").await;
    assert_eq!(held["held"], true, "{held}");
    assert_eq!(held["sent"], 0, "{held}");
    assert_eq!(
        sims.kendo.stats().requests,
        requests,
        "no request during the block"
    );
    // Its Retry-After passes (moved here, as the test cannot wait for it).
    app.query("UPDATE key_blocks SET until = 0")
        .expect("the key blocks");
    app.query("UPDATE outbox SET not_before = 0")
        .expect("the outbox");
    app.advance(SPACING);
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["sent"], 1, "one a slot: {ticked}");
    app.advance(SPACING);
    let last = tick(&app, "").await;
    assert_eq!(last["sent"], 1, "{last}");
    assert_eq!(sims.kendo.accepted().len(), 2);
}

/// Kendo creates the call but its answer is lost (the connection closes):
/// the call may be in Kendo, so it is flagged and counted, and re-sent
/// once (Kendo documents no idempotency key); that is the one way a call
/// reaches Kendo twice, and `deliveries --maybe-duplicated` names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_flagged_and_the_call_re_sent_once() {
    let (sims, app) = started().await;
    sims.kendo.drop_after_create_next(1);
    deliver_call(&app, 14).await;
    assert_eq!(
        app.query("SELECT state, reason_code, maybe_duplicated FROM ledger WHERE source_id = '14'")
            .expect("the ledger"),
        vec![vec!["queued".to_string(), "answer-lost".into(), "1".into()]]
    );
    // Its re-send time comes (moved here: it is minutes away).
    app.query("UPDATE outbox SET not_before = 0")
        .expect("the outbox");
    app.advance(SPACING);
    let ticked = tick(&app, "").await;
    assert_eq!(ticked["sent"], 1, "{ticked}");
    assert_eq!(
        sims.kendo.accepted().len(),
        2,
        "created twice: the lost one and the re-send"
    );
    assert_eq!(
        app.query("SELECT state, maybe_duplicated FROM ledger WHERE source_id = '14'")
            .expect("the ledger"),
        vec![vec!["sent".to_string(), "1".into()]]
    );
    assert_eq!(
        app.query("SELECT value FROM counters WHERE name = 'resent_after_lost_answer'")
            .expect("the counters"),
        vec![vec!["1".to_string()]]
    );
}

/// A polled Salesloft call whose call data record has not been read waits
/// for it a bounded time (the host's `direction_wait`), then goes without a
/// direction, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesloft_call_without_its_record_waits_then_goes_without_a_direction() {
    let sims = salesloft_with_a_call().await;
    let app = salesloft_polling_app(&sims, &[("salesloft_direction_wait_seconds", "300")]);
    tick(&app, "").await;
    assert!(sims.kendo.accepted().is_empty(), "it waits for its record");
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '62000'")
            .expect("the ledger"),
        vec![vec![
            "waiting".to_string(),
            "call-data-record-pending".into()
        ]]
    );
    app.advance(std::time::Duration::from_secs(301));
    tick(&app, "").await;
    let ticked = tick(&app, "").await;
    assert!(ticked["salesloftPoll"]["error"].is_null(), "{ticked}");
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1, "{ticked}");
    assert!(accepted[0].body["metadata"]["salesloftDirection"].is_null());
}

/// A tick lasts up to `tick_seconds` and sends at the key's rate for that
/// long, waiting for each next slot inside the tick: a backlog drains at
/// thirty a minute from the documented schedule, not one call a tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_sends_at_the_keys_rate_until_its_time_is_up() {
    let (sims, app) = started_with(&[("tick_seconds", "5")]).await;
    for n in 0..6u64 {
        deliver_call(&app, 2_000 + n).await;
    }
    assert_eq!(sims.kendo.accepted().len(), 1, "the window holds the rest");
    let started = std::time::Instant::now();
    let ticked = tick(&app, "").await;
    let took = started.elapsed();
    let accepted = sims.kendo.accepted();
    // Slots every 2.02 s from the first send: two more fit in 5 s.
    assert!(
        (3..=4).contains(&accepted.len()),
        "{} sent: {ticked}",
        accepted.len()
    );
    assert_eq!(ticked["sent"], accepted.len() - 1, "{ticked}");
    assert!(took <= std::time::Duration::from_secs(7), "{took:?}");
    for pair in accepted.windows(2) {
        let gap = pair[1].arrived_at - pair[0].arrived_at;
        assert!(
            gap >= std::time::Duration::from_millis(1_900),
            "sends {gap:?} apart"
        );
    }
    assert_eq!(sims.kendo.stats().rate_limited_429, 0);
}

/// A body larger than `max_body_bytes` is answered 413 before it is read
/// (by its declared length) or as soon as it passes the limit (a body sent
/// without one), and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_answered_413_and_nothing_is_stored() {
    let (_sims, app) = started_with(&[("max_body_bytes", "1000")]).await;
    // The database made (a first request opens it), so that "nothing
    // stored" reads an empty inbox.
    app.request("GET", "/status", &[], "")
        .await
        .expect("status");
    let bearer = format!("Bearer {SECRET}");
    let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(2_000));
    let declared = body.len().to_string();
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![
            ("authorization", bearer.as_str()),
            ("content-length", declared.as_str()),
        ],
    ] {
        let answer = app
            .request("POST", "/webhooks/aloware", &headers, body.clone())
            .await
            .expect("the app answers");
        assert_eq!(answer.status, 413, "{}", answer.body);
        assert!(answer.body.contains("max_body_bytes"), "{}", answer.body);
    }
    assert_eq!(
        app.query("SELECT COUNT(*) FROM inbox").expect("the inbox"),
        vec![vec!["0".to_string()]]
    );
}

/// A send the runtime refuses (Spin's `allowed_outbound_hosts` not listing
/// the Kendo URL) left nothing: the call stays queued (never
/// outcome-unknown), `GET /status` names the problem, and once the host is
/// allowed the call goes, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_runtime_refuses_is_a_named_problem_and_goes_once_allowed() {
    let (sims, app) = started().await;
    app.allow_outbound(Some(vec!["app.kendo.ai".into()]));
    deliver_call(&app, 51).await;
    assert!(sims.kendo.requests().is_empty(), "nothing left");
    assert_eq!(
        app.query("SELECT state, reason_code, attempts FROM ledger WHERE source_id = '51'")
            .expect("the ledger"),
        vec![vec![
            "queued".to_string(),
            "send-refused".into(),
            "0".into()
        ]]
    );
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
    let problems = status["problems"].to_string();
    assert!(
        problems.contains("kendo") && problems.contains("allowed_outbound_hosts"),
        "{status}"
    );
    assert_eq!(status["calls"]["outcome-unknown"], 0, "{status}");
    // The manifest fixed: the next tick after the retry sends it once.
    app.allow_outbound(None);
    app.advance(std::time::Duration::from_secs(16));
    tick(&app, "").await;
    tick(&app, "").await;
    assert_eq!(sims.kendo.accepted().len(), 1);
    assert!(sims.kendo.duplicates().is_empty());
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    assert!(
        !status.body.contains("allowed_outbound_hosts"),
        "{}",
        status.body
    );
}

/// A stored delivery whose processing failed shows in `GET /status` from
/// its first failure, with the reason, before anything closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_delivery_shows_in_status_from_its_first_failure() {
    let (sims, call_id) = hubspot_with_a_call().await;
    let app = hubspot_app(&sims, &[("hubspot_token", "pat-not-a-valid-token")]);
    let answer = post_hubspot(&app, call_created_event(call_id)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = app
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
    let deliveries = status["deliveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(deliveries.len(), 1, "{status}");
    assert_eq!(deliveries[0]["source"], "hubspot");
    assert!(
        deliveries[0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("401")),
        "{status}"
    );
}

/// A Salesloft transcript read while its call waits for its call data
/// record decides the call again, still waiting; when the wait ends the
/// call goes, with its transcript and without a direction (its release
/// is newer than the transcript's decision: the core's versions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesloft_transcript_read_during_the_direction_wait_goes_when_the_wait_ends() {
    let sims = salesloft_with_a_call().await;
    let app = salesloft_polling_app(
        &sims,
        &[
            ("salesloft_transcripts", "true"),
            ("salesloft_direction_wait_seconds", "300"),
        ],
    );
    tick(&app, "").await;
    sims.salesloft
        .transcribe(62_000, &[("Sam Rivera", "Thanks for taking the call.")])
        .expect("the call is transcribed");
    app.advance(std::time::Duration::from_secs(60));
    tick(&app, "").await;
    assert!(sims.kendo.accepted().is_empty(), "it still waits");
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '62000'")
            .expect("the ledger"),
        vec![vec![
            "waiting".to_string(),
            "call-data-record-pending".into()
        ]]
    );
    app.advance(std::time::Duration::from_secs(301));
    tick(&app, "").await;
    tick(&app, "").await;
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1, "released when the wait ends");
    assert!(
        accepted[0]
            .field("transcript")
            .is_some_and(|t| t.contains("Thanks for taking the call.")),
        "{:?}",
        accepted[0].field("transcript")
    );
    assert!(accepted[0].body["metadata"]["salesloftDirection"].is_null());
}

/// The example mapper built for `lang` (examples/mappers/, built by `./dev
/// test` into the directory KENDO_BRIDGE_MAPPERS names), or `None` (the
/// test says it was skipped) when the examples were not built.
fn example_mapper(lang: &str) -> Option<std::path::PathBuf> {
    let Some(dir) = std::env::var_os("KENDO_BRIDGE_MAPPERS") else {
        eprintln!(
            "skipped: KENDO_BRIDGE_MAPPERS is not set (./dev test builds the example mappers)"
        );
        return None;
    };
    Some(std::path::Path::new(&dir).join(format!("{lang}.wasm")))
}

/// The app with the example mapper for `lang` plugged into its plugin, the
/// Aloware secret, and the captured rep (4242) as Nina.
async fn started_with_mapper(lang: &str) -> Option<(Simulators, SpinApp)> {
    let mapper = example_mapper(lang)?;
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let variables = HashMap::from(
        [
            ("kendo_api_key", DEMO_KENDO_KEY.to_string()),
            ("kendo_url", sims.kendo_url()),
            ("tick_seconds", "0".into()),
            ("aloware_secret", SECRET.into()),
            (
                "rep_directory",
                r#"[{"key": "4242", "email": "nina@yourco.com", "name": "Nina Park"}]"#.into(),
            ),
            ("aloware_transcript_wait_seconds", "0".into()),
        ]
        .map(|(name, value)| (name.to_string(), value)),
    );
    let app = SpinApp::load_with_mapper(&SpinApp::built_component(), &mapper, variables)
        .unwrap_or_else(|e| panic!("the app loads with the {lang} mapper: {e:#}"));
    Some((sims, app))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_rust_example_mapper_ninas_call_goes_to_the_partners_desk() {
    let Some((sims, app)) = started_with_mapper("rust").await else {
        return;
    };
    deliver_call(&app, 940_868_616).await;
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].field("repEmail"),
        Some("partners-desk@yourco.com")
    );
    assert_eq!(
        accepted[0].body["metadata"]["routedFrom"], "nina@yourco.com",
        "{}",
        accepted[0].body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_js_example_mapper_a_66_second_call_is_skipped() {
    let Some((sims, app)) = started_with_mapper("js").await else {
        return;
    };
    deliver_call(&app, 940_868_616).await;
    assert!(sims.kendo.accepted().is_empty(), "nothing reaches Kendo");
    assert_eq!(
        app.query("SELECT state, reason_code FROM ledger WHERE source_id = '940868616'")
            .expect("the ledger"),
        vec![vec!["skipped".to_string(), "by-mapper".to_string()]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_python_example_mapper_the_campaign_is_in_the_metadata() {
    let Some((sims, app)) = started_with_mapper("python").await else {
        return;
    };
    deliver_call(&app, 940_868_616).await;
    let accepted = sims.kendo.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].body["metadata"]["campaignId"], "63949",
        "{}",
        accepted[0].body
    );
}

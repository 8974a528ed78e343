//! The Spin app, built as `spin build` builds it, run in the test host
//! against the simulated Kendo: Aloware webhooks in, calls out, and what
//! Kendo's answers do to them (the core crate's rules, carried out on
//! Spin's key-value store).

use std::collections::HashMap;

use kendo_bridge_sim::aloware::{AlowareCall, captured_completed_call};
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

const KENDO_WEBHOOK_SECRET: &str = "spin-test-kendo-webhook-secret";

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

/// A tick does what the core says is due: a delivery deferred for a
/// person's fix is left alone, and the answer says when it is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_leaves_a_deferred_delivery_until_it_is_due_and_says_when() {
    let (sims, call_id) = hubspot_with_a_call().await;
    let app = hubspot_app(&sims, &[("hubspot_token", "pat-not-a-valid-token")]);
    let answer = post_hubspot(&app, call_created_event(call_id)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let ticked = tick(&app, "").await;
    assert_eq!(
        ticked["inbox"],
        serde_json::json!({ "processed": 0, "deferred": 0, "closed": 0 }),
        "{ticked}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let inbox_due = ticked["nextDue"]["inbox"].as_i64();
    assert!(
        inbox_due.is_some_and(|at| at > now + 60_000),
        "a refused token waits the longest back-off: {ticked}"
    );
    assert_eq!(
        ticked["nextDue"]["earliest"].as_i64(),
        inbox_due,
        "{ticked}"
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

/// `database_sync` decides how the app's commits reach the disk, and
/// `GET /status` says what the connection runs with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_wait_for_the_disk_only_when_database_sync_is_full() {
    for (set, expected) in [("", "normal"), ("full", "full"), ("sometimes", "normal")] {
        let (_sims, app) = started_with(&[("database_sync", set)]).await;
        let status = app
            .request("GET", "/status", &[], "")
            .await
            .expect("status");
        let status: Value = serde_json::from_str(&status.body).expect("status is JSON");
        assert_eq!(
            status["databaseSync"], expected,
            "database_sync = {set:?}: {status}"
        );
    }
}

//! The Spin app on a real `spin up` (the shipped spin.toml, the plugin
//! composed by Spin from `[component.bridge.dependencies]`), against the
//! simulators: what the wasmtime test host cannot show.
//!
//! Each test needs a Spin CLI (`SPIN_BIN`, `target/spin-cli`, or `spin` on
//! `PATH`). Without one it says it was skipped and why, and passes; with
//! `KENDO_BRIDGE_REAL_SPIN=1` (set by `./dev test` when it unpacked the
//! CLI from `../shared/tools/spin/`) a missing CLI fails it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kendo_bridge_sim::aloware::{AlowareCall, captured_completed_call};
use kendo_bridge_sim::{DEMO_KENDO_KEY, SimOptions, Simulators};
use kendo_bridge_spin_host::real::{self, RealSpin};
use serde_json::{Value, json};

const ALOWARE_SECRET: &str = "real-spin-aloware-secret";
const HUBSPOT_CLIENT_SECRET: &str = "real-spin-hubspot-client-secret";
const KENDO_WEBHOOK_SECRET: &str = "real-spin-kendo-webhook-secret";
const SALESLOFT_SECRET: &str = "real-spin-salesloft-secret";
const RECORDING: &str = "https://app.aloware.io/static/recording/real-spin";

/// The Spin CLI, or None when the test is skipped (said on stderr).
fn spin_cli(test: &str) -> Option<PathBuf> {
    match real::cli() {
        Ok(cli) => Some(cli),
        Err(why) => {
            assert!(
                std::env::var("KENDO_BRIDGE_REAL_SPIN").as_deref() != Ok("1"),
                "KENDO_BRIDGE_REAL_SPIN=1 but {why}"
            );
            eprintln!("{test}: skipped: {why}");
            None
        }
    }
}

/// A scratch directory for one test's database and Spin state.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn manifest() -> PathBuf {
    real::root().join("spin.toml")
}

/// The variables every test gives the app.
fn base_variables(sims: &Simulators) -> Vec<(String, String)> {
    vec![
        ("kendo_api_key".into(), DEMO_KENDO_KEY.into()),
        ("kendo_url".into(), sims.kendo_url()),
        ("aloware_secret".into(), ALOWARE_SECRET.into()),
        (
            "rep_directory".into(),
            r#"[{"key": "4242", "email": "sam@yourco.com", "name": "Sam Rivera"}]"#.into(),
        ),
        ("aloware_transcript_wait_seconds".into(), "0".into()),
        ("tick_seconds".into(), "0".into()),
    ]
}

fn start(
    cli: &Path,
    manifest: &Path,
    dir: &Path,
    name: &str,
    variables: &[(String, String)],
) -> RealSpin {
    let pairs: Vec<(&str, &str)> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    RealSpin::start(
        cli,
        manifest,
        &dir.join("bridge.db"),
        &dir.join(name),
        &pairs,
    )
    .unwrap_or_else(|e| panic!("spin up starts: {e:#}"))
}

fn query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(dir.join("bridge.db")).expect("the shared database");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("a timeout");
    let mut stmt = conn.prepare(sql).expect("the query");
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(v) => String::from_utf8_lossy(v).into_owned(),
                    rusqlite::types::ValueRef::Blob(v) => format!("<{} bytes>", v.len()),
                })
            })
            .collect()
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("readable rows")
}

/// Waits (polling) until `done` holds: a webhook is answered once it is
/// stored, and processed after the answer.
async fn eventually(what: &str, spin: &RealSpin, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} within 60 s; spin up said:\n{}",
            spin.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn aloware_call(id: u64) -> AlowareCall {
    AlowareCall::captured(id, 4_242)
}

/// Posts the captured Aloware deliveries that make call `id` ready.
async fn deliver_aloware(spin: &RealSpin, id: u64) {
    let bearer = format!("Bearer {ALOWARE_SECRET}");
    for step in captured_completed_call(&aloware_call(id), RECORDING, "summary", "Rep: hi")
        .iter()
        .take(3)
    {
        let answer = spin
            .request(
                "POST",
                "/webhooks/aloware",
                &[
                    ("content-type", "application/json"),
                    ("authorization", bearer.as_str()),
                ],
                step.payload.to_string(),
            )
            .await
            .expect("spin answers");
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
}

async fn tick(spin: &RealSpin) -> Value {
    let answer = spin
        .request("POST", "/tick", &[], "")
        .await
        .expect("spin answers");
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, spin.log_text());
    serde_json::from_str(&answer.body).expect("a tick answers JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_spin_each_sources_signed_webhooks_reach_kendo_once() {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let Some(cli) = spin_cli("on_a_real_spin_each_sources_signed_webhooks_reach_kendo_once") else {
        return;
    };
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let hubspot_call = sims.hubspot.add_sams_recorded_call();
    let dir = scratch();
    let mut variables = base_variables(&sims);
    variables.extend([
        ("hubspot_client_secret".into(), HUBSPOT_CLIENT_SECRET.into()),
        (
            "hubspot_token".into(),
            kendo_bridge_sim::DEMO_HUBSPOT_TOKEN.into(),
        ),
        ("hubspot_api_url".into(), sims.hubspot_url()),
        ("salesloft_secret".into(), SALESLOFT_SECRET.into()),
        ("kendo_webhook_secret".into(), KENDO_WEBHOOK_SECRET.into()),
    ]);
    let spin = start(&cli, &manifest(), dir.path(), "one", &variables);

    // Aloware: the captured deliveries, twice (a replay is recognised).
    deliver_aloware(&spin, 71).await;
    deliver_aloware(&spin, 71).await;
    eventually("the Aloware call in Kendo", &spin, || {
        sims.kendo.accepted().len() == 1
    })
    .await;

    // HubSpot: a v1-signed creation event naming the call.
    let body = json!([{"eventId": 1, "subscriptionType": "object.creation",
        "objectId": hubspot_call, "objectTypeId": "0-48", "occurredAt": 1_776_870_000_000_i64}])
    .to_string();
    let signature = hex::encode(Sha256::digest(
        format!("{HUBSPOT_CLIENT_SECRET}{body}").as_bytes(),
    ));
    let answer = spin
        .request(
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
        .expect("spin answers");
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Salesloft: a signed `call_updated` for a captured call (the repo's
    // fixture), mapped by the plugin Spin composed in.
    let fixture = real::root().join("tests/fixtures/seed-examples/inputs/salesloft-call.json");
    let call: Value =
        serde_json::from_slice(&std::fs::read(fixture).expect("the fixture")).expect("JSON");
    let body = call.to_string();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SALESLOFT_SECRET.as_bytes()).expect("a key");
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let answer = spin
        .request(
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
        .expect("spin answers");
    assert_eq!(answer.status, 200, "{}", answer.body);
    eventually("every delivery processed", &spin, || {
        query(
            dir.path(),
            "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL",
        ) == vec![vec!["0".to_string()]]
    })
    .await;
    tick(&spin).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    tick(&spin).await;
    let sources: Vec<String> = query(
        dir.path(),
        "SELECT source || ':' || state FROM ledger ORDER BY source",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    assert!(
        sources.contains(&"aloware:sent".to_string())
            && sources.contains(&"hubspot:sent".to_string())
            && sources.iter().any(|s| s.starts_with("salesloft:")),
        "{sources:?}\n{}",
        spin.log_text()
    );
    assert!(sims.kendo.duplicates().is_empty());

    // Kendo's signed score for the Aloware call, kept once.
    let accepted = sims.kendo.accepted();
    let event = sims.kendo.call_uploaded_event(&accepted[0], 88);
    for _ in 0..2 {
        let delivery = sims
            .kendo
            .send_webhook(
                &format!("{}/webhooks/kendo", spin.url),
                KENDO_WEBHOOK_SECRET,
                &event,
            )
            .await;
        assert!(delivery.delivered, "{:?}", delivery.attempts);
    }
    eventually("the score stored", &spin, || {
        query(dir.path(), "SELECT COUNT(*) FROM kendo_results") == vec![vec!["1".to_string()]]
    })
    .await;
    // One line per decision in Spin's component log, and no secret.
    let log = spin.log_text();
    assert!(
        log.contains(r#""event":"stored""#) && log.contains(r#""event":"sent""#),
        "{log}"
    );
    for secret in [
        ALOWARE_SECRET,
        HUBSPOT_CLIENT_SECRET,
        SALESLOFT_SECRET,
        KENDO_WEBHOOK_SECRET,
        DEMO_KENDO_KEY,
    ] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

/// A backlog on two `spin up` processes sharing one database: each tick
/// waits for the key's next slot inside itself, so two ticks at once send
/// at the key's rate between them (sends two seconds apart, no 429, no
/// duplicate), not one call a tick each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_spin_two_processes_tick_a_backlog_at_the_keys_rate() {
    let Some(cli) = spin_cli("on_a_real_spin_two_processes_tick_a_backlog_at_the_keys_rate") else {
        return;
    };
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let dir = scratch();
    let mut variables = base_variables(&sims);
    variables.retain(|(k, _)| k != "tick_seconds");
    variables.push(("tick_seconds".into(), "7".into()));
    let one = start(&cli, &manifest(), dir.path(), "one", &variables);
    let two = start(&cli, &manifest(), dir.path(), "two", &variables);
    for n in 0..5u64 {
        deliver_aloware(&one, 80 + n).await;
        deliver_aloware(&two, 90 + n).await;
    }
    eventually("every delivery processed", &one, || {
        query(
            dir.path(),
            "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL",
        ) == vec![vec!["0".to_string()]]
    })
    .await;
    let before = sims.kendo.accepted().len();
    let (a, b) = tokio::join!(tick(&one), tick(&two));
    let accepted = sims.kendo.accepted();
    let during = accepted.len() - before;
    // 7 s of two ticks at one send every 2.02 s: three or four more, not
    // the eight two independent windows would send.
    assert!(
        (3..=5).contains(&during),
        "{during} sent by two ticks: {a} {b}"
    );
    for pair in accepted.windows(2) {
        let gap = pair[1].arrived_at - pair[0].arrived_at;
        assert!(gap >= Duration::from_millis(1_900), "sends {gap:?} apart");
    }
    assert_eq!(sims.kendo.stats().rate_limited_429, 0);
    assert!(sims.kendo.duplicates().is_empty());
    let queued = query(
        dir.path(),
        "SELECT COUNT(*) FROM ledger WHERE state = 'queued'",
    );
    assert_eq!(
        queued[0][0].parse::<usize>().unwrap_or(0) + accepted.len(),
        10,
        "every call sent or queued"
    );
}

/// spin.toml with its outbound hosts fixed to Kendo's production URL (as
/// it once shipped), its paths made absolute so it runs from `dir`.
fn manifest_allowing_only_production(dir: &Path) -> PathBuf {
    let root = real::root();
    let root = root.display();
    let text = std::fs::read_to_string(manifest()).expect("spin.toml");
    let text = text
        .lines()
        .map(|line| {
            if line.starts_with("allowed_outbound_hosts") {
                r#"allowed_outbound_hosts = ["https://app.kendo.ai"]"#.to_string()
            } else {
                line.replace("\"target/", &format!("\"{root}/target/"))
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).expect("a manifest");
    path
}

/// A `kendo_url` the manifest does not allow: Spin refuses the request
/// before it leaves; the call stays queued (never outcome-unknown),
/// `GET /status` names the problem, and once the shipped manifest (which
/// allows the URL from the variable) runs on the same database, the call
/// goes, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_spin_a_kendo_url_spin_refuses_is_a_named_problem_until_allowed() {
    let Some(cli) =
        spin_cli("on_a_real_spin_a_kendo_url_spin_refuses_is_a_named_problem_until_allowed")
    else {
        return;
    };
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let dir = scratch();
    let variables = base_variables(&sims);
    let refusing = manifest_allowing_only_production(dir.path());
    let spin = start(&cli, &refusing, dir.path(), "refusing", &variables);
    deliver_aloware(&spin, 61).await;
    eventually("the send refused and recorded", &spin, || {
        query(
            dir.path(),
            "SELECT reason_code FROM ledger WHERE source_id = '61'",
        ) == vec![vec!["send-refused".to_string()]]
    })
    .await;
    assert!(sims.kendo.requests().is_empty(), "nothing left");
    let status = spin
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    assert!(
        status.body.contains("allowed_outbound_hosts"),
        "{}",
        status.body
    );
    assert!(
        status.body.contains(r#""outcome-unknown":0"#),
        "{}",
        status.body
    );
    drop(spin);

    let spin = start(&cli, &manifest(), dir.path(), "fixed", &variables);
    let due = Instant::now()
        + Duration::from_millis(
            u64::try_from(kendo_bridge_core::answer::MISCONFIGURED_RETRY_MS).unwrap_or(0),
        );
    tokio::time::sleep_until(due.into()).await;
    tick(&spin).await;
    assert_eq!(sims.kendo.accepted().len(), 1, "{}", spin.log_text());
    tick(&spin).await;
    assert_eq!(sims.kendo.accepted().len(), 1, "exactly once");
    let status = spin
        .request("GET", "/status", &[], "")
        .await
        .expect("status");
    assert!(
        !status.body.contains("allowed_outbound_hosts"),
        "{}",
        status.body
    );
}

/// Resident memory of process `pid`, in kB (Linux).
fn rss_kb(pid: u32) -> Option<u64> {
    // `spin up` runs the app in a child process (`spin trigger http`): the
    // memory that matters is the child's, so both are counted.
    let own = |pid: &str| -> Option<(u32, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some((field("PPid:")? as u32, field("VmRSS:")?))
    };
    let mut total = own(&pid.to_string())?.1;
    let mut children = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((parent, rss)) = own(name)
            && parent == pid
        {
            total += rss;
            children += 1;
        }
    }
    // Without the trigger process the measure would miss the app.
    (children > 0).then_some(total)
}

/// A 64 MB body with the right secret is answered 413 before it is read:
/// the process grows by less than 16 MB and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_spin_a_64_mb_body_is_refused_before_it_is_read() {
    let Some(cli) = spin_cli("on_a_real_spin_a_64_mb_body_is_refused_before_it_is_read") else {
        return;
    };
    let sims = Simulators::start(SimOptions::default())
        .await
        .expect("the simulators start");
    let dir = scratch();
    let spin = start(&cli, &manifest(), dir.path(), "one", &base_variables(&sims));
    // Warm: the first request compiles and instantiates, and makes the
    // database, so that "nothing stored" reads an empty inbox.
    spin.request("GET", "/status", &[], "")
        .await
        .expect("spin answers");
    let before = rss_kb(spin.pid()).expect("spin's memory");
    let bearer = format!("Bearer {ALOWARE_SECRET}");
    let body = vec![b'x'; 64 * 1024 * 1024];
    let answer = spin
        .request(
            "POST",
            "/webhooks/aloware",
            &[("authorization", bearer.as_str())],
            body,
        )
        .await;
    let after = rss_kb(spin.pid()).expect("spin's memory");
    eprintln!("spin up's resident memory: {before} kB before the 64 MB body, {after} kB after");
    // Spin may close the connection once it has answered, before the
    // client has sent the whole body: then the client sees no answer.
    if let Ok(answer) = &answer {
        assert_eq!(answer.status, 413, "{}", answer.body);
    }
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "spin grew from {before} kB to {after} kB"
    );
    assert_eq!(
        query(dir.path(), "SELECT COUNT(*) FROM inbox"),
        vec![vec!["0".to_string()]]
    );
    assert!(
        spin.log_text().contains("max_body_bytes"),
        "{}",
        spin.log_text()
    );
}

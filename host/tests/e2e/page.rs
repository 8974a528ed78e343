//! The status page at `GET /` of a running bridge: what a person sees
//! matches the state database, in the server's own HTML and, with
//! `KENDO_BRIDGE_BROWSER=1` (`./dev test` sets it), in a real headless
//! Chromium after the page's script has updated it; replay and resume from
//! the page need the operator token; nothing secret is ever on it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::{KEY, PATIENCE, Running, TEAM, client, eventually, sql_count, staged};
use kendo_bridge::demo::{
    ALOWARE_SECRET, HUBSPOT_CLIENT_SECRET, KENDO_WEBHOOK_SECRET, SALESLOFT_CALLBACK_TOKEN,
    StageOptions,
};
use kendo_bridge::store::State;
use kendo_bridge_core::ledger;
use kendo_bridge_sim::Dataset;
use kendo_bridge_sim::dataset::Change;

const OPERATOR_TOKEN: &str = "page-test-operator-token-4f1c";

/// Every `data-k="key"` on the page with the text of its element.
fn values(html: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = html;
    while let Some(at) = rest.find("data-k=\"") {
        rest = &rest[at + 8..];
        let Some(end) = rest.find('"') else { break };
        let key = rest[..end].to_string();
        let Some(open) = rest.find('>') else { break };
        let text_start = &rest[open + 1..];
        let text = text_start.split('<').next().unwrap_or("").to_string();
        out.insert(key, text);
        rest = text_start;
    }
    out
}

fn shown<'a>(page: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    page.get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("the page shows no `{key}`; it shows {page:#?}"))
}

/// A world with sent calls (some scored), skipped and waiting calls, a
/// result for a call the bridge never sent, and a paused key.
async fn populated(options: StageOptions) -> Running {
    let (dir, stage) = staged(Dataset::demo(7), options).await;
    let bridge = Running::serve(dir, stage);
    let stage = &bridge.stage;
    let _ = stage.deliver_aloware().await;
    // Later in the day, once the bridge has seen them: recordings finish,
    // calls in progress end.
    let changing: Vec<(&str, String)> = stage
        .dataset
        .later
        .iter()
        .map(|c| match c {
            Change::SalesloftRecordingFinishes { call_id, .. } => {
                ("salesloft", call_id.to_string())
            }
            Change::HubspotUpdate { call_id, .. } => ("hubspot", call_id.to_string()),
        })
        .collect();
    eventually("the bridge has seen every call that changes later", || {
        changing
            .iter()
            .all(|(source, id)| bridge.row(source, id).is_some())
    })
    .await;
    stage
        .dataset
        .apply_later(&stage.sims)
        .expect("the later changes apply");
    eventually("every call that should reach Kendo did", || {
        stage.all_expected_sent()
    })
    .await;
    let accepted = stage.sims.kendo.accepted();
    // Scores for the three calls sent last (so among the recent deliveries
    // the page lists), and one for a call Kendo got elsewhere.
    let latest: Vec<String> = bridge
        .ledger()
        .into_iter()
        .filter_map(|r| r.kendo_call_id)
        .take(3)
        .collect();
    let mut events: Vec<_> = accepted
        .iter()
        .filter(|call| latest.contains(&call.call_id))
        .enumerate()
        .map(|(i, call)| stage.sims.kendo.call_uploaded_event(call, 70 + i as u32))
        .collect();
    assert_eq!(events.len(), 3, "Kendo accepted the calls the ledger sent");
    let mut stranger = accepted[0].clone();
    stranger.call_id = "call_from_another_integration".into();
    events.push(stage.sims.kendo.call_uploaded_event(&stranger, 55));
    for event in &events {
        let delivery = stage
            .sims
            .kendo
            .send_webhook(&stage.webhook_url("kendo"), KENDO_WEBHOOK_SECRET, event)
            .await;
        assert!(delivery.delivered, "the score webhook is accepted");
    }
    eventually("the scores are recorded", || {
        bridge
            .ledger()
            .iter()
            .filter(|r| r.ai_score.is_some())
            .count()
            == 3
    })
    .await;
    eventually("the result for an unknown call is recorded", || {
        sql_count(&bridge.db(), "SELECT COUNT(*) FROM kendo_results") == 4
    })
    .await;
    // Paused as a 401 pauses it: under the configured key's fingerprint
    // (another fingerprint would mean the key changed, which lifts it).
    let fingerprint = kendo_bridge::delivery::TeamKey {
        team: TEAM.into(),
        api_key: KEY.into(),
    }
    .fingerprint();
    let now = crate::support::now_ms();
    bridge
        .store
        .run_here(|s| {
            Ok(ledger::send::pause(
                s.database(),
                TEAM,
                "Kendo answered 401: the key was refused",
                &fingerprint,
                now,
            )?)
        })
        .expect("the pause is stored");
    bridge
}

type Listed = (State, Option<String>, Option<f64>);

/// The numbers the ledger holds for the test's team, read on their own
/// (not through the page's code).
#[derive(Debug, PartialEq)]
struct Expected {
    by_state: BTreeMap<&'static str, u64>,
    skipped: BTreeMap<String, u64>,
    /// Per call: state, Kendo callId and score (what the page lists).
    rows: BTreeMap<String, Listed>,
    queue: i64,
    requests: i64,
}

fn expected(bridge: &Running) -> Expected {
    let ledger = bridge.ledger();
    let mut by_state: BTreeMap<&'static str, u64> =
        State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut skipped = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for r in ledger {
        assert_eq!(r.key.team, TEAM, "one team in this world");
        *by_state.entry(r.state.as_str()).or_default() += 1;
        if r.state == State::Skipped {
            *skipped
                .entry(r.reason_code.clone().unwrap_or_default())
                .or_default() += 1;
        }
        rows.insert(
            format!(
                "delivery/{}/{}/{}",
                r.key.source, r.key.source_id, r.key.team
            ),
            (r.state, r.kendo_call_id.clone(), r.ai_score),
        );
    }
    Expected {
        by_state,
        skipped,
        rows,
        queue: sql_count(
            &bridge.db(),
            "SELECT COUNT(*) FROM ledger WHERE state IN ('queued', 'sending')",
        ),
        requests: sql_count(&bridge.db(), "SELECT COUNT(*) FROM sends"),
    }
}

/// Fails unless `html` shows exactly what `want` holds.
fn assert_page_shows(html: &str, want: &Expected, bridge: &Running) {
    let page = values(html);
    for (state, n) in &want.by_state {
        assert_eq!(
            shown(&page, &format!("team/{TEAM}/{state}")),
            n.to_string(),
            "calls {state}"
        );
    }
    assert!(want.by_state["sent"] > 0 && want.by_state["skipped"] > 0);
    assert_eq!(
        shown(&page, &format!("team/{TEAM}/queue")),
        want.queue.to_string()
    );
    for (code, n) in &want.skipped {
        assert_eq!(
            shown(&page, &format!("skipped/{code}")),
            n.to_string(),
            "skipped {code}"
        );
    }
    assert_eq!(shown(&page, &format!("paused/{TEAM}")), TEAM);
    assert_eq!(shown(&page, "unmatched/count"), "1");
    // The chart counts every request Kendo received.
    let kendo_requests = bridge.stage.sims.kendo.stats().requests as i64;
    assert_eq!(want.requests, kendo_requests);
    assert_eq!(
        shown(&page, &format!("chart/{TEAM}/total")),
        kendo_requests.to_string()
    );
    let listed: Vec<&String> = page
        .keys()
        .filter(|k| k.starts_with("delivery/") && k.ends_with("/state"))
        .collect();
    assert_eq!(
        listed.len(),
        want.rows.len().min(25),
        "the recent deliveries are listed"
    );
    let mut scores = 0;
    for key in listed {
        let base = key.trim_end_matches("/state");
        let (state, call_id, ai_score) = want
            .rows
            .get(base)
            .unwrap_or_else(|| panic!("{base} is on the page but not in the ledger"));
        assert_eq!(page[key], state.as_str(), "{base}'s state");
        assert_eq!(
            shown(&page, &format!("{base}/callId")),
            call_id.as_deref().unwrap_or("-"),
            "{base}'s Kendo callId"
        );
        let score = ai_score.map_or("-".to_string(), |s| format!("{s:.0}"));
        if ai_score.is_some() {
            scores += 1;
        }
        assert_eq!(
            shown(&page, &format!("{base}/score")),
            score,
            "{base}'s score"
        );
    }
    assert!(scores > 0, "a scored call is among the recent ones");
}

/// The secrets the stage configures: none may be on the page.
fn assert_no_secret(text: &str) {
    for secret in [
        KEY,
        OPERATOR_TOKEN,
        KENDO_WEBHOOK_SECRET,
        ALOWARE_SECRET,
        HUBSPOT_CLIENT_SECRET,
        SALESLOFT_CALLBACK_TOKEN,
        kendo_bridge_sim::DEMO_SALESLOFT_KEY,
        kendo_bridge_sim::DEMO_HUBSPOT_TOKEN,
    ] {
        assert!(!text.contains(secret), "a secret is on the page: {secret}");
    }
}

async fn get_text(url: &str) -> String {
    let response = client().get(url).send().await.expect("the bridge answers");
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.expect("a body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_numbers_the_ledger_holds_without_javascript() {
    let options = StageOptions {
        operator_token: Some(OPERATOR_TOKEN.into()),
        ..StageOptions::default()
    };
    let bridge = populated(options).await;
    let want = expected(&bridge);
    let url = &bridge.stage.bridge_url;
    let html = get_text(&format!("{url}/")).await;
    assert_eq!(expected(&bridge), want, "the ledger held still");
    assert_page_shows(&html, &want, &bridge);
    assert!(
        html.contains("<script src=\"/assets/page.js\"></script>"),
        "the script is the bridge's own"
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing from elsewhere"
    );
    assert_no_secret(&html);
    let page = client()
        .get(format!("{url}/"))
        .send()
        .await
        .expect("the bridge answers");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "the browser may load nothing but the bridge's own files: {csp}"
    );
    let api = get_text(&format!("{url}/api/status")).await;
    assert_no_secret(&api);
    let api: serde_json::Value = serde_json::from_str(&api).expect("JSON");
    let cli = crate::support::status_json(&bridge.db());
    assert_eq!(
        api["status"]["teams"], cli["teams"],
        "the page's data is what `status --json` prints"
    );
    assert_eq!(api["status"]["skipped"], cli["skipped"]);
    bridge.stop().await;
}

/// The Chromium to drive: `KENDO_BRIDGE_CHROMIUM`, or Debian's.
fn chromium() -> PathBuf {
    let path = std::env::var_os("KENDO_BRIDGE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "KENDO_BRIDGE_BROWSER=1 asks for the browser test, but there is no Chromium at {}: \
         install Debian's `chromium` (./dev test does) or set KENDO_BRIDGE_CHROMIUM",
        path.display()
    );
    path
}

/// The page's DOM after Chromium loaded it and ran its script.
async fn browser_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let mut command = tokio::process::Command::new(chromium());
    command
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
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("Chromium finishes")
        .expect("Chromium starts");
    assert!(
        output.status.success(),
        "Chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of `name="..."` on the `<body>` tag.
fn body_attribute(dom: &str, name: &str) -> String {
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or_else(|| panic!("no <body> in the DOM: {dom}"));
    let needle = format!("{name}=\"");
    body.split(&needle)
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_the_page_updates_itself_and_shows_the_numbers_the_ledger_holds() {
    if std::env::var("KENDO_BRIDGE_BROWSER").as_deref() != Ok("1") {
        eprintln!("browser part skipped: set KENDO_BRIDGE_BROWSER=1 (./dev test does)");
        return;
    }
    let options = StageOptions {
        operator_token: Some(OPERATOR_TOKEN.into()),
        ..StageOptions::default()
    };
    let bridge = populated(options).await;
    let want = expected(&bridge);
    let dom = browser_dom(&format!("{}/", bridge.stage.bridge_url)).await;
    assert_eq!(expected(&bridge), want, "the ledger held still");
    let updates: u32 = body_attribute(&dom, "data-updates").parse().unwrap_or(0);
    assert!(
        updates >= 1 && !body_attribute(&dom, "data-updated").is_empty(),
        "the page's script fetched /api/status and redrew the page: {dom}"
    );
    assert!(
        dom.contains("updates itself every"),
        "the page says it is live"
    );
    assert_page_shows(&dom, &want, &bridge);
    assert!(
        dom.contains("data-action=\"resume\""),
        "with an operator token the paused team has a Resume button"
    );
    assert_no_secret(&dom);
    bridge.stop().await;
}

async fn post(url: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the bridge answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_operator_token_the_page_is_read_only() {
    let (dir, stage) = staged(Dataset::backlog(1, 3), StageOptions::default()).await;
    let bridge = Running::serve(dir, stage);
    let url = bridge.stage.bridge_url.clone();
    let html = get_text(&format!("{url}/")).await;
    assert!(html.contains("Read-only"), "the page says it is read-only");
    assert!(!html.contains("<button"), "and offers no button");
    for (path, body) in [
        ("replay", "{}"),
        ("resume", &format!("{{\"team\":\"{TEAM}\"}}") as &str),
    ] {
        let (status, answer) = post(&format!("{url}/api/{path}"), Some("anything"), body).await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("server.operator_token")),
            "the refusal says how to turn it on: {answer}"
        );
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_team_is_resumed_from_the_page_only_with_the_operator_token() {
    let options = StageOptions {
        operator_token: Some(OPERATOR_TOKEN.into()),
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(3, 8), options).await;
    stage.sims.kendo.revoke_key(KEY);
    let bridge = Running::serve(dir, stage);
    let url = format!("{}/api/resume", bridge.stage.bridge_url);
    let paused = || {
        bridge
            .store
            .run_here(|s| Ok(kendo_bridge_core::ledger::send::paused(s.database(), TEAM)?))
            .expect("the store reads")
            .is_some()
    };
    eventually("the team is paused", paused).await;
    bridge.stage.sims.kendo.restore_key(KEY);
    let body = format!("{{\"team\":\"{TEAM}\"}}");
    for token in [None, Some("wrong-token"), Some("")] {
        let (status, answer) = post(&url, token, &body).await;
        assert_eq!(status, 401, "token {token:?}: {answer}");
    }
    assert!(paused(), "a refused request changed nothing");
    let (status, answer) = post(&url, Some(OPERATOR_TOKEN), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["resumed"], true);
    eventually("every call reached Kendo after the resume", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_from_the_page_with_the_operator_token() {
    let options = StageOptions {
        operator_token: Some(OPERATOR_TOKEN.into()),
        max_attempts: 2,
        retry_base: Duration::from_millis(100),
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(2, 9), options).await;
    stage.sims.kendo.fail_next(10_000, 503);
    let bridge = Running::serve(dir, stage);
    eventually("both calls are dead letters", || {
        let ledger = bridge.ledger();
        ledger.len() == 2 && ledger.iter().all(|r| r.state == State::Dead)
    })
    .await;
    let html = get_text(&format!("{}/", bridge.stage.bridge_url)).await;
    assert_eq!(
        html.matches("data-action=\"replay\"").count(),
        3,
        "each dead letter has a Replay button, and the team one for all"
    );
    assert_eq!(
        shown(&values(&html), "errors/dead/retries-exhausted"),
        "2",
        "the page says why they are dead"
    );
    bridge.stage.sims.kendo.clear_faults();
    let url = format!("{}/api/replay", bridge.stage.bridge_url);
    let (status, _) = post(&url, Some("not-the-token"), "{}").await;
    assert_eq!(status, 401);
    let (status, answer) = post(&url, Some(OPERATOR_TOKEN), "{}").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["replayed"], 2);
    eventually("the replayed calls reached Kendo", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    assert_eq!(bridge.stage.sims.kendo.duplicates(), vec![]);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keep_serving_leaves_the_page_up_showing_the_run_until_interrupted() {
    use tokio::io::AsyncBufReadExt;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = tokio::process::Command::from(crate::support::kendo_bridge());
    command
        .args(["demo", "--keep-serving", "--dir"])
        .arg(dir.path().join("demo"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut demo = command.spawn().expect("the demo starts");
    let stdout = demo.stdout.take().expect("the demo's output");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut summary = Vec::new();
    let last = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("the demo's output reads") {
            if line.trim_start().starts_with("status page:") {
                return line;
            }
            summary.push(line);
        }
        panic!("the demo ended without naming its page: {summary:#?}");
    })
    .await
    .expect("the demo finishes its run");
    let url = last
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the last line names the page's URL: {last}"))
        .to_string();
    assert!(
        last.contains("until Ctrl-C"),
        "the summary says the page stays up: {last}"
    );
    let accepted: String = summary
        .iter()
        .find_map(|l| l.trim().strip_prefix("Kendo accepted "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the summary says what Kendo accepted: {summary:#?}"))
        .to_string();

    // After the run, the page is still served and shows the run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = values(&get_text(&url).await);
    assert_eq!(shown(&page, &format!("team/{TEAM}/sent")), accepted);
    assert_eq!(shown(&page, &format!("team/{TEAM}/dead")), "0");

    let pid = demo.id().expect("the demo is running");
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = tokio::time::timeout(PATIENCE, demo.wait())
        .await
        .expect("the demo stops on Ctrl-C")
        .expect("the demo's exit status");
    assert!(status.success(), "the demo exits cleanly: {status:?}");
}

/// A WebDriver session on Debian's chromedriver, spoken over plain HTTP
/// (the W3C WebDriver protocol is JSON over HTTP: no client crate needed).
struct Browser {
    driver: tokio::process::Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let driver_path = std::env::var_os("KENDO_BRIDGE_CHROMEDRIVER")
            .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
        assert!(
            driver_path.exists(),
            "KENDO_BRIDGE_BROWSER=1 asks for the browser test, but there is no chromedriver at {}: \
             install Debian's `chromium-driver` (./dev test does) or set KENDO_BRIDGE_CHROMEDRIVER",
            driver_path.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = client();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let ready = match http.get(format!("{root}/status")).send().await {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver is ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let session = http
            .post(format!("{root}/session"))
            .json(&serde_json::json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium(),
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage",
                             format!("--user-data-dir={}", profile.path().display())],
                },
            }}}))
            .send()
            .await
            .expect("chromedriver answers")
            .json::<serde_json::Value>()
            .await
            .expect("a JSON answer");
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a browser session: {session}"))
            .to_string();
        Browser {
            driver,
            base: format!("{root}/session/{id}"),
            http,
            _profile: profile,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        // chromedriver refuses a body on a GET.
        if !body.is_null() {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .expect("chromedriver answers")
            .json::<serde_json::Value>()
            .await
            .expect("a JSON answer")
    }

    async fn open(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            "/url",
            serde_json::json!({"url": url}),
        )
        .await;
    }

    /// The element `css` selects, if any.
    async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                serde_json::json!({"using": "css selector", "value": css}),
            )
            .await;
        found["value"]["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .map(str::to_string)
    }

    /// Runs `action` on the element `css` selects, again if the page
    /// redrew it in between (its live update replaces the elements).
    async fn on(&self, css: &str, action: &str, body: serde_json::Value) {
        for _ in 0..20 {
            if let Some(id) = self.find(css).await {
                let done = self
                    .call(
                        reqwest::Method::POST,
                        &format!("/element/{id}/{action}"),
                        body.clone(),
                    )
                    .await;
                if done["value"].get("error").is_none() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot {action} `{css}`");
    }

    async fn text(&self, css: &str) -> String {
        let Some(id) = self.find(css).await else {
            return String::new();
        };
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/text"),
            serde_json::Value::Null,
        )
        .await["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the text of `css` satisfies `want`; returns it.
    async fn wait_text(&self, css: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let text = self.text(css).await;
            if want(&text) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting until {what}; `{css}` says `{text}`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    /// Ends the session, which closes Chromium (killing chromedriver alone
    /// would leave it running), also when the test failed midway.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.base.strip_prefix("http://") else {
            return;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(host) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request =
                format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_resume_asks_for_the_operator_token_and_lifts_the_pause() {
    if std::env::var("KENDO_BRIDGE_BROWSER").as_deref() != Ok("1") {
        eprintln!("browser part skipped: set KENDO_BRIDGE_BROWSER=1 (./dev test does)");
        return;
    }
    let options = StageOptions {
        operator_token: Some(OPERATOR_TOKEN.into()),
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(3, 8), options).await;
    stage.sims.kendo.revoke_key(KEY);
    let bridge = Running::serve(dir, stage);
    let paused = || {
        bridge
            .store
            .run_here(|s| Ok(kendo_bridge_core::ledger::send::paused(s.database(), TEAM)?))
            .expect("the store reads")
            .is_some()
    };
    eventually("the team is paused", paused).await;
    bridge.stage.sims.kendo.restore_key(KEY);

    let browser = Browser::start().await;
    browser.open(&format!("{}/", bridge.stage.bridge_url)).await;
    browser
        .wait_text("#live", "the page is live", |t| {
            t.contains("updates itself")
        })
        .await;
    let resume = "button[data-action=\"resume\"]";

    browser.on(resume, "click", serde_json::json!({})).await;
    browser
        .wait_text("#action-result", "the page asks for the token", |t| {
            t.contains("Enter the operator token")
        })
        .await;
    browser
        .on(
            "#token",
            "value",
            serde_json::json!({"text": "not-the-token"}),
        )
        .await;
    browser.on(resume, "click", serde_json::json!({})).await;
    browser
        .wait_text("#action-result", "a wrong token is refused", |t| {
            t.starts_with("Refused")
        })
        .await;
    assert!(paused(), "a wrong token changed nothing");

    browser.on("#token", "clear", serde_json::json!({})).await;
    browser
        .on(
            "#token",
            "value",
            serde_json::json!({"text": OPERATOR_TOKEN}),
        )
        .await;
    browser.on(resume, "click", serde_json::json!({})).await;
    browser
        .wait_text("#action-result", "the resume is confirmed", |t| {
            t.contains("resumed")
        })
        .await;
    eventually("every call reached Kendo after the resume", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    browser
        .wait_text(
            &format!("[data-k=\"team/{TEAM}/sent\"]"),
            "the page shows the calls sent",
            |t| t == "3",
        )
        .await;
    drop(browser);
    bridge.stop().await;
}

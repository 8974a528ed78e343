//! Kendo's Push API (`POST /api/integrations/push-api/ingest`) and Kendo's
//! signed outgoing webhooks.
//!
//! Every rule below follows a section of Kendo's guides in
//! `/work/shared/seeds/` (named in quotes; "Aloware guide" is
//! `kendo-aloware-push-api-guide.txt`, "Salesloft guide"
//! `kendo-salesloft-push-api-guide.txt`, "HubSpot guide"
//! `kendo-hubspot-push-api-guide.txt`, "webhooks guide"
//! `kendo-webhooks-guide.txt`). The order of checks on an ingest request:
//!
//! 1. an injected fault, if one is queued ([`KendoSim::fail_next`]): a 5xx,
//!    or a 429 with `Retry-After` as the window's own;
//! 2. the body size (413 past [`KendoOptions::max_body_bytes`]): Aloware
//!    guide "Kendo Push API Constraints (Exact)" (5 MB) and "Troubleshooting";
//! 3. the key, from `X-API-Key`, then `Authorization: Bearer`, then
//!    `?apiKey=`, then the body's `"apiKey"` (a body that is not JSON and no
//!    key elsewhere is a 400): Salesloft guide "Step 4 - Authenticate with
//!    Kendo"; 401 per the Aloware guide "Troubleshooting";
//! 4. the per-key sliding window (429 with `Retry-After`; a refused request
//!    does not use up room in the window): Aloware guide "Kendo Push API
//!    Constraints (Exact)" (30 requests/minute per API key) and
//!    "Troubleshooting" (429). No guide says whether Kendo sends
//!    `Retry-After` (evidence: none found); the simulator sends it, and the
//!    bridge falls back to a full window when it is missing;
//! 5. the payload: JSON object, `transcript` or `audioUrl`, `repEmail`,
//!    `callDate` (400 with `{"error": ...}`): Salesloft guide "Step 5 -
//!    Understand the Field Mapping" and "Example of What Gets Sent to Kendo",
//!    Aloware guide "Troubleshooting" (400);
//! 6. the call is created: 201 `{"success":true,"callId":"call_<n>"}` (Aloware
//!    guide "Kendo Push API Constraints (Exact)"), unless a "create then
//!    drop" fault closes the connection first. No guide documents an
//!    idempotency key: a second request for the same call creates a second
//!    call, which [`KendoSim::duplicates`] reports.
//!
//! A queued delay ([`KendoSim::delay_next`]) holds whatever answer comes out
//! of these steps for the given real time, after the work is done: a slow
//! server still creates the call even when the client has given up.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::clock::{SimClock, retry_after_secs};
use crate::ratelimit::{Admission, SlidingWindow, max_in_any_window};
use crate::server::{Conn, DELIVERY_TIMEOUT, HttpServer, http_client, lock, within_real_time};
use crate::util::{hmac_sha256, query_pairs};
use crate::{SimError, timefmt};

/// The ingest path, as on `app.kendo.ai`.
pub const INGEST_PATH: &str = "/api/integrations/push-api/ingest";

/// Kendo's body limit: 5 MB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5_000_000;

/// How to start a [`KendoSim`].
#[derive(Clone, Debug)]
pub struct KendoOptions {
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Valid Push API keys (`pk_...`) and the team each belongs to.
    pub keys: Vec<(String, String)>,
    /// Bodies longer than this many bytes are answered 413.
    pub max_body_bytes: usize,
    /// Requests admitted per key in any [`window`](Self::window).
    pub requests_per_window: u64,
    /// The rate-limit window in simulated time (divided by the time scale).
    pub window: Duration,
    /// Where to listen; port 0 picks a free one.
    pub bind: SocketAddr,
}

impl Default for KendoOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            keys: vec![(
                crate::DEMO_KENDO_KEY.to_owned(),
                crate::DEMO_KENDO_TEAM.to_owned(),
            )],
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            requests_per_window: 30,
            window: Duration::from_secs(60),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Where a request carried its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `X-API-Key: pk_...`
    ApiKeyHeader,
    /// `Authorization: Bearer pk_...`
    Bearer,
    /// `?apiKey=pk_...`
    Query,
    /// `{"apiKey": "pk_...", ...}`
    Body,
}

/// A call Kendo created.
#[derive(Clone, Debug)]
pub struct AcceptedCall {
    /// `call_<n>`, as answered.
    pub call_id: String,
    pub key: String,
    pub team: String,
    pub auth: AuthMethod,
    /// The request body as parsed (including `apiKey` when sent there).
    pub body: Value,
    /// The request's `Content-Type`, to check what the client declared.
    pub content_type: Option<String>,
    pub arrived_at: Instant,
    /// The connection was closed instead of answering 201 (an injected
    /// "create then drop"): the client never learned of this call.
    pub response_lost: bool,
}

impl AcceptedCall {
    /// `metadata.source`.
    pub fn source(&self) -> Option<&str> {
        self.body
            .pointer("/metadata/source")
            .and_then(Value::as_str)
    }

    /// `metadata.<source>CallId`, as a string whether sent as a string or a
    /// number.
    pub fn source_call_id(&self) -> Option<String> {
        let source = self.source()?;
        let v = self.body.get("metadata")?.get(format!("{source}CallId"))?;
        crate::util::id_string(v)
    }

    /// A top-level string field of the body (`callTitle`, `repEmail`, ...).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// Counters over every ingest request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KendoStats {
    pub requests: u64,
    /// Calls created, including those whose response was then dropped.
    pub created: u64,
    pub rejected_400: u64,
    pub rejected_401: u64,
    pub rejected_413: u64,
    pub rate_limited_429: u64,
    /// Injected 5xx answers.
    pub server_errors_5xx: u64,
    pub dropped_after_create: u64,
}

/// One ingest request as it arrived.
#[derive(Clone, Debug)]
pub struct IngestRecord {
    pub at: Instant,
    /// The key presented, when it was a valid one.
    pub key: Option<String>,
    pub auth: Option<AuthMethod>,
    /// The status answered; `None` when the connection was dropped instead.
    pub status: Option<u16>,
    pub body_bytes: usize,
}

/// A source call that Kendo created more than once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub source: String,
    pub source_call_id: String,
    pub count: usize,
    pub call_ids: Vec<String>,
}

struct KeyState {
    team: String,
    revoked: bool,
    window: SlidingWindow,
}

#[derive(Default)]
struct Faults {
    fail: VecDeque<u16>,
    delay: VecDeque<Duration>,
    drop_after_create: u32,
}

struct KendoState {
    keys: HashMap<String, KeyState>,
    accepted: Vec<AcceptedCall>,
    stats: KendoStats,
    log: Vec<IngestRecord>,
    next_call: u64,
    faults: Faults,
}

struct Shared {
    clock: SimClock,
    max_body_bytes: usize,
    limit: u64,
    window_real: Duration,
    state: Mutex<KendoState>,
}

impl Shared {
    fn new_key(&self, team: &str) -> KeyState {
        KeyState {
            team: team.to_owned(),
            revoked: false,
            window: SlidingWindow::new(self.limit, self.window_real),
        }
    }
}

/// The simulated Kendo. Cheap to clone; the server stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct KendoSim {
    shared: Arc<Shared>,
    server: Arc<HttpServer>,
    client: reqwest::Client,
}

impl KendoSim {
    /// Starts the server.
    pub async fn start(options: KendoOptions) -> Result<Self, SimError> {
        let clock = SimClock::new(options.time_scale)?;
        let window_real = clock.real(options.window);
        let shared = Arc::new(Shared {
            clock,
            max_body_bytes: options.max_body_bytes,
            limit: options.requests_per_window,
            window_real,
            state: Mutex::new(KendoState {
                keys: HashMap::new(),
                accepted: Vec::new(),
                stats: KendoStats::default(),
                log: Vec::new(),
                next_call: 0,
                faults: Faults::default(),
            }),
        });
        {
            let mut st = lock(&shared.state);
            for (key, team) in &options.keys {
                let ks = shared.new_key(team);
                st.keys.insert(key.clone(), ks);
            }
        }
        let router = Router::new()
            // Salesloft guide "Step 4 - Authenticate with Kendo" (the URL),
            // Aloware guide "Kendo Push API Constraints (Exact)".
            .route(INGEST_PATH, post(ingest))
            // Only the ingest path is documented: anything else is a 404.
            .fallback(not_found)
            // The 5 MB check is Kendo's, answered by the handler; axum's own
            // 2 MB default would answer first and differently.
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let server = HttpServer::start(options.bind, router).await?;
        Ok(Self {
            shared,
            server: Arc::new(server),
            client: http_client()?,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// The full ingest URL.
    pub fn ingest_url(&self) -> String {
        format!("{}{INGEST_PATH}", self.url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The real length of the rate-limit window at this time scale.
    pub fn window(&self) -> Duration {
        self.shared.window_real
    }

    /// Answers the next `n` requests with `status` (500, 502, 503, ...)
    /// before looking at them. A 429 carries `Retry-After` (a whole window)
    /// and the body of the window's own 429, and, like that one, uses no
    /// room in the window.
    pub fn fail_next(&self, n: usize, status: u16) {
        let mut st = lock(&self.shared.state);
        st.faults.fail.extend(std::iter::repeat_n(status, n));
    }

    /// Holds the answer to each of the next `n` requests for `delay` of
    /// real time (not scaled: it is meant to outlast a client's timeout).
    pub fn delay_next(&self, n: usize, delay: Duration) {
        let mut st = lock(&self.shared.state);
        st.faults.delay.extend(std::iter::repeat_n(delay, n));
    }

    /// The next `n` requests that would be answered 201 create their call
    /// and then lose the answer: the connection closes with no response.
    pub fn drop_after_create_next(&self, n: u32) {
        let mut st = lock(&self.shared.state);
        st.faults.drop_after_create += n;
    }

    /// Forgets every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.state).faults = Faults::default();
    }

    /// Revokes a key: from now on it is answered 401.
    pub fn revoke_key(&self, key: &str) {
        if let Some(k) = lock(&self.shared.state).keys.get_mut(key) {
            k.revoked = true;
        }
    }

    /// Makes a revoked key valid again.
    pub fn restore_key(&self, key: &str) {
        if let Some(k) = lock(&self.shared.state).keys.get_mut(key) {
            k.revoked = false;
        }
    }

    /// Adds (or replaces) a valid key.
    pub fn add_key(&self, key: &str, team: &str) {
        let ks = self.shared.new_key(team);
        lock(&self.shared.state).keys.insert(key.to_owned(), ks);
    }

    /// Every call created, in order.
    pub fn accepted(&self) -> Vec<AcceptedCall> {
        lock(&self.shared.state).accepted.clone()
    }

    pub fn stats(&self) -> KendoStats {
        lock(&self.shared.state).stats.clone()
    }

    /// Every ingest request, in arrival order.
    pub fn requests(&self) -> Vec<IngestRecord> {
        lock(&self.shared.state).log.clone()
    }

    /// When each request carrying `key` (a valid one) arrived, whatever its
    /// answer.
    pub fn arrivals(&self, key: &str) -> Vec<Instant> {
        lock(&self.shared.state)
            .log
            .iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .map(|r| r.at)
            .collect()
    }

    /// The most requests carrying `key` that arrived within any one
    /// rate-limit window (scaled). A client that paces itself correctly keeps
    /// this at or under the limit.
    pub fn max_requests_in_any_window(&self, key: &str) -> usize {
        max_in_any_window(&self.arrivals(key), self.shared.window_real)
    }

    /// Source calls created more than once, keyed on `metadata.source` and
    /// `metadata.<source>CallId`.
    pub fn duplicates(&self) -> Vec<Duplicate> {
        let st = lock(&self.shared.state);
        let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for c in &st.accepted {
            if let (Some(s), Some(id)) = (c.source(), c.source_call_id()) {
                groups
                    .entry((s.to_owned(), id))
                    .or_default()
                    .push(c.call_id.clone());
            }
        }
        groups
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|((source, source_call_id), call_ids)| Duplicate {
                source,
                source_call_id,
                count: call_ids.len(),
                call_ids,
            })
            .collect()
    }

    /// A `call.uploaded` event for a call Kendo accepted, with `aiScore`
    /// sent as a string as Kendo does (webhooks guide "Available Events",
    /// "Example Payloads").
    pub fn call_uploaded_event(&self, call: &AcceptedCall, ai_score: u32) -> KendoEvent {
        let rep = call.field("repEmail").unwrap_or("unknown");
        let member = short_hash(rep);
        let duration = call.body.get("duration").and_then(Value::as_f64);
        let now = self.shared.clock.now_utc();
        KendoEvent::new(
            "call.uploaded",
            timefmt::seconds_z(now),
            json!({
                "callId": call.call_id,
                "agentId": format!("agent_{member}"),
                "agentName": call.field("repName").unwrap_or("Sales Agent"),
                "userId": format!("user_{member}"),
                "teamMemberUserId": format!("member_{member}"),
                "duration": duration,
                "aiScore": ai_score.to_string(),
                "timestamp": timefmt::seconds_z(now),
            }),
        )
    }

    /// An `ai.training.completed` event.
    pub fn training_completed_event(
        &self,
        training_id: &str,
        agent_name: &str,
        ai_score: u32,
    ) -> KendoEvent {
        let member = short_hash(agent_name);
        let now = self.shared.clock.now_utc();
        KendoEvent::new(
            "ai.training.completed",
            timefmt::seconds_z(now),
            json!({
                "trainingId": training_id,
                "agentId": format!("agent_{member}"),
                "agentName": agent_name,
                "userId": format!("user_{member}"),
                "teamMemberUserId": format!("member_{member}"),
                "duration": 300,
                "aiScore": ai_score.to_string(),
                "timestamp": timefmt::seconds_z(now),
            }),
        )
    }

    /// What the "Send Test" button delivers: a `call.uploaded` body with
    /// `_isTest: true`, under the test event header
    /// ([`TEST_EVENT_HEADER`]).
    pub fn test_event(&self) -> KendoEvent {
        let now = self.shared.clock.now_utc();
        let mut e = KendoEvent::new(
            "call.uploaded",
            timefmt::seconds_z(now),
            json!({
                "callId": "test_call",
                "agentId": "agent_test",
                "agentName": "Test Agent",
                "userId": "user_test",
                "teamMemberUserId": "member_test",
                "duration": 120,
                "aiScore": "85",
                "timestamp": timefmt::seconds_z(now),
                "_isTest": true,
            }),
        );
        e.header_event = TEST_EVENT_HEADER.to_owned();
        e
    }

    /// Webhooks guide "What Kendo Sends", "Verify Signatures" and "Delivery
    /// and Retries".
    ///
    /// Delivers `event` as Kendo does: up to 3 attempts, waiting about 1 s
    /// then 2 s (scaled) after a non-2xx answer or a failed attempt, each
    /// signed with a hex HMAC-SHA256 of the raw body. An attempt with no
    /// answer within 10 s of real time counts as failed.
    pub async fn send_webhook(&self, url: &str, secret: &str, event: &KendoEvent) -> Delivery {
        self.send_webhook_with(url, secret, event, SignatureEncoding::Hex)
            .await
    }

    /// [`send_webhook`](Self::send_webhook) with a chosen signature
    /// encoding (Kendo's is not documented; the bridge must accept all three).
    pub async fn send_webhook_with(
        &self,
        url: &str,
        secret: &str,
        event: &KendoEvent,
        encoding: SignatureEncoding,
    ) -> Delivery {
        let body = event.body();
        let mac = hmac_sha256(secret.as_bytes(), &[body.as_bytes()]);
        let signature = match encoding {
            SignatureEncoding::Hex => hex::encode(&mac),
            SignatureEncoding::PrefixedHex => format!("sha256={}", hex::encode(&mac)),
            SignatureEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&mac),
        };
        let mut attempts = Vec::new();
        for (i, backoff) in WEBHOOK_BACKOFF.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(self.shared.clock.real(*backoff)).await;
            }
            let send = self
                .client
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header("X-Kendo-Signature", &signature)
                .header("X-Kendo-Event", &event.header_event)
                .header("X-Kendo-Delivery-Id", &event.id)
                .body(body.clone())
                .send();
            let attempt = match within_real_time(DELIVERY_TIMEOUT, send).await {
                Some(Ok(r)) => Attempt::Status(r.status().as_u16()),
                Some(Err(e)) => Attempt::Failed(e.to_string()),
                None => {
                    Attempt::Failed(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs()))
                }
            };
            let ok = matches!(attempt, Attempt::Status(s) if (200..300).contains(&s));
            attempts.push(attempt);
            if ok {
                return Delivery {
                    delivered: true,
                    body,
                    signature,
                    attempts,
                };
            }
        }
        Delivery {
            delivered: false,
            body,
            signature,
            attempts,
        }
    }
}

/// `X-Kendo-Event` on a "Send Test" delivery. The guide says only that the
/// test uses "the test event header"; this name is the simulator's guess.
pub const TEST_EVENT_HEADER: &str = "webhook.test";

/// Back-off before each attempt (simulated time): the first is immediate.
const WEBHOOK_BACKOFF: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// How `X-Kendo-Signature` is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureEncoding {
    /// Lower-case hex (the default).
    Hex,
    /// `sha256=` followed by hex.
    PrefixedHex,
    /// Standard base64 with padding.
    Base64,
}

/// A Kendo webhook event: `{id, event, created_at, data}`.
#[derive(Clone, Debug, PartialEq)]
pub struct KendoEvent {
    /// `evt_...`; also sent as `X-Kendo-Delivery-Id`.
    pub id: String,
    pub event: String,
    pub created_at: String,
    pub data: Value,
    /// The `X-Kendo-Event` header value (the event name, except for tests).
    pub header_event: String,
}

impl KendoEvent {
    /// A new event with a fresh id.
    pub fn new(event: &str, created_at: String, data: Value) -> Self {
        Self {
            id: format!("evt_{:016x}", rand::random::<u64>()),
            event: event.to_owned(),
            created_at,
            data,
            header_event: event.to_owned(),
        }
    }

    /// The raw JSON body, fields in Kendo's order.
    pub fn body(&self) -> String {
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            id: &'a str,
            event: &'a str,
            created_at: &'a str,
            data: &'a Value,
        }
        serde_json::to_string(&Wire {
            id: &self.id,
            event: &self.event,
            created_at: &self.created_at,
            data: &self.data,
        })
        .unwrap_or_default()
    }
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Status(u16),
    /// No HTTP answer (refused, reset, timed out).
    Failed(String),
}

/// What happened to a webhook delivery.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// A 2xx came back.
    pub delivered: bool,
    /// The exact body sent on every attempt.
    pub body: String,
    /// The exact `X-Kendo-Signature` sent.
    pub signature: String,
    pub attempts: Vec<Attempt>,
}

fn short_hash(s: &str) -> String {
    let mac = hmac_sha256(b"kendo-sim", &[s.to_ascii_lowercase().as_bytes()]);
    hex::encode(mac.get(..6).unwrap_or_default())
}

async fn not_found() -> Response {
    crate::util::json(StatusCode::NOT_FOUND, &json!({"error": "Not found"}), &[])
}

enum Reply {
    Json(StatusCode, Value, Vec<(HeaderName, String)>),
    Html(StatusCode, &'static str),
    Drop,
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (reply, delay) = decide(&shared, query.as_deref(), &headers, &body);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match reply {
        Reply::Json(status, v, h) => crate::util::json(status, &v, &h),
        Reply::Html(status, text) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            text,
        )
            .into_response(),
        Reply::Drop => {
            conn.kill();
            // The connection is dead: hyper cannot write this.
            StatusCode::CREATED.into_response()
        }
    }
}

/// Kendo's 429: Aloware guide "Troubleshooting" ("429 Rate Limit -
/// Exceeded 30 requests/min"). `Retry-After` is the simulator's choice (no
/// guide documents it), in real seconds, rounded up.
fn rate_limited(retry_after: Duration) -> Reply {
    Reply::Json(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": "Rate limit exceeded. Try again later."}),
        vec![(
            header::RETRY_AFTER,
            retry_after_secs(retry_after).to_string(),
        )],
    )
}

fn error(status: StatusCode, message: &str) -> Reply {
    Reply::Json(status, json!({ "error": message }), Vec::new())
}

fn decide(
    shared: &Shared,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Reply, Option<Duration>) {
    let now = Instant::now();
    let mut st = lock(&shared.state);
    st.stats.requests += 1;
    let delay = st.faults.delay.pop_front();
    let mut record = IngestRecord {
        at: now,
        key: None,
        auth: None,
        status: None,
        body_bytes: body.len(),
    };
    let reply = decide_locked(shared, &mut st, now, query, headers, body, &mut record);
    record.status = match &reply {
        Reply::Json(s, _, _) | Reply::Html(s, _) => Some(s.as_u16()),
        Reply::Drop => None,
    };
    match &reply {
        Reply::Json(s, _, _) if *s == StatusCode::BAD_REQUEST => st.stats.rejected_400 += 1,
        Reply::Json(s, _, _) if *s == StatusCode::UNAUTHORIZED => st.stats.rejected_401 += 1,
        Reply::Json(s, _, _) if *s == StatusCode::PAYLOAD_TOO_LARGE => st.stats.rejected_413 += 1,
        Reply::Json(s, _, _) if *s == StatusCode::TOO_MANY_REQUESTS => {
            st.stats.rate_limited_429 += 1;
        }
        Reply::Json(s, _, _) | Reply::Html(s, _) if s.is_server_error() => {
            st.stats.server_errors_5xx += 1;
        }
        _ => {}
    }
    st.log.push(record);
    (reply, delay)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn decide_locked(
    shared: &Shared,
    st: &mut KendoState,
    now: Instant,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    record: &mut IngestRecord,
) -> Reply {
    if let Some(status) = st.faults.fail.pop_front() {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A gateway in front of the app answers 502/503 in HTML, not JSON.
        return match code {
            StatusCode::BAD_GATEWAY => Reply::Html(
                code,
                "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
            ),
            StatusCode::SERVICE_UNAVAILABLE => Reply::Html(
                code,
                "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>\n",
            ),
            StatusCode::TOO_MANY_REQUESTS => rate_limited(shared.window_real),
            _ => error(code, "Internal server error"),
        };
    }
    if body.len() > shared.max_body_bytes {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "Payload too large: {} bytes exceeds the {} byte limit",
                body.len(),
                shared.max_body_bytes
            ),
        );
    }

    let mut parsed: Option<Result<Value, serde_json::Error>> = None;
    let from_headers = header_str(headers, "x-api-key")
        .map(|k| (k.trim().to_owned(), AuthMethod::ApiKeyHeader))
        .or_else(|| {
            header_str(headers, "authorization")
                .and_then(|a| {
                    a.strip_prefix("Bearer ")
                        .or_else(|| a.strip_prefix("bearer "))
                })
                .map(|k| (k.trim().to_owned(), AuthMethod::Bearer))
        })
        .or_else(|| {
            query_pairs(query)
                .into_iter()
                .find(|(k, _)| k == "apiKey")
                .map(|(_, v)| (v, AuthMethod::Query))
        });
    let presented = match from_headers {
        Some(found) => Some(found),
        None => {
            let p = serde_json::from_slice::<Value>(body);
            let Ok(v) = &p else {
                return error(StatusCode::BAD_REQUEST, "Invalid JSON body");
            };
            let k = v
                .get("apiKey")
                .and_then(Value::as_str)
                .map(|k| (k.to_owned(), AuthMethod::Body));
            parsed = Some(p);
            k
        }
    };
    let Some((key, auth)) = presented else {
        return error(StatusCode::UNAUTHORIZED, "Invalid API key");
    };
    let team = match st.keys.get_mut(&key) {
        Some(ks) if !ks.revoked => {
            record.key = Some(key.clone());
            record.auth = Some(auth);
            match ks.window.try_acquire(now, 1) {
                Admission::Admitted { .. } => ks.team.clone(),
                Admission::Refused { retry_after } => return rate_limited(retry_after),
            }
        }
        _ => return error(StatusCode::UNAUTHORIZED, "Invalid API key"),
    };

    let value = match parsed.unwrap_or_else(|| serde_json::from_slice(body)) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "Invalid JSON body"),
    };
    if let Err(message) = validate(&value) {
        return error(StatusCode::BAD_REQUEST, &message);
    }

    st.next_call += 1;
    let call_id = format!("call_{}", st.next_call);
    st.stats.created += 1;
    let drop = st.faults.drop_after_create > 0;
    if drop {
        st.faults.drop_after_create -= 1;
        st.stats.dropped_after_create += 1;
    }
    st.accepted.push(AcceptedCall {
        call_id: call_id.clone(),
        key,
        team,
        auth,
        body: value,
        content_type: header_str(headers, "content-type").map(str::to_owned),
        arrived_at: now,
        response_lost: drop,
    });
    if drop {
        return Reply::Drop;
    }
    Reply::Json(
        StatusCode::CREATED,
        json!({"success": true, "callId": call_id}),
        Vec::new(),
    )
}

fn non_empty_str(v: &Value, field: &str) -> bool {
    v.get(field)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty())
}

/// Kendo's payload rules. `Err` carries the message answered with 400.
fn validate(v: &Value) -> Result<(), String> {
    if !v.is_object() {
        return Err("Invalid JSON body: expected an object".into());
    }
    if !non_empty_str(v, "transcript") && !non_empty_str(v, "audioUrl") {
        return Err("Either transcript or audioUrl is required".into());
    }
    match v.get("repEmail") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if is_email(s) => {}
        Some(_) => return Err("Invalid repEmail: must be a valid email address".into()),
    }
    match v.get("callDate") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if timefmt::parse_iso8601(s).is_some() => {}
        Some(_) => return Err("Invalid callDate: must be an ISO 8601 date".into()),
    }
    Ok(())
}

/// `local@domain.tld`: one `@`, no spaces, a dot inside the domain with no
/// empty label. Stricter checks would refuse addresses real servers accept.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rule_accepts_plain_addresses_and_refuses_the_rest() {
        assert!(is_email("jamie@yourco.com"));
        assert!(is_email("j.rivera+calls@sub.yourco.co.uk"));
        for bad in [
            "",
            "jamie",
            "jamie@",
            "@yourco.com",
            "jamie@yourco",
            "jamie@@yourco.com",
            "jamie @yourco.com",
            "jamie@yourco..com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn payload_needs_a_non_empty_transcript_or_audio_url() {
        assert!(validate(&json!({"audioUrl": "https://x/y.mp3"})).is_ok());
        assert!(validate(&json!({"transcript": "Rep: hi"})).is_ok());
        assert_eq!(
            validate(&json!({"audioUrl": "", "transcript": "  "})),
            Err("Either transcript or audioUrl is required".into())
        );
    }
}

//! Salesloft REST API v2: call activities, call data records, users,
//! transcriptions and conversations, with the cost-based team rate limit.
//!
//! Every request needs `Authorization: Bearer <key>` (401 otherwise) and
//! costs points from one team-wide budget (600 per simulated minute): pages
//! 1-100 cost 1, 101-150 cost 3, 151-250 cost 8, 251-500 cost 10, beyond
//! that 30. Every answered response carries `x-ratelimit-endpoint-cost`,
//! `x-ratelimit-remaining-minute` and `x-ratelimit-limit-minute`; past the
//! budget the answer is 429 with `Retry-After` (real seconds, at least 1).
//!
//! Lists take `ids[]`, `created_at[gt|gte|lt|lte]`, `updated_at[...]`
//! (ISO 8601, compared as instants at microsecond precision), `sort_by`
//! (`created_at`|`updated_at`; the default is each list's documented one),
//! `sort_direction` (`ASC`|`DESC`, default `DESC`) where documented,
//! `per_page` (1..=100, default 25), `page` (from 1) and
//! `include_paging_counts`. A bad value is a 422 with
//! `{"errors": {"<param>": ["..."]}}`. Ties in the sort order are broken by
//! id, ascending.
//!
//! Unknown query parameters: a third-party compilation of Salesloft's
//! reference says invalid filter names are silently ignored, and no
//! official page says otherwise. The simulator is stricter where that
//! catches a bug: calls, transcriptions and sentences answer 422 to a
//! parameter their reference page does not list (so code that sends one is
//! caught at once), while `GET /v2/call_data_records` ignores them and
//! answers the unfiltered newest records of the whole team (so code that
//! relies on a filter that does not exist, like `call_id[]`, is caught by
//! what it reads).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::{OffsetDateTime, UtcOffset};
use tokio::time::Instant;

use crate::clock::{SimClock, retry_after_secs};
use crate::ratelimit::{Admission, SlidingWindow};
use crate::server::{HttpServer, http_client, lock};
use crate::util::{hmac_sha1, json as json_response, query_pairs, uuid_from};
use crate::{SimError, timefmt};

/// How to start a [`SalesloftSim`].
#[derive(Clone, Debug)]
pub struct SalesloftOptions {
    pub time_scale: f64,
    /// Valid API keys (`ak_...`) or OAuth tokens.
    pub api_keys: Vec<String>,
    /// The team-wide budget per simulated minute.
    pub points_per_minute: u64,
    /// The offset timestamps are written in (Salesloft writes the team's
    /// local time, e.g. `-04:00`).
    pub utc_offset: UtcOffset,
    pub bind: SocketAddr,
}

impl Default for SalesloftOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            api_keys: vec![crate::DEMO_SALESLOFT_KEY.to_owned()],
            points_per_minute: 600,
            utc_offset: UtcOffset::from_hms(-4, 0, 0).unwrap_or(UtcOffset::UTC),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// A Salesloft user (`GET /v2/users/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct SalesloftUser {
    pub id: u64,
    pub guid: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub active: bool,
}

/// One entry of a call's `recordings`.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Absent until the recording is processed.
    pub url: Option<String>,
    /// The call outcome: `completed`, `no-answer`, `busy`, `failed`,
    /// `ringing`, `in-progress`.
    pub status: String,
    /// `not_recorded`, `pending`, `processing` or `completed`.
    pub recording_status: String,
}

/// A call activity (`GET /v2/activities/calls/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct SalesloftCall {
    pub id: u64,
    pub to: Option<String>,
    /// Seconds; Salesloft sends null for some calls.
    pub duration: Option<u32>,
    pub disposition: Option<String>,
    pub sentiment: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub recordings: Vec<Recording>,
    pub user_id: Option<u64>,
    pub action_id: Option<u64>,
    pub called_person_id: Option<u64>,
    pub crm_activity_id: Option<u64>,
    pub note_id: Option<u64>,
    pub cadence_id: Option<u64>,
    pub step_id: Option<u64>,
}

impl SalesloftUser {
    /// An active rep with a made-up guid.
    pub fn rep(id: u64, name: (&str, &str), email: &str) -> SalesloftUser {
        SalesloftUser {
            id,
            guid: format!("00000000-0000-4000-8000-{id:012}"),
            first_name: name.0.into(),
            last_name: name.1.into(),
            email: email.into(),
            active: true,
        }
    }
}

impl SalesloftCall {
    /// A finished, connected and recorded call of `user`, made ten minutes
    /// before `now` and updated `updated_ago` before it.
    pub fn recorded(
        id: u64,
        user: u64,
        now: OffsetDateTime,
        updated_ago: time::Duration,
    ) -> SalesloftCall {
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
}

/// A call data record: the telephony side of a call, with the direction
/// the call activity lacks.
#[derive(Clone, Debug, PartialEq)]
pub struct CallDataRecord {
    pub id: u64,
    pub call_id: u64,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub from: String,
    pub to: String,
    pub status: String,
    pub duration: Option<u32>,
    pub user_id: Option<u64>,
    pub called_person_id: Option<u64>,
    pub recording: Option<Recording>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One sentence of a transcription.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    pub id: String,
    pub order_number: u32,
    /// Seconds from the start of the recording.
    pub start_time: f64,
    pub end_time: f64,
    pub recording_attendee_id: String,
    pub text: String,
}

/// A transcription, the conversation it belongs to, and its sentences.
#[derive(Clone, Debug, PartialEq)]
pub struct SalesloftTranscript {
    /// A UUID.
    pub id: String,
    /// The conversation's UUID.
    pub conversation_id: String,
    /// The call activity the conversation belongs to.
    pub call_id: u64,
    pub user_guid: Option<String>,
    pub language_code: String,
    /// Conversation length in milliseconds, as conversations report it.
    pub duration_ms: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub sentences: Vec<Sentence>,
}

impl SalesloftTranscript {
    /// A transcript of `(speaker, text)` lines, about four seconds each,
    /// created and updated at `at`. `new_id` supplies the UUIDs.
    pub fn from_lines(
        call_id: u64,
        user_guid: Option<String>,
        at: OffsetDateTime,
        lines: &[(&str, &str)],
        new_id: &mut dyn FnMut() -> String,
    ) -> Self {
        let id = new_id();
        let conversation_id = new_id();
        let mut attendees: Vec<(String, String)> = Vec::new();
        let mut sentences = Vec::new();
        for (i, (speaker, text)) in lines.iter().enumerate() {
            let attendee = match attendees.iter().find(|(s, _)| s == speaker) {
                Some((_, a)) => a.clone(),
                None => {
                    let a = new_id();
                    attendees.push(((*speaker).to_owned(), a.clone()));
                    a
                }
            };
            let start = 4.0 * i as f64;
            sentences.push(Sentence {
                id: new_id(),
                order_number: u32::try_from(i).unwrap_or(u32::MAX),
                start_time: start,
                end_time: start + 3.5,
                recording_attendee_id: attendee,
                text: (*text).to_owned(),
            });
        }
        Self {
            id,
            conversation_id,
            call_id,
            user_guid,
            language_code: "en-US".into(),
            duration_ms: 4000 * lines.len() as u64,
            created_at: at,
            updated_at: at,
            sentences,
        }
    }
}

/// One request as the simulator saw it.
#[derive(Clone, Debug)]
pub struct SalesloftRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The `page` asked for (1 when absent).
    pub page: u64,
    /// Points charged (0 for 401 and 429).
    pub cost: u64,
    pub status: u16,
}

/// Points a request for `page` costs.
pub fn page_cost(page: u64) -> u64 {
    match page {
        0..=100 => 1,
        101..=150 => 3,
        151..=250 => 8,
        251..=500 => 10,
        _ => 30,
    }
}

struct Store {
    calls: BTreeMap<u64, SalesloftCall>,
    users: BTreeMap<u64, SalesloftUser>,
    cdrs: BTreeMap<u64, CallDataRecord>,
    transcripts: BTreeMap<String, SalesloftTranscript>,
    budget: SlidingWindow,
    log: Vec<SalesloftRequest>,
    /// Paths (by prefix) answered with an error status instead.
    /// Path prefix, status, and how many more requests (None: all).
    failing: Vec<(String, u16, Option<u32>)>,
    /// Calls listed as this JSON instead of their record.
    poisoned: BTreeMap<u64, Value>,
    /// The newest timestamp handed out, so updates never go back in time.
    last_stamp: OffsetDateTime,
    rng: StdRng,
}

struct Shared {
    clock: SimClock,
    keys: Vec<String>,
    offset: UtcOffset,
    base: Mutex<String>,
    state: Mutex<Store>,
}

impl Shared {
    fn base(&self) -> String {
        lock(&self.base).clone()
    }
}

/// The simulated Salesloft. Cheap to clone.
#[derive(Clone)]
pub struct SalesloftSim {
    shared: Arc<Shared>,
    server: Arc<HttpServer>,
    client: reqwest::Client,
}

impl SalesloftSim {
    pub async fn start(options: SalesloftOptions) -> Result<Self, SimError> {
        let clock = SimClock::new(options.time_scale)?;
        let window = clock.real(Duration::from_secs(60));
        let shared = Arc::new(Shared {
            clock,
            keys: options.api_keys,
            offset: options.utc_offset,
            base: Mutex::new(String::new()),
            state: Mutex::new(Store {
                calls: BTreeMap::new(),
                users: BTreeMap::new(),
                cdrs: BTreeMap::new(),
                transcripts: BTreeMap::new(),
                budget: SlidingWindow::new(options.points_per_minute, window),
                log: Vec::new(),
                failing: Vec::new(),
                poisoned: BTreeMap::new(),
                last_stamp: OffsetDateTime::UNIX_EPOCH,
                rng: StdRng::seed_from_u64(0x5a1e_5109),
            }),
        });
        let api = Router::new()
            .route("/v2/activities/calls", get(list_calls))
            .route("/v2/activities/calls.json", get(list_calls))
            .route("/v2/activities/calls/{id}", get(get_call))
            .route("/v2/users/{id}", get(get_user))
            .route("/v2/call_data_records", get(list_cdrs))
            .route("/v2/call_data_records.json", get(list_cdrs))
            .route("/v2/call_data_records/{id}", get(get_cdr))
            .route("/v2/transcriptions", get(list_transcriptions))
            .route("/v2/transcriptions.json", get(list_transcriptions))
            .route("/v2/transcriptions/{id}", get(get_transcription))
            .route("/v2/transcriptions/{id}/sentences", get(list_sentences))
            .route("/v2/conversations/{id}", get(get_conversation))
            .route("/v2/conversations/{id}/extensive", get(get_conversation))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(shared.clone(), gatekeeper))
            .with_state(shared.clone());
        let server = HttpServer::start(options.bind, api).await?;
        *lock(&shared.base) = server.base_url();
        Ok(Self {
            shared,
            server: Arc::new(server),
            client: http_client()?,
        })
    }

    /// The base URL; the API is under `{url}/v2/`.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn add_user(&self, user: SalesloftUser) {
        lock(&self.shared.state).users.insert(user.id, user);
    }

    /// Adds a call exactly as given (timestamps included).
    pub fn add_call(&self, call: SalesloftCall) {
        let mut st = lock(&self.shared.state);
        st.last_stamp = st.last_stamp.max(call.updated_at);
        st.calls.insert(call.id, call);
    }

    /// Adds many calls at once (a backlog).
    pub fn add_calls(&self, calls: impl IntoIterator<Item = SalesloftCall>) {
        let mut st = lock(&self.shared.state);
        for call in calls {
            st.last_stamp = st.last_stamp.max(call.updated_at);
            st.calls.insert(call.id, call);
        }
    }

    /// From now on, requests whose path starts with `prefix` are answered
    /// `status` with Salesloft's `{"error": ...}` body (a 403 for a key
    /// without a scope, a 5xx outage), after the rate limit is charged.
    pub fn fail_path(&self, prefix: &str, status: u16) {
        lock(&self.shared.state)
            .failing
            .push((prefix.to_owned(), status, None));
    }

    /// Only the next `n` requests whose path starts with `prefix` are
    /// answered `status` (a brief outage).
    pub fn fail_path_next(&self, prefix: &str, status: u16, n: u32) {
        lock(&self.shared.state)
            .failing
            .push((prefix.to_owned(), status, Some(n)));
    }

    /// Another integration of the team spends `points` of the budget now.
    /// Returns whether the budget had them.
    pub fn spend_points(&self, points: u64) -> bool {
        matches!(
            lock(&self.shared.state)
                .budget
                .try_acquire(Instant::now(), points),
            Admission::Admitted { .. }
        )
    }

    /// The most points the bridge's requests (`Authorization` accepted)
    /// spent in any one window of the team budget.
    pub fn max_points_in_any_window(&self) -> u64 {
        let st = lock(&self.shared.state);
        let window = self.shared.clock.real(Duration::from_secs(60));
        st.log
            .iter()
            .map(|first| {
                st.log
                    .iter()
                    .filter(|r| r.at >= first.at && r.at < first.at + window)
                    .map(|r| r.cost)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Lists call `id` as `record` (a malformed record) in
    /// `GET /v2/activities/calls`, in the call's place.
    pub fn poison_call(&self, id: u64, record: Value) {
        lock(&self.shared.state).poisoned.insert(id, record);
    }

    pub fn add_call_data_record(&self, cdr: CallDataRecord) {
        let mut st = lock(&self.shared.state);
        st.last_stamp = st.last_stamp.max(cdr.updated_at);
        st.cdrs.insert(cdr.id, cdr);
    }

    pub fn add_transcript(&self, transcript: SalesloftTranscript) {
        let mut st = lock(&self.shared.state);
        st.last_stamp = st.last_stamp.max(transcript.updated_at);
        st.transcripts.insert(transcript.id.clone(), transcript);
    }

    /// Changes a call and bumps its `updated_at` to now (simulated, with
    /// microseconds, and always later than any timestamp already handed
    /// out). Returns the new `updated_at` as Salesloft writes it.
    pub fn update_call(
        &self,
        id: u64,
        change: impl FnOnce(&mut SalesloftCall),
    ) -> Result<String, SimError> {
        let mut st = lock(&self.shared.state);
        let stamp = fresh_stamp(&self.shared.clock, &mut st);
        let call = st
            .calls
            .get_mut(&id)
            .ok_or_else(|| SimError::NotFound(format!("Salesloft call {id}")))?;
        change(call);
        call.updated_at = stamp;
        if let Some(cdr) = st.cdrs.values_mut().find(|c| c.call_id == id) {
            cdr.updated_at = stamp;
        }
        Ok(timefmt::salesloft(stamp, self.shared.offset))
    }

    /// A processing recording finishes: its `url` is set, its
    /// `recording_status` becomes `completed`, and the call's `updated_at`
    /// moves to now.
    pub fn finish_recording(&self, id: u64, url: &str) -> Result<String, SimError> {
        let url = url.to_owned();
        self.update_call(id, move |c| {
            let done = Recording {
                url: Some(url),
                status: "completed".into(),
                recording_status: "completed".into(),
            };
            match c.recordings.first_mut() {
                Some(r) => *r = done,
                None => c.recordings.push(done),
            }
        })
    }

    /// Adds a transcript for a call: one sentence per `(speaker, text)`
    /// line, about four seconds each. Returns the transcription id.
    pub fn transcribe(&self, call_id: u64, lines: &[(&str, &str)]) -> Result<String, SimError> {
        let mut guard = lock(&self.shared.state);
        let st = &mut *guard;
        let user_guid = st
            .calls
            .get(&call_id)
            .ok_or_else(|| SimError::NotFound(format!("Salesloft call {call_id}")))?
            .user_id
            .and_then(|u| st.users.get(&u))
            .map(|u| u.guid.clone());
        let stamp = fresh_stamp(&self.shared.clock, st);
        let rng = &mut st.rng;
        let t = SalesloftTranscript::from_lines(call_id, user_guid, stamp, lines, &mut || {
            uuid_from(rng.random())
        });
        let id = t.id.clone();
        st.transcripts.insert(id.clone(), t);
        Ok(id)
    }

    pub fn call(&self, id: u64) -> Option<SalesloftCall> {
        lock(&self.shared.state).calls.get(&id).cloned()
    }

    pub fn calls(&self) -> Vec<SalesloftCall> {
        lock(&self.shared.state).calls.values().cloned().collect()
    }

    /// A call as the API renders it.
    pub fn call_json(&self, id: u64) -> Option<Value> {
        let base = self.shared.base();
        lock(&self.shared.state)
            .calls
            .get(&id)
            .map(|c| call_json(c, &base, self.shared.offset))
    }

    /// Every request, in the order answered.
    pub fn requests(&self) -> Vec<SalesloftRequest> {
        lock(&self.shared.state).log.clone()
    }

    /// The deepest page any request asked for (0 when none).
    pub fn max_page_requested(&self) -> u64 {
        lock(&self.shared.state)
            .log
            .iter()
            .map(|r| r.page)
            .max()
            .unwrap_or(0)
    }

    /// Requests answered 429.
    pub fn rate_limited(&self) -> usize {
        lock(&self.shared.state)
            .log
            .iter()
            .filter(|r| r.status == 429)
            .count()
    }

    /// Points left in the current window.
    pub fn points_remaining(&self) -> u64 {
        lock(&self.shared.state).budget.remaining(Instant::now())
    }

    /// Posts a `call_created` / `call_updated` style webhook: the call record
    /// as the body, `x-salesloft-event`, and `x-salesloft-signature` = hex
    /// HMAC-SHA1 of the raw body keyed with the callback token. Returns the
    /// receiver's status. One attempt: retries are the test's business.
    pub async fn send_webhook(
        &self,
        url: &str,
        callback_token: &str,
        event_type: &str,
        call_id: u64,
    ) -> Result<u16, SimError> {
        let body = self
            .call_json(call_id)
            .ok_or_else(|| SimError::NotFound(format!("Salesloft call {call_id}")))?
            .to_string();
        let signature = hex::encode(hmac_sha1(callback_token.as_bytes(), &[body.as_bytes()]));
        let send = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-salesloft-event", event_type)
            .header("x-salesloft-signature", signature)
            .body(body)
            .send();
        crate::server::deliver(url, send).await
    }
}

fn fresh_stamp(clock: &SimClock, st: &mut Store) -> OffsetDateTime {
    let now = clock.now_utc();
    let now = now
        .replace_nanosecond(now.microsecond() * 1000)
        .unwrap_or(now);
    let stamp = now.max(st.last_stamp + time::Duration::microseconds(1));
    st.last_stamp = stamp;
    stamp
}

// ---------------------------------------------------------------- rendering

fn link(base: &str, kind: &str, id: Option<u64>) -> Value {
    match id {
        Some(id) => json!({"id": id, "_href": format!("{base}/v2/{kind}/{id}")}),
        None => Value::Null,
    }
}

fn recording_json(r: &Recording) -> Value {
    json!({"url": r.url, "status": r.status, "recording_status": r.recording_status})
}

fn call_json(c: &SalesloftCall, base: &str, off: UtcOffset) -> Value {
    json!({
        "id": c.id,
        "to": c.to,
        "duration": c.duration,
        "disposition": c.disposition,
        "sentiment": c.sentiment,
        "created_at": timefmt::salesloft(c.created_at, off),
        "updated_at": timefmt::salesloft(c.updated_at, off),
        "recordings": c.recordings.iter().map(recording_json).collect::<Vec<_>>(),
        "user": link(base, "users", c.user_id),
        "action": link(base, "actions", c.action_id),
        "called_person": link(base, "people", c.called_person_id),
        "crm_activity": link(base, "crm_activities", c.crm_activity_id),
        "note": link(base, "notes", c.note_id),
        "cadence": link(base, "cadences", c.cadence_id),
        "step": link(base, "steps", c.step_id),
    })
}

fn user_json(u: &SalesloftUser) -> Value {
    json!({
        "id": u.id,
        "guid": u.guid,
        "name": format!("{} {}", u.first_name, u.last_name),
        "first_name": u.first_name,
        "last_name": u.last_name,
        "email": u.email,
        "active": u.active,
        "time_zone": "US/Eastern",
        "job_role": "Account Executive",
    })
}

fn cdr_json(c: &CallDataRecord, base: &str, off: UtcOffset) -> Value {
    json!({
        "id": c.id,
        "created_at": timefmt::salesloft(c.created_at, off),
        "updated_at": timefmt::salesloft(c.updated_at, off),
        "to": c.to,
        "from": c.from,
        "duration": c.duration,
        "direction": c.direction,
        "status": c.status,
        "call_type": "call",
        "recording": c.recording.as_ref().map(recording_json),
        "call": link(base, "activities/calls", Some(c.call_id)),
        "user": link(base, "users", c.user_id),
        "called_person": link(base, "people", c.called_person_id),
    })
}

fn transcription_json(t: &SalesloftTranscript, base: &str, off: UtcOffset) -> Value {
    json!({
        "id": t.id,
        "language_code": t.language_code,
        "created_at": timefmt::salesloft(t.created_at, off),
        "updated_at": timefmt::salesloft(t.updated_at, off),
        "conversation": {
            "id": t.conversation_id,
            "_href": format!("{base}/v2/conversations/{}", t.conversation_id),
        },
    })
}

fn conversation_json(t: &SalesloftTranscript, base: &str, off: UtcOffset) -> Value {
    json!({
        "id": t.conversation_id,
        "call_id": t.call_id.to_string(),
        "title": format!("Call {}", t.call_id),
        "platform": "Salesloft Dialer",
        "media_type": "audio",
        "duration": t.duration_ms,
        "user_guid": t.user_guid,
        "created_at": timefmt::salesloft(t.created_at, off),
        "updated_at": timefmt::salesloft(t.updated_at, off),
        "transcription": {
            "id": t.id,
            "_href": format!("{base}/v2/transcriptions/{}", t.id),
        },
    })
}

fn sentence_json(s: &Sentence) -> Value {
    json!({
        "id": s.id,
        "order_number": s.order_number,
        "start_time": s.start_time,
        "end_time": s.end_time,
        "recording_attendee_id": s.recording_attendee_id,
        "text": s.text,
    })
}

// ------------------------------------------------------------ the gatekeeper

fn header_pairs(cost: u64, remaining: u64, limit: u64) -> [(HeaderName, String); 3] {
    [
        (
            HeaderName::from_static("x-ratelimit-endpoint-cost"),
            cost.to_string(),
        ),
        (
            HeaderName::from_static("x-ratelimit-remaining-minute"),
            remaining.to_string(),
        ),
        (
            HeaderName::from_static("x-ratelimit-limit-minute"),
            limit.to_string(),
        ),
    ]
}

fn requested_page(query: Option<&str>) -> u64 {
    query_pairs(query)
        .into_iter()
        .rev()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
}

async fn gatekeeper(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let method = req.method().to_string();
    let page = requested_page(query.as_deref());
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| sh.keys.iter().any(|valid| valid == k.trim()));
    let mut record = SalesloftRequest {
        at: now,
        method,
        path,
        query,
        page,
        cost: 0,
        status: 0,
    };
    if !authorized {
        record.status = 401;
        lock(&sh.state).log.push(record);
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "Not authorized", "error_description": "The access token is invalid"}),
            &[],
        );
    }
    let cost = page_cost(page);
    let (admission, limit) = {
        let mut st = lock(&sh.state);
        let limit = st.budget.limit();
        (st.budget.try_acquire(now, cost), limit)
    };
    match admission {
        Admission::Refused { retry_after } => {
            record.status = 429;
            lock(&sh.state).log.push(record);
            let mut headers = header_pairs(cost, 0, limit).to_vec();
            headers.push((
                header::RETRY_AFTER,
                retry_after_secs(retry_after).to_string(),
            ));
            json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error": "Too Many Requests", "message": "Rate limit exceeded: the team has spent its cost points for this minute"}),
                &headers,
            )
        }
        Admission::Admitted { remaining } => {
            let failing = {
                let mut st = lock(&sh.state);
                let hit = st
                    .failing
                    .iter_mut()
                    .enumerate()
                    .find(|(_, (prefix, _, left))| {
                        record.path.starts_with(prefix.as_str()) && *left != Some(0)
                    })
                    .map(|(i, (_, status, left))| {
                        if let Some(n) = left {
                            *n -= 1;
                        }
                        (i, *status, *left == Some(0))
                    });
                hit.map(|(i, status, spent)| {
                    if spent {
                        st.failing.remove(i);
                    }
                    status
                })
            };
            let mut resp = match failing.and_then(|s| StatusCode::from_u16(s).ok()) {
                Some(status) => json_response(
                    status,
                    &json!({"error": status.canonical_reason().unwrap_or("Error")}),
                    &[],
                ),
                None => next.run(req).await,
            };
            for (name, value) in header_pairs(cost, remaining, limit) {
                if let Ok(v) = value.parse() {
                    resp.headers_mut().insert(name, v);
                }
            }
            record.cost = cost;
            record.status = resp.status().as_u16();
            lock(&sh.state).log.push(record);
            resp
        }
    }
}

// --------------------------------------------------------------- list logic

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortField {
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, Copy)]
enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What one list route accepts, from its public reference page.
struct ListSpec {
    /// The documented default `sort_by`.
    default_sort: SortField,
    /// Whether `sort_direction` is documented.
    sort_direction: bool,
    /// Documented filters besides `ids[]`, the date ranges and paging; the
    /// simulator accepts them (and implements `has_call`).
    filters: &'static [&'static str],
    /// Whether an undocumented parameter is a 422 (else it is ignored).
    strict: bool,
}

/// `GET /v2/activities/calls`:
/// https://developers.salesloft.com/docs/api/activities-calls-index/
const CALLS: ListSpec = ListSpec {
    default_sort: SortField::UpdatedAt,
    sort_direction: true,
    filters: &["user_guid[]", "person_id[]", "sentiment", "disposition"],
    strict: true,
};

/// `GET /v2/call_data_records`:
/// https://developers.salesloft.com/docs/api/call-data-records-index/
/// (default sort `created_at`; no filter by call).
const CALL_DATA_RECORDS: ListSpec = ListSpec {
    default_sort: SortField::CreatedAt,
    sort_direction: true,
    filters: &[
        "has_call",
        "user_guid[]",
        "person_id[]",
        "direction",
        "status",
        "sentiment",
        "disposition",
        "recordings_only",
        "group_id",
    ],
    strict: false,
};

/// `GET /v2/transcriptions`:
/// https://developer.salesloft.com/docs/api/conversations-transcriptions-find-all-transcripts/
/// (default sort `created_at`; no `sort_direction`).
const TRANSCRIPTIONS: ListSpec = ListSpec {
    default_sort: SortField::CreatedAt,
    sort_direction: false,
    filters: &["language_code"],
    strict: true,
};

/// `GET /v2/transcriptions/{id}/sentences`: paging only
/// (api-evangelist/salesloft openapi/salesloft-transcriptions-api-openapi.yml).
const SENTENCES: ListSpec = ListSpec {
    default_sort: SortField::CreatedAt,
    sort_direction: false,
    filters: &[],
    strict: true,
};

struct ListParams {
    ids: Vec<String>,
    /// `has_call`, when given.
    has_call: Option<bool>,
    filters: Vec<(SortField, Op, OffsetDateTime)>,
    sort_by: SortField,
    descending: bool,
    per_page: usize,
    page: usize,
    include_counts: bool,
    filtering: serde_json::Map<String, Value>,
}

fn unprocessable(param: &str, message: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"errors": { param: [message] }}),
        &[],
    )
}

fn parse_list(query: Option<&str>, spec: &ListSpec) -> Result<ListParams, (String, &'static str)> {
    let pairs = query_pairs(query);
    let mut p = ListParams {
        ids: Vec::new(),
        has_call: None,
        filters: Vec::new(),
        sort_by: spec.default_sort,
        descending: true,
        per_page: 25,
        page: 1,
        include_counts: false,
        filtering: serde_json::Map::new(),
    };
    for (k, v) in &pairs {
        match k.as_str() {
            "ids[]" | "ids" => {
                p.ids.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                p.filtering.insert("ids".into(), json!(p.ids));
            }
            "sort_by" => {
                p.sort_by = match v.as_str() {
                    "created_at" => SortField::CreatedAt,
                    "updated_at" => SortField::UpdatedAt,
                    _ => return Err(("sort_by".to_owned(), "must be created_at or updated_at")),
                }
            }
            "sort_direction" if spec.sort_direction => {
                p.descending = match v.to_ascii_uppercase().as_str() {
                    "ASC" => false,
                    "DESC" => true,
                    _ => return Err(("sort_direction".to_owned(), "must be ASC or DESC")),
                }
            }
            "per_page" => match v.trim().parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => p.per_page = n,
                _ => return Err(("per_page".to_owned(), "must be between 1 and 100")),
            },
            "page" => match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => p.page = n,
                _ => return Err(("page".to_owned(), "must be a positive integer")),
            },
            "include_paging_counts" => p.include_counts = v == "true",
            "has_call" if spec.filters.contains(&"has_call") => {
                p.has_call = match v.as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => return Err(("has_call".to_owned(), "must be true or false")),
                };
                p.filtering.insert("has_call".into(), json!(v));
            }
            _ => {
                let Some((field, op)) = date_filter(k) else {
                    if spec.strict && !spec.filters.contains(&k.as_str()) {
                        return Err((k.clone(), "is not a permitted parameter"));
                    }
                    continue;
                };
                let Some(at) = timefmt::parse_iso8601(v) else {
                    return Err((k.clone(), "must be an ISO 8601 timestamp"));
                };
                p.filters.push((field, op, at));
                p.filtering.insert(k.clone(), json!(v));
            }
        }
    }
    Ok(p)
}

fn date_filter(key: &str) -> Option<(SortField, Op)> {
    let (field, rest) = if let Some(r) = key.strip_prefix("updated_at[") {
        (SortField::UpdatedAt, r)
    } else if let Some(r) = key.strip_prefix("created_at[") {
        (SortField::CreatedAt, r)
    } else {
        return None;
    };
    let op = match rest {
        "gt]" => Op::Gt,
        "gte]" => Op::Gte,
        "lt]" => Op::Lt,
        "lte]" => Op::Lte,
        _ => return None,
    };
    Some((field, op))
}

trait Listed {
    fn id_text(&self) -> String;
    fn numeric_id(&self) -> Option<u64>;
    fn created(&self) -> OffsetDateTime;
    fn updated(&self) -> OffsetDateTime;
}

impl Listed for SalesloftCall {
    fn id_text(&self) -> String {
        self.id.to_string()
    }
    fn numeric_id(&self) -> Option<u64> {
        Some(self.id)
    }
    fn created(&self) -> OffsetDateTime {
        self.created_at
    }
    fn updated(&self) -> OffsetDateTime {
        self.updated_at
    }
}

impl Listed for CallDataRecord {
    fn id_text(&self) -> String {
        self.id.to_string()
    }
    fn numeric_id(&self) -> Option<u64> {
        Some(self.id)
    }
    fn created(&self) -> OffsetDateTime {
        self.created_at
    }
    fn updated(&self) -> OffsetDateTime {
        self.updated_at
    }
}

impl Listed for SalesloftTranscript {
    fn id_text(&self) -> String {
        self.id.clone()
    }
    fn numeric_id(&self) -> Option<u64> {
        None
    }
    fn created(&self) -> OffsetDateTime {
        self.created_at
    }
    fn updated(&self) -> OffsetDateTime {
        self.updated_at
    }
}

fn select<'a, T: Listed + 'a>(items: impl Iterator<Item = &'a T>, p: &ListParams) -> Vec<&'a T> {
    let mut out: Vec<&T> = items
        .filter(|it| p.ids.is_empty() || p.ids.contains(&it.id_text()))
        .filter(|it| {
            p.filters.iter().all(|&(field, op, at)| {
                let v = match field {
                    SortField::CreatedAt => it.created(),
                    SortField::UpdatedAt => it.updated(),
                };
                match op {
                    Op::Gt => v > at,
                    Op::Gte => v >= at,
                    Op::Lt => v < at,
                    Op::Lte => v <= at,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| {
        let (ka, kb) = match p.sort_by {
            SortField::CreatedAt => (a.created(), b.created()),
            SortField::UpdatedAt => (a.updated(), b.updated()),
        };
        let primary = if p.descending {
            kb.cmp(&ka)
        } else {
            ka.cmp(&kb)
        };
        primary.then_with(|| match (a.numeric_id(), b.numeric_id()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.id_text().cmp(&b.id_text()),
        })
    });
    out
}

fn page_of<T>(items: &[T], p: &ListParams, render: impl Fn(&T) -> Value) -> Value {
    let total = items.len();
    let start = (p.page - 1).saturating_mul(p.per_page);
    let data: Vec<Value> = items
        .iter()
        .skip(start)
        .take(p.per_page)
        .map(render)
        .collect();
    let has_next = start.saturating_add(p.per_page) < total;
    let mut paging = json!({
        "per_page": p.per_page,
        "current_page": p.page,
        "next_page": if has_next { json!(p.page + 1) } else { Value::Null },
        "prev_page": if p.page > 1 { json!(p.page - 1) } else { Value::Null },
    });
    if p.include_counts {
        paging["total_pages"] = json!(total.div_ceil(p.per_page));
        paging["total_count"] = json!(total);
    }
    json!({
        "metadata": {
            "filtering": p.filtering,
            "paging": paging,
            "sorting": {
                "sort_by": match p.sort_by {
                    SortField::CreatedAt => "created_at",
                    SortField::UpdatedAt => "updated_at",
                },
                "sort_direction": if p.descending { "DESC" } else { "ASC" },
            },
        },
        "data": data,
    })
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v, &[])
}

async fn not_found() -> Response {
    missing()
}

fn missing() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"status": 404, "error": "Not Found"}),
        &[],
    )
}

fn numeric_id(raw: &str) -> Option<u64> {
    raw.strip_suffix(".json").unwrap_or(raw).parse().ok()
}

// ----------------------------------------------------------------- handlers

/// `GET /v2/activities/calls`, see [`CALLS`].
async fn list_calls(State(sh): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let p = match parse_list(q.as_deref(), &CALLS) {
        Ok(p) => p,
        Err((param, message)) => return unprocessable(&param, message),
    };
    let base = sh.base();
    let st = lock(&sh.state);
    let items = select(st.calls.values(), &p);
    ok(&page_of(&items, &p, |c| match st.poisoned.get(&c.id) {
        Some(poison) => poison.clone(),
        None => call_json(c, &base, sh.offset),
    }))
}

/// `GET /v2/activities/calls/{id}` ("Fetch a call, by ID only": Salesloft's
/// v2 swagger as listed in streamdata-gallery-topics/data
/// `_listings/salesloft/openapi.md`).
async fn get_call(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let base = sh.base();
    let st = lock(&sh.state);
    match numeric_id(&id).and_then(|id| st.calls.get(&id)) {
        Some(c) => ok(&json!({"data": call_json(c, &base, sh.offset)})),
        None => missing(),
    }
}

/// `GET /v2/users/{id}` (MarkEstey/firehose-tap-salesloft
/// tap_salesloft/streams/users.py quotes its fields from
/// https://developers.salesloft.com/docs/api/users-index/).
async fn get_user(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let st = lock(&sh.state);
    match numeric_id(&id).and_then(|id| st.users.get(&id)) {
        Some(u) => ok(&json!({"data": user_json(u)})),
        None => missing(),
    }
}

/// `GET /v2/call_data_records`, see [`CALL_DATA_RECORDS`]: an unknown
/// filter (`call_id[]`, say) is ignored, so the answer is the newest records
/// of the whole team.
async fn list_cdrs(State(sh): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let p = match parse_list(q.as_deref(), &CALL_DATA_RECORDS) {
        Ok(p) => p,
        Err((param, message)) => return unprocessable(&param, message),
    };
    let base = sh.base();
    let st = lock(&sh.state);
    // Every simulated record has a call logged.
    let items: Vec<&CallDataRecord> = select(st.cdrs.values(), &p)
        .into_iter()
        .filter(|_| p.has_call != Some(false))
        .collect();
    ok(&page_of(&items, &p, |c| cdr_json(c, &base, sh.offset)))
}

/// `GET /v2/call_data_records/{id}` ("Fetch a call data record, by ID
/// only": the same swagger listing).
async fn get_cdr(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let base = sh.base();
    let st = lock(&sh.state);
    match numeric_id(&id).and_then(|id| st.cdrs.get(&id)) {
        Some(c) => ok(&json!({"data": cdr_json(c, &base, sh.offset)})),
        None => missing(),
    }
}

/// `GET /v2/transcriptions`, see [`TRANSCRIPTIONS`].
async fn list_transcriptions(State(sh): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let p = match parse_list(q.as_deref(), &TRANSCRIPTIONS) {
        Ok(p) => p,
        Err((param, message)) => return unprocessable(&param, message),
    };
    let base = sh.base();
    let st = lock(&sh.state);
    let items = select(st.transcripts.values(), &p);
    ok(&page_of(&items, &p, |t| {
        transcription_json(t, &base, sh.offset)
    }))
}

/// `GET /v2/transcriptions/{id}` (api-evangelist/salesloft
/// openapi/salesloft-transcriptions-api-openapi.yml).
async fn get_transcription(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let base = sh.base();
    let st = lock(&sh.state);
    match st.transcripts.get(&id) {
        Some(t) => ok(&json!({"data": transcription_json(t, &base, sh.offset)})),
        None => missing(),
    }
}

/// `GET /v2/conversations/{id}` and `/{id}/extensive`
/// (https://developers.salesloft.com/docs/api/conversations-find-all/ lists
/// the resource). The `call_id` it carries is an assumption: no public
/// document shows a conversation naming its call.
async fn get_conversation(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let base = sh.base();
    let st = lock(&sh.state);
    match st.transcripts.values().find(|t| t.conversation_id == id) {
        Some(t) => ok(&json!({"data": conversation_json(t, &base, sh.offset)})),
        None => missing(),
    }
}

/// `GET /v2/transcriptions/{id}/sentences`, see [`SENTENCES`].
async fn list_sentences(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let mut p = match parse_list(q.as_deref(), &SENTENCES) {
        Ok(p) => p,
        Err((param, message)) => return unprocessable(&param, message),
    };
    let st = lock(&sh.state);
    let Some(t) = st.transcripts.get(&id) else {
        return missing();
    };
    let mut sentences: Vec<&Sentence> = t.sentences.iter().collect();
    sentences.sort_by_key(|s| s.order_number);
    // Sentences come in transcript order whatever the sort asks.
    p.descending = false;
    let mut body = page_of(&sentences, &p, |s| sentence_json(s));
    if let Some(meta) = body.get_mut("metadata") {
        meta["sorting"] = json!({"sort_by": "order_number", "sort_direction": "ASC"});
    }
    ok(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_pages_cost_more() {
        assert_eq!(page_cost(1), 1);
        assert_eq!(page_cost(100), 1);
        assert_eq!(page_cost(101), 3);
        assert_eq!(page_cost(150), 3);
        assert_eq!(page_cost(151), 8);
        assert_eq!(page_cost(250), 8);
        assert_eq!(page_cost(251), 10);
        assert_eq!(page_cost(500), 10);
        assert_eq!(page_cost(501), 30);
    }
}

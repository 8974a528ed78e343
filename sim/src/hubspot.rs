//! HubSpot CRM v3 Calls: search, get, list, patch, owners, dispositions,
//! calling transcripts, and v3-signed webhooks.
//!
//! What makes it more than a mock:
//!
//! - **Search lags writes.** A call created or changed reaches search only
//!   after [`HubspotOptions::search_lag`] (simulated); until then search sees
//!   the previous version (or nothing) while `GET` by id sees the new one.
//! - **Search stops at 10,000.** A request whose `after + limit` passes
//!   10,000 is a 400, even though `paging.next` is offered up to there.
//! - **Rate limits.** 100 requests per 10 s per token and 5 searches per
//!   second (both scaled), answered 429 with `errorType: RATE_LIMIT`.
//! - Property values are strings (or null); unknown requested properties are
//!   left out; `hs_lastmodifieddate` is ISO with milliseconds.
//! - **Only documented routes and query parameters.** Anything else gets
//!   HubSpot's error body `{status: "error", message, correlationId,
//!   category}`: an unknown path 404, an unknown query parameter 400. That
//!   includes `/calls/v1/dispositions`, a wrong path the bridge once used.
//! - **Departed reps.** An archived (deactivated) owner is 404 unless asked
//!   for with `archived=true`, as HubSpot's owners API does.
//! - **Properties must exist before they are written.** The portal starts
//!   with HubSpot's call properties only; a PATCH naming any other is a 400
//!   `PROPERTY_DOESNT_EXIST` until it is created through the properties
//!   API, where creating a name or group that exists is a 409. Switches
//!   refuse property creation or call writes with HubSpot's 403
//!   `MISSING_SCOPES`, or fail PATCHes (5xx or 429) for a while.
//!
//! Routes follow HubSpot's OpenAPI specs in
//! github.com/HubSpot/HubSpot-public-api-spec-collection (paths given next
//! to each route below) and, for the legacy dispositions endpoint,
//! https://developers.hubspot.com/docs/api-reference/legacy/crm/activities/engagements/get-calling-v1-dispositions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::clock::{SimClock, retry_after_secs};
use crate::ratelimit::{Admission, SlidingWindow};
use crate::server::{HttpServer, http_client, lock};
use crate::util::{hmac_sha256, json as json_response, query_pairs};
use crate::{SimError, timefmt};

/// HubSpot's default call dispositions (`GET /calling/v1/dispositions`).
pub const DEFAULT_DISPOSITIONS: [(&str, &str); 6] = [
    ("9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"),
    ("f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"),
    ("a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"),
    ("b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"),
    ("73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"),
    ("17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"),
];

/// The disposition GUID for "Connected".
pub const CONNECTED: &str = "f240bbac-87c9-4f6e-bf70-924b57d47db7";
/// The disposition GUID for "No answer".
pub const NO_ANSWER: &str = "73a0d17f-1163-4015-bdd5-ec830791da20";
/// The disposition GUID for "Busy".
pub const BUSY: &str = "9d9162e7-6cf3-4944-bf63-4dff82258764";
/// The disposition GUID for "Left voicemail".
pub const LEFT_VOICEMAIL: &str = "b2cf5968-551e-4856-9783-52b3da59a7d0";

/// Search refuses to page past this many results.
pub const SEARCH_CAP: u64 = 10_000;

/// Call properties the simulated portal defines. Requested properties
/// outside this set (and not added by a call) are left out of answers.
const KNOWN_PROPERTIES: &[&str] = &[
    "hs_timestamp",
    "hs_call_title",
    "hs_call_body",
    "hs_call_duration",
    "hs_call_status",
    "hs_call_direction",
    "hs_call_recording_url",
    "hs_call_disposition",
    "hubspot_owner_id",
    "hs_call_from_number",
    "hs_call_to_number",
    "hs_call_has_transcript",
    "hs_call_transcription_id",
    "hs_call_source",
    "hs_call_external_id",
    "hs_activity_type",
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
];

const READ_ONLY: &[&str] = &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"];
const DEFAULT_PROPERTIES: &[&str] = &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"];
const DATETIME_PROPERTIES: &[&str] = &["hs_timestamp", "hs_createdate", "hs_lastmodifieddate"];
const NUMBER_PROPERTIES: &[&str] = &["hs_call_duration", "hs_object_id"];

/// How to start a [`HubspotSim`].
#[derive(Clone, Debug)]
pub struct HubspotOptions {
    pub time_scale: f64,
    /// Valid private-app tokens.
    pub tokens: Vec<String>,
    /// How long (simulated) a write takes to reach search.
    pub search_lag: Duration,
    /// Requests per token in any 10 s window (simulated).
    pub requests_per_ten_seconds: u64,
    /// Search requests per token in any 1 s window (simulated).
    pub searches_per_second: u64,
    /// Whether 429 answers carry `Retry-After` (HubSpot does not promise it).
    pub send_retry_after: bool,
    /// `portalId` in webhook events.
    pub portal_id: u64,
    /// `appId` in webhook events.
    pub app_id: u64,
    pub bind: SocketAddr,
}

impl Default for HubspotOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            tokens: vec![crate::DEMO_HUBSPOT_TOKEN.to_owned()],
            search_lag: Duration::from_secs(2),
            requests_per_ten_seconds: 100,
            searches_per_second: 5,
            send_retry_after: true,
            portal_id: 62_515,
            app_id: 1_234_567,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// A call engagement.
#[derive(Clone, Debug, PartialEq)]
pub struct HubspotCall {
    pub id: u64,
    pub created_at: OffsetDateTime,
    /// Property values as HubSpot stores them (strings). When
    /// `hs_lastmodifieddate` is absent it is the creation time.
    pub properties: BTreeMap<String, String>,
    pub contact_ids: Vec<u64>,
    pub deal_ids: Vec<u64>,
    pub archived: bool,
}

impl HubspotCall {
    /// A call with these properties.
    pub fn new(id: u64, created_at: OffsetDateTime, properties: &[(&str, &str)]) -> Self {
        Self {
            id,
            created_at,
            properties: properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            contact_ids: Vec::new(),
            deal_ids: Vec::new(),
            archived: false,
        }
    }
}

/// A HubSpot user who owns records (`GET /crm/v3/owners/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct HubspotOwner {
    pub id: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub user_id: u64,
    pub archived: bool,
}

/// One utterance of a calling transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    pub speaker_name: String,
    pub speaker_email: Option<String>,
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A calling-extension transcript.
#[derive(Clone, Debug, PartialEq)]
pub struct HubspotTranscript {
    pub id: u64,
    pub call_id: u64,
    pub utterances: Vec<Utterance>,
}

/// One request as the simulator saw it.
#[derive(Clone, Debug)]
pub struct HubspotRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub search: bool,
    pub status: u16,
}

#[derive(Clone, Debug)]
struct Snapshot {
    props: BTreeMap<String, String>,
    updated_at: OffsetDateTime,
    archived: bool,
}

struct Stored {
    id: u64,
    created_at: OffsetDateTime,
    current: Snapshot,
    /// Versions as search sees them, each from the instant it became visible.
    indexed: Vec<(Instant, Snapshot)>,
    contact_ids: Vec<u64>,
    deal_ids: Vec<u64>,
}

impl Stored {
    fn searchable(&self, now: Instant) -> Option<&Snapshot> {
        self.indexed
            .iter()
            .rev()
            .find(|(at, _)| *at <= now)
            .map(|(_, s)| s)
    }
}

struct Limits {
    general: SlidingWindow,
    search: SlidingWindow,
}

/// PATCHes of calls failing with `status` until `until` (real time).
#[derive(Clone, Copy)]
struct PatchFault {
    status: u16,
    until: Instant,
}

struct Store {
    /// Property groups and properties created through the properties API,
    /// by name, as answered.
    groups: BTreeMap<String, Value>,
    created_properties: BTreeMap<String, Value>,
    /// Whether property (and group) creation answers 403 `MISSING_SCOPES`.
    refuse_property_creation: bool,
    /// Whether call PATCHes answer 403 `MISSING_SCOPES`.
    refuse_call_writes: bool,
    patch_fault: Option<PatchFault>,
    calls: BTreeMap<u64, Stored>,
    owners: BTreeMap<u64, HubspotOwner>,
    transcripts: BTreeMap<u64, HubspotTranscript>,
    dispositions: Vec<(String, String)>,
    /// Whether `/calling/v1/dispositions` answers 403 (a missing scope).
    dispositions_fail: bool,
    search_total: Option<i64>,
    /// Search results served in place of a call's rendering (a record a
    /// client cannot read), by call id.
    poisoned: BTreeMap<u64, Value>,
    known: BTreeSet<String>,
    limits: BTreeMap<String, Limits>,
    log: Vec<HubspotRequest>,
    last_stamp: OffsetDateTime,
    next_id: u64,
    next_event: u64,
}

struct Shared {
    clock: SimClock,
    tokens: Vec<String>,
    lag_real: Duration,
    ten_seconds: (u64, Duration),
    one_second: (u64, Duration),
    send_retry_after: bool,
    portal_id: u64,
    app_id: u64,
    base: Mutex<String>,
    state: Mutex<Store>,
}

impl Shared {
    fn base(&self) -> String {
        lock(&self.base).clone()
    }
}

/// The simulated HubSpot. Cheap to clone.
#[derive(Clone)]
pub struct HubspotSim {
    shared: Arc<Shared>,
    server: Arc<HttpServer>,
    client: reqwest::Client,
}

impl HubspotSim {
    pub async fn start(options: HubspotOptions) -> Result<Self, SimError> {
        let clock = SimClock::new(options.time_scale)?;
        let shared = Arc::new(Shared {
            lag_real: clock.real(options.search_lag),
            ten_seconds: (
                options.requests_per_ten_seconds,
                clock.real(Duration::from_secs(10)),
            ),
            one_second: (
                options.searches_per_second,
                clock.real(Duration::from_secs(1)),
            ),
            clock,
            tokens: options.tokens,
            send_retry_after: options.send_retry_after,
            portal_id: options.portal_id,
            app_id: options.app_id,
            base: Mutex::new(String::new()),
            state: Mutex::new(Store {
                groups: BTreeMap::new(),
                created_properties: BTreeMap::new(),
                refuse_property_creation: false,
                refuse_call_writes: false,
                patch_fault: None,
                calls: BTreeMap::new(),
                owners: BTreeMap::new(),
                transcripts: BTreeMap::new(),
                dispositions: DEFAULT_DISPOSITIONS
                    .iter()
                    .map(|(i, l)| ((*i).to_owned(), (*l).to_owned()))
                    .collect(),
                dispositions_fail: false,
                search_total: None,
                poisoned: BTreeMap::new(),
                known: KNOWN_PROPERTIES.iter().map(|s| (*s).to_owned()).collect(),
                limits: BTreeMap::new(),
                log: Vec::new(),
                last_stamp: OffsetDateTime::UNIX_EPOCH,
                next_id: 50_000_000_000,
                next_event: 1,
            }),
        });
        let router = Router::new()
            // PublicApiSpecs/CRM/Calls/Rollouts/424/v3/calls.json
            .route("/crm/v3/objects/calls/search", post(search))
            .route("/crm/v3/objects/calls", get(list_calls))
            .route(
                "/crm/v3/objects/calls/{id}",
                get(get_call).patch(patch_call),
            )
            // PublicApiSpecs/CRM/Properties/Rollouts/145899/v3/properties.json
            // (`/crm/v3/properties/{objectType}...`, served for `calls`).
            .route("/crm/v3/properties/calls", post(create_property))
            .route("/crm/v3/properties/calls/groups", post(create_group))
            .route("/crm/v3/properties/calls/groups/{name}", get(get_group))
            .route("/crm/v3/properties/calls/{name}", get(get_property))
            // PublicApiSpecs/CRM/Crm Owners/Rollouts/146888/v3/crmOwners.json
            .route("/crm/v3/owners/{id}", get(get_owner))
            // https://developers.hubspot.com/docs/api-reference/legacy/crm/activities/engagements/get-calling-v1-dispositions
            // (`[{id, label}]`). Not in the OpenAPI collection; no scope is
            // stated for it.
            .route("/calling/v1/dispositions", get(dispositions))
            // PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json
            .route(
                "/crm/v4/associations/{from}/{to}/batch/read",
                post(associations_batch_read),
            )
            // PublicApiSpecs/CRM/Transcriptions/Rollouts/178922/v3/transcriptions.json
            .route(
                "/crm/v3/extensions/calling/transcripts/{id}",
                get(transcript),
            )
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(shared.clone(), gatekeeper))
            .with_state(shared.clone());
        let server = HttpServer::start(options.bind, router).await?;
        *lock(&shared.base) = server.base_url();
        Ok(Self {
            shared,
            server: Arc::new(server),
            client: http_client()?,
        })
    }

    /// The API base, e.g. `http://127.0.0.1:41234` (requests go to
    /// `{url}/crm/v3/...`).
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The real length of the search lag at this time scale.
    pub fn search_lag(&self) -> Duration {
        self.shared.lag_real
    }

    pub fn add_owner(&self, owner: HubspotOwner) {
        lock(&self.shared.state).owners.insert(owner.id, owner);
    }

    /// Makes `/calling/v1/dispositions` answer 403 (a token without the
    /// scope), or answer again.
    pub fn fail_dispositions(&self, fail: bool) {
        lock(&self.shared.state).dispositions_fail = fail;
    }

    /// Sam Rivera (owner 77, `sam@yourco.com`) and one finished, recorded
    /// outbound call of theirs: the call's id.
    pub fn add_sams_recorded_call(&self) -> u64 {
        self.add_owner(HubspotOwner {
            id: 77,
            email: "sam@yourco.com".into(),
            first_name: "Sam".into(),
            last_name: "Rivera".into(),
            user_id: 7_700,
            archived: false,
        });
        self.create_call(&[
            ("hs_timestamp", "2026-08-05T20:58:49.000Z"),
            ("hs_call_title", "Discovery"),
            ("hs_call_status", "COMPLETED"),
            ("hs_call_direction", "OUTBOUND"),
            ("hs_call_duration", "63000"),
            ("hubspot_owner_id", "77"),
            (
                "hs_call_recording_url",
                "https://recordings.example/hubspot-77.mp3",
            ),
        ])
    }

    /// Serves `result` instead of the call in search results, wherever the
    /// call would be, and as the call read by id: a record the client
    /// cannot read (no readable id, properties of the wrong type). Not
    /// something HubSpot documents; it stands for whatever a client cannot
    /// parse.
    pub fn poison_search_result(&self, call_id: u64, result: Value) {
        lock(&self.shared.state).poisoned.insert(call_id, result);
    }

    /// Answers searches with this `total` instead of the real count (the
    /// spec types it `int32`, so a negative one is schema-valid); paging
    /// still follows the real count. `None`: the real count again.
    pub fn search_total(&self, total: Option<i64>) {
        lock(&self.shared.state).search_total = total;
    }

    /// Associates a call with contacts and deals (as the v4 associations
    /// API and `GET ?associations=` answer them).
    pub fn associate(
        &self,
        call_id: u64,
        contact_ids: &[u64],
        deal_ids: &[u64],
    ) -> Result<(), SimError> {
        let mut st = lock(&self.shared.state);
        let stored = st
            .calls
            .get_mut(&call_id)
            .ok_or_else(|| SimError::NotFound(format!("HubSpot call {call_id}")))?;
        stored.contact_ids = contact_ids.to_vec();
        stored.deal_ids = deal_ids.to_vec();
        Ok(())
    }

    /// Adds a disposition besides HubSpot's defaults.
    pub fn add_disposition(&self, id: &str, label: &str) {
        lock(&self.shared.state)
            .dispositions
            .push((id.to_owned(), label.to_owned()));
    }

    /// Adds a call that already existed before the test: its timestamps are
    /// kept and search sees it at once.
    pub fn add_call(&self, call: HubspotCall) {
        let mut st = lock(&self.shared.state);
        let now = Instant::now();
        let stored = stored_from(call, &mut st);
        st.last_stamp = st.last_stamp.max(stored.current.updated_at);
        let mut stored = stored;
        stored.indexed.push((now, stored.current.clone()));
        st.calls.insert(stored.id, stored);
    }

    /// Creates a call now: `createdAt` and `hs_lastmodifieddate` are now and
    /// search sees it only after the lag. Returns its id.
    pub fn create_call(&self, properties: &[(&str, &str)]) -> u64 {
        let mut st = lock(&self.shared.state);
        let stamp = fresh_stamp(&self.shared.clock, &mut st);
        st.next_id += 1;
        let id = st.next_id;
        let mut call = HubspotCall::new(id, stamp, properties);
        call.properties
            .insert("hs_lastmodifieddate".into(), timefmt::millis_z(stamp));
        let mut stored = stored_from(call, &mut st);
        stored.indexed.push((
            Instant::now() + self.shared.lag_real,
            stored.current.clone(),
        ));
        st.calls.insert(id, stored);
        id
    }

    /// Changes properties as a write would (`None` clears one): bumps
    /// `hs_lastmodifieddate`; search sees the change after the lag.
    pub fn update_call(&self, id: u64, changes: &[(&str, Option<&str>)]) -> Result<(), SimError> {
        let changes: Vec<(String, Option<String>)> = changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect();
        let mut st = lock(&self.shared.state);
        apply_update(&self.shared, &mut st, id, &changes, None)
    }

    /// Archives (deletes) a call: search stops finding it after the lag.
    pub fn archive_call(&self, id: u64) -> Result<(), SimError> {
        let mut st = lock(&self.shared.state);
        apply_update(&self.shared, &mut st, id, &[], Some(true))
    }

    /// Adds a transcript as it existed before the test, without touching
    /// the call.
    pub fn add_transcript(&self, transcript: HubspotTranscript) {
        lock(&self.shared.state)
            .transcripts
            .insert(transcript.id, transcript);
    }

    /// A transcript arrives for a call now: the transcript is stored and the
    /// call gains `hs_call_transcription_id` and `hs_call_has_transcript`.
    pub fn transcribe(&self, call_id: u64, utterances: Vec<Utterance>) -> Result<u64, SimError> {
        let mut st = lock(&self.shared.state);
        st.next_id += 1;
        let id = st.next_id;
        let changes = vec![
            ("hs_call_transcription_id".to_owned(), Some(id.to_string())),
            ("hs_call_has_transcript".to_owned(), Some("true".to_owned())),
        ];
        apply_update(&self.shared, &mut st, call_id, &changes, None)?;
        st.transcripts.insert(
            id,
            HubspotTranscript {
                id,
                call_id,
                utterances,
            },
        );
        Ok(id)
    }

    /// Property creation (groups too) answers 403 `MISSING_SCOPES` while
    /// `refuse` holds: a token without any of the schema-write scopes.
    pub fn refuse_property_creation(&self, refuse: bool) {
        lock(&self.shared.state).refuse_property_creation = refuse;
    }

    /// Call PATCHes answer 403 `MISSING_SCOPES` while `refuse` holds: a
    /// token without `crm.objects.contacts.write`.
    pub fn refuse_call_writes(&self, refuse: bool) {
        lock(&self.shared.state).refuse_call_writes = refuse;
    }

    /// Call PATCHes answer `status` (a 5xx, or 429 with HubSpot's rate
    /// limit body) for `real` time from now.
    pub fn fail_patches(&self, status: u16, real: Duration) {
        lock(&self.shared.state).patch_fault = Some(PatchFault {
            status,
            until: Instant::now() + real,
        });
    }

    /// Call PATCHes answer normally again.
    pub fn heal_patches(&self) {
        lock(&self.shared.state).patch_fault = None;
    }

    /// The property groups and properties created through the API, by
    /// name.
    pub fn created_properties(&self) -> (Vec<String>, Vec<String>) {
        let st = lock(&self.shared.state);
        (
            st.groups.keys().cloned().collect(),
            st.created_properties.keys().cloned().collect(),
        )
    }

    /// Deletes a created property (a portal admin did), values and all.
    pub fn delete_property(&self, name: &str) {
        let mut st = lock(&self.shared.state);
        if st.created_properties.remove(name).is_some() {
            st.known.remove(name);
            for call in st.calls.values_mut() {
                call.current.props.remove(name);
            }
        }
    }

    /// A property as if created before the test (in the portal already,
    /// by a person), with its `type` and `fieldType`.
    pub fn define_property(&self, group: &str, name: &str, kind: &str, field_type: &str) {
        let mut st = lock(&self.shared.state);
        st.groups.entry(group.to_owned()).or_insert_with(
            || json!({"name": group, "label": group, "displayOrder": -1, "archived": false}),
        );
        st.known.insert(name.to_owned());
        st.created_properties.insert(
            name.to_owned(),
            json!({"name": name, "label": name, "type": kind, "fieldType": field_type,
                   "groupName": group, "description": "", "options": []}),
        );
    }

    /// The call as `GET` by id sees it (all properties set).
    pub fn call(&self, id: u64) -> Option<HubspotCall> {
        let st = lock(&self.shared.state);
        st.calls.get(&id).map(|s| HubspotCall {
            id: s.id,
            created_at: s.created_at,
            properties: s.current.props.clone(),
            contact_ids: s.contact_ids.clone(),
            deal_ids: s.deal_ids.clone(),
            archived: s.current.archived,
        })
    }

    /// Every request, in the order answered.
    pub fn requests(&self) -> Vec<HubspotRequest> {
        lock(&self.shared.state).log.clone()
    }

    /// Requests answered 429.
    pub fn rate_limited(&self) -> usize {
        lock(&self.shared.state)
            .log
            .iter()
            .filter(|r| r.status == 429)
            .count()
    }

    /// Posts a v3 webhook batch (one `object.creation` event per call id)
    /// signed with `X-HubSpot-Signature-v3` = base64 HMAC-SHA256(client
    /// secret, `POST` + `url` + body + timestamp) and
    /// `X-HubSpot-Request-Timestamp` (real epoch ms). Returns the status.
    pub async fn send_webhook_v3(
        &self,
        url: &str,
        client_secret: &str,
        object_ids: &[u64],
    ) -> Result<u16, SimError> {
        let occurred = timefmt::epoch_ms(self.shared.clock.now_utc());
        let events: Vec<Value> = {
            let mut st = lock(&self.shared.state);
            object_ids
                .iter()
                .map(|id| {
                    st.next_event += 1;
                    json!({
                        "eventId": 1_000_000 + st.next_event,
                        "subscriptionId": 2_345_678,
                        "portalId": self.shared.portal_id,
                        "appId": self.shared.app_id,
                        "occurredAt": occurred,
                        "subscriptionType": "object.creation",
                        "attemptNumber": 0,
                        "objectId": id,
                        "objectTypeId": "0-48",
                        "changeSource": "CRM_UI",
                        "changeFlag": "CREATED",
                    })
                })
                .collect()
        };
        let body = Value::Array(events).to_string();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
            .to_string();
        let mac = hmac_sha256(
            client_secret.as_bytes(),
            &[
                b"POST",
                url.as_bytes(),
                body.as_bytes(),
                timestamp.as_bytes(),
            ],
        );
        let signature = base64::engine::general_purpose::STANDARD.encode(mac);
        let send = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-HubSpot-Signature-v3", signature)
            .header("X-HubSpot-Request-Timestamp", timestamp)
            .body(body)
            .send();
        crate::server::deliver(url, send).await
    }
}

fn stored_from(call: HubspotCall, st: &mut Store) -> Stored {
    let mut props = call.properties;
    for k in props.keys() {
        st.known.insert(k.clone());
    }
    let updated_at = props
        .get("hs_lastmodifieddate")
        .and_then(|v| parse_datetime(v))
        .unwrap_or(call.created_at);
    props.insert("hs_object_id".into(), call.id.to_string());
    props.insert("hs_createdate".into(), timefmt::millis_z(call.created_at));
    props.insert("hs_lastmodifieddate".into(), timefmt::millis_z(updated_at));
    Stored {
        id: call.id,
        created_at: call.created_at,
        current: Snapshot {
            props,
            updated_at,
            archived: call.archived,
        },
        indexed: Vec::new(),
        contact_ids: call.contact_ids,
        deal_ids: call.deal_ids,
    }
}

fn fresh_stamp(clock: &SimClock, st: &mut Store) -> OffsetDateTime {
    let now = clock.now_utc();
    let now = now
        .replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .unwrap_or(now);
    let stamp = now.max(st.last_stamp + time::Duration::milliseconds(1));
    st.last_stamp = stamp;
    stamp
}

fn apply_update(
    shared: &Shared,
    st: &mut Store,
    id: u64,
    changes: &[(String, Option<String>)],
    archive: Option<bool>,
) -> Result<(), SimError> {
    let stamp = fresh_stamp(&shared.clock, st);
    for (k, _) in changes {
        st.known.insert(k.clone());
    }
    let call = st
        .calls
        .get_mut(&id)
        .ok_or_else(|| SimError::NotFound(format!("HubSpot call {id}")))?;
    for (k, v) in changes {
        match v {
            Some(v) if !v.is_empty() => {
                call.current.props.insert(k.clone(), v.clone());
            }
            _ => {
                call.current.props.remove(k);
            }
        }
    }
    if let Some(a) = archive {
        call.current.archived = a;
    }
    call.current.updated_at = stamp;
    call.current
        .props
        .insert("hs_lastmodifieddate".into(), timefmt::millis_z(stamp));
    let now = Instant::now();
    // Versions already superseded in search can go.
    if let Some(last_visible) = call.indexed.iter().rposition(|(at, _)| *at <= now) {
        call.indexed.drain(..last_visible);
    }
    call.indexed
        .push((now + shared.lag_real, call.current.clone()));
    Ok(())
}

/// Why a value does not fit a property's type, in the forms HubSpot
/// documents ("How should timestamps be formatted for HubSpot's APIs?":
/// a datetime as epoch milliseconds or ISO 8601, a date as midnight UTC in
/// milliseconds or `YYYY-MM-DD`; a bool property's options `true` /
/// `false`; a number a decimal). The error code is the simulator's own:
/// HubSpot's for these cases is not documented.
fn value_refused(def: &Value, value: &Value) -> Option<String> {
    let name = def.get("name").and_then(Value::as_str).unwrap_or_default();
    let text = value_text(value)?;
    let text = text.trim();
    let fits = match def.get("type").and_then(Value::as_str) {
        Some("bool") => matches!(text, "true" | "false"),
        Some("number") => text.parse::<f64>().is_ok_and(f64::is_finite),
        Some("datetime") => parse_datetime(text).is_some(),
        Some("date") => match text.parse::<i64>() {
            Ok(ms) => ms.rem_euclid(86_400_000) == 0,
            Err(_) => {
                text.len() == 10 && timefmt::parse_iso8601(&format!("{text}T00:00:00Z")).is_some()
            }
        },
        _ => true,
    };
    (!fits).then(|| format!("{text} was not a valid value for property {name}"))
}

fn parse_datetime(v: &str) -> Option<OffsetDateTime> {
    if let Ok(ms) = v.trim().parse::<i64>() {
        return timefmt::from_epoch_ms(ms);
    }
    timefmt::parse_iso8601(v.trim())
}

// ---------------------------------------------------------------- responses

fn correlation_id() -> String {
    crate::util::uuid_from(rand::random())
}

fn hs_error(status: StatusCode, category: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({
            "status": "error",
            "message": message,
            "correlationId": correlation_id(),
            "category": category,
        }),
        &[],
    )
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v, &[])
}

async fn not_found() -> Response {
    hs_error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

fn object_not_found() -> Response {
    hs_error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
    )
}

fn render(
    id: u64,
    created_at: OffsetDateTime,
    snap: &Snapshot,
    wanted: Option<&[String]>,
    known: &BTreeSet<String>,
) -> Value {
    let mut props = Map::new();
    let names: Vec<&str> = match wanted {
        Some(w) => w
            .iter()
            .map(String::as_str)
            .chain(DEFAULT_PROPERTIES.iter().copied())
            .collect(),
        // With no `properties`, HubSpot answers only the defaults.
        None => DEFAULT_PROPERTIES.to_vec(),
    };
    for name in names {
        if known.contains(name) {
            props.insert(
                name.to_owned(),
                snap.props
                    .get(name)
                    .map_or(Value::Null, |v| Value::String(v.clone())),
            );
        }
    }
    json!({
        "id": id.to_string(),
        "properties": props,
        "createdAt": timefmt::millis_z(created_at),
        "updatedAt": timefmt::millis_z(snap.updated_at),
        "archived": snap.archived,
    })
}

fn associations(stored: &Stored, wanted: &[String]) -> Option<Value> {
    let mut out = Map::new();
    for kind in wanted {
        let (ids, ty) = match kind.as_str() {
            "contacts" | "contact" => (&stored.contact_ids, "call_to_contact"),
            "deals" | "deal" => (&stored.deal_ids, "call_to_deal"),
            _ => continue,
        };
        if ids.is_empty() {
            continue;
        }
        let results: Vec<Value> = ids
            .iter()
            .map(|i| json!({"id": i.to_string(), "type": ty}))
            .collect();
        let key = if kind.ends_with('s') {
            kind.clone()
        } else {
            format!("{kind}s")
        };
        out.insert(key, json!({ "results": results }));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// HubSpot's 400 for a query parameter the route does not document.
fn unknown_params(pairs: &[(String, String)], known: &[&str]) -> Option<Response> {
    let unknown = pairs.iter().find(|(k, _)| !known.contains(&k.as_str()))?;
    Some(bad_request(&format!(
        "Unrecognized query parameter `{}`; this endpoint accepts: {}",
        unknown.0,
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

/// `properties=a,b` and `properties=a&properties=b` alike.
fn list_param(pairs: &[(String, String)], name: &str) -> Option<Vec<String>> {
    let values: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    (!values.is_empty()).then_some(values)
}

// ------------------------------------------------------------ the gatekeeper

async fn gatekeeper(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let path = req.uri().path().to_owned();
    let search = path == "/crm/v3/objects/calls/search";
    let mut record = HubspotRequest {
        at: now,
        method: req.method().to_string(),
        path,
        query: req.uri().query().map(str::to_owned),
        search,
        status: 0,
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| sh.tokens.iter().any(|valid| valid == t))
        .map(str::to_owned);
    let Some(token) = token else {
        record.status = 401;
        lock(&sh.state).log.push(record);
        return hs_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        );
    };

    let decision = {
        let mut st = lock(&sh.state);
        let limits = st.limits.entry(token).or_insert_with(|| Limits {
            general: SlidingWindow::new(sh.ten_seconds.0, sh.ten_seconds.1),
            search: SlidingWindow::new(sh.one_second.0, sh.one_second.1),
        });
        // A search must fit both windows; check the search one first so a
        // refused search does not use up general room.
        let search_room = if search {
            Some(limits.search.try_acquire(now, 1))
        } else {
            None
        };
        match search_room {
            Some(Admission::Refused { retry_after }) => Err((retry_after, "SECONDLY", "secondly")),
            _ => match limits.general.try_acquire(now, 1) {
                Admission::Admitted { remaining } => Ok((
                    remaining,
                    match search_room {
                        Some(Admission::Admitted { remaining }) => Some(remaining),
                        _ => None,
                    },
                )),
                Admission::Refused { retry_after } => {
                    Err((retry_after, "TEN_SECONDLY_ROLLING", "ten_secondly_rolling"))
                }
            },
        }
    };
    let interval_ms = u64::try_from(sh.ten_seconds.1.as_millis()).unwrap_or(u64::MAX);
    let mut headers: Vec<(HeaderName, String)> = vec![
        (
            HeaderName::from_static("x-hubspot-ratelimit-interval-milliseconds"),
            interval_ms.to_string(),
        ),
        (
            HeaderName::from_static("x-hubspot-ratelimit-max"),
            sh.ten_seconds.0.to_string(),
        ),
    ];
    match decision {
        Err((retry_after, policy, name)) => {
            record.status = 429;
            lock(&sh.state).log.push(record);
            headers.push((
                HeaderName::from_static("x-hubspot-ratelimit-remaining"),
                "0".into(),
            ));
            if sh.send_retry_after {
                headers.push((
                    header::RETRY_AFTER,
                    retry_after_secs(retry_after).to_string(),
                ));
            }
            json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({
                    "status": "error",
                    "message": format!("You have reached your {name} limit."),
                    "errorType": "RATE_LIMIT",
                    "correlationId": correlation_id(),
                    "policyName": policy,
                }),
                &headers,
            )
        }
        Ok((remaining, search_remaining)) => {
            let mut resp = next.run(req).await;
            headers.push((
                HeaderName::from_static("x-hubspot-ratelimit-remaining"),
                remaining.to_string(),
            ));
            if let Some(sr) = search_remaining {
                headers.push((
                    HeaderName::from_static("x-hubspot-ratelimit-secondly"),
                    sh.one_second.0.to_string(),
                ));
                headers.push((
                    HeaderName::from_static("x-hubspot-ratelimit-secondly-remaining"),
                    sr.to_string(),
                ));
            }
            for (name, value) in headers {
                if let Ok(v) = value.parse() {
                    resp.headers_mut().insert(name, v);
                }
            }
            record.status = resp.status().as_u16();
            lock(&sh.state).log.push(record);
            resp
        }
    }
}

// -------------------------------------------------------------------- search

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    DateTime,
    Number,
    Text,
}

fn kind_of(property: &str) -> Kind {
    if DATETIME_PROPERTIES.contains(&property) {
        Kind::DateTime
    } else if NUMBER_PROPERTIES.contains(&property) {
        Kind::Number
    } else {
        Kind::Text
    }
}

/// A property or filter value on a scale where it can be ordered.
#[derive(Clone, PartialEq, PartialOrd)]
enum Comparable {
    Num(f64),
    Text(String),
}

fn comparable(kind: Kind, raw: &str) -> Option<Comparable> {
    match kind {
        Kind::DateTime => parse_datetime(raw).map(|t| Comparable::Num(timefmt::epoch_ms(t) as f64)),
        Kind::Number => raw.trim().parse::<f64>().ok().map(Comparable::Num),
        Kind::Text => Some(Comparable::Text(raw.to_lowercase())),
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

enum Test {
    Op(CmpOp, Comparable),
    Between(Comparable, Comparable),
    Has(bool),
    In(bool, Vec<Comparable>),
}

struct Filter {
    property: String,
    test: Test,
}

impl Filter {
    fn matches(&self, snap: &Snapshot) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let kind = kind_of(&self.property);
        let value = snap
            .props
            .get(&self.property)
            .filter(|v| !v.is_empty())
            .and_then(|v| comparable(kind, v));
        match (&self.test, value) {
            (Test::Has(want), v) => v.is_some() == *want,
            // NEQ and NOT_IN match records that lack the property.
            (Test::Op(CmpOp::Neq, _) | Test::In(false, _), None) => true,
            (_, None) => false,
            (Test::Op(op, target), Some(v)) => match v.partial_cmp(target) {
                None => *op == CmpOp::Neq,
                Some(o) => match op {
                    CmpOp::Eq => o == Equal,
                    CmpOp::Neq => o != Equal,
                    CmpOp::Gt => o == Greater,
                    CmpOp::Gte => o != Less,
                    CmpOp::Lt => o == Less,
                    CmpOp::Lte => o != Greater,
                },
            },
            (Test::Between(lo, hi), Some(v)) => &v >= lo && &v <= hi,
            (Test::In(want, set), Some(v)) => set.contains(&v) == *want,
        }
    }
}

fn bad_request(message: &str) -> Response {
    hs_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

fn parse_filter(f: &Value) -> Result<Filter, String> {
    let property = f
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or_else(|| "Each filter needs a propertyName.".to_owned())?
        .to_owned();
    let operator = f
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("EQ")
        .to_owned();
    let kind = kind_of(&property);
    let single = || -> Result<Comparable, String> {
        let raw = f.get("value").and_then(value_text).ok_or_else(|| {
            format!("Filter on {property} with operator {operator} needs a value.")
        })?;
        comparable(kind, &raw).ok_or_else(|| {
            format!(
                "Invalid value '{raw}' for {property}: expected {}.",
                match kind {
                    Kind::DateTime => "a date-time (epoch milliseconds or ISO 8601)",
                    Kind::Number => "a number",
                    Kind::Text => "a string",
                }
            )
        })
    };
    let test = match operator.as_str() {
        "EQ" => Test::Op(CmpOp::Eq, single()?),
        "NEQ" => Test::Op(CmpOp::Neq, single()?),
        "GT" => Test::Op(CmpOp::Gt, single()?),
        "GTE" => Test::Op(CmpOp::Gte, single()?),
        "LT" => Test::Op(CmpOp::Lt, single()?),
        "LTE" => Test::Op(CmpOp::Lte, single()?),
        "HAS_PROPERTY" => Test::Has(true),
        "NOT_HAS_PROPERTY" => Test::Has(false),
        "BETWEEN" => {
            let hi = f
                .get("highValue")
                .and_then(value_text)
                .and_then(|h| comparable(kind, &h))
                .ok_or_else(|| "BETWEEN needs a valid highValue.".to_owned())?;
            Test::Between(single()?, hi)
        }
        "IN" | "NOT_IN" => {
            let values = f
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{operator} needs a list of values."))?
                .iter()
                .filter_map(value_text)
                .filter_map(|v| comparable(kind, &v))
                .collect();
            Test::In(operator == "IN", values)
        }
        other => {
            return Err(format!(
                "Unsupported operator '{other}' for property {property}."
            ));
        }
    };
    Ok(Filter { property, test })
}

struct SearchRequest {
    groups: Vec<Vec<Filter>>,
    sort: Option<(String, bool)>,
    properties: Option<Vec<String>>,
    limit: u64,
    after: u64,
}

fn parse_search(body: &[u8]) -> Result<SearchRequest, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid input JSON on line 1 : {e}"))?;
    let mut groups = Vec::new();
    let mut total_filters = 0;
    if let Some(gs) = v.get("filterGroups").and_then(Value::as_array) {
        if gs.len() > 5 {
            return Err("Search supports at most 5 filterGroups.".to_owned());
        }
        for g in gs {
            let fs = g
                .get("filters")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if fs.len() > 6 {
                return Err("A filterGroup supports at most 6 filters.".to_owned());
            }
            total_filters += fs.len();
            groups.push(fs.iter().map(parse_filter).collect::<Result<Vec<_>, _>>()?);
        }
    }
    if total_filters > 18 {
        return Err("Search supports at most 18 filters in all.".to_owned());
    }
    let sort = match v.get("sorts").and_then(Value::as_array) {
        None => None,
        Some(s) if s.len() > 1 => {
            return Err("Search supports sorting by one property only.".to_owned());
        }
        Some(s) => match s.first() {
            None => None,
            // The string form HubSpot's Node SDK documents: a property
            // name sorts ascending, `-name` descending.
            Some(Value::String(p)) => match p.strip_prefix('-') {
                Some(name) => Some((name.to_owned(), false)),
                None => Some((p.clone(), true)),
            },
            Some(o) => {
                let p = o
                    .get("propertyName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| "A sort needs a propertyName.".to_owned())?;
                let dir = o
                    .get("direction")
                    .and_then(Value::as_str)
                    .unwrap_or("ASCENDING");
                let asc = match dir {
                    "ASCENDING" => true,
                    "DESCENDING" => false,
                    _ => {
                        return Err(format!(
                            "Invalid sort direction '{dir}': use ASCENDING or DESCENDING."
                        ));
                    }
                };
                Some((p.to_owned(), asc))
            }
        },
    };
    let properties = v.get("properties").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let limit = match v.get("limit") {
        None | Some(Value::Null) => 10,
        Some(l) => match l.as_u64() {
            Some(n) if (1..=200).contains(&n) => n,
            _ => {
                return Err(format!("limit must be between 1 and 200, got {l}"));
            }
        },
    };
    let after = match v.get("after") {
        None | Some(Value::Null) => 0,
        Some(a) => value_text(a)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("after must be a numeric paging token, got {a}"))?,
    };
    Ok(SearchRequest {
        groups,
        sort,
        properties,
        limit,
        after,
    })
}

async fn search(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match parse_search(&body) {
        Ok(r) => r,
        Err(message) => return bad_request(&message),
    };
    if req.after + req.limit > SEARCH_CAP {
        return bad_request(&format!(
            "There was a problem with the request: search results are limited to {SEARCH_CAP}; after {} plus limit {} passes it.",
            req.after, req.limit
        ));
    }
    let now = Instant::now();
    let base = sh.base();
    let st = lock(&sh.state);
    let mut hits: Vec<(u64, OffsetDateTime, &Snapshot)> = st
        .calls
        .values()
        .filter_map(|c| c.searchable(now).map(|s| (c.id, c.created_at, s)))
        .filter(|(_, _, s)| !s.archived)
        .filter(|(_, _, s)| {
            req.groups.is_empty() || req.groups.iter().any(|g| g.iter().all(|f| f.matches(s)))
        })
        .collect();
    if let Some((prop, asc)) = &req.sort {
        let kind = kind_of(prop);
        hits.sort_by(|a, b| {
            let va = a.2.props.get(prop).and_then(|v| comparable(kind, v));
            let vb = b.2.props.get(prop).and_then(|v| comparable(kind, v));
            let primary = match (va, vb) {
                (Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                    if *asc { o } else { o.reverse() }
                }
                // Records without the property come last either way.
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            primary.then(a.0.cmp(&b.0))
        });
    }
    let total = hits.len() as u64;
    let start = usize::try_from(req.after).unwrap_or(usize::MAX);
    let count = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let results: Vec<Value> = hits
        .iter()
        .skip(start)
        .take(count)
        .map(|(id, created, snap)| match st.poisoned.get(id) {
            Some(poison) => poison.clone(),
            None => render(*id, *created, snap, req.properties.as_deref(), &st.known),
        })
        .collect();
    let next = req.after + results.len() as u64;
    let shown_total = st.search_total.map_or(json!(total), |t| json!(t));
    let mut body = json!({ "total": shown_total, "results": results });
    if next < total {
        body["paging"] = json!({
            "next": {
                "after": next.to_string(),
                "link": format!("{base}/crm/v3/objects/calls/search?after={next}"),
            }
        });
    }
    ok(&body)
}

// ----------------------------------------------------------------- handlers

async fn get_call(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    if let Some(refused) = unknown_params(
        &pairs,
        &[
            "properties",
            "propertiesWithHistory",
            "associations",
            "archived",
            "idProperty",
        ],
    ) {
        return refused;
    }
    let properties = list_param(&pairs, "properties");
    let assoc = list_param(&pairs, "associations").unwrap_or_default();
    let archived = pairs.iter().any(|(k, v)| k == "archived" && v == "true");
    let st = lock(&sh.state);
    let Some(stored) = id.parse::<u64>().ok().and_then(|i| st.calls.get(&i)) else {
        return object_not_found();
    };
    if stored.current.archived != archived {
        return object_not_found();
    }
    if let Some(poison) = st.poisoned.get(&stored.id) {
        return ok(poison);
    }
    let mut body = render(
        stored.id,
        stored.created_at,
        &stored.current,
        properties.as_deref(),
        &st.known,
    );
    if let Some(a) = associations(stored, &assoc) {
        body["associations"] = a;
    }
    ok(&body)
}

async fn list_calls(State(sh): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    if let Some(refused) = unknown_params(
        &pairs,
        &[
            "after",
            "archived",
            "associations",
            "limit",
            "properties",
            "propertiesWithHistory",
        ],
    ) {
        return refused;
    }
    let properties = list_param(&pairs, "properties");
    let assoc = list_param(&pairs, "associations").unwrap_or_default();
    let limit = match pairs.iter().find(|(k, _)| k == "limit") {
        None => 10,
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return bad_request("limit must be between 1 and 100"),
        },
    };
    let after: u64 = match pairs.iter().find(|(k, _)| k == "after") {
        None => 0,
        Some((_, v)) => match v.parse() {
            Ok(a) => a,
            Err(_) => return bad_request("after must be a paging token from a previous page"),
        },
    };
    let base = sh.base();
    let st = lock(&sh.state);
    // The list pages by id: `after` is the last id read.
    let page: Vec<&Stored> = st
        .calls
        .range(after.saturating_add(1)..)
        .map(|(_, s)| s)
        .filter(|s| !s.current.archived)
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    let results: Vec<Value> = page
        .iter()
        .take(limit)
        .map(|s| {
            let mut v = render(
                s.id,
                s.created_at,
                &s.current,
                properties.as_deref(),
                &st.known,
            );
            if let Some(a) = associations(s, &assoc) {
                v["associations"] = a;
            }
            v
        })
        .collect();
    let mut body = json!({ "results": results });
    if more && let Some(last) = page.get(limit.saturating_sub(1)) {
        body["paging"] = json!({"next": {
            "after": last.id.to_string(),
            "link": format!("{base}/crm/v3/objects/calls?after={}", last.id),
        }});
    }
    ok(&body)
}

async fn patch_call(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &["idProperty"]) {
        return refused;
    }
    {
        let mut st = lock(&sh.state);
        if st.refuse_call_writes {
            // calls.json: PATCH /crm/v3/objects/calls/{callId} security
            // `crm.objects.contacts.write`.
            return missing_scopes(&["crm.objects.contacts.write"]);
        }
        match st.patch_fault {
            Some(f) if Instant::now() < f.until => {
                if f.status == 429 {
                    return json_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        &json!({
                            "status": "error",
                            "message": "You have reached your ten_secondly_rolling limit.",
                            "errorType": "RATE_LIMIT",
                            "correlationId": correlation_id(),
                            "policyName": "TEN_SECONDLY_ROLLING",
                        }),
                        &[],
                    );
                }
                return hs_error(
                    StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "INTERNAL_ERROR",
                    "internal error",
                );
            }
            Some(_) => st.patch_fault = None,
            None => {}
        }
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid input JSON on line 1 : {e}")),
    };
    let Some(props) = v.get("properties").and_then(Value::as_object) else {
        return bad_request("The request body needs a properties object.");
    };
    let Some(id) = id.parse::<u64>().ok() else {
        return object_not_found();
    };
    let mut st = lock(&sh.state);
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    for (k, val) in props {
        if READ_ONLY.contains(&k.as_str()) {
            problems.push(json!({"isValid": false, "message": format!("{k} is a read only property; its value cannot be set."), "error": "READ_ONLY_VALUE", "name": k}));
        } else if !st.known.contains(k) {
            problems.push(json!({"isValid": false, "message": format!("Property \"{k}\" does not exist"), "error": "PROPERTY_DOESNT_EXIST", "name": k}));
        } else if let Some(problem) = st
            .created_properties
            .get(k)
            .and_then(|def| value_refused(def, val))
        {
            problems.push(
                json!({"isValid": false, "message": problem, "error": "INVALID_VALUE", "name": k}),
            );
        } else {
            changes.push((k.clone(), value_text(val)));
        }
    }
    if !problems.is_empty() {
        return bad_request(&format!(
            "Property values were not valid: {}",
            Value::Array(problems)
        ));
    }
    if st.calls.get(&id).is_none_or(|c| c.current.archived) {
        return object_not_found();
    }
    if let Err(e) = apply_update(&sh, &mut st, id, &changes, None) {
        return hs_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &e.to_string());
    }
    let Some(stored) = st.calls.get(&id) else {
        return object_not_found();
    };
    let all: Vec<String> = stored.current.props.keys().cloned().collect();
    ok(&render(
        stored.id,
        stored.created_at,
        &stored.current,
        Some(&all),
        &st.known,
    ))
}

// ------------------------------------------------------------ properties

/// The scopes `POST /crm/v3/properties/{objectType}` (and `/groups`)
/// accept, any one of them, as its `security` block lists them.
const PROPERTY_CREATE_SCOPES: &[&str] = &[
    "crm.objects.carts.write",
    "crm.objects.orders.write",
    "crm.objects.tickets.highly_sensitive.write",
    "crm.objects.tickets.sensitive.write",
    "crm.objects.users.write",
    "crm.pipelines.orders.write",
    "crm.schemas.appointments.write",
    "crm.schemas.carts.write",
    "crm.schemas.commercepayments.write",
    "crm.schemas.companies.write",
    "crm.schemas.contacts.write",
    "crm.schemas.courses.write",
    "crm.schemas.custom.write",
    "crm.schemas.deals.write",
    "crm.schemas.invoices.write",
    "crm.schemas.listings.write",
    "crm.schemas.orders.write",
    "crm.schemas.projects.write",
    "crm.schemas.quotes.write",
    "crm.schemas.services.write",
    "crm.schemas.subscriptions.write",
    "crm.schemas.tickets.write",
    "e-commerce",
    "tickets",
    "tickets.highly_sensitive.v2",
    "tickets.sensitive.v2",
];

/// The group HubSpot's own call properties are in.
const DEFAULT_GROUP: &str = "callinformation";

/// HubSpot's 403 for a token without a scope the call needs (body as
/// quoted in HubSpot/hubspot-api-nodejs issue #268; the spec's `Error`
/// example names `missingScopes` in `context`).
fn missing_scopes(required: &[&str]) -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        &json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": correlation_id(),
            "errors": [{
                "message": "One or more of the following scopes are required.",
                "context": {"requiredScopes": required},
            }],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES",
        }),
        &[],
    )
}

fn created(v: &Value) -> Response {
    json_response(StatusCode::CREATED, v, &[])
}

fn conflict(message: &str) -> Response {
    hs_error(StatusCode::CONFLICT, "CONFLICT", message)
}

/// A required text field, or HubSpot's 400 naming it.
fn required_text<'a>(v: &'a Value, field: &str) -> Result<&'a str, String> {
    match v.get(field).and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => Ok(t),
        _ => Err(format!("Missing required field `{field}`.")),
    }
}

/// `GET /crm/v3/properties/calls/{propertyName}`: HubSpot's own call
/// properties and those created through the API; anything else 404.
async fn get_property(
    State(sh): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    if let Some(refused) = unknown_params(
        &pairs,
        &["archived", "dataSensitivity", "locale", "properties"],
    ) {
        return refused;
    }
    let st = lock(&sh.state);
    if let Some(def) = st.created_properties.get(&name) {
        return ok(def);
    }
    if KNOWN_PROPERTIES.contains(&name.as_str()) {
        return ok(&json!({
            "name": name, "label": name, "type": "string", "fieldType": "text",
            "groupName": DEFAULT_GROUP, "description": "", "options": [],
        }));
    }
    hs_error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("Unable to find property {name} for object type calls"),
    )
}

/// `GET /crm/v3/properties/calls/groups/{groupName}`.
async fn get_group(
    State(sh): State<Arc<Shared>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &["locale"]) {
        return refused;
    }
    let st = lock(&sh.state);
    if let Some(group) = st.groups.get(&name) {
        return ok(group);
    }
    if name == DEFAULT_GROUP {
        return ok(
            &json!({"name": name, "label": "Call information", "displayOrder": -1, "archived": false}),
        );
    }
    hs_error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("Unable to find property group {name} for object type calls"),
    )
}

/// `POST /crm/v3/properties/calls/groups` (`PropertyGroupCreate`: `name`
/// and `label` required).
async fn create_group(
    State(sh): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &[]) {
        return refused;
    }
    let mut st = lock(&sh.state);
    if st.refuse_property_creation {
        return missing_scopes(PROPERTY_CREATE_SCOPES);
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid input JSON on line 1 : {e}")),
    };
    let (name, label) = match (required_text(&v, "name"), required_text(&v, "label")) {
        (Ok(n), Ok(l)) => (n.to_owned(), l.to_owned()),
        (Err(m), _) | (_, Err(m)) => return bad_request(&m),
    };
    if st.groups.contains_key(&name) || name == DEFAULT_GROUP {
        return conflict(&format!("A property group named {name} already exists."));
    }
    let group = json!({
        "name": name,
        "label": label,
        "displayOrder": v.get("displayOrder").and_then(Value::as_i64).unwrap_or(-1),
        "archived": false,
    });
    st.groups.insert(name, group.clone());
    created(&group)
}

/// `POST /crm/v3/properties/calls` (`PropertyCreate`: `name`, `label`,
/// `type`, `fieldType`, `groupName` required; `type` and `fieldType` from
/// the spec's enums; options required for enumerations).
async fn create_property(
    State(sh): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    const TYPES: &[&str] = &[
        "bool",
        "date",
        "datetime",
        "enumeration",
        "number",
        "phone_number",
        "string",
    ];
    const FIELD_TYPES: &[&str] = &[
        "booleancheckbox",
        "calculation_equation",
        "checkbox",
        "date",
        "file",
        "html",
        "number",
        "phonenumber",
        "radio",
        "select",
        "text",
        "textarea",
    ];
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &[]) {
        return refused;
    }
    let mut st = lock(&sh.state);
    if st.refuse_property_creation {
        return missing_scopes(PROPERTY_CREATE_SCOPES);
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid input JSON on line 1 : {e}")),
    };
    let mut fields = Vec::new();
    for f in ["name", "label", "type", "fieldType", "groupName"] {
        match required_text(&v, f) {
            Ok(t) => fields.push(t.to_owned()),
            Err(m) => return bad_request(&m),
        }
    }
    let (name, kind, field_type, group) = (&fields[0], &fields[2], &fields[3], &fields[4]);
    if !TYPES.contains(&kind.as_str()) {
        return bad_request(&format!("Invalid property type `{kind}`."));
    }
    if !FIELD_TYPES.contains(&field_type.as_str()) {
        return bad_request(&format!("Invalid fieldType `{field_type}`."));
    }
    let options = v.get("options").cloned().unwrap_or_else(|| json!([]));
    if kind == "enumeration" && options.as_array().is_none_or(Vec::is_empty) {
        return bad_request("Options are required for enumeration properties.");
    }
    if group != DEFAULT_GROUP && !st.groups.contains_key(group) {
        return bad_request(&format!("Property group {group} does not exist."));
    }
    if st.known.contains(name) {
        return conflict(&format!("Property named '{name}' already exists."));
    }
    let mut def = v.clone();
    def["options"] = options;
    def["createdAt"] = Value::String(timefmt::millis_z(sh.clock.now_utc()));
    def["archived"] = Value::Bool(false);
    st.known.insert(name.clone());
    st.created_properties.insert(name.clone(), def.clone());
    created(&def)
}

async fn get_owner(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    if let Some(refused) = unknown_params(&pairs, &["archived", "idProperty"]) {
        return refused;
    }
    let by_user = pairs
        .iter()
        .any(|(k, v)| k == "idProperty" && v == "userId");
    // `archived` defaults to false and answers only archived owners when
    // true: a deactivated owner is 404 to the plain lookup.
    let archived = pairs.iter().any(|(k, v)| k == "archived" && v == "true");
    let st = lock(&sh.state);
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|i| {
            if by_user {
                st.owners.values().find(|o| o.user_id == i)
            } else {
                st.owners.get(&i)
            }
        })
        .filter(|o| o.archived == archived);
    match found {
        Some(o) => ok(&json!({
            "id": o.id.to_string(),
            "email": o.email,
            "type": "PERSON",
            "firstName": o.first_name,
            "lastName": o.last_name,
            "userId": o.user_id,
            "userIdIncludingInactive": o.user_id,
            "createdAt": "2024-01-15T14:02:11.532Z",
            "updatedAt": "2026-01-09T09:41:27.018Z",
            "archived": o.archived,
            "teams": [],
        })),
        None => hs_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("No owner found for id {id}"),
        ),
    }
}

async fn dispositions(State(sh): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &[]) {
        return refused;
    }
    if lock(&sh.state).dispositions_fail {
        return hs_error(
            StatusCode::FORBIDDEN,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call.",
        );
    }
    let st = lock(&sh.state);
    let list: Vec<Value> = st
        .dispositions
        .iter()
        .map(|(id, label)| json!({"id": id, "label": label}))
        .collect();
    ok(&Value::Array(list))
}

async fn transcript(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &[]) {
        return refused;
    }
    let st = lock(&sh.state);
    match id.parse::<u64>().ok().and_then(|i| st.transcripts.get(&i)) {
        Some(t) => ok(&json!({
            "id": t.id.to_string(),
            "engagementId": t.call_id,
            "transcriptCreateUsecaseType": "THIRD_PARTY",
            "transcriptUtterances": t.utterances.iter().map(|u| json!({
                "speaker": {"id": u.speaker_email.clone().unwrap_or_else(|| u.speaker_name.clone()), "name": u.speaker_name, "email": u.speaker_email},
                "text": u.text,
                "languageCode": "en-US",
                "startTimeMillis": u.start_ms,
                "endTimeMillis": u.end_ms,
            })).collect::<Vec<_>>(),
        })),
        None => hs_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("Transcript {id} not found"),
        ),
    }
}

/// `POST /crm/v4/associations/{from}/{to}/batch/read` with `{inputs: [{id}]}`
/// (PublicApiSpecs/CRM/Associations/Rollouts/130902/v4/associations.json:
/// request `BatchInputPublicFetchAssociationsBatchRequest`, response
/// `BatchResponsePublicAssociationMultiWithLabel`; 207 with `errors` when
/// some inputs have none). Only calls to contacts and deals are simulated.
async fn associations_batch_read(
    State(sh): State<Arc<Shared>>,
    Path((from, to)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(refused) = unknown_params(&query_pairs(q.as_deref()), &[]) {
        return refused;
    }
    let kind = match (from.as_str(), to.as_str()) {
        ("calls" | "call" | "0-48", "contacts" | "contact" | "0-1") => ("contacts", 194),
        ("calls" | "call" | "0-48", "deals" | "deal" | "0-3") => ("deals", 206),
        _ => {
            return hs_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!("Unable to infer object type from: {from} to {to}"),
            );
        }
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid input JSON on line 1 : {e}")),
    };
    let Some(inputs) = v.get("inputs").and_then(Value::as_array) else {
        return bad_request("Invalid input JSON: inputs is required.");
    };
    if inputs.len() > 1_000 {
        return bad_request("Too many inputs: the limit is 1000.");
    }
    let st = lock(&sh.state);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let Some(id) = input.get("id").and_then(value_text) else {
            return bad_request("Invalid input JSON: every input needs an id.");
        };
        let ids = id
            .parse::<u64>()
            .ok()
            .and_then(|i| st.calls.get(&i))
            .map(|c| {
                if kind.0 == "contacts" {
                    &c.contact_ids
                } else {
                    &c.deal_ids
                }
            })
            .filter(|ids| !ids.is_empty());
        match ids {
            Some(ids) => results.push(json!({
                "from": {"id": id},
                "to": ids.iter().map(|t| json!({
                    "toObjectId": t,
                    "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": kind.1, "label": null}],
                })).collect::<Vec<_>>(),
            })),
            None => errors.push(json!({
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": format!("No {} is associated with call {id}.", kind.0),
                "context": {"fromObjectId": [id]},
                "errors": [],
                "links": {},
            })),
        }
    }
    let now = timefmt::millis_z(OffsetDateTime::now_utc());
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": now,
        "completedAt": now,
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = Value::Array(errors);
        StatusCode::MULTI_STATUS
    };
    json_response(status, &answer, &[])
}

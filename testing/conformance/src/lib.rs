//! One conformance suite for kendo-bridge's two drivers (issue 19, item 5).
//!
//! A scenario is written once against [`Driver`] and runs on the host
//! engine in this process ([`host::HostDriver`]) and on the Spin app in the
//! wasmtime test host ([`spin::SpinDriver`]): `tests/scenarios.rs` expands
//! each into `host::<name>` and `spin::<name>`.
//!
//! Both drivers are set up from the same [`Setup`] against their own
//! simulators, with the same secrets, rep directory, team name (`default`)
//! and rules, so a scenario can compare what each leaves: the ledger (both
//! keep the core's schema), what the simulated Kendo and HubSpot received,
//! status counts. Time moves only when a scenario moves it
//! ([`Driver::advance`]): the Spin app's wall clock and the host's
//! [`kendo_bridge::clock::Clock`] are both real time plus that shift, and
//! nothing runs in the background on either: a webhook is answered and its
//! delivery processed (as the Spin app does on the request's instance), a
//! [`Driver::tick`] is Spin's `POST /tick` and, on the host, one pass of
//! what its tasks do (polls asked for, the inbox, Aloware's sweep, the
//! sends due now, the write-backs).

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use kendo_bridge_sim::Simulators;

pub mod host;
pub mod spin;

/// The one Kendo team (the Spin app's only team is `default`).
pub const TEAM: &str = "default";
/// Secrets both drivers are configured with.
pub const ALOWARE_SECRET: &str = "conformance-aloware-secret";
pub const SALESLOFT_SECRET: &str = "conformance-salesloft-secret";
pub const HUBSPOT_SECRET: &str = "conformance-hubspot-client-secret";
pub const KENDO_SECRET: &str = "conformance-kendo-webhook-secret";
/// The rep of the captured Aloware calls (user 4242) and of the HubSpot
/// simulator's `add_sams_recorded_call`.
pub const REP_DIRECTORY: &[(&str, &str, &str)] = &[("4242", "sam@yourco.com", "Sam Rivera")];

/// Kendo's key allows a request every 60 s / 30 (+1%): 2 020 ms, and a
/// little more for a scenario's own steps.
pub const SPACING: Duration = Duration::from_millis(2_100);

/// Which plugin component the bridge runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginChoice {
    /// The built-in plugin.
    BuiltIn,
    /// `testing/trap-guest`: panics on a Salesloft call carrying
    /// `kendo-bridge-test-trap`.
    Trap,
}

/// Salesloft, configured.
#[derive(Debug, Clone)]
pub struct SalesloftSetup {
    /// Read the calls list on each tick (Spin `salesloft_poll`; on the
    /// host, the poller's cycle run by the tick).
    pub poll: bool,
    pub transcripts: bool,
    pub direction_wait: Duration,
}

/// HubSpot, configured.
#[derive(Debug, Clone)]
pub struct HubspotSetup {
    pub poll: bool,
    pub transcripts: bool,
    pub write_back: bool,
    /// The private app token (the simulator's, unless a scenario wants it
    /// refused).
    pub token: String,
}

impl Default for HubspotSetup {
    fn default() -> Self {
        HubspotSetup {
            poll: false,
            transcripts: false,
            write_back: false,
            token: kendo_bridge_sim::DEMO_HUBSPOT_TOKEN.to_string(),
        }
    }
}

impl Default for SalesloftSetup {
    fn default() -> Self {
        SalesloftSetup {
            poll: false,
            transcripts: false,
            direction_wait: Duration::ZERO,
        }
    }
}

/// What a scenario configures; each driver turns it into its own
/// configuration (the host's TOML, the Spin app's variables).
#[derive(Debug, Clone)]
pub struct Setup {
    pub min_duration_seconds: u32,
    /// How long an Aloware call ready with its recording waits for its
    /// transcript (when the account sends transcripts).
    pub aloware_transcript_wait: Duration,
    pub kendo_timeout: Duration,
    pub max_body_bytes: Option<u64>,
    pub salesloft: Option<SalesloftSetup>,
    pub hubspot: Option<HubspotSetup>,
    pub plugin: PluginChoice,
    /// HubSpot's search sees a write at once (else after the simulator's
    /// default lag).
    pub hubspot_search_now: bool,
    /// The host reaches Kendo through a gate that [`Driver::allow_kendo`]
    /// opens and closes (the Spin app's requests are refused by its
    /// outbound allow-list whatever this says).
    pub kendo_gate: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            min_duration_seconds: 0,
            aloware_transcript_wait: Duration::ZERO,
            kendo_timeout: Duration::from_secs(5),
            max_body_bytes: None,
            salesloft: None,
            hubspot: None,
            plugin: PluginChoice::BuiltIn,
            hubspot_search_now: false,
            kendo_gate: false,
        }
    }
}

/// Who sends a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Aloware,
    Salesloft,
    Hubspot,
    Kendo,
}

impl Sender {
    /// The webhook's path, the same on both drivers.
    pub fn path(self) -> &'static str {
        match self {
            Sender::Aloware => "/webhooks/aloware",
            Sender::Salesloft => "/webhooks/salesloft",
            Sender::Hubspot => "/webhooks/hubspot",
            Sender::Kendo => "/webhooks/kendo",
        }
    }
}

/// A webhook delivery: the body and the headers its sender signs it with.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub sender: Sender,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Webhook {
    /// Aloware's delivery, with its Bearer secret.
    pub fn aloware(payload: &serde_json::Value) -> Webhook {
        Webhook::aloware_with(payload, ALOWARE_SECRET)
    }

    /// Aloware's delivery with this Bearer secret.
    pub fn aloware_with(payload: &serde_json::Value, secret: &str) -> Webhook {
        Webhook {
            sender: Sender::Aloware,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {secret}")),
            ],
            body: payload.to_string().into_bytes(),
        }
    }

    /// Salesloft's `event` about a call record, signed (hex HMAC-SHA1).
    pub fn salesloft(event: &str, body: String) -> Webhook {
        let mut mac =
            Hmac::<sha1::Sha1>::new_from_slice(SALESLOFT_SECRET.as_bytes()).expect("any key size");
        mac.update(body.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        Webhook {
            sender: Sender::Salesloft,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-salesloft-event".into(), event.into()),
                ("x-salesloft-signature".into(), signature),
            ],
            body: body.into_bytes(),
        }
    }

    /// A HubSpot delivery, signed v1 (hex SHA-256 of secret and body).
    pub fn hubspot(body: String) -> Webhook {
        use sha2::{Digest, Sha256};
        let signature = hex::encode(Sha256::digest(format!("{HUBSPOT_SECRET}{body}").as_bytes()));
        Webhook {
            sender: Sender::Hubspot,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-hubspot-signature".into(), signature),
                ("x-hubspot-signature-version".into(), "v1".into()),
            ],
            body: body.into_bytes(),
        }
    }

    /// Kendo's signed result event, as the simulated Kendo sends it.
    pub fn kendo(event: &kendo_bridge_sim::kendo::KendoEvent) -> Webhook {
        let body = event.body();
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(KENDO_SECRET.as_bytes()).expect("any key size");
        mac.update(body.as_bytes());
        Webhook {
            sender: Sender::Kendo,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                (
                    "x-kendo-signature".into(),
                    hex::encode(mac.finalize().into_bytes()),
                ),
                ("x-kendo-event".into(), event.header_event.clone()),
                ("x-kendo-delivery-id".into(), event.id.clone()),
            ],
            body: body.into_bytes(),
        }
    }

    /// The same delivery with one header's value replaced (a forged
    /// signature, say).
    pub fn with_header(mut self, name: &str, value: &str) -> Webhook {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A driver's answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// One ledger row, as both drivers keep it (the core's schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub source: String,
    pub source_id: String,
    pub state: String,
    pub reason_code: Option<String>,
}

/// What the bridge shows an operator: calls by state (every state the core
/// knows, zeros included) and the problems that need a person.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub states: BTreeMap<String, i64>,
    /// `source topic: problem`, each.
    pub problems: Vec<String>,
}

/// An operator transition, run by the core's operator code (the host's
/// `kendo-bridge settle` / `replay` against the driver's database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `settle --sent ID --kendo-call-id CALL`: a call parked as
    /// outcome-unknown is in Kendo.
    SettleSent {
        source_id: String,
        kendo_call_id: Option<String>,
    },
    /// `settle --resend ID`.
    SettleResend { source_id: String },
    /// `replay --source-id ID [--include-failed]`.
    Replay {
        source_id: String,
        include_failed: bool,
    },
}

/// A bridge under test, host or Spin.
#[allow(async_fn_in_trait)]
pub trait Driver: Sized {
    /// The driver's name in failure messages.
    const NAME: &'static str;

    /// Starts simulators and the bridge configured as `setup` says.
    async fn start(setup: Setup) -> Self;

    /// The simulators this bridge talks to.
    fn sims(&self) -> &Simulators;

    /// Delivers a webhook and waits until the bridge has done what it does
    /// for it (stored, processed, what is due sent). `Err` when the bridge
    /// did not answer (a Spin instance that trapped).
    async fn try_deliver(&mut self, webhook: Webhook) -> Result<Answer, String>;

    /// A request with a raw body and headers, to the bridge's webhook path
    /// of `sender` (oversize bodies, unsigned requests).
    async fn post_raw(
        &mut self,
        sender: Sender,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Answer;

    /// One tick: polls asked for, deliveries due again, waits over, sends
    /// due now, write-backs. `Err` when the bridge stopped on it.
    async fn try_tick(&mut self) -> Result<(), String>;

    /// Moves the bridge's clock on by `by`.
    fn advance(&mut self, by: Duration);

    /// The bridge's clock now, epoch milliseconds.
    fn now_ms(&self) -> i64;

    /// A read-only query on the bridge's database (both keep the core's
    /// schema), each value as text (`NULL` for null).
    fn query(&self, sql: &str) -> Vec<Vec<String>>;

    /// A statement on the bridge's database (a test's stand-in for a
    /// state the scenario cannot wait for).
    fn execute(&self, sql: &str);

    /// Calls by state and problems, as the driver's status shows them.
    async fn status(&mut self) -> Status;

    /// Runs an operator transition on the bridge's database.
    async fn operate(&mut self, op: Operator);

    /// Refuses (`false`) or allows (`true`) the bridge's requests to Kendo
    /// at the runtime's level, before they leave.
    fn allow_kendo(&mut self, allowed: bool);

    // ---- provided -------------------------------------------------------

    /// [`Driver::try_deliver`], failing the scenario when the bridge did
    /// not answer.
    async fn deliver(&mut self, webhook: Webhook) -> Answer {
        match self.try_deliver(webhook).await {
            Ok(answer) => answer,
            Err(e) => panic!("{}: the bridge did not answer: {e}", Self::NAME),
        }
    }

    /// [`Driver::try_tick`], failing the scenario when the tick failed.
    async fn tick(&mut self) {
        if let Err(e) = self.try_tick().await {
            panic!("{}: the tick failed: {e}", Self::NAME);
        }
    }

    /// Every ledger row, ordered by source and id.
    fn ledger(&self) -> Vec<Row> {
        self.query(
            "SELECT source, source_id, state, reason_code FROM ledger ORDER BY source, source_id",
        )
        .into_iter()
        .map(|r| Row {
            source: r[0].clone(),
            source_id: r[1].clone(),
            state: r[2].clone(),
            reason_code: (r[3] != "NULL").then(|| r[3].clone()),
        })
        .collect()
    }

    /// One call's `(state, reason_code)`, if the ledger has it.
    fn row(&self, source_id: &str) -> Option<(String, String)> {
        self.ledger()
            .into_iter()
            .find(|r| r.source_id == source_id)
            .map(|r| (r.state, r.reason_code.unwrap_or_default()))
    }

    /// What the simulated Kendo accepted (201), in order.
    fn kendo_accepted(&self) -> Vec<kendo_bridge_sim::kendo::AcceptedCall> {
        self.sims().kendo.accepted()
    }

    /// Every request the simulated Kendo received.
    fn kendo_requests(&self) -> usize {
        self.sims().kendo.requests().len()
    }

    /// A HubSpot call's property as the simulated HubSpot has it (what the
    /// write-backs left).
    fn hubspot_property(&self, call_id: u64, name: &str) -> Option<String> {
        self.sims()
            .hubspot
            .call(call_id)
            .and_then(|c| c.properties.get(name).cloned())
    }

    /// The writes the simulated HubSpot answered 2xx (`PATCH` and batch
    /// updates of calls), as `METHOD path`: the write-backs it got.
    fn hubspot_writes(&self) -> Vec<String> {
        self.sims()
            .hubspot
            .requests()
            .into_iter()
            .filter(|r| {
                (200..300).contains(&r.status)
                    && (r.method == "PATCH"
                        || (r.method == "POST" && r.path.contains("/batch/update")))
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// A single number from a query (`COUNT(*)`, say).
    fn count(&self, sql: &str) -> i64 {
        self.query(sql)
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}: `{sql}` gives no number", Self::NAME))
    }
}

/// The rep directory as JSON (the Spin app's `rep_directory`).
pub fn rep_directory_json() -> String {
    let reps: Vec<serde_json::Value> = REP_DIRECTORY
        .iter()
        .map(|(key, email, name)| serde_json::json!({"key": key, "email": email, "name": name}))
        .collect();
    serde_json::Value::Array(reps).to_string()
}

/// A rusqlite value as text, as [`Driver::query`] gives it.
pub(crate) fn text(value: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(v) => v.to_string(),
        ValueRef::Real(v) => v.to_string(),
        ValueRef::Text(v) => String::from_utf8_lossy(v).into_owned(),
        ValueRef::Blob(v) => format!("<{} bytes>", v.len()),
    }
}

/// Runs a query on a SQLite file, each value as text.
pub(crate) fn query_file(path: &std::path::Path, sql: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mut stmt = conn.prepare(sql)?;
    let columns = stmt.column_count();
    let mut rows = Vec::new();
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(text(row.get_ref(i)?));
        }
        rows.push(values);
    }
    Ok(rows)
}

/// The core's operator transition on a host store (the host's own, or one
/// opened on the Spin app's database).
pub(crate) fn operate_on(store: &mut kendo_bridge::store::Store, op: &Operator, now: i64) {
    use kendo_bridge_core::ledger::operator::{self, ReplayFilter, SettleFilter};
    let done = match op {
        Operator::SettleSent {
            source_id,
            kendo_call_id,
        } => store
            .settle_sent(
                &SettleFilter {
                    source_id: source_id.clone(),
                    source: None,
                    team: None,
                },
                kendo_call_id.as_deref(),
                now,
            )
            .map(|keys| keys.len()),
        Operator::SettleResend { source_id } => operator::settle_resend(
            store.database(),
            &SettleFilter {
                source_id: source_id.clone(),
                source: None,
                team: None,
            },
            now,
        )
        .map(|keys| keys.len())
        .map_err(Into::into),
        Operator::Replay {
            source_id,
            include_failed,
        } => operator::replay(
            store.database(),
            &ReplayFilter {
                team: None,
                source: None,
                source_id: Some(source_id.clone()),
                include_failed: *include_failed,
            },
            now,
        )
        .map_err(Into::into),
    };
    match done {
        Ok(n) => assert!(n > 0, "{op:?} found no call to change"),
        Err(e) => panic!("{op:?} failed: {e}"),
    }
}

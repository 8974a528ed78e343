//! The whole `bridge.toml` that `serve`, `sync`, `backfill` and the
//! operator commands read: Kendo teams and keys, each source, the webhook
//! server, and (through [`super::Config`]) the rules and the rep directory.

use kendo_bridge_core::ledger::connection::Sync;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kendo_bridge_core::policy::Policy;
use serde::Deserialize;

/// Environment variables that override the file: `KENDO_BRIDGE__` followed
/// by the key path in upper case, sections separated by `__`, e.g.
/// `KENDO_BRIDGE__SALESLOFT__POLL_INTERVAL=30s` or
/// `KENDO_BRIDGE__SERVER__LISTEN=0.0.0.0:8787`.
pub const ENV_PREFIX: &str = "KENDO_BRIDGE__";

/// Where a secret comes from. Secrets are never written in the file itself.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// An environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// A file holding the secret (surrounding whitespace is trimmed), e.g. a
    /// mounted Kubernetes or Docker secret.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// Reads the secret.
    pub fn resolve(&self, what: &str) -> Result<String, BridgeConfigError> {
        match (&self.env, &self.file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                Ok(_) => Err(BridgeConfigError::Secret(format!(
                    "{what}: environment variable {var} is empty"
                ))),
                Err(_) => Err(BridgeConfigError::Secret(format!(
                    "{what}: environment variable {var} is not set"
                ))),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                Ok(_) => Err(BridgeConfigError::Secret(format!(
                    "{what}: secret file {} is empty",
                    path.display()
                ))),
                Err(e) => Err(BridgeConfigError::Secret(format!(
                    "{what}: cannot read secret file {}: {e}",
                    path.display()
                ))),
            },
            _ => Err(BridgeConfigError::Secret(format!(
                "{what}: give exactly one of `env = \"VAR\"` or `file = \"path\"`"
            ))),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BridgeConfigError {
    #[error(transparent)]
    Rules(#[from] super::ConfigError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("environment override {var}: {message}")]
    Env { var: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Secret(String),
}

fn default_state() -> PathBuf {
    PathBuf::from("kendo-bridge.db")
}

/// The whole `bridge.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The SQLite state database (ledger, outbox, checkpoints).
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// How a commit reaches the disk: `normal` (the default: a commit
    /// survives any crash of the process) or `full` (a power loss too; each
    /// commit waits for the disk).
    #[serde(default)]
    pub state_sync: Option<String>,
    /// A team's own plugin component instead of the embedded one.
    #[serde(default)]
    pub plugin: Option<PathBuf>,
    /// A team's mapper component (`kendo:bridge/mapper`) plugged into the
    /// plugin in place of the default one.
    #[serde(default)]
    pub mapper: Option<PathBuf>,
    #[serde(default)]
    pub server: ServerConfig,
    pub kendo: KendoConfig,
    #[serde(default)]
    pub salesloft: Option<SalesloftConfig>,
    #[serde(default)]
    pub hubspot: Option<HubspotConfig>,
    #[serde(default)]
    pub aloware: Option<AlowareConfig>,
    /// `[rules]` and `[[reps]]` are read (and checked) by [`super::Config`];
    /// these fields only let the rest of the file be strict about unknown keys.
    #[serde(default, rename = "rules")]
    _rules: Option<toml::Value>,
    #[serde(default, rename = "reps")]
    _reps: Option<toml::Value>,
    /// The rules and the rep directory.
    #[serde(skip)]
    pub directory: super::Config,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8787))
}
fn default_unscored_after() -> Duration {
    ms(DEFAULT.webhooks.unscored_after_ms)
}
fn default_webhook_body() -> usize {
    DEFAULT.webhooks.max_body_bytes as usize
}

/// The webhook server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public base URL senders post to (e.g. `https://bridge.example.com`):
    /// HubSpot v2/v3 signatures cover the full URL.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Larger webhook bodies are refused with 413.
    #[serde(default = "default_webhook_body")]
    pub max_body_bytes: usize,
    /// The token the status page's replay and resume ask for (sent as
    /// `Authorization: Bearer`). Without it the page is read-only.
    #[serde(default)]
    pub operator_token: Option<SecretRef>,
    /// The status page reports calls Kendo accepted longer ago than this
    /// that have no score yet.
    #[serde(default = "default_unscored_after", with = "humantime_serde")]
    pub unscored_after: Duration,
    /// After SIGTERM (or Ctrl-C) no new work is claimed; what is in flight
    /// gets this long to finish before it is abandoned and the process
    /// exits. Keep it under the supervisor's own grace (systemd's
    /// `TimeoutStopSec`, Kubernetes' `terminationGracePeriodSeconds`).
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

fn default_shutdown_grace() -> Duration {
    ms(DEFAULT.webhooks.shutdown_grace_ms)
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            max_body_bytes: default_webhook_body(),
            operator_token: None,
            unscored_after: default_unscored_after(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

fn default_kendo_url() -> String {
    DEFAULT.kendo.url.into()
}
fn default_rpm() -> u32 {
    DEFAULT.kendo.requests_per_window
}
fn default_window() -> Duration {
    ms(DEFAULT.kendo.window_ms)
}
fn default_timeout() -> Duration {
    ms(DEFAULT.kendo.timeout_ms)
}
fn default_max_body() -> u64 {
    DEFAULT.kendo.max_body_bytes
}
fn default_margin() -> f64 {
    DEFAULT.kendo.pacing_margin
}

/// Kendo's Push API and its webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KendoConfig {
    /// Kendo's base URL; the ingest path is appended.
    #[serde(default = "default_kendo_url")]
    pub url: String,
    /// Requests per `window` per key (Kendo allows 30 per minute).
    #[serde(default = "default_rpm")]
    pub requests_per_window: u32,
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Extra spacing between requests, as a fraction (0.01 = 1%).
    #[serde(default = "default_margin")]
    pub pacing_margin: f64,
    /// How long to wait for Kendo's answer.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest body to send (Kendo: 5 MB). Longer transcripts are cut when
    /// the call has a recording.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Re-sends allowed after a lost answer (a timeout, a connection dropped
    /// after the request left) before the call is parked as
    /// `outcome-unknown`. Kendo has no idempotency key, so each re-send may
    /// duplicate the call; 0 parks at the first lost answer.
    #[serde(default = "default_ambiguous_resends")]
    pub ambiguous_resends: u32,
    /// The secret Kendo signs its webhooks with (`/webhooks/kendo`).
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
    /// One entry per Kendo team (each with its own Push API key).
    pub teams: Vec<TeamConfig>,
}

fn default_ambiguous_resends() -> u32 {
    DEFAULT.kendo.ambiguous_resends
}
fn default_retry_base() -> Duration {
    ms(DEFAULT.retry.kendo_send.base_ms)
}
fn default_retry_cap() -> Duration {
    ms(DEFAULT.retry.kendo_send.cap_ms)
}
fn default_attempts() -> u32 {
    DEFAULT.retry.kendo_send.max_attempts
}

/// Back-off for 5xx answers and timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The first retry waits up to this long (full jitter).
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    pub base: Duration,
    /// No wait is longer than this.
    #[serde(default = "default_retry_cap", with = "humantime_serde")]
    pub cap: Duration,
    /// Attempts before a call becomes a dead letter.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base: default_retry_base(),
            cap: default_retry_cap(),
            max_attempts: default_attempts(),
        }
    }
}

/// A Kendo team: where calls go, and which calls go there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    pub name: String,
    /// The team's Push API key (`pk_...`).
    pub api_key: SecretRef,
    /// Sources routed to this team (`salesloft`, `hubspot`, `aloware`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Rep emails routed to this team (checked before `sources`).
    #[serde(default)]
    pub reps: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_poll() -> Duration {
    ms(DEFAULT.polling.interval_ms)
}
fn default_initial() -> Duration {
    ms(DEFAULT.polling.first_look_back_ms)
}
fn default_hs_lookback() -> Duration {
    ms(DEFAULT.hubspot.search_look_back_ms)
}
fn default_hs_page() -> u32 {
    DEFAULT.hubspot.page_size
}
/// HubSpot's changelog raised search to four requests per second per token
/// (https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase);
/// later limits pages speak of about five per account. Four keeps under both.
fn default_hs_search_per_second() -> u32 {
    DEFAULT.hubspot.search_per_second
}
/// Salesloft writes a call data record as the call happens; a few minutes
/// cover the time until the call activity is logged.
fn default_sl_direction_wait() -> Duration {
    ms(DEFAULT.salesloft.direction_wait_ms)
}
fn default_sl_budget_share() -> f64 {
    DEFAULT.salesloft.budget_share
}
fn default_sl_window() -> Duration {
    ms(DEFAULT.salesloft.budget_window_ms)
}
/// https://developers.salesloft.com/docs/platform/api-basics/rate-limits/:
/// 600 cost points per minute for the whole team.
fn default_sl_rate_limit_points() -> u64 {
    DEFAULT.salesloft.team_points
}
fn default_sl_url() -> String {
    DEFAULT.salesloft.api_url.into()
}
fn default_hs_url() -> String {
    DEFAULT.hubspot.api_url.into()
}

/// Salesloft polling and webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesloftConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_sl_url")]
    pub api_url: String,
    /// API key or OAuth token (`ak_...`); needed for polling and to look up
    /// users.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// How often to poll; `0s` turns polling off (webhooks only).
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How far back the very first poll reads.
    #[serde(default = "default_initial", with = "humantime_serde")]
    pub initial_lookback: Duration,
    /// Fetch Conversations transcripts (Salesloft's scope lists show
    /// `conversations:read`; Kendo's guide names `transcriptions:read`). Off
    /// by default: no public document shows how a transcription links to
    /// its call (the conversation's `call_id` is an assumption).
    #[serde(default)]
    pub transcripts: bool,
    /// How long a finished call waits for its call data record (which
    /// carries the direction) before it is sent without a direction.
    #[serde(default = "default_sl_direction_wait", with = "humantime_serde")]
    pub direction_wait: Duration,
    /// The share of the team's Salesloft rate budget the bridge may spend
    /// (0 < share <= 1): the budget is shared by every integration of the
    /// team.
    #[serde(default = "default_sl_budget_share")]
    pub budget_share: f64,
    /// The team's budget: cost points per `rate_limit_window`.
    #[serde(default = "default_sl_rate_limit_points")]
    pub rate_limit_points: u64,
    #[serde(default = "default_sl_window", with = "humantime_serde")]
    pub rate_limit_window: Duration,
    /// The webhook subscription's callback token (`/webhooks/salesloft`).
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
}

/// Which HubSpot signature version the webhook endpoint accepts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HubspotSignature {
    /// Chosen per request from the headers present: CRM webhooks sign with
    /// v1 (`X-HubSpot-Signature-Version: v1`), workflow actions with v2 or
    /// v3 (`X-HubSpot-Signature-v3` + `X-HubSpot-Request-Timestamp`), so one
    /// configuration takes both. v3 wins when its headers are present.
    #[default]
    Auto,
    V1,
    V2,
    V3,
}

/// HubSpot polling and webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubspotConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_hs_url")]
    pub api_url: String,
    /// Private app token; needed for polling and to fetch calls named by
    /// webhooks.
    #[serde(default)]
    pub token: Option<SecretRef>,
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(default = "default_initial", with = "humantime_serde")]
    pub initial_lookback: Duration,
    /// Search lags writes: each cycle re-reads this much before the newest
    /// change it saw.
    #[serde(default = "default_hs_lookback", with = "humantime_serde")]
    pub lookback: Duration,
    /// Results per search page (at most 200).
    #[serde(default = "default_hs_page")]
    pub page_size: u32,
    /// Search requests per second. HubSpot limits search separately from
    /// the other endpoints (and answers 429 past it): the bridge spaces
    /// searches to stay under this instead of backing off.
    #[serde(default = "default_hs_search_per_second")]
    pub search_per_second: u32,
    /// Fetch calling transcripts.
    #[serde(default)]
    pub transcripts: bool,
    /// The app's client secret (`/webhooks/hubspot`).
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
    #[serde(default)]
    pub signature: HubspotSignature,
    /// Write Kendo's answer back to each call: `Kendo Sent` and `Kendo Call
    /// ID` after Kendo's 201, `Kendo AI Score` and `Kendo Scored At` after
    /// its score webhook (properties created on first use in the group
    /// `kendo`). Needs the token's write scopes; off by default.
    #[serde(default)]
    pub write_back: bool,
    /// Write-back requests per second, spaced, on top of polling.
    #[serde(default = "default_hs_write_back_per_second")]
    pub write_back_per_second: u32,
    /// Attempts per write-back (5xx, 429, timeouts) before it is given up.
    #[serde(default = "default_hs_write_back_attempts")]
    pub write_back_attempts: u32,
}

/// Two a second is 20 in any 10 s, a fifth of HubSpot's smallest burst
/// limit for private apps (100 per 10 s; 190 on Professional and
/// Enterprise: https://developers.hubspot.com/changelog/increasing-our-api-limits),
/// leaving the rest to polling and the portal's other integrations.
fn default_hs_write_back_per_second() -> u32 {
    DEFAULT.hubspot.write_back_per_second
}
fn default_hs_write_back_attempts() -> u32 {
    DEFAULT.retry.write_back.max_attempts
}

/// Aloware webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlowareConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The Bearer token, or `user:password` for Basic auth, set on the
    /// Aloware webhook.
    #[serde(default)]
    pub webhook_secret: Option<SecretRef>,
    /// Accept deliveries without credentials (Aloware's "None" auth). Only
    /// behind a private network.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// How long a call ready with its recording waits for Aloware's
    /// transcript before it is sent with the recording alone. Captured
    /// traffic had the transcript 44 s after the recording; accounts
    /// without transcription never send one. `0s` sends at once.
    #[serde(default = "default_transcript_wait", with = "humantime_serde")]
    pub transcript_wait: Duration,
}

fn default_transcript_wait() -> Duration {
    ms(DEFAULT.aloware.transcript_wait_ms)
}

/// Every default is the core's (`Policy::DEFAULT`): stated once for both
/// drivers.
const DEFAULT: Policy = Policy::DEFAULT;

fn ms(millis: kendo_bridge_core::Millis) -> Duration {
    Duration::from_millis(millis.max(0) as u64)
}

impl BridgeConfig {
    /// Reads `path`, applies `KENDO_BRIDGE__...` environment overrides, and
    /// checks the result.
    pub fn load(path: &Path) -> Result<BridgeConfig, BridgeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| BridgeConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        BridgeConfig::parse(&text, path, &vars)
    }

    /// Parses configuration text with the given overrides.
    pub fn parse(
        text: &str,
        path: &Path,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BridgeConfig, BridgeConfigError> {
        let mut value: toml::Table =
            toml::from_str(text).map_err(|e| BridgeConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        for (var, raw) in overrides {
            apply_override(&mut value, var, raw)?;
        }
        let config: BridgeConfig =
            toml::Value::Table(value)
                .try_into()
                .map_err(|e: toml::de::Error| BridgeConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
        let mut config = config;
        config.directory = super::Config::parse(text, path)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), BridgeConfigError> {
        if let Some(sync) = &self.state_sync
            && Sync::parse(sync).is_none()
        {
            return Err(BridgeConfigError::Invalid(format!(
                "state_sync = \"{sync}\": use \"normal\" (a commit survives any crash of the process) or \"full\" (a power loss too; slower)"
            )));
        }
        if self.kendo.teams.is_empty() {
            return Err(BridgeConfigError::Invalid(
                "[kendo] needs at least one [[kendo.teams]] entry with a name and an api_key"
                    .into(),
            ));
        }
        let mut names: Vec<&str> = self.kendo.teams.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(BridgeConfigError::Invalid(format!(
                "two [[kendo.teams]] are named `{}`",
                w[0]
            )));
        }
        for team in &self.kendo.teams {
            for source in &team.sources {
                if !["salesloft", "hubspot", "aloware"].contains(&source.as_str()) {
                    return Err(BridgeConfigError::Invalid(format!(
                        "team `{}` routes unknown source `{source}` (salesloft, hubspot or aloware)",
                        team.name
                    )));
                }
            }
        }
        if self.kendo.requests_per_window == 0 {
            return Err(BridgeConfigError::Invalid(
                "kendo.requests_per_window must be at least 1".into(),
            ));
        }
        if let Some(sl) = &self.salesloft
            && !(sl.budget_share > 0.0 && sl.budget_share <= 1.0)
        {
            return Err(BridgeConfigError::Invalid(format!(
                "salesloft.budget_share is {}; it is a share of the team's budget, above 0 and at most 1",
                sl.budget_share
            )));
        }
        if let Some(hs) = &self.hubspot
            && !(1..=200).contains(&hs.page_size)
        {
            return Err(BridgeConfigError::Invalid(format!(
                "hubspot.page_size is {}; HubSpot allows 1 to 200",
                hs.page_size
            )));
        }
        Ok(())
    }

    /// The Kendo team a call goes to: the first team listing the rep's email,
    /// else the first listing the source, else the first team that lists
    /// neither (a catch-all), else the first team.
    pub fn route(&self, source: &str, rep_email: Option<&str>) -> &str {
        let teams = &self.kendo.teams;
        if let Some(email) = rep_email
            && let Some(t) = teams
                .iter()
                .find(|t| t.reps.iter().any(|r| r.eq_ignore_ascii_case(email)))
        {
            return &t.name;
        }
        if let Some(t) = teams.iter().find(|t| t.sources.iter().any(|s| s == source)) {
            return &t.name;
        }
        teams
            .iter()
            .find(|t| t.sources.is_empty() && t.reps.is_empty())
            .or_else(|| teams.first())
            .map_or("default", |t| t.name.as_str())
    }

    /// The core's policy with this configuration's values: what the TOML
    /// leaves out keeps the core's default.
    pub fn policy(&self) -> Policy {
        let mut policy = Policy::DEFAULT;
        let millis = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
        let kendo = &self.kendo;
        policy.kendo.requests_per_window = kendo.requests_per_window;
        policy.kendo.window_ms = millis(kendo.window);
        policy.kendo.pacing_margin = kendo.pacing_margin;
        policy.kendo.timeout_ms = millis(kendo.timeout);
        policy.kendo.max_body_bytes = kendo.max_body_bytes;
        policy.kendo.ambiguous_resends = kendo.ambiguous_resends;
        policy.retry.kendo_send.base_ms = millis(kendo.retry.base);
        policy.retry.kendo_send.cap_ms = millis(kendo.retry.cap);
        policy.retry.kendo_send.max_attempts = kendo.retry.max_attempts.max(1);
        // A write-back backs off as a send does, with its own attempts.
        policy.retry.write_back = policy.retry.kendo_send;
        if let Some(hubspot) = &self.hubspot {
            policy.retry.write_back.max_attempts = hubspot.write_back_attempts.max(1);
        }
        policy.webhooks.max_body_bytes = self.server.max_body_bytes as u64;
        policy.webhooks.shutdown_grace_ms = millis(self.server.shutdown_grace);
        policy.webhooks.unscored_after_ms = millis(self.server.unscored_after);
        if let Some(sync) = self.state_sync.as_deref().and_then(Sync::parse) {
            policy.sync = sync;
        }
        policy
    }

    /// The ingest endpoint.
    pub fn ingest_url(&self) -> String {
        kendo_bridge_core::policy::ingest_url(&self.kendo.url)
    }
}

fn apply_override(root: &mut toml::Table, var: &str, raw: &str) -> Result<(), BridgeConfigError> {
    let path: Vec<String> = var
        .trim_start_matches(ENV_PREFIX)
        .split("__")
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let Some((last, parents)) = path.split_last() else {
        return Ok(());
    };
    if last.is_empty() || parents.iter().any(|p| p.is_empty()) {
        return Err(BridgeConfigError::Env {
            var: var.into(),
            message: "expected KENDO_BRIDGE__SECTION__KEY".into(),
        });
    }
    let mut table = root;
    for part in parents {
        let entry = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(BridgeConfigError::Env {
                    var: var.into(),
                    message: format!("`{part}` is not a section"),
                });
            }
        };
    }
    // A value that reads as TOML (a number, a bool, an inline table) is
    // taken as such; anything else is a string.
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../bridge.example.toml");

    fn parse(text: &str) -> BridgeConfig {
        BridgeConfig::parse(text, Path::new("bridge.toml"), &BTreeMap::new()).unwrap()
    }

    #[test]
    fn the_example_configuration_parses_and_allows_one_resend_after_a_lost_answer() {
        assert_eq!(parse(EXAMPLE).kendo.ambiguous_resends, 1);
    }

    #[test]
    fn ambiguous_resends_is_read_from_the_file_and_defaults_to_one() {
        let zero = EXAMPLE.replace("ambiguous_resends = 1", "ambiguous_resends = 0");
        assert_eq!(parse(&zero).kendo.ambiguous_resends, 0);
        let unset = EXAMPLE.replace("ambiguous_resends = 1", "");
        assert_eq!(parse(&unset).kendo.ambiguous_resends, 1);
    }
    #[test]
    fn commits_wait_for_the_disk_only_when_state_sync_is_full() {
        use kendo_bridge_core::ledger::connection::Sync;
        assert_eq!(parse(EXAMPLE).policy().sync, Sync::Normal);
        let full = format!("state_sync = \"full\"\n{EXAMPLE}");
        assert_eq!(parse(&full).policy().sync, Sync::Full);
        let wrong = format!("state_sync = \"fast\"\n{EXAMPLE}");
        let error = BridgeConfig::parse(&wrong, Path::new("bridge.toml"), &BTreeMap::new())
            .expect_err("an unknown value is refused");
        assert!(error.to_string().contains("\"normal\""), "{error}");
    }
}

#[cfg(test)]
mod aloware_tests {
    use super::*;

    const BASE: &str = r#"
[kendo]
[[kendo.teams]]
name = "sales"
api_key = { env = "KENDO_API_KEY" }
[aloware]
"#;

    fn aloware(text: &str, overrides: &[(&str, &str)]) -> AlowareConfig {
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BridgeConfig::parse(text, Path::new("bridge.toml"), &overrides)
            .map(|c| c.aloware)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("an [aloware] section in {text}"))
    }

    #[test]
    fn an_aloware_call_waits_five_minutes_for_its_transcript_by_default() {
        assert_eq!(aloware(BASE, &[]).transcript_wait, Duration::from_secs(300));
    }

    #[test]
    fn the_aloware_transcript_wait_is_set_in_the_file_or_the_environment() {
        let text = format!("{BASE}transcript_wait = \"90s\"\n");
        assert_eq!(aloware(&text, &[]).transcript_wait, Duration::from_secs(90));
        let env = [("KENDO_BRIDGE__ALOWARE__TRANSCRIPT_WAIT", "0s")];
        assert_eq!(aloware(&text, &env).transcript_wait, Duration::ZERO);
    }
}

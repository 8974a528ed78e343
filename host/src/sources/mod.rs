//! The sources: one module per system the bridge reads from.
//!
//! Each module does the I/O for its source (polling, fetching users or
//! owners, handling webhook deliveries) and asks the plugin every question
//! about a record: which request comes next, what a page holds, whether a
//! call is sent, skipped or kept waiting, and what its Kendo payload is. What
//! they share lives here: the [`Context`] every task holds, the
//! [`SourceApi`] HTTP client that honours rate limits, and [`decide`], which
//! turns a plugin decision into a ledger [`Intake`].

pub mod aloware;
pub mod hubspot;
pub mod redecide;
pub mod salesloft;
pub mod write_back;

use kendo_bridge_core::sources::{Health, Lookups};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::BridgeConfig;
use crate::pacing::Backoff;
use crate::plugin::PluginError;
use crate::plugin::types::{HttpRequest, InputError, Rules};
use crate::pool::PluginPool;
use crate::store::{Intake, Millis, SharedStore, StoreError, counter};
use kendo_bridge_core::policy::Policy;

/// What every bridge task shares.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<BridgeConfig>,
    pub store: SharedStore,
    pub plugin: PluginPool,
    pub clock: Clock,
    pub http: reqwest::Client,
    pub rules: Rules,
    /// Wakes the delivery workers when new sends are queued.
    pub wake: Arc<Notify>,
}

impl Context {
    /// Records that `topic` of `source` worked now, clearing its problem.
    pub async fn health_ok(
        &self,
        source: &'static str,
        topic: &'static str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        self.store
            .run(move |s| s.health_ok(source, topic, now))
            .await
    }

    /// Records a problem with `topic` of `source` for `status`, logged at
    /// `warn` when it is new and at `debug` while it lasts, so a failure
    /// repeated every cycle does not flood the log.
    pub async fn health_problem(
        &self,
        source: &'static str,
        topic: &'static str,
        problem: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let text = problem.to_string();
        let new = self
            .store
            .run(move |s| s.health_problem(source, topic, &text, now))
            .await?;
        if new {
            tracing::warn!(source, topic, problem, "source problem");
        } else {
            tracing::debug!(source, topic, problem, "source problem persists");
        }
        Ok(())
    }

    /// Records how a poll cycle went under the `poll` topic.
    pub async fn poll_health(
        &self,
        source: &'static str,
        outcome: &Result<CycleReport, SourceError>,
    ) -> Result<(), StoreError> {
        match kendo_bridge_core::sources::poll::health(outcome) {
            Health::Ok(topic) => self.health_ok(source, topic).await,
            Health::Problem(topic, problem) => self.health_problem(source, topic, &problem).await,
        }
    }

    pub async fn intake(
        &self,
        items: Vec<Intake>,
        checkpoint: Option<(String, String)>,
    ) -> Result<crate::store::IntakeReport, StoreError> {
        let now = self.clock.now_ms();
        let report = self
            .store
            .run(move |s| {
                s.intake(
                    &items,
                    checkpoint.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                    now,
                )
            })
            .await?;
        if report.enqueued + report.updated > 0 {
            self.wake.notify_waiters();
        }
        Ok(report)
    }
}

impl Context {
    /// Wakes the delivery workers when an intake queued sends.
    pub fn queued(&self, report: &crate::store::IntakeReport) {
        if report.enqueued + report.updated > 0 {
            self.wake.notify_waiters();
        }
    }
}

/// One of `doctor`'s live checks: its name, whether the bridge works
/// without it, and what it found (or why it failed).
pub struct DoctorCheck {
    pub name: String,
    /// The bridge works without this part (HubSpot's dispositions fall back
    /// to the default labels, transcripts to the recording): a failure is a
    /// warning, not a failure of the bridge.
    pub optional: bool,
    pub outcome: Result<String, SourceError>,
}

impl DoctorCheck {
    /// A part the bridge cannot work without.
    pub fn needed(name: impl Into<String>, outcome: Result<String, SourceError>) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            optional: false,
            outcome,
        }
    }

    /// A part the bridge works without.
    pub fn optional(name: impl Into<String>, outcome: Result<String, SourceError>) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            optional: true,
            outcome,
        }
    }
}

/// Why a source could not be read this time. The poller logs it, leaves the
/// checkpoint where it was, and tries again next cycle.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{source_name} answered {status} to {method} {path}{hint}: {body}")]
    Status {
        source_name: &'static str,
        status: u16,
        method: String,
        path: String,
        body: String,
        /// What the operator should check (starts with "; "), or empty.
        hint: String,
    },
    /// A listing the poller needs does not exist at this URL: a
    /// configuration error (usually `api_url`), not a deleted record.
    #[error("{source_name} answered 404 (not found) to {method} {url}; {hint}")]
    NotFound {
        source_name: &'static str,
        method: String,
        url: String,
        hint: String,
    },
    /// A secret or setting the source needs cannot be resolved.
    #[error("{source_name} cannot start: {message}")]
    Config {
        source_name: &'static str,
        message: String,
    },
    #[error("{source_name} could not be reached for {path}: {message}")]
    Transport {
        source_name: &'static str,
        path: String,
        message: String,
    },
    #[error("{source_name} sent a page the plugin cannot read: {message}")]
    Unreadable {
        source_name: &'static str,
        message: String,
    },
    /// A property the bridge writes exists in HubSpot with another type;
    /// the text names it and what to do.
    #[error("{0}")]
    WrongProperty(String),
    #[error("{0} is not configured with credentials; set its api key / token to poll")]
    NoCredentials(&'static str),
    #[error("could not write the source cursor: {0}")]
    Checkpoint(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<kendo_bridge_core::ledger::LedgerError> for SourceError {
    fn from(e: kendo_bridge_core::ledger::LedgerError) -> SourceError {
        SourceError::Store(StoreError::Ledger(e))
    }
}

impl From<kendo_bridge_core::ports::Trap> for SourceError {
    fn from(
        kendo_bridge_core::ports::Trap(message): kendo_bridge_core::ports::Trap,
    ) -> SourceError {
        SourceError::Plugin(PluginError::Trap { message })
    }
}

impl From<kendo_bridge_core::ports::WorkflowError> for SourceError {
    fn from(e: kendo_bridge_core::ports::WorkflowError) -> SourceError {
        use kendo_bridge_core::ports::{Trap, WorkflowError};
        match e {
            WorkflowError::Ledger(e) => SourceError::Store(StoreError::Ledger(e)),
            WorkflowError::Plugin(Trap(message)) => {
                SourceError::Plugin(PluginError::Trap { message })
            }
            WorkflowError::Unreadable {
                source_name,
                message,
            } => SourceError::Unreadable {
                source_name,
                message,
            },
        }
    }
}

impl From<crate::ports::Interrupted> for SourceError {
    fn from(e: crate::ports::Interrupted) -> SourceError {
        SourceError::Store(StoreError::Interrupted(e.0))
    }
}

/// An HTTP client for one source API: adds the bearer token, waits out
/// 429s (`Retry-After`, or a short back-off when absent), retries 5xx and
/// transport failures a few times, and counts every 429.
#[derive(Clone)]
pub struct SourceApi {
    name: &'static str,
    base: String,
    token: String,
    http: reqwest::Client,
    clock: Clock,
    store: SharedStore,
    /// Attempts per request before giving up for this cycle, and the waits
    /// between them.
    retry: Backoff,
    timeout: Duration,
    /// Requests the source limits on their own (HubSpot search).
    pacing: Option<RequestPacing>,
    /// The configuration key of the credential (`salesloft.api_key`), named
    /// when the source refuses it.
    secret_key: String,
    /// A budget every request of the source spends (Salesloft's team-wide
    /// cost points).
    budget: Option<Arc<dyn RateBudget>>,
}

/// A rate budget that every request of a source spends: asked for a slot
/// before each request (reserved at once, so concurrent callers queue) and
/// told each answer's headers, which may say how much is left.
pub trait RateBudget: Send + Sync {
    /// The time `request` may leave, at or after `now`, reserved for it.
    fn reserve(&self, request: &HttpRequest, now: Millis) -> Millis;
    /// An answer arrived at `now` with these headers.
    fn observe(&self, now: Millis, headers: &reqwest::header::HeaderMap);
}

/// Spaces the requests a source limits separately from the rest, so the
/// limit is kept by waiting for a slot instead of found by 429s. Each
/// request reserves its slot before sleeping, so concurrent callers queue.
#[derive(Clone)]
pub struct RequestPacing {
    pacer: Arc<Mutex<crate::pacing::Pacer>>,
    applies: fn(&HttpRequest) -> bool,
}

impl RequestPacing {
    /// `limit` requests per `window_ms` for the requests `applies` picks.
    pub fn new(limit: u32, window_ms: Millis, applies: fn(&HttpRequest) -> bool) -> RequestPacing {
        RequestPacing {
            pacer: Arc::new(Mutex::new(crate::pacing::Pacer::new(
                limit,
                window_ms,
                0.05,
                Vec::new(),
            ))),
            applies,
        }
    }

    /// Waits, if `request` is paced, until its slot.
    pub async fn wait(&self, request: &HttpRequest, clock: &Clock) {
        if !(self.applies)(request) {
            return;
        }
        let slot = {
            let mut pacer = self.pacer.lock().unwrap_or_else(|p| p.into_inner());
            let slot = pacer.next_slot(clock.now_ms());
            pacer.record(slot);
            slot
        };
        clock.sleep_until(slot).await;
    }
}

impl SourceError {
    /// A failure worth trying again with the same request later: the
    /// source or the store was unreachable, busy (429) or failing (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Transport { .. } | SourceError::Store(_) => true,
            SourceError::Status { status, .. } => kendo_bridge_core::sources::passing(*status),
            _ => false,
        }
    }

    /// A page or record the plugin could not read.
    pub fn unreadable(source_name: &'static str, error: &InputError) -> SourceError {
        SourceError::Unreadable {
            source_name,
            message: error.explain().to_string(),
        }
    }
}

impl SourceApi {
    /// The API client of a source whose credentials are configured; None
    /// when they are not (webhook-only deployments).
    pub fn configured(
        name: &'static str,
        base: &str,
        secret: Option<&crate::config::SecretRef>,
        what: &str,
        ctx: &Context,
    ) -> Result<Option<SourceApi>, SourceError> {
        let Some(secret) = secret else {
            return Ok(None);
        };
        let token = secret.resolve(what).map_err(|e| SourceError::Config {
            source_name: name,
            message: e.to_string(),
        })?;
        let mut api = SourceApi::new(name, base, token, ctx);
        api.secret_key = what.to_string();
        Ok(Some(api))
    }

    pub fn new(name: &'static str, base: &str, token: String, ctx: &Context) -> SourceApi {
        SourceApi {
            name,
            base: base.trim_end_matches('/').to_string(),
            token,
            http: ctx.http.clone(),
            clock: ctx.clock,
            store: ctx.store.clone(),
            retry: Policy::DEFAULT.retry.source_request,
            timeout: Duration::from_millis(Policy::DEFAULT.polling.request_timeout_ms as u64),
            pacing: None,
            budget: None,
            secret_key: format!("{name} credentials"),
        }
    }

    /// Requests a listing (a page of calls): a 404 here means the listing
    /// is not at this URL, which is a configuration error, not "no calls".
    pub async fn fetch_list(&self, request: &HttpRequest) -> Result<String, SourceError> {
        match self.fetch(request).await? {
            Some(body) => Ok(body),
            None => Err(self.list_not_found(request)),
        }
    }

    /// The source's name (`hubspot`, `salesloft`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn list_not_found(&self, request: &HttpRequest) -> SourceError {
        let url = format!("{}{}", self.base, request.path);
        let hint = match doubled_segment(&self.base, &request.path) {
            Some(seg) => format!(
                "the URL repeats `/{seg}`: `{name}.api_url` ({base}) must not end with `/{seg}`",
                name = self.name,
                base = self.base
            ),
            None => format!(
                "check `{name}.api_url` ({base})",
                name = self.name,
                base = self.base
            ),
        };
        SourceError::NotFound {
            source_name: self.name,
            method: request.method.clone(),
            url,
            hint,
        }
    }

    /// The same client spending `budget` with every request.
    pub fn budgeted(mut self, budget: Arc<dyn RateBudget>) -> SourceApi {
        self.budget = Some(budget);
        self
    }

    /// The same client with `pacing` applied to the requests it picks.
    pub fn paced(mut self, pacing: RequestPacing) -> SourceApi {
        self.pacing = Some(pacing);
        self
    }

    /// The same client making at most `attempts` attempts per request, for
    /// callers with a durable back-off of their own (write-backs): a failure
    /// is returned at once instead of slept over here.
    pub fn with_attempts(mut self, attempts: u32) -> SourceApi {
        self.retry.max_attempts = attempts.max(1);
        self
    }

    /// Makes a request the plugin planned and returns the body of a 2xx.
    /// A 404 is returned as `Ok(None)`: a deleted record is not an outage.
    /// Listings use [`SourceApi::fetch_list`] instead.
    pub async fn fetch(&self, request: &HttpRequest) -> Result<Option<String>, SourceError> {
        let url = format!("{}{}", self.base, request.path);
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            SourceError::Unreadable {
                source_name: self.name,
                message: format!("the plugin asked for HTTP method {:?}", request.method),
            }
        })?;
        let mut attempt = 0;
        // The status of the last retryable answer, for the error when the
        // attempts run out (a 503 must not be reported as a 429).
        loop {
            attempt += 1;
            if let Some(pacing) = &self.pacing {
                pacing.wait(request, &self.clock).await;
            }
            if let Some(budget) = &self.budget {
                let slot = budget.reserve(request, self.clock.now_ms());
                self.clock.sleep_until(slot).await;
            }
            let mut builder = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.token)
                .timeout(self.timeout);
            for h in &request.headers {
                builder = builder.header(&h.name, &h.value);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            // A failed attempt: the error it ends in when it is the last,
            // and the server's `Retry-After`, if it gave one.
            let sent = builder.send().await;
            self.count(&sent).await?;
            let (failure, retry_after) = match sent {
                Ok(response) => {
                    if let Some(budget) = &self.budget {
                        budget.observe(self.clock.now_ms(), response.headers());
                    }
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| crate::pacing::retry_after_ms(v, self.clock.now_ms()));
                    let remaining = header_secs(response.headers(), "x-ratelimit-remaining-minute");
                    let body = response.text().await.unwrap_or_default();
                    let hint = match status {
                        200..=299 => {
                            if remaining == Some(0) {
                                // Salesloft's budget is shared by the whole
                                // team: leave the rest of the minute to others.
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                            return Ok(Some(body));
                        }
                        404 => return Ok(None),
                        429 => {
                            let scope = self.name.to_string();
                            self.store
                                .run(move |s| s.bump(&scope, counter::SOURCE_429, 1))
                                .await?;
                            String::new()
                        }
                        500..=599 => String::new(),
                        _ => {
                            let hint = match status {
                                401 | 403 => format!(
                                    "; check `{}` (the source refused the credential)",
                                    self.secret_key
                                ),
                                _ => String::new(),
                            };
                            return Err(SourceError::Status {
                                source_name: self.name,
                                status,
                                method: request.method.clone(),
                                path: request.path.clone(),
                                body: excerpt(&body),
                                hint,
                            });
                        }
                    };
                    let failure = SourceError::Status {
                        source_name: self.name,
                        status,
                        method: request.method.clone(),
                        path: request.path.clone(),
                        body: format!(
                            "still failing after {attempt} attempt(s): {}",
                            excerpt(&body)
                        ),
                        hint,
                    };
                    (failure, retry_after)
                }
                Err(e) => {
                    let failure = SourceError::Transport {
                        source_name: self.name,
                        path: request.path.clone(),
                        message: e.to_string(),
                    };
                    (failure, None)
                }
            };
            // The one retry policy of the bridge (Kendo sends use it too):
            // exponential back-off with full jitter, or the server's
            // `Retry-After`, within this request's attempts.
            let Some(wait_ms) = self.retry.wait(attempt, retry_after, rand::random()) else {
                return Err(failure);
            };
            tracing::debug!(source = self.name, path = %request.path, wait_ms, "retrying source request");
            self.clock.sleep_until(self.clock.now_ms() + wait_ms).await;
        }
    }
}

impl SourceApi {
    /// Counts a request for `/metrics`: answered or failed, and the cost
    /// points the source says it cost.
    async fn count(
        &self,
        sent: &Result<reqwest::Response, reqwest::Error>,
    ) -> Result<(), SourceError> {
        let (ok, cost) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let cost = header_secs(response.headers(), "x-ratelimit-endpoint-cost");
                ((200..300).contains(&status) || status == 404, cost)
            }
            Err(_) => (false, None),
        };
        let scope = self.name.to_string();
        self.store
            .run(move |s| {
                let name = if ok {
                    counter::SOURCE_REQUESTS_OK
                } else {
                    counter::SOURCE_REQUESTS_ERROR
                };
                s.bump(&scope, name, 1)?;
                if let Some(cost) = cost.filter(|c| *c > 0) {
                    s.bump(&scope, counter::SOURCE_COST_POINTS, cost)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}

fn header_secs(headers: &reqwest::header::HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| v.ceil() as i64)
}

/// The path segment that ends the base and also starts the path (`v2` for
/// `https://api.salesloft.com/v2` + `/v2/activities/calls`).
fn doubled_segment(base: &str, path: &str) -> Option<String> {
    let last = base.trim_end_matches('/').rsplit('/').next()?;
    let first = path.trim_start_matches('/').split(['/', '?']).next()?;
    (!last.is_empty() && last == first && !last.contains(':') && !last.contains('.'))
        .then(|| last.to_string())
}

fn excerpt(body: &str) -> String {
    let trimmed: String = body.chars().take(300).collect();
    if trimmed.len() < body.len() {
        format!("{trimmed}...")
    } else {
        trimmed
    }
}

/// A cache of looked-up records (Salesloft users, HubSpot owners and
/// dispositions), shared by the source's tasks: reps make many calls, and
/// every lookup spends the source's rate budget. The caching rule is the
/// core's ([`kendo_bridge_core::sources::Lookups`]).
#[derive(Clone, Default)]
pub struct LookupCache {
    entries: Arc<Mutex<Lookups>>,
}

impl LookupCache {
    /// Runs `f` on the cache (never across an await: the lock is a plain
    /// mutex).
    pub fn with<R>(&self, f: impl FnOnce(&mut Lookups) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut entries)
    }
}

/// What one polling cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub pages: u32,
    pub records: u32,
    pub report: crate::store::IntakeReport,
}

impl From<&kendo_bridge_core::sources::poll::CycleReport> for CycleReport {
    fn from(c: &kendo_bridge_core::sources::poll::CycleReport) -> CycleReport {
        CycleReport {
            pages: c.pages,
            records: c.records,
            report: c.report,
        }
    }
}

/// The enabled sources.
#[derive(Clone)]
pub struct Sources {
    pub salesloft: Option<salesloft::Salesloft>,
    pub hubspot: Option<hubspot::Hubspot>,
    pub aloware: Option<aloware::Aloware>,
}

impl Sources {
    /// Sets up every source enabled in the configuration.
    pub fn new(ctx: &Context) -> Result<Sources, SourceError> {
        Ok(Sources {
            salesloft: salesloft::Salesloft::new(ctx)?,
            hubspot: hubspot::Hubspot::new(ctx)?,
            aloware: aloware::Aloware::new(ctx),
        })
    }

    /// Ports reading every enabled source's API, with its caches: what a
    /// stored delivery of any source is processed with.
    pub fn ports<'a>(&'a self, ctx: &'a Context) -> crate::ports::HostPorts<'a> {
        let ports = crate::ports::HostPorts::new(ctx);
        let ports = match &self.hubspot {
            Some(hs) => hs.reading(ports),
            None => ports,
        };
        match &self.salesloft {
            Some(sl) => sl.reading(ports),
            None => ports,
        }
    }
}

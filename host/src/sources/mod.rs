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
pub mod kendo;
pub mod redecide;
pub mod salesloft;
pub mod write_back;

use kendo_bridge_core::decision::{BuildProblem, Built, Decided, InputProblem};
use kendo_bridge_core::sources::{Lookups, poll};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::BridgeConfig;
use crate::pacing::Backoff;
use crate::plugin::PluginError;
use crate::plugin::kendo::PayloadOptions;
use crate::plugin::types::{Decision, HttpRequest, InputError, Rules, SyncMethod};
use crate::pool::PluginPool;
use crate::store::{CallKey, Intake, Millis, SharedStore, StoreError, counter};
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
        match outcome {
            Ok(_) => self.health_ok(source, "poll").await,
            Err(e) => self.health_problem(source, "poll", &e.to_string()).await,
        }
    }

    /// Records decided records (and moves a checkpoint with them), then wakes
    /// the delivery workers if anything was queued.
    /// Records a polled page in `cycle` (the core's rule): its decisions,
    /// and its checkpoint moved past it.
    pub async fn poll_page(
        &self,
        mut cycle: poll::Cycle,
        items: Vec<Intake>,
        next: String,
        more: bool,
    ) -> Result<(poll::Cycle, crate::store::IntakeReport, poll::After), StoreError> {
        let now = self.clock.now_ms();
        let (cycle, report, after) = self
            .store
            .run(move |s| {
                let (report, after) = cycle.page(s.database(), &items, next, more, now)?;
                Ok((cycle, report, after))
            })
            .await?;
        if report.enqueued + report.updated > 0 {
            self.wake.notify_waiters();
        }
        Ok((cycle, report, after))
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
    /// An intake that only records a sighting of a record already settled.
    pub fn seen(&self, source: &str, source_id: &str, version: &str, via: SyncMethod) -> Intake {
        let key = CallKey {
            source: source.to_string(),
            source_id: source_id.to_string(),
            team: self.config.route(source, None).to_string(),
        };
        Intake::seen(key, version, sync_method_name(via))
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

    fn list_not_found(&self, request: &HttpRequest) -> SourceError {
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
    /// The cached body for `id` (Some(None): known to be missing).
    pub fn get(&self, id: &str, now: Millis) -> Option<Option<String>> {
        self.with(|l| l.get(id, now))
    }

    pub fn put(&self, id: &str, body: Option<String>, now: Millis) {
        self.with(|l| l.put(id, body, now));
    }

    /// Runs `f` on the cache (never across an await: the lock is a plain
    /// mutex).
    pub fn with<R>(&self, f: impl FnOnce(&mut Lookups) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut entries)
    }
}

/// A listed record the plugin could not read, as a failed ledger row (the
/// core's rule), logged when it has no id of its own.
pub fn rejected(
    ctx: &Context,
    source: &str,
    position: &str,
    index: usize,
    version_width: usize,
    rejected: &crate::plugin::types::RejectedRecord,
) -> Intake {
    if rejected.id.is_none() {
        tracing::warn!(source, %position, index, at = %rejected.at, "a listed record without a readable id");
    }
    kendo_bridge_core::sources::rejected(
        source,
        ctx.config.route(source, None),
        rejected.id.as_deref(),
        position,
        index,
        version_width,
        kendo_bridge_core::decision::rejected_detail(
            &InputProblem::from(&rejected.error),
            &rejected.at,
        ),
    )
}

/// Turns a plugin decision about one record into a ledger intake: a send
/// gets its Kendo payload built (by the plugin) and its team routed; a skip
/// or wait keeps its reason; an unreadable record or a trap becomes a
/// failure kept against that one record.
pub async fn decide(
    ctx: &Context,
    source: &str,
    source_id: &str,
    version: &str,
    via: SyncMethod,
    decision: Result<Result<Decision, InputError>, PluginError>,
) -> Intake {
    let sync_method = sync_method_name(via).to_string();
    let (rep_email, decided) = match decision {
        Err(trap) => (None, Decided::Trapped(trap.to_string())),
        Ok(Err(input)) => (None, Decided::Unreadable(InputProblem::from(&input))),
        Ok(Ok(Decision::Skip(reason))) => (
            None,
            Decided::Skip {
                code: reason.code.to_string(),
                detail: reason.detail,
            },
        ),
        Ok(Ok(Decision::Wait(reason))) => (
            None,
            Decided::Wait {
                code: reason.code.to_string(),
                detail: reason.detail,
            },
        ),
        Ok(Ok(Decision::Send(call))) => {
            let rep_email = call.rep_email.clone();
            (rep_email, build(ctx, source, source_id, call).await)
        }
    };
    let team = ctx.config.route(source, rep_email.as_deref()).to_string();
    Intake {
        key: CallKey {
            source: source.to_string(),
            source_id: source_id.to_string(),
            team,
        },
        version: version.to_string(),
        sync_method,
        outcome: decided.outcome(),
    }
}

/// A call the plugin would send, with its Kendo payload built by the
/// plugin.
async fn build(
    ctx: &Context,
    source: &str,
    source_id: &str,
    call: crate::plugin::types::Call,
) -> Decided {
    let warnings: Vec<(String, String)> = call
        .warnings
        .iter()
        .map(|w| (w.field.clone(), w.detail.clone()))
        .collect();
    if !warnings.is_empty() {
        tracing::info!(
            source, source_id, warnings = ?warnings,
            "sending without optional fields that could not be read"
        );
    }
    let title = call.title.clone();
    let rep_email = call.rep_email.clone();
    let options = PayloadOptions {
        max_body_bytes: ctx.config.kendo.max_body_bytes,
    };
    let built = ctx
        .plugin
        .call(move |bridge, store| {
            bridge
                .kendo_bridge_kendo()
                .call_build_ingest(store, &call, options)
        })
        .await;
    match built {
        Ok(Ok(request)) => {
            if let Some(cut) = &request.truncated {
                tracing::info!(
                    source,
                    source_id,
                    kept = cut.kept_chars,
                    of = cut.original_chars,
                    "transcript cut to fit Kendo's body limit"
                );
            }
            Decided::Send(Built {
                payload: request.body,
                title,
                rep_email,
                warnings,
            })
        }
        Ok(Err(build)) => Decided::Unbuildable(BuildProblem::from(&build)),
        Err(trap) => Decided::Trapped(format!("building the payload: {trap}")),
    }
}

/// The name stored in the ledger for a sync method.
pub fn sync_method_name(via: SyncMethod) -> &'static str {
    use kendo_bridge_core::sources::via;
    match via {
        SyncMethod::Polling => via::POLLING,
        SyncMethod::Webhook => via::WEBHOOK,
        SyncMethod::Workflow => via::WORKFLOW,
    }
}

/// What one polling cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub pages: u32,
    pub records: u32,
    pub report: crate::store::IntakeReport,
}

impl CycleReport {
    pub fn add(&mut self, r: crate::store::IntakeReport) {
        self.report.enqueued += r.enqueued;
        self.report.updated += r.updated;
        self.report.duplicates += r.duplicates;
        self.report.skipped += r.skipped;
        self.report.waiting += r.waiting;
        self.report.failed += r.failed;
    }
}

/// One page of a cursor-paged listing (Salesloft's calls list, HubSpot's
/// calls search), read and mapped.
pub struct Page<C> {
    pub items: Vec<Intake>,
    /// How many records the page held.
    pub records: u32,
    /// Where the next page starts; stored with this page's intake.
    pub next: C,
    /// Whether the source has more after this page.
    pub more: bool,
}

/// Reads page after page from `cursor` until the source has nothing newer.
/// Each page's records go into the ledger in the same transaction that
/// moves `checkpoint` to the page's `next` cursor (persisted as `S`), so a
/// crash between pages re-reads at most one page and loses none.
pub async fn read_pages<C, S, Fut>(
    ctx: &Context,
    checkpoint: &str,
    mut cursor: C,
    mut read_page: impl FnMut(C) -> Fut,
    mut on_page: impl FnMut(&CycleReport),
) -> Result<CycleReport, SourceError>
where
    S: serde::Serialize + for<'a> From<&'a C>,
    Fut: std::future::Future<Output = Result<Page<C>, SourceError>>,
{
    let mut cycle = CycleReport::default();
    // The core's cycle: each page's decisions and the checkpoint moved past
    // it in one transaction, moved on only from where this cycle found it.
    let mut pages = {
        let name = checkpoint.to_string();
        ctx.store
            .run(move |s| Ok(poll::Cycle::start(s.database(), &name, u32::MAX)?.0))
            .await?
    };
    loop {
        let page = read_page(cursor).await?;
        cycle.pages += 1;
        cycle.records += page.records;
        let next = serde_json::to_string(&S::from(&page.next))
            .map_err(|e| SourceError::Checkpoint(e.to_string()))?;
        let (moved_on, report, after) = ctx.poll_page(pages, page.items, next, page.more).await?;
        pages = moved_on;
        cycle.add(report);
        on_page(&cycle);
        match after {
            poll::After::Next => cursor = page.next,
            poll::After::Done => return Ok(cycle),
            poll::After::Moved => {
                tracing::info!(
                    checkpoint,
                    "another instance moved this checkpoint meanwhile; it goes on from there, this cycle ends"
                );
                return Ok(cycle);
            }
        }
    }
}

impl Context {
    /// The lower bound of the first look-back for `checkpoint`, fixed the
    /// first time it is asked: if the first polls fail for hours, calls made
    /// since the first start still fall inside the window.
    pub async fn first_look_back(
        &self,
        checkpoint: &'static str,
        lookback_ms: Millis,
    ) -> Result<Millis, StoreError> {
        let candidate = self.clock.now_ms() - lookback_ms;
        self.store
            .run(move |s| s.first_look_back(checkpoint, candidate))
            .await
    }

    /// The cursor stored under `checkpoint`. `None` when there is none yet,
    /// or when the stored one cannot be read (written by another version):
    /// the poller then starts from its initial look-back, and the ledger
    /// absorbs whatever it reads again.
    pub async fn stored_cursor<S: serde::de::DeserializeOwned>(
        &self,
        checkpoint: &'static str,
    ) -> Result<Option<S>, StoreError> {
        let stored = self.store.run(move |s| s.checkpoint(checkpoint)).await?;
        let (cursor, unreadable) = kendo_bridge_core::sources::poll::read_cursor(stored.as_deref());
        if let Some(why) = unreadable {
            tracing::warn!(checkpoint, "{why}");
        }
        Ok(cursor)
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
}

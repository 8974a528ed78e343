//! Delivery to Kendo: one paced worker per Kendo key.
//!
//! A worker takes the oldest due send of its team from the outbox, waits for
//! the pacer's slot, commits "in flight" to the store, posts, and asks the
//! plugin what Kendo's answer means:
//!
//! - created: the `callId` is recorded and the call is never sent again;
//! - 429: the send and the whole key wait for `Retry-After`;
//! - 5xx, 408, a refused connection: exponential back-off with full jitter,
//!   then a dead letter;
//! - a lost answer (timeout, connection dropped after the request left):
//!   Kendo documents no idempotency key, so the call may exist now. It is
//!   sent again at most `ambiguous_resends` times, each later and with a
//!   doubled timeout, then parked as `outcome-unknown` for the operator
//!   (`kendo-bridge settle`);
//! - 400/413: failed for good, with Kendo's reason kept;
//! - 401/403: the key is paused (and `status` says so) until it changes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::pacing::Backoff;
use crate::plugin::api::kendo::{IngestOutcome, RejectionKind};
use crate::plugin::api::types::Header;
use crate::pool::PluginPool;
use crate::store::{Millis, OutboxItem, Recovered, SendPacing, SharedStore, StoreError};
use kendo_bridge_core::answer::{Action, Answer, AnswerPolicy, RejectionKind as Rejection};
use kendo_bridge_core::ledger::{Database, LedgerError};
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::ports::Trap;
use kendo_bridge_core::send::{self, NoReply, Reply};

/// A Kendo team and the key that sends its calls.
#[derive(Clone)]
pub struct TeamKey {
    pub team: String,
    pub api_key: String,
}

impl TeamKey {
    /// A short, non-reversible fingerprint of the key, safe to store and
    /// print: a pause is lifted when the configured key's fingerprint changes.
    pub fn fingerprint(&self) -> String {
        kendo_bridge_core::key_fingerprint(&self.api_key)
    }
}

impl std::fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        f.debug_struct("TeamKey")
            .field("team", &self.team)
            .field("api_key", &format_args!("<{}>", self.fingerprint()))
            .finish()
    }
}

/// How a worker paces and retries.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Requests allowed per window per key (Kendo: 30).
    pub limit: u32,
    /// The window (Kendo: one minute).
    pub window_ms: Millis,
    /// Extra spacing, as a fraction, so arrival jitter never crosses the limit.
    pub margin: f64,
    pub backoff: Backoff,
    /// How long a worker sleeps while its key is paused or nothing is due
    /// before looking at the store again (`resume` and `replay` change it
    /// from another process).
    pub paused_poll_ms: Millis,
    /// How long the first request of a send waits for Kendo's answer; each
    /// re-send after a lost answer waits twice as long as the one before.
    pub timeout: Duration,
    /// Re-sends allowed after lost answers before the call is parked.
    pub ambiguous_resends: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy::from(&Policy::DEFAULT)
    }
}

impl From<&Policy> for DeliveryPolicy {
    fn from(policy: &Policy) -> Self {
        let kendo = &policy.kendo;
        DeliveryPolicy {
            limit: kendo.requests_per_window,
            window_ms: kendo.window_ms,
            margin: kendo.pacing_margin,
            backoff: policy.retry.kendo_send,
            // Half a window: 30 s at Kendo's real minute, and as much
            // shorter as a time-scaled window (demo, tests) is.
            paused_poll_ms: (kendo.window_ms / 2).clamp(100, kendo.paused_poll_ms),
            timeout: Duration::from_millis(kendo.timeout_ms.max(0) as u64),
            ambiguous_resends: kendo.ambiguous_resends,
        }
    }
}

impl DeliveryPolicy {
    /// The core's view of how answers are handled.
    pub fn answers(&self) -> AnswerPolicy {
        AnswerPolicy {
            backoff: self.backoff,
            timeout_ms: self.timeout.as_millis().min(i64::MAX as u128) as Millis,
            ambiguous_resends: self.ambiguous_resends,
        }
    }

    /// The answer timeout of a request after `lost` lost answers.
    pub fn timeout_after(&self, lost: u32) -> Duration {
        Duration::from_millis(self.answers().timeout_after(lost).max(0) as u64)
    }
}

/// Kendo's answer as received.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The request may have reached Kendo: the call may exist now.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request may have reached Kendo (a connection dropped before the
    /// answer, say): the call may exist now.
    #[error("{0}")]
    Failed(String),
    /// No connection could be made: Kendo never saw the request.
    #[error("{0}")]
    Unsent(String),
}

/// What posts an ingest body. The real one is [`HttpTransport`]; tests use
/// fakes driven in virtual time.
pub trait Transport: Send + Sync + 'static {
    /// `timeout` bounds the wait for the answer.
    fn post(
        &self,
        api_key: &str,
        body: String,
        timeout: Duration,
    ) -> impl Future<Output = Result<RawResponse, TransportError>> + Send;
}

/// Posts to Kendo's Push API with `X-API-Key` (never a key in a URL).
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    ingest_url: String,
}

impl HttpTransport {
    /// `ingest_url` is the full ingest endpoint.
    pub fn new(client: reqwest::Client, ingest_url: String) -> HttpTransport {
        HttpTransport { client, ingest_url }
    }
}

impl Transport for HttpTransport {
    async fn post(
        &self,
        api_key: &str,
        body: String,
        timeout: Duration,
    ) -> Result<RawResponse, TransportError> {
        let request = self
            .client
            .post(&self.ingest_url)
            .header("Content-Type", "application/json")
            .header("X-API-Key", api_key)
            .timeout(timeout)
            .body(body);
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                TransportError::Unsent(describe_reqwest(&e))
            } else if e.is_timeout() {
                TransportError::Timeout(timeout)
            } else {
                TransportError::Failed(describe_reqwest(&e))
            }
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.text().await.map_err(|e| {
            if e.is_timeout() {
                TransportError::Timeout(timeout)
            } else {
                TransportError::Failed(describe_reqwest(&e))
            }
        })?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What one step of a worker did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A request went out; the result is recorded.
    Sent(Delivered),
    /// The next send must wait for the pacer until this time.
    Pace(Millis),
    /// Nothing due; the next send falls due then (None: the queue is empty).
    Idle(Option<Millis>),
    /// The key is paused; the reason.
    Paused(String),
}

/// The recorded result of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    Created(Option<String>),
    RateLimited {
        retry_at: Millis,
    },
    WillRetry {
        retry_at: Millis,
        reason: String,
    },
    Dead(String),
    /// Answers lost too often: parked as `outcome-unknown`.
    Parked(String),
    Rejected(String),
    KeyRefused(String),
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LedgerError> for DeliveryError {
    fn from(e: LedgerError) -> DeliveryError {
        DeliveryError::Store(StoreError::Ledger(e))
    }
}

/// The worker of one Kendo key.
pub struct Worker<T: Transport> {
    /// The sources with write-back on (set when the engine opened).
    write_backs: Vec<String>,
    key: TeamKey,
    policy: DeliveryPolicy,
    store: SharedStore,
    plugin: PluginPool,
    transport: Arc<T>,
    clock: Clock,
    wake: Arc<Notify>,
}

impl<T: Transport> Worker<T> {
    /// A worker for one key. Pacing and claims live in the store, so any
    /// number of workers for the same key, in any number of processes
    /// sharing the database, keep the key's limit together.
    pub async fn new(
        key: TeamKey,
        policy: DeliveryPolicy,
        store: SharedStore,
        plugin: PluginPool,
        transport: Arc<T>,
        clock: Clock,
        wake: Arc<Notify>,
    ) -> Result<Worker<T>, DeliveryError> {
        let write_backs = store.run(|s| Ok(s.write_back_sources())).await?;
        Ok(Worker {
            write_backs,
            key,
            policy,
            store,
            plugin,
            transport,
            clock,
            wake,
        })
    }

    /// The team this worker sends for.
    pub fn team(&self) -> &str {
        &self.key.team
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), DeliveryError> {
        let wake = self.wake.clone();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            // Listening before the step: a send queued while the step looks
            // at the outbox must still wake the sleep that follows it.
            let woken = wake.notified();
            let step = self.step().await?;
            let recheck = self.clock.now_ms() + self.policy.paused_poll_ms;
            let wait_until = match step {
                Step::Sent(_) => continue,
                Step::Pace(at) => at,
                Step::Idle(Some(at)) => at.min(recheck),
                // `resume` and `replay` change the outbox from another
                // process, which cannot wake this one: look again later.
                Step::Idle(None) | Step::Paused(_) => recheck,
            };
            tokio::select! {
                _ = self.clock.sleep_until(wait_until) => {}
                _ = woken => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Sends everything due, waiting for the pacer in between, and for
    /// retries that fall due before `horizon`; returns when nothing else is
    /// due by then (or the key is paused). For `sync --once` and `backfill`.
    /// `on_sent` is told after each request.
    pub async fn drain(
        &mut self,
        horizon: Millis,
        mut on_sent: impl FnMut(&Delivered),
    ) -> Result<Step, DeliveryError> {
        loop {
            match self.step().await? {
                Step::Sent(d) => on_sent(&d),
                Step::Pace(at) => self.clock.sleep_until(at).await,
                Step::Idle(Some(at)) if at <= horizon => self.clock.sleep_until(at).await,
                other => return Ok(other),
            }
        }
    }

    /// One step: the core's send ([`kendo_bridge_core::send::step`]) on
    /// this worker's ports: the oldest due call, if the key's pacing allows.
    pub async fn step(&mut self) -> Result<Step, DeliveryError> {
        let (team, fingerprint) = (self.key.team.clone(), self.key.fingerprint());
        let pacing = SendPacing {
            limit: self.policy.limit,
            window_ms: self.policy.window_ms,
            margin: self.policy.margin,
        };
        let key = send::Key {
            team: &team,
            fingerprint: &fingerprint,
        };
        let (recovered, step) = send::step(&*self, key, pacing, self.policy.answers()).await?;
        log_recovered(&recovered);
        Ok(match step {
            send::Step::Sent { item, action, held } => Step::Sent(self.report(&item, action, held)),
            send::Step::Pace(at) => Step::Pace(at),
            send::Step::Idle(at) => Step::Idle(at),
            send::Step::Paused(reason) => Step::Paused(reason),
        })
    }

    /// What the core's step did, logged and reported.
    fn report(&self, item: &OutboxItem, action: Action, held: bool) -> Delivered {
        let now = self.clock.now_ms();
        let team = self.key.team.clone();
        let (source, source_id) = (item.key.source.as_str(), item.key.source_id.as_str());
        if !held {
            tracing::warn!(
                source, source_id, team = %team,
                "Kendo's answer came after this send's claim expired; another instance recovered the send and decides what becomes of it"
            );
        }
        match action {
            Action::Created {
                call_id,
                after_lost_answers,
            } => {
                tracing::debug!(source, source_id, team = %team, kendo_call_id = ?call_id, "created in Kendo");
                if after_lost_answers > 0 {
                    tracing::warn!(
                        source, source_id, team = %team, kendo_call_id = ?call_id,
                        "created in Kendo after {after_lost_answers} lost answer(s): Kendo may hold it more than once (see `kendo-bridge deliveries --maybe-duplicated`)"
                    );
                }
                Delivered::Created(call_id)
            }
            Action::RateLimited { retry_at, .. } => {
                tracing::info!(
                    source, source_id, team = %team,
                    "Kendo answered 429: the key pauses for {} s; retrying at {}",
                    (retry_at - now) / 1000,
                    crate::timefmt::iso(retry_at)
                );
                Delivered::RateLimited { retry_at }
            }
            Action::ResendAfterLostAnswer {
                retry_at,
                timeout_ms,
                reason,
            } => {
                tracing::warn!(
                    source, source_id, team = %team,
                    "{reason}: re-sending at {} with a {} s timeout",
                    crate::timefmt::iso(retry_at),
                    timeout_ms as f64 / 1000.0
                );
                Delivered::WillRetry { retry_at, reason }
            }
            Action::Park { reason } => {
                tracing::warn!(source, source_id, team = %team, "parked as outcome-unknown: {reason}");
                Delivered::Parked(reason)
            }
            Action::Retry { retry_at, reason } => {
                tracing::info!(
                    source, source_id, team = %team,
                    "{reason}; retrying at {}",
                    crate::timefmt::iso(retry_at)
                );
                Delivered::WillRetry { retry_at, reason }
            }
            Action::Dead { reason } => {
                tracing::warn!(
                    source, source_id, team = %team,
                    "dead-lettered: {reason} (kendo-bridge replay puts it back)"
                );
                Delivered::Dead(reason)
            }
            Action::PauseKey { reason } => {
                tracing::warn!(source, source_id, team = %team, "the key is paused: {reason}");
                Delivered::KeyRefused(reason)
            }
            Action::Fail { reason, .. } => {
                tracing::warn!(
                    source, source_id, team = %team,
                    "failed for good: {reason} (`kendo-bridge replay --include-failed` after fixing the cause)"
                );
                Delivered::Rejected(reason)
            }
            Action::NotSent {
                retry_at, reason, ..
            } => {
                tracing::warn!(source, source_id, team = %team, "{reason}");
                Delivered::WillRetry { retry_at, reason }
            }
        }
    }
}

impl<T: Transport> send::KendoApi for Worker<T> {
    type Error = DeliveryError;

    async fn db<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Database) -> Result<R, LedgerError> + Send + 'static,
    ) -> Result<R, DeliveryError> {
        Ok(self.store.run(move |s| Ok(f(s.database())?)).await?)
    }

    async fn post(&self, payload: &str, timeout_ms: Millis) -> Result<Reply, NoReply> {
        let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
        match self
            .transport
            .post(&self.key.api_key, payload.to_string(), timeout)
            .await
        {
            Ok(response) => Ok(Reply {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(e @ TransportError::Unsent(_)) => Err(NoReply::Unsent(e.to_string())),
            Err(e) => Err(NoReply::Lost(e.to_string())),
        }
    }

    async fn read_answer(&self, reply: Reply, now_s: u64) -> Result<Answer, Trap> {
        let Reply {
            status,
            headers,
            body,
        } = reply;
        let headers: Vec<Header> = headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect();
        let read = self
            .plugin
            .call(move |bridge, store| {
                bridge
                    .kendo_bridge_kendo()
                    .call_read_ingest_response(store, status, &headers, &body, now_s)
            })
            .await
            .map_err(|e| Trap(e.to_string()))?;
        Ok(match read {
            IngestOutcome::Created(call_id) => Answer::Created(call_id),
            IngestOutcome::RetryAfter(seconds) => Answer::RetryAfter(seconds),
            IngestOutcome::Retry(reason) => Answer::Retry(reason),
            IngestOutcome::Rejected(rejection) => Answer::Rejected {
                kind: match rejection.kind {
                    RejectionKind::Unauthorized => Rejection::Unauthorized,
                    RejectionKind::BadRequest => Rejection::BadRequest,
                    RejectionKind::TooLarge => Rejection::TooLarge,
                    RejectionKind::Other => Rejection::Other,
                },
                status: rejection.status,
                reason: rejection.reason,
            },
        })
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    fn jitter(&self) -> f64 {
        rand::random()
    }

    fn claim_token(&self) -> String {
        format!("{:016x}", rand::random::<u64>())
    }

    fn write_backs(&self) -> Vec<String> {
        self.write_backs.clone()
    }
}

/// Says which sends a crashed (or stalled) instance left in flight and what
/// became of them: each may now be in Kendo twice.
pub fn log_recovered(recovered: &Recovered) {
    for key in &recovered.sent {
        tracing::warn!(
            source = %key.source, source_id = %key.source_id, team = %key.team,
            "the last run stopped reading Kendo's 2xx for this call: recorded as sent, without Kendo's callId"
        );
    }
    for key in &recovered.resent {
        tracing::warn!(
            source = %key.source, source_id = %key.source_id, team = %key.team,
            "the last run stopped while sending this call; it will be sent again and may be duplicated in Kendo"
        );
    }
    for key in &recovered.parked {
        tracing::warn!(
            source = %key.source, source_id = %key.source_id, team = %key.team,
            "the last run stopped while sending this call and its lost answers allow no re-send: parked as outcome-unknown; check Kendo, then `kendo-bridge settle`"
        );
    }
}

#[cfg(test)]
mod tests {
    //! The worker against a scripted Kendo, in virtual time: every sleep is
    //! tokio's paused clock jumping ahead, so the times a fake request
    //! carries are exactly the times the worker chose.
    use kendo_bridge_core::ledger as core_ledger;

    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::plugin::Plugin;
    use crate::store::{CallKey, Intake, Outcome as Decided, State, Store};
    use core_ledger::{operator, report};

    const T0: Millis = 1_776_000_000_000;
    const TEAM: &str = "main";
    const KEY: &str = "pk_test_key";

    /// A Kendo that answers from a script (201 once it runs out) and
    /// records when each request arrived.
    struct Scripted {
        clock: Clock,
        answers: Mutex<VecDeque<Result<RawResponse, TransportError>>>,
        sent: Mutex<Vec<(Millis, String)>>,
        timeouts: Mutex<Vec<Duration>>,
    }

    impl Scripted {
        fn new(clock: Clock, answers: Vec<Result<RawResponse, TransportError>>) -> Arc<Scripted> {
            Arc::new(Scripted {
                clock,
                answers: Mutex::new(answers.into()),
                sent: Mutex::new(Vec::new()),
                timeouts: Mutex::new(Vec::new()),
            })
        }

        fn times(&self) -> Vec<Millis> {
            self.sent.lock().unwrap().iter().map(|(t, _)| *t).collect()
        }

        fn timeouts(&self) -> Vec<Duration> {
            self.timeouts.lock().unwrap().clone()
        }

        /// The bodies sent, in order.
        fn bodies(&self) -> Vec<String> {
            self.sent
                .lock()
                .unwrap()
                .iter()
                .map(|(_, b)| b.clone())
                .collect()
        }
    }

    impl Transport for Scripted {
        async fn post(
            &self,
            _api_key: &str,
            body: String,
            timeout: Duration,
        ) -> Result<RawResponse, TransportError> {
            self.sent.lock().unwrap().push((self.clock.now_ms(), body));
            self.timeouts.lock().unwrap().push(timeout);
            let next = self.answers.lock().unwrap().pop_front();
            next.unwrap_or_else(|| Ok(answer(201, &[], r#"{"success":true,"callId":"call_auto"}"#)))
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> RawResponse {
        RawResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        }
    }

    fn policy(limit: u32, window_ms: Millis, backoff: Backoff) -> DeliveryPolicy {
        DeliveryPolicy {
            limit,
            window_ms,
            margin: 0.01,
            backoff,
            paused_poll_ms: 30_000,
            timeout: Duration::from_secs(30),
            ambiguous_resends: 1,
        }
    }

    /// A pacer that never holds a request back, so only back-off shows.
    fn unpaced(backoff: Backoff) -> DeliveryPolicy {
        DeliveryPolicy {
            margin: 0.0,
            ..policy(1_000_000, 1_000, backoff)
        }
    }

    /// A store with `n` calls queued for [`TEAM`], ids `1..=n`.
    fn queued(n: u32) -> SharedStore {
        let store = Store::open_in_memory().unwrap();
        let items: Vec<Intake> = (1..=n)
            .map(|i| Intake {
                key: CallKey {
                    source: "salesloft".into(),
                    source_id: i.to_string(),
                    team: TEAM.into(),
                },
                version: "v1".into(),
                sync_method: "polling".into(),
                outcome: Decided::Send {
                    payload: format!(r#"{{"callTitle":"call {i}"}}"#),
                    title: format!("call {i}"),
                    rep_email: Some("jamie@yourco.com".into()),
                    warnings: None,
                },
            })
            .collect();
        core_ledger::intake::intake(store.database(), &items, None, T0).unwrap();
        SharedStore::new(store)
    }

    async fn worker(
        store: &SharedStore,
        policy: DeliveryPolicy,
        kendo: &Arc<Scripted>,
        clock: Clock,
        api_key: &str,
    ) -> Worker<Scripted> {
        let key = TeamKey {
            team: TEAM.into(),
            api_key: api_key.into(),
        };
        let plugin = PluginPool::new(Plugin::embedded().unwrap());
        Worker::new(
            key,
            policy,
            store.clone(),
            plugin,
            kendo.clone(),
            clock,
            Arc::new(Notify::new()),
        )
        .await
        .unwrap()
    }

    async fn row(store: &SharedStore, id: &str) -> crate::store::LedgerRow {
        let id = id.to_string();
        store
            .run(move |s| Ok(report::call(s.database(), "salesloft", &id)?))
            .await
            .unwrap()
            .remove(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_leaves_one_request_per_pacer_spacing() {
        let clock = Clock::starting_at(T0);
        let store = queued(6);
        let kendo = Scripted::new(clock, vec![]);
        let mut worker = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;

        let end = worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(end, Step::Idle(None));
        let times = kendo.times();
        assert_eq!(times.len(), 6);
        assert_eq!(times[0], T0, "an idle key sends at once");
        // 60 s / 30 with the 1% margin, rounded up: 2,020 ms.
        let gaps: Vec<Millis> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, vec![2_020; 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_every_send_of_the_key_until_retry_after() {
        let clock = Clock::starting_at(T0);
        let store = queued(2);
        let limited = answer(
            429,
            &[("Retry-After", "7")],
            r#"{"error":"Rate limit exceeded. Try again later."}"#,
        );
        let kendo = Scripted::new(clock, vec![Ok(limited)]);
        let mut worker = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        let times = kendo.times();
        assert_eq!(times.len(), 3, "one 429, then both calls");
        // The second call was due at once, but the key waits out the 429.
        assert_eq!(times[1] - times[0], 7_000);
        assert_eq!(row(&store, "1").await.state, State::Sent);
        assert_eq!(row(&store, "2").await.state, State::Sent);
        let refused = store
            .run(|s| {
                Ok(report::counter(
                    s.database(),
                    TEAM,
                    crate::store::counter::KENDO_429,
                )?)
            })
            .await
            .unwrap();
        assert_eq!(refused, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn kendo_5xx_answers_back_off_exponentially_then_dead_letter_the_call() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let failing = (0..3)
            .map(|_| Ok(answer(500, &[], r#"{"error":"Internal server error"}"#)))
            .collect();
        let kendo = Scripted::new(clock, failing);
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
            max_attempts: 3,
        };
        let mut worker = worker(&store, unpaced(backoff), &kendo, clock, KEY).await;

        let end = worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(end, Step::Idle(None), "a dead letter is not due again");
        let times = kendo.times();
        assert_eq!(times.len(), 3);
        // Full jitter: anywhere up to the doubling ceiling, never zero.
        let (first, second) = (times[1] - times[0], times[2] - times[1]);
        assert!((1..=1_000).contains(&first), "first back-off {first} ms");
        assert!((1..=2_000).contains(&second), "second back-off {second} ms");
        let dead = row(&store, "1").await;
        assert_eq!(dead.state, State::Dead);
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.reason_code.as_deref(), Some("retries-exhausted"));
        let retries = store
            .run(|s| {
                Ok(report::counter(
                    s.database(),
                    TEAM,
                    crate::store::counter::RETRIES,
                )?)
            })
            .await
            .unwrap();
        assert_eq!(retries, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_is_retried_and_counted_as_a_possible_duplicate() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let kendo = Scripted::new(
            clock,
            vec![Err(TransportError::Timeout(Duration::from_secs(30)))],
        );
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
            max_attempts: 3,
        };
        let mut worker = worker(&store, unpaced(backoff), &kendo, clock, KEY).await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(kendo.times().len(), 2);
        assert_eq!(row(&store, "1").await.state, State::Sent);
        let counted = store
            .run(|s| {
                Ok(report::counter(
                    s.database(),
                    TEAM,
                    crate::store::counter::RESENT_AFTER_LOST_ANSWER,
                )?)
            })
            .await
            .unwrap();
        assert_eq!(
            counted, 1,
            "Kendo may have created the call before the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_is_retried_and_not_counted_as_a_possible_duplicate() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let refused = Err(TransportError::Unsent("connection refused".into()));
        let kendo = Scripted::new(clock, vec![refused]);
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
            max_attempts: 3,
        };
        let mut worker = worker(&store, unpaced(backoff), &kendo, clock, KEY).await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(kendo.times().len(), 2);
        assert_eq!(row(&store, "1").await.state, State::Sent);
        let counted = store
            .run(|s| {
                Ok(report::counter(
                    s.database(),
                    TEAM,
                    crate::store::counter::RESENT_AFTER_LOST_ANSWER,
                )?)
            })
            .await
            .unwrap();
        assert_eq!(counted, 0, "Kendo never saw the first request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_pauses_the_team_and_keeps_its_calls_queued() {
        let clock = Clock::starting_at(T0);
        let store = queued(2);
        let refused = answer(401, &[], r#"{"error":"Invalid API key"}"#);
        let kendo = Scripted::new(clock, vec![Ok(refused)]);
        let mut worker = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;

        let end = worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert!(
            matches!(end, Step::Paused(ref why) if why.contains("401")),
            "{end:?}"
        );
        assert_eq!(
            worker.step().await.unwrap(),
            end,
            "still paused: nothing is sent"
        );
        assert_eq!(kendo.times().len(), 1, "the second call was never tried");
        let paused = store
            .ledger(|db| core_ledger::send::paused(db, TEAM))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(paused.key_fingerprint, worker.key.fingerprint());
        let first = row(&store, "1").await;
        assert_eq!(first.state, State::Queued, "the call keeps its place");
        assert_eq!(first.reason_code.as_deref(), Some("key-refused"));
        assert_eq!(row(&store, "2").await.state, State::Queued);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_team_sends_again_once_its_key_is_replaced() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let refused = answer(401, &[], r#"{"error":"Invalid API key"}"#);
        let kendo = Scripted::new(clock, vec![Ok(refused)]);
        let mut old = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;
        assert!(matches!(
            old.drain(T0 + 60_000, |_| {}).await.unwrap(),
            Step::Paused(_)
        ));

        let mut new = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            "pk_new_key",
        )
        .await;
        new.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(row(&store, "1").await.state, State::Sent);
        assert!(
            store
                .ledger(|db| core_ledger::send::paused(db, TEAM))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_worker_finds_a_call_replayed_by_another_process() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let item = store
            .ledger(|db| core_ledger::send::due(db, TEAM, T0, 1))
            .await
            .unwrap()
            .remove(0);
        store
            .run(move |s| {
                core_ledger::send::begin_send(s.database(), &item, T0)?;
                s.record(
                    &item,
                    &Action::Dead {
                        reason: "503 x8".into(),
                    },
                    "",
                    T0,
                )
            })
            .await
            .unwrap();
        let kendo = Scripted::new(clock, vec![]);
        let worker = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(worker.run(stopped));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(
            kendo.times().is_empty(),
            "a dead letter is not sent by itself"
        );

        // `kendo-bridge replay` writes the store; nothing wakes the worker.
        let replayed_at = clock.now_ms();
        store
            .run(move |s| {
                Ok(operator::replay(
                    s.database(),
                    &crate::store::ReplayFilter::default(),
                    replayed_at,
                )?)
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(31)).await;

        assert_eq!(
            kendo.times().len(),
            1,
            "sent within one re-check of the replay"
        );
        assert_eq!(row(&store, "1").await.state, State::Sent);
        stop.send(true).unwrap();
        running.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_201_records_kendos_call_id_and_the_call_is_never_sent_again() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let created = answer(201, &[], r#"{"success":true,"callId":"call_42"}"#);
        let kendo = Scripted::new(clock, vec![Ok(created)]);
        let mut worker = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();
        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(kendo.times().len(), 1);
        let sent = row(&store, "1").await;
        assert_eq!(sent.state, State::Sent);
        assert_eq!(sent.kendo_call_id.as_deref(), Some("call_42"));
    }

    #[tokio::test(start_paused = true)]
    async fn any_2xx_is_recorded_as_created_even_with_an_unreadable_body() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let odd = answer(
            202,
            &[("Content-Type", "text/html")],
            "<html>Accepted</html>",
        );
        let kendo = Scripted::new(clock, vec![Ok(odd)]);
        let mut worker = worker(
            &store,
            policy(30, 60_000, Backoff::default()),
            &kendo,
            clock,
            KEY,
        )
        .await;

        let mut delivered = Vec::new();
        worker
            .drain(T0 + 3_600_000, |d| delivered.push(d.clone()))
            .await
            .unwrap();

        assert_eq!(delivered, vec![Delivered::Created(None)]);
        assert_eq!(kendo.times().len(), 1, "a 2xx is never retried");
        let sent = row(&store, "1").await;
        assert_eq!(sent.state, State::Sent);
        assert_eq!(sent.kendo_call_id, None);
    }

    fn lost() -> Result<RawResponse, TransportError> {
        Err(TransportError::Timeout(Duration::from_secs(30)))
    }

    fn flagged(store: &SharedStore) -> Vec<crate::store::PossibleDuplicate> {
        store
            .run_here(|s| Ok(report::possible_duplicates(s.database(), 100)?))
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_sent_again_later_with_a_doubled_timeout() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let created = answer(201, &[], r#"{"success":true,"callId":"call_7"}"#);
        let kendo = Scripted::new(clock, vec![lost(), Ok(created)]);
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 10_000,
            max_attempts: 8,
        };
        let mut worker = worker(&store, unpaced(backoff), &kendo, clock, KEY).await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(
            kendo.timeouts(),
            vec![Duration::from_secs(30), Duration::from_secs(60)]
        );
        let times = kendo.times();
        assert!(
            times[1] - times[0] >= 60_000,
            "the re-send waits at least as long as it will wait for the answer: {} ms",
            times[1] - times[0]
        );
        let sent = row(&store, "1").await;
        assert_eq!(sent.state, State::Sent);
        let duplicates = flagged(&store);
        assert_eq!(duplicates.len(), 1, "Kendo may hold the call twice");
        assert_eq!(
            duplicates[0].call_ids,
            vec![("call_7".to_string(), times[1])]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_whose_answers_keep_getting_lost_is_parked_as_outcome_unknown() {
        let clock = Clock::starting_at(T0);
        let store = queued(2);
        let kendo = Scripted::new(clock, vec![lost(), lost(), lost(), lost()]);
        let mut worker = worker(&store, unpaced(Backoff::default()), &kendo, clock, KEY).await;

        let mut delivered = Vec::new();
        let end = worker
            .drain(T0 + 3_600_000, |d| delivered.push(d.clone()))
            .await
            .unwrap();

        assert_eq!(end, Step::Idle(None), "a parked call is not due again");
        assert_eq!(kendo.times().len(), 4, "one re-send per call, no more");
        for id in ["1", "2"] {
            let parked = row(&store, id).await;
            assert_eq!(parked.state, State::OutcomeUnknown, "call {id}");
            assert_eq!(parked.reason_code.as_deref(), Some("outcome-unknown"));
            assert!(
                parked.reason.as_deref().unwrap_or("").contains("settle"),
                "the reason tells the operator what to do: {:?}",
                parked.reason
            );
        }
        assert_eq!(
            delivered
                .iter()
                .filter(|d| matches!(d, Delivered::Parked(_)))
                .count(),
            2
        );
        assert_eq!(
            store
                .run_here(|s| Ok(core_ledger::send::queue_depth(s.database(), TEAM)?))
                .unwrap(),
            0
        );
        assert_eq!(flagged(&store).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_ambiguous_resends_the_first_lost_answer_parks_the_call() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let kendo = Scripted::new(clock, vec![lost()]);
        let policy = DeliveryPolicy {
            ambiguous_resends: 0,
            ..unpaced(Backoff::default())
        };
        let mut worker = worker(&store, policy, &kendo, clock, KEY).await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(kendo.times().len(), 1);
        assert_eq!(row(&store, "1").await.state, State::OutcomeUnknown);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_dropped_after_the_request_left_counts_as_a_lost_answer() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let dropped = || Err(TransportError::Failed("connection reset by peer".into()));
        let kendo = Scripted::new(clock, vec![dropped(), dropped()]);
        let mut worker = worker(&store, unpaced(Backoff::default()), &kendo, clock, KEY).await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(kendo.times().len(), 2);
        assert_eq!(row(&store, "1").await.state, State::OutcomeUnknown);
    }

    #[tokio::test(start_paused = true)]
    async fn a_5xx_after_a_lost_answer_keeps_the_5xx_back_off_and_the_possible_duplicate_flag() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let failing = Ok(answer(503, &[], r#"{"error":"Service unavailable"}"#));
        let kendo = Scripted::new(clock, vec![lost(), failing]);
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 10_000,
            max_attempts: 8,
        };
        let mut worker = worker(&store, unpaced(backoff), &kendo, clock, KEY).await;

        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();

        assert_eq!(kendo.times().len(), 3, "lost, 503, created");
        assert_eq!(
            kendo.timeouts()[2],
            Duration::from_secs(60),
            "the 5xx does not reset the patience a lost answer earned"
        );
        assert_eq!(row(&store, "1").await.state, State::Sent);
        assert_eq!(flagged(&store).len(), 1);
        assert_eq!(kendo.bodies()[0], kendo.bodies()[2]);
    }

    std::thread_local! {
        /// What the log subscriber wrote on this thread.
        static CAPTURED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Writes into [`CAPTURED`] of the thread that logs.
    struct ThreadLogs;

    impl std::io::Write for ThreadLogs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            CAPTURED.with(|c| c.borrow_mut().extend_from_slice(buf));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `worker.drain` and returns what it logged at info and above,
    /// one entry per line. One global subscriber writes into per-thread
    /// buffers: a scoped subscriber per test races with the other tests
    /// over tracing's per-callsite interest cache and loses lines. Each
    /// paused-clock test runs on a thread of its own, where the worker logs.
    async fn logged_drain(worker: &mut Worker<Scripted>) -> Vec<String> {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(|| ThreadLogs)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
        });
        CAPTURED.with(|c| c.borrow_mut().clear());
        worker.drain(T0 + 3_600_000, |_| {}).await.unwrap();
        let text = CAPTURED.with(|c| String::from_utf8(c.borrow().clone()).unwrap());
        text.lines().map(str::to_string).collect()
    }

    fn line_with<'a>(lines: &'a [String], what: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line says `{what}`:\n{}", lines.join("\n")))
    }

    fn assert_names_the_call(line: &str, id: &str) {
        assert!(line.contains("source=\"salesloft\""), "{line}");
        assert!(line.contains(&format!("source_id=\"{id}\"")), "{line}");
        assert!(line.contains(&format!("team={TEAM}")), "{line}");
        assert!(!line.contains(KEY), "the key is never logged: {line}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_and_the_parking_that_follows_are_logged_with_the_calls_source_id_and_team()
     {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let kendo = Scripted::new(clock, vec![lost(), lost()]);
        let mut worker = worker(&store, unpaced(Backoff::default()), &kendo, clock, KEY).await;

        let lines = logged_drain(&mut worker).await;

        let resend = line_with(&lines, "re-sending at");
        assert!(resend.contains("WARN"), "{resend}");
        assert!(resend.contains("60 s timeout"), "{resend}");
        assert_names_the_call(resend, "1");
        let parked = line_with(&lines, "parked as outcome-unknown");
        assert!(parked.contains("kendo-bridge settle"), "{parked}");
        assert_names_the_call(parked, "1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pause_and_a_5xx_retry_are_logged_with_when_the_call_goes_next() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let limited = answer(
            429,
            &[("Retry-After", "7")],
            r#"{"error":"Rate limit exceeded."}"#,
        );
        let failing = answer(500, &[], r#"{"error":"Internal server error"}"#);
        let kendo = Scripted::new(clock, vec![Ok(limited), Ok(failing)]);
        let mut worker = worker(&store, unpaced(Backoff::default()), &kendo, clock, KEY).await;

        let lines = logged_drain(&mut worker).await;

        let paused = line_with(&lines, "the key pauses for 7 s");
        assert!(paused.contains("INFO"), "{paused}");
        assert!(
            paused.contains(&crate::timefmt::iso(T0 + 7_000)),
            "{paused}"
        );
        assert_names_the_call(paused, "1");
        let retry = line_with(&lines, "attempt 2 failed: ");
        assert!(retry.contains("Internal server error"), "says why: {retry}");
        assert!(retry.contains("retrying at"), "says when: {retry}");
        assert_names_the_call(retry, "1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_letter_is_logged_with_the_calls_source_id_and_team() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let failing = (0..2)
            .map(|_| Ok(answer(503, &[], r#"{"error":"Service unavailable"}"#)))
            .collect();
        let kendo = Scripted::new(clock, failing);
        let backoff = Backoff {
            base_ms: 1_000,
            cap_ms: 60_000,
            max_attempts: 2,
        };
        let mut worker = worker(&store, unpaced(backoff), &kendo, clock, KEY).await;

        let lines = logged_drain(&mut worker).await;

        let dead = line_with(&lines, "dead-lettered");
        assert!(dead.contains("WARN"), "{dead}");
        assert!(dead.contains("replay"), "{dead}");
        assert_names_the_call(dead, "1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_key_is_logged_as_a_pause_without_the_key() {
        let clock = Clock::starting_at(T0);
        let store = queued(1);
        let refused = answer(401, &[], r#"{"error":"Invalid API key"}"#);
        let kendo = Scripted::new(clock, vec![Ok(refused)]);
        let mut worker = worker(&store, unpaced(Backoff::default()), &kendo, clock, KEY).await;

        let lines = logged_drain(&mut worker).await;

        let paused = line_with(&lines, "the key is paused");
        assert!(paused.contains("401"), "{paused}");
        assert_names_the_call(paused, "1");
        assert!(
            lines.iter().all(|l| !l.contains(KEY)),
            "{}",
            lines.join("\n")
        );
    }
}

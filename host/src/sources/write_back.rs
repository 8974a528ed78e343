//! HubSpot write-back, driven: the workflow (which requests make the
//! properties exist, the write, what each answer means) is the core's
//! ([`kendo_bridge_core::sources::write_back`]), the rows the core ledger's.
//! This writer runs in a task of its own, paced under HubSpot's limits, so
//! a slow or failing HubSpot never holds up a Kendo send.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kendo_bridge_core::sources::write_back::{
    self as workflow, CLAIM_LEASE_MS, CREATE_SCOPE, Ensure, EnsureNeed, Failure, GROUP,
    PATCH_SCOPE, PROPERTIES, READ_SCOPE, Request, SOURCE, WriteAction,
};
use tokio::sync::watch;

pub use kendo_bridge_core::sources::write_back::TOPIC;

use super::{Context, RequestPacing, SourceApi, SourceError};
use crate::pacing::Backoff;
use crate::plugin::types::{Header, HttpRequest};
use crate::store::{Millis, WriteBackItem};

/// What one pass over the due write-backs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub written: u32,
    pub retried: u32,
    pub dead: u32,
    /// HubSpot refused the credential or a scope: everything waits.
    pub held: bool,
}

/// How one write-back went.
enum Attempt {
    Written,
    Retried,
    Dead,
    Held,
}

/// The HubSpot write-back worker. Cheap to clone.
#[derive(Clone)]
pub struct HubspotWriteBack {
    ctx: Context,
    api: SourceApi,
    backoff: Backoff,
    /// Whether this process has seen the group and every property exist.
    ensured: Arc<AtomicBool>,
}

impl HubspotWriteBack {
    /// None unless `[hubspot]` is enabled with `write_back = true`; an error
    /// when write-back is on without a token to write with.
    pub fn new(ctx: &Context) -> Result<Option<HubspotWriteBack>, SourceError> {
        let Some(cfg) = ctx
            .config
            .hubspot
            .as_ref()
            .filter(|c| c.enabled && c.write_back)
        else {
            return Ok(None);
        };
        let api = SourceApi::configured(
            SOURCE,
            &cfg.api_url,
            cfg.token.as_ref(),
            "hubspot.token",
            ctx,
        )?
        .ok_or_else(|| SourceError::Config {
            source_name: SOURCE,
            message: "`hubspot.write_back = true` needs `hubspot.token` (a private app token with crm.objects.contacts.write)".into(),
        })?
        // Every write-back request is spaced; HubSpot's burst limit counts
        // all of a token's requests together.
        .paced(RequestPacing::new(cfg.write_back_per_second.max(1), 1_000, |_| true))
        .with_attempts(1);
        Ok(Some(HubspotWriteBack {
            ctx: ctx.clone(),
            api,
            backoff: ctx.config.policy().retry.write_back,
            ensured: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// Writes every write-back due now, one at a time, paced. Stops early
    /// when HubSpot refuses the credential or a scope (everything waits).
    pub async fn pass(&self) -> Result<Pass, SourceError> {
        let mut pass = Pass::default();
        loop {
            let now = self.ctx.clock.now_ms();
            let due = self
                .ctx
                .store
                .run(move |s| s.write_backs_due(now, 50))
                .await?;
            if due.is_empty() {
                return Ok(pass);
            }
            for item in due {
                let it = item.clone();
                let claimed = self
                    .ctx
                    .store
                    .run(move |s| s.claim_write_back(&it, CLAIM_LEASE_MS, now))
                    .await?;
                if !claimed {
                    continue;
                }
                match self.write(&item).await? {
                    Attempt::Written => pass.written += 1,
                    Attempt::Retried => pass.retried += 1,
                    Attempt::Dead => pass.dead += 1,
                    Attempt::Held => {
                        pass.held = true;
                        return Ok(pass);
                    }
                }
            }
        }
    }

    /// Runs passes until `shutdown` turns true: after each, sleeps until
    /// the next write-back is due (at most a second, so new ones are picked
    /// up quickly).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), SourceError> {
        loop {
            if let Err(e) = self.pass().await {
                // The store or the plugin failed; HubSpot's answers are
                // handled inside. Try again shortly rather than stop the
                // bridge over a write-back.
                tracing::warn!(error = %e, "hubspot write-back pass failed; will retry");
            }
            let now = self.ctx.clock.now_ms();
            let next = self
                .ctx
                .store
                .run(|s| s.next_write_back_at())
                .await
                .ok()
                .flatten()
                .unwrap_or(Millis::MAX);
            let wake = next.clamp(now + 50, now + 1_000);
            tokio::select! {
                _ = self.ctx.clock.sleep_until(wake) => {}
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            }
        }
    }

    /// Keeps passing until nothing is due within `wait` (for `sync` and the
    /// demo): a write-back retried later than that stays for the next run.
    pub async fn drain(&self, wait: Duration) -> Result<Pass, SourceError> {
        let horizon = self.ctx.clock.now_ms() + wait.as_millis() as Millis;
        let mut total = Pass::default();
        loop {
            let pass = self.pass().await?;
            total.written += pass.written;
            total.retried += pass.retried;
            total.dead += pass.dead;
            total.held |= pass.held;
            let next = self.ctx.store.run(|s| s.next_write_back_at()).await?;
            match next {
                Some(at) if at <= horizon && !pass.held => self.ctx.clock.sleep_until(at).await,
                _ => return Ok(total),
            }
        }
    }

    async fn write(&self, item: &WriteBackItem) -> Result<Attempt, SourceError> {
        let now = self.ctx.clock.now_ms();
        if !self.ensured.load(Ordering::Acquire) {
            match self.ensure_properties().await {
                Ok(None) => self.ensured.store(true, Ordering::Release),
                Ok(Some(problem)) => {
                    let action = workflow::after_mismatch(problem, &self.backoff, now);
                    return self.carry_out(item, action).await;
                }
                Err(e) => {
                    let action =
                        with_failure(&e, |f| workflow::after_ensure(f, &self.backoff, now));
                    return self.carry_out(item, action).await;
                }
            }
        }
        let answer = self.api.fetch(&http(workflow::patch(item))).await;
        let action = match &answer {
            Ok(body) => {
                workflow::after_write(item, Ok(body.is_some()), &self.backoff, now, rand::random())
            }
            Err(e) => with_failure(e, |f| {
                workflow::after_write(item, Err(f), &self.backoff, now, rand::random())
            }),
        };
        self.carry_out(item, action).await
    }

    /// Carries out what the core says an answer means.
    async fn carry_out(
        &self,
        item: &WriteBackItem,
        action: WriteAction,
    ) -> Result<Attempt, SourceError> {
        let now = self.ctx.clock.now_ms();
        let it = item.clone();
        match action {
            WriteAction::Done => {
                self.ctx
                    .store
                    .run(move |s| s.write_back_done(&it, now))
                    .await?;
                self.ctx.health_ok(SOURCE, TOPIC).await?;
                tracing::debug!(source_id = %item.source_id, kind = %item.kind, "written back to hubspot");
                Ok(Attempt::Written)
            }
            WriteAction::Retry {
                at,
                error,
                remake_properties,
            } => {
                if remake_properties {
                    self.ensured.store(false, Ordering::Release);
                }
                tracing::debug!(source_id = %item.source_id, attempts = item.attempts + 1, not_before = at, %error, "hubspot write-back will be retried");
                self.ctx
                    .store
                    .run(move |s| s.write_back_retry(&it, at, &error, now))
                    .await?;
                Ok(Attempt::Retried)
            }
            WriteAction::Dead {
                reason,
                health_problem,
            } => {
                if health_problem {
                    self.ctx.health_problem(SOURCE, TOPIC, &reason).await?;
                }
                tracing::warn!(source_id = %item.source_id, kind = %item.kind, %reason, "hubspot write-back given up");
                self.ctx
                    .store
                    .run(move |s| s.write_back_dead(&it, &reason, now))
                    .await?;
                Ok(Attempt::Dead)
            }
            WriteAction::HoldAll { until, problem } => {
                self.ctx.health_problem(SOURCE, TOPIC, &problem).await?;
                self.ctx
                    .store
                    .run(move |s| s.hold_write_backs(SOURCE, Some(&it), until, &problem, now))
                    .await?;
                Ok(Attempt::Held)
            }
        }
    }

    /// Makes the group and each property unless HubSpot already has them,
    /// in the order the core's [`Ensure`] asks. `Some(problem)` when one
    /// exists with another type (a person must fix it).
    async fn ensure_properties(&self) -> Result<Option<String>, SourceError> {
        let mut ensure = Ensure::new();
        loop {
            match ensure.next() {
                EnsureNeed::Done => return Ok(None),
                EnsureNeed::Read(request) => match self.api.fetch(&http(request)).await? {
                    Some(body) => {
                        if let Err(problem) = ensure.found(&body) {
                            return Ok(Some(problem));
                        }
                    }
                    None => ensure.read(false),
                },
                EnsureNeed::Create(request) => {
                    let path = request.path.clone();
                    self.create(&http(request)).await?;
                    tracing::info!(%path, "created a HubSpot call property or group");
                    ensure.created();
                }
            }
        }
    }

    /// `doctor`'s check: reads (never writes) the group and properties
    /// the write-back uses. The write scopes cannot be checked without
    /// writing, so the detail names them.
    pub async fn doctor(&self) -> Vec<super::DoctorCheck> {
        let mut missing = Vec::new();
        let mut wrong = Vec::new();
        let mut outcome = Ok(());
        let group = HttpRequest {
            method: "GET".into(),
            path: format!("/crm/v3/properties/calls/groups/{GROUP}"),
            headers: Vec::new(),
            body: None,
        };
        match self.api.fetch(&group).await {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(format!("group `{GROUP}`")),
            Err(e) => outcome = Err(e),
        }
        for spec in &PROPERTIES {
            if outcome.is_err() {
                break;
            }
            let read = HttpRequest {
                method: "GET".into(),
                path: format!("/crm/v3/properties/calls/{}", spec.name),
                headers: Vec::new(),
                body: None,
            };
            match self.api.fetch(&read).await {
                Ok(Some(body)) => wrong.extend(workflow::property_problem(spec, &body)),
                Ok(None) => missing.push(format!("`{}`", spec.name)),
                Err(e) => outcome = Err(e),
            }
        }
        if outcome.is_ok() && !wrong.is_empty() {
            outcome = Err(SourceError::WrongProperty(wrong.join("; ")));
        }
        let detail = outcome.map(|()| {
            let writes = format!(
                "writing needs `{PATCH_SCOPE}`, which cannot be checked without writing"
            );
            if missing.is_empty() {
                format!("the Kendo properties exist; {writes}")
            } else {
                format!(
                    "not yet in HubSpot: {}; the first write-back creates them (needs `{CREATE_SCOPE}`); {writes}",
                    missing.join(", ")
                )
            }
        });
        vec![super::DoctorCheck::needed(
            format!("hubspot write-back properties (read: scope {READ_SCOPE})"),
            detail,
        )]
    }

    /// A create whose 409 (made meanwhile, by another bridge or a person)
    /// is as good as a 201.
    async fn create(&self, request: &HttpRequest) -> Result<(), SourceError> {
        match self.api.fetch(request).await {
            Ok(_) | Err(SourceError::Status { status: 409, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The core's planned request as the source client makes it.
fn http(request: Request) -> HttpRequest {
    let header = |value: &str| Header {
        name: "Content-Type".into(),
        value: value.into(),
    };
    HttpRequest {
        method: request.method.into(),
        headers: request.content_type().map(header).into_iter().collect(),
        path: request.path,
        body: request.body,
    }
}

/// A source client's error as the core's workflow reads it.
fn with_failure<T>(error: &SourceError, f: impl FnOnce(Failure<'_>) -> T) -> T {
    let message = error.to_string();
    let (status, method, path) = match error {
        SourceError::Status {
            status,
            method,
            path,
            ..
        } => (Some(*status), method.as_str(), path.as_str()),
        _ => (None, "", ""),
    };
    f(Failure {
        status,
        passing: error.is_transient(),
        method,
        path,
        message: &message,
    })
}

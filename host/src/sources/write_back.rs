//! HubSpot write-back, driven: the workflow (which requests make the
//! properties exist, the write, what each answer means) is the core's
//! ([`kendo_bridge_core::sources::write_back`]), the rows the core ledger's.
//! This writer runs in a task of its own, paced under HubSpot's limits, so
//! a slow or failing HubSpot never holds up a Kendo send.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kendo_bridge_core::sources::write_back::{
    self as workflow, CREATE_SCOPE, Failure, GROUP, PATCH_SCOPE, PROPERTIES, READ_SCOPE, Request,
    SOURCE, WriteBackApi,
};
use tokio::sync::watch;

pub use kendo_bridge_core::sources::write_back::TOPIC;

use super::{Context, RequestPacing, SourceApi, SourceError};
use crate::pacing::Backoff;
use crate::plugin::types::{Header, HttpRequest};
use crate::ports::HostPorts;
use crate::store::Millis;

pub use kendo_bridge_core::sources::write_back::Pass;

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

    /// Writes every write-back due now, one at a time, paced, by the core's
    /// pass on the host's ports. Stops early when HubSpot refuses the
    /// credential or a scope (everything waits).
    pub async fn pass(&self) -> Result<Pass, SourceError> {
        let mut total = Pass::default();
        loop {
            let this = self.clone();
            let pass = HostPorts::run_async(move || async move {
                let ports = HostPorts::new(&this.ctx).reading(Some(&this.api), None);
                Ok::<_, SourceError>(
                    workflow::pass(&ports, &this.backoff, 50, &this.ensured).await?,
                )
            })
            .await?;
            for (source_id, reason) in &pass.given_up {
                tracing::warn!(%source_id, %reason, "hubspot write-back given up");
            }
            let moved = pass.written + pass.retried + pass.dead;
            let held = pass.held;
            total.add(pass);
            if held || moved == 0 {
                return Ok(total);
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

impl WriteBackApi for HostPorts<'_> {
    type Error = SourceError;

    async fn write(&self, request: Request) -> Result<Option<String>, SourceError> {
        match self.api(SOURCE) {
            Some(api) => api.fetch(&http(request)).await,
            None => Err(SourceError::NoCredentials(SOURCE)),
        }
    }

    fn failure<T>(&self, error: &SourceError, f: impl FnOnce(Failure<'_>) -> T) -> T {
        with_failure(error, f)
    }

    fn jitter(&self) -> f64 {
        rand::random()
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

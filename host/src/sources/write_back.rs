//! HubSpot write-back, driven: the workflow (which requests make the
//! properties exist, the write, what each answer means) is the core's
//! ([`kendo_bridge_core::sources::write_back`]), the rows the core ledger's,
//! its requests made by the source client
//! ([`crate::source_http::write_back`]). This writer runs in a task of its
//! own, paced under HubSpot's limits, so a slow or failing HubSpot never
//! holds up a Kendo send.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kendo_bridge_core::sources::write_back::{self as workflow, SOURCE};
use tokio::sync::watch;

pub use kendo_bridge_core::sources::write_back::TOPIC;

use super::{Context, SourceApi, SourceError};
use crate::pacing::Backoff;
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
        let api = SourceApi::hubspot_writes(ctx, cfg)?.ok_or_else(|| SourceError::Config {
            source_name: SOURCE,
            message: "`hubspot.write_back = true` needs `hubspot.token` (a private app token with crm.objects.contacts.write)".into(),
        })?;
        Ok(Some(HubspotWriteBack {
            ctx: ctx.clone(),
            api,
            backoff: ctx.config.policy().retry.write_back,
            ensured: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// The client write-backs are made with.
    pub fn api(&self) -> &SourceApi {
        &self.api
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
                .ledger(kendo_bridge_core::ledger::write_back::next_at)
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
            let next = self
                .ctx
                .store
                .ledger(kendo_bridge_core::ledger::write_back::next_at)
                .await?;
            match next {
                Some(at) if at <= horizon && !pass.held => self.ctx.clock.sleep_until(at).await,
                _ => return Ok(total),
            }
        }
    }
}

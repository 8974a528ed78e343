//! The host's driver of the core's inbox engine
//! ([`kendo_bridge_core::inbox`]): runs its passes on tokio's blocking pool
//! with every source's ports, after each webhook and when a deferred
//! delivery or an Aloware transcript wait falls due, logs what each
//! delivery came to, and wakes the sender when a call was queued.

use std::sync::Arc;

use kendo_bridge_core::inbox::{self, PassLimits, Processed, Progress, Settings};
use tokio::sync::{Notify, watch};

use crate::ports::HostPorts;
use crate::sources::{Context, Sources};
use crate::store::{Millis, StoreError};

/// Deliveries taken at a time by a pass.
const BATCH: u32 = 64;

/// Processes stored deliveries until `shutdown`, woken by new ones; in
/// between, sweeps the Aloware calls whose wait for a transcript ended.
pub async fn run_inbox(
    ctx: Context,
    sources: Sources,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    loop {
        let stopping = shutdown.clone();
        process_inbox(&ctx, &sources, move || *stopping.borrow()).await?;
        if *shutdown.borrow() {
            return Ok(());
        }
        // Aloware calls waiting for a transcript go with their recording
        // once their wait is over: the inbox's loop is where new waits
        // start, so it is the one that knows when the next one ends.
        let sweep_at = match &sources.aloware {
            Some(al) => sweep_aloware(al).await,
            None => None,
        };
        // Deferred deliveries, and those another instance claimed and may
        // have left behind, are looked at again when they fall due.
        let inbox_at = ctx.store.run(|s| s.inbox_next_due()).await?;
        tokio::select! {
            _ = wake.notified() => {}
            _ = shutdown.changed() => return Ok(()),
            _ = ctx.clock.sleep_until(inbox_at.unwrap_or_default()), if inbox_at.is_some() => {}
            _ = ctx.clock.sleep_until(sweep_at.unwrap_or_default()), if sweep_at.is_some() => {}
        }
    }
}

/// Sends the Aloware calls whose wait for a transcript is over, and
/// returns when the next wait ends. A failure is logged and retried in
/// 5 s: a held call is never dropped for it.
async fn sweep_aloware(al: &crate::sources::aloware::Aloware) -> Option<Millis> {
    if let Err(e) = al.sweep().await {
        tracing::warn!(source = "aloware", error = %e, "the transcript-wait sweep failed; retrying");
        return Some(al.now_ms() + 5_000);
    }
    match al.next_sweep_at().await {
        Ok(next) => next,
        Err(e) => {
            tracing::warn!(source = "aloware", error = %e, "the transcript-wait sweep failed; retrying");
            Some(al.now_ms() + 5_000)
        }
    }
}

/// One pass of the core's engine over the deliveries due now. Once
/// `stopping` says so, no delivery is started and those taken but not
/// started are given back (a backlog must not outlast the process's grace;
/// they stay stored and are processed after the restart).
pub async fn process_inbox(
    ctx: &Context,
    sources: &Sources,
    stopping: impl Fn() -> bool + Send + 'static,
) -> Result<Progress, StoreError> {
    let (ctx, sources) = (ctx.clone(), sources.clone());
    HostPorts::run_async(move || async move {
        let ports = sources.ports(&ctx);
        let settings = settings(&ctx, &sources);
        let limits = PassLimits {
            batch: BATCH,
            batches: None,
        };
        Ok(
            inbox::pass(&ports, &settings, limits, stopping, |entry, processed| {
                log(entry, processed);
                if let Processed::Done { queued, .. } = processed {
                    ctx.queued(queued);
                }
            })
            .await?,
        )
    })
    .await
}

/// What the engine needs from the configuration.
fn settings(ctx: &Context, sources: &Sources) -> Settings {
    Settings {
        hubspot: sources.hubspot.as_ref().map(|hs| hs.transcripts()),
        salesloft: sources.salesloft.as_ref().map(|sl| sl.settings()),
        aloware: sources.aloware.as_ref().map(|al| al.transcript_wait_ms()),
        write_backs: ctx
            .store
            .run_here(|s| Ok(s.write_back_sources()))
            .unwrap_or_default(),
    }
}

fn log(entry: &kendo_bridge_core::ledger::inbox::InboxEntry, processed: &Processed) {
    let (source, id) = (&entry.source, entry.id);
    match processed {
        Processed::Done { summary, .. } => {
            tracing::debug!(%source, id, %summary, "webhook processed");
        }
        Processed::Deferred { at, reason } => tracing::warn!(
            %source, id, error = %reason,
            "webhook processing deferred to {}", crate::timefmt::iso(*at)
        ),
        Processed::Closed { reason, new: true } => {
            tracing::warn!(%source, id, error = %reason, "webhook could not be processed");
        }
        Processed::Closed { reason, new: false } => {
            tracing::debug!(%source, id, error = %reason, "webhook could not be processed");
        }
    }
}

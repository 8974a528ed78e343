//! The host's driver of the core's inbox engine
//! ([`kendo_bridge_core::inbox`]): runs its passes on tokio's blocking pool
//! with every source's ports, after each webhook and when a deferred
//! delivery or an Aloware transcript wait falls due, logs what each
//! delivery came to, and wakes the sender when a call was queued.

use std::sync::Arc;

use kendo_bridge_core::due;
use kendo_bridge_core::inbox::{self, PassLimits, Processed, Progress, Settings};
use tokio::sync::{Notify, watch};

use crate::ports::HostPorts;
use crate::sources::{Context, Sources};
use crate::store::StoreError;

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
        // start. A failed sweep is tried again in 5 s: a held call is
        // never dropped for it.
        let mut retry_sweep_at = None;
        if let Some(al) = &sources.aloware
            && let Err(e) = al.sweep().await
        {
            tracing::warn!(source = "aloware", error = %e, "the transcript-wait sweep failed; retrying");
            retry_sweep_at = Some(ctx.clock.now_ms() + 5_000);
        }
        // Deferred deliveries, those another instance claimed and may have
        // left behind, and the next transcript wait's end: the core's
        // answer to what is due next.
        let due = ctx
            .store
            .run(|s| Ok(due::next(s.database(), None)?))
            .await?;
        let wake_at = [due.inbox_loop(), retry_sweep_at]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            _ = wake.notified() => {}
            _ = shutdown.changed() => return Ok(()),
            _ = ctx.clock.sleep_until(wake_at.unwrap_or_default()), if wake_at.is_some() => {}
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

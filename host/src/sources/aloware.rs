//! Aloware: webhook deliveries only. A call's disposition, its recording and
//! its transcript arrive as separate deliveries; what arrived is held until
//! the call can be sent, and a transcript that comes later is merged into a
//! call not yet sent.
//!
//! Captured real traffic for one call (docs: external-apis.md, Aloware):
//! `OutboundPhoneCall` at 0 s, `...-DispositionCompleted` at 70.4 s,
//! `Recording-Saved` at 74.4 s (the only event with `direct_recording_url`),
//! `Call-Disposed` at 77.0 s (the same state again), the summary at 118.6 s
//! and the transcript at 118.65 s. So each call delivery is merged into what
//! is held (a later body without the recording URL does not lose it), the
//! call is counted once by its id whatever event names the user subscribed
//! to, and a call ready with its recording waits a bounded time
//! (`aloware.transcript_wait`) for its transcript.

use super::{Context, SourceError};
use crate::ports::HostPorts;
use crate::store::{Intake, IntakeReport, Millis};
use kendo_bridge_core::sources::aloware;
pub use kendo_bridge_core::sources::aloware::{Handled, SOURCE};

/// The Aloware side of the bridge: the core's workflow
/// ([`kendo_bridge_core::sources::aloware`]) on the host's ports.
#[derive(Clone)]
pub struct Aloware {
    ctx: Context,
    /// `aloware.transcript_wait` in milliseconds (0: never wait).
    transcript_wait_ms: Millis,
}

impl Aloware {
    /// None when `[aloware]` is absent or disabled.
    pub fn new(ctx: &Context) -> Option<Aloware> {
        ctx.config
            .aloware
            .as_ref()
            .filter(|c| c.enabled)
            .map(|c| Aloware {
                ctx: ctx.clone(),
                transcript_wait_ms: c.transcript_wait.as_millis() as Millis,
            })
    }

    /// How long a call ready with its recording waits for its transcript.
    pub(crate) fn transcript_wait_ms(&self) -> Millis {
        self.transcript_wait_ms
    }

    /// Re-decides the calls whose wait for a transcript ran out: they go
    /// with their recording alone. Run by `serve` when the next wait ends
    /// and by `sync --once`.
    pub async fn sweep(&self) -> Result<IntakeReport, SourceError> {
        let report = HostPorts::run(&self.ctx, |ports| {
            Ok::<_, SourceError>(aloware::sweep(ports)?)
        })
        .await?;
        if report.enqueued > 0 {
            tracing::info!(
                source = SOURCE,
                calls = report.enqueued,
                "no transcript arrived in time; the calls go with their recording"
            );
        }
        self.ctx.queued(&report);
        Ok(report)
    }

    /// Decides a call again from what is held for it (see
    /// [`super::redecide`]). `None` when nothing is held.
    pub async fn redecide(
        &self,
        call_id: &str,
        version: String,
    ) -> Result<Option<Intake>, SourceError> {
        let id = call_id.to_string();
        HostPorts::run(&self.ctx, move |ports| {
            Ok::<_, SourceError>(aloware::redecide(ports, &id, &version)?)
        })
        .await
    }
}

//! A poll cycle on the host: the core's cycle runs on tokio's blocking pool
//! (its plugin and store calls block), and each page's running report
//! comes back to the polling task as the page is recorded, so `sync` and
//! `backfill` show their progress while the cycle runs.

use std::future::Future;

use kendo_bridge_core::sources::poll as core_poll;
use tokio::sync::mpsc;

use super::{Context, SourceError};
use crate::ports::HostPorts;
use crate::store::IntakeReport;

/// What one polling cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub pages: u32,
    pub records: u32,
    pub report: IntakeReport,
}

impl From<&core_poll::CycleReport> for CycleReport {
    fn from(c: &core_poll::CycleReport) -> CycleReport {
        CycleReport {
            pages: c.pages,
            records: c.records,
            report: c.report,
        }
    }
}

/// A cycle's running report, sent from the workflow's thread.
pub struct Progress(mpsc::UnboundedSender<CycleReport>);

impl Progress {
    /// One more page is recorded.
    pub fn page(&self, report: &core_poll::CycleReport) {
        // Nobody listening any more (the poller stopped) changes nothing
        // about the page, which is recorded.
        let _ = self.0.send(CycleReport::from(report));
    }
}

/// Runs a poll cycle on `checkpoint` (see [`HostPorts::run_async`]),
/// telling `on_page` each page's running report on this task; the delivery
/// workers are woken as soon as a page queues sends, not at the end.
pub async fn run<F, Fut>(
    ctx: &Context,
    checkpoint: &str,
    mut on_page: impl FnMut(&CycleReport),
    cycle: F,
) -> Result<CycleReport, SourceError>
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = Result<core_poll::CycleReport, SourceError>>,
{
    let (pages, mut seen) = mpsc::unbounded_channel();
    let work = HostPorts::run_async(move || cycle(Progress(pages)));
    tokio::pin!(work);
    let mut page = |report: CycleReport| {
        ctx.queued(&report.report);
        on_page(&report);
    };
    let cycle = loop {
        tokio::select! {
            Some(report) = seen.recv() => page(report),
            cycle = &mut work => break cycle?,
        }
    };
    while let Ok(report) = seen.try_recv() {
        page(report);
    }
    if let Some(why) = &cycle.cursor_unreadable {
        tracing::warn!(checkpoint, "{why}");
    }
    if cycle.moved {
        tracing::info!(
            checkpoint,
            "another instance moved this checkpoint meanwhile; it goes on from there, this cycle ends"
        );
    }
    Ok(CycleReport::from(&cycle))
}

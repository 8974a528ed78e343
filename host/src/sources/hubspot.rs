//! HubSpot on the host: the source built from `[hubspot]`, and the core's
//! workflows ([`kendo_bridge_core::sources::hubspot`]: the poll cycle and
//! backfill, a re-decision) on the host's ports; its stored deliveries go
//! through the inbox's engine ([`crate::inbox`]) on the ports it reads
//! with ([`Hubspot::reading`]).

use super::{Context, CycleReport, LookupCache, SourceApi, SourceError, poll};
use crate::ports::HostPorts;
use crate::store::{Intake, Millis};
use kendo_bridge_core::ports::SearchOptions;
use kendo_bridge_core::sources::hubspot::{self as hubspot_workflow, PollSettings, Start};

pub use kendo_bridge_core::sources::hubspot::SOURCE;

/// The HubSpot side of the bridge.
#[derive(Clone)]
pub struct Hubspot {
    ctx: Context,
    api: Option<SourceApi>,
    owners: LookupCache,
    dispositions: LookupCache,
    options: SearchOptions,
    transcripts: bool,
    /// Where a poll starts: the stored checkpoint, or the initial
    /// look-back the first time.
    stored: Start,
}

impl Hubspot {
    /// None when `[hubspot]` is absent or disabled.
    pub fn new(ctx: &Context) -> Result<Option<Hubspot>, SourceError> {
        let Some(cfg) = ctx.config.hubspot.as_ref().filter(|c| c.enabled) else {
            return Ok(None);
        };
        Ok(Some(Hubspot {
            ctx: ctx.clone(),
            api: SourceApi::hubspot_reads(ctx, cfg)?,
            owners: LookupCache::default(),
            dispositions: LookupCache::default(),
            options: SearchOptions {
                limit: cfg.page_size,
                lookback_ms: cfg.lookback.as_millis() as u64,
            },
            transcripts: cfg.transcripts,
            stored: Start::Stored {
                first_look_back_ms: cfg.initial_lookback.as_millis() as Millis,
            },
        }))
    }

    /// Whether polling is possible (a token is configured).
    pub fn can_poll(&self) -> bool {
        self.api.is_some()
    }

    /// One polling cycle from the stored checkpoint.
    pub async fn poll(
        &self,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        self.search(self.stored, SOURCE, on_page).await
    }

    /// Reads every call modified since `since_ms`, on its own checkpoint.
    pub async fn backfill(
        &self,
        since_ms: Millis,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        self.search(Start::Since(since_ms), "hubspot-backfill", on_page)
            .await
    }

    /// The core's poll cycle ([`hubspot_workflow::poll`]) on the host's
    /// ports; `on_page` sees each page's running report as it is recorded.
    async fn search(
        &self,
        start: Start,
        checkpoint: &'static str,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        if self.api.is_none() {
            return Err(SourceError::NoCredentials(SOURCE));
        }
        let settings = PollSettings {
            options: self.options,
            transcripts: self.transcripts,
            max_pages: u32::MAX,
        };
        let this = self.clone();
        poll::run(&self.ctx, checkpoint, on_page, move |progress| async move {
            let ports = this.ports();
            hubspot_workflow::poll(&ports, checkpoint, start, settings, |r| progress.page(r)).await
        })
        .await
    }

    fn ports(&self) -> HostPorts<'_> {
        self.reading(HostPorts::new(&self.ctx))
    }

    /// Decides a call again (see [`super::redecide`]) from HubSpot's
    /// current record of it, read by id: HubSpot keeps the record, so the
    /// bridge does not. `None` when HubSpot no longer has it.
    pub async fn redecide(&self, id: &str, version: String) -> Result<Option<Intake>, SourceError> {
        let (this, id) = (self.clone(), id.to_string());
        HostPorts::run_async(move || async move {
            hubspot_workflow::redecide(&this.ports(), &id, &version, this.transcripts).await
        })
        .await
    }

    /// Whether calls' transcripts are read.
    pub(crate) fn transcripts(&self) -> bool {
        self.transcripts
    }

    /// `ports` reading HubSpot's API, with its owner and disposition caches.
    pub(crate) fn reading<'a>(&'a self, ports: HostPorts<'a>) -> HostPorts<'a> {
        ports.reading(self.api.as_ref(), Some((&self.owners, &self.dispositions)))
    }
}

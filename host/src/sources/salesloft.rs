//! Salesloft on the host: the source built from `[salesloft]`, and the
//! core's workflows ([`kendo_bridge_core::sources::salesloft`]: the poll
//! cycle and backfill, a re-decision) on the host's ports; its stored
//! deliveries go through the inbox's engine ([`crate::inbox`]) on the ports
//! it reads with ([`Salesloft::reading`]).

use kendo_bridge_core::sources::salesloft::{self as workflow, Limits, Settings};

use super::{Context, CycleReport, LookupCache, SourceApi, SourceError, poll};
use crate::ports::HostPorts;
use crate::store::{Intake, Millis};

pub use kendo_bridge_core::sources::salesloft::{AWAITING_CALL_DATA_RECORD, SOURCE};

/// The Salesloft side of the bridge.
#[derive(Clone)]
pub struct Salesloft {
    ctx: Context,
    api: Option<SourceApi>,
    users: LookupCache,
    settings: Settings,
}

impl Salesloft {
    /// None when `[salesloft]` is absent or disabled.
    pub fn new(ctx: &Context) -> Result<Option<Salesloft>, SourceError> {
        let Some(cfg) = ctx.config.salesloft.as_ref().filter(|c| c.enabled) else {
            return Ok(None);
        };
        let api = SourceApi::salesloft(ctx, cfg)?;
        // Only polling reads call data records: without it a finished call
        // waiting for one would wait the whole time for nothing.
        let polls = api.is_some() && !cfg.poll_interval.is_zero();
        Ok(Some(Salesloft {
            ctx: ctx.clone(),
            api,
            users: LookupCache::default(),
            settings: Settings {
                transcripts: cfg.transcripts,
                direction_wait_ms: if polls {
                    cfg.direction_wait.as_millis() as Millis
                } else {
                    0
                },
                first_look_back_ms: cfg.initial_lookback.as_millis() as Millis,
            },
        }))
    }

    /// Whether polling is possible (an API key is configured).
    pub fn can_poll(&self) -> bool {
        self.api.is_some()
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings
    }

    /// One polling cycle, every page (the client paces the requests under
    /// the team's budget); `on_page` sees each page as it is recorded.
    pub async fn poll(
        &self,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        self.run(None, on_page).await
    }

    /// Reads every call updated since `since` (a backfill), moving its own
    /// checkpoints so the regular ones are untouched.
    pub async fn backfill(
        &self,
        since_ms: Millis,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        self.run(Some(since_ms), on_page).await
    }

    /// The core's cycle ([`workflow::poll`] or [`workflow::backfill`]).
    async fn run(
        &self,
        backfill: Option<Millis>,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        if self.api.is_none() {
            return Err(SourceError::NoCredentials(SOURCE));
        }
        let (this, settings) = (self.clone(), self.settings());
        let cycle = poll::run(&self.ctx, SOURCE, on_page, move |progress| async move {
            let ports = this.ports();
            let on_page = |report: &_| progress.page(report);
            let polled = match backfill {
                Some(since) => workflow::backfill(&ports, since, settings, on_page).await?,
                None => workflow::poll(&ports, settings, Limits::default(), on_page).await?,
            };
            for note in &polled.notes {
                tracing::warn!(source = SOURCE, "{note}");
            }
            Ok(polled.cycle)
        })
        .await;
        // Whatever the cycle queued besides its pages (the released waits,
        // the transcripts' re-decisions) goes now.
        self.ctx.wake.notify_waiters();
        cycle
    }

    fn ports(&self) -> HostPorts<'_> {
        self.reading(HostPorts::new(&self.ctx))
    }

    /// Decides a call again from the record kept for it (see
    /// [`super::redecide`]). `None` when none was kept.
    pub async fn redecide(&self, id: &str, version: String) -> Result<Option<Intake>, SourceError> {
        let (this, id, settings) = (self.clone(), id.to_string(), self.settings());
        HostPorts::run_async(move || async move {
            workflow::redecide(&this.ports(), &id, &version, settings).await
        })
        .await
    }

    /// `ports` reading Salesloft's API, with its user cache.
    pub(crate) fn reading<'a>(&'a self, ports: HostPorts<'a>) -> HostPorts<'a> {
        ports
            .reading(self.api.as_ref(), None)
            .with_users(&self.users)
    }
}

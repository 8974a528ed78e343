//! HubSpot: incremental calls search with look-back and 10,000-cap
//! re-anchoring, owners, dispositions, transcripts, and webhook or workflow
//! deliveries (which name call ids; the calls are then fetched by id).

use super::{Context, CycleReport, LookupCache, RequestPacing, SourceApi, SourceError};
use crate::plugin::hubspot::{Cursor, ListedCall, SearchOptions, SearchPage};
use crate::plugin::types::HttpRequest;
use crate::ports::HostPorts;
use crate::store::{Intake, Millis};
use kendo_bridge_core::sources::Health;
use kendo_bridge_core::sources::hubspot as hubspot_workflow;
use kendo_bridge_core::sources::hubspot::{CallRead, CallRef, Inputs, Need};

/// The ledger's name for this source.
pub const SOURCE: &str = "hubspot";

pub use kendo_bridge_core::sources::hubspot::StoredCursor;

impl From<&Cursor> for StoredCursor {
    fn from(c: &Cursor) -> Self {
        StoredCursor {
            since_ms: c.since_ms,
            after: c.after.clone(),
            high_water_ms: c.high_water_ms,
        }
    }
}

impl From<StoredCursor> for Cursor {
    fn from(c: StoredCursor) -> Self {
        Cursor {
            since_ms: c.since_ms,
            after: c.after,
            high_water_ms: c.high_water_ms,
        }
    }
}

/// A cursor at the first page of calls modified since `since_ms`.
fn cursor_since(since_ms: Millis) -> Cursor {
    Cursor {
        since_ms: Some(since_ms.max(0) as u64),
        after: None,
        high_water_ms: None,
    }
}

/// Whether a request is a CRM search, which HubSpot limits on its own.
fn is_search(request: &HttpRequest) -> bool {
    request.method == "POST" && request.path.ends_with("/search")
}

/// Spaces searches to `per_second`.
fn search_pacing(per_second: u32) -> RequestPacing {
    RequestPacing::new(per_second.max(1), 1_000, is_search)
}

/// The HubSpot side of the bridge.
#[derive(Clone)]
pub struct Hubspot {
    ctx: Context,
    api: Option<SourceApi>,
    owners: LookupCache,
    dispositions: LookupCache,
    options: SearchOptions,
    transcripts: bool,
    initial_lookback_ms: Millis,
}

impl Hubspot {
    /// None when `[hubspot]` is absent or disabled.
    pub fn new(ctx: &Context) -> Result<Option<Hubspot>, SourceError> {
        let Some(cfg) = ctx.config.hubspot.as_ref().filter(|c| c.enabled) else {
            return Ok(None);
        };
        let api = SourceApi::configured(
            SOURCE,
            &cfg.api_url,
            cfg.token.as_ref(),
            "hubspot.token",
            ctx,
        )?
        .map(|api| api.paced(search_pacing(cfg.search_per_second)));
        Ok(Some(Hubspot {
            ctx: ctx.clone(),
            api,
            owners: LookupCache::default(),
            dispositions: LookupCache::default(),
            options: SearchOptions {
                limit: cfg.page_size,
                lookback_ms: cfg.lookback.as_millis() as u64,
            },
            transcripts: cfg.transcripts,
            initial_lookback_ms: cfg.initial_lookback.as_millis() as Millis,
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
        let start = hubspot_workflow::Start::Stored {
            first_look_back_ms: self.initial_lookback_ms,
        };
        self.search(start, SOURCE, on_page).await
    }

    /// Reads every call modified since `since_ms`, on its own checkpoint.
    pub async fn backfill(
        &self,
        since_ms: Millis,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        let start = hubspot_workflow::Start::Since(since_ms);
        self.search(start, "hubspot-backfill", on_page).await
    }

    /// The core's poll cycle ([`hubspot_workflow::poll`]) on the host's
    /// ports; `on_page` sees each page's running report as it is recorded.
    async fn search(
        &self,
        start: hubspot_workflow::Start,
        checkpoint: &'static str,
        mut on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        if self.api.is_none() {
            return Err(SourceError::NoCredentials(SOURCE));
        }
        let settings = hubspot_workflow::PollSettings {
            options: kendo_bridge_core::ports::SearchOptions {
                limit: self.options.limit,
                lookback_ms: self.options.lookback_ms,
            },
            transcripts: self.transcripts,
            max_pages: u32::MAX,
        };
        let (pages, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let this = self.clone();
        let work = HostPorts::run_async(move || async move {
            let ports = HostPorts::new(&this.ctx)
                .reading(this.api.as_ref(), Some((&this.owners, &this.dispositions)));
            hubspot_workflow::poll(&ports, checkpoint, start, settings, |report| {
                let _ = pages.send(CycleReport::from(report));
            })
            .await
        });
        tokio::pin!(work);
        let cycle = loop {
            tokio::select! {
                Some(report) = seen.recv() => {
                    self.ctx.queued(&report.report);
                    on_page(&report);
                }
                cycle = &mut work => break cycle?,
            }
        };
        while let Ok(report) = seen.try_recv() {
            self.ctx.queued(&report.report);
            on_page(&report);
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

    /// One page of the calls search, as HubSpot answers it and the plugin
    /// reads it.
    async fn read_search_page(
        &self,
        api: &SourceApi,
        at: Cursor,
    ) -> Result<SearchPage, SourceError> {
        let (cursor, options) = (at.clone(), self.options);
        let request = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_hubspot()
                    .call_search_request(s, &cursor, options)
            })
            .await?;
        let body = api.fetch_list(&request).await?;
        self.ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_hubspot()
                    .call_read_search(s, &at, options, &body)
            })
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))
    }

    async fn health_ok(&self, topic: &'static str) -> Result<(), SourceError> {
        Ok(self.ctx.health_ok(SOURCE, topic).await?)
    }

    /// Records a problem for `status`; logged at warn when it is new.
    async fn health_problem(&self, topic: &'static str, problem: &str) -> Result<(), SourceError> {
        Ok(self.ctx.health_problem(SOURCE, topic, problem).await?)
    }

    /// Reads what mapping `call` needs besides the call (its owner, the
    /// dispositions, its transcript), in the order and with the caching and
    /// failure rules of the core's workflow; the plugin plans each request.
    async fn read(&self, call: &ListedCall) -> Result<Inputs, SourceError> {
        let now = self.ctx.clock.now_ms();
        let reference = CallRef {
            id: call.id.clone(),
            owner_id: call.owner_id.clone(),
            transcription_id: call.transcription_id.clone(),
        };
        let mut read = self.owners.with(|owners| {
            self.dispositions.with(|dispositions| {
                CallRead::new(reference, self.transcripts, owners, dispositions, now)
            })
        });
        let inputs = loop {
            let request = match read.next() {
                Need::Map(inputs) => break inputs,
                Need::Owner { owner_id, archived } => {
                    self.ctx
                        .plugin
                        .call(move |b, s| {
                            b.kendo_bridge_hubspot()
                                .call_owner_request(s, &owner_id, archived)
                        })
                        .await?
                }
                Need::Dispositions => {
                    self.ctx
                        .plugin
                        .call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
                        .await?
                }
                Need::Transcript { transcription_id } => {
                    self.ctx
                        .plugin
                        .call(move |b, s| {
                            b.kendo_bridge_hubspot()
                                .call_transcript_request(s, &transcription_id)
                        })
                        .await?
                }
            };
            let answer = match &self.api {
                Some(api) => api.fetch(&request).await,
                None => Err(SourceError::NoCredentials(SOURCE)),
            };
            read.fetched(&request.path, answer)?;
        };
        self.owners.with(|owners| {
            self.dispositions
                .with(|dispositions| read.remember(owners, dispositions, now))
        });
        for health in read.health() {
            match health {
                Health::Ok(topic) => self.health_ok(topic).await?,
                Health::Problem(topic, problem) => self.health_problem(topic, problem).await?,
            }
        }
        Ok(inputs)
    }

    /// `doctor`'s live checks: each read the bridge needs, once, sending
    /// nothing anywhere. Each answer is the check's name and what it found.
    pub async fn doctor(&self) -> Vec<super::DoctorCheck> {
        use super::DoctorCheck;
        let Some(api) = &self.api else {
            return vec![DoctorCheck::needed(
                "hubspot API",
                Err(SourceError::NoCredentials(SOURCE)),
            )];
        };
        let mut checks = Vec::new();
        let at = cursor_since(self.ctx.clock.now_ms() - self.initial_lookback_ms);
        let search = self.read_search_page(api, at).await;
        let owner = search
            .as_ref()
            .ok()
            .and_then(|page| page.calls.iter().find_map(|c| c.owner_id.clone()));
        checks.push(DoctorCheck::needed(
            "hubspot calls search (scope crm.objects.contacts.read)",
            search.map(|page| {
                format!(
                    "read; {} call(s) on the first page of the initial look-back",
                    page.calls.len()
                )
            }),
        ));
        if let Some(owner_id) = owner {
            checks.push(DoctorCheck::needed(
                "hubspot owners (scope crm.objects.owners.read)",
                self.read(&ListedCall {
                    id: String::new(),
                    modified_ms: 0,
                    owner_id: Some(owner_id.clone()),
                    transcription_id: None,
                    json: String::new(),
                })
                .await
                .map(|inputs| match inputs.owner {
                    Some(_) => format!("read owner {owner_id}"),
                    None => format!("owner {owner_id} not found"),
                }),
            ));
        }
        let dispositions = async {
            let request = self
                .ctx
                .plugin
                .call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
                .await?;
            api.fetch_list(&request).await
        }
        .await;
        checks.push(DoctorCheck::optional(
            "hubspot dispositions (GET /calling/v1/dispositions)",
            dispositions.map(|_| "read".to_string()),
        ));
        checks
    }

    /// Decides a call again (see [`super::redecide`]) from HubSpot's
    /// current record of it, read by id: HubSpot keeps the record, so the
    /// bridge does not. `None` when HubSpot no longer has it.
    pub async fn redecide(&self, id: &str, version: String) -> Result<Option<Intake>, SourceError> {
        if self.api.is_none() {
            return Err(SourceError::NoCredentials(SOURCE));
        }
        let (this, id) = (self.clone(), id.to_string());
        HostPorts::run_async(move || async move {
            let ports = HostPorts::new(&this.ctx)
                .reading(this.api.as_ref(), Some((&this.owners, &this.dispositions)));
            hubspot_workflow::redecide(&ports, &id, &version, this.transcripts).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn search() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/crm/v3/objects/calls/search".into(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn owner() -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            path: "/crm/v3/owners/1".into(),
            headers: Vec::new(),
            body: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn searches_are_spaced_to_stay_under_the_per_second_limit() {
        let clock = Clock::starting_at(1_000_000);
        let pacing = search_pacing(4);
        let mut sent = Vec::new();
        for _ in 0..12 {
            pacing.wait(&search(), &clock).await;
            sent.push(clock.now_ms());
        }
        for window in sent.windows(5) {
            assert!(
                window[4] - window[0] > 1_000,
                "five searches inside one second: {sent:?}"
            );
        }
        assert!(sent[11] - sent[0] < 3_000, "paced, not stalled: {sent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_other_than_search_are_not_paced() {
        let clock = Clock::starting_at(1_000_000);
        let pacing = search_pacing(1);
        for _ in 0..10 {
            pacing.wait(&owner(), &clock).await;
        }
        assert_eq!(clock.now_ms(), 1_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_searches_queue_for_their_slots() {
        let clock = Clock::starting_at(1_000_000);
        let pacing = search_pacing(5);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let pacing = pacing.clone();
            tasks.push(tokio::spawn(async move {
                pacing.wait(&search(), &clock).await;
                clock.now_ms()
            }));
        }
        let mut sent = Vec::new();
        for task in tasks {
            sent.push(task.await.unwrap_or_default());
        }
        sent.sort_unstable();
        for window in sent.windows(6) {
            assert!(window[5] - window[0] > 1_000, "{sent:?}");
        }
    }
}

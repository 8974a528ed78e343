//! Salesloft: incremental polling of call activities, users, transcripts,
//! and `call_created` / `call_updated` webhooks.

use std::sync::{Arc, Mutex};

use kendo_bridge_core::sources::budget::ShareBudget;
use kendo_bridge_core::sources::salesloft::{self as workflow, Polled, Settings};

use super::{Context, CycleReport, LookupCache, RateBudget, SourceApi, SourceError};
use crate::plugin::salesloft::{Cursor, Listing};
use crate::ports::HostPorts;
use crate::store::{Intake, Millis};

pub use kendo_bridge_core::sources::salesloft::{AWAITING_CALL_DATA_RECORD, SOURCE};

pub use kendo_bridge_core::sources::salesloft::StoredCursor;

impl From<&Cursor> for StoredCursor {
    fn from(c: &Cursor) -> Self {
        StoredCursor {
            updated_since: c.updated_since.clone(),
            page: c.page,
            done: None,
        }
    }
}

impl From<StoredCursor> for Cursor {
    fn from(c: StoredCursor) -> Self {
        Cursor {
            updated_since: c.updated_since,
            page: c.page.max(1),
        }
    }
}

/// The bridge's share of the team's cost points: every request spends one
/// (the plugin never asks for a page past 100, which would cost more; the
/// answer's `x-ratelimit-endpoint-cost` corrects it if it did).
struct TeamBudget(Mutex<ShareBudget>);

impl RateBudget for TeamBudget {
    fn reserve(&self, _request: &crate::plugin::types::HttpRequest, now: Millis) -> Millis {
        let mut budget = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = budget.next_slot(now, 1);
        budget.record(slot, 1);
        slot
    }

    fn observe(&self, now: Millis, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        // https://developers.salesloft.com/docs/platform/api-basics/rate-limits/
        let remaining = number("x-ratelimit-remaining-minute");
        let cost = number("x-ratelimit-endpoint-cost");
        let mut budget = self.0.lock().unwrap_or_else(|p| p.into_inner());
        budget.observe(now, remaining, cost);
    }
}

/// A cursor at the first page of calls updated since `since_ms`.
fn cursor_since(since_ms: Millis) -> Cursor {
    let (updated_since, page) = kendo_bridge_core::sources::salesloft::start(since_ms);
    Cursor {
        updated_since: Some(updated_since),
        page,
    }
}

/// The Salesloft side of the bridge.
#[derive(Clone)]
pub struct Salesloft {
    ctx: Context,
    api: Option<SourceApi>,
    users: LookupCache,
    transcripts: bool,
    initial_lookback_ms: Millis,
    /// How long a finished call waits for its call data record; zero when
    /// it never waits (no polling reads the records).
    direction_wait_ms: Millis,
}

impl Salesloft {
    /// None when `[salesloft]` is absent or disabled.
    pub fn new(ctx: &Context) -> Result<Option<Salesloft>, SourceError> {
        let Some(cfg) = ctx.config.salesloft.as_ref().filter(|c| c.enabled) else {
            return Ok(None);
        };
        let api = SourceApi::configured(
            SOURCE,
            &cfg.api_url,
            cfg.api_key.as_ref(),
            "salesloft.api_key",
            ctx,
        )?
        .map(|api| {
            api.budgeted(Arc::new(TeamBudget(Mutex::new(ShareBudget::new(
                cfg.rate_limit_points,
                cfg.budget_share,
                cfg.rate_limit_window.as_millis() as Millis,
            )))))
        });
        // Only polling reads call data records: without it a call waiting
        // for one would wait the whole time for nothing.
        let polls = api.is_some() && !cfg.poll_interval.is_zero();
        Ok(Some(Salesloft {
            ctx: ctx.clone(),
            api,
            users: LookupCache::default(),
            transcripts: cfg.transcripts,
            initial_lookback_ms: cfg.initial_lookback.as_millis() as Millis,
            direction_wait_ms: if polls {
                cfg.direction_wait.as_millis() as Millis
            } else {
                0
            },
        }))
    }

    /// Whether polling is possible (an API key is configured).
    pub fn can_poll(&self) -> bool {
        self.api.is_some()
    }

    pub(crate) fn settings(&self) -> Settings {
        Settings {
            transcripts: self.transcripts,
            direction_wait_ms: self.direction_wait_ms,
            first_look_back_ms: self.initial_lookback_ms,
        }
    }

    /// One polling cycle: the core's ([`workflow::poll`]) on the host's
    /// ports, every page (the client paces requests under the team's
    /// budget), `on_page` told as each page of calls is recorded.
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

    async fn run(
        &self,
        backfill: Option<Millis>,
        mut on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        if self.api.is_none() {
            return Err(SourceError::NoCredentials(SOURCE));
        }
        let (pages, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let (this, settings) = (self.clone(), self.settings());
        let work = HostPorts::run_async(move || async move {
            let ports = this.ports();
            let on_page = |report: &kendo_bridge_core::sources::poll::CycleReport| {
                let _ = pages.send(CycleReport::from(report));
            };
            match backfill {
                Some(since) => workflow::backfill(&ports, since, settings, on_page).await,
                None => {
                    let limits = workflow::Limits::default();
                    workflow::poll(&ports, settings, limits, on_page).await
                }
            }
        });
        tokio::pin!(work);
        let polled: Polled = loop {
            tokio::select! {
                Some(report) = seen.recv() => on_page(&report),
                polled = &mut work => break polled?,
            }
        };
        while let Ok(report) = seen.try_recv() {
            on_page(&report);
        }
        for note in &polled.notes {
            tracing::warn!(source = SOURCE, "{note}");
        }
        if polled.cycle.moved {
            tracing::info!(
                source = SOURCE,
                "another instance moved this checkpoint meanwhile; it goes on from there, this cycle ends"
            );
        }
        // Whatever the cycle queued (its pages, the released waits, the
        // transcripts' re-decisions) goes now.
        self.ctx.wake.notify_waiters();
        Ok(CycleReport::from(&polled.cycle))
    }

    fn ports(&self) -> HostPorts<'_> {
        self.reading(HostPorts::new(&self.ctx))
    }

    /// `doctor`'s live checks: each read the bridge needs, once, sending
    /// nothing anywhere. Each answer is the check's name and what it found.
    pub async fn doctor(&self) -> Vec<super::DoctorCheck> {
        use super::DoctorCheck;
        let Some(api) = &self.api else {
            return vec![DoctorCheck::needed(
                "salesloft API",
                Err(SourceError::NoCredentials(SOURCE)),
            )];
        };
        let at = cursor_since(self.ctx.clock.now_ms() - self.initial_lookback_ms);
        let mut checks = Vec::new();
        let calls = self.read_calls_page(api, at.clone()).await;
        let user = calls
            .as_ref()
            .ok()
            .and_then(|page| page.calls.iter().find_map(|c| c.user_id.clone()));
        checks.push(DoctorCheck::needed(
            "salesloft calls (scope calls:read)",
            calls.map(|page| {
                format!(
                    "read; {} call(s) on the first page of the initial look-back",
                    page.calls.len()
                )
            }),
        ));
        checks.push(DoctorCheck::needed(
            "salesloft call data records (scope calls:read)",
            self.list(api, Listing::CallDataRecords, &at)
                .await
                .map(|_| "read".to_string()),
        ));
        if let Some(user_id) = user {
            checks.push(DoctorCheck::needed(
                "salesloft users (scope team:read)",
                self.user(Some(&user_id)).await.map(|email| match email {
                    Some(_) => format!("read user {user_id}"),
                    None => format!("user {user_id} not found"),
                }),
            ));
        }
        if self.transcripts {
            checks.push(DoctorCheck::optional(
                "salesloft transcriptions (scope conversations:read)",
                self.list(api, Listing::Transcriptions, &at)
                    .await
                    .map(|_| "read".to_string()),
            ));
        }
        checks
    }

    /// The page of a list the cursor points at (for `doctor`).
    async fn list(
        &self,
        api: &SourceApi,
        what: Listing,
        at: &Cursor,
    ) -> Result<String, SourceError> {
        let at = at.clone();
        let request = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_salesloft().call_next_request(s, what, &at))
            .await?;
        api.fetch_list(&request).await
    }

    /// One page of calls as Salesloft lists it and the plugin reads it
    /// (for `doctor`).
    async fn read_calls_page(
        &self,
        api: &SourceApi,
        at: Cursor,
    ) -> Result<crate::plugin::salesloft::CallPage, SourceError> {
        let body = self.list(api, Listing::Calls, &at).await?;
        self.ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_salesloft().call_read_page(s, &at, &body))
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))
    }

    /// A user's record, read as the core's workflow reads it (for
    /// `doctor`).
    async fn user(&self, user_id: Option<&str>) -> Result<Option<String>, SourceError> {
        let (this, user_id) = (self.clone(), user_id.map(str::to_string));
        HostPorts::run_async(move || async move {
            workflow::read_user(&this.ports(), user_id.as_deref()).await
        })
        .await
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

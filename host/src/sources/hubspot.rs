//! HubSpot: incremental calls search with look-back and 10,000-cap
//! re-anchoring, owners, dispositions, transcripts, and webhook or workflow
//! deliveries (which name call ids; the calls are then fetched by id).

use serde::{Deserialize, Serialize};

use super::{Context, CycleReport, LookupCache, Page, SourceApi, SourceError, decide, read_pages};
use crate::plugin::hubspot::{CallInputs, Cursor, ListedCall, SearchOptions};
use crate::plugin::types::SyncMethod;
use crate::store::{Intake, IntakeReport, Millis};

/// The ledger's name for this source.
pub const SOURCE: &str = "hubspot";

/// The cursor as persisted in the checkpoint table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredCursor {
    pub since_ms: Option<u64>,
    pub after: Option<String>,
    pub high_water_ms: Option<u64>,
}

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
        )?;
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
        let start = match self.ctx.stored_cursor::<StoredCursor>(SOURCE).await? {
            Some(c) => c.into(),
            None => cursor_since(self.ctx.clock.now_ms() - self.initial_lookback_ms),
        };
        self.search(start, SOURCE, on_page).await
    }

    /// Reads every call modified since `since_ms`, on its own checkpoint.
    pub async fn backfill(
        &self,
        since_ms: Millis,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        let start = cursor_since(since_ms);
        self.search(start, "hubspot-backfill", on_page).await
    }

    async fn search(
        &self,
        cursor: Cursor,
        checkpoint: &str,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        let api = self
            .api
            .as_ref()
            .ok_or(SourceError::NoCredentials(SOURCE))?;
        read_pages::<_, StoredCursor, _>(
            &self.ctx,
            checkpoint,
            cursor,
            |at| self.search_page(api, at),
            on_page,
        )
        .await
    }

    async fn search_page(&self, api: &SourceApi, at: Cursor) -> Result<Page<Cursor>, SourceError> {
        let (cursor, options) = (at.clone(), self.options);
        let request = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_hubspot()
                    .call_search_request(s, &cursor, options)
            })
            .await?;
        let body = api.fetch(&request).await?.unwrap_or_default();
        let page = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_hubspot()
                    .call_read_search(s, &at, options, &body)
            })
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        let mut items = Vec::with_capacity(page.calls.len());
        for call in &page.calls {
            items.push(self.map(call, SyncMethod::Polling).await?);
        }
        Ok(Page {
            items,
            records: page.calls.len() as u32,
            next: page.next,
            more: page.more,
        })
    }

    /// The ledger version of a call: its modification time, zero-padded so
    /// that versions sort in time order as strings.
    fn version(call: &ListedCall) -> String {
        format!("{:015}", call.modified_ms)
    }

    async fn map(&self, call: &ListedCall, via: SyncMethod) -> Result<Intake, SourceError> {
        let version = Self::version(call);
        let settled = {
            let (id, v) = (call.id.clone(), version.clone());
            self.ctx
                .store
                .run(move |s| s.is_settled(SOURCE, &id, &v))
                .await?
        };
        if settled {
            return Ok(self.ctx.seen(SOURCE, &call.id, &version, via));
        }
        let owner = match &call.owner_id {
            Some(id) => self.owner(id).await?,
            None => None,
        };
        let dispositions = self.dispositions().await?;
        let transcript = match (&call.transcription_id, self.transcripts) {
            (Some(id), true) => self.transcript(id).await.unwrap_or_else(|e| {
                // A transcript must never hold up the recording.
                tracing::warn!(call = %call.id, error = %e, "hubspot transcript not fetched");
                None
            }),
            _ => None,
        };
        let inputs = CallInputs {
            call: call.json.clone(),
            owner,
            dispositions,
            transcript,
        };
        let rules = self.ctx.rules.clone();
        let decision = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_hubspot()
                    .call_map_call(s, &inputs, &rules, via)
            })
            .await;
        Ok(decide(&self.ctx, SOURCE, &call.id, &version, via, decision).await)
    }

    async fn owner(&self, owner_id: &str) -> Result<Option<String>, SourceError> {
        let now = self.ctx.clock.now_ms();
        if let Some(cached) = self.owners.get(owner_id, now) {
            return Ok(cached);
        }
        let Some(api) = &self.api else {
            return Ok(None);
        };
        let id = owner_id.to_string();
        let request = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_hubspot().call_owner_request(s, &id))
            .await?;
        let body = api.fetch(&request).await?;
        self.owners.put(owner_id, body.clone(), now);
        Ok(body)
    }

    async fn dispositions(&self) -> Result<Option<String>, SourceError> {
        let now = self.ctx.clock.now_ms();
        if let Some(cached) = self.dispositions.get("all", now) {
            return Ok(cached);
        }
        let Some(api) = &self.api else {
            return Ok(None);
        };
        let request = self
            .ctx
            .plugin
            .call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
            .await?;
        // The plugin knows HubSpot's default labels; a portal whose
        // dispositions cannot be read still maps.
        let body = api.fetch(&request).await.unwrap_or(None);
        self.dispositions.put("all", body.clone(), now);
        Ok(body)
    }

    async fn transcript(&self, transcription_id: &str) -> Result<Option<String>, SourceError> {
        let Some(api) = &self.api else {
            return Ok(None);
        };
        let id = transcription_id.to_string();
        let request = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_hubspot().call_transcript_request(s, &id))
            .await?;
        api.fetch(&request).await
    }

    /// Handles a stored webhook or workflow delivery: fetches each call it
    /// names and maps it.
    pub async fn handle_webhook(
        &self,
        body: &str,
        via: SyncMethod,
    ) -> Result<IntakeReport, SourceError> {
        let body = body.to_string();
        let ids = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_hubspot().call_read_webhook(s, &body))
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        let api = self
            .api
            .as_ref()
            .ok_or(SourceError::NoCredentials(SOURCE))?;
        let mut items = Vec::new();
        for id in ids {
            let request = self
                .ctx
                .plugin
                .call(move |b, s| b.kendo_bridge_hubspot().call_call_request(s, &id))
                .await?;
            let Some(body) = api.fetch(&request).await? else {
                continue;
            };
            let listed = self
                .ctx
                .plugin
                .call(move |b, s| b.kendo_bridge_hubspot().call_read_call(s, &body))
                .await?
                .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
            items.push(self.map(&listed, via).await?);
        }
        Ok(self.ctx.intake(items, None).await?)
    }
}

//! Salesloft: incremental polling of call activities, users, transcripts,
//! and `call_created` / `call_updated` webhooks.

use serde::{Deserialize, Serialize};

use super::{Context, CycleReport, LookupCache, Page, SourceApi, SourceError, decide, read_pages};
use crate::plugin::salesloft::{CallInputs, Cursor, ListedCall, Listing, WebhookEvent};
use crate::plugin::types::SyncMethod;
use crate::store::{IntakeReport, Millis};
use crate::timefmt;

/// The ledger's name for this source.
pub const SOURCE: &str = "salesloft";
/// The checkpoint of the transcript sweep.
const TRANSCRIPTS: &str = "salesloft-transcripts";

/// The cursor as persisted in the checkpoint table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredCursor {
    pub updated_since: Option<String>,
    pub page: u32,
}

impl From<&Cursor> for StoredCursor {
    fn from(c: &Cursor) -> Self {
        StoredCursor {
            updated_since: c.updated_since.clone(),
            page: c.page,
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

/// A cursor at the first page of calls updated since `since_ms`.
fn cursor_since(since_ms: Millis) -> Cursor {
    Cursor {
        updated_since: Some(timefmt::micros(since_ms)),
        page: 1,
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
        )?;
        Ok(Some(Salesloft {
            ctx: ctx.clone(),
            api,
            users: LookupCache::default(),
            transcripts: cfg.transcripts,
            initial_lookback_ms: cfg.initial_lookback.as_millis() as Millis,
        }))
    }

    /// Whether polling is possible (an API key is configured).
    pub fn can_poll(&self) -> bool {
        self.api.is_some()
    }

    /// One polling cycle from the stored checkpoint (or the initial
    /// look-back), until Salesloft has nothing newer.
    pub async fn poll(
        &self,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        let start = match self.ctx.stored_cursor::<StoredCursor>(SOURCE).await? {
            Some(c) => c.into(),
            None => cursor_since(
                self.ctx
                    .first_look_back(SOURCE, self.initial_lookback_ms)
                    .await?,
            ),
        };
        if self.transcripts {
            self.sweep_transcripts().await?;
        }
        self.read_calls(start, SOURCE, on_page).await
    }

    /// Reads every call updated since `since` (a backfill), moving its own
    /// checkpoint so the regular one is untouched.
    pub async fn backfill(
        &self,
        since_ms: Millis,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        self.read_calls(cursor_since(since_ms), "salesloft-backfill", on_page)
            .await
    }

    async fn read_calls(
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
            |at| self.calls_page(api, at),
            on_page,
        )
        .await
    }

    async fn calls_page(&self, api: &SourceApi, at: Cursor) -> Result<Page<Cursor>, SourceError> {
        let body = self.list(api, Listing::Calls, &at).await?;
        let page = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_salesloft().call_read_page(s, &at, &body))
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        let mut items = Vec::with_capacity(page.calls.len());
        for call in &page.calls {
            items.push(self.map(call, SyncMethod::Polling, None).await?);
        }
        Ok(Page {
            items,
            records: page.calls.len() as u32,
            next: page.next,
            more: page.more,
        })
    }

    /// Reads the page of a list the cursor points at.
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

    /// Maps one listed call into an intake, fetching its user (cached) and
    /// any transcript already collected. A call already sent or queued at
    /// this version is not mapped again: that saves the user lookup.
    ///
    /// `version` overrides the call's `updated_at` as its ledger version
    /// (a transcript that arrived later makes a newer version of the same
    /// record).
    async fn map(
        &self,
        call: &ListedCall,
        via: SyncMethod,
        version: Option<String>,
    ) -> Result<crate::store::Intake, SourceError> {
        let id = call.id.clone();
        let version = version.unwrap_or_else(|| call.updated_at.clone());
        let (settled, held) = {
            let (id, version) = (id.clone(), version.clone());
            self.ctx
                .store
                .run(move |s| Ok((s.is_settled(SOURCE, &id, &version)?, s.held(SOURCE, &id)?)))
                .await?
        };
        if settled {
            // Already sent or in flight, or nothing newer than what was
            // decided: record the sighting without mapping (which would
            // spend a user lookup).
            return Ok(self.ctx.seen(SOURCE, &id, &version, via));
        }
        let user = match &call.user_id {
            Some(user_id) => self.user(user_id).await?,
            None => None,
        };
        let call_data_record = self.call_data_record(&call.id).await;
        let sentences: Vec<String> = held
            .and_then(|h| h.transcript)
            .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
            .unwrap_or_default();
        let inputs = CallInputs {
            call: call.json.clone(),
            user,
            sentences,
            call_data_record,
        };
        let rules = self.ctx.rules.clone();
        let decision = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_map_call(s, &inputs, &rules, via)
            })
            .await;
        let intake = decide(&self.ctx, SOURCE, &call.id, &version, via, decision).await;
        let fixable = matches!(&intake.outcome, crate::store::Outcome::Skip { code, .. }
            if super::redecide::FIXABLE_SKIPS.contains(&code.as_str()));
        if fixable
            || (self.transcripts && !matches!(intake.outcome, crate::store::Outcome::Send { .. }))
        {
            // A transcript may still turn this call into a send, and a
            // change of configuration may fix a skip; keep the record so it
            // can be decided again without another request.
            let (id, json, now) = (call.id.clone(), call.json.clone(), self.ctx.clock.now_ms());
            self.ctx
                .store
                .run(move |s| s.hold(SOURCE, &id, Some(&json), None, now).map(|_| ()))
                .await?;
        }
        Ok(intake)
    }

    /// The call data record, for the direction the call record lacks. Best
    /// effort: without it the call is still sent, titled by disposition.
    async fn call_data_record(&self, call_id: &str) -> Option<String> {
        let api = self.api.as_ref()?;
        let id = call_id.to_string();
        let request = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_call_data_record_request(s, &id)
            })
            .await
            .ok()?;
        match api.fetch(&request).await {
            Ok(body) => body,
            Err(e) => {
                tracing::debug!(call = call_id, error = %e, "no call data record; direction unknown");
                None
            }
        }
    }

    async fn user(&self, user_id: &str) -> Result<Option<String>, SourceError> {
        let now = self.ctx.clock.now_ms();
        if let Some(cached) = self.users.get(user_id, now) {
            return Ok(cached);
        }
        let Some(api) = &self.api else {
            // Webhook-only deployments rely on the rep directory.
            return Ok(None);
        };
        let id = user_id.to_string();
        let request = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_salesloft().call_user_request(s, &id))
            .await?;
        let body = api.fetch(&request).await?;
        self.users.put(user_id, body.clone(), now);
        Ok(body)
    }

    /// Collects transcripts that appeared since the last sweep and keeps
    /// their sentence pages by call id, for calls mapped afterwards. A call
    /// sent before its transcript appears keeps its audio-only payload:
    /// Kendo transcribes the audio itself.
    async fn sweep_transcripts(&self) -> Result<(), SourceError> {
        let api = self
            .api
            .as_ref()
            .ok_or(SourceError::NoCredentials(SOURCE))?;
        let start = match self.ctx.stored_cursor::<StoredCursor>(TRANSCRIPTS).await? {
            Some(c) => c.into(),
            None => cursor_since(
                self.ctx
                    .first_look_back(TRANSCRIPTS, self.initial_lookback_ms)
                    .await?,
            ),
        };
        read_pages::<_, StoredCursor, _>(
            &self.ctx,
            TRANSCRIPTS,
            start,
            |at| self.transcriptions_page(api, at),
            |_| {},
        )
        .await
        .map(|_| ())
    }

    /// One page of transcriptions, each collected; the page holds no calls
    /// for the ledger, only the cursor to store.
    async fn transcriptions_page(
        &self,
        api: &SourceApi,
        at: Cursor,
    ) -> Result<Page<Cursor>, SourceError> {
        let body = self.list(api, Listing::Transcriptions, &at).await?;
        let page = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_read_transcriptions(s, &at, &body)
            })
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        for t in &page.transcriptions {
            // A transcript whose chain cannot be followed is skipped: it
            // must never hold up the call's audio.
            if let Err(e) = self.collect_transcript(api, t).await {
                tracing::warn!(transcription = %t.id, error = %e, "transcript not collected");
            }
        }
        Ok(Page {
            items: Vec::new(),
            records: page.transcriptions.len() as u32,
            next: page.next,
            more: page.more,
        })
    }

    async fn collect_transcript(
        &self,
        api: &SourceApi,
        t: &crate::plugin::salesloft::ListedTranscription,
    ) -> Result<(), SourceError> {
        let Some(conversation) = t.conversation_id.clone() else {
            return Ok(());
        };
        let request = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_conversation_request(s, &conversation)
            })
            .await?;
        let Some(body) = api.fetch(&request).await? else {
            return Ok(());
        };
        let call_id = self
            .ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_salesloft().call_read_conversation(s, &body))
            .await?
            .ok()
            .flatten();
        let Some(call_id) = call_id else {
            return Ok(());
        };
        let mut pages = Vec::new();
        for page in 1..=50u32 {
            let tid = t.id.clone();
            let request = self
                .ctx
                .plugin
                .call(move |b, s| {
                    b.kendo_bridge_salesloft()
                        .call_sentences_request(s, &tid, page)
                })
                .await?;
            let Some(body) = api.fetch(&request).await? else {
                break;
            };
            let probe = body.clone();
            let more = self
                .ctx
                .plugin
                .call(move |b, s| {
                    b.kendo_bridge_salesloft()
                        .call_sentences_has_more(s, &probe)
                })
                .await?
                .unwrap_or(false);
            pages.push(body);
            if !more {
                break;
            }
        }
        let json = serde_json::to_string(&pages).unwrap_or_default();
        let now = self.ctx.clock.now_ms();
        let id = call_id.clone();
        let held = self
            .ctx
            .store
            .run(move |s| s.hold(SOURCE, &id, None, Some(&json), now))
            .await?;
        // A call already decided without its transcript (no recording, so
        // skipped as no-media) is decided again now.
        let Some(body) = held.body else {
            return Ok(());
        };
        let read = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_read_webhook(s, "call_updated", &body)
            })
            .await?;
        if let Ok(WebhookEvent::Call(call)) = read {
            let version = format!("{}+transcript", call.updated_at);
            let intake = self.map(&call, SyncMethod::Polling, Some(version)).await?;
            self.ctx.intake(vec![intake], None).await?;
        }
        Ok(())
    }

    /// Decides a call again from the record kept for it (see
    /// [`super::redecide`]). `None` when none was kept.
    pub async fn redecide(
        &self,
        id: &str,
        version: String,
    ) -> Result<Option<crate::store::Intake>, SourceError> {
        let key = id.to_string();
        let held = self.ctx.store.run(move |s| s.held(SOURCE, &key)).await?;
        let Some(body) = held.and_then(|h| h.body) else {
            return Ok(None);
        };
        // The kept record is the call as listed, the shape a `call_updated`
        // delivery carries.
        let read = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_read_webhook(s, "call_updated", &body)
            })
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        match read {
            WebhookEvent::Call(call) => Ok(Some(
                self.map(&call, SyncMethod::Polling, Some(version)).await?,
            )),
            WebhookEvent::Ignore(_) => Ok(None),
        }
    }

    /// Handles a stored `call_created` / `call_updated` delivery.
    pub async fn handle_webhook(
        &self,
        event: &str,
        body: &str,
    ) -> Result<IntakeReport, SourceError> {
        let (event, body) = (event.to_string(), body.to_string());
        let read = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_read_webhook(s, &event, &body)
            })
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        match read {
            WebhookEvent::Call(call) => {
                let intake = self.map(&call, SyncMethod::Webhook, None).await?;
                Ok(self.ctx.intake(vec![intake], None).await?)
            }
            WebhookEvent::Ignore(reason) => {
                tracing::debug!(%reason, "salesloft webhook ignored");
                Ok(IntakeReport::default())
            }
        }
    }
}

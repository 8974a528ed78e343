//! Salesloft: incremental polling of call activities, users, transcripts,
//! and `call_created` / `call_updated` webhooks.

use std::sync::{Arc, Mutex};

use kendo_bridge_core::sources::budget::ShareBudget;
use kendo_bridge_core::sources::salesloft::{CallRead, Need};

use super::{
    Context, CycleReport, LookupCache, Page, RateBudget, SourceApi, SourceError, decide,
    read_pages, sync_method_name,
};
use crate::plugin::salesloft::{CallInputs, CallPage, Cursor, ListedCall, Listing, WebhookEvent};
use crate::plugin::types::{Decision, RejectedRecord, SyncMethod};
use crate::store::{CallKey, Intake, IntakeReport, Millis, Outcome};

pub use kendo_bridge_core::sources::salesloft::{AWAITING_CALL_DATA_RECORD, SOURCE};
use kendo_bridge_core::sources::salesloft::{
    CALL_DATA_RECORD_TTL_MS, CALL_DATA_RECORDS, TRANSCRIPTS, TranscriptNeed, TranscriptRead,
    direction_wait_detail, keeps_record, version_with_record, version_with_transcript,
    waiting_for_record, waits_for_direction, waits_over,
};

/// The checkpoint of the call data records read for a backfill.
const BACKFILL_CALL_DATA_RECORDS: &str = "salesloft-backfill-call-data-records";

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
            // Transcripts are best effort: a failing sweep (403 without
            // the scope or without Conversations, 5xx) must never stop call
            // polling or hold up the audio URL.
            let swept = self.sweep_transcripts().await;
            self.health("transcripts", swept).await?;
        }
        let start_records = match self
            .ctx
            .stored_cursor::<StoredCursor>(CALL_DATA_RECORDS)
            .await?
        {
            Some(c) => c.into(),
            None => cursor_since(self.ctx.clock.now_ms() - self.initial_lookback_ms),
        };
        // Before the calls, so that calls logged with their record are
        // joined in the same cycle.
        let swept = self
            .sweep_call_data_records(CALL_DATA_RECORDS, start_records)
            .await;
        self.health("call_data_records", swept).await?;
        let cycle = self.read_calls(start, SOURCE, on_page).await?;
        self.release_expired_waits().await?;
        Ok(cycle)
    }

    /// Records how a best-effort part of polling did, for `status`: a new
    /// problem is logged once at warn, repeats at debug.
    async fn health(
        &self,
        topic: &'static str,
        outcome: Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        match outcome {
            Ok(()) => self.ctx.health_ok(SOURCE, topic).await?,
            // Logged by `health_problem`; calls are still polled.
            Err(e) => {
                self.ctx
                    .health_problem(SOURCE, topic, &e.to_string())
                    .await?
            }
        }
        Ok(())
    }

    /// Reads every call updated since `since` (a backfill), moving its own
    /// checkpoint so the regular one is untouched.
    pub async fn backfill(
        &self,
        since_ms: Millis,
        on_page: impl FnMut(&CycleReport),
    ) -> Result<CycleReport, SourceError> {
        let swept = self
            .sweep_call_data_records(BACKFILL_CALL_DATA_RECORDS, cursor_since(since_ms))
            .await;
        self.health("call_data_records", swept).await?;
        self.read_calls(cursor_since(since_ms), "salesloft-backfill", on_page)
            .await
    }

    /// Reads the call data records changed since `start` and keeps each by
    /// its call, so calls are joined to their direction without a request
    /// per call. A call already waiting for its record is decided again in
    /// the same transaction that moves `checkpoint`. A backfill starts from
    /// its own date, like its calls.
    async fn sweep_call_data_records(
        &self,
        checkpoint: &'static str,
        start: Cursor,
    ) -> Result<(), SourceError> {
        let api = self
            .api
            .as_ref()
            .ok_or(SourceError::NoCredentials(SOURCE))?;
        let before = self.ctx.clock.now_ms() - CALL_DATA_RECORD_TTL_MS;
        self.ctx
            .store
            .run(move |s| s.prune_call_data_records(before).map(|_| ()))
            .await?;
        read_pages::<_, StoredCursor, _>(
            &self.ctx,
            checkpoint,
            start,
            |at| self.call_data_records_page(api, at),
            |_| {},
        )
        .await
        .map(|_| ())
    }

    async fn call_data_records_page(
        &self,
        api: &SourceApi,
        at: Cursor,
    ) -> Result<Page<Cursor>, SourceError> {
        let body = self.list(api, Listing::CallDataRecords, &at).await?;
        let page = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_read_call_data_records(s, &at, &body)
            })
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))?;
        for rejected in &page.rejected {
            // A record that cannot be read lends no direction; its call
            // waits, then goes without one.
            tracing::warn!(
                id = rejected.id.as_deref().unwrap_or("?"),
                at = %rejected.at,
                error = %rejected.error.explain(),
                "salesloft call data record not readable"
            );
        }
        let mut items = Vec::new();
        for record in &page.records {
            let Some(call_id) = record.call_id.clone() else {
                continue;
            };
            let (id, json, updated, now) = (
                call_id.clone(),
                record.json.clone(),
                record.updated_at.clone(),
                self.ctx.clock.now_ms(),
            );
            self.ctx
                .store
                .run(move |s| s.put_call_data_record(SOURCE, &id, &json, &updated, now))
                .await?;
            if let Some(intake) = self.release(&call_id).await? {
                items.push(intake);
            }
        }
        Ok(Page {
            items,
            records: (page.records.len() + page.rejected.len()) as u32,
            next: page.next,
            more: page.more,
        })
    }

    /// Decides again a call that waits for its call data record: with the
    /// record when it has been read, without it when the wait is over.
    /// None when the call is not waiting for one.
    async fn release(&self, call_id: &str) -> Result<Option<Intake>, SourceError> {
        let id = call_id.to_string();
        let waiting = self
            .ctx
            .store
            .run(move |s| Ok(waiting_for_record(s.database(), &id)?))
            .await?;
        let Some((sync_method, body)) = waiting else {
            return Ok(None);
        };
        let read = self
            .ctx
            .plugin
            .call(move |b, s| {
                b.kendo_bridge_salesloft()
                    .call_read_webhook(s, "call_updated", &body)
            })
            .await?;
        let Ok(WebhookEvent::Call(call)) = read else {
            return Ok(None);
        };
        let via = match sync_method.as_str() {
            kendo_bridge_core::sources::via::WEBHOOK => SyncMethod::Webhook,
            _ => SyncMethod::Polling,
        };
        let (id, updated_at) = (call.id.clone(), call.updated_at.clone());
        let version = self
            .ctx
            .store
            .run(move |s| Ok(version_with_record(s.database(), &id, &updated_at)?))
            .await?;
        Ok(Some(self.map(&call, via, Some(version), false).await?))
    }

    /// Sends without a direction the calls whose call data record did not
    /// arrive within `direction_wait`.
    async fn release_expired_waits(&self) -> Result<(), SourceError> {
        let (wait, now) = (self.direction_wait_ms, self.ctx.clock.now_ms());
        let waiting = self
            .ctx
            .store
            .run(move |s| Ok(waits_over(s.database(), wait, now)?))
            .await?;
        let mut items = Vec::new();
        for call_id in waiting {
            tracing::info!(call = %call_id, "salesloft call data record did not arrive; sent without a direction");
            if let Some(intake) = self.release(&call_id).await? {
                items.push(intake);
            }
        }
        if !items.is_empty() {
            self.ctx.intake(items, None).await?;
        }
        Ok(())
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

    /// One page of calls as Salesloft lists it and the plugin reads it.
    async fn read_calls_page(&self, api: &SourceApi, at: Cursor) -> Result<CallPage, SourceError> {
        let body = self.list(api, Listing::Calls, &at).await?;
        self.ctx
            .plugin
            .call(move |b, s| b.kendo_bridge_salesloft().call_read_page(s, &at, &body))
            .await?
            .map_err(|e| SourceError::unreadable(SOURCE, &e))
    }

    async fn calls_page(&self, api: &SourceApi, at: Cursor) -> Result<Page<Cursor>, SourceError> {
        let position = at.clone();
        let page = self.read_calls_page(api, at).await?;
        let mut items = Vec::with_capacity(page.calls.len() + page.rejected.len());
        for call in &page.calls {
            items.push(self.map(call, SyncMethod::Polling, None, true).await?);
        }
        for (index, rejected) in page.rejected.iter().enumerate() {
            items.push(self.rejected(&position, index, rejected));
        }
        Ok(Page {
            items,
            records: (page.calls.len() + page.rejected.len()) as u32,
            next: page.next,
            more: page.more,
        })
    }

    /// A listed call that could not be read, as a failed ledger row with
    /// the reason, under its id (or a synthetic one naming where it was).
    fn rejected(&self, at: &Cursor, index: usize, rejected: &RejectedRecord) -> Intake {
        let position = format!(
            "{}-{}",
            at.updated_since.as_deref().unwrap_or("start"),
            at.page,
        );
        super::rejected(&self.ctx, SOURCE, &position, index, 1, rejected)
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
    /// record). With `may_wait`, a call that would be sent without a
    /// direction waits for its call data record instead.
    async fn map(
        &self,
        call: &ListedCall,
        via: SyncMethod,
        version: Option<String>,
        may_wait: bool,
    ) -> Result<Intake, SourceError> {
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
        let user = self.user(call.user_id.as_deref()).await?;
        let call_data_record = {
            let id = id.clone();
            self.ctx
                .store
                .run(move |s| s.call_data_record(SOURCE, &id))
                .await?
        };
        let has_record = call_data_record.is_some();
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
        let sent_without_direction =
            matches!(&decision, Ok(Ok(Decision::Send(c))) if c.direction.is_none());
        if waits_for_direction(
            may_wait,
            has_record,
            self.direction_wait_ms,
            sent_without_direction,
        ) {
            // Its call data record, read with the next pages of records,
            // gives the direction; `release` decides it again then, or
            // without one once `direction_wait` is over.
            let (held_id, json, now) = (id.clone(), call.json.clone(), self.ctx.clock.now_ms());
            self.ctx
                .store
                .run(move |s| s.hold(SOURCE, &held_id, Some(&json), None, now).map(|_| ()))
                .await?;
            return Ok(Intake {
                key: CallKey {
                    source: SOURCE.to_string(),
                    source_id: id,
                    team: self.ctx.config.route(SOURCE, None).to_string(),
                },
                version,
                sync_method: sync_method_name(via).to_string(),
                outcome: Outcome::Wait {
                    code: AWAITING_CALL_DATA_RECORD.into(),
                    detail: direction_wait_detail(&call.id, self.direction_wait_ms),
                },
            });
        }
        let intake = decide(&self.ctx, SOURCE, &call.id, &version, via, decision).await;
        if keeps_record(&intake.outcome, self.transcripts) {
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

    /// The call's user record, read (and cached) as the core's workflow
    /// says; without an API key the rep comes from the rep directory.
    async fn user(&self, user_id: Option<&str>) -> Result<Option<String>, SourceError> {
        let now = self.ctx.clock.now_ms();
        let mut read = self.users.with(|users| {
            CallRead::new(user_id.map(str::to_string), self.api.is_some(), users, now)
        });
        loop {
            match read.next() {
                Need::Map { user } => {
                    self.users.with(|users| read.remember(users, now));
                    return Ok(user);
                }
                Need::User { user_id } => {
                    let request = self
                        .ctx
                        .plugin
                        .call(move |b, s| b.kendo_bridge_salesloft().call_user_request(s, &user_id))
                        .await?;
                    let answer = match &self.api {
                        Some(api) => api.fetch(&request).await,
                        None => Err(SourceError::NoCredentials(SOURCE)),
                    };
                    read.fetched(answer)?;
                }
            }
        }
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

    /// Follows one transcription to its call, as the core's workflow says,
    /// and keeps its sentences for that call.
    async fn collect_transcript(
        &self,
        api: &SourceApi,
        t: &crate::plugin::salesloft::ListedTranscription,
    ) -> Result<(), SourceError> {
        let mut read = TranscriptRead::new(t.id.clone(), t.conversation_id.clone());
        let (call_id, pages) = loop {
            match read.next() {
                TranscriptNeed::Nothing => return Ok(()),
                TranscriptNeed::Conversation { conversation_id } => {
                    let request = self
                        .ctx
                        .plugin
                        .call(move |b, s| {
                            b.kendo_bridge_salesloft()
                                .call_conversation_request(s, &conversation_id)
                        })
                        .await?;
                    let call_id = match api.fetch(&request).await? {
                        Some(body) => self
                            .ctx
                            .plugin
                            .call(move |b, s| {
                                b.kendo_bridge_salesloft().call_read_conversation(s, &body)
                            })
                            .await?
                            .ok()
                            .flatten(),
                        None => None,
                    };
                    read.conversation(call_id);
                }
                TranscriptNeed::Sentences {
                    transcription_id,
                    page,
                } => {
                    let request = self
                        .ctx
                        .plugin
                        .call(move |b, s| {
                            b.kendo_bridge_salesloft().call_sentences_request(
                                s,
                                &transcription_id,
                                page,
                            )
                        })
                        .await?;
                    let body = api.fetch(&request).await?;
                    let more = match body.clone() {
                        Some(probe) => self
                            .ctx
                            .plugin
                            .call(move |b, s| {
                                b.kendo_bridge_salesloft()
                                    .call_sentences_has_more(s, &probe)
                            })
                            .await?
                            .unwrap_or(false),
                        None => false,
                    };
                    read.sentences(body, more);
                }
                TranscriptNeed::Hold { call_id, pages } => break (call_id, pages),
            }
        };
        let now = self.ctx.clock.now_ms();
        let id = call_id.clone();
        let held = self
            .ctx
            .store
            .run(move |s| s.hold(SOURCE, &id, None, Some(&pages), now))
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
            let (id, updated_at) = (call.id.clone(), call.updated_at.clone());
            let version = self
                .ctx
                .store
                .run(move |s| Ok(version_with_transcript(s.database(), &id, &updated_at)?))
                .await?;
            let intake = self
                .map(&call, SyncMethod::Polling, Some(version), true)
                .await?;
            self.ctx.intake(vec![intake], None).await?;
        }
        Ok(())
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
                self.map(&call, SyncMethod::Polling, Some(version), false)
                    .await?,
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
                let intake = self.map(&call, SyncMethod::Webhook, None, true).await?;
                Ok(self.ctx.intake(vec![intake], None).await?)
            }
            WebhookEvent::Ignore(reason) => {
                tracing::debug!(%reason, "salesloft webhook ignored");
                Ok(IntakeReport::default())
            }
        }
    }
}

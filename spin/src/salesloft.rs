//! Salesloft on Spin, as the host does it, by the core's workflow
//! (`kendo_bridge_core::sources::salesloft`): webhooks (`call_created`,
//! `call_updated`) and, when `salesloft_poll` is `true`, on `POST /tick`
//! the call data records (which give a call its direction) and then the
//! calls list, each from the host's checkpoint (same rows, same cursor
//! JSON, the same first look-back of a day). Each call's user is read and
//! cached; without `salesloft_api_key` the rep comes from the rep directory
//! alone. A finished call whose record has not been read waits for it up
//! to `salesloft_direction_wait_seconds` (the host's `direction_wait`,
//! 300 s), then goes without a direction.
//!
//! With `salesloft_transcripts`, a tick first collects new transcripts
//! (the core's `TranscriptRead`: the conversation names the call, then the
//! sentence pages), at most [`TRANSCRIPT_REQUESTS`] started a tick, the
//! checkpoint keeping how far into a page it got.
//!
//! What the host does and this does not: the team's cost-point budget, for
//! which a tick here makes at most [`REQUESTS_PER_TICK`] requests to the
//! calls and records instead (a third of them for the records).

use anyhow::{Context as _, Result};
use kendo_bridge_core::decision::InputProblem;
use kendo_bridge_core::ledger::inbox::InboxEntry;
use kendo_bridge_core::ledger::intake::{self, Intake, Outcome};
use kendo_bridge_core::ledger::{self, CallKey, checkpoint, hold, records};
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::sources::Health;
use kendo_bridge_core::sources::Lookups;
use kendo_bridge_core::sources::budget::{SALESLOFT_TEAM_POINTS, leave_to_others};
use kendo_bridge_core::sources::poll::{After, Cycle, read_cursor};
use kendo_bridge_core::sources::salesloft::{
    AWAITING_CALL_DATA_RECORD, CALL_DATA_RECORD_TTL_MS, CALL_DATA_RECORDS, CallRead, Need, SOURCE,
    StoredCursor, TRANSCRIPTS, TranscriptNeed, TranscriptRead, direction_wait_detail, keeps_record,
    start, version_with_record, version_with_transcript, waiting_for_record, waits_for_direction,
    waits_over,
};
use spin_sdk::http::{Method, Request, Response};

use crate::delivery::{Db, TEAM};
use crate::plugin::kendo::bridge::salesloft::{
    self as salesloft_api, CallInputs, Cursor, ListedCall, ListedTranscription, Listing,
    WebhookEvent,
};
use crate::plugin::kendo::bridge::types::{Decision, HttpRequest, SyncMethod};
use crate::{Failed, Processed, now_ms, outcome_of, rules, settle_outcome, variable};

/// Requests a tick makes at most: list pages and user lookups. A tick
/// each minute then spends at most a tenth of Salesloft's 600 cost points
/// a minute, which the team's other integrations share.
pub const REQUESTS_PER_TICK: u32 = Policy::DEFAULT.tick.salesloft_requests;

/// Requests the transcript sweep starts within a tick; a transcript under
/// way is finished (its sentence pages, up to the core's
/// `MAX_SENTENCE_PAGES`), so a tick may go past it by that much.
pub const TRANSCRIPT_REQUESTS: u32 = Policy::DEFAULT.tick.salesloft_transcript_requests;

/// Where a list's cycle starts: the stored cursor (the host's shape, so
/// either driver goes on from the other), or `first_since` and page 1 when
/// there is none or it cannot be read (then said in the log, as the host
/// does), with how many entries of that page are done.
fn start_at(
    stored: Option<&str>,
    first_since: impl FnOnce() -> Result<i64>,
) -> Result<(Cursor, usize)> {
    let (cursor, unreadable) = read_cursor::<StoredCursor>(stored);
    if let Some(why) = unreadable {
        crate::log::line(
            "cursor-unreadable",
            &[("source", "salesloft"), ("why", &why)],
        );
    }
    Ok(match cursor {
        Some(c) => (
            Cursor {
                updated_since: c.updated_since,
                page: c.page.max(1),
            },
            c.done.unwrap_or(0),
        ),
        None => {
            let (updated_since, page) = start(first_since()?);
            (
                Cursor {
                    updated_since: Some(updated_since),
                    page,
                },
                0,
            )
        }
    })
}

/// The checkpoint JSON of a list at `at` with `done` entries of its page
/// handled (the host's shape).
fn stored_json(at: &Cursor, done: Option<usize>) -> serde_json::Result<String> {
    serde_json::to_string(&StoredCursor {
        updated_since: at.updated_since.clone(),
        page: at.page,
        done,
    })
}

/// Whether the transcript sweep is on (`salesloft_transcripts = "true"`,
/// off by default as on the host; with `salesloft_poll`).
fn transcripts_on() -> bool {
    variable("salesloft_transcripts").is_some_and(|v| v == "true")
}

/// Collects transcripts that appeared since the sweep's checkpoint (at
/// most `budget` requests started) and keeps each for its call; a call
/// already decided without it is decided again with it.
async fn sweep_transcripts(db: &Db, reads: &mut Reads, budget: u32) -> Result<()> {
    let now = now_ms() as i64;
    let (mut cycle, stored) = Cycle::start(db, TRANSCRIPTS, u32::MAX)?;
    let (mut at, mut done) = start_at(stored.as_deref(), || {
        Ok(checkpoint::first_look_back(
            db,
            TRANSCRIPTS,
            now - crate::policy::first_look_back_ms(),
        )?)
    })?;
    let limit = reads.requests + budget;
    while !reads.spent(limit) {
        let request = salesloft_api::next_request(Listing::Transcriptions, &at);
        let body = reads
            .fetch(&request)
            .await?
            .context("Salesloft's transcriptions answered 404: check salesloft_api_url")?;
        let page = salesloft_api::read_transcriptions(&at, &body).map_err(|e| {
            anyhow::anyhow!(
                "Salesloft's transcriptions page cannot be read: {}",
                InputProblem::from(&e)
            )
        })?;
        for (i, t) in page.transcriptions.iter().enumerate().skip(done) {
            if reads.spent(limit) {
                // The rest of this page waits for the next tick.
                cycle.page(db, &[], stored_json(&at, Some(i))?, true, now_ms() as i64)?;
                return Ok(());
            }
            // A transcript whose chain cannot be followed is skipped: it
            // must never hold up the call's audio.
            if let Err(e) = collect_transcript(db, reads, t).await {
                crate::log::line(
                    "transcript-not-collected",
                    &[
                        ("source", "salesloft"),
                        ("transcription", &t.id),
                        ("error", &format!("{e:#}")),
                    ],
                );
            }
        }
        match cycle
            .page(
                db,
                &[],
                stored_json(&page.next, None)?,
                page.more,
                now_ms() as i64,
            )?
            .1
        {
            After::Next => (at, done) = (page.next, 0),
            After::Done | After::Moved => break,
        }
    }
    Ok(())
}

/// Follows one transcription to its call, as the core's workflow says,
/// keeps its sentences for that call, and decides again a call whose
/// record is kept.
async fn collect_transcript(db: &Db, reads: &mut Reads, t: &ListedTranscription) -> Result<()> {
    let mut read = TranscriptRead::new(t.id.clone(), t.conversation_id.clone());
    let (call_id, pages) = loop {
        match read.next() {
            TranscriptNeed::Nothing => return Ok(()),
            TranscriptNeed::Conversation { conversation_id } => {
                let request = salesloft_api::conversation_request(&conversation_id);
                let call_id = match reads.fetch(&request).await? {
                    Some(body) => salesloft_api::read_conversation(&body).ok().flatten(),
                    None => None,
                };
                read.conversation(call_id);
            }
            TranscriptNeed::Sentences {
                transcription_id,
                page,
            } => {
                let request = salesloft_api::sentences_request(&transcription_id, page);
                let body = reads.fetch(&request).await?;
                let more = body
                    .as_deref()
                    .is_some_and(|b| salesloft_api::sentences_has_more(b).unwrap_or(false));
                read.sentences(body, more);
            }
            TranscriptNeed::Hold { call_id, pages } => break (call_id, pages),
        }
    };
    let held = hold::hold(db, SOURCE, &call_id, None, Some(&pages), now_ms() as i64)?;
    let Some(body) = held.body else {
        return Ok(());
    };
    let Ok(WebhookEvent::Call(call)) = salesloft_api::read_webhook("call_updated", &body) else {
        return Ok(());
    };
    let user = reads.user(call.user_id.clone()).await?;
    let version = version_with_transcript(db, &call.id, &call.updated_at)?;
    decide(
        db,
        &call.id,
        &call.json,
        user,
        &version,
        SyncMethod::Polling,
        true,
    )
    .await?;
    Ok(())
}

/// Processes a stored `call_created` / `call_updated` delivery.
pub async fn process(db: &Db, entry: &InboxEntry, body: &str) -> Result<Processed> {
    let event = entry.event.as_deref().unwrap_or_default();
    let call = match salesloft_api::read_webhook(event, body) {
        Ok(WebhookEvent::Call(call)) => call,
        Ok(WebhookEvent::Ignore(reason)) => {
            return Ok(Processed::Answer(serde_json::json!({ "ignored": reason })));
        }
        Err(e) => return Ok(Processed::Unreadable(InputProblem::from(&e).to_string())),
    };
    let mut reads = Reads::new();
    let user = reads.user(call.user_id.clone()).await?;
    // The call's `updated_at` versions it, as on the host and in a poll.
    Ok(Processed::Answer(
        decide(
            db,
            &call.id,
            &call.json,
            user,
            &call.updated_at,
            SyncMethod::Webhook,
            true,
        )
        .await?,
    ))
}

/// What a poll read.
pub struct Polled {
    pub pages: usize,
    pub calls: usize,
    pub rejected: usize,
    /// The tick's request budget ran out before Salesloft had nothing newer.
    pub budget_spent: bool,
}

/// Reads Salesloft's calls list from the checkpoint, a few pages a tick;
/// the checkpoint moves after each page read whole.
pub async fn poll(db: &Db) -> Result<Polled> {
    let now = now_ms() as i64;
    // The core's cycle: each page's decisions and the checkpoint moved past
    // it together, moved on only from where this tick found it.
    let (mut cycle, stored) = Cycle::start(db, SOURCE, u32::MAX)?;
    let (mut at, _) = start_at(stored.as_deref(), || {
        Ok(checkpoint::first_look_back(
            db,
            SOURCE,
            now - crate::policy::first_look_back_ms(),
        )?)
    })?;
    let mut reads = Reads::new();
    if transcripts_on() {
        // Best effort, as on the host: a failing sweep (403 without the
        // scope, a 5xx) never stops call polling or holds up the audio.
        let swept = sweep_transcripts(db, &mut reads, TRANSCRIPT_REQUESTS).await;
        let health = match &swept {
            Ok(()) => Health::Ok("transcripts"),
            Err(e) => Health::Problem("transcripts", format!("{e:#}")),
        };
        ledger::health::record(db, SOURCE, &health, now_ms() as i64)?;
    }
    // Before the calls, so a call listed with its record is joined at once.
    // Best effort, as on the host: a failing read of the records shows in
    // `status` and the calls are still polled (a call waits for its record
    // a bounded time, then goes without a direction).
    let swept = sweep_records(db, &mut reads, REQUESTS_PER_TICK / 3).await;
    let health = match &swept {
        Ok(()) => Health::Ok("call_data_records"),
        Err(e) => Health::Problem("call_data_records", format!("{e:#}")),
    };
    ledger::health::record(db, SOURCE, &health, now_ms() as i64)?;
    let mut polled = Polled {
        pages: 0,
        calls: 0,
        rejected: 0,
        budget_spent: false,
    };
    loop {
        if reads.spent(REQUESTS_PER_TICK) {
            polled.budget_spent = true;
            break;
        }
        let request = salesloft_api::next_request(Listing::Calls, &at);
        let body = reads
            .fetch(&request)
            .await?
            .context("Salesloft's calls list answered 404: check salesloft_api_url")?;
        let page = salesloft_api::read_page(&at, &body).map_err(|e| {
            anyhow::anyhow!(
                "Salesloft's calls page cannot be read: {}",
                InputProblem::from(&e)
            )
        })?;
        for call in &page.calls {
            if reads.spent(REQUESTS_PER_TICK) {
                // The page is read again next tick; the calls decided now
                // are settled then and cost no lookup.
                polled.budget_spent = true;
                return Ok(polled);
            }
            decide_listed(db, &mut reads, call).await?;
        }
        let position = format!(
            "{}-{}",
            at.updated_since.as_deref().unwrap_or("start"),
            at.page
        );
        let failed = crate::rejected_rows(SOURCE, &position, 1, &page.rejected);
        polled.pages += 1;
        polled.calls += page.calls.len();
        polled.rejected += page.rejected.len();
        // The rejected records and the cursor past them, together.
        let next = stored_json(&page.next, None)?;
        match cycle.page(db, &failed, next, page.more, now_ms() as i64)?.1 {
            After::Next => at = page.next,
            // Done, or another instance polls too and goes on from there.
            After::Done | After::Moved => break,
        }
    }
    // Calls whose record did not come in time go without a direction.
    for call_id in waits_over(db, direction_wait_ms(), now_ms() as i64)? {
        release(db, &mut reads, &call_id).await?;
    }
    Ok(polled)
}

/// A listed call: a sighting when the ledger has it at this version (no
/// lookup spent), else read and decided.
async fn decide_listed(db: &Db, reads: &mut Reads, call: &ListedCall) -> Result<()> {
    if intake::is_settled(db, SOURCE, &call.id, &call.updated_at)? {
        let key = CallKey {
            source: SOURCE.into(),
            source_id: call.id.clone(),
            team: TEAM.into(),
        };
        let seen = Intake::seen(key, &call.updated_at, crate::via_name(SyncMethod::Polling));
        intake::intake(db, &[seen], None, now_ms() as i64)?;
        return Ok(());
    }
    let user = reads.user(call.user_id.clone()).await?;
    decide(
        db,
        &call.id,
        &call.json,
        user,
        &call.updated_at,
        SyncMethod::Polling,
        true,
    )
    .await?;
    Ok(())
}

/// How long a finished call waits for its call data record: only where a
/// poll reads the records (the host's `direction_wait`, 300 s).
fn direction_wait_ms() -> i64 {
    if variable("salesloft_poll").is_none_or(|v| v != "true") {
        return 0;
    }
    crate::policy::salesloft_direction_wait_ms()
}

/// Reads the call data records changed since their checkpoint (at most
/// `budget` requests) and keeps each by its call; a call waiting for its
/// record is decided again with it.
async fn sweep_records(db: &Db, reads: &mut Reads, budget: u32) -> Result<()> {
    let now = now_ms() as i64;
    records::prune(db, now - CALL_DATA_RECORD_TTL_MS)?;
    let (mut cycle, stored) = Cycle::start(db, CALL_DATA_RECORDS, u32::MAX)?;
    let (mut at, _) = start_at(stored.as_deref(), || {
        Ok(now - crate::policy::first_look_back_ms())
    })?;
    let limit = reads.requests + budget;
    while !reads.spent(limit) {
        let request = salesloft_api::next_request(Listing::CallDataRecords, &at);
        let body = reads
            .fetch(&request)
            .await?
            .context("Salesloft's call data records answered 404: check salesloft_api_url")?;
        let page = salesloft_api::read_call_data_records(&at, &body).map_err(|e| {
            anyhow::anyhow!(
                "Salesloft's call data records page cannot be read: {}",
                InputProblem::from(&e)
            )
        })?;
        // A record that cannot be read lends no direction: its call waits,
        // then goes without one.
        for record in &page.records {
            let Some(call_id) = &record.call_id else {
                continue;
            };
            records::put(
                db,
                SOURCE,
                call_id,
                &record.json,
                &record.updated_at,
                now_ms() as i64,
            )?;
            release(db, reads, call_id).await?;
        }
        let next = stored_json(&page.next, None)?;
        match cycle.page(db, &[], next, page.more, now_ms() as i64)?.1 {
            After::Next => at = page.next,
            After::Done | After::Moved => break,
        }
    }
    Ok(())
}

/// Decides again a call waiting for its call data record: with it when it
/// was read, without it once the wait is over.
async fn release(db: &Db, reads: &mut Reads, call_id: &str) -> Result<()> {
    let Some((via, body)) = waiting_for_record(db, call_id)? else {
        return Ok(());
    };
    let Ok(WebhookEvent::Call(call)) = salesloft_api::read_webhook("call_updated", &body) else {
        return Ok(());
    };
    let via = match via.as_str() {
        kendo_bridge_core::sources::via::WEBHOOK => SyncMethod::Webhook,
        _ => SyncMethod::Polling,
    };
    let user = reads.user(call.user_id.clone()).await?;
    let version = version_with_record(db, &call.id, &call.updated_at)?;
    decide(db, &call.id, &call.json, user, &version, via, false).await?;
    Ok(())
}

/// Maps a call with its user and its call data record, if read; with
/// `may_wait`, a call that would go without a direction waits for its
/// record instead (the core's rule).
async fn decide(
    db: &Db,
    id: &str,
    json: &str,
    user: Option<String>,
    version: &str,
    via: SyncMethod,
    may_wait: bool,
) -> Result<serde_json::Value> {
    let record = records::get(db, SOURCE, id)?;
    let has_record = record.is_some();
    // A transcript the sweep kept for the call (its sentence pages).
    let sentences = hold::held(db, SOURCE, id)?
        .and_then(|h| h.transcript)
        .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
        .unwrap_or_default();
    let inputs = CallInputs {
        call: json.to_string(),
        user,
        sentences,
        call_data_record: record,
    };
    let decision = salesloft_api::map_call(&inputs, &rules()?, via);
    let via_name = crate::via_name(via);
    let wait = direction_wait_ms();
    let sent_without_direction =
        matches!(&decision, Ok(Decision::Send(c)) if c.direction.is_none());
    if waits_for_direction(may_wait, has_record, wait, sent_without_direction) {
        let now = now_ms() as i64;
        hold::hold(db, SOURCE, id, Some(json), None, now)?;
        let detail = direction_wait_detail(id, wait);
        let waiting = Intake {
            key: CallKey {
                source: SOURCE.into(),
                source_id: id.into(),
                team: TEAM.into(),
            },
            version: version.into(),
            sync_method: via_name.into(),
            outcome: Outcome::Wait {
                code: AWAITING_CALL_DATA_RECORD.into(),
                detail: detail.clone(),
            },
        };
        intake::intake(db, &[waiting], None, now)?;
        return Ok(serde_json::json!({ "waiting": detail }));
    }
    let outcome = outcome_of(decision);
    // A skip a change of configuration can fix keeps its record, so the
    // host's `redecide` (or its start under new rules) decides it again;
    // with the transcript sweep on, so does anything not sent, which a
    // transcript may yet turn into a send.
    if keeps_record(&outcome, transcripts_on()) {
        hold::hold(db, SOURCE, id, Some(json), None, now_ms() as i64)?;
    }
    settle_outcome(db, SOURCE, id, version, outcome, via_name).await
}

/// The requests of one tick or delivery: counted, users cached, and the
/// team's cost points left as Salesloft last said.
struct Reads {
    users: Lookups,
    requests: u32,
    /// `x-ratelimit-remaining-minute` of the last answer.
    team_remaining: Option<u64>,
}

impl Reads {
    fn new() -> Reads {
        Reads {
            users: Lookups::default(),
            requests: 0,
            team_remaining: None,
        }
    }

    /// Whether the tick stops reading: `limit` requests made, or the team
    /// almost out of cost points, the last ones left to its other
    /// integrations (the core's rule; the next tick goes on).
    fn spent(&self, limit: u32) -> bool {
        self.requests >= limit
            || self
                .team_remaining
                .is_some_and(|r| leave_to_others(SALESLOFT_TEAM_POINTS, r))
    }

    /// The user's record, as the core's workflow reads it.
    async fn user(&mut self, user_id: Option<String>) -> Result<Option<String>> {
        let now = now_ms() as i64;
        let can_read = variable("salesloft_api_key").is_some();
        let mut read = CallRead::new(user_id, can_read, &self.users, now);
        loop {
            match read.next() {
                Need::Map { user } => {
                    read.remember(&mut self.users, now);
                    return Ok(user);
                }
                Need::User { user_id } => {
                    let request = salesloft_api::user_request(&user_id);
                    let answer = self.fetch(&request).await;
                    read.fetched(answer)?;
                }
            }
        }
    }

    /// Makes a request the plugin planned against Salesloft's API: the
    /// body of a 2xx, `None` for a 404, a [`Failed`] for anything else.
    async fn fetch(&mut self, planned: &HttpRequest) -> Result<Option<String>, Failed> {
        self.requests += 1;
        let key = variable("salesloft_api_key")
            .ok_or_else(|| Failed::lasting("variable salesloft_api_key is not set".into()))?;
        let base = crate::policy::salesloft_api_url();
        let method = match planned.method.as_str() {
            "GET" => Method::Get,
            other => {
                return Err(Failed::lasting(format!(
                    "the plugin planned HTTP method {other} for Salesloft"
                )));
            }
        };
        let mut builder = Request::builder();
        builder
            .method(method)
            .uri(format!("{}{}", base.trim_end_matches('/'), planned.path))
            .header("authorization", format!("Bearer {key}"));
        for h in &planned.headers {
            builder.header(h.name.as_str(), h.value.as_str());
        }
        let request = builder.body(Vec::new()).build();
        let failed = |message: String, status: Option<u16>, passing: bool| Failed {
            message,
            passing,
            status,
            method: planned.method.clone(),
            path: planned.path.clone(),
        };
        let response: Response = spin_sdk::http::send(request).await.map_err(|e| {
            failed(
                format!("Salesloft {} {}: {e}", planned.method, planned.path),
                None,
                true,
            )
        })?;
        if let Some(remaining) = response
            .header("x-ratelimit-remaining-minute")
            .and_then(|v| v.as_str())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            self.team_remaining = Some(remaining);
        }
        match *response.status() {
            200..=299 => Ok(Some(String::from_utf8_lossy(response.body()).into_owned())),
            404 => Ok(None),
            status => Err(failed(
                format!(
                    "Salesloft answered {status} to {} {}{}",
                    planned.method,
                    planned.path,
                    match status {
                        401 | 403 => " (check the salesloft_api_key variable and its scopes)",
                        429 => " (the team's cost points are spent; the next tick goes on)",
                        _ => "",
                    }
                ),
                Some(status),
                kendo_bridge_core::sources::passing(status),
            )),
        }
    }
}

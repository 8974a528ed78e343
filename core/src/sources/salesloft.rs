//! Reading one Salesloft call before the plugin maps it, and where a poll
//! starts. The call's user (the rep) is read by id and cached: reps make
//! many calls, and every request spends the team's cost points. A user
//! that cannot be read fails the call's read (it is read again: without
//! the user the call would go to no rep).
//!
//! A call's direction is in its call data record, listed apart (no filter
//! by call): a poll reads the records changed since its own checkpoint and
//! keeps each by its call ([`crate::ledger::records::put`]). A finished call
//! whose record has not been read waits for it, a bounded time; the
//! record's arrival, or the end of the wait, releases it.

use super::{Health, Lookups};
use crate::Millis;
use crate::decision::InputProblem;
use crate::ledger::intake::{Intake, IntakeReport, Outcome};
use crate::ledger::{CallKey, Database, LedgerError, checkpoint, health, hold, intake, records};
use crate::ports::{
    Decision, ListCursor, Listing, SalesloftApi, SalesloftCall, SalesloftEvent, SalesloftInputs,
    SalesloftPlugin, SourceApi, Transcription, Via, WorkflowError,
};
use crate::sources::poll::{After, Cycle, CycleReport, read_cursor};

/// A list's cursor as stored in the checkpoint, by either driver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCursor {
    pub updated_since: Option<String>,
    pub page: u32,
    /// Entries of this page already handled: a driver whose budget ends
    /// inside a page (the Spin app's transcript sweep) goes on from there;
    /// one that ignores it reads the page from its start, which changes
    /// nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<usize>,
}

/// The ledger's name for this source.
pub const SOURCE: &str = "salesloft";

/// The checkpoint of the call data records read for polling.
pub const CALL_DATA_RECORDS: &str = "salesloft-call-data-records";

/// The wait reason of a finished call whose call data record (its
/// direction) has not been read yet.
pub const AWAITING_CALL_DATA_RECORD: &str = "call-data-record-pending";

/// Call data records are kept this long after they were read: a call is
/// decided within minutes of its record, and re-reads bring it back.
pub const CALL_DATA_RECORD_TTL_MS: Millis = 7 * 24 * 3_600_000;

/// Whether a call the plugin would send without a direction waits for its
/// call data record instead: only where records are read (`wait_ms` above
/// zero), only the first time (`may_wait`), and only while none was read.
pub fn waits_for_direction(
    may_wait: bool,
    has_record: bool,
    wait_ms: Millis,
    sent_without_direction: bool,
) -> bool {
    may_wait && !has_record && wait_ms > 0 && sent_without_direction
}

/// The reason a call waits for its record.
pub fn direction_wait_detail(call_id: &str, wait_ms: Millis) -> String {
    format!(
        "Salesloft call {call_id} waits up to {} s for its call data record, which gives its direction.",
        wait_ms / 1000
    )
}

/// A call's version when it is decided again after its first decision:
/// its `updated_at`, then how many of the two later facts it was decided
/// with (its wait for a call data record is over, by the record or by the
/// time; its transcript is held), then which. Each facts' count is newer
/// than the last whichever order they come in: a transcript read during
/// the wait (`~1transcript`) is older than the release after it (`~2`),
/// and a release (`~1released`) older than a transcript read after it
/// (`~2`). Once the two suffixes were fixed (`+cdr`, `+transcript`) and a
/// release after a transcript compared older, so the call never left its
/// wait. `~` sorts after every character of an `updated_at` and of those
/// old suffixes, so a call decided before the change is decided again.
fn redecided_version(updated_at: &str, released: bool, transcript: bool) -> String {
    match (released, transcript) {
        (true, true) => format!("{updated_at}~2"),
        (true, false) => format!("{updated_at}~1released"),
        (false, true) => format!("{updated_at}~1transcript"),
        (false, false) => updated_at.to_string(),
    }
}

/// The version of a call released from its wait (its record came, or the
/// wait is over): newer than the wait's, and than a transcript's read
/// during the wait.
pub fn version_with_record<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
    updated_at: &str,
) -> Result<String, LedgerError> {
    let transcript = hold::held(db, SOURCE, call_id)?.is_some_and(|h| h.transcript.is_some());
    Ok(redecided_version(updated_at, true, transcript))
}

/// A call waiting for its record, ready to be decided again: its sync
/// method and the call record held for it. `None` when it does not wait.
pub fn waiting_for_record<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
) -> Result<Option<(String, String)>, LedgerError> {
    let waiting = intake::waiting(db, SOURCE, AWAITING_CALL_DATA_RECORD)?;
    let Some((_, _, via, _)) = waiting.into_iter().find(|(id, ..)| id == call_id) else {
        return Ok(None);
    };
    Ok(hold::held(db, SOURCE, call_id)?
        .and_then(|h| h.body)
        .map(|body| (via, body)))
}

/// Calls whose wait for a record ended by `now`: they go without a
/// direction.
pub fn waits_over<D: Database + ?Sized>(
    db: &D,
    wait_ms: Millis,
    now: Millis,
) -> Result<Vec<String>, LedgerError> {
    let cutoff = now - wait_ms;
    Ok(intake::waiting(db, SOURCE, AWAITING_CALL_DATA_RECORD)?
        .into_iter()
        .take_while(|(_, _, _, decided_at)| *decided_at <= cutoff)
        .map(|(id, ..)| id)
        .collect())
}

/// The next request the read needs (the plugin's `user-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    User {
        user_id: String,
    },
    /// Everything is read: map the call with its user's record, if any.
    Map {
        user: Option<String>,
    },
}

/// The read of one call's user.
#[derive(Debug, Clone)]
pub struct CallRead {
    user_id: Option<String>,
    user: Option<Option<String>>,
    /// Read now (not from the cache): for [`CallRead::remember`].
    read: bool,
}

impl CallRead {
    /// Starts the read for a call linked to `user_id`, with what the cache
    /// holds. `can_read` is false without an API key: the rep then comes
    /// from the rep directory alone.
    pub fn new(user_id: Option<String>, can_read: bool, users: &Lookups, now: Millis) -> CallRead {
        let user = match &user_id {
            None => Some(None),
            Some(_) if !can_read => Some(None),
            Some(id) => users.get(id, now),
        };
        CallRead {
            user_id,
            user,
            read: false,
        }
    }

    /// What to fetch next, or what to map the call with.
    pub fn next(&self) -> Need {
        match (&self.user, &self.user_id) {
            (Some(user), _) => Need::Map { user: user.clone() },
            (None, Some(id)) => Need::User {
                user_id: id.clone(),
            },
            (None, None) => Need::Map { user: None },
        }
    }

    /// Takes the user's record (`None`: Salesloft has no such user). An
    /// error is handed back: it fails the call's read.
    pub fn fetched<E>(&mut self, answer: Result<Option<String>, E>) -> Result<(), E> {
        self.user = Some(answer?);
        self.read = true;
        Ok(())
    }

    /// Keeps a user read now in the cache.
    pub fn remember(&self, users: &mut Lookups, now: Millis) {
        if let (true, Some(id), Some(user)) = (self.read, &self.user_id, &self.user) {
            users.put(id, user.clone(), now);
        }
    }
}

/// The checkpoint of the transcript sweep.
pub const TRANSCRIPTS: &str = "salesloft-transcripts";

/// Sentence pages (of 100) read for one transcript at most: five thousand
/// sentences, hours of talk; a longer transcript goes cut, never holds up
/// the sweep.
pub const MAX_SENTENCE_PAGES: u32 = 50;

/// The version of a call decided again with its transcript: newer than
/// its first decision's, and than its release if it was released; a call
/// still waiting for its record stays older than its release.
pub fn version_with_transcript<D: Database + ?Sized>(
    db: &D,
    call_id: &str,
    updated_at: &str,
) -> Result<String, LedgerError> {
    let waiting = intake::waiting(db, SOURCE, AWAITING_CALL_DATA_RECORD)?
        .iter()
        .any(|(id, ..)| id == call_id);
    Ok(redecided_version(updated_at, !waiting, true))
}

/// Whether a polled call's record is kept after its decision, so it can be
/// decided again without another request: a skip a change of configuration
/// can fix, or (with the transcript sweep on) anything not sent, which a
/// transcript that comes later may turn into a send.
pub fn keeps_record(outcome: &intake::Outcome, transcripts: bool) -> bool {
    crate::ledger::redecide::fixable(outcome)
        || (transcripts && !matches!(outcome, intake::Outcome::Send { .. }))
}

/// The next request of a transcript's read (the plugin plans each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptNeed {
    /// The transcription's conversation, which names its call
    /// (`conversation-request`, then `read-conversation`).
    Conversation { conversation_id: String },
    /// A page of its sentences (`sentences-request`, then
    /// `sentences-has-more`).
    Sentences { transcription_id: String, page: u32 },
    /// Read: hold `pages` (a JSON list of sentence pages) as the call's
    /// transcript, and decide the call again if its record is held.
    Hold { call_id: String, pages: String },
    /// The chain cannot be followed (no conversation, or one naming no
    /// call): nothing to keep. The call goes with its audio alone.
    Nothing,
}

/// The read of one listed transcription: its conversation (for the call it
/// belongs to, which Salesloft does not put on the transcription), then its
/// sentence pages until the last or [`MAX_SENTENCE_PAGES`].
#[derive(Debug, Clone)]
pub struct TranscriptRead {
    transcription_id: String,
    conversation_id: Option<String>,
    /// `None` until the conversation is read; `Some(None)` when it names
    /// no call.
    call_id: Option<Option<String>>,
    pages: Vec<String>,
    done: bool,
}

impl TranscriptRead {
    /// Starts the read of a transcription as listed.
    pub fn new(transcription_id: String, conversation_id: Option<String>) -> TranscriptRead {
        TranscriptRead {
            transcription_id,
            conversation_id,
            call_id: None,
            pages: Vec::new(),
            done: false,
        }
    }

    /// What to fetch next, or what to keep.
    pub fn next(&self) -> TranscriptNeed {
        let Some(conversation_id) = &self.conversation_id else {
            return TranscriptNeed::Nothing;
        };
        match &self.call_id {
            None => TranscriptNeed::Conversation {
                conversation_id: conversation_id.clone(),
            },
            Some(None) => TranscriptNeed::Nothing,
            Some(Some(call_id)) if self.done => TranscriptNeed::Hold {
                call_id: call_id.clone(),
                pages: serde_json::to_string(&self.pages).unwrap_or_else(|_| "[]".into()),
            },
            Some(Some(_)) => TranscriptNeed::Sentences {
                transcription_id: self.transcription_id.clone(),
                page: self.pages.len() as u32 + 1,
            },
        }
    }

    /// Takes the conversation's call id (`None`: no conversation, or one
    /// naming no call).
    pub fn conversation(&mut self, call_id: Option<String>) {
        self.call_id = Some(call_id);
    }

    /// Takes a sentence page (`None`: Salesloft has no such page) and
    /// whether another follows.
    pub fn sentences(&mut self, page: Option<String>, more: bool) {
        match page {
            Some(page) => {
                self.pages.push(page);
                self.done = !more || self.pages.len() as u32 >= MAX_SENTENCE_PAGES;
            }
            None => self.done = true,
        }
    }
}

/// Where a first poll starts: calls updated since `since_ms`, as
/// Salesloft's filter takes it (RFC 3339 in UTC with microseconds), page 1.
pub fn start(since_ms: Millis) -> (String, u32) {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(since_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    (at.format(&format).unwrap_or_default(), 1)
}

/// The checkpoint of the call data records read for a backfill.
pub const BACKFILL_CALL_DATA_RECORDS: &str = "salesloft-backfill-call-data-records";
/// The checkpoint of a backfill's calls.
pub const BACKFILL: &str = "salesloft-backfill";

/// How Salesloft is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Whether transcripts are collected.
    pub transcripts: bool,
    /// How long a finished call waits for its call data record; 0 when it
    /// never waits (no poll reads the records).
    pub direction_wait_ms: Millis,
    /// How far back the first poll of a list reads.
    pub first_look_back_ms: Millis,
}

/// A run's request caps: a Spin tick's share; none where the driver paces
/// its requests under the team's budget instead (the host). `transcripts`
/// and `records` count from where their sweep starts, `calls` from the
/// run's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub transcripts: Option<u32>,
    pub records: Option<u32>,
    pub calls: Option<u32>,
}

/// What one webhook delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    Decided(IntakeReport),
    /// Not a call event: why.
    Ignored(String),
    /// The delivery can never be read: why.
    Unreadable(String),
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Polled {
    pub cycle: CycleReport,
    /// The run's request cap ended it before Salesloft had nothing newer.
    pub budget_spent: bool,
    /// What the driver should log (records and transcripts passed over,
    /// calls released without a direction).
    pub notes: Vec<String>,
}

/// Where a list's cycle starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begin {
    /// The stored cursor, else `first_since` (epoch ms), page 1.
    Stored { first_since: Millis, fixed: bool },
    /// A backfill's date.
    Since(Millis),
}

fn cursor_since(since_ms: Millis) -> ListCursor {
    let (updated_since, page) = start(since_ms);
    ListCursor {
        updated_since: Some(updated_since),
        page,
    }
}

/// The checkpoint JSON of a list at `at` with `done` entries of its page
/// handled.
fn stored_json(at: &ListCursor, done: Option<usize>) -> String {
    let stored = StoredCursor {
        updated_since: at.updated_since.clone(),
        page: at.page,
        done,
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

/// Where a list starts: its stored cursor (and how many entries of that
/// page are done), else as `from` says.
fn start_at<D: Database + ?Sized>(
    db: &D,
    checkpoint: &str,
    stored: Option<&str>,
    from: Begin,
    notes: &mut Vec<String>,
) -> Result<(ListCursor, usize), LedgerError> {
    let first_since = match from {
        Begin::Since(since) => return Ok((cursor_since(since), 0)),
        Begin::Stored { first_since, fixed } => {
            let (cursor, unreadable) = read_cursor::<StoredCursor>(stored);
            if let Some(why) = unreadable {
                notes.push(format!("{checkpoint}: {why}"));
            }
            if let Some(c) = cursor {
                let at = ListCursor {
                    updated_since: c.updated_since,
                    page: c.page.max(1),
                };
                return Ok((at, c.done.unwrap_or(0)));
            }
            if fixed {
                checkpoint::first_look_back(db, checkpoint, first_since)?
            } else {
                first_since
            }
        }
    };
    Ok((cursor_since(first_since), 0))
}

fn unreadable<E: From<WorkflowError>>(what: &str, problem: InputProblem) -> E {
    E::from(WorkflowError::Unreadable {
        source_name: SOURCE,
        message: format!("{what} cannot be read: {problem}"),
    })
}

/// A stored `call_created` / `call_updated` delivery: read by the plugin
/// and, when it is a call, read and decided ([`map`]) and recorded.
pub async fn receive_webhook<P>(
    ports: &P,
    event: &str,
    body: &str,
    settings: Settings,
) -> Result<Handled, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let call = match ports.plugin().salesloft_read_webhook(event, body)? {
        Err(problem) => return Ok(Handled::Unreadable(problem.to_string())),
        Ok(SalesloftEvent::Ignore(reason)) => return Ok(Handled::Ignored(reason)),
        Ok(SalesloftEvent::Call(call)) => call,
    };
    let intake = map(ports, &call, Via::Webhook, &call.updated_at, true, settings).await?;
    Ok(Handled::Decided(intake::intake(
        ports.db(),
        &[intake],
        None,
        ports.now(),
    )?))
}

/// One poll: new transcripts collected (best effort), the call data
/// records changed since their checkpoint kept by call (best effort; a
/// call waiting for its record is released with it), the calls list read
/// from its checkpoint, and the calls whose wait for a record is over
/// released without a direction. `on_page` sees the calls' running report.
pub async fn poll<P>(
    ports: &P,
    settings: Settings,
    limits: Limits,
    on_page: impl FnMut(&CycleReport),
) -> Result<Polled, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let mut notes = Vec::new();
    let now = ports.now();
    if settings.transcripts {
        // Transcripts are best effort: a failing sweep (403 without the
        // scope or without Conversations, 5xx) must never stop call
        // polling or hold up the audio.
        let swept = sweep_transcripts(ports, settings, limits.transcripts, &mut notes).await;
        health::record(ports.db(), SOURCE, &best_effort("transcripts", &swept), now)?;
    }
    // Before the calls, so that calls listed with their record are joined
    // in the same cycle. Best effort: a call waits for its record a bounded
    // time, then goes without a direction.
    let from = Begin::Stored {
        first_since: now.saturating_sub(settings.first_look_back_ms),
        fixed: false,
    };
    let swept = sweep_records(
        ports,
        CALL_DATA_RECORDS,
        from,
        limits.records,
        settings,
        &mut notes,
    )
    .await;
    health::record(
        ports.db(),
        SOURCE,
        &best_effort("call_data_records", &swept),
        now,
    )?;
    let from = Begin::Stored {
        first_since: now.saturating_sub(settings.first_look_back_ms),
        fixed: true,
    };
    let (cycle, budget_spent) = read_calls(
        ports,
        SOURCE,
        from,
        limits.calls,
        settings,
        &mut notes,
        on_page,
    )
    .await?;
    release_expired_waits(ports, settings, &mut notes).await?;
    Ok(Polled {
        cycle,
        budget_spent,
        notes,
    })
}

/// Every call updated since `since_ms` (and the call data records since
/// then), each on a checkpoint of its own so the regular ones are
/// untouched.
pub async fn backfill<P>(
    ports: &P,
    since_ms: Millis,
    settings: Settings,
    on_page: impl FnMut(&CycleReport),
) -> Result<Polled, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let mut notes = Vec::new();
    let from = Begin::Since(since_ms);
    let swept = sweep_records(
        ports,
        BACKFILL_CALL_DATA_RECORDS,
        from,
        None,
        settings,
        &mut notes,
    )
    .await;
    let health = best_effort("call_data_records", &swept);
    health::record(ports.db(), SOURCE, &health, ports.now())?;
    let (cycle, budget_spent) =
        read_calls(ports, BACKFILL, from, None, settings, &mut notes, on_page).await?;
    Ok(Polled {
        cycle,
        budget_spent,
        notes,
    })
}

/// A call decided again (`redecide`) from the record kept for it, at
/// `version`. `None` when none was kept.
pub async fn redecide<P>(
    ports: &P,
    call_id: &str,
    version: &str,
    settings: Settings,
) -> Result<Option<Intake>, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let Some(body) = hold::held(ports.db(), SOURCE, call_id)?.and_then(|h| h.body) else {
        return Ok(None);
    };
    // The kept record is the call as listed, the shape a `call_updated`
    // delivery carries.
    match ports
        .plugin()
        .salesloft_read_webhook("call_updated", &body)?
    {
        Err(problem) => Err(unreadable("the kept call", problem)),
        Ok(SalesloftEvent::Ignore(_)) => Ok(None),
        Ok(SalesloftEvent::Call(call)) => Ok(Some(
            map(ports, &call, Via::Polling, version, false, settings).await?,
        )),
    }
}

fn best_effort<E: std::fmt::Display>(topic: &'static str, outcome: &Result<(), E>) -> Health {
    match outcome {
        Ok(()) => Health::Ok(topic),
        Err(e) => Health::Problem(topic, e.to_string()),
    }
}

/// The calls list from `checkpoint`, page by page: each page's calls read
/// and decided, recorded with its unreadable records and the cursor past
/// it. Stops when `limit` requests of the run are made (the calls decided
/// so far recorded; the page is read again next time, its decided calls
/// then sightings). Returns the report and whether the limit stopped it.
async fn read_calls<P>(
    ports: &P,
    checkpoint: &str,
    from: Begin,
    limit: Option<u32>,
    settings: Settings,
    notes: &mut Vec<String>,
    mut on_page: impl FnMut(&CycleReport),
) -> Result<(CycleReport, bool), <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let (db, plugin) = (ports.db(), ports.plugin());
    let (mut cycle, stored) = Cycle::start(db, checkpoint, u32::MAX)?;
    let (mut at, _) = start_at(db, checkpoint, stored.as_deref(), from, notes)?;
    let team = ports.team(SOURCE, None);
    let mut report = CycleReport::default();
    loop {
        if ports.salesloft_spent(limit) {
            return Ok((report, true));
        }
        let request = plugin.salesloft_next_request(Listing::Calls, &at)?;
        let Some(body) = ports.fetch(SOURCE, &request).await? else {
            return Err(ports.list_not_found(SOURCE, &request));
        };
        let page = plugin
            .salesloft_read_page(&at, &body)?
            .map_err(|problem| unreadable::<<P as SourceApi>::Error>("the calls page", problem))?;
        let mut items = Vec::with_capacity(page.calls.len() + page.rejected.len());
        for call in &page.calls {
            if ports.salesloft_spent(limit) {
                report
                    .report
                    .add(intake::intake(db, &items, None, ports.now())?);
                return Ok((report, true));
            }
            items.push(map(ports, call, Via::Polling, &call.updated_at, true, settings).await?);
        }
        let position = format!(
            "{}-{}",
            at.updated_since.as_deref().unwrap_or("start"),
            at.page
        );
        for (index, rejected) in page.rejected.iter().enumerate() {
            items.push(super::rejected(
                SOURCE,
                &team,
                rejected.id.as_deref(),
                &position,
                index,
                1,
                crate::decision::rejected_detail(&rejected.problem, &rejected.at),
            ));
        }
        report.pages += 1;
        report.records += (page.calls.len() + page.rejected.len()) as u32;
        report.rejected += page.rejected.len() as u32;
        let next = stored_json(&page.next, None);
        let (recorded, after) = cycle.page(db, &items, next, page.more, ports.now())?;
        report.report.add(recorded);
        on_page(&report);
        match after {
            After::Next => at = page.next,
            After::Done => return Ok((report, false)),
            After::Moved => {
                report.moved = true;
                return Ok((report, false));
            }
        }
    }
}

/// The call data records changed since `checkpoint`'s cursor, each kept
/// by its call, so calls are joined to their direction without a request
/// per call; a call already waiting for its record is decided again in
/// the transaction that moves the checkpoint.
async fn sweep_records<P>(
    ports: &P,
    checkpoint: &str,
    from: Begin,
    limit: Option<u32>,
    settings: Settings,
    notes: &mut Vec<String>,
) -> Result<(), <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let (db, plugin) = (ports.db(), ports.plugin());
    records::prune(db, ports.now() - CALL_DATA_RECORD_TTL_MS)?;
    let (mut cycle, stored) = Cycle::start(db, checkpoint, u32::MAX)?;
    let (mut at, _) = start_at(db, checkpoint, stored.as_deref(), from, notes)?;
    let limit = limit.map(|n| ports.salesloft_requests().saturating_add(n));
    while !ports.salesloft_spent(limit) {
        let request = plugin.salesloft_next_request(Listing::CallDataRecords, &at)?;
        let Some(body) = ports.fetch(SOURCE, &request).await? else {
            return Err(ports.list_not_found(SOURCE, &request));
        };
        let page = plugin
            .salesloft_read_call_data_records(&at, &body)?
            .map_err(|problem| {
                unreadable::<<P as SourceApi>::Error>("the call data records page", problem)
            })?;
        for rejected in &page.rejected {
            // A record that cannot be read lends no direction; its call
            // waits, then goes without one.
            notes.push(format!(
                "call data record {} not readable (at {}): {}",
                rejected.id.as_deref().unwrap_or("?"),
                rejected.at,
                rejected.problem
            ));
        }
        let mut items = Vec::new();
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
                ports.now(),
            )?;
            if let Some(intake) = release(ports, call_id, settings).await? {
                items.push(intake);
            }
        }
        let next = stored_json(&page.next, None);
        match cycle.page(db, &items, next, page.more, ports.now())?.1 {
            After::Next => at = page.next,
            After::Done | After::Moved => break,
        }
    }
    Ok(())
}

/// A call waiting for its call data record decided again: with the record
/// when it has been read, without it once the wait is over. `None` when
/// the call does not wait.
async fn release<P>(
    ports: &P,
    call_id: &str,
    settings: Settings,
) -> Result<Option<Intake>, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let Some((via, body)) = waiting_for_record(ports.db(), call_id)? else {
        return Ok(None);
    };
    let Ok(SalesloftEvent::Call(call)) = ports
        .plugin()
        .salesloft_read_webhook("call_updated", &body)?
    else {
        return Ok(None);
    };
    let via = if via == super::via::WEBHOOK {
        Via::Webhook
    } else {
        Via::Polling
    };
    let version = version_with_record(ports.db(), &call.id, &call.updated_at)?;
    Ok(Some(
        map(ports, &call, via, &version, false, settings).await?,
    ))
}

/// The calls whose call data record did not come within the wait go
/// without a direction.
async fn release_expired_waits<P>(
    ports: &P,
    settings: Settings,
    notes: &mut Vec<String>,
) -> Result<(), <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let mut items = Vec::new();
    for call_id in waits_over(ports.db(), settings.direction_wait_ms, ports.now())? {
        notes.push(format!(
            "call {call_id}: its call data record did not arrive; sent without a direction"
        ));
        if let Some(intake) = release(ports, &call_id, settings).await? {
            items.push(intake);
        }
    }
    if !items.is_empty() {
        intake::intake(ports.db(), &items, None, ports.now())?;
    }
    Ok(())
}

/// Transcripts that appeared since the sweep's checkpoint, each followed
/// to its call and kept for it ([`collect_transcript`]); a transcript that
/// cannot be followed is passed over (it never holds up the audio). With a
/// `limit`, the sweep stops inside a page and the checkpoint keeps how far
/// into it it got.
async fn sweep_transcripts<P>(
    ports: &P,
    settings: Settings,
    limit: Option<u32>,
    notes: &mut Vec<String>,
) -> Result<(), <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let (db, plugin) = (ports.db(), ports.plugin());
    let (mut cycle, stored) = Cycle::start(db, TRANSCRIPTS, u32::MAX)?;
    let from = Begin::Stored {
        first_since: ports.now().saturating_sub(settings.first_look_back_ms),
        fixed: true,
    };
    let (mut at, mut done) = start_at(db, TRANSCRIPTS, stored.as_deref(), from, notes)?;
    let limit = limit.map(|n| ports.salesloft_requests().saturating_add(n));
    while !ports.salesloft_spent(limit) {
        let request = plugin.salesloft_next_request(Listing::Transcriptions, &at)?;
        let Some(body) = ports.fetch(SOURCE, &request).await? else {
            return Err(ports.list_not_found(SOURCE, &request));
        };
        let page = plugin
            .salesloft_read_transcriptions(&at, &body)?
            .map_err(|problem| {
                unreadable::<<P as SourceApi>::Error>("the transcriptions page", problem)
            })?;
        for (i, t) in page.transcriptions.iter().enumerate().skip(done) {
            if ports.salesloft_spent(limit) {
                // The rest of this page waits for the next run.
                cycle.page(db, &[], stored_json(&at, Some(i)), true, ports.now())?;
                return Ok(());
            }
            if let Err(e) = collect_transcript(ports, t, settings).await {
                notes.push(format!("transcription {}: not collected: {e}", t.id));
            }
        }
        let next = stored_json(&page.next, None);
        match cycle.page(db, &[], next, page.more, ports.now())?.1 {
            After::Next => (at, done) = (page.next, 0),
            After::Done | After::Moved => break,
        }
    }
    Ok(())
}

/// Follows one transcription to its call ([`TranscriptRead`]), keeps its
/// sentences for that call, and decides again a call whose record is kept
/// (one decided without its transcript).
async fn collect_transcript<P>(
    ports: &P,
    t: &Transcription,
    settings: Settings,
) -> Result<(), <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let plugin = ports.plugin();
    let mut read = TranscriptRead::new(t.id.clone(), t.conversation_id.clone());
    let (call_id, pages) = loop {
        match read.next() {
            TranscriptNeed::Nothing => return Ok(()),
            TranscriptNeed::Conversation { conversation_id } => {
                let request = plugin.salesloft_conversation_request(&conversation_id)?;
                let call_id = match ports.fetch(SOURCE, &request).await? {
                    Some(body) => plugin.salesloft_read_conversation(&body)?.ok().flatten(),
                    None => None,
                };
                read.conversation(call_id);
            }
            TranscriptNeed::Sentences {
                transcription_id,
                page,
            } => {
                let request = plugin.salesloft_sentences_request(&transcription_id, page)?;
                let body = ports.fetch(SOURCE, &request).await?;
                let more = match &body {
                    Some(body) => plugin.salesloft_sentences_has_more(body)?.unwrap_or(false),
                    None => false,
                };
                read.sentences(body, more);
            }
            TranscriptNeed::Hold { call_id, pages } => break (call_id, pages),
        }
    };
    let db = ports.db();
    let held = hold::hold(db, SOURCE, &call_id, None, Some(&pages), ports.now())?;
    let Some(body) = held.body else {
        return Ok(());
    };
    let Ok(SalesloftEvent::Call(call)) = plugin.salesloft_read_webhook("call_updated", &body)?
    else {
        return Ok(());
    };
    let version = version_with_transcript(db, &call.id, &call.updated_at)?;
    let intake = map(ports, &call, Via::Polling, &version, true, settings).await?;
    intake::intake(db, &[intake], None, ports.now())?;
    Ok(())
}

/// One call read and decided at `version`: a sighting when the ledger has
/// it settled at that version (no lookup spent); else its user read
/// (cached), its call data record and any transcript kept for it, and the
/// plugin's decision. With `may_wait`, a call the plugin would send
/// without a direction waits for its record instead. A decision a
/// transcript or a change of configuration may change keeps the record.
pub async fn map<P>(
    ports: &P,
    call: &SalesloftCall,
    via: Via,
    version: &str,
    may_wait: bool,
    settings: Settings,
) -> Result<Intake, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let (db, plugin) = (ports.db(), ports.plugin());
    let team = ports.team(SOURCE, None);
    if intake::is_settled(db, SOURCE, &call.id, version)? {
        let key = CallKey {
            source: SOURCE.into(),
            source_id: call.id.clone(),
            team,
        };
        return Ok(Intake::seen(key, version, via.name()));
    }
    let user = read_user(ports, call.user_id.as_deref()).await?;
    let call_data_record = records::get(db, SOURCE, &call.id)?;
    let has_record = call_data_record.is_some();
    let sentences = hold::held(db, SOURCE, &call.id)?
        .and_then(|h| h.transcript)
        .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
        .unwrap_or_default();
    let inputs = SalesloftInputs {
        user,
        sentences,
        call_data_record,
    };
    let decision = plugin.salesloft_map_call(call, inputs, via);
    let sent_without_direction =
        matches!(&decision, Ok(Ok(Decision::Send(c))) if !plugin.has_direction(c));
    if waits_for_direction(
        may_wait,
        has_record,
        settings.direction_wait_ms,
        sent_without_direction,
    ) {
        // Its call data record, read with the next pages of records, gives
        // the direction; `release` decides it again then, or without one
        // once the wait is over.
        hold::hold(db, SOURCE, &call.id, Some(&call.json), None, ports.now())?;
        return Ok(Intake {
            key: CallKey {
                source: SOURCE.into(),
                source_id: call.id.clone(),
                team,
            },
            version: version.to_string(),
            sync_method: via.name().to_string(),
            outcome: Outcome::Wait {
                code: AWAITING_CALL_DATA_RECORD.into(),
                detail: direction_wait_detail(&call.id, settings.direction_wait_ms),
            },
        });
    }
    let intake = crate::decision::intake(ports, SOURCE, &call.id, version, via, decision);
    if keeps_record(&intake.outcome, settings.transcripts) {
        // A transcript may still turn this call into a send, and a change
        // of configuration may fix a skip: the record is kept so it can be
        // decided again without another request.
        hold::hold(db, SOURCE, &call.id, Some(&call.json), None, ports.now())?;
    }
    Ok(intake)
}

/// The call's user record, read (and cached) as [`CallRead`] says;
/// without an API key the rep comes from the rep directory.
pub async fn read_user<P>(
    ports: &P,
    user_id: Option<&str>,
) -> Result<Option<String>, <P as SourceApi>::Error>
where
    P: SalesloftApi,
    P::Plugin: SalesloftPlugin,
{
    let now = ports.now();
    let can_read = ports.salesloft_can_read();
    let mut read = ports
        .salesloft_users(|users| CallRead::new(user_id.map(str::to_string), can_read, users, now));
    loop {
        match read.next() {
            Need::Map { user } => {
                ports.salesloft_users(|users| read.remember(users, now));
                return Ok(user);
            }
            Need::User { user_id } => {
                let request = ports.plugin().salesloft_user_request(&user_id)?;
                let answer = ports.fetch(SOURCE, &request).await;
                read.fetched(answer)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_record_is_read_once_an_hour() {
        let mut users = Lookups::default();
        let mut read = CallRead::new(Some("9".into()), true, &users, 0);
        assert_eq!(
            read.next(),
            Need::User {
                user_id: "9".into()
            }
        );
        read.fetched::<()>(Ok(Some("{}".into()))).unwrap();
        read.remember(&mut users, 0);
        let again = CallRead::new(Some("9".into()), true, &users, 10);
        assert_eq!(
            again.next(),
            Need::Map {
                user: Some("{}".into())
            }
        );
    }

    #[test]
    fn without_an_api_key_the_rep_comes_from_the_directory() {
        let read = CallRead::new(Some("9".into()), false, &Lookups::default(), 0);
        assert_eq!(read.next(), Need::Map { user: None });
    }

    #[test]
    fn a_user_that_cannot_be_read_fails_the_read() {
        let mut read = CallRead::new(Some("9".into()), true, &Lookups::default(), 0);
        assert_eq!(read.fetched(Err("503")), Err("503"));
    }

    #[test]
    fn a_transcript_is_read_from_its_conversation_then_its_sentence_pages() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        assert_eq!(
            read.next(),
            TranscriptNeed::Conversation {
                conversation_id: "c1".into()
            }
        );
        read.conversation(Some("77".into()));
        assert_eq!(
            read.next(),
            TranscriptNeed::Sentences {
                transcription_id: "t1".into(),
                page: 1
            }
        );
        read.sentences(Some("{\"p\":1}".into()), true);
        assert_eq!(
            read.next(),
            TranscriptNeed::Sentences {
                transcription_id: "t1".into(),
                page: 2
            }
        );
        read.sentences(Some("{\"p\":2}".into()), false);
        assert_eq!(
            read.next(),
            TranscriptNeed::Hold {
                call_id: "77".into(),
                pages: r#"["{\"p\":1}","{\"p\":2}"]"#.into()
            }
        );
    }

    #[test]
    fn a_transcription_without_a_conversation_keeps_nothing() {
        let read = TranscriptRead::new("t1".into(), None);
        assert_eq!(read.next(), TranscriptNeed::Nothing);
    }

    #[test]
    fn a_conversation_naming_no_call_keeps_nothing() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        read.conversation(None);
        assert_eq!(read.next(), TranscriptNeed::Nothing);
    }

    #[test]
    fn a_transcript_stops_at_the_page_limit() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        read.conversation(Some("77".into()));
        for _ in 0..MAX_SENTENCE_PAGES {
            assert!(matches!(read.next(), TranscriptNeed::Sentences { .. }));
            read.sentences(Some("{}".into()), true);
        }
        assert!(matches!(read.next(), TranscriptNeed::Hold { .. }));
    }

    #[test]
    fn a_missing_sentence_page_ends_the_transcript_with_the_pages_read() {
        let mut read = TranscriptRead::new("t1".into(), Some("c1".into()));
        read.conversation(Some("77".into()));
        read.sentences(Some("{}".into()), true);
        read.sentences(None, true);
        assert_eq!(
            read.next(),
            TranscriptNeed::Hold {
                call_id: "77".into(),
                pages: r#"["{}"]"#.into()
            }
        );
    }

    #[test]
    fn a_fixable_skip_keeps_the_record_and_a_send_does_not() {
        let skip = intake::Outcome::Skip {
            code: "unknown-rep".into(),
            detail: String::new(),
        };
        let no_media = intake::Outcome::Skip {
            code: "no-media".into(),
            detail: String::new(),
        };
        assert!(keeps_record(&skip, false));
        assert!(!keeps_record(&no_media, false));
        assert!(keeps_record(&no_media, true));
    }

    #[test]
    fn a_first_poll_starts_at_the_look_back_in_salesloft_s_format() {
        assert_eq!(
            start(1_776_870_000_123),
            ("2026-04-22T15:00:00.123000Z".to_string(), 1)
        );
    }
}

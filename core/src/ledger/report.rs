//! Every count and list an operator reads: `kendo-bridge status`, the
//! host's page and `/api/status`, `/metrics`, `deliveries`, and the Spin
//! app's `GET /status`. Written once over [`Database`], so every driver
//! reports the same numbers from a database they share.
//!
//! Nothing secret is in the tables read here (a refused key is kept only as
//! a fingerprint), so nothing secret is in a report.

use super::health::{self, SourceHealth};
use super::send::{self, Paused};
use super::write_back::{self, WriteBackCounts};
use super::{CallKey, Database, LedgerError, Row, State, checkpoint, inbox};
use crate::Millis;
use crate::sources::aloware::{self, TranscriptMode};

/// A ledger row as `status` and `deliveries` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub key: CallKey,
    pub state: State,
    pub sync_method: String,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub title: Option<String>,
    pub rep_email: Option<String>,
    pub attempts: u32,
    pub kendo_call_id: Option<String>,
    /// How many times the record arrived (polls, webhooks).
    pub seen_count: u32,
    pub updated_at: Millis,
    pub sent_at: Option<Millis>,
    /// A send of it lost its answer (or was in flight at a crash): Kendo
    /// may hold it more than once.
    pub maybe_duplicated: bool,
    /// Kendo's AI score, once its `call.uploaded` webhook arrived.
    pub ai_score: Option<f64>,
    /// Optional fields the call was sent without.
    pub warnings: Option<String>,
}

/// A Kendo result about a call this bridge never sent.
#[derive(Debug, Clone, PartialEq)]
pub struct UnmatchedResult {
    pub event_id: String,
    pub event: String,
    /// Kendo's callId the result is about.
    pub call_id: String,
    pub received_at: Millis,
}

/// A call Kendo may hold more than once.
#[derive(Debug, Clone, PartialEq)]
pub struct PossibleDuplicate {
    pub key: CallKey,
    pub state: State,
    /// Every callId Kendo returned for it, with when.
    pub call_ids: Vec<(String, Millis)>,
}

/// Counts per state for one team.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TeamCounts {
    pub team: String,
    pub by_state: Vec<(State, u64)>,
}

impl TeamCounts {
    /// The count for one state (0 when absent).
    pub fn get(&self, state: State) -> u64 {
        self.by_state
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}

/// A count column: SQLite's `COUNT(*)` is never negative.
fn count(row: &Row, i: usize) -> Result<u64, LedgerError> {
    Ok(row.int(i)?.max(0) as u64)
}

fn key(row: &Row) -> Result<CallKey, LedgerError> {
    Ok(CallKey {
        source: row.text(0)?,
        source_id: row.text(1)?,
        team: row.text(2)?,
    })
}

/// Ledger counts per team and state, by team.
pub fn counts<D: Database + ?Sized>(db: &D) -> Result<Vec<TeamCounts>, LedgerError> {
    let mut out: Vec<TeamCounts> = Vec::new();
    for row in db.run(
        "SELECT team, state, COUNT(*) FROM ledger GROUP BY team, state ORDER BY team",
        &[],
    )? {
        let team = row.text(0)?;
        let state = State::read(row.text(1)?)?;
        let n = count(&row, 2)?;
        match out.last_mut() {
            Some(tc) if tc.team == team => tc.by_state.push((state, n)),
            _ => out.push(TeamCounts {
                team,
                by_state: vec![(state, n)],
            }),
        }
    }
    Ok(out)
}

/// Ledger counts per state, every team together; every state is listed,
/// those without a call at 0.
pub fn calls_by_state<D: Database + ?Sized>(db: &D) -> Result<Vec<(State, u64)>, LedgerError> {
    let teams = counts(db)?;
    Ok(State::ALL
        .into_iter()
        .map(|state| (state, teams.iter().map(|t| t.get(state)).sum()))
        .collect())
}

/// Calls in `state`, every team together.
pub fn calls_in<D: Database + ?Sized>(db: &D, state: State) -> Result<u64, LedgerError> {
    db.first(
        "SELECT COUNT(*) FROM ledger WHERE state = ?1",
        &[state.as_str().into()],
    )?
    .map_or(Ok(0), |r| count(&r, 0))
}

/// How many calls in `state` each reason code holds, most first.
pub fn reasons<D: Database + ?Sized>(
    db: &D,
    state: State,
) -> Result<Vec<(String, u64)>, LedgerError> {
    db.run(
        "SELECT COALESCE(reason_code, '-'), COUNT(*) FROM ledger WHERE state = ?1
         GROUP BY reason_code ORDER BY COUNT(*) DESC, reason_code",
        &[state.as_str().into()],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, count(r, 1)?)))
    .collect()
}

/// The columns of a [`LedgerRow`], with the call's newest score.
const LEDGER_ROW: &str = "SELECT l.source, l.source_id, l.team, l.state, l.sync_method,
        l.reason_code, l.reason, l.title, l.rep_email, l.attempts, l.kendo_call_id,
        l.seen_count, l.updated_at, l.sent_at, l.maybe_duplicated,
        (SELECT r.ai_score FROM kendo_results r
          WHERE r.subject_id = l.kendo_call_id AND r.is_test = 0
          ORDER BY r.received_at DESC LIMIT 1),
        l.warnings
 FROM ledger l";

fn ledger_row(r: &Row) -> Result<LedgerRow, LedgerError> {
    Ok(LedgerRow {
        key: key(r)?,
        state: State::read(r.text(3)?)?,
        sync_method: r.text(4)?,
        reason_code: r.opt_text(5)?,
        reason: r.opt_text(6)?,
        title: r.opt_text(7)?,
        rep_email: r.opt_text(8)?,
        attempts: r.count(9)?,
        kendo_call_id: r.opt_text(10)?,
        seen_count: r.count(11)?,
        updated_at: r.int(12)?,
        sent_at: r.opt_int(13)?,
        maybe_duplicated: r.int(14)? != 0,
        ai_score: r.opt_real(15)?,
        warnings: r.opt_text(16)?,
    })
}

/// The most recently changed ledger rows, newest first: only those in
/// `states` (all when empty), and with `maybe_duplicated` only the calls
/// Kendo may hold more than once.
pub fn recent<D: Database + ?Sized>(
    db: &D,
    states: &[State],
    maybe_duplicated: bool,
    limit: u32,
) -> Result<Vec<LedgerRow>, LedgerError> {
    let mut conditions = Vec::new();
    if !states.is_empty() {
        let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        conditions.push(format!("l.state IN ({})", names.join(",")));
    }
    if maybe_duplicated {
        conditions.push("l.maybe_duplicated = 1".to_string());
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    db.run(
        &format!("{LEDGER_ROW} {filter} ORDER BY l.updated_at DESC, l.rowid DESC LIMIT ?1"),
        &[limit.into()],
    )?
    .iter()
    .map(ledger_row)
    .collect()
}

/// One call's ledger rows: one, under the team it was last routed to
/// (databases written before team changes were followed may hold more).
pub fn call<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
) -> Result<Vec<LedgerRow>, LedgerError> {
    db.run(
        &format!("{LEDGER_ROW} WHERE l.source = ?1 AND l.source_id = ?2 ORDER BY l.team"),
        &[source.into(), source_id.into()],
    )?
    .iter()
    .map(ledger_row)
    .collect()
}

/// Calls that Kendo may hold more than once (a send lost its answer, or
/// was in flight at a crash), newest first, each with every callId Kendo
/// returned for it.
pub fn possible_duplicates<D: Database + ?Sized>(
    db: &D,
    limit: u32,
) -> Result<Vec<PossibleDuplicate>, LedgerError> {
    let rows = db.run(
        "SELECT source, source_id, team, state FROM ledger WHERE maybe_duplicated = 1
         ORDER BY updated_at DESC, rowid DESC LIMIT ?1",
        &[limit.into()],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let key = key(&row)?;
        let state = State::read(row.text(3)?)?;
        let call_ids = kendo_call_ids(db, &key)?;
        out.push(PossibleDuplicate {
            key,
            state,
            call_ids,
        });
    }
    Ok(out)
}

/// Every callId Kendo returned for a call, oldest first.
pub fn kendo_call_ids<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
) -> Result<Vec<(String, Millis)>, LedgerError> {
    db.run(
        "SELECT kendo_call_id, at FROM kendo_call_ids
         WHERE source = ?1 AND source_id = ?2 AND team = ?3 ORDER BY at, rowid",
        &key.params(),
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.int(1)?)))
    .collect()
}

/// Per team, calls Kendo accepted before `before` that no (non-test)
/// Kendo result has scored yet: `(team, count, oldest sent_at)`.
pub fn unscored<D: Database + ?Sized>(
    db: &D,
    before: Millis,
) -> Result<Vec<(String, u64, Millis)>, LedgerError> {
    db.run(
        "SELECT l.team, COUNT(*), MIN(l.sent_at) FROM ledger l
          WHERE l.state = ?2 AND l.sent_at < ?1
            AND NOT EXISTS (SELECT 1 FROM kendo_results r
                             WHERE r.subject_id = l.kendo_call_id AND r.is_test = 0)
          GROUP BY l.team ORDER BY l.team",
        &[before.into(), State::Sent.as_str().into()],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, count(r, 1)?, r.int(2)?)))
    .collect()
}

/// Kendo results (not tests) about a callId the bridge never received
/// from Kendo: how many, and the newest `limit`.
pub fn unmatched_results<D: Database + ?Sized>(
    db: &D,
    limit: u32,
) -> Result<(u64, Vec<UnmatchedResult>), LedgerError> {
    const UNMATCHED: &str = "FROM kendo_results r WHERE r.is_test = 0
           AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.kendo_call_id = r.subject_id)
           AND NOT EXISTS (SELECT 1 FROM kendo_call_ids c WHERE c.kendo_call_id = r.subject_id)";
    let total = db
        .first(&format!("SELECT COUNT(*) {UNMATCHED}"), &[])?
        .map_or(Ok(0), |r| count(&r, 0))?;
    let latest = db
        .run(
            &format!(
                "SELECT r.event_id, r.event, r.subject_id, r.received_at {UNMATCHED}
                  ORDER BY r.received_at DESC LIMIT ?1"
            ),
            &[limit.into()],
        )?
        .iter()
        .map(|r| {
            Ok(UnmatchedResult {
                event_id: r.text(0)?,
                event: r.text(1)?,
                call_id: r.text(2)?,
                received_at: r.int(3)?,
            })
        })
        .collect::<Result<_, LedgerError>>()?;
    Ok((total, latest))
}

/// A counter's value (0 when never bumped).
pub fn counter<D: Database + ?Sized>(db: &D, scope: &str, name: &str) -> Result<i64, LedgerError> {
    db.first(
        "SELECT value FROM counters WHERE scope = ?1 AND name = ?2",
        &[scope.into(), name.into()],
    )?
    .map_or(Ok(0), |r| r.int(0))
}

/// Every counter, as `(scope, name, value)`, by scope and name.
pub fn counters<D: Database + ?Sized>(db: &D) -> Result<Vec<(String, String, i64)>, LedgerError> {
    db.run(
        "SELECT scope, name, value FROM counters ORDER BY scope, name",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
    .collect()
}

/// The counters of the sources ([`crate::sources::ALL`]), leaving out the
/// teams' and any other scope's.
pub fn source_counters(counters: &[(String, String, i64)]) -> Vec<&(String, String, i64)> {
    counters
        .iter()
        .filter(|(scope, _, _)| crate::sources::ALL.contains(&scope.as_str()))
        .collect()
}

/// Requests to Kendo `team` made per `bucket_ms` bucket, for `buckets`
/// buckets ending at `now`, oldest first (the newest covers
/// `(now - bucket_ms, now]`). Read from the pacing history, which a worker
/// prunes to its last two windows when it starts: after a restart the
/// chart begins then.
pub fn sends_per_bucket<D: Database + ?Sized>(
    db: &D,
    team: &str,
    now: Millis,
    bucket_ms: i64,
    buckets: u32,
) -> Result<Vec<u64>, LedgerError> {
    let bucket_ms = bucket_ms.max(1);
    let n = i64::from(buckets);
    let mut out = vec![0; buckets as usize];
    for row in db.run(
        "SELECT (?2 - at) / ?3, COUNT(*) FROM sends
          WHERE team = ?1 AND at <= ?2 AND at > ?2 - ?3 * ?4
          GROUP BY (?2 - at) / ?3",
        &[team.into(), now.into(), bucket_ms.into(), n.into()],
    )? {
        let (age, requests) = (row.int(0)?, count(&row, 1)?);
        // `age` 0 is the newest bucket, the last one.
        if let Some(slot) = usize::try_from(n - 1 - age)
            .ok()
            .and_then(|i| out.get_mut(i))
        {
            *slot += requests;
        }
    }
    Ok(out)
}

/// Whether `source` has any call in the ledger or delivery in the inbox.
pub fn source_seen<D: Database + ?Sized>(db: &D, source: &str) -> Result<bool, LedgerError> {
    Ok(db
        .first(
            "SELECT EXISTS (SELECT 1 FROM ledger WHERE source = ?1)
                 OR EXISTS (SELECT 1 FROM inbox WHERE source = ?1)",
            &[source.into()],
        )?
        .map_or(Ok(0), |r| r.int(0))?
        != 0)
}

/// Deliveries kept with the reason they could not be processed.
pub fn unreadable_deliveries<D: Database + ?Sized>(db: &D) -> Result<u64, LedgerError> {
    db.first("SELECT COUNT(*) FROM inbox WHERE error IS NOT NULL", &[])?
        .map_or(Ok(0), |r| count(&r, 0))
}

/// What to read beyond what [`status`] always reads.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// How many of the latest errors (failed, dead, outcome-unknown).
    pub errors: u32,
    /// A call sent longer ago than this with no score is "unscored".
    pub unscored_after_ms: i64,
    /// How many Kendo results about unknown calls to list.
    pub unmatched: u32,
    /// How many recent deliveries (any state) to list; 0 for none.
    pub recent: u32,
    /// Teams to show even before they have a call (the configured ones).
    pub teams: Vec<String>,
    /// Requests to Kendo per time bucket, per team; `None` for no chart.
    pub sends: Option<SendsChart>,
    /// How many stored deliveries in trouble (failing, or whose processing
    /// stops or hangs) to list; 0 for none.
    pub troubled: u32,
}

/// The shape of the requests-per-window chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendsChart {
    /// One bucket's length: Kendo's pacing window (a minute for Kendo).
    pub bucket_ms: i64,
    /// How many buckets, newest last.
    pub buckets: u32,
    /// The limit per bucket the bridge paces to.
    pub limit: u32,
}

/// One team's line.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamStatus {
    pub counts: TeamCounts,
    pub queue_depth: u64,
    pub paused: Option<Paused>,
}

impl TeamStatus {
    pub fn team(&self) -> &str {
        &self.counts.team
    }
}

/// Requests to Kendo of one team, per bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSends {
    pub team: String,
    /// Oldest first; the last bucket ends now.
    pub per_bucket: Vec<u64>,
}

/// Everything `status`, the page and `GET /status` show, read at one
/// moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub now: Millis,
    pub unscored_after_ms: i64,
    /// `(source, cursor, moved at)`.
    pub checkpoints: Vec<(String, String, Millis)>,
    pub teams: Vec<TeamStatus>,
    /// `(reason code, count)`.
    pub skipped: Vec<(String, u64)>,
    pub waiting: Vec<(String, u64)>,
    /// `(state, reason code, count)` for failed, dead and outcome-unknown.
    pub errors_by_reason: Vec<(State, String, u64)>,
    /// `(scope, name, value)`.
    pub counters: Vec<(String, String, i64)>,
    pub errors: Vec<LedgerRow>,
    pub inbox_backlog: u64,
    pub health: Vec<SourceHealth>,
    /// `(team, count, oldest sent at)`.
    pub unscored: Vec<(String, u64, Millis)>,
    pub unmatched: (u64, Vec<UnmatchedResult>),
    pub recent: Vec<LedgerRow>,
    pub sends: Option<(SendsChart, Vec<TeamSends>)>,
    /// Write-backs to the sources (`hubspot.write_back`), per source.
    pub write_backs: Vec<WriteBackCounts>,
    /// Whether Aloware's calls wait for their transcript now; None when
    /// Aloware has sent nothing.
    pub aloware_transcripts: Option<TranscriptMode>,
    /// Stored deliveries not processed yet that failed, or whose processing
    /// stopped or hangs, oldest first ([`inbox::troubled`]).
    pub troubled: Vec<inbox::Troubled>,
}

impl Status {
    /// A per-team counter (0 when never bumped).
    pub fn team_counter(&self, team: &str, name: &str) -> i64 {
        self.counters
            .iter()
            .find(|(s, n, _)| s == team && n == name)
            .map_or(0, |(_, _, v)| *v)
    }

    /// Calls in `state`, every team together.
    pub fn calls(&self, state: State) -> u64 {
        self.teams.iter().map(|t| t.counts.get(state)).sum()
    }

    /// The counters of the sources ([`crate::sources::ALL`]).
    pub fn source_counters(&self) -> Vec<&(String, String, i64)> {
        source_counters(&self.counters)
    }
}

/// The states an operator is told about as errors.
pub const ERROR_STATES: [State; 3] = [State::Failed, State::Dead, State::OutcomeUnknown];

/// Reads everything an operator is shown, at `now`.
pub fn status<D: Database + ?Sized>(
    db: &D,
    now: Millis,
    options: &StatusOptions,
) -> Result<Status, LedgerError> {
    let mut counts = counts(db)?;
    for team in &options.teams {
        if !counts.iter().any(|c| &c.team == team) {
            counts.push(TeamCounts {
                team: team.clone(),
                by_state: Vec::new(),
            });
        }
    }
    counts.sort_by(|a, b| a.team.cmp(&b.team));
    let mut teams = Vec::new();
    for tc in counts {
        teams.push(TeamStatus {
            queue_depth: send::queue_depth(db, &tc.team)?,
            paused: send::paused(db, &tc.team)?,
            counts: tc,
        });
    }
    let recent_rows = if options.recent > 0 {
        recent(db, &[], false, options.recent)?
    } else {
        Vec::new()
    };
    let sends = match options.sends {
        Some(chart) => {
            let mut series = Vec::new();
            for t in &teams {
                series.push(TeamSends {
                    team: t.team().to_string(),
                    per_bucket: sends_per_bucket(
                        db,
                        t.team(),
                        now,
                        chart.bucket_ms,
                        chart.buckets,
                    )?,
                });
            }
            Some((chart, series))
        }
        None => None,
    };
    let mut errors_by_reason = Vec::new();
    for state in ERROR_STATES {
        for (code, n) in reasons(db, state)? {
            errors_by_reason.push((state, code, n));
        }
    }
    Ok(Status {
        now,
        errors_by_reason,
        unscored_after_ms: options.unscored_after_ms,
        checkpoints: checkpoint::all(db)?,
        teams,
        skipped: reasons(db, State::Skipped)?,
        waiting: reasons(db, State::Waiting)?,
        counters: counters(db)?,
        errors: recent(db, &ERROR_STATES, false, options.errors)?,
        inbox_backlog: inbox::backlog(db)?,
        health: health::all(db)?,
        unscored: unscored(db, now - options.unscored_after_ms)?,
        unmatched: unmatched_results(db, options.unmatched)?,
        recent: recent_rows,
        sends,
        write_backs: write_back::counts(db)?,
        aloware_transcripts: if source_seen(db, aloware::SOURCE)? {
            Some(aloware::transcript_mode(db, now)?)
        } else {
            None
        },
        troubled: if options.troubled > 0 {
            inbox::troubled(db, options.troubled, now)?
        } else {
            Vec::new()
        },
    })
}

//! Durable state in SQLite: checkpoints, the ledger, the outbox, the webhook
//! inbox, Kendo's results and the send history that paces each key.
//!
//! Every guarantee the bridge makes rests on a few transactions here:
//!
//! - [`Store::intake`] records a batch of decisions *and* moves the source's
//!   checkpoint in one transaction, so a checkpoint never covers a call that
//!   is not yet in the ledger and the outbox.
//! - The ledger is keyed by (source, source id, Kendo team). A call already
//!   queued, in flight or sent is never queued again, whichever path (poll,
//!   webhook, backfill) brings it back.
//! - [`Store::begin_send`] is committed *before* the request leaves, so after
//!   a crash the rows still marked in flight are exactly the sends whose
//!   outcome is unknown ([`Store::recover_in_flight`]).
//! - A webhook is in [`Store::inbox_insert`]'s committed row before it is
//!   answered.
//!
//! Times are epoch milliseconds passed in by the caller: the store never
//! reads a clock, so tests drive time.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

/// Epoch milliseconds.
pub type Millis = i64;

/// The schema: one numbered file per change under `core/migrations/`,
/// shared with the Spin app, which applies the same files.
use kendo_bridge_core::schema::MIGRATIONS;

/// A call's life in the database is the core's ([`kendo_bridge_core::ledger`]),
/// run here on this connection; this store adds what only the host has
/// (operator commands, the status page, source health, write-backs).
use kendo_bridge_core::answer::Action;
pub use kendo_bridge_core::ledger::hold::{HeldCall, TranscriptWaitDue};
pub use kendo_bridge_core::ledger::inbox::{InboxEntry, InboxInsert};
pub use kendo_bridge_core::ledger::intake::{Intake, IntakeReport, Outcome};
pub use kendo_bridge_core::ledger::send::{
    Claim, ClaimRequest, OutboxItem, Paused, Recovered, SendPacing,
};
use kendo_bridge_core::ledger::{self, record_call_id, set_state};
pub use kendo_bridge_core::ledger::{CallKey, LedgerError, State, counter};

fn migrations() -> rusqlite_migration::Migrations<'static> {
    rusqlite_migration::Migrations::new(
        MIGRATIONS
            .iter()
            .map(|sql| rusqlite_migration::M::up(sql))
            .collect(),
    )
}

/// Why the state database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created.
    #[error("cannot open the state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A newer kendo-bridge wrote this database; refusing protects its data.
    #[error(
        "the state database was written by a newer kendo-bridge (schema {found}; this build knows {known}): upgrade kendo-bridge or point --state at another file"
    )]
    NewerSchema { found: i64, known: i64 },
    /// A numbered migration could not be applied.
    #[error("cannot bring the state database to this build's schema: {0}")]
    Migration(String),
    /// A row holds a value this build does not understand.
    #[error("the state database holds an unknown {what} `{value}`")]
    Corrupt { what: &'static str, value: String },
    /// Any other SQLite failure.
    #[error("state database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A rule of the call's life could not be carried out.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The thread running a store operation panicked or was cancelled.
    #[error("a state database task was interrupted: {0}")]
    Interrupted(String),
}

type Result<T> = std::result::Result<T, StoreError>;

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
    /// Optional fields the call was sent without (see [`Outcome::Send`]).
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

/// Which parked call `settle` acts on: a source id, narrowed by source and
/// team when it is ambiguous.
#[derive(Debug, Clone, Default)]
pub struct SettleFilter {
    pub source_id: String,
    pub source: Option<String>,
    pub team: Option<String>,
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

/// Which dead letters `replay` puts back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub team: Option<String>,
    pub source: Option<String>,
    pub source_id: Option<String>,
    /// Also replay permanent rejections (`failed`), not only `dead`.
    pub include_failed: bool,
}

/// SQLite's "database is locked" or "busy".
fn is_locked(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

pub use kendo_bridge_core::ledger::health::SourceHealth;

/// The state database.
pub struct Store {
    conn: Connection,
    /// Sources whose records get write-backs (`[hubspot] write_back`).
    write_back: write_back::WriteBackSources,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode with
    /// full synchronisation: a committed row survives a crash of the process
    /// or the machine.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A missing directory would surface as SQLite's vague
            // "unable to open database file".
            let _ = std::fs::create_dir_all(dir);
        }
        let mut attempt = 0u64;
        loop {
            let conn = Connection::open(path).map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            match Store::init(conn) {
                // Processes opening a new file together: switching it to WAL
                // needs the whole file, and SQLite answers "database is
                // locked" at once (without waiting out the busy timeout)
                // to the one that loses; it finds WAL set a moment later.
                Err(StoreError::Sql(e)) if is_locked(&e) && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                }
                other => return other,
            }
        }
    }

    /// A private in-memory database, for tests and `map`-style dry runs.
    pub fn open_in_memory() -> Result<Store> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // journal_mode answers with a row, so it is a query, not an execute.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::NewerSchema { found, known });
        }
        let mut conn = conn;
        let mut attempt = 0u64;
        // Another process on the same file (a second `serve`, a CLI command
        // at its start) may be migrating it at this moment: the migration
        // that loses the race rolls back whole (one transaction), and the
        // schema it finds after a moment is the one it wanted.
        while let Err(e) = migrations().to_latest(&mut conn) {
            let now: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if now == known {
                break;
            }
            attempt += 1;
            if attempt >= 5 {
                return Err(StoreError::Migration(e.to_string()));
            }
            std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
        }
        Ok(Store {
            conn,
            write_back: write_back::WriteBackSources::default(),
        })
    }

    // ---- checkpoints -------------------------------------------------------

    /// The stored cursor of a source (its JSON), if any.
    pub fn checkpoint(&self, source: &str) -> Result<Option<String>> {
        Ok(ledger::checkpoint::get(&self.conn, source)?)
    }

    /// Every checkpoint with the time it last moved.
    pub fn checkpoints(&self) -> Result<Vec<(String, String, Millis)>> {
        Ok(ledger::checkpoint::all(&self.conn)?)
    }

    /// Forgets a source's checkpoint (the next poll starts from its initial
    /// look-back).
    pub fn reset_checkpoint(&mut self, source: &str) -> Result<bool> {
        Ok(ledger::checkpoint::reset(&self.conn, source)?)
    }

    /// See [`ledger::checkpoint::first_look_back`].
    pub fn first_look_back(&mut self, checkpoint: &str, candidate: Millis) -> Result<Millis> {
        Ok(ledger::checkpoint::first_look_back(
            &self.conn, checkpoint, candidate,
        )?)
    }

    // ---- intake --------------------------------------------------------------

    /// Records decided records and, in the same transaction, moves `source`'s
    /// checkpoint to `cursor` ([`ledger::intake::intake`]).
    pub fn intake(
        &mut self,
        items: &[Intake],
        checkpoint: Option<(&str, &str)>,
        now: Millis,
    ) -> Result<IntakeReport> {
        Ok(ledger::intake::intake(&self.conn, items, checkpoint, now)?)
    }

    /// See [`ledger::intake::is_settled`].
    pub fn is_settled(&self, source: &str, source_id: &str, version: &str) -> Result<bool> {
        Ok(ledger::intake::is_settled(
            &self.conn, source, source_id, version,
        )?)
    }

    // ---- delivery ----------------------------------------------------------

    /// Sends of `team` due at `now`, oldest first.
    pub fn due(&self, team: &str, now: Millis, limit: u32) -> Result<Vec<OutboxItem>> {
        Ok(ledger::send::due(&self.conn, team, now, limit)?)
    }

    /// Takes the oldest due send of a team if the key's pacing allows one
    /// now ([`ledger::send::claim_send`]).
    pub fn claim_send(&mut self, request: &ClaimRequest<'_>, now: Millis) -> Result<Claim> {
        Ok(ledger::send::claim_send(&self.conn, request, now)?)
    }

    /// When the next pending send of `team` falls due, if any is pending.
    pub fn next_due_at(&self, team: &str) -> Result<Option<Millis>> {
        Ok(ledger::send::next_due_at(&self.conn, team)?)
    }

    /// Pending sends of a team (the queue depth).
    pub fn queue_depth(&self, team: &str) -> Result<u64> {
        Ok(ledger::send::queue_depth(&self.conn, team)?)
    }

    /// Marks one given send as in flight, without pacing or a lease: for
    /// single-process tools and tests ([`ledger::send::begin_send`]).
    pub fn begin_send(&mut self, item: &OutboxItem, now: Millis) -> Result<()> {
        Ok(ledger::send::begin_send(&self.conn, item, now)?)
    }

    /// Carries out what Kendo's answer means for a send
    /// ([`ledger::record::record`]); a 201 also queues the call's
    /// write-backs, in the same transaction. False (and nothing changed)
    /// when the send's claim no longer holds it.
    pub fn record(
        &mut self,
        item: &OutboxItem,
        action: &Action,
        key_fingerprint: &str,
        now: Millis,
    ) -> Result<bool> {
        let write_back = self.write_back.covers(&item.key.source);
        Ok(ledger::record::record(
            &self.conn,
            item,
            action,
            key_fingerprint,
            now,
            |conn, key, call_id| {
                if write_back {
                    write_back::enqueue_sent(conn, key, call_id, now)?;
                }
                Ok(())
            },
        )?)
    }

    /// Kendo has the call: keep its `callId` and never send it again.
    pub fn mark_created(
        &mut self,
        item: &OutboxItem,
        kendo_call_id: Option<&str>,
        now: Millis,
    ) -> Result<()> {
        let created = Action::Created {
            call_id: kendo_call_id.map(str::to_string),
            after_lost_answers: 0,
        };
        self.record(item, &created, "", now)?;
        Ok(())
    }

    /// The operator found the parked call in Kendo: it is sent, with the
    /// callId they saw if given. Returns the keys settled.
    pub fn settle_sent(
        &mut self,
        filter: &SettleFilter,
        kendo_call_id: Option<&str>,
        now: Millis,
    ) -> Result<Vec<CallKey>> {
        let write_back = self.write_back.clone();
        let tx = self.write_transaction()?;
        let keys = parked_keys(&tx, filter)?;
        for key in &keys {
            tx.execute(
                "DELETE FROM outbox WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                params![key.source, key.source_id, key.team],
            )?;
            // Sent as a 201 would have made it: its write-back too.
            if write_back.covers(&key.source) {
                write_back::enqueue_sent(&tx, key, kendo_call_id, now)?;
            }
            tx.execute(
                "UPDATE ledger SET state = 'sent', kendo_call_id = COALESCE(?4, kendo_call_id),
                        sent_at = ?5, updated_at = ?5, reason_code = 'settled-sent',
                        reason = 'marked sent by the operator after checking Kendo'
                 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                params![key.source, key.source_id, key.team, kendo_call_id, now],
            )?;
            if let Some(call_id) = kendo_call_id {
                record_call_id(&*tx, key, call_id, now)?;
            }
        }
        tx.commit()?;
        Ok(keys)
    }

    /// The operator found the parked call missing from Kendo: it goes back
    /// to the queue, due now, with a fresh budget of lost answers.
    pub fn settle_resend(&mut self, filter: &SettleFilter, now: Millis) -> Result<Vec<CallKey>> {
        let tx = self.write_transaction()?;
        let keys = parked_keys(&tx, filter)?;
        for key in &keys {
            tx.execute(
                "UPDATE outbox SET not_before = ?4, ambiguous = 0, claim = NULL, lease_until = NULL
                 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                params![key.source, key.source_id, key.team, now],
            )?;
            set_state(
                &*tx,
                key,
                State::Queued,
                Some("settled-resend"),
                Some("put back in the queue by the operator after checking Kendo"),
                now,
            )?;
        }
        tx.commit()?;
        Ok(keys)
    }

    /// The connection, for the core's rules that read and write several
    /// tables in one of their own transactions.
    pub fn database(&self) -> &Connection {
        &self.conn
    }

    /// Whether this database takes writes now: a write transaction is
    /// started and rolled back, changing nothing.
    pub fn check_writable(&mut self) -> Result<()> {
        let tx = self.write_transaction()?;
        tx.execute(
            "INSERT INTO checkpoints (source, cursor, updated_at) VALUES ('doctor', '', 0)",
            [],
        )?;
        tx.rollback()?;
        Ok(())
    }

    /// A transaction that holds the write lock from its start, for those
    /// that read before they write. A deferred one would fail at once with
    /// "database is locked" (no busy wait) when another process, a running
    /// `serve` say, wrote between its read and its first write.
    fn write_transaction(&mut self) -> Result<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// The calls parked as `outcome-unknown` that a settle filter names.
    pub fn parked(&self, filter: &SettleFilter) -> Result<Vec<CallKey>> {
        parked_keys(&self.conn, filter)
    }

    /// Calls that Kendo may hold more than once (a send lost its answer, or
    /// was in flight at a crash), newest first, each with every callId
    /// Kendo returned for it.
    pub fn possible_duplicates(&self, limit: u32) -> Result<Vec<PossibleDuplicate>> {
        let mut stmt = self.conn.prepare(
            "SELECT source, source_id, team, state FROM ledger WHERE maybe_duplicated = 1
             ORDER BY updated_at DESC, rowid DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok((
                CallKey {
                    source: r.get(0)?,
                    source_id: r.get(1)?,
                    team: r.get(2)?,
                },
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, state) = row?;
            let state = State::parse(&state).ok_or(StoreError::Corrupt {
                what: "ledger state",
                value: state,
            })?;
            let call_ids = self.kendo_call_ids(&key)?;
            out.push(PossibleDuplicate {
                key,
                state,
                call_ids,
            });
        }
        Ok(out)
    }

    /// Every callId Kendo returned for a call, oldest first.
    pub fn kendo_call_ids(&self, key: &CallKey) -> Result<Vec<(String, Millis)>> {
        let mut stmt = self.conn.prepare(
            "SELECT kendo_call_id, at FROM kendo_call_ids
             WHERE source = ?1 AND source_id = ?2 AND team = ?3 ORDER BY at, rowid",
        )?;
        let rows = stmt.query_map(params![key.source, key.source_id, key.team], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sends a dead instance left in flight ([`ledger::send::recover_in_flight`]).
    pub fn recover_in_flight(&mut self, ambiguous_resends: u32, now: Millis) -> Result<Recovered> {
        let write_back = self.write_back.clone();
        Ok(ledger::send::recover_in_flight(
            &self.conn,
            ambiguous_resends,
            now,
            |conn, key, call_id| {
                if write_back.covers(&key.source) {
                    write_back::enqueue_sent(conn, key, call_id, now)?;
                }
                Ok(())
            },
        )?)
    }

    /// Keeps Kendo's 2xx on a send before its answer is read
    /// ([`ledger::send::answered`]).
    pub fn answered(&mut self, item: &OutboxItem, status: u16) -> Result<()> {
        Ok(ledger::send::answered(&self.conn, item, status)?)
    }

    /// Request times of `team` at or after `since` (the pacing history).
    pub fn sends_since(&self, team: &str, since: Millis) -> Result<Vec<Millis>> {
        Ok(ledger::send::sends_since(&self.conn, team, since)?)
    }

    // ---- paused keys ---------------------------------------------------------

    /// Stops sending for a team until its key changes or `resume` is called.
    pub fn pause_team(
        &mut self,
        team: &str,
        reason: &str,
        key_fingerprint: &str,
        now: Millis,
    ) -> Result<()> {
        Ok(ledger::send::pause(
            &self.conn,
            team,
            reason,
            key_fingerprint,
            now,
        )?)
    }

    /// Why a team is paused, if it is.
    pub fn paused(&self, team: &str) -> Result<Option<Paused>> {
        Ok(ledger::send::paused(&self.conn, team)?)
    }

    /// Lifts a pause. Returns whether there was one.
    pub fn resume_team(&mut self, team: &str) -> Result<bool> {
        Ok(ledger::send::resume(&self.conn, team)?)
    }

    // ---- webhook inbox -------------------------------------------------------

    /// Stores a verified webhook delivery. Committed before this returns, so
    /// the caller may answer 2xx.
    pub fn inbox_insert(
        &mut self,
        source: &str,
        delivery_id: &str,
        event: Option<&str>,
        body: &[u8],
        now: Millis,
    ) -> Result<InboxInsert> {
        Ok(ledger::inbox::insert(
            &self.conn,
            source,
            delivery_id,
            event,
            body,
            now,
        )?)
    }

    /// Deliveries not processed yet, oldest first.
    pub fn inbox_pending(&self, limit: u32) -> Result<Vec<InboxEntry>> {
        Ok(ledger::inbox::pending(&self.conn, limit)?)
    }

    /// Takes stored deliveries due at `now` under a lease
    /// ([`ledger::inbox::claim`]).
    pub fn inbox_claim(
        &mut self,
        limit: u32,
        lease_ms: Millis,
        now: Millis,
    ) -> Result<Vec<InboxEntry>> {
        Ok(ledger::inbox::claim(&self.conn, limit, lease_ms, now)?)
    }

    /// A delivery that failed for a passing reason is tried again at
    /// `not_before`; the others are not held up by it.
    pub fn inbox_defer(&mut self, id: i64, not_before: Millis, error: &str) -> Result<()> {
        Ok(ledger::inbox::defer(&self.conn, id, not_before, error)?)
    }

    /// Notes that `source` delivered a transcript at `now`.
    pub fn transcript_seen(&mut self, source: &str, now: Millis) -> Result<()> {
        Ok(ledger::hold::transcript_seen(&self.conn, source, now)?)
    }

    /// Whether Aloware's calls wait for a transcript at `now` (the core's
    /// rule, from when the last one arrived).
    pub fn aloware_transcript_mode(
        &self,
        now: Millis,
    ) -> Result<kendo_bridge_core::sources::aloware::TranscriptMode> {
        Ok(kendo_bridge_core::sources::aloware::transcript_mode(
            &self.conn, now,
        )?)
    }

    /// Whether `source` has any call in the ledger or delivery in the inbox.
    pub fn source_seen(&self, source: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM ledger WHERE source = ?1)
                 OR EXISTS (SELECT 1 FROM inbox WHERE source = ?1)",
            params![source],
            |r| r.get::<_, bool>(0),
        )?)
    }

    /// Deliveries taken but not started, given back (the process stops).
    pub fn inbox_release(&mut self, ids: &[i64]) -> Result<()> {
        Ok(ledger::inbox::release(&self.conn, ids)?)
    }

    /// When the next deferred delivery falls due, if any waits.
    pub fn inbox_next_due(&self) -> Result<Option<Millis>> {
        Ok(ledger::inbox::next_due(&self.conn)?)
    }

    /// Marks a delivery processed, with the error that ended it if any.
    pub fn inbox_done(&mut self, id: i64, error: Option<&str>, now: Millis) -> Result<()> {
        Ok(ledger::inbox::done(&self.conn, id, error, now)?)
    }

    /// Deliveries stored but not processed yet.
    pub fn inbox_backlog(&self) -> Result<u64> {
        Ok(ledger::inbox::backlog(&self.conn)?)
    }

    // ---- re-deciding ------------------------------------------------------------

    /// The digest of the rules the stored decisions were made under.
    pub fn decision_fingerprint(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT fingerprint FROM decision_rules WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the digest of the rules now in force.
    pub fn set_decision_fingerprint(&mut self, fingerprint: &str, now: Millis) -> Result<()> {
        self.conn.execute(
            "INSERT INTO decision_rules (id, fingerprint, changed_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint,
                 changed_at = excluded.changed_at",
            params![fingerprint, now],
        )?;
        Ok(())
    }

    /// Calls in `state` whose reason code is one of `codes`, with their
    /// ledger version, oldest first: the candidates for a new decision.
    pub fn decided_for(&self, state: State, codes: &[&str]) -> Result<Vec<(CallKey, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT source, source_id, team, version, reason_code FROM ledger
             WHERE state = ?1 ORDER BY updated_at, source, source_id",
        )?;
        let rows = stmt.query_map([state.as_str()], |r| {
            Ok((
                CallKey {
                    source: r.get(0)?,
                    source_id: r.get(1)?,
                    team: r.get(2)?,
                },
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, version, code) = row?;
            if codes.is_empty() || code.as_deref().is_some_and(|c| codes.contains(&c)) {
                out.push((key, version));
            }
        }
        Ok(out)
    }

    // ---- held source records (Aloware) ----------------------------------------

    /// Keeps what a delivery brought with what is held for the call
    /// ([`ledger::hold::hold`]).
    pub fn hold(
        &mut self,
        source: &str,
        source_id: &str,
        body: Option<&str>,
        transcript: Option<&str>,
        now: Millis,
    ) -> Result<HeldCall> {
        Ok(ledger::hold::hold(
            &self.conn, source, source_id, body, transcript, now,
        )?)
    }

    /// What is held for a call.
    pub fn held(&self, source: &str, source_id: &str) -> Result<Option<HeldCall>> {
        Ok(ledger::hold::held(&self.conn, source, source_id)?)
    }

    // ---- call data records (Salesloft) ------------------------------------------

    /// Keeps a call's call data record (see [`ledger::records::put`]).
    pub fn put_call_data_record(
        &mut self,
        source: &str,
        call_id: &str,
        record: &str,
        updated_at: &str,
        now: Millis,
    ) -> Result<()> {
        Ok(ledger::records::put(
            &self.conn, source, call_id, record, updated_at, now,
        )?)
    }

    /// A call's call data record, if one was read.
    pub fn call_data_record(&self, source: &str, call_id: &str) -> Result<Option<String>> {
        Ok(ledger::records::get(&self.conn, source, call_id)?)
    }

    /// Forgets call data records stored before `before`.
    pub fn prune_call_data_records(&mut self, before: Millis) -> Result<usize> {
        Ok(ledger::records::prune(&self.conn, before)?)
    }

    /// Calls of `source` waiting with reason `code`, and when each was
    /// decided so: `(source_id, version, decided_at)`, oldest first.
    pub fn waiting_with(&self, source: &str, code: &str) -> Result<Vec<(String, String, Millis)>> {
        Ok(ledger::intake::waiting(&self.conn, source, code)?
            .into_iter()
            .map(|(id, version, _, at)| (id, version, at))
            .collect())
    }

    /// Sets when a held call's wait for its transcript ends (0: over).
    pub fn set_transcript_due(&mut self, source: &str, source_id: &str, at: Millis) -> Result<()> {
        Ok(ledger::hold::set_transcript_due(
            &self.conn, source, source_id, at,
        )?)
    }

    /// Held calls of `source` whose wait for a transcript ran out by `now`.
    pub fn transcript_waits_due(
        &self,
        source: &str,
        now: Millis,
    ) -> Result<Vec<TranscriptWaitDue>> {
        Ok(ledger::hold::transcript_waits_due(&self.conn, source, now)?)
    }

    /// When the next wait for a transcript of `source` ends, if any call
    /// still waits for one.
    pub fn next_transcript_due(&self, source: &str) -> Result<Option<Millis>> {
        Ok(ledger::hold::next_transcript_due(&self.conn, source)?)
    }

    // ---- Kendo results ---------------------------------------------------------

    /// Records a Kendo webhook result. Returns false when the event id was
    /// seen before.
    #[allow(clippy::too_many_arguments)]
    pub fn record_result(
        &mut self,
        event_id: &str,
        event: &str,
        subject_id: &str,
        ai_score: Option<f64>,
        is_test: bool,
        now: Millis,
    ) -> Result<bool> {
        let result = write_back::KendoResult {
            event_id,
            event,
            subject_id,
            ai_score,
            is_test,
            scored_at: None,
        };
        self.record_result_and_write_back(&result, now)
    }

    /// Per team, calls Kendo accepted before `before` that no (non-test)
    /// Kendo result has scored yet: `(team, count, oldest sent_at)`.
    pub fn unscored(&self, before: Millis) -> Result<Vec<(String, u64, Millis)>> {
        let mut stmt = self.conn.prepare(
            "SELECT l.team, COUNT(*), MIN(l.sent_at) FROM ledger l
              WHERE l.state = 'sent' AND l.sent_at < ?1
                AND NOT EXISTS (SELECT 1 FROM kendo_results r
                                 WHERE r.subject_id = l.kendo_call_id AND r.is_test = 0)
              GROUP BY l.team ORDER BY l.team",
        )?;
        let rows = stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Kendo results (not tests) about a callId the bridge never received
    /// from Kendo: how many, and the newest `limit`.
    pub fn unmatched_results(&self, limit: u32) -> Result<(u64, Vec<UnmatchedResult>)> {
        const UNMATCHED: &str = "FROM kendo_results r WHERE r.is_test = 0
               AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.kendo_call_id = r.subject_id)
               AND NOT EXISTS (SELECT 1 FROM kendo_call_ids c WHERE c.kendo_call_id = r.subject_id)";
        let count: u64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) {UNMATCHED}"), [], |r| r.get(0))?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT r.event_id, r.event, r.subject_id, r.received_at {UNMATCHED}
              ORDER BY r.received_at DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], |r| {
            Ok(UnmatchedResult {
                event_id: r.get(0)?,
                event: r.get(1)?,
                call_id: r.get(2)?,
                received_at: r.get(3)?,
            })
        })?;
        Ok((count, rows.collect::<rusqlite::Result<_>>()?))
    }

    // ---- counters ----------------------------------------------------------------

    /// Adds to a counter.
    pub fn bump(&mut self, scope: &str, name: &str, by: i64) -> Result<()> {
        Ok(ledger::bump(&self.conn, scope, name, by)?)
    }

    /// A counter's value (0 when never bumped).
    pub fn counter(&self, scope: &str, name: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM counters WHERE scope = ?1 AND name = ?2",
                params![scope, name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Every counter, as (scope, name, value).
    pub fn counters(&self) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT scope, name, value FROM counters ORDER BY scope, name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- source health ---------------------------------------------------------------

    /// Records that `topic` of `source` (`poll`, `transcripts`,
    /// `dispositions`, ...) worked at `now`, clearing its problem.
    pub fn health_ok(&mut self, source: &str, topic: &str, now: Millis) -> Result<()> {
        Ok(ledger::health::ok(&self.conn, source, topic, now)?)
    }

    /// Records a problem with `topic` of `source`. Returns true when it is
    /// new (the topic was healthy, or had another problem): the caller logs
    /// a new problem once at `warn`, and repeats at `debug`.
    pub fn health_problem(
        &mut self,
        source: &str,
        topic: &str,
        problem: &str,
        now: Millis,
    ) -> Result<bool> {
        Ok(ledger::health::problem(
            &self.conn, source, topic, problem, now,
        )?)
    }

    /// Every source topic's health, by source and topic.
    pub fn health(&self) -> Result<Vec<SourceHealth>> {
        Ok(ledger::health::all(&self.conn)?)
    }

    // ---- reporting -----------------------------------------------------------------

    /// Ledger counts per team and state.
    pub fn counts(&self) -> Result<Vec<TeamCounts>> {
        let mut stmt = self.conn.prepare(
            "SELECT team, state, COUNT(*) FROM ledger GROUP BY team, state ORDER BY team",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u64>(2)?,
            ))
        })?;
        let mut out: Vec<TeamCounts> = Vec::new();
        for row in rows {
            let (team, state, n) = row?;
            let state = State::parse(&state).ok_or(StoreError::Corrupt {
                what: "ledger state",
                value: state,
            })?;
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

    /// How many records were skipped or are waiting, per reason code.
    pub fn reasons(&self, state: State) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT COALESCE(reason_code, '-'), COUNT(*) FROM ledger WHERE state = ?1
             GROUP BY reason_code ORDER BY COUNT(*) DESC, reason_code",
        )?;
        let rows = stmt.query_map([state.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The most recently changed ledger rows, newest first, optionally only
    /// in some states.
    pub fn recent(&self, states: &[State], limit: u32) -> Result<Vec<LedgerRow>> {
        self.recent_where(states, false, limit)
    }

    /// As [`Store::recent`]; with `maybe_duplicated`, only the calls Kendo
    /// may hold more than once.
    pub fn recent_where(
        &self,
        states: &[State],
        maybe_duplicated: bool,
        limit: u32,
    ) -> Result<Vec<LedgerRow>> {
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
        let sql = format!(
            "SELECT l.source, l.source_id, l.team, l.state, l.sync_method, l.reason_code, l.reason,
                    l.title, l.rep_email, l.attempts, l.kendo_call_id, l.seen_count, l.updated_at, l.sent_at,
                    l.maybe_duplicated,
                    (SELECT r.ai_score FROM kendo_results r
                      WHERE r.subject_id = l.kendo_call_id AND r.is_test = 0
                      ORDER BY r.received_at DESC LIMIT 1),
                    l.warnings
             FROM ledger l {filter} ORDER BY l.updated_at DESC, l.rowid DESC LIMIT ?1"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([limit], ledger_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// One call's ledger rows: one, under the team it was last routed to
    /// (databases written before team changes were followed may hold more).
    pub fn ledger(&self, source: &str, source_id: &str) -> Result<Vec<LedgerRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT l.source, l.source_id, l.team, l.state, l.sync_method, l.reason_code, l.reason,
                    l.title, l.rep_email, l.attempts, l.kendo_call_id, l.seen_count, l.updated_at, l.sent_at,
                    l.maybe_duplicated,
                    (SELECT r.ai_score FROM kendo_results r
                      WHERE r.subject_id = l.kendo_call_id AND r.is_test = 0
                      ORDER BY r.received_at DESC LIMIT 1),
                    l.warnings
             FROM ledger l WHERE l.source = ?1 AND l.source_id = ?2 ORDER BY l.team",
        )?;
        let rows = stmt.query_map(params![source, source_id], ledger_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Puts dead letters (and, when asked, permanent rejections) back in the
    /// queue, due now, with their attempt count reset. Returns how many.
    pub fn replay(&mut self, filter: &ReplayFilter, now: Millis) -> Result<usize> {
        let tx = self.write_transaction()?;
        let states: &[&str] = if filter.include_failed {
            &["dead", "failed"]
        } else {
            &["dead"]
        };
        let keys: Vec<CallKey> = {
            let mut stmt = tx.prepare(
                "SELECT o.source, o.source_id, o.team, l.state FROM outbox o
                 JOIN ledger l ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team
                 WHERE l.state IN ('dead', 'failed')
                   AND (?1 IS NULL OR o.team = ?1)
                   AND (?2 IS NULL OR o.source = ?2)
                   AND (?3 IS NULL OR o.source_id = ?3)",
            )?;
            let rows =
                stmt.query_map(params![filter.team, filter.source, filter.source_id], |r| {
                    Ok((
                        CallKey {
                            source: r.get(0)?,
                            source_id: r.get(1)?,
                            team: r.get(2)?,
                        },
                        r.get::<_, String>(3)?,
                    ))
                })?;
            let mut keys = Vec::new();
            for row in rows {
                let (key, state) = row?;
                if states.contains(&state.as_str()) {
                    keys.push(key);
                }
            }
            keys
        };
        for key in &keys {
            tx.execute(
                "UPDATE outbox SET not_before = ?4, attempts = 0, claim = NULL, lease_until = NULL
                 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                params![key.source, key.source_id, key.team, now],
            )?;
            tx.execute(
                "UPDATE ledger SET attempts = 0 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                params![key.source, key.source_id, key.team],
            )?;
            set_state(
                &*tx,
                key,
                State::Queued,
                Some("replayed"),
                Some("put back in the queue by replay"),
                now,
            )?;
        }
        tx.commit()?;
        Ok(keys.len())
    }
}

mod write_back;
pub use write_back::{
    KendoResult, WriteBackCounts, WriteBackFields, WriteBackItem, WriteBackState,
    write_back_counter,
};

/// The store shared by the bridge's tasks. SQLite calls block (a commit
/// waits for the disk), so they run on tokio's blocking pool, one at a time.
#[derive(Clone)]
pub struct SharedStore(std::sync::Arc<std::sync::Mutex<Store>>);

impl SharedStore {
    /// Shares a store.
    pub fn new(store: Store) -> SharedStore {
        SharedStore(std::sync::Arc::new(std::sync::Mutex::new(store)))
    }

    /// Runs `f` on the store off the async threads.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R> + Send + 'static,
    {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in another store call cannot leave SQLite half-written
            // (its transaction rolled back), so a poisoned lock is safe to use.
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Interrupted(e.to_string()))?
    }

    /// Runs `f` on the store on this thread (for synchronous callers such as
    /// the operator commands).
    pub fn run_here<R>(&self, f: impl FnOnce(&mut Store) -> Result<R>) -> Result<R> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

fn ledger_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LedgerRow>> {
    let state: String = r.get(3)?;
    let Some(parsed) = State::parse(&state) else {
        return Ok(Err(StoreError::Corrupt {
            what: "ledger state",
            value: state,
        }));
    };
    Ok(Ok(LedgerRow {
        key: CallKey {
            source: r.get(0)?,
            source_id: r.get(1)?,
            team: r.get(2)?,
        },
        state: parsed,
        sync_method: r.get(4)?,
        reason_code: r.get(5)?,
        reason: r.get(6)?,
        title: r.get(7)?,
        rep_email: r.get(8)?,
        attempts: r.get(9)?,
        kendo_call_id: r.get(10)?,
        seen_count: r.get(11)?,
        updated_at: r.get(12)?,
        sent_at: r.get(13)?,
        maybe_duplicated: r.get(14)?,
        ai_score: r.get(15)?,
        warnings: r.get(16)?,
    }))
}

/// The parked sends a settle filter names.
fn parked_keys(conn: &Connection, filter: &SettleFilter) -> Result<Vec<CallKey>> {
    let mut stmt = conn.prepare(
        "SELECT o.source, o.source_id, o.team FROM outbox o
           JOIN ledger l ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team
         WHERE l.state = 'outcome-unknown' AND o.source_id = ?1
           AND (?2 IS NULL OR o.source = ?2) AND (?3 IS NULL OR o.team = ?3)",
    )?;
    let rows = stmt.query_map(params![filter.source_id, filter.source, filter.team], |r| {
        Ok(CallKey {
            source: r.get(0)?,
            source_id: r.get(1)?,
            team: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- the status page -----------------------------------------------------------

impl Store {
    /// Requests to Kendo `team` made per `bucket_ms` bucket, for `buckets`
    /// buckets ending at `now`, oldest first (the newest covers
    /// `(now - bucket_ms, now]`). Read from the pacing history, which a
    /// worker prunes to its last two windows when it starts: after a
    /// restart the chart begins then.
    pub fn sends_per_bucket(
        &self,
        team: &str,
        now: Millis,
        bucket_ms: i64,
        buckets: u32,
    ) -> Result<Vec<u64>> {
        let bucket_ms = bucket_ms.max(1);
        let n = i64::from(buckets);
        let mut stmt = self.conn.prepare(
            "SELECT (?2 - at) / ?3, COUNT(*) FROM sends
              WHERE team = ?1 AND at <= ?2 AND at > ?2 - ?3 * ?4
              GROUP BY (?2 - at) / ?3",
        )?;
        let rows = stmt.query_map(params![team, now, bucket_ms, n], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?))
        })?;
        let mut out = vec![0; buckets as usize];
        for row in rows {
            let (age, count) = row?;
            // `age` 0 is the newest bucket, the last one.
            if let Some(slot) = usize::try_from(n - 1 - age)
                .ok()
                .and_then(|i| out.get_mut(i))
            {
                *slot += count;
            }
        }
        Ok(out)
    }

    /// Records a request to Kendo at `at`, as a send does (for tests of
    /// what reads the history).
    #[cfg(test)]
    pub(crate) fn record_send_for_test(&mut self, team: &str, at: Millis) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sends (team, at) VALUES (?1, ?2)",
            params![team, at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(retry_at: Millis, reason: &str) -> Action {
        Action::Retry {
            retry_at,
            reason: reason.into(),
        }
    }

    fn key(id: &str) -> CallKey {
        CallKey {
            source: "salesloft".into(),
            source_id: id.into(),
            team: "main".into(),
        }
    }

    fn send(id: &str, version: &str) -> Intake {
        Intake {
            key: key(id),
            version: version.into(),
            sync_method: "polling".into(),
            outcome: Outcome::Send {
                payload: format!("{{\"id\":\"{id}\",\"v\":\"{version}\"}}"),
                title: "Outbound - Connected".into(),
                rep_email: Some("jamie@yourco.com".into()),
                warnings: None,
            },
        }
    }

    fn skip(id: &str, version: &str) -> Intake {
        Intake {
            key: key(id),
            version: version.into(),
            sync_method: "polling".into(),
            outcome: Outcome::Skip {
                code: "no-media".into(),
                detail: "no recording and no transcript".into(),
            },
        }
    }

    fn wait(id: &str, version: &str) -> Intake {
        Intake {
            key: key(id),
            version: version.into(),
            sync_method: "polling".into(),
            outcome: Outcome::Wait {
                code: "recording-processing".into(),
                detail: "recording still processing".into(),
            },
        }
    }

    #[test]
    fn intake_enqueues_a_send_and_moves_the_checkpoint_in_one_step() {
        let mut store = Store::open_in_memory().unwrap();
        let report = store
            .intake(
                &[send("1", "a"), skip("2", "a")],
                Some(("salesloft", "{\"page\":1}")),
                10,
            )
            .unwrap();
        assert_eq!(report.enqueued, 1);
        assert_eq!(report.skipped, 1);
        assert_eq!(
            store.checkpoint("salesloft").unwrap().as_deref(),
            Some("{\"page\":1}")
        );
        assert_eq!(store.queue_depth("main").unwrap(), 1);
    }

    #[test]
    fn the_same_call_arriving_twice_is_queued_once() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let again = store.intake(&[send("1", "a")], None, 11).unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(store.queue_depth("main").unwrap(), 1);
        assert_eq!(store.ledger("salesloft", "1").unwrap()[0].seen_count, 2);
    }

    #[test]
    fn a_sent_call_is_never_queued_again_even_when_newer() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 10).unwrap().remove(0);
        store.begin_send(&item, 11).unwrap();
        store.mark_created(&item, Some("call_1"), 12).unwrap();
        let again = store.intake(&[send("1", "b")], None, 13).unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        let row = &store.ledger("salesloft", "1").unwrap()[0];
        assert_eq!(row.state, State::Sent);
        assert_eq!(row.kendo_call_id.as_deref(), Some("call_1"));
    }

    #[test]
    fn a_newer_version_replaces_the_payload_of_a_queued_call() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let report = store.intake(&[send("1", "b")], None, 11).unwrap();
        assert_eq!(report.updated, 1);
        let due = store.due("main", 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].payload.contains("\"v\":\"b\""));
    }

    #[test]
    fn an_older_version_does_not_overwrite_a_newer_one() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "b")], None, 10).unwrap();
        let report = store.intake(&[skip("1", "a")], None, 11).unwrap();
        assert_eq!(report.duplicates, 1);
        assert_eq!(store.queue_depth("main").unwrap(), 1);
    }

    fn for_team(mut item: Intake, team: &str) -> Intake {
        item.key.team = team.into();
        item
    }

    #[test]
    fn a_call_skipped_for_one_team_and_later_sent_for_its_reps_team_keeps_one_row() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[wait("1", "a")], None, 10).unwrap();
        let report = store
            .intake(&[for_team(send("1", "b"), "west")], None, 11)
            .unwrap();
        assert_eq!(report.enqueued, 1);
        let rows = store.ledger("salesloft", "1").unwrap();
        assert_eq!(rows.len(), 1, "one row, not one per team: {rows:?}");
        assert_eq!(rows[0].key.team, "west");
        assert_eq!(rows[0].state, State::Queued);
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        assert_eq!(store.queue_depth("west").unwrap(), 1);
    }

    #[test]
    fn a_queued_send_moves_with_its_row_when_the_team_changes() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        store
            .intake(&[for_team(send("1", "b"), "west")], None, 11)
            .unwrap();
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        let due = store.due("west", 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].payload.contains("\"v\":\"b\""), "{}", due[0].payload);
    }

    #[test]
    fn a_call_sent_for_one_team_is_not_queued_for_another() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 10).unwrap().remove(0);
        store.begin_send(&item, 11).unwrap();
        store.mark_created(&item, Some("call_1"), 12).unwrap();
        let again = store
            .intake(&[for_team(send("1", "b"), "west")], None, 13)
            .unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(store.queue_depth("west").unwrap(), 0);
        let rows = store.ledger("salesloft", "1").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, State::Sent);
    }

    #[test]
    fn a_waiting_call_is_queued_when_a_newer_version_is_ready() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[wait("1", "a")], None, 10).unwrap();
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        let report = store.intake(&[send("1", "b")], None, 11).unwrap();
        assert_eq!(report.enqueued, 1);
        assert_eq!(store.queue_depth("main").unwrap(), 1);
    }

    #[test]
    fn sends_in_flight_at_a_crash_are_requeued_and_counted() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .intake(&[send("1", "a"), send("2", "a")], None, 10)
            .unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 11).unwrap();
        // The process dies here; a new one recovers.
        let recovered = store.recover_in_flight(1, 20).unwrap();
        assert_eq!(recovered.resent, vec![item.key.clone()]);
        assert_eq!(recovered.parked, vec![]);
        assert_eq!(
            store
                .counter("main", counter::RESENT_AFTER_LOST_ANSWER)
                .unwrap(),
            1
        );
        assert_eq!(store.due("main", 20, 10).unwrap().len(), 2);
    }

    #[test]
    fn a_retry_is_not_due_before_its_time() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store.record(&item, &retry(5_000, "429"), "", 11).unwrap();
        assert!(store.due("main", 4_999, 10).unwrap().is_empty());
        assert_eq!(store.next_due_at("main").unwrap(), Some(5_000));
        assert_eq!(store.due("main", 5_000, 10).unwrap()[0].attempts, 1);
    }

    #[test]
    fn replay_puts_dead_letters_back_in_the_queue() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store
            .record(
                &item,
                &Action::Dead {
                    reason: "500 x8".into(),
                },
                "",
                11,
            )
            .unwrap();
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        assert_eq!(store.replay(&ReplayFilter::default(), 12).unwrap(), 1);
        assert_eq!(store.due("main", 12, 10).unwrap()[0].attempts, 0);
        assert_eq!(
            store.ledger("salesloft", "1").unwrap()[0].state,
            State::Queued
        );
    }

    #[test]
    fn replay_leaves_permanent_rejections_unless_asked() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store
            .record(
                &item,
                &Action::Fail {
                    code: "bad-request",
                    reason: "invalid email".into(),
                },
                "",
                11,
            )
            .unwrap();
        assert_eq!(store.replay(&ReplayFilter::default(), 12).unwrap(), 0);
        let all = ReplayFilter {
            include_failed: true,
            ..ReplayFilter::default()
        };
        assert_eq!(store.replay(&all, 12).unwrap(), 1);
    }

    #[test]
    fn a_webhook_delivery_id_is_stored_once() {
        let mut store = Store::open_in_memory().unwrap();
        let first = store
            .inbox_insert("kendo", "d1", Some("call.uploaded"), b"{}", 1)
            .unwrap();
        assert!(matches!(first, InboxInsert::Stored(_)));
        let second = store
            .inbox_insert("kendo", "d1", Some("call.uploaded"), b"{}", 2)
            .unwrap();
        assert_eq!(second, InboxInsert::Duplicate);
        assert_eq!(store.inbox_pending(10).unwrap().len(), 1);
        assert_eq!(
            store.counter("kendo", counter::DUPLICATE_WEBHOOKS).unwrap(),
            1
        );
    }

    #[test]
    fn held_calls_merge_a_body_and_a_later_transcript() {
        let mut store = Store::open_in_memory().unwrap();
        store.hold("aloware", "7", Some("{}"), None, 1).unwrap();
        let merged = store
            .hold("aloware", "7", None, Some("Rep: hi"), 2)
            .unwrap();
        assert_eq!(merged.body.as_deref(), Some("{}"));
        assert_eq!(merged.transcript.as_deref(), Some("Rep: hi"));
    }

    #[test]
    fn the_state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut store = Store::open(&path).unwrap();
            store
                .intake(&[send("1", "a")], Some(("salesloft", "c1")), 10)
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.checkpoint("salesloft").unwrap().as_deref(),
            Some("c1")
        );
        assert_eq!(store.queue_depth("main").unwrap(), 1);
    }

    #[test]
    fn the_first_look_back_is_anchored_at_the_first_ask_until_a_reset() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.first_look_back("salesloft", 1_000).unwrap(), 1_000);
        assert_eq!(store.first_look_back("salesloft", 9_000).unwrap(), 1_000);
        assert_eq!(store.first_look_back("hubspot", 5_000).unwrap(), 5_000);
        store.reset_checkpoint("salesloft").unwrap();
        assert_eq!(store.first_look_back("salesloft", 9_000).unwrap(), 9_000);
    }

    #[test]
    fn a_sent_call_without_a_score_after_the_wait_is_unscored_until_its_result_arrives() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .intake(&[send("1", "a"), send("2", "a")], None, 10)
            .unwrap();
        for _ in 0..2 {
            let item = store.due("main", 10, 1).unwrap().remove(0);
            store.begin_send(&item, 10).unwrap();
            let id = format!("call_{}", item.key.source_id);
            store.mark_created(&item, Some(&id), 20).unwrap();
        }
        assert_eq!(store.unscored(15).unwrap(), vec![]);
        assert_eq!(
            store.unscored(100).unwrap(),
            vec![("main".to_string(), 2, 20)]
        );
        store
            .record_result("e1", "call.uploaded", "call_1", Some(80.0), false, 30)
            .unwrap();
        assert_eq!(store.unscored(100).unwrap()[0].1, 1);
    }

    #[test]
    fn a_kendo_result_for_a_call_the_bridge_never_sent_is_unmatched() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store.mark_created(&item, Some("call_1"), 20).unwrap();
        store
            .record_result("e1", "call.uploaded", "call_1", Some(80.0), false, 30)
            .unwrap();
        store
            .record_result("e2", "call.uploaded", "call_999", Some(50.0), false, 40)
            .unwrap();
        store
            .record_result("e3", "call.uploaded", "call_test", None, true, 50)
            .unwrap();
        let (count, latest) = store.unmatched_results(10).unwrap();
        assert_eq!(count, 1);
        assert_eq!(latest[0].call_id, "call_999");
    }

    #[test]
    fn a_source_problem_keeps_its_first_time_until_it_clears() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(
            store
                .health_problem("salesloft", "transcripts", "403", 10)
                .unwrap()
        );
        assert!(
            !store
                .health_problem("salesloft", "transcripts", "403", 20)
                .unwrap()
        );
        let h = &store.health().unwrap()[0];
        assert_eq!((h.problem_since, h.problem_count), (Some(10), 2));
        store.health_ok("salesloft", "transcripts", 30).unwrap();
        let h = &store.health().unwrap()[0];
        assert_eq!(
            (h.ok_at, h.problem.as_deref(), h.problem_count),
            (Some(30), None, 0)
        );
        assert!(
            store
                .health_problem("salesloft", "transcripts", "403", 40)
                .unwrap()
        );
    }

    const PACING: SendPacing = SendPacing {
        limit: 30,
        window_ms: 60_000,
        margin: 0.0,
    };

    fn claim(store: &mut Store, token: &str, now: Millis) -> Claim {
        store
            .claim_send(
                &ClaimRequest {
                    team: "main",
                    key_fingerprint: "fp",
                    pacing: PACING,
                    lease_ms: 10_000,
                    token,
                },
                now,
            )
            .unwrap()
    }

    fn claimed(c: Claim) -> OutboxItem {
        match c {
            Claim::Claimed(item) => item,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[test]
    fn a_claimed_send_is_not_claimed_again_while_its_lease_holds() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 0).unwrap();
        let item = claimed(claim(&mut store, "a", 0));
        assert_eq!(item.claim.as_deref(), Some("a"));
        assert_eq!(claim(&mut store, "b", 5_000), Claim::Idle(None));
        assert!(
            store.recover_in_flight(1, 9_999).unwrap().resent.is_empty(),
            "a live lease is not recovered"
        );
    }

    #[test]
    fn a_claim_past_its_lease_is_recovered_and_its_late_answer_changes_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 0).unwrap();
        let stale = claimed(claim(&mut store, "a", 0));
        let recovered = store.recover_in_flight(1, 10_001).unwrap();
        assert_eq!(recovered.resent, vec![key("1")]);
        let fresh = claimed(claim(&mut store, "b", 12_000));
        assert_eq!(fresh.ambiguous, 1, "the recovery counts as a lost answer");
        assert!(
            !store
                .record(&stale, &retry(20_000, "late"), "", 13_000)
                .unwrap(),
            "the expired claim records nothing"
        );
        assert_eq!(
            store.ledger("salesloft", "1").unwrap()[0].state,
            State::Sending,
            "the send stays with the claim that holds it"
        );
        assert!(
            store
                .record(&fresh, &retry(20_000, "503"), "", 13_000)
                .unwrap()
        );
    }

    #[test]
    fn claims_keep_the_even_spacing_of_the_key() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .intake(&[send("1", "a"), send("2", "a")], None, 0)
            .unwrap();
        let paced = |store: &mut Store, token: &str, now: Millis| {
            store
                .claim_send(
                    &ClaimRequest {
                        team: "main",
                        key_fingerprint: "fp",
                        // 2 020 ms apart, and a send up to 600 ms late keeps its slot.
                        pacing: SendPacing {
                            margin: 0.01,
                            ..PACING
                        },
                        lease_ms: 10_000,
                        token,
                    },
                    now,
                )
                .unwrap()
        };
        claimed(paced(&mut store, "a", 1_000));
        assert_eq!(paced(&mut store, "b", 1_500), Claim::Pace(3_020));
        // A little late for its slot: the schedule does not slip.
        claimed(paced(&mut store, "b", 3_030));
        store.intake(&[send("3", "a")], None, 3_040).unwrap();
        assert_eq!(paced(&mut store, "c", 3_040), Claim::Pace(5_040));
    }

    #[test]
    fn a_429_holds_every_claim_of_the_key_until_retry_after() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .intake(&[send("1", "a"), send("2", "a")], None, 0)
            .unwrap();
        let item = claimed(claim(&mut store, "a", 0));
        assert!(
            store
                .record(
                    &item,
                    &Action::RateLimited {
                        retry_at: 30_000,
                        reason: "429".into(),
                    },
                    "",
                    100,
                )
                .unwrap()
        );
        assert_eq!(claim(&mut store, "b", 10_000), Claim::Pace(30_000));
        assert_eq!(store.counter("main", counter::KENDO_429).unwrap(), 1);
    }

    #[test]
    fn a_paused_key_is_not_claimed_until_the_key_changes() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 0).unwrap();
        store.pause_team("main", "401", "fp", 0).unwrap();
        assert_eq!(claim(&mut store, "a", 10), Claim::Paused("401".into()));
        store.pause_team("main", "401", "old-key", 0).unwrap();
        claimed(claim(&mut store, "a", 20));
        assert!(store.paused("main").unwrap().is_none());
    }

    #[test]
    fn instances_claiming_at_once_on_one_file_never_take_a_send_twice_or_crowd_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let ids: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        {
            let mut store = Store::open(&path).unwrap();
            let calls: Vec<Intake> = ids.iter().map(|id| send(id, "a")).collect();
            store.intake(&calls, None, 0).unwrap();
        }
        // Four instances, each claiming at the same instants of a shared
        // virtual minute-and-a-half; none records an answer.
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open(&path).unwrap();
                    let mut mine = Vec::new();
                    for now in (0..90_000).step_by(100) {
                        if let Claim::Claimed(item) = claim(&mut store, &format!("{n}-{now}"), now)
                        {
                            mine.push((now, item.key.source_id));
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<(Millis, String)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort();
        let mut taken: Vec<&String> = all.iter().map(|(_, id)| id).collect();
        taken.sort();
        taken.dedup();
        assert_eq!(taken.len(), all.len(), "no send claimed twice: {all:?}");
        let times: Vec<Millis> = all.iter().map(|(t, _)| *t).collect();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < t + 60_000).count();
            assert!(in_window <= 30, "{in_window} claims in the minute from {t}");
        }
        assert_eq!(all.len(), 40, "every send was claimed by someone");
    }

    #[test]
    fn a_deferred_delivery_waits_for_its_own_attempt_while_the_others_go_on() {
        let mut store = Store::open_in_memory().unwrap();
        for id in ["d1", "d2"] {
            store.inbox_insert("aloware", id, None, b"{}", 0).unwrap();
        }
        let first = store.inbox_claim(1, 60_000, 10).unwrap();
        assert_eq!(first[0].delivery_id, "d1");
        store
            .inbox_defer(first[0].id, 5_000, "source down")
            .unwrap();
        let next = store.inbox_claim(10, 60_000, 20).unwrap();
        assert_eq!(
            next.iter()
                .map(|e| e.delivery_id.as_str())
                .collect::<Vec<_>>(),
            vec!["d2"],
            "the deferred one does not hold up the next"
        );
        store.inbox_done(next[0].id, None, 30).unwrap();
        assert_eq!(store.inbox_next_due().unwrap(), Some(5_000));
        let again = store.inbox_claim(10, 60_000, 5_000).unwrap();
        assert_eq!(again[0].delivery_id, "d1");
        assert_eq!(again[0].attempts, 1);
    }

    #[test]
    fn a_claimed_delivery_is_left_to_its_instance_until_the_lease_ends() {
        let mut store = Store::open_in_memory().unwrap();
        store.inbox_insert("aloware", "d1", None, b"{}", 0).unwrap();
        assert_eq!(store.inbox_claim(10, 60_000, 10).unwrap().len(), 1);
        assert!(store.inbox_claim(10, 60_000, 20).unwrap().is_empty());
        assert_eq!(
            store.inbox_claim(10, 60_000, 60_011).unwrap().len(),
            1,
            "taken over once the lease ended (its instance died)"
        );
    }

    #[test]
    fn processes_opening_a_new_file_at_once_all_get_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let opened: Vec<_> = (0..4)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for o in opened {
            assert_eq!(o.join().unwrap(), Ok(()));
        }
    }

    #[test]
    fn every_numbered_migration_applies_in_order() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn every_migration_file_is_listed_once_in_number_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/migrations");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let files: Vec<String> = names
            .iter()
            .map(|name| std::fs::read_to_string(dir.join(name)).unwrap())
            .collect();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            listed, files,
            "MIGRATIONS must list {names:?} in this order"
        );
        for (i, name) in names.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} is migration {}",
                i + 1
            );
        }
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA user_version = 99").unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
    }

    #[test]
    fn counts_and_recent_rows_report_per_team_state() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .intake(&[send("1", "a"), skip("2", "a"), wait("3", "a")], None, 10)
            .unwrap();
        let counts = store.counts().unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].get(State::Queued), 1);
        assert_eq!(counts[0].get(State::Skipped), 1);
        assert_eq!(counts[0].get(State::Waiting), 1);
        assert_eq!(
            store.reasons(State::Skipped).unwrap(),
            vec![("no-media".to_string(), 1)]
        );
        assert_eq!(store.recent(&[State::Skipped], 10).unwrap().len(), 1);
    }

    /// Call `id` parked as outcome-unknown after one lost answer, at 11.
    fn parked_call(store: &mut Store, id: &str) {
        store.intake(&[send(id, "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store
            .record(
                &item,
                &Action::Park {
                    reason: "no answer within 30s".into(),
                },
                "",
                11,
            )
            .unwrap();
    }

    fn settle(id: &str) -> SettleFilter {
        SettleFilter {
            source_id: id.into(),
            ..SettleFilter::default()
        }
    }

    #[test]
    fn a_parked_call_leaves_the_queue_and_is_flagged_as_possibly_duplicated() {
        let mut store = Store::open_in_memory().unwrap();
        parked_call(&mut store, "1");
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        assert_eq!(store.next_due_at("main").unwrap(), None);
        let row = store.ledger("salesloft", "1").unwrap().remove(0);
        assert_eq!(row.state, State::OutcomeUnknown);
        let flagged = store.possible_duplicates(10).unwrap();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].state, State::OutcomeUnknown);
        assert_eq!(flagged[0].call_ids, vec![]);
    }

    #[test]
    fn replay_leaves_a_parked_call_alone() {
        let mut store = Store::open_in_memory().unwrap();
        parked_call(&mut store, "1");
        let everything = ReplayFilter {
            include_failed: true,
            ..ReplayFilter::default()
        };
        assert_eq!(store.replay(&everything, 12).unwrap(), 0);
        assert_eq!(
            store.ledger("salesloft", "1").unwrap()[0].state,
            State::OutcomeUnknown
        );
    }

    #[test]
    fn a_new_sighting_of_a_parked_call_does_not_queue_it_again() {
        let mut store = Store::open_in_memory().unwrap();
        parked_call(&mut store, "1");
        let report = store.intake(&[send("1", "b")], None, 12).unwrap();
        assert_eq!(report.duplicates, 1);
        assert_eq!(store.queue_depth("main").unwrap(), 0);
        assert_eq!(
            store.ledger("salesloft", "1").unwrap()[0].state,
            State::OutcomeUnknown
        );
    }

    #[test]
    fn settle_sent_marks_a_parked_call_sent_with_the_call_id_the_operator_found() {
        let mut store = Store::open_in_memory().unwrap();
        parked_call(&mut store, "1");
        let settled = store.settle_sent(&settle("1"), Some("call_9"), 20).unwrap();
        assert_eq!(settled, vec![key("1")]);
        let row = store.ledger("salesloft", "1").unwrap().remove(0);
        assert_eq!(row.state, State::Sent);
        assert_eq!(row.kendo_call_id.as_deref(), Some("call_9"));
        assert_eq!(row.reason_code.as_deref(), Some("settled-sent"));
        assert!(store.due("main", 1_000, 10).unwrap().is_empty());
        assert_eq!(
            store.kendo_call_ids(&key("1")).unwrap(),
            vec![("call_9".to_string(), 20)]
        );
        assert_eq!(
            store.possible_duplicates(10).unwrap().len(),
            1,
            "settling does not undo what may have happened in Kendo"
        );
    }

    #[test]
    fn settle_sent_queues_the_write_back_a_201_would_have_queued() {
        let mut store = Store::open_in_memory().unwrap();
        store.set_write_back_sources(&["salesloft"]);
        parked_call(&mut store, "1");
        store.settle_sent(&settle("1"), Some("call_9"), 20).unwrap();
        let counts = store.write_back_counts().unwrap();
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(counts[0].pending, 1, "{counts:?}");
    }

    #[test]
    fn settle_resend_puts_a_parked_call_back_in_the_queue_with_a_fresh_budget() {
        let mut store = Store::open_in_memory().unwrap();
        parked_call(&mut store, "1");
        assert_eq!(
            store.settle_resend(&settle("1"), 20).unwrap(),
            vec![key("1")]
        );
        let due = store.due("main", 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].ambiguous, 0);
        assert_eq!(
            store.ledger("salesloft", "1").unwrap()[0].state,
            State::Queued
        );
    }

    #[test]
    fn settle_touches_only_parked_calls() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        assert_eq!(store.settle_sent(&settle("1"), None, 20).unwrap(), vec![]);
        assert_eq!(store.settle_resend(&settle("1"), 20).unwrap(), vec![]);
        assert_eq!(
            store.ledger("salesloft", "1").unwrap()[0].state,
            State::Queued
        );
    }

    #[test]
    fn a_send_in_flight_at_a_crash_is_flagged_and_spends_a_lost_answer() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        assert_eq!(
            store.recover_in_flight(1, 20).unwrap().resent,
            vec![key("1")]
        );
        assert_eq!(store.due("main", 20, 10).unwrap()[0].ambiguous, 1);
        let flagged = store.possible_duplicates(10).unwrap();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].state, State::Queued);
    }

    #[test]
    fn a_call_sent_after_a_lost_answer_stays_flagged_with_its_call_id() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store
            .record(
                &item,
                &Action::ResendAfterLostAnswer {
                    retry_at: 100,
                    timeout_ms: 60_000,
                    reason: "no answer within 30s".into(),
                },
                "",
                11,
            )
            .unwrap();
        let item = store.due("main", 100, 1).unwrap().remove(0);
        store.begin_send(&item, 100).unwrap();
        store.mark_created(&item, Some("call_2"), 101).unwrap();
        let flagged = store.possible_duplicates(10).unwrap();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].state, State::Sent);
        assert_eq!(flagged[0].call_ids, vec![("call_2".to_string(), 101)]);
    }

    #[test]
    fn a_send_in_flight_at_a_crash_with_no_resends_left_is_parked() {
        let mut store = Store::open_in_memory().unwrap();
        store.intake(&[send("1", "a")], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
        store
            .record(
                &item,
                &Action::ResendAfterLostAnswer {
                    retry_at: 100,
                    timeout_ms: 60_000,
                    reason: "no answer within 30s".into(),
                },
                "",
                11,
            )
            .unwrap();
        let item = store.due("main", 100, 1).unwrap().remove(0);
        store.begin_send(&item, 100).unwrap();
        // The process dies during the one re-send allowed.
        let recovered = store.recover_in_flight(1, 200).unwrap();
        assert_eq!(recovered.resent, vec![]);
        assert_eq!(recovered.parked, vec![key("1")]);
        assert!(store.due("main", 1_000, 10).unwrap().is_empty());
        let row = store.ledger("salesloft", "1").unwrap().remove(0);
        assert_eq!(row.state, State::OutcomeUnknown);
        assert!(row.reason.unwrap_or_default().contains("settle"));
        assert_eq!(
            store.settle_resend(&settle("1"), 300).unwrap(),
            vec![key("1")]
        );
    }

    #[test]
    fn a_call_keeps_its_newest_call_data_record() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .put_call_data_record("salesloft", "1", "newer", "2026-04-22T15:31:00.000000Z", 10)
            .unwrap();
        store
            .put_call_data_record("salesloft", "1", "older", "2026-04-22T15:30:00.000000Z", 20)
            .unwrap();
        assert_eq!(
            store.call_data_record("salesloft", "1").unwrap().as_deref(),
            Some("newer")
        );
        assert_eq!(store.call_data_record("salesloft", "2").unwrap(), None);
        assert_eq!(store.prune_call_data_records(11).unwrap(), 1);
        assert_eq!(store.call_data_record("salesloft", "1").unwrap(), None);
    }

    #[test]
    fn calls_waiting_with_a_reason_are_listed_oldest_decision_first() {
        let mut store = Store::open_in_memory().unwrap();
        let mut pending = wait("7", "v1");
        if let Outcome::Wait { code, .. } = &mut pending.outcome {
            *code = "call-data-record-pending".into();
        }
        store.intake(&[wait("5", "v1")], None, 100).unwrap();
        store.intake(&[pending], None, 200).unwrap();
        let listed = store
            .waiting_with("salesloft", "call-data-record-pending")
            .unwrap();
        assert_eq!(listed, vec![("7".to_string(), "v1".to_string(), 200)]);
    }
}

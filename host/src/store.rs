//! The host's state database: the core's ledger
//! ([`kendo_bridge_core::ledger`]) on one rusqlite connection. This file
//! opens the file and brings it to the schema, and adds what only the host
//! configures: which sources get write-backs, queued in the transaction of
//! their cause. Every statement is the core's; the operator's commands and
//! every report call it with [`Store::database`].
//!
//! Every guarantee the bridge makes rests on a few transactions:
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

use rusqlite::Connection;

/// Epoch milliseconds.
pub type Millis = i64;

/// The schema: one numbered file per change under `core/migrations/`,
/// shared with the Spin app, which applies the same files.
use kendo_bridge_core::schema::MIGRATIONS;

use kendo_bridge_core::answer::Action;
use kendo_bridge_core::ledger::connection::{self, Busy, Settings};
pub use kendo_bridge_core::ledger::hold::{HeldCall, TranscriptWaitDue};
pub use kendo_bridge_core::ledger::inbox::{InboxEntry, InboxInsert};
pub use kendo_bridge_core::ledger::intake::{Intake, IntakeReport, Outcome};
pub use kendo_bridge_core::ledger::operator::{ReplayFilter, SettleFilter};
pub use kendo_bridge_core::ledger::report::{
    LedgerRow, PossibleDuplicate, TeamCounts, UnmatchedResult,
};
pub use kendo_bridge_core::ledger::send::{
    Claim, ClaimRequest, OutboxItem, Paused, Recovered, SendPacing,
};
use kendo_bridge_core::ledger::{self, operator};
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

/// SQLite's "database is locked" or "busy", however it reached us.
fn is_locked(e: &StoreError) -> bool {
    let sqlite = match e {
        StoreError::Sql(e) => Some(e),
        StoreError::Ledger(LedgerError::Database(e)) => e.downcast_ref::<rusqlite::Error>(),
        _ => None,
    };
    matches!(
        sqlite.and_then(rusqlite::Error::sqlite_error_code),
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
                Err(e) if is_locked(&e) && attempt < 20 => {
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
        let opened = connection::open(
            &conn,
            Busy::Sqlite,
            Settings::Required,
            kendo_bridge_core::policy::Policy::DEFAULT.sync,
        )?;
        if opened.newer_schema() {
            return Err(StoreError::NewerSchema {
                found: opened.user_version,
                known: MIGRATIONS.len() as i64,
            });
        }
        let mut conn = conn;
        let mut attempt = 0u64;
        // Another process on the same file (a second `serve`, a CLI command
        // at its start) may be migrating it at this moment: the migration
        // that loses the race rolls back whole (one transaction), and the
        // schema it finds after a moment is the one it wanted.
        while let Err(e) = migrations().to_latest(&mut conn) {
            if connection::user_version(&conn)? == MIGRATIONS.len() as i64 {
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

    // ---- intake --------------------------------------------------------------

    // ---- delivery ----------------------------------------------------------

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

    /// The operator found the parked call in Kendo: it is sent as a 201
    /// would have made it, its write-backs queued
    /// ([`operator::settle_sent`]). Returns the keys settled.
    pub fn settle_sent(
        &mut self,
        filter: &SettleFilter,
        kendo_call_id: Option<&str>,
        now: Millis,
    ) -> Result<Vec<CallKey>> {
        let write_back = self.write_back.clone();
        Ok(operator::settle_sent(
            &self.conn,
            filter,
            kendo_call_id,
            now,
            |conn, key, call_id| {
                if write_back.covers(&key.source) {
                    write_back::enqueue_sent(conn, key, call_id, now)?;
                }
                Ok(())
            },
        )?)
    }

    /// The connection, for the core's rules that read and write several
    /// tables in one of their own transactions.
    pub fn database(&self) -> &Connection {
        &self.conn
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

    // ---- paused keys ---------------------------------------------------------

    // ---- webhook inbox -------------------------------------------------------

    // ---- re-deciding ------------------------------------------------------------

    // ---- held source records (Aloware) ----------------------------------------

    // ---- call data records (Salesloft) ------------------------------------------

    // ---- Kendo results ---------------------------------------------------------

    // ---- counters ----------------------------------------------------------------

    // ---- source health ---------------------------------------------------------------
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

    /// The store to this thread until the guard drops (the core's
    /// workflows hold it for a transaction: [`crate::ports::HostDb`]).
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // As in `run`: a poisoned lock is safe to use.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the store on this thread (for synchronous callers such as
    /// the operator commands).
    pub fn run_here<R>(&self, f: impl FnOnce(&mut Store) -> Result<R>) -> Result<R> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Runs one of the core's ledger functions on the store's connection,
    /// off the async threads (see [`SharedStore::run`]).
    pub async fn ledger<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<R, LedgerError> + Send + 'static,
    {
        self.run(move |s| Ok(f(s.database())?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_ledger::report;
    use kendo_bridge_core::ledger as core_ledger;

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
        let store = Store::open_in_memory().unwrap();
        let report = core_ledger::intake::intake(
            store.database(),
            &[send("1", "a"), skip("2", "a")],
            Some(("salesloft", "{\"page\":1}")),
            10,
        )
        .unwrap();
        assert_eq!(report.enqueued, 1);
        assert_eq!(report.skipped, 1);
        assert_eq!(
            ledger::checkpoint::get(store.database(), "salesloft")
                .unwrap()
                .as_deref(),
            Some("{\"page\":1}")
        );
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            1
        );
    }

    #[test]
    fn the_same_call_arriving_twice_is_queued_once() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        let again =
            core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 11).unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            1
        );
        assert_eq!(
            report::call(store.database(), "salesloft", "1").unwrap()[0].seen_count,
            2
        );
    }

    #[test]
    fn a_sent_call_is_never_queued_again_even_when_newer() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 10)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 11).unwrap();
        store.mark_created(&item, Some("call_1"), 12).unwrap();
        let again =
            core_ledger::intake::intake(store.database(), &[send("1", "b")], None, 13).unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            0
        );
        let row = &report::call(store.database(), "salesloft", "1").unwrap()[0];
        assert_eq!(row.state, State::Sent);
        assert_eq!(row.kendo_call_id.as_deref(), Some("call_1"));
    }

    #[test]
    fn a_newer_version_replaces_the_payload_of_a_queued_call() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        let report =
            core_ledger::intake::intake(store.database(), &[send("1", "b")], None, 11).unwrap();
        assert_eq!(report.updated, 1);
        let due = core_ledger::send::due(store.database(), "main", 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].payload.contains("\"v\":\"b\""));
    }

    #[test]
    fn an_older_version_does_not_overwrite_a_newer_one() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "b")], None, 10).unwrap();
        let report =
            core_ledger::intake::intake(store.database(), &[skip("1", "a")], None, 11).unwrap();
        assert_eq!(report.duplicates, 1);
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            1
        );
    }

    fn for_team(mut item: Intake, team: &str) -> Intake {
        item.key.team = team.into();
        item
    }

    #[test]
    fn a_call_skipped_for_one_team_and_later_sent_for_its_reps_team_keeps_one_row() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[wait("1", "a")], None, 10).unwrap();
        let report = core_ledger::intake::intake(
            store.database(),
            &[for_team(send("1", "b"), "west")],
            None,
            11,
        )
        .unwrap();
        assert_eq!(report.enqueued, 1);
        let rows = report::call(store.database(), "salesloft", "1").unwrap();
        assert_eq!(rows.len(), 1, "one row, not one per team: {rows:?}");
        assert_eq!(rows[0].key.team, "west");
        assert_eq!(rows[0].state, State::Queued);
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            0
        );
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "west").unwrap(),
            1
        );
    }

    #[test]
    fn a_queued_send_moves_with_its_row_when_the_team_changes() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        core_ledger::intake::intake(
            store.database(),
            &[for_team(send("1", "b"), "west")],
            None,
            11,
        )
        .unwrap();
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            0
        );
        let due = core_ledger::send::due(store.database(), "west", 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].payload.contains("\"v\":\"b\""), "{}", due[0].payload);
    }

    #[test]
    fn a_call_sent_for_one_team_is_not_queued_for_another() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 10)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 11).unwrap();
        store.mark_created(&item, Some("call_1"), 12).unwrap();
        let again = core_ledger::intake::intake(
            store.database(),
            &[for_team(send("1", "b"), "west")],
            None,
            13,
        )
        .unwrap();
        assert_eq!(again.duplicates, 1);
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "west").unwrap(),
            0
        );
        let rows = report::call(store.database(), "salesloft", "1").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, State::Sent);
    }

    #[test]
    fn a_waiting_call_is_queued_when_a_newer_version_is_ready() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[wait("1", "a")], None, 10).unwrap();
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            0
        );
        let report =
            core_ledger::intake::intake(store.database(), &[send("1", "b")], None, 11).unwrap();
        assert_eq!(report.enqueued, 1);
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            1
        );
    }

    #[test]
    fn sends_in_flight_at_a_crash_are_requeued_and_counted() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(
            store.database(),
            &[send("1", "a"), send("2", "a")],
            None,
            10,
        )
        .unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 11).unwrap();
        // The process dies here; a new one recovers.
        let recovered = store.recover_in_flight(1, 20).unwrap();
        assert_eq!(recovered.resent, vec![item.key.clone()]);
        assert_eq!(recovered.parked, vec![]);
        assert_eq!(
            report::counter(store.database(), "main", counter::RESENT_AFTER_LOST_ANSWER).unwrap(),
            1
        );
        assert_eq!(
            core_ledger::send::due(store.database(), "main", 20, 10)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_retry_is_not_due_before_its_time() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 10).unwrap();
        store.record(&item, &retry(5_000, "429"), "", 11).unwrap();
        assert!(
            core_ledger::send::due(store.database(), "main", 4_999, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ledger::send::next_due_at(store.database(), "main").unwrap(),
            Some(5_000)
        );
        assert_eq!(
            core_ledger::send::due(store.database(), "main", 5_000, 10).unwrap()[0].attempts,
            1
        );
    }

    #[test]
    fn a_webhook_delivery_id_is_stored_once() {
        let store = Store::open_in_memory().unwrap();
        let first = core_ledger::inbox::insert(
            store.database(),
            "kendo",
            "d1",
            Some("call.uploaded"),
            b"{}",
            1,
        )
        .unwrap();
        assert!(matches!(first, InboxInsert::Stored(_)));
        let second = core_ledger::inbox::insert(
            store.database(),
            "kendo",
            "d1",
            Some("call.uploaded"),
            b"{}",
            2,
        )
        .unwrap();
        assert_eq!(second, InboxInsert::Duplicate);
        assert_eq!(
            ledger::inbox::pending(store.database(), 10).unwrap().len(),
            1
        );
        assert_eq!(
            report::counter(store.database(), "kendo", counter::DUPLICATE_WEBHOOKS).unwrap(),
            1
        );
    }

    #[test]
    fn held_calls_merge_a_body_and_a_later_transcript() {
        let store = Store::open_in_memory().unwrap();
        ledger::hold::hold(store.database(), "aloware", "7", Some("{}"), None, 1).unwrap();
        let merged =
            ledger::hold::hold(store.database(), "aloware", "7", None, Some("Rep: hi"), 2).unwrap();
        assert_eq!(merged.body.as_deref(), Some("{}"));
        assert_eq!(merged.transcript.as_deref(), Some("Rep: hi"));
    }

    #[test]
    fn the_state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = Store::open(&path).unwrap();
            core_ledger::intake::intake(
                store.database(),
                &[send("1", "a")],
                Some(("salesloft", "c1")),
                10,
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            ledger::checkpoint::get(store.database(), "salesloft")
                .unwrap()
                .as_deref(),
            Some("c1")
        );
        assert_eq!(
            core_ledger::send::queue_depth(store.database(), "main").unwrap(),
            1
        );
    }

    #[test]
    fn the_first_look_back_is_anchored_at_the_first_ask_until_a_reset() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            ledger::checkpoint::first_look_back(store.database(), "salesloft", 1_000).unwrap(),
            1_000
        );
        assert_eq!(
            ledger::checkpoint::first_look_back(store.database(), "salesloft", 9_000).unwrap(),
            1_000
        );
        assert_eq!(
            ledger::checkpoint::first_look_back(store.database(), "hubspot", 5_000).unwrap(),
            5_000
        );
        ledger::checkpoint::reset(store.database(), "salesloft").unwrap();
        assert_eq!(
            ledger::checkpoint::first_look_back(store.database(), "salesloft", 9_000).unwrap(),
            9_000
        );
    }

    #[test]
    fn a_source_problem_keeps_its_first_time_until_it_clears() {
        let store = Store::open_in_memory().unwrap();
        assert!(
            core_ledger::health::problem(store.database(), "salesloft", "transcripts", "403", 10)
                .unwrap()
        );
        assert!(
            !core_ledger::health::problem(store.database(), "salesloft", "transcripts", "403", 20)
                .unwrap()
        );
        let h = &ledger::health::all(store.database()).unwrap()[0];
        assert_eq!((h.problem_since, h.problem_count), (Some(10), 2));
        core_ledger::health::ok(store.database(), "salesloft", "transcripts", 30).unwrap();
        let h = &ledger::health::all(store.database()).unwrap()[0];
        assert_eq!(
            (h.ok_at, h.problem.as_deref(), h.problem_count),
            (Some(30), None, 0)
        );
        assert!(
            core_ledger::health::problem(store.database(), "salesloft", "transcripts", "403", 40)
                .unwrap()
        );
    }

    const PACING: SendPacing = SendPacing {
        limit: 30,
        window_ms: 60_000,
        margin: 0.0,
    };

    fn claim(store: &mut Store, token: &str, now: Millis) -> Claim {
        ledger::send::claim_send(
            store.database(),
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
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 0).unwrap();
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
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 0).unwrap();
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
            report::call(store.database(), "salesloft", "1").unwrap()[0].state,
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
        core_ledger::intake::intake(store.database(), &[send("1", "a"), send("2", "a")], None, 0)
            .unwrap();
        let paced = |store: &mut Store, token: &str, now: Millis| {
            ledger::send::claim_send(
                store.database(),
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
        core_ledger::intake::intake(store.database(), &[send("3", "a")], None, 3_040).unwrap();
        assert_eq!(paced(&mut store, "c", 3_040), Claim::Pace(5_040));
    }

    #[test]
    fn a_429_holds_every_claim_of_the_key_until_retry_after() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a"), send("2", "a")], None, 0)
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
        assert_eq!(
            report::counter(store.database(), "main", counter::KENDO_429).unwrap(),
            1
        );
    }

    #[test]
    fn a_paused_key_is_not_claimed_until_the_key_changes() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 0).unwrap();
        ledger::send::pause(store.database(), "main", "401", "fp", 0).unwrap();
        assert_eq!(claim(&mut store, "a", 10), Claim::Paused("401".into()));
        ledger::send::pause(store.database(), "main", "401", "old-key", 0).unwrap();
        claimed(claim(&mut store, "a", 20));
        assert!(
            core_ledger::send::paused(store.database(), "main")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn instances_claiming_at_once_on_one_file_never_take_a_send_twice_or_crowd_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let ids: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        {
            let store = Store::open(&path).unwrap();
            let calls: Vec<Intake> = ids.iter().map(|id| send(id, "a")).collect();
            core_ledger::intake::intake(store.database(), &calls, None, 0).unwrap();
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
        let store = Store::open_in_memory().unwrap();
        for id in ["d1", "d2"] {
            core_ledger::inbox::insert(store.database(), "aloware", id, None, b"{}", 0).unwrap();
        }
        let first = ledger::inbox::claim(store.database(), 1, 60_000, 10).unwrap();
        assert_eq!(first[0].delivery_id, "d1");
        ledger::inbox::defer(store.database(), first[0].id, 5_000, "source down").unwrap();
        let next = ledger::inbox::claim(store.database(), 10, 60_000, 20).unwrap();
        assert_eq!(
            next.iter()
                .map(|e| e.delivery_id.as_str())
                .collect::<Vec<_>>(),
            vec!["d2"],
            "the deferred one does not hold up the next"
        );
        ledger::inbox::done(store.database(), next[0].id, None, 30).unwrap();
        assert_eq!(
            ledger::inbox::next_due(store.database()).unwrap(),
            Some(5_000)
        );
        let again = ledger::inbox::claim(store.database(), 10, 60_000, 5_000).unwrap();
        assert_eq!(again[0].delivery_id, "d1");
        assert_eq!(again[0].attempts, 1);
    }

    #[test]
    fn a_claimed_delivery_is_left_to_its_instance_until_the_lease_ends() {
        let store = Store::open_in_memory().unwrap();
        core_ledger::inbox::insert(store.database(), "aloware", "d1", None, b"{}", 0).unwrap();
        assert_eq!(
            ledger::inbox::claim(store.database(), 10, 60_000, 10)
                .unwrap()
                .len(),
            1
        );
        assert!(
            ledger::inbox::claim(store.database(), 10, 60_000, 20)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ledger::inbox::claim(store.database(), 10, 60_000, 60_011)
                .unwrap()
                .len(),
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

    /// Call `id` parked as outcome-unknown after one lost answer, at 11.
    fn parked_call(store: &mut Store, id: &str) {
        core_ledger::intake::intake(store.database(), &[send(id, "a")], None, 10).unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 10).unwrap();
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
    fn settle_sent_queues_the_write_back_a_201_would_have_queued() {
        let mut store = Store::open_in_memory().unwrap();
        store.set_write_back_sources(&["salesloft"]);
        parked_call(&mut store, "1");
        store.settle_sent(&settle("1"), Some("call_9"), 20).unwrap();
        let counts = ledger::write_back::counts(store.database()).unwrap();
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(counts[0].pending, 1, "{counts:?}");
    }

    #[test]
    fn a_send_in_flight_at_a_crash_is_flagged_and_spends_a_lost_answer() {
        let mut store = Store::open_in_memory().unwrap();
        core_ledger::intake::intake(store.database(), &[send("1", "a")], None, 10).unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 10).unwrap();
        assert_eq!(
            store.recover_in_flight(1, 20).unwrap().resent,
            vec![key("1")]
        );
        assert_eq!(
            core_ledger::send::due(store.database(), "main", 20, 10).unwrap()[0].ambiguous,
            1
        );
        let flagged = report::possible_duplicates(store.database(), 10).unwrap();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].state, State::Queued);
    }

    #[test]
    fn a_call_keeps_its_newest_call_data_record() {
        let store = Store::open_in_memory().unwrap();
        ledger::records::put(
            store.database(),
            "salesloft",
            "1",
            "newer",
            "2026-04-22T15:31:00.000000Z",
            10,
        )
        .unwrap();
        ledger::records::put(
            store.database(),
            "salesloft",
            "1",
            "older",
            "2026-04-22T15:30:00.000000Z",
            20,
        )
        .unwrap();
        assert_eq!(
            ledger::records::get(store.database(), "salesloft", "1")
                .unwrap()
                .as_deref(),
            Some("newer")
        );
        assert_eq!(
            ledger::records::get(store.database(), "salesloft", "2").unwrap(),
            None
        );
        assert_eq!(ledger::records::prune(store.database(), 11).unwrap(), 1);
        assert_eq!(
            ledger::records::get(store.database(), "salesloft", "1").unwrap(),
            None
        );
    }

    #[test]
    fn calls_waiting_with_a_reason_are_listed_oldest_decision_first() {
        let store = Store::open_in_memory().unwrap();
        let mut pending = wait("7", "v1");
        if let Outcome::Wait { code, .. } = &mut pending.outcome {
            *code = "call-data-record-pending".into();
        }
        core_ledger::intake::intake(store.database(), &[wait("5", "v1")], None, 100).unwrap();
        core_ledger::intake::intake(store.database(), &[pending], None, 200).unwrap();
        let listed =
            ledger::intake::waiting(store.database(), "salesloft", "call-data-record-pending")
                .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].3), ("7", 200));
    }
}

//! The Spin app's driver of the core's ledger
//! ([`kendo_bridge_core::ledger`]): Spin's SQLite behind the core's one
//! `Database` interface, in the host's schema (`core/migrations`, applied
//! here statement by statement). Every rule of a call's life (intake once,
//! claims under a lease and the key's pacing across instances, what
//! Kendo's answer means, recovery, the inbox, holds) is the core's; this
//! file only runs statements, and reads the counts `/status` shows.

use anyhow::{Context as _, Result};
use kendo_bridge_core::ledger::{Database, LedgerError, Row, Value};
use kendo_bridge_core::schema::{MIGRATIONS, statements};
use spin_sdk::sqlite::{Connection, Value as SpinValue};

/// The Spin app sends with one key: its calls are this team's.
pub const TEAM: &str = "default";

/// The app's database connection.
pub struct Db {
    conn: Connection,
    /// The first wait, in microseconds, for a lock another instance holds
    /// ([`Db::run`]): short while a sender waits for the answer, longer
    /// for work done after it ([`Db::in_background`]), so that under a
    /// burst the writes a sender waits for get the lock first.
    first_wait_us: std::cell::Cell<u64>,
}

/// Spin's SQLite error, kept whole for the log.
#[derive(Debug)]
struct SpinSqlError(String);

impl std::fmt::Display for SpinSqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpinSqlError {}

impl Database for Db {
    /// Runs `sql`; while the database is locked by another instance's
    /// write, tries again after a short wait (0.25 ms doubling to 2 ms, or
    /// 2 ms to 16 ms in the background, up to [`LOCKED_PATIENCE_MS`])
    /// instead of SQLite's own busy handler, which
    /// the connection is opened without: its waits grow to 100 ms at a time
    /// and favour no one, so under sixteen concurrent webhooks a few waited
    /// seconds. A statement refused as locked changed nothing (in WAL a
    /// transaction's statements after `BEGIN IMMEDIATE` hold the lock, and
    /// a `COMMIT` refused as busy may be repeated), so it is safe to repeat.
    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError> {
        let params: Vec<SpinValue> = params
            .iter()
            .map(|v| match v {
                Value::Null => SpinValue::Null,
                Value::Integer(i) => SpinValue::Integer(*i),
                Value::Real(r) => SpinValue::Real(*r),
                Value::Text(t) => SpinValue::Text(t.clone()),
                Value::Blob(b) => SpinValue::Blob(b.clone()),
            })
            .collect();
        let started = wasi::clocks::monotonic_clock::now();
        let mut wait_ms = 1;
        let result = loop {
            match self.conn.execute(sql, &params) {
                Err(e) if locked(&e) && waited_ms(started) < LOCKED_PATIENCE_MS => {
                    let ns =
                        (wait_ms * 1_000_000) / 2 + (crate::random_u64() % (wait_ms * 1_000_000));
                    wasi::clocks::monotonic_clock::subscribe_duration(ns).block();
                    wait_ms = (wait_ms * 2).min(8);
                }
                other => break other,
            }
        };
        let result = result.map_err(|e| {
            LedgerError::Database(Box::new(SpinSqlError(format!(
                "{e} (in `{}`)",
                sql.trim().lines().next().unwrap_or_default()
            ))))
        })?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                Row(row
                    .values
                    .into_iter()
                    .map(|v| match v {
                        SpinValue::Null => Value::Null,
                        SpinValue::Integer(i) => Value::Integer(i),
                        SpinValue::Real(r) => Value::Real(r),
                        SpinValue::Text(t) => Value::Text(t),
                        SpinValue::Blob(b) => Value::Blob(b),
                    })
                    .collect())
            })
            .collect())
    }
}

/// The first wait for a lock while a sender waits for the answer, and for
/// work done after it, in microseconds; each doubles up to eight times.
const FOREGROUND_WAIT_US: u64 = 250;
const BACKGROUND_WAIT_US: u64 = 2_000;

/// How long a statement waits for another instance's write at most (the
/// host's store waits 10 s too).
const LOCKED_PATIENCE_MS: u64 = 10_000;

fn waited_ms(since_ns: u64) -> u64 {
    wasi::clocks::monotonic_clock::now().saturating_sub(since_ns) / 1_000_000
}

/// Whether SQLite refused the statement because another connection holds
/// the lock it needs (`SQLITE_BUSY` / `SQLITE_LOCKED`).
fn locked(e: &spin_sdk::sqlite::Error) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("database is locked")
        || text.contains("database table is locked")
        || text.contains("busy")
}

/// Where the calls stand, for `/status`.
pub struct Counts {
    /// `(ledger state, calls)`.
    pub by_state: Vec<(String, i64)>,
    /// Sends waiting in the queue.
    pub queued: i64,
    /// Deliveries kept with the reason they could not be read.
    pub unreadable: i64,
    /// Why the key is paused, if it is.
    pub paused: Option<String>,
}

impl Db {
    /// Opens the `default` database and brings it to the shared schema.
    pub fn open() -> Result<Db> {
        let conn = Connection::open_default().context(
            "cannot open Spin's `default` SQLite database (sqlite_databases in spin.toml)",
        )?;
        let db = Db {
            conn,
            first_wait_us: std::cell::Cell::new(FOREGROUND_WAIT_US),
        };
        // Waits for another instance's write are this driver's ([`Db::run`]).
        let _ = db.conn.execute("PRAGMA busy_timeout = 0", &[]);
        // Both read in one statement: each statement is a trip through
        // Spin's host, and every request opens a connection.
        let (mode, version) = db
            .first(
                "SELECT (SELECT journal_mode FROM pragma_journal_mode),
                        (SELECT user_version FROM pragma_user_version)",
                &[],
            )?
            .map(|row| Ok::<_, LedgerError>((row.opt_text(0)?, row.int(1)?)))
            .transpose()?
            .unwrap_or((None, 0));
        db.tune(mode.as_deref());
        if version as usize >= MIGRATIONS.len() {
            return Ok(db);
        }
        db.migrate()?;
        Ok(db)
    }

    /// From now on this connection's work is not waited for by anyone (it
    /// follows an answer): it waits longer between attempts at a lock.
    pub fn in_background(&self) {
        self.first_wait_us.set(BACKGROUND_WAIT_US);
    }

    /// Write-ahead logging: readers never wait for a
    /// writer, and a commit appends to the log instead of rewriting pages
    /// through a rollback journal. Each request opens its own connection;
    /// with a rollback journal every instance's commit waited out the
    /// others' in SQLite's busy back-off (sleeps of up to 100 ms at a
    /// time), and webhooks were answered in seconds at the tail. The mode
    /// stays with the file, so it is set once: asking to set it on every
    /// open cost as much again as it saved (measured in the test host).
    /// A backend that refuses these statements (a remote libSQL database)
    /// keeps its own.
    fn tune(&self, mode: Option<&str>) {
        if mode.is_some_and(|m| !m.eq_ignore_ascii_case("wal")) {
            let _ = self.conn.execute("PRAGMA journal_mode = WAL", &[]);
        }
    }

    fn migrate(&self) -> Result<()> {
        if self.user_version()? as usize >= MIGRATIONS.len() {
            return Ok(());
        }
        // Instances starting together: one migrates, the others then find
        // the version moved and skip.
        kendo_bridge_core::ledger::write(self, |db| {
            let found = db.user_version()? as usize;
            if found > MIGRATIONS.len() {
                return Err(LedgerError::Corrupt {
                    what: "schema version (written by a newer kendo-bridge)",
                    value: found.to_string(),
                });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
                for statement in statements(sql) {
                    db.run(&statement, &[])?;
                }
                db.run(&format!("PRAGMA user_version = {}", i + 1), &[])?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn user_version(&self) -> Result<i64, LedgerError> {
        self.first("PRAGMA user_version", &[])?
            .map_or(Ok(0), |row| row.int(0))
    }

    /// Calls by ledger state, queued sends, unreadable deliveries, and the
    /// pause if any.
    pub fn counts(&self) -> Result<Counts> {
        let by_state = self
            .run(
                "SELECT state, COUNT(*) FROM ledger GROUP BY state ORDER BY state",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .collect::<Result<_, LedgerError>>()?;
        let count =
            |sql: &str| -> Result<i64> { Ok(self.first(sql, &[])?.map_or(Ok(0), |r| r.int(0))?) };
        Ok(Counts {
            by_state,
            queued: count("SELECT COUNT(*) FROM ledger WHERE state = 'queued'")?,
            unreadable: count("SELECT COUNT(*) FROM inbox WHERE error IS NOT NULL")?,
            paused: kendo_bridge_core::ledger::send::paused(self, TEAM)?.map(|p| p.reason),
        })
    }
}

//! The Spin app's driver of the core's ledger
//! ([`kendo_bridge_core::ledger`]): Spin's SQLite behind the core's one
//! `Database` interface, in the host's schema (`core/migrations`, applied
//! here statement by statement). Every rule of a call's life (intake once,
//! claims under a lease and the key's pacing across instances, what
//! Kendo's answer means, recovery, the inbox, holds) is the core's; this
//! file only runs statements; what it runs on opening the database (the
//! pragmas, the migrations) is the core's too
//! ([`kendo_bridge_core::ledger::connection`]).

use anyhow::{Context as _, Result};
use kendo_bridge_core::ledger::connection::{self, Busy, LOCK_WAIT_MS, Settings};
use kendo_bridge_core::ledger::{Database, LedgerError, Row, Value};
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
    /// 2 ms to 16 ms in the background, up to [`LOCK_WAIT_MS`])
    /// instead of SQLite's own busy handler, which
    /// the connection is opened without: its waits grow to 100 ms at a time
    /// and favour no one, so under sixteen concurrent webhooks a few waited
    /// seconds. A statement refused as locked changed nothing (in WAL the
    /// statements of a transaction [`kendo_bridge_core::ledger::write`]
    /// opened hold the lock, and a commit refused as busy may be repeated),
    /// so it is safe to repeat.
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
        let first_us = self.first_wait_us.get();
        let mut wait_us = first_us;
        let result = loop {
            match self.conn.execute(sql, &params) {
                Err(e) if locked(&e) && waited_ms(started) < LOCK_WAIT_MS => {
                    // Jittered around the wait, so instances that met at one
                    // lock do not meet again at the next attempt.
                    let ns = (wait_us * 1_000) / 2 + (crate::random_u64() % (wait_us * 1_000));
                    wasi::clocks::monotonic_clock::subscribe_duration(ns).block();
                    wait_us = (wait_us * 2).min(first_us * 8);
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
        // Waits for another instance's write are this driver's ([`Db::run`]);
        // a remote libSQL database may refuse the settings and keeps its own.
        // With a rollback journal every instance's commit waited out the
        // others' in SQLite's busy back-off (sleeps of up to 100 ms at a
        // time), and webhooks were answered in seconds at the tail.
        let opened = connection::open(
            &db,
            Busy::Driver,
            Settings::BestEffort,
            crate::policy::sync(),
        )?;
        if !opened.current() {
            connection::migrate(&db)?;
        }
        Ok(db)
    }

    /// From now on this connection's work is not waited for by anyone (it
    /// follows an answer): it waits longer between attempts at a lock.
    pub fn in_background(&self) {
        self.first_wait_us.set(BACKGROUND_WAIT_US);
    }
}

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
        let result = self.conn.execute(sql, &params).map_err(|e| {
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
        let db = Db { conn };
        db.tune();
        db.migrate()?;
        Ok(db)
    }

    /// Write-ahead logging, as the host's store: readers never wait for a
    /// writer, and a commit appends to the log (one sync) instead of
    /// rewriting pages through a rollback journal. Each request opens its
    /// own connection and a rollback journal made every instance's commit
    /// wait out the others' in SQLite's busy back-off (sleeps of up to
    /// 100 ms at a time): webhooks answered in seconds at the tail. The
    /// mode stays with the file; a backend that refuses these statements
    /// (a remote libSQL database) keeps its own.
    fn tune(&self) {
        let _ = self.conn.execute("PRAGMA journal_mode = WAL", &[]);
        let _ = self.conn.execute("PRAGMA synchronous = FULL", &[]);
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

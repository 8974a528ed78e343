//! What every driver runs on a connection it opens, so the host's rusqlite
//! file and the Spin app's SQLite are set up alike: how long a statement
//! waits for another instance's lock, write-ahead logging, how commits
//! reach the disk, and the schema's version.

use super::{Database, LedgerError, write};
use crate::schema::{MIGRATIONS, statements};

/// How long a statement waits at most for a lock another instance holds,
/// whoever does the waiting.
pub const LOCK_WAIT_MS: u64 = 10_000;

/// Who waits out a lock another connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// SQLite's own busy handler, up to [`LOCK_WAIT_MS`] (the host).
    Sqlite,
    /// The driver, which repeats a statement refused as locked on its own
    /// schedule (the Spin app): SQLite's handler is off.
    Driver,
}

/// Whether the database may refuse a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settings {
    /// A local file: a refused setting is an error.
    Required,
    /// A backend that may refuse them (a remote libSQL database behind
    /// Spin's API) keeps its own.
    BestEffort,
}

/// What [`open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The journal mode the file had (`wal` once set; `memory` in memory).
    pub journal_mode: Option<String>,
    /// The number of migrations applied ([`crate::schema::MIGRATIONS`]).
    pub user_version: i64,
}

impl Opened {
    /// Whether a newer build wrote the database (refused: its data is not
    /// this build's to change).
    pub fn newer_schema(&self) -> bool {
        self.user_version > MIGRATIONS.len() as i64
    }

    /// Whether every migration this build knows is applied.
    pub fn current(&self) -> bool {
        self.user_version >= MIGRATIONS.len() as i64
    }
}

/// Sets a connection up: the lock wait, write-ahead logging (readers never
/// wait for a writer, a commit appends to the log; the mode stays with the
/// file, so it is set only when missing), and how commits reach the disk
/// (`sync`, the core's `Policy::database` unless configured). Returns
/// the journal mode and schema version it found, read in one statement:
/// on Spin each statement is a trip through the host, and every request
/// opens a connection. (`foreign_keys` is not set: the schema declares no
/// foreign key; a migration that adds one adds the pragma here.)
pub fn open<D: Database + ?Sized>(
    db: &D,
    busy: Busy,
    settings: Settings,
    sync: Sync,
) -> Result<Opened, LedgerError> {
    let wait = match busy {
        Busy::Sqlite => LOCK_WAIT_MS,
        Busy::Driver => 0,
    };
    let set = |sql: &str| match (db.run(sql, &[]), settings) {
        (Err(e), Settings::Required) => Err(e),
        _ => Ok(()),
    };
    set(&format!("PRAGMA busy_timeout = {wait}"))?;
    let opened = db
        .first(
            "SELECT (SELECT journal_mode FROM pragma_journal_mode),
                    (SELECT user_version FROM pragma_user_version)",
            &[],
        )?
        .map(|row| {
            Ok::<_, LedgerError>(Opened {
                journal_mode: row.opt_text(0)?,
                user_version: row.int(1)?,
            })
        })
        .transpose()?
        .unwrap_or(Opened {
            journal_mode: None,
            user_version: 0,
        });
    if !opened
        .journal_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("wal"))
    {
        set("PRAGMA journal_mode = WAL")?;
    }
    set(sync.pragma())?;
    Ok(opened)
}

/// How a commit reaches the disk under write-ahead logging (SQLite's
/// `PRAGMA synchronous`). A remote database behind Spin (libSQL) may
/// refuse the setting and keeps its own durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `NORMAL` (the default): a committed transaction is in the log, in
    /// the operating system's hands, before the commit returns, so it
    /// survives any crash of the process (the bridge, `spin up`, a trap,
    /// an OOM kill, a deploy): a webhook answered 2xx after its commit is
    /// never lost to one. The log is synced at each checkpoint, so the
    /// file is never corrupted; a power loss or a crash of the machine may
    /// roll back the commits made since the log was last synced, answered
    /// webhooks among them.
    Normal,
    /// `FULL`: the log is synced on every commit, so a commit survives a
    /// power loss too. The sync happens while the database's one write
    /// lock is held: on Spin, where each request opens its own connection
    /// (and so also syncs the directory on its first commit), it halved
    /// the webhook intake's throughput and put its p99 near a third of a
    /// second at 16 concurrent senders. The host halves too, but from
    /// thousands a second (the README's benchmark).
    Full,
}

impl Sync {
    /// Reads a configured value: `normal` or `full`.
    pub fn parse(value: &str) -> Option<Sync> {
        match value.trim().to_ascii_lowercase().as_str() {
            "normal" => Some(Sync::Normal),
            "full" => Some(Sync::Full),
            _ => None,
        }
    }

    /// The statement that sets it.
    pub fn pragma(self) -> &'static str {
        match self {
            Sync::Normal => "PRAGMA synchronous = NORMAL",
            Sync::Full => "PRAGMA synchronous = FULL",
        }
    }

    /// Its configured name.
    pub fn name(self) -> &'static str {
        match self {
            Sync::Normal => "normal",
            Sync::Full => "full",
        }
    }
}

/// How this connection's commits reach the disk now (`None`: neither
/// setting, e.g. `OFF`, or a backend that does not say).
pub fn sync_of<D: Database + ?Sized>(db: &D) -> Result<Option<Sync>, LedgerError> {
    Ok(match db.first("PRAGMA synchronous", &[])? {
        Some(row) => match row.int(0)? {
            1 => Some(Sync::Normal),
            2 => Some(Sync::Full),
            _ => None,
        },
        None => None,
    })
}

/// Sets how this connection's commits reach the disk (a setting read after
/// the connection was opened).
pub fn set_sync<D: Database + ?Sized>(db: &D, sync: Sync) -> Result<(), LedgerError> {
    db.run(sync.pragma(), &[]).map(|_| ())
}

/// The number of migrations applied.
pub fn user_version<D: Database + ?Sized>(db: &D) -> Result<i64, LedgerError> {
    db.first("PRAGMA user_version", &[])?
        .map_or(Ok(0), |row| row.int(0))
}

/// Applies the migrations the database lacks, statement by statement, in
/// one transaction (for a driver without a migration library: the Spin
/// app). Instances starting together: one migrates, the others then find
/// the version moved and skip.
pub fn migrate<D: Database + ?Sized>(db: &D) -> Result<(), LedgerError> {
    if user_version(db)? as usize >= MIGRATIONS.len() {
        return Ok(());
    }
    write(db, |db| {
        let found = user_version(db)? as usize;
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
    })
}

/// Whether this database takes writes now: a write transaction is started
/// and rolled back, changing nothing.
pub fn check_writable<D: Database + ?Sized>(db: &D) -> Result<(), LedgerError> {
    db.run("BEGIN IMMEDIATE", &[])?;
    let tried = db.run(
        "INSERT INTO checkpoints (source, cursor, updated_at) VALUES ('doctor', '', 0)",
        &[],
    );
    let rolled_back = db.run("ROLLBACK", &[]);
    tried?;
    rolled_back?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_to_this_build_s_schema_once() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let opened = open(&db, Busy::Sqlite, Settings::Required, Sync::Normal).unwrap();
        assert_eq!(opened.user_version, 0);
        migrate(&db).unwrap();
        migrate(&db).unwrap();
        let again = open(&db, Busy::Sqlite, Settings::Required, Sync::Normal).unwrap();
        assert!(again.current() && !again.newer_schema());
    }

    #[test]
    fn a_database_from_a_newer_build_is_seen_as_newer() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.run(
            &format!("PRAGMA user_version = {}", MIGRATIONS.len() + 1),
            &[],
        )
        .unwrap();
        assert!(
            open(&db, Busy::Sqlite, Settings::Required, Sync::Normal)
                .unwrap()
                .newer_schema()
        );
    }

    #[test]
    fn a_driver_that_waits_out_locks_itself_turns_sqlite_s_wait_off() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        open(&db, Busy::Driver, Settings::BestEffort, Sync::Normal).unwrap();
        let wait = db.first("PRAGMA busy_timeout", &[]).unwrap().unwrap();
        assert_eq!(wait.int(0).unwrap(), 0);
        open(&db, Busy::Sqlite, Settings::Required, Sync::Normal).unwrap();
        let wait = db.first("PRAGMA busy_timeout", &[]).unwrap().unwrap();
        assert_eq!(wait.int(0).unwrap(), LOCK_WAIT_MS as i64);
    }

    #[test]
    fn a_connection_commits_without_syncing_each_commit() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let before = db.first("PRAGMA synchronous", &[]).unwrap().unwrap();
        assert_eq!(before.int(0).unwrap(), 2, "SQLite's default is FULL");
        open(&db, Busy::Driver, Settings::BestEffort, Sync::Normal).unwrap();
        let after = db.first("PRAGMA synchronous", &[]).unwrap().unwrap();
        assert_eq!(after.int(0).unwrap(), 1, "NORMAL");
        set_sync(&db, Sync::Full).unwrap();
        assert_eq!(
            sync_of(&db).unwrap(),
            Some(Sync::Full),
            "FULL when configured"
        );
    }

    #[test]
    fn a_configured_sync_is_read_whatever_its_case() {
        assert_eq!(Sync::parse(" Full "), Some(Sync::Full));
        assert_eq!(Sync::parse("normal"), Some(Sync::Normal));
        assert_eq!(Sync::parse("off"), None);
    }

    #[test]
    fn a_file_is_switched_to_write_ahead_logging() {
        let dir = std::env::temp_dir().join(format!("kbc-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let db = rusqlite::Connection::open(&path).unwrap();
        open(&db, Busy::Sqlite, Settings::Required, Sync::Normal).unwrap();
        let reopened = rusqlite::Connection::open(&path).unwrap();
        let opened = open(&reopened, Busy::Sqlite, Settings::Required, Sync::Normal).unwrap();
        assert_eq!(opened.journal_mode.as_deref(), Some("wal"));
        drop((db, reopened));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn checking_that_a_database_takes_writes_changes_nothing() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&db).unwrap();
        check_writable(&db).unwrap();
        assert!(super::super::checkpoint::all(&db).unwrap().is_empty());
    }
}

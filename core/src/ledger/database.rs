//! The one interface to the state database that every driver implements:
//! run a statement, get its rows. The host implements it on rusqlite (the
//! `rusqlite` feature, [`super::sqlite`]), the Spin app on Spin's SQLite API,
//! tests on an in-memory rusqlite database; the ledger's rules are written
//! once above it.

use super::LedgerError;

/// A value bound to, or read from, a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Integer(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Integer(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Integer(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// One row a statement yielded, its columns in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn column(&self, i: usize) -> Result<&Value, LedgerError> {
        self.0.get(i).ok_or(LedgerError::Corrupt {
            what: "row",
            value: format!("no column {i}"),
        })
    }

    /// An integer column (a NULL is an error).
    pub fn int(&self, i: usize) -> Result<i64, LedgerError> {
        self.opt_int(i)?.ok_or(LedgerError::Corrupt {
            what: "integer column",
            value: "NULL".into(),
        })
    }

    /// An integer column that may be NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, LedgerError> {
        match self.column(i)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(*v)),
            other => Err(unexpected("integer", other)),
        }
    }

    /// A small count (attempts and the like).
    pub fn count(&self, i: usize) -> Result<u32, LedgerError> {
        let v = self.int(i)?;
        u32::try_from(v).map_err(|_| LedgerError::Corrupt {
            what: "count",
            value: v.to_string(),
        })
    }

    /// A real column that may be NULL (an integer reads as a real).
    pub fn opt_real(&self, i: usize) -> Result<Option<f64>, LedgerError> {
        match self.column(i)? {
            Value::Null => Ok(None),
            Value::Real(v) => Ok(Some(*v)),
            Value::Integer(v) => Ok(Some(*v as f64)),
            other => Err(unexpected("real", other)),
        }
    }

    /// A text column (a NULL is an error).
    pub fn text(&self, i: usize) -> Result<String, LedgerError> {
        self.opt_text(i)?.ok_or(LedgerError::Corrupt {
            what: "text column",
            value: "NULL".into(),
        })
    }

    /// A text column that may be NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, LedgerError> {
        match self.column(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            other => Err(unexpected("text", other)),
        }
    }

    /// A blob column (text reads as its bytes).
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, LedgerError> {
        match self.column(i)? {
            Value::Blob(v) => Ok(v.clone()),
            Value::Text(v) => Ok(v.clone().into_bytes()),
            other => Err(unexpected("blob", other)),
        }
    }
}

fn unexpected(wanted: &str, found: &Value) -> LedgerError {
    LedgerError::Corrupt {
        what: "column type",
        value: format!("wanted {wanted}, found {found:?}"),
    }
}

/// A SQLite database a driver reaches.
pub trait Database {
    /// Runs one statement with positional parameters (`?1`, `?2`, ...) and
    /// returns every row it yields: a query's rows, a `RETURNING` clause's,
    /// or none.
    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError>;

    /// The first row `sql` yields, if any.
    fn first(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, LedgerError> {
        Ok(self.run(sql, params)?.into_iter().next())
    }
}

/// Runs `f` in a transaction that holds the write lock from its start
/// (`BEGIN IMMEDIATE`): every instance sharing the database sees all of it
/// or none of it, and one that reads before it writes never decides on a
/// row another instance is changing. Rolled back when `f` fails.
pub fn write<D: Database + ?Sized, T>(
    db: &D,
    f: impl FnOnce(&D) -> Result<T, LedgerError>,
) -> Result<T, LedgerError> {
    db.run(BEGIN, &[])?;
    let result = f(db).and_then(|value| db.run(COMMIT, &[]).map(|_| value));
    if result.is_err() {
        // After a failed COMMIT (the database busy past its timeout) the
        // transaction is still open: end it so the connection stays usable.
        let _ = db.run(ROLLBACK, &[]);
    }
    result
}

/// The statements [`write`] brackets a transaction with: a driver whose
/// connection is shared (the host's) holds it from the first to one of
/// the others.
pub const BEGIN: &str = "BEGIN IMMEDIATE";
pub const COMMIT: &str = "COMMIT";
pub const ROLLBACK: &str = "ROLLBACK";

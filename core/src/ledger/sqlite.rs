//! [`Database`] on rusqlite: the host's driver, and the in-memory database
//! the core's own tests drive the ledger with.

use rusqlite::types::{Value as SqlValue, ValueRef};

use super::LedgerError;
use super::database::{Database, Row, Value};

impl Database for rusqlite::Connection {
    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError> {
        let mut stmt = self.prepare_cached(sql).map_err(database)?;
        let columns = stmt.column_count();
        let bound = params.iter().map(|v| match v {
            Value::Null => SqlValue::Null,
            Value::Integer(i) => SqlValue::Integer(*i),
            Value::Real(r) => SqlValue::Real(*r),
            Value::Text(t) => SqlValue::Text(t.clone()),
            Value::Blob(b) => SqlValue::Blob(b.clone()),
        });
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bound))
            .map_err(database)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(database)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(database)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Integer(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

fn database(e: rusqlite::Error) -> LedgerError {
    LedgerError::Database(Box::new(e))
}

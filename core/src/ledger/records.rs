//! Source records kept to join a call with what its source lists apart:
//! Salesloft's call data records (which carry the direction a call record
//! lacks), kept by call id until the call is decided.

use super::{Database, LedgerError};
use crate::Millis;

/// Keeps a call's call data record (its newest by `updated_at`, the
/// record's own text in UTC with microseconds, so it compares as text).
pub fn put<D: Database + ?Sized>(
    db: &D,
    source: &str,
    call_id: &str,
    record: &str,
    updated_at: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO call_data_records (source, call_id, record, updated_at, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (source, call_id) DO UPDATE SET record = excluded.record,
             updated_at = excluded.updated_at, stored_at = excluded.stored_at
         WHERE excluded.updated_at >= call_data_records.updated_at",
        &[
            source.into(),
            call_id.into(),
            record.into(),
            updated_at.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// A call's call data record, if one was read.
pub fn get<D: Database + ?Sized>(
    db: &D,
    source: &str,
    call_id: &str,
) -> Result<Option<String>, LedgerError> {
    db.first(
        "SELECT record FROM call_data_records WHERE source = ?1 AND call_id = ?2",
        &[source.into(), call_id.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Forgets records stored before `before` (their calls were decided long
/// ago). How many.
pub fn prune<D: Database + ?Sized>(db: &D, before: Millis) -> Result<usize, LedgerError> {
    Ok(db
        .run(
            "DELETE FROM call_data_records WHERE stored_at < ?1 RETURNING 1",
            &[before.into()],
        )?
        .len())
}

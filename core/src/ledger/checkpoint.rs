//! Where each source's polling stands: an opaque cursor (the source
//! module's JSON) per checkpoint name. A cursor moves in the same
//! transaction as the calls it covers ([`super::intake::intake`]), so it
//! never runs ahead of the ledger.

use super::{Database, LedgerError};
use crate::Millis;

/// The stored cursor of `source`, if any.
pub fn get<D: Database + ?Sized>(db: &D, source: &str) -> Result<Option<String>, LedgerError> {
    db.first(
        "SELECT cursor FROM checkpoints WHERE source = ?1",
        &[source.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Every checkpoint with the time it last moved.
pub fn all<D: Database + ?Sized>(db: &D) -> Result<Vec<(String, String, Millis)>, LedgerError> {
    db.run(
        "SELECT source, cursor, updated_at FROM checkpoints ORDER BY source",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
    .collect()
}

/// Moves `source`'s cursor (outside a transaction of its own: callers in
/// a [`super::write`] include it in theirs).
pub fn set<D: Database + ?Sized>(
    db: &D,
    source: &str,
    cursor: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO checkpoints (source, cursor, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        &[source.into(), cursor.into(), now.into()],
    )?;
    Ok(())
}

/// Moves `source`'s cursor from `from` (what this poll read, or last
/// wrote; `None`: there was none) to `to`. False, and nothing moved, when
/// another instance moved it meanwhile: two instances polling one source
/// never move its checkpoint back; the one that finds it moved ends its
/// cycle (what it read is in the ledger whatever the checkpoint says).
pub fn advance<D: Database + ?Sized>(
    db: &D,
    source: &str,
    from: Option<&str>,
    to: &str,
    now: Millis,
) -> Result<bool, LedgerError> {
    let moved = match from {
        None => db.run(
            "INSERT INTO checkpoints (source, cursor, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO NOTHING RETURNING 1",
            &[source.into(), to.into(), now.into()],
        )?,
        Some(from) => db.run(
            "UPDATE checkpoints SET cursor = ?3, updated_at = ?4
             WHERE source = ?1 AND cursor = ?2 RETURNING 1",
            &[source.into(), from.into(), to.into(), now.into()],
        )?,
    };
    Ok(!moved.is_empty())
}

/// Forgets `source`'s checkpoint and its first look-back: the next poll
/// starts from its initial look-back. Whether there was one.
pub fn reset<D: Database + ?Sized>(db: &D, source: &str) -> Result<bool, LedgerError> {
    db.run(
        "DELETE FROM first_look_back WHERE checkpoint = ?1",
        &[source.into()],
    )?;
    Ok(!db
        .run(
            "DELETE FROM checkpoints WHERE source = ?1 RETURNING source",
            &[source.into()],
        )?
        .is_empty())
}

/// The lower bound of `checkpoint`'s first look-back: `candidate` the
/// first time it is asked, the same value on every later call until the
/// checkpoint is reset, however long the first polls keep failing.
pub fn first_look_back<D: Database + ?Sized>(
    db: &D,
    checkpoint: &str,
    candidate: Millis,
) -> Result<Millis, LedgerError> {
    db.run(
        "INSERT OR IGNORE INTO first_look_back (checkpoint, since_ms) VALUES (?1, ?2)",
        &[checkpoint.into(), candidate.into()],
    )?;
    db.first(
        "SELECT since_ms FROM first_look_back WHERE checkpoint = ?1",
        &[checkpoint.into()],
    )?
    .map_or(Ok(candidate), |r| r.int(0))
}

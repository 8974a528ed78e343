//! Write-backs: what the bridge writes to a source record after Kendo
//! answered for it. A write-back is inserted in the same transaction as its
//! cause (the 201 in [`super::record::record`]'s `on_created`, the score in
//! [`super::results::record`]'s `on_scored`), so a crash loses none; a
//! writer claims due rows under a lease and records each attempt here.

use serde::{Deserialize, Serialize};

use super::{CallKey, Database, LedgerError, Row, Value, bump, write};
use crate::Millis;

/// Counters of write-back attempts (scope: source).
pub mod counter {
    /// Written.
    pub const DONE: &str = "write_back_done";
    /// Failed and scheduled again.
    pub const RETRIED: &str = "write_back_retried";
    /// Given up.
    pub const DEAD: &str = "write_back_dead";
    /// Every pending write-back held back because the source refused the
    /// credential or a scope.
    pub const HELD: &str = "write_back_held";
}

/// A write-back's state: one of these per row, never anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBackState {
    /// To be written at `not_before` or later.
    Pending,
    /// Written.
    Done,
    /// Given up: its attempts ran out, or the source refused it for good
    /// (the record is gone); `last_error` says why.
    Dead,
}

impl WriteBackState {
    pub const ALL: [WriteBackState; 3] = [
        WriteBackState::Pending,
        WriteBackState::Done,
        WriteBackState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteBackState::Pending => "pending",
            WriteBackState::Done => "done",
            WriteBackState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<WriteBackState> {
        WriteBackState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    fn read(s: String) -> Result<WriteBackState, LedgerError> {
        WriteBackState::parse(&s).ok_or(LedgerError::Corrupt {
            what: "write-back state",
            value: s,
        })
    }
}

/// What a write-back carries, by meaning; the source's writer names the
/// fields as its API wants them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteBackFields {
    /// Kendo created the call (its 201).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<bool>,
    /// Kendo's `callId` for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The AI score from Kendo's `call.uploaded` webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_score: Option<f64>,
    /// When Kendo scored it (the event's `createdAt`, else when the bridge
    /// received it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored_at: Option<Millis>,
}

/// A write-back due now.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBackItem {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    /// `sent` or `score`.
    pub kind: String,
    pub fields: WriteBackFields,
    /// Attempts made so far.
    pub attempts: u32,
}

/// Write-backs of one source, for `status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBackCounts {
    pub source: String,
    pub pending: u64,
    pub done: u64,
    pub dead: u64,
    /// The newest error recorded on any of its rows, and when.
    pub last_error: Option<(String, Millis)>,
}

impl WriteBackCounts {
    pub fn get(&self, state: WriteBackState) -> u64 {
        match state {
            WriteBackState::Pending => self.pending,
            WriteBackState::Done => self.done,
            WriteBackState::Dead => self.dead,
        }
    }
}

/// Queues `sent` (and Kendo's `callId`) for a call Kendo just created: for
/// [`super::record::record`]'s `on_created`, inside its transaction.
pub fn enqueue_sent<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
    kendo_call_id: Option<&str>,
    now: Millis,
) -> Result<(), LedgerError> {
    let fields = WriteBackFields {
        sent: Some(true),
        call_id: kendo_call_id.map(str::to_string),
        ..WriteBackFields::default()
    };
    enqueue(db, &key.source, &key.source_id, "sent", &fields, now)
}

/// Queues a call's score: for [`super::results::record`]'s `on_scored`,
/// inside its transaction.
pub fn enqueue_score<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    score: f64,
    scored_at: Millis,
    now: Millis,
) -> Result<(), LedgerError> {
    let fields = WriteBackFields {
        ai_score: Some(score),
        scored_at: Some(scored_at),
        ..WriteBackFields::default()
    };
    enqueue(db, source, source_id, "score", &fields, now)
}

fn enqueue<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    kind: &str,
    fields: &WriteBackFields,
    now: Millis,
) -> Result<(), LedgerError> {
    let text = serde_json::to_string(fields).map_err(|e| LedgerError::Corrupt {
        what: "write-back fields",
        value: e.to_string(),
    })?;
    // A later event of the same kind (a call re-scored) carries the newer
    // values: the row is written again, from a fresh set of attempts.
    db.run(
        "INSERT INTO write_backs (source, source_id, kind, fields, not_before, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)
         ON CONFLICT (source, source_id, kind) DO UPDATE SET fields = excluded.fields,
             state = 'pending', attempts = 0, not_before = excluded.not_before,
             last_error = NULL, updated_at = excluded.updated_at",
        &[
            source.into(),
            source_id.into(),
            kind.into(),
            text.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

fn item(row: &Row) -> Result<WriteBackItem, LedgerError> {
    let fields = row.text(4)?;
    Ok(WriteBackItem {
        id: row.int(0)?,
        source: row.text(1)?,
        source_id: row.text(2)?,
        kind: row.text(3)?,
        fields: serde_json::from_str(&fields).map_err(|_| LedgerError::Corrupt {
            what: "write-back fields",
            value: fields,
        })?,
        attempts: row.count(5)?,
    })
}

/// Pending write-backs due at `now`, oldest first.
pub fn due<D: Database + ?Sized>(
    db: &D,
    now: Millis,
    limit: u32,
) -> Result<Vec<WriteBackItem>, LedgerError> {
    db.run(
        "SELECT id, source, source_id, kind, fields, attempts FROM write_backs
          WHERE state = 'pending' AND not_before <= ?1
          ORDER BY not_before, id LIMIT ?2",
        &[now.into(), limit.into()],
    )?
    .iter()
    .map(item)
    .collect()
}

/// Claims a due write-back for `lease_ms`: it is not due again (to this or
/// another instance on the same database) until the lease ends, so one
/// attempt is in flight at a time; an instance that dies mid-attempt
/// leaves it due again when the lease runs out. False when another claimed
/// it first or it is no longer pending.
pub fn claim<D: Database + ?Sized>(
    db: &D,
    item: &WriteBackItem,
    lease_ms: Millis,
    now: Millis,
) -> Result<bool, LedgerError> {
    Ok(!db
        .run(
            "UPDATE write_backs SET not_before = ?2
              WHERE id = ?1 AND state = 'pending' AND not_before <= ?3 RETURNING 1",
            &[item.id.into(), (now + lease_ms.max(1)).into(), now.into()],
        )?
        .is_empty())
}

/// When the next pending write-back is due.
pub fn next_at<D: Database + ?Sized>(db: &D) -> Result<Option<Millis>, LedgerError> {
    match db.first(
        "SELECT MIN(not_before) FROM write_backs WHERE state = 'pending'",
        &[],
    )? {
        Some(row) => row.opt_int(0),
        None => Ok(None),
    }
}

/// The source has the values.
pub fn done<D: Database + ?Sized>(
    db: &D,
    item: &WriteBackItem,
    now: Millis,
) -> Result<(), LedgerError> {
    settle(
        db,
        item,
        "UPDATE write_backs SET state = 'done', attempts = attempts + 1, last_error = NULL,
                updated_at = ?2
          WHERE id = ?1 AND state = 'pending'",
        &[item.id.into(), now.into()],
        counter::DONE,
    )
}

/// An attempt failed in a way worth trying again, not before `not_before`.
pub fn retry<D: Database + ?Sized>(
    db: &D,
    item: &WriteBackItem,
    not_before: Millis,
    error: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    settle(
        db,
        item,
        "UPDATE write_backs SET attempts = attempts + 1, not_before = ?2, last_error = ?3,
                updated_at = ?4
          WHERE id = ?1 AND state = 'pending'",
        &[item.id.into(), not_before.into(), error.into(), now.into()],
        counter::RETRIED,
    )
}

/// Gives a write-back up, with the reason.
pub fn dead<D: Database + ?Sized>(
    db: &D,
    item: &WriteBackItem,
    error: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    settle(
        db,
        item,
        "UPDATE write_backs SET state = 'dead', attempts = attempts + 1, last_error = ?2,
                updated_at = ?3
          WHERE id = ?1 AND state = 'pending'",
        &[item.id.into(), error.into(), now.into()],
        counter::DEAD,
    )
}

/// Records one attempt's outcome and counts it, in one transaction.
fn settle<D: Database + ?Sized>(
    db: &D,
    item: &WriteBackItem,
    sql: &str,
    values: &[Value],
    name: &str,
) -> Result<(), LedgerError> {
    write(db, |db| {
        db.run(sql, values)?;
        bump(db, &item.source, name, 1)
    })
}

/// Holds every pending write-back of `source` until `until` without
/// spending an attempt: the source refused something no single row can fix
/// (a missing scope), and each row succeeds once the operator has fixed it.
/// `claimed`, the write-back whose attempt found the problem, waits exactly
/// until `until` (its claim's lease ends with the hold). How many wait.
pub fn hold<D: Database + ?Sized>(
    db: &D,
    source: &str,
    claimed: Option<&WriteBackItem>,
    until: Millis,
    error: &str,
    now: Millis,
) -> Result<usize, LedgerError> {
    write(db, |db| {
        let held = db
            .run(
                "UPDATE write_backs SET not_before = CASE WHEN id = ?5 THEN ?2 ELSE MAX(not_before, ?2) END,
                        last_error = ?3, updated_at = ?4
                  WHERE source = ?1 AND state = 'pending' RETURNING 1",
                &[
                    source.into(),
                    until.into(),
                    error.into(),
                    now.into(),
                    claimed.map(|c| c.id).into(),
                ],
            )?
            .len();
        bump(db, source, counter::HELD, 1)?;
        Ok(held)
    })
}

/// Dead write-backs back to pending, due at `now`, with fresh attempts.
pub fn replay<D: Database + ?Sized>(db: &D, now: Millis) -> Result<usize, LedgerError> {
    Ok(db
        .run(
            "UPDATE write_backs SET state = 'pending', attempts = 0, not_before = ?1, updated_at = ?1
              WHERE state = 'dead' RETURNING 1",
            &[now.into()],
        )?
        .len())
}

/// Write-backs per source by state, with the newest error.
pub fn counts<D: Database + ?Sized>(db: &D) -> Result<Vec<WriteBackCounts>, LedgerError> {
    let rows = db.run(
        "SELECT source, state, COUNT(*) FROM write_backs GROUP BY source, state ORDER BY source",
        &[],
    )?;
    let mut out: Vec<WriteBackCounts> = Vec::new();
    for row in rows {
        let source = row.text(0)?;
        let state = WriteBackState::read(row.text(1)?)?;
        let n = row.int(2)?.max(0) as u64;
        if out.last().is_none_or(|c| c.source != source) {
            out.push(WriteBackCounts {
                source: source.clone(),
                ..WriteBackCounts::default()
            });
        }
        if let Some(c) = out.last_mut() {
            match state {
                WriteBackState::Pending => c.pending = n,
                WriteBackState::Done => c.done = n,
                WriteBackState::Dead => c.dead = n,
            }
        }
    }
    for c in &mut out {
        c.last_error = match db.first(
            "SELECT last_error, updated_at FROM write_backs
              WHERE source = ?1 AND last_error IS NOT NULL
              ORDER BY updated_at DESC, id DESC LIMIT 1",
            &[(&c.source).into()],
        )? {
            Some(row) => Some((row.text(0)?, row.int(1)?)),
            None => None,
        };
    }
    Ok(out)
}

/// One write-back's state, attempts and last error.
pub fn state<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    kind: &str,
) -> Result<Option<(WriteBackState, u32, Option<String>)>, LedgerError> {
    db.first(
        "SELECT state, attempts, last_error FROM write_backs
          WHERE source = ?1 AND source_id = ?2 AND kind = ?3",
        &[source.into(), source_id.into(), kind.into()],
    )?
    .map(|row| {
        Ok((
            WriteBackState::read(row.text(0)?)?,
            row.count(1)?,
            row.opt_text(2)?,
        ))
    })
    .transpose()
}

//! Parts of one call that arrive apart, held until the call can be
//! decided: Aloware sends a call's body (in several events, each with some
//! fields) and its transcript separately, in any order, and never again.

use super::{Database, LedgerError, write};
use crate::Millis;

/// What is held for a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldCall {
    pub body: Option<String>,
    pub transcript: Option<String>,
    /// When the wait for a transcript ends (epoch ms); `Some(0)` once it
    /// is over, `None` before it started.
    pub transcript_due_at: Option<Millis>,
}

/// Keeps what a delivery brought (a call body, a transcript) with what is
/// held for the call, and returns what is held now, in one transaction. A
/// body replaces the held one: a driver merging a new body into the held
/// one uses [`merge_body`], which refuses a merge made from a stale read.
pub fn hold<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    body: Option<&str>,
    transcript: Option<&str>,
    now: Millis,
) -> Result<HeldCall, LedgerError> {
    write(db, |db| {
        db.run(
            "INSERT INTO held_calls (source, source_id, body, transcript, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (source, source_id) DO UPDATE SET
                body = COALESCE(excluded.body, held_calls.body),
                transcript = COALESCE(excluded.transcript, held_calls.transcript),
                updated_at = excluded.updated_at",
            &[
                source.into(),
                source_id.into(),
                body.into(),
                transcript.into(),
                now.into(),
            ],
        )?;
        if transcript.is_some() {
            transcript_seen(db, source, now)?;
        }
        Ok(held(db, source, source_id)?.unwrap_or_default())
    })
}

/// Notes that `source` delivered a transcript at `now` ([`hold`] does it
/// for every transcript it keeps).
pub fn transcript_seen<D: Database + ?Sized>(
    db: &D,
    source: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO transcripts_seen (source, last_at) VALUES (?1, ?2)
         ON CONFLICT (source) DO UPDATE SET last_at = MAX(last_at, excluded.last_at)",
        &[source.into(), now.into()],
    )?;
    Ok(())
}

/// When `source` last delivered a transcript, if ever.
pub fn last_transcript_at<D: Database + ?Sized>(
    db: &D,
    source: &str,
) -> Result<Option<Millis>, LedgerError> {
    Ok(db
        .first(
            "SELECT last_at FROM transcripts_seen WHERE source = ?1",
            &[source.into()],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten())
}

/// What is held for a call.
pub fn held<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
) -> Result<Option<HeldCall>, LedgerError> {
    db.first(
        "SELECT body, transcript, transcript_due_at FROM held_calls WHERE source = ?1 AND source_id = ?2",
        &[source.into(), source_id.into()],
    )?
    .map(|r| {
        Ok(HeldCall {
            body: r.opt_text(0)?,
            transcript: r.opt_text(1)?,
            transcript_due_at: r.opt_int(2)?,
        })
    })
    .transpose()
}

/// A held call whose wait for its transcript ran out while it waits for
/// one (see [`transcript_waits_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptWaitDue {
    pub source_id: String,
    pub body: String,
    /// The ledger row's version, which a new decision must exceed.
    pub version: String,
}

/// Starts a held call's wait for its transcript, ending at `due`. The wait
/// starts once: a later delivery does not extend it.
pub fn start_transcript_wait<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    due: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE held_calls SET transcript_due_at = ?3
         WHERE source = ?1 AND source_id = ?2 AND transcript_due_at IS NULL",
        &[source.into(), source_id.into(), due.into()],
    )?;
    Ok(())
}

/// Sets when a held call's wait for its transcript ends (0: it is over).
pub fn set_transcript_due<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    at: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE held_calls SET transcript_due_at = ?3 WHERE source = ?1 AND source_id = ?2",
        &[source.into(), source_id.into(), at.into()],
    )?;
    Ok(())
}

/// Held calls of `source` still waiting for a transcript (ledger state
/// `waiting`, code `transcript-pending`) whose wait ended by `now`.
pub fn transcript_waits_due<D: Database + ?Sized>(
    db: &D,
    source: &str,
    now: Millis,
) -> Result<Vec<TranscriptWaitDue>, LedgerError> {
    db.run(
        "SELECT h.source_id, h.body, l.version FROM held_calls h
           JOIN ledger l ON l.source = h.source AND l.source_id = h.source_id
          WHERE h.source = ?1 AND h.body IS NOT NULL
            AND h.transcript_due_at > 0 AND h.transcript_due_at <= ?2
            AND l.state = 'waiting' AND l.reason_code = 'transcript-pending'
          ORDER BY h.transcript_due_at",
        &[source.into(), now.into()],
    )?
    .iter()
    .map(|r| {
        Ok(TranscriptWaitDue {
            source_id: r.text(0)?,
            body: r.text(1)?,
            version: r.text(2)?,
        })
    })
    .collect()
}

/// When the next wait for a transcript of `source` ends, if any call still
/// waits for one.
pub fn next_transcript_due<D: Database + ?Sized>(
    db: &D,
    source: &str,
) -> Result<Option<Millis>, LedgerError> {
    Ok(db
        .first(
            "SELECT MIN(h.transcript_due_at) FROM held_calls h
               JOIN ledger l ON l.source = h.source AND l.source_id = h.source_id
              WHERE h.source = ?1 AND h.transcript_due_at > 0
                AND l.state = 'waiting' AND l.reason_code = 'transcript-pending'",
            &[source.into()],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten())
}

/// Keeps `merged` as the call's held body if the held body is still
/// `before` (what the plugin merged the new body into), and returns what
/// is held now; `None`, and nothing changed, when another instance changed
/// the body meanwhile: read it again and merge again. Two events of one
/// call processed at the same moment by two instances then both count.
pub fn merge_body<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    before: Option<&str>,
    merged: &str,
    now: Millis,
) -> Result<Option<HeldCall>, LedgerError> {
    write(db, |db| {
        let kept = match before {
            None => db.run(
                "INSERT INTO held_calls (source, source_id, body, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (source, source_id) DO UPDATE SET body = excluded.body,
                     updated_at = excluded.updated_at
                 WHERE held_calls.body IS NULL
                 RETURNING 1",
                &[source.into(), source_id.into(), merged.into(), now.into()],
            )?,
            Some(before) => db.run(
                "UPDATE held_calls SET body = ?4, updated_at = ?5
                 WHERE source = ?1 AND source_id = ?2 AND body = ?3 RETURNING 1",
                &[
                    source.into(),
                    source_id.into(),
                    before.into(),
                    merged.into(),
                    now.into(),
                ],
            )?,
        };
        if kept.is_empty() {
            return Ok(None);
        }
        held(db, source, source_id)
    })
}

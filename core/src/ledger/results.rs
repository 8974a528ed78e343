//! Kendo's results about the calls it received (its `call.uploaded` and
//! `ai.training.completed` webhooks): kept once per event, matched to the
//! calls by the callId Kendo returned for them.

use super::{Database, LedgerError, write};
use crate::Millis;

/// When Kendo scored a call: the event's `createdAt` (RFC 3339) when it
/// can be read; `None` otherwise, and the time it arrived stands in.
pub fn scored_at(created_at: Option<&str>) -> Option<Millis> {
    let text = created_at?.trim();
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A Kendo webhook result.
#[derive(Debug, Clone, Copy)]
pub struct KendoResult<'a> {
    pub event_id: &'a str,
    pub event: &'a str,
    /// Kendo's `callId` (or `trainingId`).
    pub subject_id: &'a str,
    pub ai_score: Option<f64>,
    pub is_test: bool,
    /// When Kendo scored it, if the event says.
    pub scored_at: Option<Millis>,
}

/// Records a result, once per event id (false: seen before). For a new
/// score of a call (not a test), `on_scored` runs in the same transaction
/// with each `(source, source_id)` Kendo's callId belongs to and the time
/// it was scored: the host queues its write-backs there.
///
/// A result that scores no call the ledger knows (a test, another event,
/// a call sent by something else) is stored by one statement that checks
/// for the call itself: on Spin every statement of a transaction is a trip
/// through the host, and a transaction holds the write lock across those
/// trips while webhooks wait to be stored. When the statement stores
/// nothing (the event was seen, or a call has the callId), the
/// transaction decides, as it always did.
pub fn record<D: Database + ?Sized>(
    db: &D,
    result: &KendoResult<'_>,
    now: Millis,
    mut on_scored: impl FnMut(&D, &str, &str, f64, Millis) -> Result<(), LedgerError>,
) -> Result<bool, LedgerError> {
    let scores = !result.is_test && result.event == "call.uploaded" && result.ai_score.is_some();
    let values = [
        result.event_id.into(),
        result.event.into(),
        result.subject_id.into(),
        result
            .ai_score
            .map_or(super::Value::Null, super::Value::Real),
        result.is_test.into(),
        now.into(),
    ];
    // Atomic on its own: stored only while no call has the callId, so
    // `on_scored` had nothing to run for.
    if db.first(INSERT_UNLESS_SCORED, &values)?.is_some() {
        return Ok(true);
    }
    if !scores {
        // Nothing to score: the only way not to store it is a duplicate,
        // and a call taking the callId meanwhile changes nothing.
        return Ok(false);
    }
    write(db, |db| {
        let inserted = !db.run(INSERT, &values)?.is_empty();
        if inserted && let Some(score) = result.ai_score {
            let calls = db.run(
                "SELECT source, source_id FROM ledger WHERE kendo_call_id = ?1
                 UNION
                 SELECT source, source_id FROM kendo_call_ids WHERE kendo_call_id = ?1",
                &[result.subject_id.into()],
            )?;
            for call in calls {
                on_scored(
                    db,
                    &call.text(0)?,
                    &call.text(1)?,
                    score,
                    result.scored_at.unwrap_or(now),
                )?;
            }
        }
        Ok(inserted)
    })
}

const INSERT: &str =
    "INSERT INTO kendo_results (event_id, event, subject_id, ai_score, is_test, received_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (event_id) DO NOTHING RETURNING 1";

/// Stores a result unless it is a duplicate or scores a call the ledger
/// holds (a new, non-test `call.uploaded` with a score whose callId a call
/// has): those are [`record`]'s transaction's to decide. (`WHERE` is also
/// what lets SQLite parse `ON CONFLICT` after a `SELECT`.)
const INSERT_UNLESS_SCORED: &str =
    "INSERT INTO kendo_results (event_id, event, subject_id, ai_score, is_test, received_at)
     SELECT ?1, ?2, ?3, ?4, ?5, ?6
     WHERE ?5 <> 0 OR ?2 <> 'call.uploaded' OR ?4 IS NULL
        OR (NOT EXISTS (SELECT 1 FROM ledger WHERE kendo_call_id = ?3)
            AND NOT EXISTS (SELECT 1 FROM kendo_call_ids WHERE kendo_call_id = ?3))
     ON CONFLICT (event_id) DO NOTHING RETURNING 1";

/// Results stored (tests included).
pub fn count<D: Database + ?Sized>(db: &D) -> Result<u64, LedgerError> {
    let n = db
        .first("SELECT COUNT(*) FROM kendo_results", &[])?
        .map_or(Ok(0), |r| r.int(0))?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_s_time_is_the_event_s_created_at_when_it_reads() {
        assert_eq!(
            scored_at(Some("2026-04-22T15:30:00Z")),
            Some(1_776_871_800_000)
        );
        assert_eq!(scored_at(Some("yesterday")), None);
        assert_eq!(scored_at(None), None);
    }
}

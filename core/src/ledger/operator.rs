//! What an operator does to calls by hand: `settle` a parked call after
//! checking Kendo, `replay` dead letters. Each is one transaction, so it is
//! safe while instances are running on the same database.

use super::record::created;
use super::{CallKey, Database, LedgerError, State, set_state, write};
use crate::Millis;

/// Which parked call `settle` acts on: a source id, narrowed by source and
/// team when it is ambiguous.
#[derive(Debug, Clone, Default)]
pub struct SettleFilter {
    pub source_id: String,
    pub source: Option<String>,
    pub team: Option<String>,
}

/// Which dead letters `replay` puts back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub team: Option<String>,
    pub source: Option<String>,
    pub source_id: Option<String>,
    /// Also replay permanent rejections (`failed`), not only `dead`.
    pub include_failed: bool,
}

/// Why a call marked sent by `settle --sent` is sent.
pub const SETTLED_SENT: (&str, &str) = (
    "settled-sent",
    "marked sent by the operator after checking Kendo",
);

/// The parked sends (`outcome-unknown`) a settle filter names, with their
/// outbox row.
fn parked_sends<D: Database + ?Sized>(
    db: &D,
    filter: &SettleFilter,
) -> Result<Vec<(i64, CallKey)>, LedgerError> {
    db.run(
        "SELECT o.source, o.source_id, o.team, o.id FROM outbox o
           JOIN ledger l ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team
         WHERE l.state = ?4 AND o.source_id = ?1
           AND (?2 IS NULL OR o.source = ?2) AND (?3 IS NULL OR o.team = ?3)",
        &[
            (&filter.source_id).into(),
            filter.source.as_ref().into(),
            filter.team.as_ref().into(),
            State::OutcomeUnknown.as_str().into(),
        ],
    )?
    .iter()
    .map(|r| {
        Ok((
            r.int(3)?,
            CallKey {
                source: r.text(0)?,
                source_id: r.text(1)?,
                team: r.text(2)?,
            },
        ))
    })
    .collect()
}

/// The calls parked as `outcome-unknown` that a settle filter names.
pub fn parked<D: Database + ?Sized>(
    db: &D,
    filter: &SettleFilter,
) -> Result<Vec<CallKey>, LedgerError> {
    Ok(parked_sends(db, filter)?
        .into_iter()
        .map(|(_, key)| key)
        .collect())
}

/// The operator found the parked call in Kendo: it is sent, with the callId
/// they saw if given, as a 201 would have made it ([`created`], so
/// `on_created` queues its write-backs in the same transaction). Returns
/// the keys settled.
pub fn settle_sent<D: Database + ?Sized>(
    db: &D,
    filter: &SettleFilter,
    kendo_call_id: Option<&str>,
    now: Millis,
    on_created: impl Fn(&D, &CallKey, Option<&str>) -> Result<(), LedgerError>,
) -> Result<Vec<CallKey>, LedgerError> {
    write(db, |db| {
        let sends = parked_sends(db, filter)?;
        for (outbox_id, key) in &sends {
            created(
                db,
                *outbox_id,
                key,
                kendo_call_id,
                Some(SETTLED_SENT),
                now,
                &on_created,
            )?;
        }
        Ok(sends.into_iter().map(|(_, key)| key).collect())
    })
}

/// The operator found the parked call missing from Kendo: it goes back to
/// the queue, due now, with a fresh budget of lost answers.
pub fn settle_resend<D: Database + ?Sized>(
    db: &D,
    filter: &SettleFilter,
    now: Millis,
) -> Result<Vec<CallKey>, LedgerError> {
    write(db, |db| {
        let keys = parked(db, filter)?;
        for key in &keys {
            let [source, source_id, team] = key.params();
            db.run(
                "UPDATE outbox SET not_before = ?4, ambiguous = 0, claim = NULL, lease_until = NULL
                 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                &[source, source_id, team, now.into()],
            )?;
            set_state(
                db,
                key,
                State::Queued,
                Some("settled-resend"),
                Some("put back in the queue by the operator after checking Kendo"),
                now,
            )?;
        }
        Ok(keys)
    })
}

/// Puts dead letters (and, when asked, permanent rejections) back in the
/// queue, due now, with their attempt count reset. Returns how many.
pub fn replay<D: Database + ?Sized>(
    db: &D,
    filter: &ReplayFilter,
    now: Millis,
) -> Result<usize, LedgerError> {
    let failed = if filter.include_failed {
        State::Failed
    } else {
        State::Dead
    };
    write(db, |db| {
        let keys = db
            .run(
                "SELECT o.source, o.source_id, o.team FROM outbox o
                 JOIN ledger l ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team
                 WHERE l.state IN (?4, ?5)
                   AND (?1 IS NULL OR o.team = ?1)
                   AND (?2 IS NULL OR o.source = ?2)
                   AND (?3 IS NULL OR o.source_id = ?3)",
                &[
                    filter.team.as_ref().into(),
                    filter.source.as_ref().into(),
                    filter.source_id.as_ref().into(),
                    State::Dead.as_str().into(),
                    failed.as_str().into(),
                ],
            )?
            .iter()
            .map(|r| {
                Ok(CallKey {
                    source: r.text(0)?,
                    source_id: r.text(1)?,
                    team: r.text(2)?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        for key in &keys {
            let [source, source_id, team] = key.params();
            db.run(
                "UPDATE outbox SET not_before = ?4, attempts = 0, claim = NULL, lease_until = NULL
                 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                &[source.clone(), source_id.clone(), team.clone(), now.into()],
            )?;
            db.run(
                "UPDATE ledger SET attempts = 0 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                &[source, source_id, team],
            )?;
            set_state(
                db,
                key,
                State::Queued,
                Some("replayed"),
                Some("put back in the queue by replay"),
                now,
            )?;
        }
        Ok(keys.len())
    })
}

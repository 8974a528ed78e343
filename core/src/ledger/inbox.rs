//! A verified webhook delivery, stored (committed) before it is answered:
//! then processed under a lease, so of the instances sharing the database
//! one works on it; a delivery that fails for a passing reason waits for
//! its own next attempt while the others go on.

use super::{Database, LedgerError, bump, counter, write};
use crate::Millis;
use crate::pacing::Backoff;
use crate::policy::Policy;

/// How long a claimed delivery is another instance's to leave alone: far
/// longer than processing one takes, so it ends only if its instance died.
pub const LEASE_MS: Millis = Policy::DEFAULT.webhooks.lease_ms;

/// Waits between attempts of a delivery that fails for a passing reason (a
/// source API down): 5 s, doubling to 5 minutes, never given up (Aloware
/// does not send a webhook twice, so the stored one is the call).
pub const RETRY: Backoff = Policy::DEFAULT.retry.stored_delivery;

/// The id that makes a repeated delivery recognisable: Kendo's delivery id
/// (`x-kendo-delivery-id`), or, for senders without one, a digest of the
/// event name and the body. The same delivery twice is stored once.
pub fn delivery_id(kendo_delivery_id: Option<&str>, event: Option<&str>, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    if let Some(id) = kendo_delivery_id {
        return id.to_string();
    }
    let mut digest = Sha256::new();
    digest.update(event.unwrap_or("").as_bytes());
    digest.update([0]);
    digest.update(body);
    let hex: String = digest
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// How many times a delivery's processor may stop while holding it (it
/// was taken, and neither finished nor deferred it) before the delivery is
/// closed with that reason: a delivery that crashes whatever processes it
/// (a plugin trap takes a Spin instance down with it) costs that one
/// delivery, not every later pass.
pub const MAX_ABANDONED: u32 = Policy::DEFAULT.webhooks.max_abandoned;

/// When a delivery that failed its `attempts`-th time is tried again
/// (`unit`: a uniform random number in [0, 1), the back-off's jitter).
pub fn retry_at(attempts: u32, unit: f64, now: Millis) -> Millis {
    now.saturating_add(RETRY.delay(attempts, unit).unwrap_or(RETRY.cap_ms))
}

/// Why processing a delivery failed, as the driver tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again soon: a source API down or limiting, the
    /// database busy.
    Passing,
    /// A person must fix the bridge's setting (a refused credential or
    /// scope, a token not set): nothing about the delivery is wrong, so it
    /// is kept and tried again, at the longest back-off, meanwhile shown as
    /// the source's `webhook` problem. Aloware never sends a delivery
    /// twice: closing it would lose the call.
    Setting,
    /// The delivery itself can never work (it cannot be read): closed with
    /// its reason, shown as the source's `webhook` problem. It was answered
    /// 2xx already: it is kept.
    Lasting,
}

/// What made processing a delivery fail, as a driver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A source API answered with this status.
    Answered(u16),
    /// No answer came (a connection refused or dropped, a timeout).
    NoAnswer,
    /// A credential or setting the request needs is not set.
    NotConfigured,
    /// The database was busy or failed.
    Database,
    /// What the source sent cannot be read, or the plugin failed on it.
    Unreadable,
}

/// The one table of what each cause costs a delivery, for every driver:
/// a refused credential (401, 403) or a listing missing at the configured
/// URL (404: usually the API base) needs a person; throttling, a server
/// error or no answer passes; anything else the source answered, or could
/// not be read, never works.
pub fn failure(cause: Cause) -> Failure {
    match cause {
        Cause::Answered(401 | 403 | 404) | Cause::NotConfigured => Failure::Setting,
        Cause::Answered(status) if crate::sources::passing(status) => Failure::Passing,
        Cause::NoAnswer | Cause::Database => Failure::Passing,
        Cause::Answered(_) | Cause::Unreadable => Failure::Lasting,
    }
}

/// What a delivery whose processing failed comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// It waits for its own next attempt at `at`; the others go on. With
    /// `problem`, the reason is the source's `webhook` problem for `status`.
    Defer { at: Millis, problem: bool },
    /// Closed with its reason, which is the source's `webhook` problem.
    Close,
}

/// What a failed processing of a delivery tried `attempts` times before
/// comes to. `unit` is a random number in [0, 1) for the jitter.
pub fn after_failure(failure: Failure, attempts: u32, unit: f64, now: Millis) -> AfterFailure {
    match failure {
        Failure::Passing => AfterFailure::Defer {
            at: retry_at(attempts + 1, unit, now),
            problem: false,
        },
        Failure::Setting => AfterFailure::Defer {
            at: now.saturating_add(RETRY.cap_ms),
            problem: true,
        },
        Failure::Lasting => AfterFailure::Close,
    }
}

/// A webhook delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    pub id: i64,
    pub source: String,
    pub delivery_id: String,
    pub event: Option<String>,
    pub body: Vec<u8>,
    pub received_at: Millis,
    /// Earlier attempts that failed for a passing reason.
    pub attempts: u32,
}

/// Whether a webhook delivery was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxInsert {
    Stored(i64),
    /// The same delivery id was stored before.
    Duplicate,
}

const ENTRY: &str = "SELECT id, source, delivery_id, event, body, received_at, attempts FROM inbox";

fn entry(r: &super::Row) -> Result<InboxEntry, LedgerError> {
    Ok(InboxEntry {
        id: r.int(0)?,
        source: r.text(1)?,
        delivery_id: r.text(2)?,
        event: r.opt_text(3)?,
        body: r.blob(4)?,
        received_at: r.int(5)?,
        attempts: r.count(6)?,
    })
}

/// Stores a verified delivery, once per `(source, delivery_id)`, and
/// counts it, in one transaction.
pub fn insert<D: Database + ?Sized>(
    db: &D,
    source: &str,
    delivery_id: &str,
    event: Option<&str>,
    body: &[u8],
    now: Millis,
) -> Result<InboxInsert, LedgerError> {
    write(db, |db| {
        let inserted = insert_row(db, source, delivery_id, event, body, None, now)?;
        count(db, source, inserted)?;
        Ok(inserted)
    })
}

/// Stores a verified delivery already taken for processing by the caller
/// (under a lease of `lease_ms`, as [`claim`] takes a batch), in one
/// statement: the one write a driver makes before it answers the sender,
/// so the write lock is held as briefly as SQLite allows. If the caller
/// stops on it (a plugin trap, a hang), that counts, shows in
/// [`troubled`] and ends in the delivery being closed, as for a batch. The
/// received and duplicate counters are left to [`count`], after the
/// answer.
pub fn insert_taken<D: Database + ?Sized>(
    db: &D,
    source: &str,
    delivery_id: &str,
    event: Option<&str>,
    body: &[u8],
    lease_ms: Millis,
    now: Millis,
) -> Result<InboxInsert, LedgerError> {
    insert_row(
        db,
        source,
        delivery_id,
        event,
        body,
        Some(now.saturating_add(lease_ms)),
        now,
    )
}

/// The inbox row, taken until `lease_until` when given.
fn insert_row<D: Database + ?Sized>(
    db: &D,
    source: &str,
    delivery_id: &str,
    event: Option<&str>,
    body: &[u8],
    lease_until: Option<Millis>,
    now: Millis,
) -> Result<InboxInsert, LedgerError> {
    let stored = db.first(
        "INSERT INTO inbox (source, delivery_id, event, body, received_at, lease_until, claims)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id",
        &[
            source.into(),
            delivery_id.into(),
            event.into(),
            body.into(),
            now.into(),
            lease_until.into(),
            i64::from(lease_until.is_some()).into(),
        ],
    )?;
    Ok(match stored {
        Some(row) => InboxInsert::Stored(row.int(0)?),
        None => InboxInsert::Duplicate,
    })
}

/// Counts a delivery stored or recognised ([`insert_taken`] leaves this
/// to its caller).
pub fn count<D: Database + ?Sized>(
    db: &D,
    source: &str,
    inserted: InboxInsert,
) -> Result<(), LedgerError> {
    let name = match inserted {
        InboxInsert::Stored(_) => counter::WEBHOOKS,
        InboxInsert::Duplicate => counter::DUPLICATE_WEBHOOKS,
    };
    bump(db, source, name, 1)
}

/// Deliveries not processed yet, oldest first.
pub fn pending<D: Database + ?Sized>(db: &D, limit: u32) -> Result<Vec<InboxEntry>, LedgerError> {
    db.run(
        &format!("{ENTRY} WHERE processed_at IS NULL ORDER BY id LIMIT ?1"),
        &[limit.into()],
    )?
    .iter()
    .map(entry)
    .collect()
}

/// Takes up to `limit` stored deliveries due at `now` for processing,
/// oldest first, under a lease of `lease_ms`: another instance skips them
/// until the lease ends (it ends only if this one died, for a delivery's
/// processing is much shorter).
pub fn claim<D: Database + ?Sized>(
    db: &D,
    limit: u32,
    lease_ms: Millis,
    now: Millis,
) -> Result<Vec<InboxEntry>, LedgerError> {
    Ok(take(db, limit, lease_ms, now)?.due)
}

/// What [`take`] got.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// Taken for processing.
    pub due: Vec<InboxEntry>,
    /// Closed instead, for stopping their processor
    /// [`MAX_ABANDONED`] times, with the reason they were closed with.
    pub abandoned: Vec<(InboxEntry, String)>,
}

/// [`claim`], also saying which deliveries it closed for stopping their
/// processor (the inbox's engine records the calls they name as failed).
pub fn take<D: Database + ?Sized>(
    db: &D,
    limit: u32,
    lease_ms: Millis,
    now: Millis,
) -> Result<Claimed, LedgerError> {
    write(db, |db| {
        let mut entries = Vec::new();
        let mut abandoned_entries = Vec::new();
        // Deliveries closed here leave room in the batch for the next ones.
        while (entries.len() as u32) < limit {
            let rows = db.run(
                "SELECT id, source, delivery_id, event, body, received_at, attempts, claims FROM inbox
                 WHERE processed_at IS NULL AND not_before <= ?2
                   AND (lease_until IS NULL OR lease_until < ?2)
                 ORDER BY id LIMIT ?1",
                &[(limit - entries.len() as u32).into(), now.into()],
            )?;
            if rows.is_empty() {
                break;
            }
            let mut closed = false;
            for row in &rows {
                let e = entry(row)?;
                // Every earlier taking ended in `done`, `defer`, or nothing:
                // those that ended in nothing stopped their processor.
                let abandoned = row.count(7)?.saturating_sub(e.attempts);
                if abandoned >= MAX_ABANDONED {
                    let reason = format!(
                        "processing stopped {abandoned} times without finishing (a plugin trap or a crash on this delivery); closed so the others go on"
                    );
                    done(db, e.id, Some(&reason), now)?;
                    abandoned_entries.push((e, reason));
                    closed = true;
                    continue;
                }
                db.run(
                    "UPDATE inbox SET lease_until = ?2, claims = claims + 1 WHERE id = ?1",
                    &[e.id.into(), now.saturating_add(lease_ms).into()],
                )?;
                entries.push(e);
            }
            if !closed {
                break;
            }
        }
        Ok(Claimed {
            due: entries,
            abandoned: abandoned_entries,
        })
    })
}

/// A stored delivery taken this long ago and neither finished nor
/// deferred has stopped its processor or hangs: processing one takes far
/// less.
pub const STUCK_AFTER_MS: Millis = Policy::DEFAULT.webhooks.stuck_after_ms;

/// A stored delivery that needs a look: failing, or stopping whatever
/// processes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Troubled {
    pub id: i64,
    pub source: String,
    pub received_at: Millis,
    /// Attempts that failed for a reason the processor reported.
    pub attempts: u32,
    /// Takings that ended in nothing (the processor stopped: a trap, a
    /// crash, a hang), the one in progress included once it is past
    /// [`STUCK_AFTER_MS`].
    pub stopped: u32,
    /// What to tell a person.
    pub problem: String,
}

/// Stored deliveries not processed yet that failed, or whose processing
/// stopped or hangs, oldest first (at most `limit`): shown from the first
/// failure, before [`MAX_ABANDONED`] closes a delivery that stops every
/// processor.
pub fn troubled<D: Database + ?Sized>(
    db: &D,
    limit: u32,
    now: Millis,
) -> Result<Vec<Troubled>, LedgerError> {
    let stuck_since = now.saturating_sub(STUCK_AFTER_MS);
    db.run(
        "SELECT id, source, received_at, attempts, claims, lease_until, last_error FROM inbox
         WHERE processed_at IS NULL
           AND (attempts > 0 OR claims > attempts + 1
                OR (claims > attempts AND (lease_until IS NULL OR lease_until - ?2 < ?3)))
         ORDER BY id LIMIT ?1",
        &[limit.into(), LEASE_MS.into(), stuck_since.into()],
    )?
    .iter()
    .map(|r| {
        let attempts = r.count(3)?;
        let claims = r.count(4)?;
        let lease_until = r.opt_int(5)?;
        let last_error = r.opt_text(6)?;
        // The taking in progress counts once it is overdue or over.
        let running = lease_until.is_some_and(|l| l.saturating_sub(LEASE_MS) >= stuck_since && l >= now);
        let stopped = claims
            .saturating_sub(attempts)
            .saturating_sub(u32::from(running));
        let problem = match (stopped, last_error) {
            (0, Some(error)) => format!("failed {attempts} time(s), tried again later: {error}"),
            (0, None) => format!("failed {attempts} time(s), tried again later"),
            (n, _) => format!(
                "its processing stopped {n} time(s) without finishing (a plugin trap, or a plugin that never returns); closed after {MAX_ABANDONED}"
            ),
        };
        Ok(Troubled {
            id: r.int(0)?,
            source: r.text(1)?,
            received_at: r.int(2)?,
            attempts,
            stopped,
            problem,
        })
    })
    .collect()
}

/// A delivery that failed for a passing reason is tried again at
/// `not_before`; the others are not held up by it.
pub fn defer<D: Database + ?Sized>(
    db: &D,
    id: i64,
    not_before: Millis,
    error: &str,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE inbox SET lease_until = NULL, not_before = ?2, attempts = attempts + 1,
                last_error = ?3
         WHERE id = ?1",
        &[id.into(), not_before.into(), error.into()],
    )?;
    Ok(())
}

/// Deliveries taken but not started, given back because their instance is
/// stopping: due again at once, to any instance, and not counted as a
/// processor that stopped while holding them ([`MAX_ABANDONED`]).
pub fn release<D: Database + ?Sized>(db: &D, ids: &[i64]) -> Result<(), LedgerError> {
    write(db, |db| {
        for id in ids {
            db.run(
                "UPDATE inbox SET lease_until = NULL, claims = MAX(claims - 1, 0)
                 WHERE id = ?1 AND processed_at IS NULL AND lease_until IS NOT NULL",
                &[(*id).into()],
            )?;
        }
        Ok(())
    })
}

/// When the next deferred delivery falls due, if any waits.
pub fn next_due<D: Database + ?Sized>(db: &D) -> Result<Option<Millis>, LedgerError> {
    Ok(db
        .first(
            "SELECT MIN(MAX(not_before, COALESCE(lease_until, 0))) FROM inbox WHERE processed_at IS NULL",
            &[],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten())
}

/// Marks a delivery processed, with the error that ended it if any (it
/// stays stored, with its reason, for the operator).
pub fn done<D: Database + ?Sized>(
    db: &D,
    id: i64,
    error: Option<&str>,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "UPDATE inbox SET processed_at = ?2, error = ?3, lease_until = NULL WHERE id = ?1",
        &[id.into(), now.into(), error.into()],
    )?;
    Ok(())
}

/// Deliveries stored but not processed yet.
pub fn backlog<D: Database + ?Sized>(db: &D) -> Result<u64, LedgerError> {
    let n = db
        .first("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL", &[])?
        .map_or(Ok(0), |r| r.int(0))?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_of_a_failed_delivery_has_one_cost() {
        assert_eq!(failure(Cause::Answered(401)), Failure::Setting);
        assert_eq!(failure(Cause::Answered(404)), Failure::Setting);
        assert_eq!(failure(Cause::NotConfigured), Failure::Setting);
        assert_eq!(failure(Cause::Answered(429)), Failure::Passing);
        assert_eq!(failure(Cause::Answered(503)), Failure::Passing);
        assert_eq!(failure(Cause::NoAnswer), Failure::Passing);
        assert_eq!(failure(Cause::Database), Failure::Passing);
        assert_eq!(failure(Cause::Answered(400)), Failure::Lasting);
        assert_eq!(failure(Cause::Unreadable), Failure::Lasting);
    }

    #[test]
    fn a_refused_credential_keeps_the_delivery_and_an_unreadable_one_closes_it() {
        assert_eq!(
            after_failure(Failure::Setting, 0, 0.5, 1_000),
            AfterFailure::Defer {
                at: 1_000 + RETRY.cap_ms,
                problem: true
            }
        );
        assert!(matches!(
            after_failure(Failure::Passing, 0, 0.5, 1_000),
            AfterFailure::Defer { problem: false, .. }
        ));
        assert_eq!(
            after_failure(Failure::Lasting, 0, 0.5, 1_000),
            AfterFailure::Close
        );
    }
}

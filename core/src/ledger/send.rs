//! A queued call is claimed for its send: by one instance of however many
//! share the database, under a lease, and only when the key's pacing
//! (checked against every instance's sends) allows a request now. A send
//! whose instance died in flight is recovered when its lease ends; a key
//! Kendo refused is paused until it changes.

use super::{
    CallKey, Database, LedgerError, State, bump, counter, flag_maybe_duplicated, set_state, write,
};
use crate::Millis;
use crate::pacing::Pacer;
use crate::policy::Policy;

/// A send waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub key: CallKey,
    pub payload: String,
    /// Requests already made for it.
    pub attempts: u32,
    /// Requests of this send whose answer was lost (each may have created
    /// the call in Kendo).
    pub ambiguous: u32,
    /// The claim this send was taken under ([`claim_send`]): its answer is
    /// recorded only while that claim still holds it.
    pub claim: Option<String>,
}

/// How one Kendo key's requests are paced (see [`Pacer`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendPacing {
    pub limit: u32,
    pub window_ms: Millis,
    pub margin: f64,
}

impl SendPacing {
    /// Kendo's documented limit: 30 requests a minute per key, kept with a
    /// 1% margin.
    pub const KENDO: SendPacing = SendPacing {
        limit: Policy::DEFAULT.kendo.requests_per_window,
        window_ms: Policy::DEFAULT.kendo.window_ms,
        margin: Policy::DEFAULT.kendo.pacing_margin,
    };
}

/// What [`claim_send`] asks for.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub team: &'a str,
    /// The configured key's fingerprint: a pause recorded for another key
    /// is lifted (the operator replaced the key).
    pub key_fingerprint: &'a str,
    pub pacing: SendPacing,
    /// How long the claim holds: longer than the request can take, so only
    /// a claim whose instance is gone ever expires.
    pub lease_ms: Millis,
    /// Unique to this claim.
    pub token: &'a str,
}

/// What a worker may do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Send this; it is in flight under the request's token.
    Claimed(OutboxItem),
    /// A send is due, but the key's window or a 429 holds it until then.
    Pace(Millis),
    /// Nothing is due; the next send falls due then, if any is queued.
    Idle(Option<Millis>),
    /// The key is paused, for this reason.
    Paused(String),
}

/// What [`recover_in_flight`] did with the sends a dead instance left in
/// flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Kendo had answered 2xx before the instance stopped: recorded sent.
    pub sent: Vec<CallKey>,
    /// Back in the queue: they will be sent again.
    pub resent: Vec<CallKey>,
    /// Their budget of lost answers was spent: parked as `outcome-unknown`.
    pub parked: Vec<CallKey>,
}

/// A team whose key Kendo refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    pub reason: String,
    /// A fingerprint of the key that was refused: a new key lifts the pause.
    pub key_fingerprint: String,
    pub paused_at: Millis,
}

/// How long the send history is kept: pacing needs two windows, the status
/// page shows the last hour.
pub const SEND_HISTORY_MS: Millis = 2 * 60 * 60 * 1000;

/// A send with its call's ledger row (`l`): the call's one state is there.
const OUTBOX_ITEM: &str = "SELECT o.id, o.source, o.source_id, o.team, o.payload, o.attempts, o.ambiguous
     FROM outbox o JOIN ledger l ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team";

fn outbox_item(r: &super::Row) -> Result<OutboxItem, LedgerError> {
    Ok(OutboxItem {
        id: r.int(0)?,
        key: CallKey {
            source: r.text(1)?,
            source_id: r.text(2)?,
            team: r.text(3)?,
        },
        payload: r.text(4)?,
        attempts: r.count(5)?,
        ambiguous: r.count(6)?,
        claim: None,
    })
}

/// Sends of `team` due at `now`, oldest first.
pub fn due<D: Database + ?Sized>(
    db: &D,
    team: &str,
    now: Millis,
    limit: u32,
) -> Result<Vec<OutboxItem>, LedgerError> {
    db.run(
        &format!(
            "{OUTBOX_ITEM} WHERE o.team = ?1 AND l.state = 'queued' AND o.not_before <= ?2
             ORDER BY o.not_before, o.id LIMIT ?3"
        ),
        &[team.into(), now.into(), limit.into()],
    )?
    .iter()
    .map(outbox_item)
    .collect()
}

/// Takes the oldest due send of a team if the key's pacing allows one now,
/// in one transaction: of several instances sharing this database, one
/// gets it, and together they keep the key's window, because the pacing
/// is checked against every instance's sends and the send is recorded in
/// the same transaction.
pub fn claim_send<D: Database + ?Sized>(
    db: &D,
    request: &ClaimRequest<'_>,
    now: Millis,
) -> Result<Claim, LedgerError> {
    let team = request.team;
    write(db, |db| {
        if let Some(p) = paused(db, team)? {
            if p.key_fingerprint == request.key_fingerprint {
                return Ok(Claim::Paused(p.reason));
            }
            // The operator configured another key: try again.
            resume(db, team)?;
        }
        let Some(row) = db.first(
            &format!(
                "{OUTBOX_ITEM} WHERE o.team = ?1 AND l.state = 'queued' AND o.not_before <= ?2
                 ORDER BY o.not_before, o.id LIMIT 1"
            ),
            &[team.into(), now.into()],
        )?
        else {
            return Ok(Claim::Idle(next_due_at(db, team)?));
        };
        let mut item = outbox_item(&row)?;
        let pacing = request.pacing;
        let history = sends_since(
            db,
            team,
            now.saturating_sub(pacing.window_ms.saturating_mul(2)),
        )?;
        let last_slot = db
            .first(
                "SELECT MAX(COALESCE(slot, at)) FROM sends WHERE team = ?1",
                &[team.into()],
            )?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten();
        let blocked = db
            .first(
                "SELECT until FROM key_blocks WHERE team = ?1",
                &[team.into()],
            )?
            .map(|r| r.int(0))
            .transpose()?;
        let mut pacer = Pacer::new(pacing.limit, pacing.window_ms, pacing.margin, history)
            .after_slot(last_slot);
        if let Some(until) = blocked {
            pacer.block_until(until);
        }
        let slot = pacer.next_slot(now);
        if slot > now {
            return Ok(Claim::Pace(slot));
        }
        let lease_until = now.saturating_add(request.lease_ms);
        claim_row(
            db,
            &item,
            now,
            Some(request.token),
            Some(lease_until),
            pacer.slot_of(now),
        )?;
        // Send history older than this no longer paces anything, nor shows
        // on the status page's last hour.
        let keep = pacing.window_ms.saturating_mul(2).max(SEND_HISTORY_MS);
        db.run(
            "DELETE FROM sends WHERE team = ?1 AND at < ?2",
            &[team.into(), now.saturating_sub(keep).into()],
        )?;
        item.claim = Some(request.token.to_string());
        Ok(Claim::Claimed(item))
    })
}

/// Marks one given send as in flight, without pacing or a lease (a claim
/// without a lease is recovered by the next [`recover_in_flight`], whoever
/// holds it): for single-process tools and tests. Workers use
/// [`claim_send`].
pub fn begin_send<D: Database + ?Sized>(
    db: &D,
    item: &OutboxItem,
    now: Millis,
) -> Result<(), LedgerError> {
    write(db, |db| claim_row(db, item, now, None, None, now))
}

/// Puts a send in flight (only if nobody else has) and records the request
/// in the key's send history, in `slot` of the pacing schedule.
fn claim_row<D: Database + ?Sized>(
    db: &D,
    item: &OutboxItem,
    now: Millis,
    claim: Option<&str>,
    lease_until: Option<Millis>,
    slot: Millis,
) -> Result<(), LedgerError> {
    let [source, source_id, team] = item.key.params();
    let taken = db.run(
        "UPDATE ledger SET state = 'sending', attempts = attempts + 1, updated_at = ?4
         WHERE source = ?1 AND source_id = ?2 AND team = ?3 AND state = 'queued' RETURNING 1",
        &[source, source_id, team, now.into()],
    )?;
    if taken.is_empty() {
        return Err(LedgerError::NotClaimable {
            source_id: item.key.source_id.clone(),
        });
    }
    db.run(
        "UPDATE outbox SET attempts = attempts + 1, claim = ?2, lease_until = ?3, answered = NULL
         WHERE id = ?1",
        &[item.id.into(), claim.into(), lease_until.into()],
    )?;
    db.run(
        "INSERT INTO sends (team, at, slot) VALUES (?1, ?2, ?3)",
        &[(&item.key.team).into(), now.into(), slot.into()],
    )?;
    Ok(())
}

/// When the next pending send of `team` (of any team: `None`) falls due,
/// if any is pending.
pub fn next_due_at<'a, D: Database + ?Sized>(
    db: &D,
    team: impl Into<Option<&'a str>>,
) -> Result<Option<Millis>, LedgerError> {
    Ok(db
        .first(
            "SELECT MIN(o.not_before) FROM outbox o JOIN ledger l
                 ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team
              WHERE (?1 IS NULL OR o.team = ?1) AND l.state = 'queued'",
            &[team.into().map_or(super::Value::Null, Into::into)],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten())
}

/// Pending sends of a team (the queue depth).
pub fn queue_depth<D: Database + ?Sized>(db: &D, team: &str) -> Result<u64, LedgerError> {
    let n = db
        .first(
            "SELECT COUNT(*) FROM ledger WHERE team = ?1 AND state IN ('queued', 'sending')",
            &[team.into()],
        )?
        .map_or(Ok(0), |r| r.int(0))?;
    Ok(n.max(0) as u64)
}

/// Request times of `team` at or after `since` (the pacing history).
pub fn sends_since<D: Database + ?Sized>(
    db: &D,
    team: &str,
    since: Millis,
) -> Result<Vec<Millis>, LedgerError> {
    db.run(
        "SELECT at FROM sends WHERE team = ?1 AND at >= ?2 ORDER BY at",
        &[team.into(), since.into()],
    )?
    .iter()
    .map(|r| r.int(0))
    .collect()
}

/// Sends whose instance stopped while they were in flight (their claim's
/// lease ran out, or they were claimed without one) have an unknown
/// outcome: the request may have created the call before the instance
/// died. That is a lost answer and spends the same budget of
/// `ambiguous_resends` a timeout does: within it, the send goes back to the
/// queue, counted as `resent_after_lost_answer`; past it, the call is
/// parked as `outcome-unknown`. Both are flagged as possibly duplicated.
///
/// A send another live instance holds is its own and is left alone.
pub fn recover_in_flight<D: Database + ?Sized>(
    db: &D,
    ambiguous_resends: u32,
    now: Millis,
    on_created: impl Fn(&D, &CallKey, Option<&str>) -> Result<(), LedgerError>,
) -> Result<Recovered, LedgerError> {
    const EXPIRED: &str = "l.state = 'sending' AND (o.lease_until IS NULL OR o.lease_until < ?1)";
    const IN_FLIGHT: &str = "outbox o JOIN ledger l
         ON l.source = o.source AND l.source_id = o.source_id AND l.team = o.team";
    // Workers call this before every claim: almost always there is nothing
    // to recover, and a read says so without taking the lock every
    // instance's writes wait for.
    if db
        .first(
            &format!("SELECT 1 FROM {IN_FLIGHT} WHERE {EXPIRED} LIMIT 1"),
            &[now.into()],
        )?
        .is_none()
    {
        return Ok(Recovered::default());
    }
    write(db, |db| {
        let found = db.run(
            &format!(
                "SELECT o.source, o.source_id, o.team, o.ambiguous, o.id, o.answered
                 FROM {IN_FLIGHT} WHERE {EXPIRED}"
            ),
            &[now.into()],
        )?;
        let mut recovered = Recovered::default();
        for row in found {
            let key = CallKey {
                source: row.text(0)?,
                source_id: row.text(1)?,
                team: row.text(2)?,
            };
            let lost = row.count(3)?;
            let [source, source_id, team] = key.params();
            if let Some(status) = row.opt_int(5)?.filter(|s| holds_the_call(*s)) {
                let reason = format!(
                    "Kendo answered {status}; the bridge stopped before reading the answer, so Kendo's callId is unknown"
                );
                super::record::created(
                    db,
                    row.int(4)?,
                    &key,
                    None,
                    Some(("answer-unread", &reason)),
                    now,
                    &on_created,
                )?;
                super::record::send_went_through(db, now)?;
                recovered.sent.push(key);
                continue;
            }
            if lost < ambiguous_resends {
                db.run(
                    "UPDATE outbox SET claim = NULL, lease_until = NULL,
                            not_before = ?4, ambiguous = ambiguous + 1
                     WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                    &[source, source_id, team, now.into()],
                )?;
                set_state(
                    db,
                    &key,
                    State::Queued,
                    Some("unknown-outcome"),
                    Some(
                        "the bridge stopped while this call was being sent; sending it again (Kendo may now hold it twice)",
                    ),
                    now,
                )?;
                bump(db, &key.team, counter::RESENT_AFTER_LOST_ANSWER, 1)?;
                flag_maybe_duplicated(db, &key)?;
                recovered.resent.push(key);
            } else {
                let reason = format!(
                    "the bridge stopped while this call was being sent, after {lost} lost answer(s); Kendo may hold the call: check Kendo, then `kendo-bridge settle --sent {id}` or `--resend {id}`",
                    id = key.source_id
                );
                db.run(
                    "UPDATE outbox SET claim = NULL, lease_until = NULL,
                            last_error = ?4, ambiguous = ambiguous + 1
                     WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                    &[source, source_id, team, (&reason).into()],
                )?;
                set_state(
                    db,
                    &key,
                    State::OutcomeUnknown,
                    Some("outcome-unknown"),
                    Some(&reason),
                    now,
                )?;
                flag_maybe_duplicated(db, &key)?;
                recovered.parked.push(key);
            }
        }
        Ok(recovered)
    })
}

/// Whether an answer with this status means Kendo holds the call: any
/// 2xx, whatever its body says (sending it again would duplicate it).
pub fn holds_the_call(status: i64) -> bool {
    (200..300).contains(&status)
}

/// Keeps Kendo's 2xx on the send `item` before its answer is read: an
/// instance that dies reading it (a plugin trap takes a Spin instance
/// down) leaves a send that [`recover_in_flight`] records as sent instead
/// of sending again. Other statuses are not kept: Kendo did not create the
/// call.
pub fn answered<D: Database + ?Sized>(
    db: &D,
    item: &OutboxItem,
    status: u16,
) -> Result<(), LedgerError> {
    if !holds_the_call(i64::from(status)) {
        return Ok(());
    }
    db.run(
        "UPDATE outbox SET answered = ?2 WHERE id = ?1 AND claim IS ?3",
        &[
            item.id.into(),
            i64::from(status).into(),
            item.claim.as_deref().into(),
        ],
    )?;
    Ok(())
}

/// Stops sending for a team until its key changes or [`resume`] is called.
pub fn pause<D: Database + ?Sized>(
    db: &D,
    team: &str,
    reason: &str,
    key_fingerprint: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO paused_teams (team, reason, key_fingerprint, paused_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (team) DO UPDATE SET reason = excluded.reason,
            key_fingerprint = excluded.key_fingerprint, paused_at = excluded.paused_at",
        &[team.into(), reason.into(), key_fingerprint.into(), now.into()],
    )?;
    Ok(())
}

/// Why a team is paused, if it is.
pub fn paused<D: Database + ?Sized>(db: &D, team: &str) -> Result<Option<Paused>, LedgerError> {
    db.first(
        "SELECT reason, key_fingerprint, paused_at FROM paused_teams WHERE team = ?1",
        &[team.into()],
    )?
    .map(|r| {
        Ok(Paused {
            reason: r.text(0)?,
            key_fingerprint: r.text(1)?,
            paused_at: r.int(2)?,
        })
    })
    .transpose()
}

/// Lifts a pause. Whether there was one.
pub fn resume<D: Database + ?Sized>(db: &D, team: &str) -> Result<bool, LedgerError> {
    Ok(!db
        .run(
            "DELETE FROM paused_teams WHERE team = ?1 RETURNING team",
            &[team.into()],
        )?
        .is_empty())
}

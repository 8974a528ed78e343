//! A decided call enters the ledger: once per call and team, whichever
//! path brings it (a poll, a webhook, a backfill, an instance of many) and
//! however often. A call queued, in flight or sent is never queued again;
//! a newer version of a call not yet sent replaces the older decision.

use super::{CallKey, Database, LedgerError, State, checkpoint, write};
use crate::Millis;

/// What the plugin decided about one record, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Send this ingest body.
    Send {
        payload: String,
        title: String,
        rep_email: Option<String>,
        /// Optional fields left out because they could not be read, one
        /// `field: why` per line; `None` when there were none.
        warnings: Option<String>,
    },
    /// Do not send; `code` is the plugin's skip code.
    Skip { code: String, detail: String },
    /// Not ready; `code` is the plugin's wait code.
    Wait { code: String, detail: String },
    /// The record could not be mapped or built (bad input, a plugin trap).
    Fail { code: String, detail: String },
    /// A sighting of a record already settled (see [`is_settled`]):
    /// counted as a duplicate, changes nothing.
    Seen,
}

/// One decided record.
#[derive(Debug, Clone, PartialEq)]
pub struct Intake {
    pub key: CallKey,
    /// What was mapped: the source's `updated_at`, a zero-padded
    /// modification time or a delivery sequence. Must sort in time order:
    /// an older version never overwrites a newer one.
    pub version: String,
    /// `polling`, `webhook` or `workflow`.
    pub sync_method: String,
    pub outcome: Outcome,
}

impl Intake {
    /// A sighting of a call already settled at `version` (see
    /// [`is_settled`]): counted on its row, mapping it again spared.
    pub fn seen(key: CallKey, version: &str, sync_method: &str) -> Intake {
        Intake {
            key,
            version: version.to_string(),
            sync_method: sync_method.to_string(),
            outcome: Outcome::Seen,
        }
    }
}

/// The optional fields a send goes without, one `field: why` per line, as
/// the ledger keeps them (`None` when there are none).
pub fn warnings_text<'a>(warnings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let lines: Vec<String> = warnings
        .into_iter()
        .map(|(field, why)| format!("{field}: {why}"))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// What [`intake`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntakeReport {
    /// New sends put in the outbox.
    pub enqueued: u32,
    /// Queued sends whose payload a newer version replaced.
    pub updated: u32,
    /// Records already queued, in flight or sent (or seen at this version):
    /// not queued again.
    pub duplicates: u32,
    pub skipped: u32,
    pub waiting: u32,
    pub failed: u32,
}

impl IntakeReport {
    /// Every record the intake took, whatever became of it.
    pub fn records(&self) -> u32 {
        self.enqueued + self.updated + self.duplicates + self.skipped + self.waiting + self.failed
    }

    pub fn add(&mut self, other: IntakeReport) {
        self.enqueued += other.enqueued;
        self.updated += other.updated;
        self.duplicates += other.duplicates;
        self.skipped += other.skipped;
        self.waiting += other.waiting;
        self.failed += other.failed;
    }
}

/// Records decided records and, in the same transaction, moves a
/// checkpoint to its cursor (`(name, cursor)`): a checkpoint never covers a
/// call that is not yet in the ledger and the outbox.
pub fn intake<D: Database + ?Sized>(
    db: &D,
    items: &[Intake],
    checkpoint: Option<(&str, &str)>,
    now: Millis,
) -> Result<IntakeReport, LedgerError> {
    write(db, |db| {
        let mut report = IntakeReport::default();
        for item in items {
            report.add(intake_one(db, item, now)?);
        }
        if let Some((source, cursor)) = checkpoint {
            checkpoint::set(db, source, cursor, now)?;
        }
        Ok(report)
    })
}

/// Records decided records and, in the same transaction, moves the
/// checkpoint `name` from `from` to `to` if no other instance moved it
/// meanwhile ([`checkpoint::advance`]). The records are kept either way;
/// the flag says whether the checkpoint moved.
pub fn intake_advancing<D: Database + ?Sized>(
    db: &D,
    items: &[Intake],
    name: &str,
    from: Option<&str>,
    to: &str,
    now: Millis,
) -> Result<(IntakeReport, bool), LedgerError> {
    write(db, |db| {
        let mut report = IntakeReport::default();
        for item in items {
            report.add(intake_one(db, item, now)?);
        }
        let moved = checkpoint::advance(db, name, from, to, now)?;
        Ok((report, moved))
    })
}

/// Whether a call is already sent, queued or in flight for some team, so
/// a poller can spare the API calls that mapping it again would cost.
/// `version` is the source's version; a newer one is not settled.
pub fn is_settled<D: Database + ?Sized>(
    db: &D,
    source: &str,
    source_id: &str,
    version: &str,
) -> Result<bool, LedgerError> {
    Ok(db
        .first(
            "SELECT 1 FROM ledger WHERE source = ?1 AND source_id = ?2
               AND (state IN ('sent', 'sending') OR version >= ?3) LIMIT 1",
            &[source.into(), source_id.into(), version.into()],
        )?
        .is_some())
}

/// Calls of `source` waiting with reason `code`, and when each was decided
/// so: `(source_id, version, sync_method, decided_at)`, oldest first.
pub fn waiting<D: Database + ?Sized>(
    db: &D,
    source: &str,
    code: &str,
) -> Result<Vec<(String, String, String, Millis)>, LedgerError> {
    db.run(
        "SELECT source_id, version, sync_method, updated_at FROM ledger
         WHERE source = ?1 AND state = 'waiting' AND reason_code = ?2
         ORDER BY updated_at, source_id",
        &[source.into(), code.into()],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.int(3)?)))
    .collect()
}

fn intake_one<D: Database + ?Sized>(
    db: &D,
    item: &Intake,
    now: Millis,
) -> Result<IntakeReport, LedgerError> {
    let key = &item.key;
    let mut report = IntakeReport::default();

    if item.outcome == Outcome::Seen {
        // A sighting counts on the call's row whatever team it is under.
        let seen = db.run(
            "UPDATE ledger SET seen_count = seen_count + 1 WHERE source = ?1 AND source_id = ?2
             RETURNING 1",
            &[(&key.source).into(), (&key.source_id).into()],
        )?;
        if !seen.is_empty() {
            report.duplicates += 1;
        }
        return Ok(report);
    }
    let existing = match db.first(
        "SELECT state, version FROM ledger WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        &key.params(),
    )? {
        Some(row) => Some((row.text(0)?, row.text(1)?)),
        None => match follow_team_change(db, key)? {
            OtherTeam::None => None,
            OtherTeam::Moved { state, version } => Some((state, version)),
            OtherTeam::Sent => {
                // A call reaches Kendo once, whichever team routing names
                // today.
                report.duplicates += 1;
                return Ok(report);
            }
        },
    };
    let Some((state, version)) = existing else {
        write_row(db, INSERT_ROW, item, now)?;
        if let Outcome::Send { payload, .. } = &item.outcome {
            insert_outbox(db, key, payload, now)?;
        }
        count(&mut report, &item.outcome);
        return Ok(report);
    };
    let state = State::read(state)?;
    db.run(
        "UPDATE ledger SET seen_count = seen_count + 1 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        &key.params(),
    )?;
    let newer = item.version > version;
    match state {
        // Once sent or on the wire, no later sighting may send it again.
        // A call Kendo may hold is never queued again by a new arrival.
        State::Sent | State::Sending | State::OutcomeUnknown => report.duplicates += 1,
        _ if !newer => report.duplicates += 1,
        State::Queued => {
            // Not sent yet: the newest source data wins.
            match &item.outcome {
                Outcome::Send {
                    payload,
                    title,
                    rep_email,
                    warnings,
                } => {
                    let [source, source_id, team] = key.params();
                    db.run(
                        "UPDATE outbox SET payload = ?4 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                        &[source.clone(), source_id.clone(), team.clone(), payload.into()],
                    )?;
                    db.run(
                        "UPDATE ledger SET version = ?4, title = ?5, rep_email = ?6, updated_at = ?7,
                             warnings = ?8
                         WHERE source = ?1 AND source_id = ?2 AND team = ?3",
                        &[
                            source,
                            source_id,
                            team,
                            (&item.version).into(),
                            title.into(),
                            rep_email.as_deref().into(),
                            now.into(),
                            warnings.as_deref().into(),
                        ],
                    )?;
                    report.updated += 1;
                }
                other => {
                    delete_outbox(db, key)?;
                    write_row(db, REPLACE_ROW, item, now)?;
                    count(&mut report, other);
                }
            }
        }
        State::Waiting | State::Skipped | State::Failed | State::Dead => {
            // A newer version of a record that was not sent: decide afresh.
            delete_outbox(db, key)?;
            write_row(db, REPLACE_ROW, item, now)?;
            if let Outcome::Send { payload, .. } = &item.outcome {
                insert_outbox(db, key, payload, now)?;
            }
            count(&mut report, &item.outcome);
        }
    }
    Ok(report)
}

/// What [`follow_team_change`] found under other teams.
enum OtherTeam {
    None,
    /// An unsent row, now moved to the new team: its state and version.
    Moved {
        state: String,
        version: String,
    },
    /// The call was sent, or is being sent, for another team; the sighting
    /// is counted there.
    Sent,
}

/// Keeps one ledger row per source call when its team changes, for a call
/// with no row under `key.team`. Skips and waits are routed by source alone
/// (no rep is known yet), a send by its rep too, so a call first skipped and
/// later sent may change team. An unsent row (and its queued send) moves to
/// the new team.
fn follow_team_change<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
) -> Result<OtherTeam, LedgerError> {
    let Some(row) = db.first(
        "SELECT team, state, version FROM ledger WHERE source = ?1 AND source_id = ?2
         ORDER BY state IN ('sent', 'sending') DESC, updated_at DESC LIMIT 1",
        &[(&key.source).into(), (&key.source_id).into()],
    )?
    else {
        return Ok(OtherTeam::None);
    };
    let (team, state, version) = (row.text(0)?, row.text(1)?, row.text(2)?);
    if matches!(
        State::parse(&state),
        Some(State::Sent | State::Sending | State::OutcomeUnknown)
    ) {
        db.run(
            "UPDATE ledger SET seen_count = seen_count + 1 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
            &[(&key.source).into(), (&key.source_id).into(), (&team).into()],
        )?;
        return Ok(OtherTeam::Sent);
    }
    for sql in [
        "UPDATE ledger SET team = ?4 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        "UPDATE outbox SET team = ?4 WHERE source = ?1 AND source_id = ?2 AND team = ?3",
    ] {
        db.run(
            sql,
            &[
                (&key.source).into(),
                (&key.source_id).into(),
                (&team).into(),
                (&key.team).into(),
            ],
        )?;
    }
    Ok(OtherTeam::Moved { state, version })
}

fn count(report: &mut IntakeReport, outcome: &Outcome) {
    match outcome {
        Outcome::Send { .. } => report.enqueued += 1,
        Outcome::Skip { .. } => report.skipped += 1,
        Outcome::Wait { .. } => report.waiting += 1,
        Outcome::Fail { .. } => report.failed += 1,
        Outcome::Seen => report.duplicates += 1,
    }
}

/// Both statements take the same numbered parameters (see [`write_row`]).
const INSERT_ROW: &str =
    "INSERT INTO ledger (source, source_id, team, state, version, sync_method, reason_code, reason,
                     title, rep_email, first_seen_at, updated_at, warnings)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)";
const REPLACE_ROW: &str = "UPDATE ledger SET state = ?4, version = ?5, sync_method = ?6, reason_code = ?7, reason = ?8,
        title = COALESCE(?9, title), rep_email = COALESCE(?10, rep_email), attempts = 0, updated_at = ?11,
        warnings = ?12
 WHERE source = ?1 AND source_id = ?2 AND team = ?3";

/// Runs `sql` with the ledger row of `item`: ?1-?3 the key, ?4 the state,
/// ?5 the version, ?6 the sync method, ?7-?10 reason code, reason, title and
/// rep email, ?11 the time, ?12 the warnings.
fn write_row<D: Database + ?Sized>(
    db: &D,
    sql: &str,
    item: &Intake,
    now: Millis,
) -> Result<(), LedgerError> {
    let (state, code, reason, title, rep_email, warnings) = match &item.outcome {
        Outcome::Send {
            title,
            rep_email,
            warnings,
            ..
        } => (
            State::Queued,
            None,
            None,
            Some(title.as_str()),
            rep_email.as_deref(),
            warnings.as_deref(),
        ),
        Outcome::Skip { code, detail } => {
            (State::Skipped, Some(code), Some(detail), None, None, None)
        }
        Outcome::Wait { code, detail } => {
            (State::Waiting, Some(code), Some(detail), None, None, None)
        }
        Outcome::Fail { code, detail } => {
            (State::Failed, Some(code), Some(detail), None, None, None)
        }
        // Handled before any row is written.
        Outcome::Seen => return Ok(()),
    };
    let [source, source_id, team] = item.key.params();
    db.run(
        sql,
        &[
            source,
            source_id,
            team,
            state.as_str().into(),
            (&item.version).into(),
            (&item.sync_method).into(),
            code.into(),
            reason.into(),
            title.into(),
            rep_email.into(),
            now.into(),
            warnings.into(),
        ],
    )?;
    Ok(())
}

fn insert_outbox<D: Database + ?Sized>(
    db: &D,
    key: &CallKey,
    payload: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    let [source, source_id, team] = key.params();
    db.run(
        "INSERT INTO outbox (source, source_id, team, payload, not_before) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[source, source_id, team, payload.into(), now.into()],
    )?;
    Ok(())
}

fn delete_outbox<D: Database + ?Sized>(db: &D, key: &CallKey) -> Result<(), LedgerError> {
    db.run(
        "DELETE FROM outbox WHERE source = ?1 AND source_id = ?2 AND team = ?3",
        &key.params(),
    )?;
    Ok(())
}

//! How each part of a source (`poll`, `dispositions`, `transcripts`,
//! `webhook`, ...) is doing, for `status`: when it last worked, and what is
//! wrong now, since when.

use super::{Database, LedgerError};
use crate::Millis;

/// How a best-effort part of a source did, as a source workflow reports
/// it; [`record`] keeps it for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `topic` worked.
    Ok(&'static str),
    /// `topic` has this problem, in words an operator can act on.
    Problem(&'static str, String),
}

/// How one part of a source (`poll`, `transcripts`, `dispositions`, ...)
/// is doing, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    pub source: String,
    pub topic: String,
    /// When it last worked.
    pub ok_at: Option<Millis>,
    /// What is wrong now, in words an operator can act on.
    pub problem: Option<String>,
    /// Since when that problem has lasted.
    pub problem_since: Option<Millis>,
    /// How many times in a row it was seen.
    pub problem_count: i64,
}

/// Every source topic's health, by source and topic.
pub fn all<D: Database + ?Sized>(db: &D) -> Result<Vec<SourceHealth>, LedgerError> {
    db.run(
        "SELECT source, topic, ok_at, problem, problem_since, problem_count
         FROM source_health ORDER BY source, topic",
        &[],
    )?
    .iter()
    .map(|r| {
        Ok(SourceHealth {
            source: r.text(0)?,
            topic: r.text(1)?,
            ok_at: r.opt_int(2)?,
            problem: r.opt_text(3)?,
            problem_since: r.opt_int(4)?,
            problem_count: r.opt_int(5)?.unwrap_or(0),
        })
    })
    .collect()
}

/// Records that `topic` of `source` worked at `now`, clearing its problem.
pub fn ok<D: Database + ?Sized>(
    db: &D,
    source: &str,
    topic: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO source_health (source, topic, ok_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, topic) DO UPDATE SET ok_at = excluded.ok_at,
             problem = NULL, problem_since = NULL, problem_count = 0",
        &[source.into(), topic.into(), now.into()],
    )?;
    Ok(())
}

/// Records a problem with `topic` of `source`. True when it is new (the
/// topic was healthy, or had another problem): a driver logs a new problem
/// once loudly, its repeats quietly.
pub fn problem<D: Database + ?Sized>(
    db: &D,
    source: &str,
    topic: &str,
    problem: &str,
    now: Millis,
) -> Result<bool, LedgerError> {
    let previous = db
        .first(
            "SELECT problem FROM source_health WHERE source = ?1 AND topic = ?2",
            &[source.into(), topic.into()],
        )?
        .map(|r| r.opt_text(0))
        .transpose()?
        .flatten();
    db.run(
        "INSERT INTO source_health (source, topic, problem, problem_since, problem_count)
         VALUES (?1, ?2, ?3, ?4, 1)
         ON CONFLICT (source, topic) DO UPDATE SET problem = excluded.problem,
             problem_since = CASE WHEN source_health.problem IS excluded.problem
                 THEN source_health.problem_since ELSE excluded.problem_since END,
             problem_count = source_health.problem_count + 1",
        &[source.into(), topic.into(), problem.into(), now.into()],
    )?;
    Ok(previous.as_deref() != Some(problem))
}

/// Records what a source workflow reported.
pub fn record<D: Database + ?Sized>(
    db: &D,
    source: &str,
    health: &Health,
    now: Millis,
) -> Result<(), LedgerError> {
    match health {
        Health::Ok(topic) => ok(db, source, topic, now),
        Health::Problem(topic, words) => problem(db, source, topic, words, now).map(|_| ()),
    }
}

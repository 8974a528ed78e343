//! Deciding a stored call again: which decisions a change can fix, and the
//! version a new decision is recorded under.
//!
//! A call skipped because of the configuration (a rep missing from the
//! directory, a minimum duration, a dispositions list) is not lost when the
//! configuration changes: its source record is kept
//! ([`crate::ledger::hold`]) and it is mapped again under the new rules.

use crate::Millis;
use crate::ledger::intake::Outcome;
use crate::ledger::{CallKey, Database, LedgerError, State};

/// Skip reasons a change of configuration can fix.
pub const FIXABLE_SKIPS: [&str; 4] = [
    "unknown-rep",
    "invalid-rep-email",
    "below-minimum-duration",
    "disposition-filtered",
];

/// Failure reasons a new plugin or a fixed source record can fix; decided
/// again only on demand.
pub const RETRYABLE_FAILURES: [&str; 2] = ["unreadable", "plugin-trap"];

/// Whether a decision is a skip a change of configuration can fix.
pub fn fixable(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Skip { code, .. } if FIXABLE_SKIPS.contains(&code.as_str()))
}

/// The ledger version of a re-decision: newer than `old`, so the ledger
/// takes the new decision, and older than any later version from the source
/// (which differs from `old` before the suffix).
pub fn redecided_version(old: &str, now: Millis) -> String {
    let base = old.split("~r").next().unwrap_or(old);
    format!("{base}~r{now:015}")
}

/// The digest of the rules the stored decisions were made under.
pub fn fingerprint<D: Database + ?Sized>(db: &D) -> Result<Option<String>, LedgerError> {
    db.first("SELECT fingerprint FROM decision_rules WHERE id = 1", &[])?
        .map(|r| r.text(0))
        .transpose()
}

/// Records the digest of the rules now in force.
pub fn set_fingerprint<D: Database + ?Sized>(
    db: &D,
    fingerprint: &str,
    now: Millis,
) -> Result<(), LedgerError> {
    db.run(
        "INSERT INTO decision_rules (id, fingerprint, changed_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint,
             changed_at = excluded.changed_at",
        &[fingerprint.into(), now.into()],
    )?;
    Ok(())
}

/// Calls in `state` whose reason code is one of `codes` (any, when empty),
/// with their ledger version, oldest first: the candidates for a new
/// decision.
pub fn decided_for<D: Database + ?Sized>(
    db: &D,
    state: State,
    codes: &[&str],
) -> Result<Vec<(CallKey, String)>, LedgerError> {
    let mut out = Vec::new();
    for r in db.run(
        "SELECT source, source_id, team, version, reason_code FROM ledger
         WHERE state = ?1 ORDER BY updated_at, source, source_id",
        &[state.as_str().into()],
    )? {
        let code = r.opt_text(4)?;
        if codes.is_empty() || code.as_deref().is_some_and(|c| codes.contains(&c)) {
            let key = CallKey {
                source: r.text(0)?,
                source_id: r.text(1)?,
                team: r.text(2)?,
            };
            out.push((key, r.text(3)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redecided_version_is_newer_than_the_old_and_older_than_the_next_source_version() {
        let old = "2026-04-01T13:00:00.000001Z";
        let next = "2026-04-01T13:00:00.000002Z";
        let first = redecided_version(old, 1_000);
        assert!(first.as_str() > old);
        assert!(first.as_str() < next);
        let second = redecided_version(&first, 2_000);
        assert!(second > first, "{second} > {first}");
        assert!(second.as_str() < next);
    }

    #[test]
    fn a_skip_for_an_unknown_rep_is_fixable_and_one_for_no_media_is_not() {
        let skip = |code: &str| Outcome::Skip {
            code: code.into(),
            detail: String::new(),
        };
        assert!(fixable(&skip("unknown-rep")));
        assert!(!fixable(&skip("no-media")));
    }
}

//! Deciding a stored call again: which decisions a change can fix, and the
//! version a new decision is recorded under.
//!
//! A call skipped because of the configuration (a rep missing from the
//! directory, a minimum duration, a dispositions list) is not lost when the
//! configuration changes: its source record is kept
//! ([`crate::ledger::hold`]) and it is mapped again under the new rules.

use crate::Millis;
use crate::ledger::intake::Outcome;

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

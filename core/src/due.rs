//! When the next thing is due, answered once for both drivers: the
//! engine's `poll_timeout`. The host sleeps until it (each of its loops
//! until the part it runs); a Spin tick does only what is due and answers
//! with it, so a scheduler (Spin's cron, a platform cron, a CronJob) can
//! tell whether an earlier tick would do anything.
//!
//! A Salesloft call waiting for its call data record is released by the
//! poll that reads the records (it needs that read anyway), so it has no
//! time of its own here; a poll's schedule is the driver's configuration.

use crate::Millis;
use crate::ledger::{Database, LedgerError, hold, inbox, send, write_back};
use crate::sources::aloware;

/// When each kind of work next falls due (`None`: none waits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// The team's next queued send (its back-off or a 429's hold; the
    /// key's pacing may hold it a little longer).
    pub send: Option<Millis>,
    /// The next stored delivery deferred, or left under a lease by a
    /// processor that stopped.
    pub inbox: Option<Millis>,
    /// The next end of an Aloware call's wait for its transcript.
    pub transcript_wait: Option<Millis>,
    /// The next pending write-back.
    pub write_back: Option<Millis>,
}

impl Due {
    /// The first of them.
    pub fn earliest(&self) -> Option<Millis> {
        [self.send, self.inbox, self.transcript_wait, self.write_back]
            .into_iter()
            .flatten()
            .min()
    }

    /// The first of the stored deliveries and the transcript waits: what
    /// the inbox's loop sleeps until.
    pub fn inbox_loop(&self) -> Option<Millis> {
        [self.inbox, self.transcript_wait]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Whether work due at `at` is due at `now`.
pub fn is_due(at: Option<Millis>, now: Millis) -> bool {
    at.is_some_and(|at| at <= now)
}

/// When each kind of work next falls due, the sends those of `team` (of
/// every team: `None`).
pub fn next<D: Database + ?Sized>(db: &D, team: Option<&str>) -> Result<Due, LedgerError> {
    Ok(Due {
        send: send::next_due_at(db, team)?,
        inbox: inbox::next_due(db)?,
        transcript_wait: hold::next_transcript_due(db, aloware::SOURCE)?,
        write_back: write_back::next_at(db)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_is_the_first_of_whatever_waits() {
        let due = Due {
            send: Some(30),
            inbox: None,
            transcript_wait: Some(20),
            write_back: Some(40),
        };
        assert_eq!(due.earliest(), Some(20));
        assert_eq!(due.inbox_loop(), Some(20));
        assert_eq!(Due::default().earliest(), None);
        assert!(is_due(Some(20), 20));
        assert!(!is_due(Some(21), 20));
        assert!(!is_due(None, 20));
    }

    #[test]
    fn each_kind_of_work_answers_from_the_ledger() {
        let db = crate::ledger::tests::memory();
        inbox::insert(&db, "salesloft", "d1", None, b"{}", 1_000).unwrap();
        let taken = inbox::claim(&db, 1, 60_000, 1_000).unwrap();
        inbox::defer(&db, taken[0].id, 5_000, "HubSpot answered 503").unwrap();
        let due = next(&db, None).unwrap();
        assert_eq!(due.inbox, Some(5_000), "a deferral gives the lease back");
        assert_eq!(
            (due.send, due.transcript_wait, due.write_back),
            (None, None, None)
        );
    }
}

//! Write-backs on the host's store: the rules and statements are the
//! core's ([`kendo_bridge_core::ledger::write_back`]); the store adds which
//! sources have write-back turned on (`[hubspot] write_back = true`) and
//! queues them in the transaction of their cause.

use super::{CallKey, LedgerError, Millis, Result, Store};
pub use kendo_bridge_core::ledger::results::KendoResult;
use kendo_bridge_core::ledger::write_back as ledger;
pub use kendo_bridge_core::ledger::write_back::{
    WriteBackCounts, WriteBackFields, WriteBackItem, WriteBackState, counter as write_back_counter,
};

/// The sources whose records get write-backs. Off for all by default: a
/// source's write-back is opt-in (`[hubspot] write_back = true`).
#[derive(Debug, Clone, Default)]
pub(super) struct WriteBackSources(Vec<String>);

impl WriteBackSources {
    pub(super) fn covers(&self, source: &str) -> bool {
        self.0.iter().any(|s| s == source)
    }
}

/// Queues `Kendo Sent` (and the `callId`) for a call Kendo just created.
/// Runs inside [`Store::record`]'s transaction.
pub(super) fn enqueue_sent(
    tx: &rusqlite::Connection,
    key: &CallKey,
    kendo_call_id: Option<&str>,
    now: Millis,
) -> std::result::Result<(), LedgerError> {
    ledger::enqueue_sent(tx, key, kendo_call_id, now)
}

impl Store {
    /// Turns write-backs on for `sources` (and off for every other).
    pub fn set_write_back_sources(&mut self, sources: &[&str]) {
        self.write_back = WriteBackSources(sources.iter().map(|s| s.to_string()).collect());
    }

    /// The sources with write-back on.
    pub fn write_back_sources(&self) -> Vec<String> {
        self.write_back.0.clone()
    }

    /// Records a Kendo webhook result and, for a score of a call this bridge
    /// sent from a source with write-back on, queues the score's write-back
    /// in the same transaction. Returns false when the event id was seen
    /// before (nothing is queued again).
    pub fn record_result_and_write_back(
        &mut self,
        result: &KendoResult<'_>,
        now: Millis,
    ) -> Result<bool> {
        let covered = self.write_back.clone();
        Ok(kendo_bridge_core::ledger::results::record(
            &self.conn,
            result,
            now,
            |conn, source, source_id, score, scored_at| {
                if covered.covers(source) {
                    ledger::enqueue_score(conn, source, source_id, score, scored_at, now)?;
                }
                Ok(())
            },
        )?)
    }

    /// Holds every pending write-back of `source` until `until`
    /// ([`ledger::hold`]).
    pub fn hold_write_backs(
        &mut self,
        source: &str,
        claimed: Option<&WriteBackItem>,
        until: Millis,
        error: &str,
        now: Millis,
    ) -> Result<usize> {
        Ok(ledger::hold(
            &self.conn, source, claimed, until, error, now,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Intake, Outcome};
    use core_ledger::report;
    use kendo_bridge_core::ledger as core_ledger;

    fn hubspot_send(id: &str) -> Intake {
        Intake {
            key: CallKey {
                source: "hubspot".into(),
                source_id: id.into(),
                team: "main".into(),
            },
            version: "1".into(),
            sync_method: "polling".into(),
            outcome: Outcome::Send {
                payload: "{}".into(),
                title: "t".into(),
                rep_email: Some("rep@example.com".into()),
                warnings: None,
            },
        }
    }

    /// A store with one HubSpot call created in Kendo as `call_<id>`.
    fn sent(write_back: bool, id: &str) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        if write_back {
            store.set_write_back_sources(&["hubspot"]);
        }
        core_ledger::intake::intake(store.database(), &[hubspot_send(id)], None, 10).unwrap();
        let item = core_ledger::send::due(store.database(), "main", 10, 1)
            .unwrap()
            .remove(0);
        core_ledger::send::begin_send(store.database(), &item, 10).unwrap();
        store
            .mark_created(&item, Some(&format!("call_{id}")), 20)
            .unwrap();
        store
    }

    fn score(store: &mut Store, event: &str, call: &str, is_test: bool) -> bool {
        store
            .record_result_and_write_back(
                &KendoResult {
                    event_id: event,
                    event: "call.uploaded",
                    subject_id: call,
                    ai_score: Some(82.0),
                    is_test,
                    scored_at: Some(25),
                },
                30,
            )
            .unwrap()
    }

    #[test]
    fn kendos_201_queues_kendo_sent_with_the_call_id_in_the_same_transaction() {
        let store = sent(true, "7");
        let due = core_ledger::write_back::due(store.database(), 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].source_id, "7");
        assert_eq!(due[0].kind, "sent");
        assert_eq!(
            due[0].fields,
            WriteBackFields {
                sent: Some(true),
                call_id: Some("call_7".into()),
                ..WriteBackFields::default()
            }
        );
    }

    #[test]
    fn a_queued_write_back_survives_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut store = Store::open(&path).unwrap();
            store.set_write_back_sources(&["hubspot"]);
            core_ledger::intake::intake(store.database(), &[hubspot_send("7")], None, 10).unwrap();
            let item = core_ledger::send::due(store.database(), "main", 10, 1)
                .unwrap()
                .remove(0);
            core_ledger::send::begin_send(store.database(), &item, 10).unwrap();
            store.mark_created(&item, Some("call_7"), 20).unwrap();
        }
        let reopened = Store::open(&path).unwrap();
        let due = core_ledger::write_back::due(reopened.database(), 20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].fields.call_id.as_deref(), Some("call_7"));
    }

    #[test]
    fn nothing_is_queued_when_write_back_is_off() {
        let mut store = sent(false, "7");
        score(&mut store, "e1", "call_7", false);
        assert!(
            core_ledger::write_back::due(store.database(), i64::MAX, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_score_for_a_call_sent_from_the_source_queues_the_score_and_when_it_was_scored() {
        let mut store = sent(true, "7");
        assert!(score(&mut store, "e1", "call_7", false));
        let due = core_ledger::write_back::due(store.database(), 30, 10).unwrap();
        let score_row = due.iter().find(|w| w.kind == "score").unwrap();
        assert_eq!(score_row.fields.ai_score, Some(82.0));
        assert_eq!(score_row.fields.scored_at, Some(25));
    }

    #[test]
    fn a_test_delivery_a_repeated_event_or_an_unknown_call_queues_no_score() {
        let mut store = sent(true, "7");
        score(&mut store, "e1", "call_7", true);
        score(&mut store, "e2", "call_other", false);
        let scores = |s: &Store| {
            core_ledger::write_back::due(s.database(), i64::MAX, 10)
                .unwrap()
                .into_iter()
                .filter(|w| w.kind == "score")
                .count()
        };
        assert_eq!(scores(&store), 0);
        assert!(score(&mut store, "e3", "call_7", false));
        let item = core_ledger::write_back::due(store.database(), i64::MAX, 10)
            .unwrap()
            .remove(1);
        core_ledger::write_back::done(store.database(), &item, 40).unwrap();
        assert!(!score(&mut store, "e3", "call_7", false), "seen before");
        assert_eq!(
            scores(&store),
            0,
            "a repeated delivery is not written again"
        );
    }

    #[test]
    fn a_retried_write_back_waits_and_counts_its_attempts_and_a_dead_one_keeps_its_reason() {
        let store = sent(true, "7");
        let item = core_ledger::write_back::due(store.database(), 20, 10)
            .unwrap()
            .remove(0);
        core_ledger::write_back::retry(store.database(), &item, 100, "HubSpot answered 503", 21)
            .unwrap();
        assert!(
            core_ledger::write_back::due(store.database(), 99, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            core_ledger::write_back::next_at(store.database(),).unwrap(),
            Some(100)
        );
        assert_eq!(
            core_ledger::write_back::due(store.database(), 100, 10).unwrap()[0].attempts,
            1
        );
        core_ledger::write_back::dead(store.database(), &item, "call 7 is gone (404)", 101)
            .unwrap();
        assert_eq!(
            report::counter(store.database(), "hubspot", write_back_counter::RETRIED).unwrap(),
            1
        );
        assert_eq!(
            report::counter(store.database(), "hubspot", write_back_counter::DEAD).unwrap(),
            1
        );
        assert_eq!(
            ledger::state(store.database(), "hubspot", "7", "sent").unwrap(),
            Some((WriteBackState::Dead, 2, Some("call 7 is gone (404)".into())))
        );
        let counts = ledger::counts(store.database()).unwrap();
        assert_eq!(counts[0].dead, 1);
        assert_eq!(
            counts[0].last_error,
            Some(("call 7 is gone (404)".into(), 101))
        );
        assert_eq!(ledger::replay(store.database(), 200).unwrap(), 1);
        assert_eq!(
            core_ledger::write_back::due(store.database(), 200, 10).unwrap()[0].attempts,
            0
        );
    }

    #[test]
    fn a_claimed_write_back_is_due_to_no_one_else_until_its_lease_ends() {
        let store = sent(true, "7");
        let item = core_ledger::write_back::due(store.database(), 20, 10)
            .unwrap()
            .remove(0);
        assert!(core_ledger::write_back::claim(store.database(), &item, 1_000, 20).unwrap());
        assert!(
            !core_ledger::write_back::claim(store.database(), &item, 1_000, 21).unwrap(),
            "taken"
        );
        assert!(
            core_ledger::write_back::due(store.database(), 1_019, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            core_ledger::write_back::due(store.database(), 1_020, 10)
                .unwrap()
                .len(),
            1,
            "lease over"
        );
        core_ledger::write_back::done(store.database(), &item, 30).unwrap();
        assert!(
            !core_ledger::write_back::claim(store.database(), &item, 1_000, 2_000).unwrap(),
            "done"
        );
    }

    #[test]
    fn a_hold_ends_the_lease_of_the_write_back_that_found_the_problem() {
        let mut store = sent(true, "7");
        let item = core_ledger::write_back::due(store.database(), 20, 10)
            .unwrap()
            .remove(0);
        assert!(core_ledger::write_back::claim(store.database(), &item, 100_000, 20).unwrap());
        store
            .hold_write_backs("hubspot", Some(&item), 500, "missing scope", 21)
            .unwrap();
        assert_eq!(
            core_ledger::write_back::next_at(store.database(),).unwrap(),
            Some(500)
        );
    }

    #[test]
    fn a_hold_delays_every_pending_write_back_of_the_source_without_spending_attempts() {
        let mut store = sent(true, "7");
        score(&mut store, "e1", "call_7", false);
        assert_eq!(
            store
                .hold_write_backs("hubspot", None, 500, "missing scope", 40)
                .unwrap(),
            2
        );
        assert!(
            core_ledger::write_back::due(store.database(), 499, 10)
                .unwrap()
                .is_empty()
        );
        let due = core_ledger::write_back::due(store.database(), 500, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|w| w.attempts == 0));
        let counts = ledger::counts(store.database()).unwrap();
        assert_eq!((counts[0].pending, counts[0].done), (2, 0));
        assert_eq!(
            counts[0].last_error.as_ref().map(|e| e.0.as_str()),
            Some("missing scope")
        );
    }
}

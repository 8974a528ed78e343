//! Write-backs: what the bridge writes to a source record after Kendo
//! answered for it (migration 0009). A write-back is inserted in the same
//! transaction as its cause (the 201 in [`Store::mark_created`], the score
//! in [`Store::record_result_and_write_back`]), so a crash loses none; the
//! writer task claims due rows and records each attempt's outcome here.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{CallKey, LedgerError, Millis, Result, Store, StoreError};
pub use kendo_bridge_core::ledger::results::KendoResult;

/// Counters of write-back attempts (scope: source), for `/metrics`.
pub mod write_back_counter {
    /// Written.
    pub const DONE: &str = "write_back_done";
    /// Failed and scheduled again.
    pub const RETRIED: &str = "write_back_retried";
    /// Given up.
    pub const DEAD: &str = "write_back_dead";
    /// Every pending write-back held back because the source refused the
    /// credential or a scope.
    pub const HELD: &str = "write_back_held";
}

/// The sources whose records get write-backs. Off for all by default: a
/// source's write-back is opt-in (`[hubspot] write_back = true`).
#[derive(Debug, Clone, Default)]
pub(super) struct WriteBackSources(Vec<String>);

impl WriteBackSources {
    pub(super) fn covers(&self, source: &str) -> bool {
        self.0.iter().any(|s| s == source)
    }
}

/// A write-back's state: one of these per row, never anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBackState {
    /// To be written at `not_before` or later.
    Pending,
    /// Written.
    Done,
    /// Given up: its attempts ran out, or the source refused it for good
    /// (the record is gone); `last_error` says why.
    Dead,
}

impl WriteBackState {
    pub const ALL: [WriteBackState; 3] = [
        WriteBackState::Pending,
        WriteBackState::Done,
        WriteBackState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteBackState::Pending => "pending",
            WriteBackState::Done => "done",
            WriteBackState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<WriteBackState> {
        WriteBackState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What a write-back carries, by meaning; the source's writer names the
/// fields as its API wants them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteBackFields {
    /// Kendo created the call (its 201).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<bool>,
    /// Kendo's `callId` for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The AI score from Kendo's `call.uploaded` webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_score: Option<f64>,
    /// When Kendo scored it (the event's `createdAt`, else when the bridge
    /// received it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scored_at: Option<Millis>,
}

/// A write-back due now.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBackItem {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    /// `sent` or `score`.
    pub kind: String,
    pub fields: WriteBackFields,
    /// Attempts made so far.
    pub attempts: u32,
}

/// Write-backs of one source, for `status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBackCounts {
    pub source: String,
    pub pending: u64,
    pub done: u64,
    pub dead: u64,
    /// The newest error recorded on any of its rows, and when.
    pub last_error: Option<(String, Millis)>,
}

impl WriteBackCounts {
    pub fn get(&self, state: WriteBackState) -> u64 {
        match state {
            WriteBackState::Pending => self.pending,
            WriteBackState::Done => self.done,
            WriteBackState::Dead => self.dead,
        }
    }
}

/// Queues `Kendo Sent` (and the `callId`) for a call Kendo just created.
/// Runs inside [`Store::mark_created`]'s transaction.
pub(super) fn enqueue_sent(
    tx: &Connection,
    key: &CallKey,
    kendo_call_id: Option<&str>,
    now: Millis,
) -> Result<()> {
    let fields = WriteBackFields {
        sent: Some(true),
        call_id: kendo_call_id.map(str::to_string),
        ..WriteBackFields::default()
    };
    enqueue(tx, &key.source, &key.source_id, "sent", &fields, now)
}

fn enqueue(
    conn: &Connection,
    source: &str,
    source_id: &str,
    kind: &str,
    fields: &WriteBackFields,
    now: Millis,
) -> Result<()> {
    let text = serde_json::to_string(fields).map_err(|e| StoreError::Corrupt {
        what: "write-back fields",
        value: e.to_string(),
    })?;
    // A later event of the same kind (a call re-scored) carries the newer
    // values: the row is written again, from a fresh set of attempts.
    conn.execute(
        "INSERT INTO write_backs (source, source_id, kind, fields, not_before, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)
         ON CONFLICT (source, source_id, kind) DO UPDATE SET fields = excluded.fields,
             state = 'pending', attempts = 0, not_before = excluded.not_before,
             last_error = NULL, updated_at = excluded.updated_at",
        params![source, source_id, kind, text, now],
    )?;
    Ok(())
}

impl Store {
    /// Turns write-backs on for `sources` (and off for every other).
    pub fn set_write_back_sources(&mut self, sources: &[&str]) {
        self.write_back = WriteBackSources(sources.iter().map(|s| s.to_string()).collect());
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
                    let fields = WriteBackFields {
                        ai_score: Some(score),
                        scored_at: Some(scored_at),
                        ..WriteBackFields::default()
                    };
                    enqueue(conn, source, source_id, "score", &fields, now)
                        .map_err(|e| LedgerError::Database(Box::new(e)))?;
                }
                Ok(())
            },
        )?)
    }

    /// Pending write-backs due at `now`, oldest first.
    pub fn write_backs_due(&self, now: Millis, limit: u32) -> Result<Vec<WriteBackItem>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, source, source_id, kind, fields, attempts FROM write_backs
              WHERE state = 'pending' AND not_before <= ?1
              ORDER BY not_before, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u32>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, source, source_id, kind, fields, attempts) = row?;
            let fields = serde_json::from_str(&fields).map_err(|_| StoreError::Corrupt {
                what: "write-back fields",
                value: fields,
            })?;
            out.push(WriteBackItem {
                id,
                source,
                source_id,
                kind,
                fields,
                attempts,
            });
        }
        Ok(out)
    }

    /// Claims a due write-back for `lease_ms`: it is not due again (to this
    /// or another process on the same database) until the lease ends, so
    /// one attempt is in flight at a time; a process that dies mid-attempt
    /// leaves it due again when the lease runs out. False when another
    /// process claimed it first or it is no longer pending.
    pub fn claim_write_back(
        &mut self,
        item: &WriteBackItem,
        lease_ms: Millis,
        now: Millis,
    ) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE write_backs SET not_before = ?2
              WHERE id = ?1 AND state = 'pending' AND not_before <= ?3",
            params![item.id, now + lease_ms.max(1), now],
        )? == 1)
    }

    /// When the next pending write-back is due.
    pub fn next_write_back_at(&self) -> Result<Option<Millis>> {
        Ok(self.conn.query_row(
            "SELECT MIN(not_before) FROM write_backs WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }

    /// The source has the values.
    pub fn write_back_done(&mut self, item: &WriteBackItem, now: Millis) -> Result<()> {
        self.settle_write_back(
            item,
            "UPDATE write_backs SET state = 'done', attempts = attempts + 1, last_error = NULL,
                    updated_at = ?2
              WHERE id = ?1 AND state = 'pending'",
            params![item.id, now],
            write_back_counter::DONE,
        )
    }

    /// An attempt failed in a way worth trying again, not before
    /// `not_before`.
    pub fn write_back_retry(
        &mut self,
        item: &WriteBackItem,
        not_before: Millis,
        error: &str,
        now: Millis,
    ) -> Result<()> {
        self.settle_write_back(
            item,
            "UPDATE write_backs SET attempts = attempts + 1, not_before = ?2, last_error = ?3,
                    updated_at = ?4
              WHERE id = ?1 AND state = 'pending'",
            params![item.id, not_before, error, now],
            write_back_counter::RETRIED,
        )
    }

    /// Gives a write-back up, with the reason.
    pub fn write_back_dead(
        &mut self,
        item: &WriteBackItem,
        error: &str,
        now: Millis,
    ) -> Result<()> {
        self.settle_write_back(
            item,
            "UPDATE write_backs SET state = 'dead', attempts = attempts + 1, last_error = ?2,
                    updated_at = ?3
              WHERE id = ?1 AND state = 'pending'",
            params![item.id, error, now],
            write_back_counter::DEAD,
        )
    }

    /// Records one attempt's outcome and counts it, in one transaction.
    fn settle_write_back(
        &mut self,
        item: &WriteBackItem,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
        counter: &str,
    ) -> Result<()> {
        let tx = self.write_transaction()?;
        tx.execute(sql, values)?;
        super::bump(&*tx, &item.source, counter, 1)?;
        tx.commit()?;
        Ok(())
    }

    /// Holds every pending write-back of `source` until `until` without
    /// spending an attempt: the source refused something no single row can
    /// fix (a missing scope), and each row succeeds once the operator has
    /// fixed it.
    /// `claimed`, the write-back whose attempt found the problem, waits
    /// exactly until `until` (its claim's lease ends with the hold).
    pub fn hold_write_backs(
        &mut self,
        source: &str,
        claimed: Option<&WriteBackItem>,
        until: Millis,
        error: &str,
        now: Millis,
    ) -> Result<usize> {
        let tx = self.write_transaction()?;
        let held = tx.execute(
            "UPDATE write_backs SET not_before = CASE WHEN id = ?5 THEN ?2 ELSE MAX(not_before, ?2) END,
                    last_error = ?3, updated_at = ?4
              WHERE source = ?1 AND state = 'pending'",
            params![source, until, error, now, claimed.map(|c| c.id)],
        )?;
        super::bump(&*tx, source, write_back_counter::HELD, 1)?;
        tx.commit()?;
        Ok(held)
    }

    /// Dead write-backs back to pending, due at `now`, with fresh attempts.
    pub fn replay_write_backs(&mut self, now: Millis) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE write_backs SET state = 'pending', attempts = 0, not_before = ?1, updated_at = ?1
              WHERE state = 'dead'",
            [now],
        )?)
    }

    /// Write-backs per source by state, with the newest error.
    pub fn write_back_counts(&self) -> Result<Vec<WriteBackCounts>> {
        let mut stmt = self.conn.prepare(
            "SELECT source, state, COUNT(*) FROM write_backs GROUP BY source, state ORDER BY source",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u64>(2)?,
            ))
        })?;
        let mut out: Vec<WriteBackCounts> = Vec::new();
        for row in rows {
            let (source, state, n) = row?;
            let state = WriteBackState::parse(&state).ok_or(StoreError::Corrupt {
                what: "write-back state",
                value: state,
            })?;
            if out.last().is_none_or(|c| c.source != source) {
                out.push(WriteBackCounts {
                    source: source.clone(),
                    ..WriteBackCounts::default()
                });
            }
            if let Some(c) = out.last_mut() {
                match state {
                    WriteBackState::Pending => c.pending = n,
                    WriteBackState::Done => c.done = n,
                    WriteBackState::Dead => c.dead = n,
                }
            }
        }
        for c in &mut out {
            c.last_error = self
                .conn
                .query_row(
                    "SELECT last_error, updated_at FROM write_backs
                      WHERE source = ?1 AND last_error IS NOT NULL
                      ORDER BY updated_at DESC, id DESC LIMIT 1",
                    [&c.source],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
        }
        Ok(out)
    }

    /// One write-back's state, attempts and last error (for tests and
    /// `deliveries`-style lookups).
    pub fn write_back_state(
        &self,
        source: &str,
        source_id: &str,
        kind: &str,
    ) -> Result<Option<(WriteBackState, u32, Option<String>)>> {
        let row: Option<(String, u32, Option<String>)> = self
            .conn
            .query_row(
                "SELECT state, attempts, last_error FROM write_backs
                  WHERE source = ?1 AND source_id = ?2 AND kind = ?3",
                params![source, source_id, kind],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(state, attempts, error)| {
            WriteBackState::parse(&state)
                .map(|st| (st, attempts, error))
                .ok_or(StoreError::Corrupt {
                    what: "write-back state",
                    value: state,
                })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Intake, Outcome};

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
        store.intake(&[hubspot_send(id)], None, 10).unwrap();
        let item = store.due("main", 10, 1).unwrap().remove(0);
        store.begin_send(&item, 10).unwrap();
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
        let due = store.write_backs_due(20, 10).unwrap();
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
            store.intake(&[hubspot_send("7")], None, 10).unwrap();
            let item = store.due("main", 10, 1).unwrap().remove(0);
            store.begin_send(&item, 10).unwrap();
            store.mark_created(&item, Some("call_7"), 20).unwrap();
        }
        let reopened = Store::open(&path).unwrap();
        let due = reopened.write_backs_due(20, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].fields.call_id.as_deref(), Some("call_7"));
    }

    #[test]
    fn nothing_is_queued_when_write_back_is_off() {
        let mut store = sent(false, "7");
        score(&mut store, "e1", "call_7", false);
        assert!(store.write_backs_due(i64::MAX, 10).unwrap().is_empty());
    }

    #[test]
    fn a_score_for_a_call_sent_from_the_source_queues_the_score_and_when_it_was_scored() {
        let mut store = sent(true, "7");
        assert!(score(&mut store, "e1", "call_7", false));
        let due = store.write_backs_due(30, 10).unwrap();
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
            s.write_backs_due(i64::MAX, 10)
                .unwrap()
                .into_iter()
                .filter(|w| w.kind == "score")
                .count()
        };
        assert_eq!(scores(&store), 0);
        assert!(score(&mut store, "e3", "call_7", false));
        let item = store.write_backs_due(i64::MAX, 10).unwrap().remove(1);
        store.write_back_done(&item, 40).unwrap();
        assert!(!score(&mut store, "e3", "call_7", false), "seen before");
        assert_eq!(
            scores(&store),
            0,
            "a repeated delivery is not written again"
        );
    }

    #[test]
    fn a_retried_write_back_waits_and_counts_its_attempts_and_a_dead_one_keeps_its_reason() {
        let mut store = sent(true, "7");
        let item = store.write_backs_due(20, 10).unwrap().remove(0);
        store
            .write_back_retry(&item, 100, "HubSpot answered 503", 21)
            .unwrap();
        assert!(store.write_backs_due(99, 10).unwrap().is_empty());
        assert_eq!(store.next_write_back_at().unwrap(), Some(100));
        assert_eq!(store.write_backs_due(100, 10).unwrap()[0].attempts, 1);
        store
            .write_back_dead(&item, "call 7 is gone (404)", 101)
            .unwrap();
        assert_eq!(
            store
                .counter("hubspot", write_back_counter::RETRIED)
                .unwrap(),
            1
        );
        assert_eq!(
            store.counter("hubspot", write_back_counter::DEAD).unwrap(),
            1
        );
        assert_eq!(
            store.write_back_state("hubspot", "7", "sent").unwrap(),
            Some((WriteBackState::Dead, 2, Some("call 7 is gone (404)".into())))
        );
        let counts = store.write_back_counts().unwrap();
        assert_eq!(counts[0].dead, 1);
        assert_eq!(
            counts[0].last_error,
            Some(("call 7 is gone (404)".into(), 101))
        );
        assert_eq!(store.replay_write_backs(200).unwrap(), 1);
        assert_eq!(store.write_backs_due(200, 10).unwrap()[0].attempts, 0);
    }

    #[test]
    fn a_claimed_write_back_is_due_to_no_one_else_until_its_lease_ends() {
        let mut store = sent(true, "7");
        let item = store.write_backs_due(20, 10).unwrap().remove(0);
        assert!(store.claim_write_back(&item, 1_000, 20).unwrap());
        assert!(!store.claim_write_back(&item, 1_000, 21).unwrap(), "taken");
        assert!(store.write_backs_due(1_019, 10).unwrap().is_empty());
        assert_eq!(
            store.write_backs_due(1_020, 10).unwrap().len(),
            1,
            "lease over"
        );
        store.write_back_done(&item, 30).unwrap();
        assert!(
            !store.claim_write_back(&item, 1_000, 2_000).unwrap(),
            "done"
        );
    }

    #[test]
    fn a_hold_ends_the_lease_of_the_write_back_that_found_the_problem() {
        let mut store = sent(true, "7");
        let item = store.write_backs_due(20, 10).unwrap().remove(0);
        assert!(store.claim_write_back(&item, 100_000, 20).unwrap());
        store
            .hold_write_backs("hubspot", Some(&item), 500, "missing scope", 21)
            .unwrap();
        assert_eq!(store.next_write_back_at().unwrap(), Some(500));
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
        assert!(store.write_backs_due(499, 10).unwrap().is_empty());
        let due = store.write_backs_due(500, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|w| w.attempts == 0));
        let counts = store.write_back_counts().unwrap();
        assert_eq!((counts[0].pending, counts[0].done), (2, 0));
        assert_eq!(
            counts[0].last_error.as_ref().map(|e| e.0.as_str()),
            Some("missing scope")
        );
    }
}

//! Kendo's results kept once and matched to the calls they score, whether
//! one statement stores them or the transaction does.

use super::*;
use crate::ledger::results::{self, KendoResult};

fn uploaded<'a>(event_id: &'a str, call_id: &'a str, is_test: bool) -> KendoResult<'a> {
    KendoResult {
        event_id,
        event: "call.uploaded",
        subject_id: call_id,
        ai_score: Some(80.0),
        is_test,
        scored_at: Some(30),
    }
}

/// Records `result`; returns whether it was new and each call scored.
fn record(
    db: &rusqlite::Connection,
    result: &KendoResult<'_>,
) -> (bool, Vec<(String, String, f64, Millis)>) {
    let mut scored = Vec::new();
    let new = results::record(db, result, 40, |_, source, id, score, at| {
        scored.push((source.to_string(), id.to_string(), score, at));
        Ok(())
    })
    .unwrap();
    (new, scored)
}

/// Call `id` sent, created in Kendo as `call_<id>`.
fn sent(db: &rusqlite::Connection, id: &str) {
    intake(db, &[send(id, "a")], None, 10).unwrap();
    let item = send::due(db, TEAM, 10, 1).unwrap().remove(0);
    send::begin_send(db, &item, 10).unwrap();
    let created = Action::Created {
        call_id: Some(format!("call_{id}")),
        after_lost_answers: 0,
    };
    assert!(apply(db, &item, created, 20));
}

fn stored(db: &rusqlite::Connection) -> u64 {
    results::count(db).unwrap()
}

#[test]
fn a_score_of_a_sent_call_runs_on_scored_once() {
    let db = db();
    sent(&db, "1");
    let score = uploaded("evt_1", "call_1", false);
    assert_eq!(
        record(&db, &score),
        (true, vec![("aloware".into(), "1".into(), 80.0, 30)])
    );
    assert_eq!(record(&db, &score), (false, vec![]), "a duplicate");
    // Known by the ledger's callId alone (as a database from before the
    // list of callIds has it).
    sent(&db, "2");
    db.run("DELETE FROM kendo_call_ids WHERE source_id = '2'", &[])
        .unwrap();
    let (new, scored) = record(&db, &uploaded("evt_2", "call_2", false));
    assert!(new);
    assert_eq!(scored, vec![("aloware".into(), "2".into(), 80.0, 30)]);
    assert_eq!(stored(&db), 2);
}

#[test]
fn a_score_of_a_call_id_from_an_earlier_send_runs_on_scored() {
    let db = db();
    db.run(
        "INSERT INTO kendo_call_ids (source, source_id, team, kendo_call_id, at)
         VALUES ('aloware', '7', 't', 'call_old', 5)",
        &[],
    )
    .unwrap();
    let (new, scored) = record(&db, &uploaded("evt_old", "call_old", false));
    assert!(new);
    assert_eq!(scored, vec![("aloware".into(), "7".into(), 80.0, 30)]);
}

#[test]
fn a_result_that_scores_no_call_the_ledger_holds_is_stored_once_without_on_scored() {
    let db = db();
    sent(&db, "1");
    let unknown = uploaded("evt_3", "call_elsewhere", false);
    assert_eq!(record(&db, &unknown), (true, vec![]));
    assert_eq!(record(&db, &unknown), (false, vec![]));
    let test = uploaded("evt_4", "call_1", true);
    assert_eq!(record(&db, &test), (true, vec![]), "a test scores nothing");
    assert_eq!(record(&db, &test), (false, vec![]));
    let training = KendoResult {
        event: "ai.training.completed",
        ..uploaded("evt_5", "call_1", false)
    };
    assert_eq!(record(&db, &training), (true, vec![]));
    let unscored = KendoResult {
        ai_score: None,
        ..uploaded("evt_6", "call_1", false)
    };
    assert_eq!(record(&db, &unscored), (true, vec![]));
    assert_eq!(stored(&db), 4);
}

#[test]
fn a_result_finds_its_call_by_an_index_not_by_reading_the_ledger() {
    let db = db();
    for (table, index) in [
        ("ledger", "ledger_by_kendo_call_id"),
        ("kendo_call_ids", "kendo_call_ids_by_kendo_call_id"),
    ] {
        let plan: Vec<String> = db
            .run(
                &format!("EXPLAIN QUERY PLAN SELECT source, source_id FROM {table} WHERE kendo_call_id = ?1"),
                &["c-1".into()],
            )
            .unwrap()
            .iter()
            .map(|row| row.text(3).unwrap())
            .collect();
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{table}: {plan:?}"
        );
    }
}

//! The operator's levers on a running bridge: a refused key pauses its team
//! until `resume`; calls whose retries ran out wait as dead letters until
//! `replay`. Both commands run as separate processes on the state database,
//! as an operator would run them.

use std::time::Duration;

use crate::support::{KEY, Running, TEAM, eventually, operator, staged, status_json, team_status};
use kendo_bridge::demo::StageOptions;
use kendo_bridge::store::State;
use kendo_bridge_sim::Dataset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_kendo_refuses_pauses_its_team_until_the_key_is_restored_and_resumed() {
    let (dir, stage) = staged(Dataset::backlog(5, 8), StageOptions::default()).await;
    stage.sims.kendo.revoke_key(KEY);
    let bridge = Running::serve(dir, stage);
    let kendo = &bridge.stage.sims.kendo;
    let db = bridge.db();
    let db_arg = db.to_str().expect("a UTF-8 path");

    eventually("the team is paused", || {
        bridge
            .store
            .run_here(|s| Ok(kendo_bridge_core::ledger::send::paused(s.database(), TEAM)?))
            .expect("the store reads")
            .is_some()
    })
    .await;

    let status = status_json(&db);
    let team = team_status(&status, TEAM);
    let reason = team["paused"]
        .as_str()
        .unwrap_or_else(|| panic!("status says the team is paused: {team:#}"));
    assert!(
        reason.contains("401"),
        "the pause names Kendo's answer: {reason}"
    );
    assert_eq!(team["queueDepth"], 5, "every call keeps its place");
    assert_eq!(kendo.stats().rejected_401, 1, "one refusal paused the team");
    assert!(kendo.accepted().is_empty());

    kendo.restore_key(KEY);
    let resumed = operator(&["resume", "--team", TEAM, "--db", db_arg]);
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resumed"));

    eventually("every call reached Kendo after the resume", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    let status = status_json(&db);
    assert!(
        team_status(&status, TEAM)["paused"].is_null(),
        "status no longer says paused"
    );
    assert_eq!(
        kendo.stats().rejected_401,
        1,
        "nothing was sent while paused"
    );
    assert_eq!(kendo.duplicates(), vec![]);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_whose_retries_run_out_are_dead_letters_until_replay_delivers_them() {
    let options = StageOptions {
        max_attempts: 3,
        retry_base: Duration::from_millis(100),
        ..StageOptions::default()
    };
    let (dir, stage) = staged(Dataset::backlog(2, 9), options).await;
    // Kendo down: every request answered 503.
    stage.sims.kendo.fail_next(10_000, 503);
    let bridge = Running::serve(dir, stage);
    let kendo = &bridge.stage.sims.kendo;
    let db = bridge.db();
    let db_arg = db.to_str().expect("a UTF-8 path");

    eventually("both calls are dead letters", || {
        let ledger = bridge.ledger();
        ledger.len() == 2 && ledger.iter().all(|r| r.state == State::Dead)
    })
    .await;
    assert_eq!(
        kendo.stats().server_errors_5xx,
        6,
        "three attempts per call, no more"
    );
    let status = status_json(&db);
    assert_eq!(team_status(&status, TEAM)["states"]["dead"], 2);
    let errors = status["lastErrors"].as_array().expect("lastErrors");
    assert!(
        errors.iter().all(|e| e["code"] == "retries-exhausted"),
        "status shows why: {errors:#?}"
    );

    kendo.clear_faults();
    let replayed = operator(&["replay", "--db", db_arg]);
    assert!(
        String::from_utf8_lossy(&replayed.stdout).contains("2 call(s) put back in the queue"),
        "{}",
        String::from_utf8_lossy(&replayed.stdout)
    );

    eventually("the replayed calls reached Kendo", || {
        bridge.stage.missing().is_empty()
    })
    .await;
    eventually("the ledger shows them sent", || {
        bridge.ledger().iter().all(|r| r.state == State::Sent)
    })
    .await;
    assert_eq!(kendo.duplicates(), vec![]);
    bridge.stop().await;
}

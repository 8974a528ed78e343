//! `settle` refuses what it cannot act on before touching any database.

use crate::support::{assert_exit, kendo_bridge, run, stderr};

fn settle(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("state.db");
    let mut command = kendo_bridge();
    command.arg("settle").arg("--db").arg(&db).args(args);
    run(command, None)
}

#[test]
fn settle_needs_a_decision_sent_or_resend() {
    let output = settle(&[]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--sent"), "{}", stderr(&output));
}

#[test]
fn sent_and_resend_cannot_both_be_given() {
    let output = settle(&["--sent", "1", "--resend", "1"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_kendo_call_id_goes_only_with_sent() {
    let output = settle(&["--resend", "1", "--call-id", "call_1"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--call-id"), "{}", stderr(&output));
}

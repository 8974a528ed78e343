//! `--help` teaches: every option of `map` and `verify` is named and
//! explained, with examples.

use crate::support::{assert_exit, kendo_bridge, run, stdout};

fn help(args: &[&str]) -> String {
    let mut command = kendo_bridge();
    command.args(args).arg("--help");
    let output = run(command, None);
    assert_exit(&output, 0);
    stdout(&output)
}

fn assert_mentions(text: &str, what: &[&str], context: &str) {
    let missing: Vec<&&str> = what.iter().filter(|word| !text.contains(**word)).collect();
    assert!(
        missing.is_empty(),
        "{context} does not mention {missing:?}:\n{text}"
    );
}

#[test]
fn top_level_help_names_the_global_options_and_gives_examples() {
    let text = help(&[]);
    assert_mentions(
        &text,
        &[
            "--plugin",
            "--config",
            "map",
            "verify",
            "Examples:",
            "Exit codes",
        ],
        "kendo-bridge --help",
    );
}

#[test]
fn map_help_mentions_every_option() {
    let text = help(&["map"]);
    assert_mentions(
        &text,
        &[
            "--source",
            "salesloft",
            "hubspot",
            "aloware",
            "--via",
            "polling",
            "webhook",
            "workflow",
            "--user",
            "--sentences",
            "--call-data-record",
            "--owner",
            "--dispositions",
            "--transcript",
            "--config",
            "--plugin",
            "[FILE]",
            "Examples:",
        ],
        "kendo-bridge map --help",
    );
}

#[test]
fn verify_help_mentions_every_option_and_scheme() {
    let text = help(&["verify"]);
    assert_mentions(
        &text,
        &[
            "--scheme",
            "kendo",
            "salesloft",
            "hubspot-v1",
            "hubspot-v2",
            "hubspot-v3",
            "standard",
            "aloware",
            "--secret-env",
            "--header",
            "--method",
            "--uri",
            "--now-ms",
            "--plugin",
            "[FILE]",
            "Examples:",
        ],
        "kendo-bridge verify --help",
    );
}

#[test]
fn a_usage_error_exits_2() {
    let mut command = kendo_bridge();
    command.args(["map", "--source", "zoom"]);
    let output = run(command, None);
    assert_exit(&output, 2);
}

#[test]
fn settle_help_teaches_what_to_do_with_a_parked_call() {
    let text = help(&["settle"]);
    assert_mentions(
        &text,
        &[
            "outcome-unknown",
            "idempotency",
            "kendo.ambiguous_resends",
            "--sent",
            "--resend",
            "--call-id",
            "--source",
            "--team",
            "--db",
            "deliveries --state outcome-unknown",
            "Exit codes",
            "Examples:",
        ],
        "kendo-bridge settle --help",
    );
}

#[test]
fn deliveries_help_explains_the_possible_duplicates() {
    let text = help(&["deliveries"]);
    assert_mentions(
        &text,
        &[
            "--maybe-duplicated",
            "outcome-unknown",
            "idempotency",
            "dup?",
        ],
        "kendo-bridge deliveries --help",
    );
}

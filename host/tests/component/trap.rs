//! A mapper trap costs one record, never the host: the trapping mapper
//! (`testing/trap-guest`, composed into the bridge) panics on one Salesloft
//! call, or never returns on another, and the same `Instance` goes on to
//! map the next.

use crate::support::{default_rules, map_salesloft, read_fixture, salesloft_inputs};
use std::time::{Duration, Instant};

use kendo_bridge::plugin::{
    CALL_TIME_LIMIT, Plugin, PluginError,
    types::{Decision, SyncMethod},
};
use serde_json::Value;

/// The marker the trapping mapper panics on.
const TRAP_MARKER: &str = "kendo-bridge-test-trap";
/// The marker the trapping mapper loops forever on.
const HANG_MARKER: &str = "kendo-bridge-test-hang";

fn trap_plugin() -> Plugin {
    let path = std::path::Path::new(env!("KENDO_BRIDGE_TRAP_COMPONENT"));
    // build.rs points here at its error report when the component does not
    // build (for instance after a WIT change it does not follow yet).
    if path.extension().is_some_and(|ext| ext == "txt") {
        panic!(
            "testing/trap-guest does not build:\n{}",
            std::fs::read_to_string(path).unwrap_or_default()
        );
    }
    Plugin::with_mapper_file(path).expect("the trapping mapper loads")
}

fn call_json(sentiment: &str) -> String {
    let mut call: Value =
        serde_json::from_str(&read_fixture("seed-examples/inputs/salesloft-call.json"))
            .expect("JSON");
    call["sentiment"] = Value::String(sentiment.to_owned());
    call.to_string()
}

#[test]
fn a_trapping_record_between_two_good_ones_fails_alone() {
    let plugin = trap_plugin();
    let mut instance = plugin.instance().expect("instantiates");
    let rules = default_rules();
    let mut map = |call: String| {
        let mut inputs = salesloft_inputs(call);
        inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
        map_salesloft(&mut instance, &inputs, &rules, SyncMethod::Polling)
    };

    let first = map(call_json("Interested"));
    let second = map(call_json(TRAP_MARKER));
    let third = map(call_json("Interested"));

    assert!(
        matches!(first, Ok(Ok(Decision::Send(_)))),
        "record 1 maps before the trap: {first:?}"
    );
    match second {
        Err(PluginError::Trap { message }) => {
            assert!(
                message
                    .contains("kendo-bridge-test-trap: this record is built to crash the plugin"),
                "the trap carries the guest's panic message: {message}"
            );
            assert!(
                message.contains("testing/trap-guest/src/lib.rs"),
                "and where it panicked: {message}"
            );
        }
        other => panic!("record 2 should trap, got {other:?}"),
    }
    match (first, third) {
        (Ok(Ok(Decision::Send(before))), Ok(Ok(Decision::Send(after)))) => assert_eq!(
            format!("{before:?}"),
            format!("{after:?}"),
            "record 3 maps exactly like record 1 on the replaced instance"
        ),
        (_, third) => panic!("record 3 maps after the trap: {third:?}"),
    }
}

#[test]
fn a_record_that_never_returns_is_stopped_at_the_call_limit_and_the_next_maps() {
    let plugin = trap_plugin();
    let mut instance = plugin.instance().expect("instantiates");
    instance.set_call_time_limit(Duration::from_millis(300));
    let rules = default_rules();
    let mut map = |call: String| {
        let mut inputs = salesloft_inputs(call);
        inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
        map_salesloft(&mut instance, &inputs, &rules, SyncMethod::Polling)
    };

    let started = Instant::now();
    let hung = map(call_json(HANG_MARKER));
    let stopped_after = started.elapsed();
    match hung {
        Err(PluginError::Trap { message }) => assert!(
            message.contains("ran for more than 300ms on one call and was stopped"),
            "the trap says the call ran too long: {message}"
        ),
        other => panic!("the endless record should be stopped, got {other:?}"),
    }
    // Not a timing assertion on speed: only that the deadline, not the
    // default 10 s limit, ended the call.
    assert!(
        stopped_after < CALL_TIME_LIMIT,
        "stopped by the 300 ms limit, not the default: {stopped_after:?}"
    );
    let next = map(call_json("Interested"));
    assert!(
        matches!(next, Ok(Ok(Decision::Send(_)))),
        "the next record maps on the replaced instance: {next:?}"
    );
}

#[test]
fn the_trapping_mapper_maps_ordinary_records_like_the_default_one() {
    let mut trapping = trap_plugin().instance().expect("instantiates");
    let mut default = Plugin::embedded()
        .expect("loads")
        .instance()
        .expect("instantiates");
    let mut inputs = salesloft_inputs(call_json("Interested"));
    inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
    let rules = default_rules();
    let from_trapping = map_salesloft(&mut trapping, &inputs, &rules, SyncMethod::Polling);
    let from_default = map_salesloft(&mut default, &inputs, &rules, SyncMethod::Polling);
    assert_eq!(format!("{from_trapping:?}"), format!("{from_default:?}"));
}

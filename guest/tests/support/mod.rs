//! Helpers shared by the source tests: fixtures, rules, and arbitrary JSON.

#![allow(dead_code)] // Each test crate uses its own subset.

use std::path::PathBuf;

use kendo_bridge_guest::types::{Call, Decision, RepEntry, Rules, SkipCode, WaitCode};
use proptest::prelude::*;
use serde_json::Value;

/// A fixture under the repository's `tests/fixtures/`.
pub fn fixture(path: &str) -> String {
    let full: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "fixtures", path]
        .iter()
        .collect();
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{}: {error}", full.display()))
}

/// A fixture parsed as JSON, to derive variants from.
pub fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap()
}

/// Rules with every default: no template, no minimum, no filter, no directory.
pub fn rules() -> Rules {
    Rules {
        title_template: None,
        min_duration_seconds: 0,
        allowed_dispositions: Vec::new(),
        rep_directory: Vec::new(),
    }
}

pub fn rep(key: &str, email: &str, name: Option<&str>) -> RepEntry {
    RepEntry {
        key: key.to_owned(),
        email: email.to_owned(),
        name: name.map(str::to_owned),
    }
}

#[track_caller]
pub fn sent(decision: Decision) -> Call {
    match decision {
        Decision::Send(call) => call,
        other => panic!("expected send, got {other:#?}"),
    }
}

/// The skip's code and detail.
#[track_caller]
pub fn skipped(decision: Decision) -> (SkipCode, String) {
    match decision {
        Decision::Skip(reason) => (reason.code, reason.detail),
        other => panic!("expected skip, got {other:#?}"),
    }
}

/// The wait's code and detail.
#[track_caller]
pub fn waiting(decision: Decision) -> (WaitCode, String) {
    match decision {
        Decision::Wait(reason) => (reason.code, reason.detail),
        other => panic!("expected wait, got {other:#?}"),
    }
}

pub fn metadata(call: &Call) -> Vec<(&str, &str)> {
    call.metadata
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

/// Strings a source might send where the bridge expects something else.
const AWKWARD: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1",
    "2",
    "4",
    "9",
    "101",
    "10000",
    "1e400",
    "NaN",
    "18446744073709551616",
    "1772641800000",
    "99999999999999999",
    "2026-04-22T15:30:00.123456Z",
    "2026-04-22T11:30:00-04:00",
    "9999-12-31T23:59:59-12:00",
    "0000-01-01T00:00:00+14:00",
    "2026-03-05 18:10:00",
    "completed",
    "COMPLETED",
    "no-answer",
    "in-progress",
    "processing",
    "pending",
    "inbound",
    "OUTBOUND",
    "true",
    "0-48",
    "call.creation",
    "jamie@yourco.com",
    "not an email",
    "https://...",
    "<p>a &amp; b<br>c</p>",
    "&#99999999;",
    "{",
];

/// A JSON scalar, weighted towards the values sources really send: small
/// codes and the strings above.
pub fn json_leaf() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => (0u64..16).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|number| serde_json::Number::from_f64(number)
            .map_or(Value::Null, Value::Number)),
        4 => prop::sample::select(AWKWARD).prop_map(|text| Value::String(text.to_owned())),
        1 => ".{0,12}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON whose object keys come from `keys`, so that generated
/// values reach past the first field a reader looks at.
pub fn json_with_keys(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(keys), inner, 0..10).prop_map(
                |members| {
                    Value::Object(
                        members
                            .into_iter()
                            .map(|(key, value)| (key.to_owned(), value))
                            .collect(),
                    )
                }
            ),
        ]
    })
}

/// A few members to overwrite in a realistic record: mostly scalars, so
/// that each reaches the reader's checks on that one field.
pub fn edits(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    prop::collection::vec(
        (
            prop::sample::select(keys),
            prop_oneof![4 => json_leaf(), 1 => json_with_keys(keys)],
        ),
        1..5,
    )
}

/// More cases for the tests that start from a realistic record: each case
/// is cheap, and the interesting values are needles.
pub fn many_cases() -> ProptestConfig {
    ProptestConfig::with_cases(1024)
}

/// Rules of any shape, templates included.
pub fn any_rules() -> impl Strategy<Value = Rules> {
    (
        prop::option::of("[{}|a-z_ -]{0,30}"),
        any::<u32>(),
        prop::collection::vec(prop::sample::select(AWKWARD).prop_map(str::to_owned), 0..3),
        prop::collection::vec(
            (
                prop::sample::select(AWKWARD),
                prop::sample::select(AWKWARD),
                prop::option::of(".{0,8}"),
            )
                .prop_map(|(key, email, name)| rep(key, email, name.as_deref())),
            0..3,
        ),
    )
        .prop_map(
            |(title_template, min_duration_seconds, allowed_dispositions, rep_directory)| Rules {
                title_template,
                min_duration_seconds,
                allowed_dispositions,
                rep_directory,
            },
        )
}

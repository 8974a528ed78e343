//! Source records mapped and built into Kendo payloads through the release
//! component inside wasmtime: snapshot cases from
//! `tests/fixtures/mapping-cases.toml`, and the seed guides' example
//! payloads reproduced key by key.

use std::collections::BTreeSet;

use crate::support::{
    decision_json, default_rules, files_under, fixtures, hubspot_inputs, instance, map_aloware,
    map_hubspot, map_salesloft, payload_of, read_aloware_event, read_fixture, rules_from,
    salesloft_inputs,
};
use kendo_bridge::plugin::{
    Instance,
    aloware::Event,
    types::{Decision, Rules, SkipCode, SyncMethod},
};
use serde::Deserialize;
use serde_json::{Value, json};

const MANIFEST: &str = "mapping-cases.toml";
const SOURCE_DIRS: [&str; 3] = ["salesloft", "hubspot", "aloware"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    salesloft: Vec<Case>,
    #[serde(default)]
    hubspot: Vec<Case>,
    #[serde(default)]
    aloware: Vec<Case>,
    /// Fixtures under the source directories that are not records to map
    /// (list pages, webhook batches, ...), each with the reason.
    #[serde(default)]
    not_mapped: Vec<NotMapped>,
}

/// One mapping case. Paths are relative to `tests/fixtures/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The call record (Aloware: a delivery envelope or a bare body).
    call: String,
    /// Salesloft.
    user: Option<String>,
    #[serde(default)]
    sentences: Vec<String>,
    call_data_record: Option<String>,
    /// HubSpot.
    owner: Option<String>,
    dispositions: Option<String>,
    /// HubSpot (JSON) or Aloware (plain text).
    transcript: Option<String>,
    /// A bridge config file (`[rules]`, `[[reps]]`).
    config: Option<String>,
    /// `polling`, `webhook` or `workflow`; defaults as `kendo-bridge map`.
    via: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotMapped {
    file: String,
    why: String,
}

impl Case {
    fn files(&self) -> Vec<&str> {
        let mut files = vec![self.call.as_str()];
        files.extend(self.user.as_deref());
        files.extend(self.sentences.iter().map(String::as_str));
        files.extend(self.call_data_record.as_deref());
        files.extend(self.owner.as_deref());
        files.extend(self.dispositions.as_deref());
        files.extend(self.transcript.as_deref());
        files.extend(self.config.as_deref());
        files
    }

    fn rules(&self) -> Rules {
        match &self.config {
            Some(config) => rules_from(config),
            None => default_rules(),
        }
    }

    fn via(&self, default: SyncMethod) -> SyncMethod {
        match self.via.as_deref() {
            None => default,
            Some("polling") => SyncMethod::Polling,
            Some("webhook") => SyncMethod::Webhook,
            Some("workflow") => SyncMethod::Workflow,
            Some(other) => panic!("case {}: unknown via {other:?}", self.name),
        }
    }

    fn refuse_inputs_of_other_sources(&self, source: &str) {
        let foreign: &[(&str, bool)] = match source {
            "salesloft" => &[
                ("owner", self.owner.is_some()),
                ("dispositions", self.dispositions.is_some()),
                ("transcript", self.transcript.is_some()),
            ],
            "hubspot" => &[
                ("user", self.user.is_some()),
                ("sentences", !self.sentences.is_empty()),
                ("call_data_record", self.call_data_record.is_some()),
            ],
            _ => &[
                ("user", self.user.is_some()),
                ("sentences", !self.sentences.is_empty()),
                ("call_data_record", self.call_data_record.is_some()),
                ("owner", self.owner.is_some()),
                ("dispositions", self.dispositions.is_some()),
            ],
        };
        for (field, present) in foreign {
            assert!(
                !present,
                "case {}: `{field}` is not a {source} input",
                self.name
            );
        }
    }
}

fn manifest() -> Manifest {
    let text = read_fixture(MANIFEST);
    toml::from_str(&text).unwrap_or_else(|error| panic!("{MANIFEST}: {error}"))
}

fn cases_of<'m>(manifest: &'m Manifest, source: &str) -> &'m [Case] {
    match source {
        "salesloft" => &manifest.salesloft,
        "hubspot" => &manifest.hubspot,
        _ => &manifest.aloware,
    }
}

/// Maps one case and, for a send, builds the payload: the value
/// `kendo-bridge map` would print, or the input error in plain words.
fn run_case(instance: &mut Instance, source: &str, case: &Case) -> Value {
    case.refuse_inputs_of_other_sources(source);
    let context = format!("case {} ({source})", case.name);
    let rules = case.rules();
    let call = read_fixture(&case.call);
    let optional = |path: &Option<String>| path.as_deref().map(read_fixture);
    let mapped = match source {
        "salesloft" => {
            let mut inputs = salesloft_inputs(call);
            inputs.user = optional(&case.user);
            inputs.sentences = case.sentences.iter().map(|p| read_fixture(p)).collect();
            inputs.call_data_record = optional(&case.call_data_record);
            map_salesloft(instance, &inputs, &rules, case.via(SyncMethod::Polling))
        }
        "hubspot" => {
            let mut inputs = hubspot_inputs(call);
            inputs.owner = optional(&case.owner);
            inputs.dispositions = optional(&case.dispositions);
            inputs.transcript = optional(&case.transcript);
            map_hubspot(instance, &inputs, &rules, case.via(SyncMethod::Polling))
        }
        _ => {
            let transcript = optional(&case.transcript);
            let body = if is_envelope(&call) {
                match read_aloware_event(instance, &call)
                    .unwrap_or_else(|error| panic!("{context}: read-event trapped: {error}"))
                {
                    Ok(Event::Call(event)) => event.body,
                    Ok(Event::Ignore(ignored)) => {
                        return json!({
                            "decision": "skip",
                            "code": ignored.code.to_string(),
                            "reason": ignored.detail,
                        });
                    }
                    // Not a call: what the host keeps for the call it
                    // belongs to is what there is to check.
                    Ok(Event::Transcript(event)) => {
                        return json!({
                            "event": "transcript",
                            "name": event.name,
                            "callId": event.call_id,
                            "transcript": event.transcript,
                            "summary": event.summary,
                        });
                    }
                    Err(error) => return json!({ "inputError": error.explain().to_string() }),
                }
            } else {
                call
            };
            map_aloware(
                instance,
                &body,
                transcript.as_deref(),
                &rules,
                case.via(SyncMethod::Webhook),
            )
        }
    };
    match mapped.unwrap_or_else(|error| panic!("{context}: map-call trapped: {error}")) {
        Ok(decision) => decision_json(instance, decision, &context),
        Err(error) => json!({ "inputError": error.explain().to_string() }),
    }
}

fn is_envelope(record: &str) -> bool {
    match serde_json::from_str::<Value>(record) {
        Ok(Value::Object(object)) => {
            object.contains_key("event") || object.contains_key("test_payload")
        }
        _ => false,
    }
}

fn run_source(source: &str) {
    let manifest = manifest();
    let cases = cases_of(&manifest, source);
    assert!(!cases.is_empty(), "{MANIFEST} has no {source} case");
    let mut instance = instance();
    for case in cases {
        let value = run_case(&mut instance, source, case);
        insta::with_settings!({
            description => format!("case {} ({source}): {}", case.name, case.files().join(", ")),
            omit_expression => true,
        }, {
            insta::assert_json_snapshot!(format!("{source}__{}", case.name), value);
        });
    }
}

#[test]
fn salesloft_cases_match_their_snapshots() {
    run_source("salesloft");
}

#[test]
fn hubspot_cases_match_their_snapshots() {
    run_source("hubspot");
}

#[test]
fn aloware_cases_match_their_snapshots() {
    run_source("aloware");
}

#[test]
fn every_source_fixture_is_a_mapping_case_or_says_why_not() {
    let manifest = manifest();
    let mut referenced: BTreeSet<&str> = BTreeSet::new();
    let mut names: BTreeSet<(&str, &str)> = BTreeSet::new();
    for source in SOURCE_DIRS {
        for case in cases_of(&manifest, source) {
            assert!(
                names.insert((source, case.name.as_str())),
                "{MANIFEST}: case name {} appears twice under {source}",
                case.name
            );
            for file in case.files() {
                assert!(
                    fixtures().join(file).is_file(),
                    "{MANIFEST}: case {} names {file}, which does not exist",
                    case.name
                );
                referenced.insert(file);
            }
        }
    }
    for skipped in &manifest.not_mapped {
        assert!(
            !skipped.why.trim().is_empty(),
            "{MANIFEST}: not_mapped {} needs a reason",
            skipped.file
        );
        referenced.insert(skipped.file.as_str());
    }
    let missing: Vec<String> = SOURCE_DIRS
        .iter()
        .flat_map(|dir| files_under(dir))
        .filter(|file| !referenced.contains(file.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures that no case in {MANIFEST} maps (add a case, or a not_mapped entry \
         with the reason): {missing:#?}"
    );
}

// ---------------------------------------------------------------------------
// The seed guides' example payloads
// ---------------------------------------------------------------------------

/// Asserts that every key and value of the guide's example is in ours
/// (nested in `metadata` too); ours may carry more.
fn assert_reproduces(example: &Value, ours: &Value, path: &str, guide: &str) {
    match (example, ours) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let Some(actual_value) = actual.get(key) else {
                    panic!("{guide}: our payload has no `{here}`; ours: {ours:#}");
                };
                assert_reproduces(value, actual_value, &here, guide);
            }
        }
        _ => assert_eq!(
            example, ours,
            "{guide}: `{path}` differs from the guide's example"
        ),
    }
}

fn example(name: &str) -> Value {
    serde_json::from_str(&read_fixture(&format!("seed-examples/{name}")))
        .unwrap_or_else(|error| panic!("seed-examples/{name}: {error}"))
}

#[test]
fn salesloft_guide_example_payload_is_reproduced() {
    let mut instance = instance();
    let mut inputs = salesloft_inputs(read_fixture("seed-examples/inputs/salesloft-call.json"));
    inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
    inputs.call_data_record = Some(read_fixture(
        "seed-examples/inputs/salesloft-call-data-record.json",
    ));
    let decision = map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    )
    .expect("no trap")
    .expect("the call maps");
    let ours = decision_json(&mut instance, decision, "the Salesloft guide's example");
    let payload = payload_of(&ours, "the Salesloft guide's example");
    assert_reproduces(
        &example("salesloft-example-payload.json"),
        &payload,
        "",
        "the Salesloft guide's example",
    );
}

#[test]
fn hubspot_guide_example_payload_is_reproduced_with_duration_in_seconds() {
    let mut instance = instance();
    let mut inputs = hubspot_inputs(read_fixture("seed-examples/inputs/hubspot-call.json"));
    inputs.owner = Some(read_fixture("seed-examples/inputs/hubspot-owner.json"));
    let decision = map_hubspot(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Workflow,
    )
    .expect("no trap")
    .expect("the call maps");
    let ours = decision_json(&mut instance, decision, "the HubSpot guide's example");
    let payload = payload_of(&ours, "the HubSpot guide's example");

    // The guide sends `hs_call_duration` as is (1250000 ms) and leaves Kendo
    // to guess the unit; the bridge converts to seconds, as the Push API
    // documents `duration`.
    let mut expected = example("hubspot-example-payload.json");
    assert_eq!(
        expected["duration"], 1_250_000,
        "the guide's example changed"
    );
    expected["duration"] = json!(1250);
    assert_reproduces(&expected, &payload, "", "the HubSpot guide's example");
}

#[test]
fn aloware_guide_example_payload_is_reproduced() {
    let mut instance = instance();
    let delivery = read_fixture("seed-examples/inputs/aloware-delivery.json");
    let Event::Call(event) = read_aloware_event(&mut instance, &delivery)
        .expect("no trap")
        .expect("the delivery reads")
    else {
        panic!("the example delivery is a call event");
    };
    let transcript = read_fixture("seed-examples/inputs/aloware-transcript.txt");
    let rules = rules_from("seed-examples/inputs/aloware-reps.toml");
    let decision = map_aloware(
        &mut instance,
        &event.body,
        Some(&transcript),
        &rules,
        SyncMethod::Webhook,
    )
    .expect("no trap")
    .expect("the call maps");
    let ours = decision_json(&mut instance, decision, "the Aloware guide's example");
    let payload = payload_of(&ours, "the Aloware guide's example");
    assert_reproduces(
        &example("aloware-example-payload.json"),
        &payload,
        "",
        "the Aloware guide's example",
    );
}

#[test]
fn salesloft_call_without_recordings_or_transcript_is_skipped_as_no_media() {
    let mut instance = instance();
    let mut call: Value =
        serde_json::from_str(&read_fixture("seed-examples/inputs/salesloft-call.json")).unwrap();
    call["recordings"] = json!([]);
    let mut inputs = salesloft_inputs(call.to_string());
    inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
    let decision = map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    )
    .expect("no trap")
    .expect("the call maps");
    match decision {
        Decision::Skip(skip) => {
            assert_eq!(skip.code, SkipCode::NoMedia, "{skip}");
            assert!(!skip.detail.trim().is_empty(), "a skip says why");
        }
        other => panic!("expected a no-media skip, got {other:?}"),
    }
}

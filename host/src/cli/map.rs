//! `kendo-bridge map`: one source record through the plugin, printed as the
//! decision and, for a send, the exact Kendo payload.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::value::RawValue;

use kendo_bridge::plugin::{
    Instance, PluginError, aloware, hubspot, kendo, salesloft,
    types::{Decision, InputError, Rules, SyncMethod},
};

use super::{Failure, Globals, display_input, print_line, read_text};

/// Kendo's body limit, when no `[kendo]` configuration sets another.
pub(super) const MAX_BODY_BYTES: u64 = kendo_bridge_core::policy::Policy::DEFAULT
    .kendo
    .max_body_bytes;

const AFTER_HELP: &str = "\
Output (one JSON object on stdout, exit 0):
  {\"decision\":\"send\",\"payload\":{...the Push API body...}}
      plus \"team\":\"...\" (the Kendo team serve would send it to) when --config has a [kendo] section,
      and \"truncated\":{\"originalChars\":N,\"keptChars\":K} when the transcript was cut to fit
      Kendo's body limit (5 MB, or the configuration's kendo.max_body_bytes)
  {\"decision\":\"skip\",\"code\":\"no-media\",\"reason\":\"...\"}
  {\"decision\":\"wait\",\"code\":\"recording-processing\",\"reason\":\"...\"}

Malformed input prints one line on stderr naming the file and the JSON path, and exits 2;
a plugin trap exits 3.

Examples:
  kendo-bridge map --source salesloft call.json --user user.json \\
      --sentences sentences-1.json --sentences sentences-2.json
  kendo-bridge map --source hubspot call.json --owner owner.json --transcript transcript.json \\
      --contacts contacts-batch.json --deals deals-batch.json
  kendo-bridge map --source aloware delivery.json --transcript transcript.txt --config bridge.toml";

/// Which source a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    Salesloft,
    Hubspot,
    Aloware,
}

impl Source {
    /// The source's name as the configuration and the ledger spell it.
    fn name(self) -> &'static str {
        match self {
            Source::Salesloft => "salesloft",
            Source::Hubspot => "hubspot",
            Source::Aloware => "aloware",
        }
    }
}

/// How the bridge learned about the call (sent as `metadata.syncMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    Polling,
    Webhook,
    Workflow,
}

/// Map one source record to a Kendo decision.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct MapArgs {
    /// The source the record comes from.
    #[arg(long, value_enum)]
    source: Source,

    /// The record (JSON): a Salesloft call (bare or as `{"data": ...}`), a
    /// HubSpot call object, or an Aloware webhook delivery (`{event, body}`)
    /// or bare call body. `-` reads stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    file: PathBuf,

    /// How the call was found, sent as `metadata.syncMethod`. Defaults to
    /// `webhook` for Aloware (it has no API to poll) and `polling` otherwise.
    #[arg(long, value_enum, value_name = "METHOD")]
    via: Option<Via>,

    /// Salesloft: the body of `GET /v2/users/{id}` for the call's user. Not
    /// needed when the rep directory in the config covers the rep.
    #[arg(long, value_name = "FILE", help_heading = "Salesloft inputs")]
    user: Option<PathBuf>,

    /// Salesloft: a body of `GET /v2/transcriptions/{id}/sentences`. Repeat
    /// it for each page, in page order.
    #[arg(long, value_name = "FILE", help_heading = "Salesloft inputs")]
    sentences: Vec<PathBuf>,

    /// Salesloft: the call data record for the call (it carries the
    /// direction the call record lacks).
    #[arg(long, value_name = "FILE", help_heading = "Salesloft inputs")]
    call_data_record: Option<PathBuf>,

    /// HubSpot: the body of `GET /crm/v3/owners/{id}`. Not needed when the
    /// rep directory in the config covers the owner.
    #[arg(long, value_name = "FILE", help_heading = "HubSpot inputs")]
    owner: Option<PathBuf>,

    /// HubSpot: the body of `GET /calling/v1/dispositions`, to turn a
    /// disposition GUID into its label (HubSpot's defaults are known
    /// without it).
    #[arg(long, value_name = "FILE", help_heading = "HubSpot inputs")]
    dispositions: Option<PathBuf>,

    /// HubSpot: the body of `POST /crm/v4/associations/calls/contacts/batch/read`
    /// for the call's page, as polling reads it (search results carry no
    /// associations). Ignored when the call has `associations` of its own.
    #[arg(long, value_name = "FILE", help_heading = "HubSpot inputs")]
    contacts: Option<PathBuf>,

    /// HubSpot: the same for `.../calls/deals/batch/read`.
    #[arg(long, value_name = "FILE", help_heading = "HubSpot inputs")]
    deals: Option<PathBuf>,

    /// HubSpot: the body of `GET /crm/v3/extensions/calling/transcripts/{id}`.
    /// Aloware: the transcript as plain text, when it arrived separately.
    #[arg(long, value_name = "FILE", help_heading = "HubSpot and Aloware inputs")]
    transcript: Option<PathBuf>,
}

/// The JSON printed on stdout.
#[derive(Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
enum Output<'a> {
    Send {
        /// The Kendo team `serve` would send it to (with a `[kendo]`
        /// configuration).
        #[serde(skip_serializing_if = "Option::is_none")]
        team: Option<String>,
        payload: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        truncated: Option<Truncated>,
    },
    Skip {
        code: String,
        reason: String,
    },
    Wait {
        code: String,
        reason: String,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Truncated {
    original_chars: u64,
    kept_chars: u64,
}

/// What the plugin said about the record before a payload is built.
// One value per run of the command: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
enum Mapped {
    Decision(Decision),
    /// An Aloware delivery the bridge ignores: printed as a skip whose code
    /// is the ignore code.
    Ignored {
        code: String,
        reason: String,
    },
}

pub fn run(globals: &Globals, args: MapArgs) -> Result<(), Failure> {
    check_inputs_match_source(&args)?;
    let rules = globals.config()?.to_rules();
    let bridge = globals.bridge_config_if_any()?;
    let record = read_text(&args.file)?;
    let described = describe_inputs(&args);
    let plugin = globals.plugin()?;
    let mut instance = plugin
        .instance()
        .map_err(|error| Failure::internal(error.into()))?;

    let mapped = match args.source {
        Source::Salesloft => map_salesloft(&mut instance, &args, record, &rules)?,
        Source::Hubspot => map_hubspot(&mut instance, &args, record, &rules)?,
        Source::Aloware => map_aloware(&mut instance, &args, record, &rules)?,
    }
    .map_err(|error| input_failure(&described, &error))?;

    let printed = match mapped {
        Mapped::Ignored { code, reason } => json_line(&Output::Skip { code, reason })?,
        Mapped::Decision(Decision::Skip(skip)) => json_line(&Output::Skip {
            code: skip.code.to_string(),
            reason: skip.detail,
        })?,
        Mapped::Decision(Decision::Wait(wait)) => json_line(&Output::Wait {
            code: wait.code.to_string(),
            reason: wait.detail,
        })?,
        Mapped::Decision(Decision::Send(call)) => {
            // The same limit and routing `serve` applies.
            let options = kendo::PayloadOptions {
                max_body_bytes: bridge
                    .as_ref()
                    .map_or(MAX_BODY_BYTES, |b| b.kendo.max_body_bytes),
            };
            let team = bridge.as_ref().map(|b| {
                b.route(args.source.name(), call.rep_email.as_deref())
                    .to_string()
            });
            let built = instance
                .call(|bridge, store| {
                    bridge
                        .kendo_bridge_kendo()
                        .call_build_ingest(store, &call, options)
                })
                .map_err(|error| trap_failure(&args.file, error))?
                .map_err(|error| {
                    Failure::usage(anyhow!(
                        "the call in {} cannot become a Kendo payload: {}",
                        display_input(&args.file),
                        error.explain()
                    ))
                })?;
            let payload = RawValue::from_string(built.body).map_err(|error| {
                Failure::internal(anyhow!(
                    "the plugin built a payload that is not JSON: {error}"
                ))
            })?;
            json_line(&Output::Send {
                team,
                payload: &payload,
                truncated: built.truncated.map(|cut| Truncated {
                    original_chars: cut.original_chars,
                    kept_chars: cut.kept_chars,
                }),
            })?
        }
    };
    print_line(&printed)
}

fn json_line(output: &Output<'_>) -> Result<String, Failure> {
    serde_json::to_string(output).map_err(|error| Failure::internal(error.into()))
}

fn sync_method(args: &MapArgs) -> SyncMethod {
    let via = args.via.unwrap_or(match args.source {
        Source::Aloware => Via::Webhook,
        Source::Salesloft | Source::Hubspot => Via::Polling,
    });
    match via {
        Via::Polling => SyncMethod::Polling,
        Via::Webhook => SyncMethod::Webhook,
        Via::Workflow => SyncMethod::Workflow,
    }
}

/// An input that belongs to another source is a mistake worth stopping for:
/// it would otherwise be silently ignored.
fn check_inputs_match_source(args: &MapArgs) -> Result<(), Failure> {
    let given: [(&str, bool, &[Source]); 8] = [
        ("--user", args.user.is_some(), &[Source::Salesloft]),
        (
            "--sentences",
            !args.sentences.is_empty(),
            &[Source::Salesloft],
        ),
        (
            "--call-data-record",
            args.call_data_record.is_some(),
            &[Source::Salesloft],
        ),
        ("--owner", args.owner.is_some(), &[Source::Hubspot]),
        (
            "--dispositions",
            args.dispositions.is_some(),
            &[Source::Hubspot],
        ),
        (
            "--transcript",
            args.transcript.is_some(),
            &[Source::Hubspot, Source::Aloware],
        ),
        ("--contacts", args.contacts.is_some(), &[Source::Hubspot]),
        ("--deals", args.deals.is_some(), &[Source::Hubspot]),
    ];
    for (flag, present, sources) in given {
        if present && !sources.contains(&args.source) {
            let source = args
                .source
                .to_possible_value()
                .map(|value| value.get_name().to_owned())
                .unwrap_or_default();
            return Err(Failure::usage(anyhow!(
                "{flag} is not an input for --source {source}"
            )));
        }
    }
    Ok(())
}

/// `call.json (with --user user.json, --sentences s1.json)`, so an input
/// error points at the files that went in.
fn describe_inputs(args: &MapArgs) -> String {
    let mut extra: Vec<String> = Vec::new();
    let mut add = |flag: &str, path: &Path| extra.push(format!("{flag} {}", display_input(path)));
    if let Some(path) = &args.user {
        add("--user", path);
    }
    for path in &args.sentences {
        add("--sentences", path);
    }
    if let Some(path) = &args.call_data_record {
        add("--call-data-record", path);
    }
    if let Some(path) = &args.owner {
        add("--owner", path);
    }
    if let Some(path) = &args.dispositions {
        add("--dispositions", path);
    }
    if let Some(path) = &args.transcript {
        add("--transcript", path);
    }
    if let Some(path) = &args.contacts {
        add("--contacts", path);
    }
    if let Some(path) = &args.deals {
        add("--deals", path);
    }
    let file = display_input(&args.file);
    if extra.is_empty() {
        file
    } else {
        format!("{file} (with {})", extra.join(", "))
    }
}

fn input_failure(described: &str, error: &InputError) -> Failure {
    Failure::usage(anyhow!("cannot map {described}: {}", error.explain()))
}

fn trap_failure(file: &Path, error: PluginError) -> Failure {
    match error {
        PluginError::Trap { message } => Failure::trap(anyhow!(
            "the plugin trapped while mapping {}: {message}",
            display_input(file)
        )),
        other => Failure::internal(other.into()),
    }
}

fn read_optional(path: Option<&PathBuf>) -> Result<Option<String>, Failure> {
    path.map(|path| read_text(path)).transpose()
}

type MapResult = Result<Result<Mapped, InputError>, Failure>;

fn map_salesloft(
    instance: &mut Instance,
    args: &MapArgs,
    record: String,
    rules: &Rules,
) -> MapResult {
    let inputs = salesloft::CallInputs {
        call: unwrap_data_envelope(record),
        user: read_optional(args.user.as_ref())?,
        sentences: args
            .sentences
            .iter()
            .map(|path| read_text(path))
            .collect::<Result<_, _>>()?,
        call_data_record: read_optional(args.call_data_record.as_ref())?,
    };
    let via = sync_method(args);
    let decision = instance
        .call(|bridge, store| {
            bridge
                .kendo_bridge_salesloft()
                .call_map_call(store, &inputs, rules, via)
        })
        .map_err(|error| trap_failure(&args.file, error))?;
    Ok(decision.map(Mapped::Decision))
}

fn map_hubspot(
    instance: &mut Instance,
    args: &MapArgs,
    record: String,
    rules: &Rules,
) -> MapResult {
    let inputs = hubspot::CallInputs {
        call: record,
        owner: read_optional(args.owner.as_ref())?,
        dispositions: read_optional(args.dispositions.as_ref())?,
        transcript: read_optional(args.transcript.as_ref())?,
        contacts: read_optional(args.contacts.as_ref())?,
        deals: read_optional(args.deals.as_ref())?,
    };
    let via = sync_method(args);
    let decision = instance
        .call(|bridge, store| {
            bridge
                .kendo_bridge_hubspot()
                .call_map_call(store, &inputs, rules, via)
        })
        .map_err(|error| trap_failure(&args.file, error))?;
    Ok(decision.map(Mapped::Decision))
}

fn map_aloware(
    instance: &mut Instance,
    args: &MapArgs,
    record: String,
    rules: &Rules,
) -> MapResult {
    let transcript = read_optional(args.transcript.as_ref())?;
    let via = sync_method(args);
    let body = if is_aloware_envelope(&record) {
        let event = instance
            .call(|bridge, store| {
                bridge
                    .kendo_bridge_aloware()
                    .call_read_event(store, &record)
            })
            .map_err(|error| trap_failure(&args.file, error))?;
        match event {
            Err(error) => return Ok(Err(error)),
            Ok(aloware::Event::Call(call)) => call.body,
            Ok(aloware::Event::Ignore(ignored)) => {
                return Ok(Ok(Mapped::Ignored {
                    code: ignored.code.to_string(),
                    reason: ignored.detail,
                }));
            }
            Ok(aloware::Event::Transcript(event)) => {
                return Err(Failure::usage(anyhow!(
                    "{} is a `{}` delivery carrying the transcript of call {}, not a call: \
                     map the call's own delivery and pass the transcript text with --transcript",
                    display_input(&args.file),
                    event.name,
                    event.call_id
                )));
            }
        }
    } else {
        record
    };
    // What the bridge does once its bounded wait for a transcript is over
    // (or at once, with `--transcript`): the call and its payload.
    let decision = instance
        .call(|bridge, store| {
            bridge.kendo_bridge_aloware().call_map_call(
                store,
                &body,
                transcript.as_deref(),
                false,
                rules,
                via,
            )
        })
        .map_err(|error| trap_failure(&args.file, error))?;
    Ok(decision.map(Mapped::Decision))
}

/// A webhook delivery (`{"event": ..., "body": ...}` or the settings page's
/// `{"test_payload": true}`) rather than a bare call body. Anything that does
/// not parse is left to the plugin, whose error names line and column.
fn is_aloware_envelope(record: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(record) {
        Ok(serde_json::Value::Object(object)) => {
            object.contains_key("event") || object.contains_key("test_payload")
        }
        _ => false,
    }
}

/// `GET /v2/activities/calls/{id}` answers `{"data": {...}}`; the plugin
/// wants the call record itself, passed on byte for byte.
fn unwrap_data_envelope(record: String) -> String {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    match serde_json::from_str::<Envelope<'_>>(&record) {
        Ok(envelope) if envelope.data.get().trim_start().starts_with('{') => {
            envelope.data.get().to_owned()
        }
        _ => record,
    }
}

//! `kendo-bridge plugin`: check a team's mapper against the fixture calls
//! (and the team's own), write a starter mapper, or compose the bridge with
//! a mapper for Spin.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use serde::Deserialize;

use kendo_bridge::config::Config;
use kendo_bridge::plugin::{
    Instance, Plugin, PluginError, aloware, hubspot, kendo, salesloft,
    types::{Decision, Rules, SkipCode, SyncMethod, WaitCode},
};

use super::{Failure, Globals, print_line};

/// Every file under `tests/fixtures/`, embedded by `build.rs`.
static FIXTURES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

const MANIFEST: &str = "mapping-cases.toml";

const AFTER_HELP: &str = "\
Examples:
  # Start a mapper in Python, build it, check it, try it on one call:
  kendo-bridge plugin new --lang python my-mapper
  (cd my-mapper && ./build.sh)
  kendo-bridge plugin check my-mapper/mapper.wasm
  kendo-bridge map --mapper my-mapper/mapper.wasm --source salesloft call.json

  # Check it on your own calls too (repeat --call):
  kendo-bridge plugin check mapper.wasm --call salesloft=call.json --call hubspot=other.json

  # The bridge with the mapper plugged in, for Spin's [component.bridge.dependencies]:
  kendo-bridge plugin compose mapper.wasm -o bridge-plugin.wasm";

/// `plugin`'s subcommands.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PluginCommand {
    /// Load a mapper, run the built-in mapping cases (and `--call`s) through
    /// it beside the built-in decision, and exit 1 on a refused import, a
    /// trap, a time-out or a payload Kendo would refuse.
    Check(CheckArgs),
    /// Write a starter mapper in DIR that builds with one command
    /// (`./build.sh`, writing DIR/mapper.wasm).
    New(NewArgs),
    /// Write the built-in bridge component with a mapper plugged in: what
    /// spin.toml's `[component.bridge.dependencies]` points at.
    Compose(ComposeArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The mapper component (exports `kendo:bridge/mapper`).
    file: PathBuf,
    /// One of your own calls as SOURCE=FILE (salesloft, hubspot or aloware;
    /// the record as the source's API or webhook sends it), mapped with
    /// `--config`'s rules. Repeatable.
    #[arg(long = "call", value_name = "SOURCE=FILE")]
    calls: Vec<String>,
    /// How long one call may run before it counts as a time-out.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    time_limit: Duration,
}

#[derive(Debug, clap::Args)]
struct NewArgs {
    /// The language of the mapper.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The directory to create (it must not exist, or be empty).
    dir: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Lang {
    Rust,
    Js,
    Python,
}

#[derive(Debug, clap::Args)]
struct ComposeArgs {
    /// The mapper component.
    mapper: PathBuf,
    /// Where to write the composed bridge component.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(globals: &Globals, args: PluginArgs) -> Result<(), Failure> {
    match args.command {
        PluginCommand::Check(args) => check(globals, args),
        PluginCommand::New(args) => new(args),
        PluginCommand::Compose(args) => compose(args),
    }
}

// ---- check ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    salesloft: Vec<Case>,
    #[serde(default)]
    hubspot: Vec<Case>,
    #[serde(default)]
    aloware: Vec<Case>,
}

/// One case of `tests/fixtures/mapping-cases.toml` (see its header).
#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    call: String,
    user: Option<String>,
    #[serde(default)]
    sentences: Vec<String>,
    call_data_record: Option<String>,
    owner: Option<String>,
    dispositions: Option<String>,
    transcript: Option<String>,
    config: Option<String>,
    via: Option<String>,
}

/// A call to map, whichever way it was given.
struct Job {
    label: String,
    source: &'static str,
    call: String,
    case: Option<Case>,
    rules: Rules,
}

/// What one side said about a call, in one short line.
#[derive(Debug, PartialEq)]
enum Said {
    Send {
        title: String,
        rep: String,
        metadata: Vec<(String, String)>,
    },
    /// The code, and the reason when the mapper gave it.
    Skip(String),
    Wait(String),
    Ignored(String),
    InputError(String),
    Trap(String),
    TimedOut,
}

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Said::Send {
                title,
                rep,
                metadata,
            } => write!(f, "send {title:?} as {rep} ({} metadata)", metadata.len()),
            Said::Skip(code) => write!(f, "skip ({code})"),
            Said::Wait(code) => write!(f, "wait ({code})"),
            Said::Ignored(code) => write!(f, "ignored ({code})"),
            Said::InputError(_) => f.write_str("input error"),
            Said::Trap(_) => f.write_str("TRAP"),
            Said::TimedOut => f.write_str("TIME-OUT"),
        }
    }
}

fn check(globals: &Globals, args: CheckArgs) -> Result<(), Failure> {
    let mapper = match Plugin::with_mapper_file(&args.file) {
        Ok(plugin) => plugin,
        Err(error) => {
            print_line(&format!("FAIL {}: {error}", args.file.display()))?;
            return Err(Failure::rejected(anyhow!(
                "the mapper {} cannot be loaded",
                args.file.display()
            )));
        }
    };
    print_line(&format!(
        "loaded {} ({} KB composed, {:.0?} to compile or load)",
        args.file.display(),
        mapper.component_size() / 1024,
        mapper.load_stats().elapsed
    ))?;
    let builtin = Plugin::embedded().map_err(|error| Failure::internal(error.into()))?;
    let mut builtin = builtin
        .instance()
        .map_err(|error| Failure::internal(error.into()))?;
    let mut instance = mapper
        .instance()
        .map_err(|error| Failure::internal(error.into()))?;
    instance.set_call_time_limit(args.time_limit);

    let mut jobs = fixture_jobs().map_err(Failure::internal)?;
    let own_rules = globals.config()?.to_rules();
    for given in &args.calls {
        jobs.push(own_job(given, &own_rules)?);
    }

    let (mut failures, mut changed) = (0usize, 0usize);
    let mut times = Vec::new();
    for job in &jobs {
        let (before, _) = map_job(&mut builtin, job);
        let started = Instant::now();
        let (after, decision) = map_job(&mut instance, job);
        let elapsed = started.elapsed();
        times.push(elapsed);
        let mut problem = match &after {
            Said::Trap(message) => Some(format!("the mapper trapped: {message}")),
            Said::TimedOut => Some(format!(
                "the mapper ran past the {:?} limit",
                args.time_limit
            )),
            _ => None,
        };
        if let Some(Decision::Send(call)) = &decision {
            problem = problem.or_else(|| invalid_payload(&mut instance, call));
        }
        let mark = if problem.is_some() {
            failures += 1;
            "FAIL"
        } else if before != after {
            changed += 1;
            "CHANGED"
        } else {
            "same"
        };
        print_line(&format!(
            "{mark:7} {:55} built-in: {before}  mapper: {after}  ({elapsed:.2?})",
            job.label
        ))?;
        if let (Said::Send { metadata: old, .. }, Said::Send { metadata: new, .. }) =
            (&before, &after)
        {
            let added: Vec<String> = new
                .iter()
                .filter(|entry| !old.contains(entry))
                .map(|(key, value)| format!("+{key}={value}"))
                .chain(
                    old.iter()
                        .filter(|entry| !new.contains(entry))
                        .map(|(key, _)| format!("-{key}")),
                )
                .collect();
            if !added.is_empty() {
                print_line(&format!("        metadata: {}", added.join(" ")))?;
            }
        }
        if let Some(problem) = problem {
            print_line(&format!("        {problem}"))?;
        }
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let max = times.last().copied().unwrap_or_default();
    print_line(&format!(
        "{} calls: {changed} changed by the mapper, {failures} failed; per call (bridge and \
         mapper) median {median:.2?}, max {max:.2?}",
        jobs.len()
    ))?;
    if failures > 0 {
        return Err(Failure::rejected(anyhow!(
            "{failures} of {} calls failed with the mapper {}",
            jobs.len(),
            args.file.display()
        )));
    }
    Ok(())
}

fn fixture(path: &str) -> anyhow::Result<&'static str> {
    FIXTURES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, text)| *text)
        .ok_or_else(|| anyhow!("the built-in fixture {path} is missing"))
}

fn fixture_jobs() -> anyhow::Result<Vec<Job>> {
    let manifest: Manifest = toml::from_str(fixture(MANIFEST)?).context(MANIFEST)?;
    let mut jobs = Vec::new();
    for (source, cases) in [
        ("salesloft", manifest.salesloft),
        ("hubspot", manifest.hubspot),
        ("aloware", manifest.aloware),
    ] {
        for case in cases {
            let rules = match &case.config {
                Some(path) => Config::parse(fixture(path)?, Path::new(path))?.to_rules(),
                None => Config::default().to_rules(),
            };
            jobs.push(Job {
                label: format!("{source}/{}", case.name),
                source,
                call: fixture(&case.call)?.to_owned(),
                case: Some(case),
                rules,
            });
        }
    }
    Ok(jobs)
}

fn own_job(given: &str, rules: &Rules) -> Result<Job, Failure> {
    let (source, path) = given.split_once('=').ok_or_else(|| {
        Failure::usage(anyhow!(
            "--call {given}: write SOURCE=FILE, e.g. salesloft=call.json"
        ))
    })?;
    let source = match source {
        "salesloft" => "salesloft",
        "hubspot" => "hubspot",
        "aloware" => "aloware",
        other => {
            return Err(Failure::usage(anyhow!(
                "--call {given}: {other:?} is not a source (salesloft, hubspot or aloware)"
            )));
        }
    };
    let call = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {path}"))
        .map_err(Failure::usage)?;
    Ok(Job {
        label: format!("{source}={path}"),
        source,
        call,
        case: None,
        rules: rules.clone(),
    })
}

/// Maps one call: what it said in short, and the decision itself.
fn map_job(instance: &mut Instance, job: &Job) -> (Said, Option<Decision>) {
    let case = job.case.as_ref();
    let optional = |path: Option<&String>| path.and_then(|p| fixture(p).ok()).map(str::to_owned);
    let via = |default| match case.and_then(|c| c.via.as_deref()) {
        Some("webhook") => SyncMethod::Webhook,
        Some("workflow") => SyncMethod::Workflow,
        Some("polling") => SyncMethod::Polling,
        _ => default,
    };
    let rules = &job.rules;
    let result = match job.source {
        "salesloft" => {
            let inputs = salesloft::CallInputs {
                call: job.call.clone(),
                user: optional(case.and_then(|c| c.user.as_ref())),
                sentences: case
                    .map(|c| {
                        c.sentences
                            .iter()
                            .filter_map(|p| optional(Some(p)))
                            .collect()
                    })
                    .unwrap_or_default(),
                call_data_record: optional(case.and_then(|c| c.call_data_record.as_ref())),
            };
            instance.call(|bridge, store| {
                bridge.kendo_bridge_salesloft().call_map_call(
                    store,
                    &inputs,
                    rules,
                    via(SyncMethod::Polling),
                )
            })
        }
        "hubspot" => {
            let inputs = hubspot::CallInputs {
                call: job.call.clone(),
                owner: optional(case.and_then(|c| c.owner.as_ref())),
                dispositions: optional(case.and_then(|c| c.dispositions.as_ref())),
                transcript: optional(case.and_then(|c| c.transcript.as_ref())),
                contacts: None,
                deals: None,
            };
            instance.call(|bridge, store| {
                bridge.kendo_bridge_hubspot().call_map_call(
                    store,
                    &inputs,
                    rules,
                    via(SyncMethod::Polling),
                )
            })
        }
        _ => {
            let event = instance.call(|bridge, store| {
                bridge
                    .kendo_bridge_aloware()
                    .call_read_event(store, &job.call)
            });
            let body = match event {
                Ok(Ok(aloware::Event::Call(event))) => event.body,
                Ok(Ok(aloware::Event::Ignore(ignored))) => {
                    return (Said::Ignored(ignored.code.to_string()), None);
                }
                Ok(Ok(aloware::Event::Transcript(_))) => {
                    return (Said::Ignored("transcript-event".into()), None);
                }
                // A bare body rather than a delivery envelope.
                Ok(Err(_)) => job.call.clone(),
                Err(error) => return (trapped(error), None),
            };
            let transcript = optional(case.and_then(|c| c.transcript.as_ref()));
            instance.call(|bridge, store| {
                bridge.kendo_bridge_aloware().call_map_call(
                    store,
                    &body,
                    transcript.as_deref(),
                    false,
                    rules,
                    via(SyncMethod::Webhook),
                )
            })
        }
    };
    match result {
        Ok(Ok(decision)) => {
            let said = match &decision {
                Decision::Send(call) => Said::Send {
                    title: call.title.clone(),
                    rep: call.rep_email.clone().unwrap_or_default(),
                    metadata: call.metadata.clone(),
                },
                Decision::Skip(skip) if skip.code == SkipCode::ByMapper => {
                    Said::Skip(format!("{}: {}", skip.code, skip.detail))
                }
                Decision::Skip(skip) => Said::Skip(skip.code.to_string()),
                Decision::Wait(wait) if wait.code == WaitCode::ByMapper => {
                    Said::Wait(format!("{}: {}", wait.code, wait.detail))
                }
                Decision::Wait(wait) => Said::Wait(wait.code.to_string()),
            };
            (said, Some(decision))
        }
        Ok(Err(error)) => (Said::InputError(error.explain().to_string()), None),
        Err(error) => (trapped(error), None),
    }
}

fn trapped(error: PluginError) -> Said {
    match error {
        PluginError::Trap { message } if message.contains("and was stopped") => Said::TimedOut,
        other => Said::Trap(other.to_string()),
    }
}

/// Why Kendo would refuse the call the mapper sends, if it would.
fn invalid_payload(
    instance: &mut Instance,
    call: &kendo_bridge::plugin::types::Call,
) -> Option<String> {
    let options = kendo::PayloadOptions {
        max_body_bytes: super::map::MAX_BODY_BYTES,
    };
    match instance.call(|bridge, store| {
        bridge
            .kendo_bridge_kendo()
            .call_build_ingest(store, call, options)
    }) {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(format!("invalid payload: {}", error.explain())),
        Err(error) => Some(format!("building the payload trapped: {error}")),
    }
}

// ---- new -----------------------------------------------------------------

/// The starter files of each language, relative to DIR.
fn template(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            (
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml.in"),
            ),
            (
                "src/lib.rs",
                include_str!("../../templates/rust/src/lib.rs"),
            ),
            ("build.sh", include_str!("../../templates/rust/build.sh")),
        ],
        Lang::Js => &[
            ("mapper.js", include_str!("../../templates/js/mapper.js")),
            (
                "package.json",
                include_str!("../../templates/js/package.json"),
            ),
            ("build.mjs", include_str!("../../templates/js/build.mjs")),
            ("build.sh", include_str!("../../templates/js/build.sh")),
        ],
        Lang::Python => &[
            ("app.py", include_str!("../../templates/python/app.py")),
            ("build.sh", include_str!("../../templates/python/build.sh")),
        ],
    }
}

/// The contract, written beside every starter as `wit/mapper.wit`.
const MAPPER_WIT: &str = include_str!("../../../wit/mapper.wit");

fn new(args: NewArgs) -> Result<(), Failure> {
    let dir = &args.dir;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::usage(anyhow!(
            "{} already exists and is not empty",
            dir.display()
        )));
    }
    let mut files: Vec<(&str, &str)> = template(args.lang).to_vec();
    files.push(("wit/mapper.wit", MAPPER_WIT));
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))
                .map_err(Failure::usage)?;
        }
        std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::usage)?;
        #[cfg(unix)]
        if relative.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))
                .map_err(Failure::usage)?;
        }
    }
    let needs = match args.lang {
        Lang::Rust => "rustup target add wasm32-wasip2",
        Lang::Js => "Node.js 18 or newer (build.sh installs componentize-js with npm)",
        Lang::Python => "Python 3.10 or newer (build.sh installs componentize-py with pip)",
    };
    print_line(&format!(
        "wrote a starter mapper in {dir}; needs {needs}.\n\
         build it:   (cd {dir} && ./build.sh)        # writes {dir}/mapper.wasm\n\
         check it:   kendo-bridge plugin check {dir}/mapper.wasm\n\
         run it:     kendo-bridge serve --config bridge.toml --mapper {dir}/mapper.wasm",
        dir = dir.display()
    ))
}

// ---- compose -------------------------------------------------------------

fn compose(args: ComposeArgs) -> Result<(), Failure> {
    let mapper = std::fs::read(&args.mapper)
        .with_context(|| format!("cannot read {}", args.mapper.display()))
        .map_err(Failure::usage)?;
    // Loading first refuses a forbidden import here rather than in Spin.
    Plugin::with_mapper(
        &mapper,
        &args.mapper.display().to_string(),
        &kendo_bridge::plugin::CacheLocation::Default,
    )
    .map_err(|error| Failure::usage(error.into()))?;
    let composed = kendo_bridge::compose::plug_mapper(Plugin::socket_bytes(), &mapper)
        .map_err(|error| Failure::usage(anyhow!("{}: {error}", args.mapper.display())))?;
    std::fs::write(&args.out, composed)
        .with_context(|| format!("cannot write {}", args.out.display()))
        .map_err(Failure::usage)?;
    print_line(&format!("wrote {}", args.out.display()))
}

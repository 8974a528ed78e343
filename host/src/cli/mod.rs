//! The command line: a clap root with one module per subcommand.
//!
//! Exit codes are part of the interface, so scripts can branch on them:
//! 0 done, 1 a negative answer (a signature that does not verify) or a
//! failure of the bridge itself, 2 a problem with what was given (a missing
//! file, malformed JSON, a bad config, a usage error), 3 the plugin trapped.

mod backfill;
mod deliveries;
mod demo;
mod doctor;
mod map;
mod ops;
mod plugin;
mod redecide;
mod replay;
mod serve;
mod settle;
mod status;
mod sync;
mod verify;

use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use kendo_bridge::config::Config;
use kendo_bridge::plugin::Plugin;

const AFTER_HELP: &str = "\
Examples:
  # What would be sent to Kendo for a Salesloft call, with its user:
  kendo-bridge map --source salesloft call.json --user user.json

  # The same with your team's mapper plugged in (see `kendo-bridge plugin --help`):
  kendo-bridge map --mapper my-mapper.wasm --source salesloft call.json --user user.json

  # The same for a HubSpot call, resolving its disposition GUID:
  kendo-bridge map --source hubspot call.json --owner owner.json --dispositions dispositions.json

  # An Aloware webhook delivery read from stdin, with the rep directory:
  kendo-bridge map --source aloware --config bridge.toml - < delivery.json

  # Check a Kendo webhook signature:
  KENDO_WEBHOOK_SECRET=... kendo-bridge verify --scheme kendo --secret-env KENDO_WEBHOOK_SECRET \\
      --header 'X-Kendo-Signature: sha256=...' body.json

Exit codes: 0 done, 1 not valid (verify) or an internal failure, 2 bad input or usage,
3 the plugin trapped. Set RUST_LOG=debug for a trace on stderr.";

/// Moves finished sales calls from Salesloft, HubSpot and Aloware into
/// KendoAI's Push API, and checks the signed webhooks that come back.
#[derive(Debug, Parser)]
#[command(name = "kendo-bridge", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Load this WebAssembly component instead of the built-in plugin. It
    /// must implement the `kendo:bridge/bridge` world (see `wit/`); the host
    /// gives it no files, network or environment, a fixed clock and seeded
    /// randomness. To change only the decisions, use `--mapper`.
    #[arg(long, global = true, value_name = "FILE", env = "KENDO_BRIDGE_PLUGIN")]
    plugin: Option<PathBuf>,

    /// Plug this mapper component into the plugin in place of the default
    /// one (overrides the config's `mapper = ...`). It must export
    /// `kendo:bridge/mapper` (see wit/mapper.wit and `plugin new`); it gets
    /// no files or network, a fixed clock and seeded randomness.
    #[arg(long, global = true, value_name = "FILE", env = "KENDO_BRIDGE_MAPPER")]
    mapper: Option<PathBuf>,

    /// The configuration file (TOML): `[rules]` (title template, minimum
    /// duration, allowed dispositions) and `[[reps]]` (the rep directory).
    /// Without it, every rule has its default and the directory is empty.
    #[arg(long, global = true, value_name = "FILE", env = "KENDO_BRIDGE_CONFIG")]
    config: Option<PathBuf>,

    /// How log lines on stderr look: `text` for people, `json` (one object
    /// a line) for log collectors. Which lines appear is set by `RUST_LOG`
    /// (default `warn`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "KENDO_BRIDGE_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// See `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what the bridge would do with one source record: the Kendo
    /// payload it would send, or why it skips or waits.
    Map(map::MapArgs),
    /// Check a webhook request's signature the way the webhook server does.
    Verify(verify::VerifyArgs),
    /// Run the bridge: pollers, webhook server and paced delivery to Kendo.
    Serve(serve::ServeArgs),
    /// Poll the sources and deliver what is due (`--once`: one cycle, then exit).
    Sync(sync::SyncArgs),
    /// Read a source from a date and deliver it, with progress and an ETA.
    Backfill(backfill::BackfillArgs),
    /// Show checkpoints, queues, counts per team and the latest errors.
    Status(status::StatusArgs),
    /// List recent deliveries: source id, Kendo callId, state, AI score.
    Deliveries(deliveries::DeliveriesArgs),
    /// Put dead letters back in the queue.
    Replay(replay::ReplayArgs),
    /// Decide skipped calls again under the current rules ([rules], [[reps]]).
    Redecide(redecide::RedecideArgs),
    /// Lift the pause of a team whose key Kendo refused.
    Resume(replay::ResumeArgs),
    /// Settle a call parked as outcome-unknown (Kendo's answer was lost):
    /// mark it sent, or send it again.
    Settle(settle::SettleArgs),
    /// Run the bridge end to end against simulated services (no account needed).
    Demo(demo::DemoArgs),
    /// Check the configuration against the real accounts, sending nothing.
    Doctor(doctor::DoctorArgs),
    /// Write your own mapping: check a mapper, start a new one, or compose
    /// the bridge with one for Spin.
    Plugin(plugin::PluginArgs),
}

/// Settings every subcommand may use.
pub struct Globals {
    plugin: Option<PathBuf>,
    mapper: Option<PathBuf>,
    config: Option<PathBuf>,
}

impl Globals {
    /// The plugin to run: `--plugin FILE` or the built-in one, with
    /// `--mapper FILE` (else the config's `mapper = ...`) plugged in.
    fn plugin(&self) -> Result<Plugin, Failure> {
        let mapper = match &self.mapper {
            Some(path) => Some(path.clone()),
            None => self.configured_mapper()?,
        };
        if self.plugin.is_none() && mapper.is_none() {
            return Plugin::embedded().map_err(|error| Failure::internal(error.into()));
        }
        Plugin::load(self.plugin.as_deref(), mapper.as_deref())
            .map_err(|error| Failure::usage(anyhow::Error::new(error)))
    }

    /// The config file's top-level `mapper = ...`, if it has one.
    fn configured_mapper(&self) -> Result<Option<PathBuf>, Failure> {
        let Some(path) = &self.config else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::usage)?;
        let table = toml::from_str::<toml::Table>(&text).unwrap_or_default();
        Ok(table
            .get("mapper")
            .and_then(toml::Value::as_str)
            .map(PathBuf::from))
    }

    /// The whole bridge configuration, when `--config` names a file with a
    /// `[kendo]` section (a rules-only file, or none, gives `None`): what
    /// `map` needs to apply the same body limit and team routing as `serve`.
    fn bridge_config_if_any(&self) -> Result<Option<kendo_bridge::config::BridgeConfig>, Failure> {
        let Some(path) = &self.config else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(Failure::usage)?;
        let has_kendo = toml::from_str::<toml::Table>(&text)
            .map(|t| t.contains_key("kendo"))
            .unwrap_or(false);
        if !has_kendo {
            return Ok(None);
        }
        kendo_bridge::config::BridgeConfig::load(path)
            .map(Some)
            .map_err(|error| Failure::usage(error.into()))
    }

    /// `--config FILE`, or the defaults.
    fn config(&self) -> Result<Config, Failure> {
        match &self.config {
            Some(path) => Config::load(path).map_err(|error| Failure::usage(error.into())),
            None => Ok(Config::default()),
        }
    }
}

/// A failed command: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    label: &'static str,
    error: anyhow::Error,
}

impl Failure {
    /// Exit 2: the input, a file or the command line is wrong.
    fn usage(error: anyhow::Error) -> Failure {
        Failure {
            code: 2,
            label: "error",
            error,
        }
    }

    /// Exit 1: the answer is no (a signature that does not verify).
    fn rejected(error: anyhow::Error) -> Failure {
        Failure {
            code: 1,
            label: "invalid",
            error,
        }
    }

    /// Exit 1: the bridge itself failed.
    fn internal(error: anyhow::Error) -> Failure {
        Failure {
            code: 1,
            label: "error",
            error,
        }
    }

    /// Exit 3: the plugin trapped.
    fn trap(error: anyhow::Error) -> Failure {
        Failure {
            code: 3,
            label: "error",
            error,
        }
    }
}

/// Parses the command line, runs the subcommand and returns its exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let globals = Globals {
        plugin: cli.plugin,
        mapper: cli.mapper,
        config: cli.config,
    };
    let outcome = match cli.command {
        Command::Map(args) => map::run(&globals, args),
        Command::Plugin(args) => plugin::run(&globals, args),
        Command::Verify(args) => verify::run(&globals, args),
        Command::Serve(args) => serve::run(&globals, args),
        Command::Sync(args) => sync::run(&globals, args),
        Command::Backfill(args) => backfill::run(&globals, args),
        Command::Status(args) => status::run(&globals, args),
        Command::Deliveries(args) => deliveries::run(&globals, args),
        Command::Replay(args) => replay::run(&globals, args),
        Command::Redecide(args) => redecide::run(&globals, args),
        Command::Resume(args) => replay::resume(&globals, args),
        Command::Settle(args) => settle::run(&globals, args),
        Command::Demo(args) => demo::run(&globals, args),
        Command::Doctor(args) => doctor::run(&globals, args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}: {:#}", failure.label, failure.error);
            ExitCode::from(failure.code)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(filter);
    // A second initialisation (never expected here) is not worth failing for.
    let _ignored = match format {
        LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).try_init(),
        // Every field of an event (source, id, team, ...) becomes a key of
        // its object, so a collector can filter on a call's id.
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Prints one line on stdout. A closed pipe (`| head`) is an error to
/// report, not a panic.
fn print_line(line: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
        .map_err(Failure::internal)
}

/// A file argument: a path, or `-` for stdin.
fn display_input(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads a file argument (`-` is stdin) as raw bytes.
fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    if is_stdin(path) {
        let mut bytes = Vec::new();
        io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read stdin")
            .map_err(Failure::usage)?;
        return Ok(bytes);
    }
    std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::usage)
}

/// Reads a file argument (`-` is stdin) as UTF-8 text.
fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|error| {
        Failure::usage(anyhow::anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            display_input(path),
            error.utf8_error().valid_up_to()
        ))
    })
}

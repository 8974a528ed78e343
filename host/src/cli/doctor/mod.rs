//! `kendo-bridge doctor`: the configuration checked against the real
//! accounts before going live, without sending a call.

use std::path::Path;

use clap::Args;
use serde::Serialize;

use kendo_bridge::clock::Clock;
use kendo_bridge::config::{BridgeConfig, HubspotSignature, SecretRef};
use kendo_bridge::engine::Engine;
use kendo_bridge::sources::SourceError;
use kendo_bridge::sources::write_back::HubspotWriteBack;
use kendo_bridge_core::ledger::connection;

use super::{Failure, Globals, ops};

mod hubspot;
mod salesloft;
mod write_back;

const AFTER_HELP: &str = "\
Prints one line per check, graded:

  ok    the check passed;
  WARN  an optional part does not work; the bridge works without it (HubSpot's
        dispositions: the default outcome labels are used; transcripts: calls go with
        their recording);
  FAIL  the bridge cannot work as configured; the line says what to fix.

Exits 0 when nothing FAILs (1 otherwise); with --strict, a WARN exits 1 too. --json prints
the same checks as one JSON object ({\"checks\": [{\"name\", \"grade\", \"detail\"}], \"ok\",
\"warn\", \"fail\"}) for scripts, with the same exit code.

The checks:

  - every secret the configuration names is set (environment variable or file);
  - each Kendo team key has the `pk_...` shape Kendo issues (Kendo documents no way to
    check a key without sending a call, so its acceptance shows on the first send);
  - the state database can be opened and written;
  - each enabled webhook route has its secret (Aloware may instead set
    allow_unauthenticated), and HubSpot workflow signatures (v2/v3, which sign the full
    URL) have server.public_url;
  - each source's credential is accepted for every read the bridge makes (Salesloft calls,
    call data records, users, transcriptions when on; HubSpot calls search, owners,
    dispositions; with hubspot.write_back, the Kendo properties and their types), naming
    the scope a refused read needs.

The live reads use a private in-memory state: a running `serve` on the same database is
not disturbed, and nothing is sent to Kendo.

Examples:
  kendo-bridge doctor --config bridge.toml
  kendo-bridge doctor --config bridge.toml --strict
  kendo-bridge doctor --config bridge.toml --json";

/// Check the configuration against the real accounts, sending nothing.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DoctorArgs {
    /// Exit 1 on a WARN (an optional part not working) as well as on a FAIL.
    #[arg(long)]
    pub strict: bool,
    /// Print the checks as one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// One of the live checks against a source: its name, whether the bridge
/// works without it, and what it found (or why it failed).
pub struct DoctorCheck {
    pub name: String,
    /// The bridge works without this part (HubSpot's dispositions fall back
    /// to the default labels, transcripts to the recording): a failure is a
    /// warning, not a failure of the bridge.
    pub optional: bool,
    pub outcome: Result<String, SourceError>,
}

impl DoctorCheck {
    /// A part the bridge cannot work without.
    pub fn needed(name: impl Into<String>, outcome: Result<String, SourceError>) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            optional: false,
            outcome,
        }
    }

    /// A part the bridge works without.
    pub fn optional(name: impl Into<String>, outcome: Result<String, SourceError>) -> DoctorCheck {
        DoctorCheck {
            name: name.into(),
            optional: true,
            outcome,
        }
    }
}

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Grade {
    Ok,
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Serialize)]
struct Check {
    name: String,
    grade: Grade,
    /// What was found, or what to fix.
    detail: String,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            grade: Grade::Ok,
            detail: detail.into(),
        }
    }

    fn fail(name: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            grade: Grade::Fail,
            detail: fix.into(),
        }
    }

    /// A live check: a failed optional part is a warning.
    fn live(check: DoctorCheck) -> Check {
        match check.outcome {
            Ok(detail) => Check::ok(check.name, detail),
            Err(e) if check.optional => Check {
                name: check.name,
                grade: Grade::Warn,
                detail: format!("{}; optional: the bridge works without it", explain(&e)),
            },
            Err(e) => Check::fail(check.name, explain(&e)),
        }
    }
}

/// `doctor --json`'s answer.
#[derive(Serialize)]
struct Report<'a> {
    checks: &'a [Check],
    ok: usize,
    warn: usize,
    fail: usize,
}

pub fn run(globals: &Globals, args: DoctorArgs) -> Result<(), Failure> {
    let config = globals.bridge_config()?;
    let mut checks = secrets(&config);
    checks.extend(kendo_keys(&config));
    checks.push(state_database(&config.state));
    checks.extend(webhook_routes(&config));
    let secrets_ok = checks.iter().all(|c| c.grade != Grade::Fail);
    if secrets_ok {
        let plugin = globals.plugin()?;
        let rt = ops::runtime()?;
        let live = rt.block_on(async {
            let (ctx, _) = Engine::probe(config.clone(), plugin, Clock::system())
                .map_err(|e| Failure::internal(e.into()))?;
            let mut found = Vec::new();
            if let Some(cfg) = config.salesloft.as_ref().filter(|c| c.enabled) {
                found.extend(salesloft::checks(&ctx, cfg).await);
            }
            if let Some(cfg) = config.hubspot.as_ref().filter(|c| c.enabled) {
                found.extend(hubspot::checks(&ctx, cfg).await);
            }
            match HubspotWriteBack::new(&ctx) {
                Ok(Some(wb)) => found.extend(write_back::checks(wb.api()).await),
                Ok(None) => {}
                Err(e) => found.push(DoctorCheck::needed("hubspot write-back", Err(e))),
            }
            Ok::<_, Failure>(found)
        })?;
        checks.extend(live.into_iter().map(Check::live));
    } else {
        checks.push(Check::fail(
            "live checks against the sources",
            "not run: fix the checks above first",
        ));
    }
    let count = |grade| checks.iter().filter(|c| c.grade == grade).count();
    let (warned, failed) = (count(Grade::Warn), count(Grade::Fail));
    if args.json {
        let report = Report {
            checks: &checks,
            ok: count(Grade::Ok),
            warn: warned,
            fail: failed,
        };
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::internal(anyhow::Error::new(e)))?;
        println!("{text}");
    } else {
        for check in &checks {
            let label = match check.grade {
                Grade::Ok => "ok  ",
                Grade::Warn => "WARN",
                Grade::Fail => "FAIL",
            };
            println!("{label}  {}: {}", check.name, check.detail);
        }
        println!(
            "\n{} checks: {} ok, {warned} warning(s), {failed} failed",
            checks.len(),
            count(Grade::Ok)
        );
    }
    if failed > 0 {
        Err(Failure::rejected(anyhow::anyhow!(
            "{failed} check(s) failed; see the FAIL lines"
        )))
    } else if warned > 0 && args.strict {
        Err(Failure::rejected(anyhow::anyhow!(
            "{warned} warning(s) with --strict; see the WARN lines"
        )))
    } else {
        Ok(())
    }
}

/// A source error in words, with the scope or setting that fixes it.
fn explain(error: &SourceError) -> String {
    match error {
        SourceError::Status { status: 403, .. } => format!(
            "{error}: the credential lacks the scope named in this check; add it to the app or key and try again"
        ),
        other => other.to_string(),
    }
}

fn secret_check(what: &str, secret: &SecretRef) -> Check {
    match secret.resolve(what) {
        Ok(_) => Check::ok(format!("secret {what}"), "set"),
        Err(e) => Check::fail(format!("secret {what}"), e.to_string()),
    }
}

fn secrets(config: &BridgeConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    for team in &config.kendo.teams {
        checks.push(secret_check(
            &format!("kendo.teams `{}` api_key", team.name),
            &team.api_key,
        ));
    }
    let named = [
        ("kendo.webhook_secret", config.kendo.webhook_secret.as_ref()),
        (
            "server.operator_token",
            config.server.operator_token.as_ref(),
        ),
        (
            "salesloft.api_key",
            config
                .salesloft
                .as_ref()
                .filter(|c| c.enabled)
                .and_then(|c| c.api_key.as_ref()),
        ),
        (
            "salesloft.webhook_secret",
            config
                .salesloft
                .as_ref()
                .filter(|c| c.enabled)
                .and_then(|c| c.webhook_secret.as_ref()),
        ),
        (
            "hubspot.token",
            config
                .hubspot
                .as_ref()
                .filter(|c| c.enabled)
                .and_then(|c| c.token.as_ref()),
        ),
        (
            "hubspot.webhook_secret",
            config
                .hubspot
                .as_ref()
                .filter(|c| c.enabled)
                .and_then(|c| c.webhook_secret.as_ref()),
        ),
        (
            "aloware.webhook_secret",
            config
                .aloware
                .as_ref()
                .filter(|c| c.enabled)
                .and_then(|c| c.webhook_secret.as_ref()),
        ),
    ];
    for (what, secret) in named {
        if let Some(secret) = secret {
            checks.push(secret_check(what, secret));
        }
    }
    checks
}

fn kendo_keys(config: &BridgeConfig) -> Vec<Check> {
    config
        .kendo
        .teams
        .iter()
        .filter_map(|team| {
            let what = format!("kendo.teams `{}` api_key", team.name);
            let key = team.api_key.resolve(&what).ok()?;
            let name = format!("Kendo key of team `{}`", team.name);
            Some(if key.starts_with("pk_") && key.len() > 3 {
                Check::ok(
                    name,
                    "has the pk_... shape (its acceptance shows on the first send)",
                )
            } else {
                Check::fail(
                    name,
                    "does not start with pk_: copy the key from Kendo > Integrations > Push API",
                )
            })
        })
        .collect()
}

fn state_database(path: &Path) -> Check {
    let name = format!("state database {}", path.display());
    let writable = kendo_bridge::store::Store::open(path)
        .and_then(|s| Ok(connection::check_writable(s.database())?));
    match writable {
        Ok(()) => Check::ok(name, "opens and takes writes"),
        Err(e) => Check::fail(
            name,
            format!("{e}: check the `state` path and its directory's permissions"),
        ),
    }
}

fn webhook_routes(config: &BridgeConfig) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(sl) = config.salesloft.as_ref().filter(|c| c.enabled)
        && sl.webhook_secret.is_none()
    {
        checks.push(Check::ok(
            "salesloft webhooks",
            "no webhook_secret: /webhooks/salesloft refuses deliveries; polling alone is used",
        ));
    }
    if let Some(hs) = config.hubspot.as_ref().filter(|c| c.enabled) {
        match (&hs.webhook_secret, hs.signature, &config.server.public_url) {
            (None, _, _) => checks.push(Check::ok(
                "hubspot webhooks",
                "no webhook_secret: /webhooks/hubspot refuses deliveries; polling alone is used",
            )),
            (Some(_), HubspotSignature::V1, _) | (Some(_), _, Some(_)) => {
                checks.push(Check::ok("hubspot webhooks", "secret and signature settings consistent"))
            }
            (Some(_), _, None) => checks.push(Check::fail(
                "hubspot webhooks",
                "workflow signatures (v2/v3) sign the full URL: set server.public_url to the URL HubSpot posts to",
            )),
        }
    }
    if let Some(al) = config.aloware.as_ref().filter(|c| c.enabled)
        && al.webhook_secret.is_none()
    {
        checks.push(if al.allow_unauthenticated {
            Check::ok(
                "aloware webhooks",
                "allow_unauthenticated: anyone who can reach /webhooks/aloware can post calls",
            )
        } else {
            Check::fail(
                "aloware webhooks",
                "no webhook_secret and allow_unauthenticated is off: every delivery would be refused and lost (Aloware never retries); set aloware.webhook_secret",
            )
        });
    }
    checks
}

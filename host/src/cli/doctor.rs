//! `kendo-bridge doctor`: the configuration checked against the real
//! accounts before going live, without sending a call.

use std::path::Path;

use clap::Args;

use kendo_bridge::clock::Clock;
use kendo_bridge::config::{BridgeConfig, HubspotSignature, SecretRef};
use kendo_bridge::engine::Engine;
use kendo_bridge::sources::SourceError;
use kendo_bridge::sources::write_back::HubspotWriteBack;

use super::{Failure, Globals, ops};

const AFTER_HELP: &str = "\
Prints one line per check, `ok` or `FAIL` with what to fix, and exits 0 only when every
check passes (1 otherwise):

  - every secret the configuration names is set (environment variable or file);
  - each Kendo team key has the `pk_...` shape Kendo issues (Kendo documents no way to
    check a key without sending a call, so its acceptance shows on the first send);
  - the state database can be opened and written;
  - each enabled webhook route has its secret (Aloware may instead set
    allow_unauthenticated), and HubSpot workflow signatures (v2/v3, which sign the full
    URL) have server.public_url;
  - each source's credential is accepted for every read the bridge makes (Salesloft calls,
    call data records, users; HubSpot calls search, owners, dispositions; with
    hubspot.write_back, the Kendo properties), naming the scope a refused read needs.

The live reads use a private in-memory state: a running `serve` on the same database is
not disturbed, and nothing is sent to Kendo.

Examples:
  kendo-bridge doctor --config bridge.toml";

/// Check the configuration against the real accounts, sending nothing.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DoctorArgs {}

/// One line of the checklist.
struct Check {
    name: String,
    outcome: Result<String, String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Ok(detail.into()),
        }
    }

    fn fail(name: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Err(fix.into()),
        }
    }
}

pub fn run(globals: &Globals, _args: DoctorArgs) -> Result<(), Failure> {
    let config = globals.bridge_config()?;
    let mut checks = secrets(&config);
    checks.extend(kendo_keys(&config));
    checks.push(state_database(&config.state));
    checks.extend(webhook_routes(&config));
    let secrets_ok = checks.iter().all(|c| c.outcome.is_ok());
    if secrets_ok {
        let plugin = globals.plugin()?;
        let rt = ops::runtime()?;
        let live = rt.block_on(async {
            let (ctx, sources) = Engine::probe(config.clone(), plugin, Clock::system())
                .map_err(|e| Failure::internal(e.into()))?;
            let mut found = Vec::new();
            if let Some(sl) = &sources.salesloft {
                found.extend(sl.doctor().await);
            }
            if let Some(hs) = &sources.hubspot {
                found.extend(hs.doctor().await);
            }
            match HubspotWriteBack::new(&ctx) {
                Ok(Some(wb)) => found.extend(wb.doctor().await),
                Ok(None) => {}
                Err(e) => found.push(("hubspot write-back".into(), Err(e))),
            }
            Ok::<_, Failure>(found)
        })?;
        for (name, result) in live {
            checks.push(match result {
                Ok(detail) => Check::ok(name, detail),
                Err(e) => Check::fail(name, explain(&e)),
            });
        }
    } else {
        checks.push(Check::fail(
            "live checks against the sources",
            "not run: fix the checks above first",
        ));
    }
    let failed = checks.iter().filter(|c| c.outcome.is_err()).count();
    for check in &checks {
        match &check.outcome {
            Ok(detail) => println!("ok    {}: {detail}", check.name),
            Err(fix) => println!("FAIL  {}: {fix}", check.name),
        }
    }
    if failed == 0 {
        println!("\nall {} checks passed", checks.len());
        Ok(())
    } else {
        println!("\n{failed} of {} checks failed", checks.len());
        Err(Failure::rejected(anyhow::anyhow!(
            "{failed} check(s) failed; see the FAIL lines above"
        )))
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
    match kendo_bridge::store::Store::open(path).and_then(|mut s| s.check_writable()) {
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

//! `kendo-bridge verify`: checks one webhook request's signature through the
//! plugin, exactly as the webhook server does.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use clap::{Args, ValueEnum};

use kendo_bridge::plugin::{
    PluginError,
    signatures::{self, SignatureError, SignedRequest},
    types::Header,
};

use super::{Failure, Globals, display_input, print_line, read_bytes};

const AFTER_HELP: &str = "\
Prints `valid` on stdout and exits 0 when the signature verifies; prints the reason on
stderr and exits 1 when it does not; exits 2 when the secret's variable is unset, a
header has no `:`, the body cannot be read or the secret itself is unusable.

The body is read as raw bytes, exactly as received: do not re-save it through an editor
that changes line endings. The secret is read from the environment so it never appears
in shell history or `ps`; it is never printed.

Examples:
  KENDO_WEBHOOK_SECRET=... kendo-bridge verify --scheme kendo \\
      --secret-env KENDO_WEBHOOK_SECRET --header 'X-Kendo-Signature: sha256=9f86...' body.json

  HUBSPOT_CLIENT_SECRET=... kendo-bridge verify --scheme hubspot-v3 \\
      --secret-env HUBSPOT_CLIENT_SECRET --method POST \\
      --uri 'https://bridge.example.com/webhooks/hubspot' \\
      --header 'X-HubSpot-Signature-v3: HPW7...' \\
      --header 'X-HubSpot-Request-Timestamp: 1714000000000' body.json";

/// The signature scheme of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scheme {
    /// Kendo's `X-Kendo-Signature`: HMAC-SHA256 of the body (hex, `sha256=` hex or base64).
    Kendo,
    /// Salesloft's `x-salesloft-signature`: hex HMAC-SHA1 keyed with the callback token.
    Salesloft,
    /// HubSpot v1 `X-HubSpot-Signature`: SHA-256 of secret + body.
    #[value(name = "hubspot-v1")]
    HubspotV1,
    /// HubSpot v2 `X-HubSpot-Signature`: SHA-256 of secret + method + URI + body.
    #[value(name = "hubspot-v2")]
    HubspotV2,
    /// HubSpot v3 `X-HubSpot-Signature-v3` with `X-HubSpot-Request-Timestamp` (5 minutes).
    #[value(name = "hubspot-v3")]
    HubspotV3,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`, `whsec_` secret.
    Standard,
    /// Aloware: `Authorization: Bearer <secret>` or Basic with `user:password`.
    Aloware,
}

/// Verify a webhook request's signature.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct VerifyArgs {
    /// The sender's signature scheme.
    #[arg(long, value_enum)]
    scheme: Scheme,

    /// The name of the environment variable that holds the secret (Kendo's
    /// webhook secret, Salesloft's callback token, HubSpot's client secret,
    /// a `whsec_...` Standard Webhooks secret, or Aloware's Bearer token or
    /// `user:password`).
    #[arg(long, value_name = "VAR")]
    secret_env: String,

    /// A request header as `Name: value`; repeat it for each header. Names
    /// compare case-insensitively.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// The request's HTTP method (signed by HubSpot v2 and v3).
    #[arg(long, value_name = "METHOD", default_value = "POST")]
    method: String,

    /// The full URI the sender signed, e.g.
    /// `https://bridge.example.com/webhooks/hubspot?x=1` (HubSpot v2 and v3).
    #[arg(long, value_name = "URI", default_value = "")]
    uri: String,

    /// The current time in epoch milliseconds, for checking a timestamp's
    /// age (HubSpot v3, Standard Webhooks). Defaults to the system clock;
    /// set it to check a request recorded earlier.
    #[arg(long, value_name = "MS")]
    now_ms: Option<u64>,

    /// The raw request body; `-` reads stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    file: PathBuf,
}

pub fn run(globals: &Globals, args: VerifyArgs) -> Result<(), Failure> {
    let secret = read_secret(&args.secret_env)?;
    let headers = args
        .headers
        .iter()
        .map(|header| parse_header(header))
        .collect::<Result<Vec<_>, _>>()?;
    let body = read_bytes(&args.file)?;
    let now_ms = match args.now_ms {
        Some(now) => now,
        None => system_now_ms()?,
    };
    let request = SignedRequest {
        method: args.method.clone(),
        uri: args.uri.clone(),
        headers,
        body,
    };
    let scheme = to_wit(args.scheme);

    let plugin = globals.plugin()?;
    let mut instance = plugin
        .instance()
        .map_err(|error| Failure::internal(error.into()))?;
    let verdict = instance
        .call(|bridge, store| {
            bridge
                .kendo_bridge_signatures()
                .call_verify(store, scheme, &secret, &request, now_ms)
        })
        .map_err(|error| match error {
            PluginError::Trap { message } => Failure::trap(anyhow!(
                "the plugin trapped while verifying {}: {}",
                display_input(&args.file),
                redact(&message, &secret)
            )),
            other => Failure::internal(other.into()),
        })?;

    match verdict {
        Ok(()) => print_line("valid"),
        Err(error @ SignatureError::InvalidSecret(_)) => Err(Failure::usage(anyhow!(
            "{}",
            redact(&error.explain().to_string(), &secret)
        ))),
        Err(error) => Err(Failure::rejected(anyhow!(
            "{}",
            redact(&error.explain().to_string(), &secret)
        ))),
    }
}

fn read_secret(variable: &str) -> Result<String, Failure> {
    match std::env::var(variable) {
        Ok(secret) => Ok(secret),
        Err(std::env::VarError::NotPresent) => Err(Failure::usage(anyhow!(
            "the environment variable {variable} (--secret-env) is not set"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::usage(anyhow!(
            "the environment variable {variable} (--secret-env) is not valid UTF-8"
        ))),
    }
}

fn parse_header(header: &str) -> Result<Header, Failure> {
    let Some((name, value)) = header.split_once(':') else {
        return Err(Failure::usage(anyhow!(
            "--header {header:?} has no `:`; write it as 'Name: value'"
        )));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(Failure::usage(anyhow!(
            "--header {header:?} has no name before the `:`"
        )));
    }
    Ok(Header {
        name: name.to_owned(),
        value: value.trim().to_owned(),
    })
}

fn system_now_ms() -> Result<u64, Failure> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| Failure::internal(anyhow!("the system clock is before 1970: {error}")))?;
    u64::try_from(since_epoch.as_millis())
        .map_err(|_| Failure::internal(anyhow!("the system clock is out of range")))
}

/// The plugin's messages should never echo the secret; this makes sure no
/// message of ours does, whatever a custom plugin says.
fn redact(message: &str, secret: &str) -> String {
    if secret.is_empty() {
        message.to_owned()
    } else {
        message.replace(secret, "<secret>")
    }
}

fn to_wit(scheme: Scheme) -> signatures::Scheme {
    match scheme {
        Scheme::Kendo => signatures::Scheme::Kendo,
        Scheme::Salesloft => signatures::Scheme::Salesloft,
        Scheme::HubspotV1 => signatures::Scheme::HubspotV1,
        Scheme::HubspotV2 => signatures::Scheme::HubspotV2,
        Scheme::HubspotV3 => signatures::Scheme::HubspotV3,
        Scheme::Standard => signatures::Scheme::Standard,
        Scheme::Aloware => signatures::Scheme::Aloware,
    }
}

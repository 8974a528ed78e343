//! `kendo-bridge settle`: the operator's answer for a call parked as
//! `outcome-unknown`, after looking in Kendo.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{ArgGroup, Args};

use kendo_bridge::store::{CallKey, SettleFilter};
use kendo_bridge_core::ledger::operator;

use super::{Failure, Globals};

const AFTER_HELP: &str = "\
A call is parked as outcome-unknown when Kendo's answer to it was lost (no answer
within the timeout, or the connection dropped after the request left) more often than
`kendo.ambiguous_resends` allows. Kendo's Push API has no idempotency key: the bridge
cannot tell whether Kendo created the call, and every re-send may create another copy.
So a parked call is never sent again by itself; you decide.

What to do:
  1. List the parked calls (source id, team, when, why; `--json` adds title and rep):
       kendo-bridge deliveries --state outcome-unknown
  2. Look for each one in Kendo.
  3. Kendo has it:       kendo-bridge settle --sent ID [--call-id KENDO_CALL_ID]
     Kendo does not:     kendo-bridge settle --resend ID
     (a running `serve` sends it within its next idle check, or run `sync --once`)
  If Kendo holds it more than once, delete the extra copies in Kendo; `deliveries
  --maybe-duplicated` lists every call that may have been created twice.

ID is the call's id in its source (Salesloft, HubSpot or Aloware), as `deliveries`
shows it. When that id is parked for more than one source or team, name which with
--source and --team.

Exit codes: 0 settled, 2 no parked call has that id (or several do: add --source or
--team), 1 the state database could not be read or written.

Examples:
  kendo-bridge settle --config bridge.toml --sent 98765432 --call-id call_abc123
  kendo-bridge settle --config bridge.toml --resend 98765432 --source salesloft";

/// Settle a call parked as outcome-unknown: mark it sent, or send it again.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
#[command(group(ArgGroup::new("decision").required(true).args(["sent", "resend"])))]
pub struct SettleArgs {
    /// Kendo has the call: mark it sent (it is never sent again).
    #[arg(long, value_name = "ID")]
    sent: Option<String>,
    /// Kendo does not have the call: put it back in the queue, due now.
    #[arg(long, value_name = "ID")]
    resend: Option<String>,
    /// The callId Kendo shows for the call (with --sent); kept in the ledger.
    #[arg(
        long,
        value_name = "KENDO_CALL_ID",
        requires = "sent",
        conflicts_with = "resend"
    )]
    call_id: Option<String>,
    /// Only the call from this source (salesloft, hubspot, aloware).
    #[arg(long)]
    source: Option<String>,
    /// Only the call of this Kendo team.
    #[arg(long)]
    team: Option<String>,
    /// Use this state database instead of the configuration's `state`.
    #[arg(long = "db", value_name = "FILE")]
    db: Option<PathBuf>,
}

pub fn run(globals: &Globals, args: SettleArgs) -> Result<(), Failure> {
    let store = globals.state(args.db)?;
    let (source_id, resend) = match (args.sent, args.resend) {
        (Some(id), None) => (id, false),
        (None, Some(id)) => (id, true),
        // clap's group makes exactly one of them present.
        _ => return Err(Failure::usage(anyhow!("give --sent ID or --resend ID"))),
    };
    let filter = SettleFilter {
        source_id,
        source: args.source,
        team: args.team,
    };
    let parked = store
        .run_here(|s| Ok(operator::parked(s.database(), &filter)?))
        .map_err(|e| Failure::internal(e.into()))?;
    match parked.as_slice() {
        [] => {
            return Err(Failure::usage(anyhow!(
                "no call with id `{}` is parked as outcome-unknown{} (see `kendo-bridge deliveries --state outcome-unknown`)",
                filter.source_id,
                narrowed(&filter)
            )));
        }
        [_] => {}
        several => {
            let names: Vec<String> = several.iter().map(describe).collect();
            return Err(Failure::usage(anyhow!(
                "id `{}` is parked for {}: add --source or --team",
                filter.source_id,
                names.join(", ")
            )));
        }
    }
    let now = kendo_bridge::clock::Clock::system().now_ms();
    let call_id = args.call_id;
    let settled = store
        .run_here(|s| {
            if resend {
                Ok(operator::settle_resend(s.database(), &filter, now)?)
            } else {
                s.settle_sent(&filter, call_id.as_deref(), now)
            }
        })
        .map_err(|e| Failure::internal(e.into()))?;
    for key in &settled {
        if resend {
            println!(
                "{} put back in the queue: it will be sent again",
                describe(key)
            );
        } else {
            println!(
                "{} marked sent{}",
                describe(key),
                call_id
                    .as_deref()
                    .map(|id| format!(" (Kendo callId {id})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn describe(key: &CallKey) -> String {
    format!("{} call {} (team {})", key.source, key.source_id, key.team)
}

fn narrowed(filter: &SettleFilter) -> String {
    let mut parts = Vec::new();
    if let Some(source) = &filter.source {
        parts.push(format!("source {source}"));
    }
    if let Some(team) = &filter.team {
        parts.push(format!("team {team}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" for {}", parts.join(", "))
    }
}

//! `kendo-bridge deliveries`: the most recent calls and what became of them.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use kendo_bridge::store::State;
use kendo_bridge::timefmt;

use super::{Failure, Globals};

const AFTER_HELP: &str = "\
One line per call, newest first: when it last changed, its state, source and source id,
the Kendo team, Kendo's callId once sent, the AI score once Kendo's call.uploaded webhook
arrived, how many times it was seen (polls and webhooks) and the reason for a skip,
wait or failure.

Examples:
  kendo-bridge deliveries --config bridge.toml
  kendo-bridge deliveries --state failed --state dead --limit 100
  kendo-bridge deliveries --json | jq '.[] | select(.aiScore != null)'";

/// List recent deliveries with source id, Kendo callId and state.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DeliveriesArgs {
    /// How many to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Only these states (repeatable): queued, sending, sent, waiting, skipped, failed, dead.
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    states: Vec<State>,
    /// Read this state database instead of the configuration's `state`.
    #[arg(long = "db", value_name = "FILE")]
    db: Option<PathBuf>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_state(s: &str) -> Result<State, String> {
    State::parse(s).ok_or_else(|| {
        format!(
            "unknown state `{s}`; one of: {}",
            State::ALL.map(|st| st.as_str()).join(", ")
        )
    })
}

pub fn run(globals: &Globals, args: DeliveriesArgs) -> Result<(), Failure> {
    let store = globals.state(args.db)?;
    let rows = store
        .run_here(|s| s.recent(&args.states, args.limit))
        .map_err(|e| Failure::internal(e.into()))?;
    if args.json {
        let value: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "updatedAt": timefmt::iso(r.updated_at),
                    "state": r.state.as_str(),
                    "source": r.key.source,
                    "sourceId": r.key.source_id,
                    "team": r.key.team,
                    "kendoCallId": r.kendo_call_id,
                    "aiScore": r.ai_score,
                    "title": r.title,
                    "repEmail": r.rep_email,
                    "syncMethod": r.sync_method,
                    "attempts": r.attempts,
                    "seen": r.seen_count,
                    "code": r.reason_code,
                    "reason": r.reason,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("no deliveries recorded yet");
        return Ok(());
    }
    println!(
        "{:<20} {:<8} {:<10} {:<14} {:<10} {:<14} {:>5} {:>4}  detail",
        "updated", "state", "source", "source id", "team", "kendo callId", "score", "seen"
    );
    for r in rows {
        let detail = match (&r.reason_code, &r.reason) {
            (Some(code), Some(reason)) => format!("[{code}] {reason}"),
            (Some(code), None) => format!("[{code}]"),
            _ => r.title.clone().unwrap_or_default(),
        };
        println!(
            "{:<20} {:<8} {:<10} {:<14} {:<10} {:<14} {:>5} {:>4}  {}",
            timefmt::iso(r.updated_at),
            r.state.as_str(),
            r.key.source,
            r.key.source_id,
            r.key.team,
            r.kendo_call_id.as_deref().unwrap_or("-"),
            r.ai_score.map_or("-".to_string(), |s| format!("{s:.0}")),
            r.seen_count,
            detail
        );
    }
    Ok(())
}

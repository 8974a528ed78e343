//! `kendo-bridge deliveries`: the most recent calls and what became of them.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use kendo_bridge::store::State;
use kendo_bridge::timefmt;
use kendo_bridge_core::ledger::report;

use super::{Failure, Globals};

const AFTER_HELP: &str = "\
One line per call, newest first: when it last changed, its state, source and source id,
the Kendo team, Kendo's callId once sent, the AI score once Kendo's call.uploaded webhook
arrived, how many times it was seen (polls and webhooks) and the reason for a skip,
wait or failure. A call sent without an optional field the source sent in a form that
could not be read (a duration of \"about five minutes\", say) shows `[without] field: why`.

Kendo's Push API has no idempotency key, so a send whose answer was lost (a timeout, a
connection dropped after the request left, or the bridge stopping mid-send) may have
created the call in Kendo although the bridge never heard so. Such calls say `maybe` in
the `dup?` column (`maybeDuplicated` in JSON) and list every callId Kendo returned for
them; check them in Kendo and delete extra copies there. A call whose answers were lost
more often than `kendo.ambiguous_resends` allows waits as `outcome-unknown` until you
settle it (see `kendo-bridge settle --help`).

Examples:
  kendo-bridge deliveries --config bridge.toml
  kendo-bridge deliveries --state failed --state dead --limit 100
  kendo-bridge deliveries --state outcome-unknown
  kendo-bridge deliveries --maybe-duplicated --json
  kendo-bridge deliveries --json | jq '.[] | select(.aiScore != null)'";

/// List recent deliveries with source id, Kendo callId and state.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DeliveriesArgs {
    /// How many to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Only these states (repeatable): queued, sending, outcome-unknown, sent, waiting,
    /// skipped, failed, dead.
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    states: Vec<State>,
    /// Only calls Kendo may hold more than once (a send lost its answer or
    /// was in flight when the bridge stopped).
    #[arg(long)]
    maybe_duplicated: bool,
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
        .run_here(|s| {
            let db = s.database();
            let rows = report::recent(db, &args.states, args.maybe_duplicated, args.limit)?;
            // Only a flagged call can have been given more than one callId.
            rows.into_iter()
                .map(|r| {
                    let ids = if r.maybe_duplicated {
                        report::kendo_call_ids(db, &r.key)?
                    } else {
                        Vec::new()
                    };
                    Ok((r, ids))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| Failure::internal(e.into()))?;
    if args.json {
        let value: Vec<_> = rows
            .iter()
            .map(|(r, ids)| {
                json!({
                    "updatedAt": timefmt::iso(r.updated_at),
                    "state": r.state.as_str(),
                    "source": r.key.source,
                    "sourceId": r.key.source_id,
                    "team": r.key.team,
                    "kendoCallId": r.kendo_call_id,
                    "maybeDuplicated": r.maybe_duplicated,
                    "kendoCallIds": ids
                        .iter()
                        .map(|(id, at)| json!({"callId": id, "at": timefmt::iso(*at)}))
                        .collect::<Vec<_>>(),
                    "aiScore": r.ai_score,
                    "title": r.title,
                    "repEmail": r.rep_email,
                    "syncMethod": r.sync_method,
                    "attempts": r.attempts,
                    "seen": r.seen_count,
                    "code": r.reason_code,
                    "reason": r.reason,
                    "warnings": r.warnings.as_ref().map(|w| w.lines().collect::<Vec<_>>()),
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
        "{:<20} {:<15} {:<10} {:<14} {:<10} {:<14} {:<5} {:>5} {:>4}  detail",
        "updated", "state", "source", "source id", "team", "kendo callId", "dup?", "score", "seen"
    );
    for (r, ids) in rows {
        let detail = match (&r.reason_code, &r.reason) {
            (Some(code), Some(reason)) => format!("[{code}] {reason}"),
            (Some(code), None) => format!("[{code}]"),
            _ => match &r.warnings {
                Some(w) => format!(
                    "{} [without] {}",
                    r.title.clone().unwrap_or_default(),
                    w.replace('\n', "; ")
                ),
                None => r.title.clone().unwrap_or_default(),
            },
        };
        let call_ids = if ids.is_empty() {
            r.kendo_call_id.clone().unwrap_or_else(|| "-".to_string())
        } else {
            ids.iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "{:<20} {:<15} {:<10} {:<14} {:<10} {:<14} {:<5} {:>5} {:>4}  {}",
            timefmt::iso(r.updated_at),
            r.state.as_str(),
            r.key.source,
            r.key.source_id,
            r.key.team,
            call_ids,
            if r.maybe_duplicated { "maybe" } else { "-" },
            r.ai_score.map_or("-".to_string(), |s| format!("{s:.0}")),
            r.seen_count,
            detail
        );
    }
    Ok(())
}

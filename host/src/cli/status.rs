//! `kendo-bridge status`: where every source and every Kendo team stands.

use std::path::PathBuf;

use clap::Args;

use kendo_bridge::snapshot::{self, Snapshot, SnapshotOptions, counter_words, fix_for};
use kendo_bridge::store::{State, counter};
use kendo_bridge::timefmt;
use kendo_bridge_core::ledger::report;

use super::{Failure, Globals};

const AFTER_HELP: &str = "\
Reads the state database only (no secret is needed, and a running `serve` is not
disturbed). Shows each source's checkpoint; each part of each source (poll, transcripts,
dispositions, associations, webhook) with when it last worked or, when it is failing,
since when, how often and what to check (a 401 names the key setting, a 404 the
`api_url`); each team's queue depth and its calls by state (queued, sending, sent,
waiting, skipped, failed, dead, outcome-unknown), paused keys; how many calls each skip
reason holds and what fixes it; failed, dead and outcome-unknown calls by reason; counters (Kendo 429s, retries, sends whose answer was lost and were sent
again, refused webhook signatures); Kendo results: calls sent longer ago than
--unscored-after with no score from Kendo's call.uploaded webhook, per team, and results
from Kendo about calls this bridge never sent; write-backs to HubSpot calls
(`hubspot.write_back`: pending, done, dead and the last error; a refused scope also
shows under `hubspot write-back`, as does a Kendo property HubSpot has with another type);
whether Aloware's calls wait for their transcript (only once Aloware has sent one in the
last 7 days); stored webhook deliveries in trouble (failing and tried again later, or whose
processing stopped or hangs: a plugin trap), from their first failure; and the latest
errors.

Examples:
  kendo-bridge status --config bridge.toml
  kendo-bridge status --json --config bridge.toml | jq .teams";

/// How many stored deliveries in trouble are listed.
const TROUBLED: u32 = 50;

/// Show checkpoints, queues, counts per team and the latest errors.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct StatusArgs {
    /// Read this state database instead of the configuration's `state`.
    #[arg(long = "db", value_name = "FILE")]
    db: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// How many recent errors to show.
    #[arg(long, default_value_t = 5)]
    errors: u32,
    /// A call Kendo accepted longer ago than this without a score from
    /// Kendo's `call.uploaded` webhook is reported as not scored.
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = humantime::parse_duration)]
    unscored_after: std::time::Duration,
}

pub fn run(globals: &Globals, args: StatusArgs) -> Result<(), Failure> {
    let store = globals.state(args.db)?;
    let now = kendo_bridge::clock::Clock::system().now_ms();
    let options = SnapshotOptions {
        errors: args.errors,
        unscored_after_ms: args.unscored_after.as_millis() as i64,
        unmatched: 5,
        troubled: TROUBLED,
        ..SnapshotOptions::default()
    };
    let snap = store
        .run_here(|s| snapshot::gather(s, now, &options))
        .map_err(|e| Failure::internal(e.into()))?;

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshot::to_json(&snap)).unwrap_or_default()
        );
        return Ok(());
    }
    let Snapshot {
        checkpoints,
        teams,
        skipped,
        waiting,
        counters,
        errors,
        inbox_backlog: backlog,
        health,
        unscored,
        unmatched,
        write_backs,
        troubled,
        ..
    } = &snap;

    println!("Checkpoints");
    if checkpoints.is_empty() {
        println!("  (none yet: no source has been polled)");
    }
    for (source, cursor, at) in checkpoints {
        println!("  {source:<22} {cursor}  (moved {})", timefmt::iso(*at));
    }
    println!("\nSources");
    if health.is_empty() {
        println!("  (nothing recorded yet: no poll or webhook has run)");
    }
    for h in health {
        let what = format!("{} {}", h.source, h.topic);
        match (&h.problem, h.problem_since) {
            (Some(problem), since) => println!(
                "  {what:<24} FAILING since {} ({} times; last worked {}): {problem}",
                since.map_or("-".into(), timefmt::iso),
                h.problem_count,
                h.ok_at.map_or("never".into(), timefmt::iso),
            ),
            (None, _) => println!(
                "  {what:<24} ok (last worked {})",
                h.ok_at.map_or("-".into(), timefmt::iso)
            ),
        }
    }
    println!("\nTeams");
    if teams.is_empty() {
        println!("  (no calls recorded yet)");
    }
    for t in teams {
        let (tc, depth, paused) = (&t.counts, t.queue_depth, &t.paused);
        let states: Vec<String> = State::ALL
            .iter()
            .map(|st| format!("{} {}", tc.get(*st), st))
            .collect();
        println!("  {}: queue {depth}; {}", tc.team, states.join(", "));
        let c = |name: &str| snap.team_counter(&tc.team, name);
        println!(
            "    Kendo 429s {}, retries {}, re-sent after a lost answer {}",
            c(counter::KENDO_429),
            c(counter::RETRIES),
            c(counter::RESENT_AFTER_LOST_ANSWER)
        );
        let unknown = tc.get(State::OutcomeUnknown);
        if unknown > 0 {
            println!(
                "    {unknown} call(s) OUTCOME-UNKNOWN: Kendo's answer was lost; check Kendo, then `kendo-bridge settle` (list: `kendo-bridge deliveries --state outcome-unknown`)"
            );
        }
        if let Some(p) = paused {
            println!(
                "    PAUSED since {}: {}",
                timefmt::iso(p.paused_at),
                p.reason
            );
        }
    }
    if !skipped.is_empty() {
        println!("\nSkipped, by reason");
        for (code, n) in skipped {
            println!("  {n:>6}  {code}: {}", fix_for(code));
        }
    }
    if !snap.errors_by_reason.is_empty() {
        println!("\nFailed, dead and outcome-unknown, by reason");
        for (state, code, n) in &snap.errors_by_reason {
            println!("  {n:>6}  {state} {code}");
        }
    }
    if !waiting.is_empty() {
        println!("\nWaiting, by reason");
        for (code, n) in waiting {
            println!("  {n:>6}  {code}");
        }
    }
    let sources: Vec<String> = report::source_counters(counters)
        .into_iter()
        .map(|(s, n, v)| format!("{s}: {v} {}", counter_words(n)))
        .collect();
    println!("\nWebhooks and sources");
    println!("  inbox backlog {backlog}");
    if let Some(mode) = snap.aloware_transcripts {
        println!(
            "  aloware transcripts: {}",
            kendo_bridge::snapshot::transcript_mode_words(mode)
        );
    }
    if !sources.is_empty() {
        println!("  {}", sources.join(", "));
    }
    if !troubled.is_empty() {
        println!("\nStored deliveries in trouble");
        for t in troubled {
            println!(
                "  delivery {} from {} (received {}): {}",
                t.id,
                t.source,
                timefmt::iso(t.received_at),
                t.problem
            );
        }
    }
    if !unscored.is_empty() || unmatched.0 > 0 {
        println!("\nKendo results");
        for (team, n, oldest) in unscored {
            println!(
                "  {team}: {n} call(s) sent over {} ago with no score yet (oldest sent {}); check Kendo's webhook to /webhooks/kendo",
                humantime::format_duration(args.unscored_after),
                timefmt::iso(*oldest)
            );
        }
        if unmatched.0 > 0 {
            println!(
                "  {} result(s) from Kendo for calls this bridge never sent (another integration, or another bridge's database):",
                unmatched.0
            );
            for u in &unmatched.1 {
                println!(
                    "    {} {} {} (event {})",
                    timefmt::iso(u.received_at),
                    u.event,
                    u.call_id,
                    u.event_id
                );
            }
        }
    }
    if !write_backs.is_empty() {
        println!("\nWrite-backs to the sources");
        for w in write_backs {
            println!(
                "  {}: {} pending, {} done, {} dead",
                w.source, w.pending, w.done, w.dead
            );
            if let Some((error, at)) = &w.last_error {
                println!("    last error {}: {error}", timefmt::iso(*at));
            }
        }
    }
    if !errors.is_empty() {
        println!("\nLatest errors");
        for r in errors {
            println!(
                "  {} {} {}/{} [{}] {}",
                timefmt::iso(r.updated_at),
                r.state,
                r.key.source,
                r.key.source_id,
                r.reason_code.as_deref().unwrap_or("-"),
                r.reason.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

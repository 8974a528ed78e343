//! `kendo-bridge status`: where every source and every Kendo team stands.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use kendo_bridge::store::{State, counter, write_back_counter};
use kendo_bridge::timefmt;

use super::{Failure, Globals};

const AFTER_HELP: &str = "\
Reads the state database only (no secret is needed, and a running `serve` is not
disturbed). Shows each source's checkpoint; each part of each source (poll, transcripts,
dispositions, associations, webhook) with when it last worked or, when it is failing,
since when, how often and what to check (a 401 names the key setting, a 404 the
`api_url`); each team's queue depth and its calls by state (queued, sending, sent,
waiting, skipped, failed, dead, outcome-unknown), paused keys; how many calls each skip
reason holds and what fixes it; counters (Kendo 429s, retries, sends whose answer was lost and were sent
again, refused webhook signatures); Kendo results: calls sent longer ago than
--unscored-after with no score from Kendo's call.uploaded webhook, per team, and results
from Kendo about calls this bridge never sent; write-backs to HubSpot calls
(`hubspot.write_back`: pending, done, dead and the last error; a refused scope also
shows under `hubspot write-back`); and the latest errors.

Examples:
  kendo-bridge status --config bridge.toml
  kendo-bridge status --json --config bridge.toml | jq .teams";

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
    let unscored_after_ms = args.unscored_after.as_millis() as i64;
    let snapshot = store
        .run_here(|s| {
            let checkpoints = s.checkpoints()?;
            let counts = s.counts()?;
            let mut teams = Vec::new();
            for tc in &counts {
                teams.push((tc.clone(), s.queue_depth(&tc.team)?, s.paused(&tc.team)?));
            }
            Ok((
                checkpoints,
                teams,
                s.reasons(State::Skipped)?,
                s.reasons(State::Waiting)?,
                s.counters()?,
                s.recent(
                    &[State::Failed, State::Dead, State::OutcomeUnknown],
                    args.errors,
                )?,
                s.inbox_backlog()?,
                s.health()?,
                s.unscored(now - unscored_after_ms)?,
                s.unmatched_results(5)?,
                s.write_back_counts()?,
            ))
        })
        .map_err(|e| Failure::internal(e.into()))?;
    let (
        checkpoints,
        teams,
        skipped,
        waiting,
        counters,
        errors,
        backlog,
        health,
        unscored,
        unmatched,
        write_backs,
    ) = snapshot;

    if args.json {
        let value = json!({
            "checkpoints": checkpoints.iter().map(|(s, c, at)| json!({
                "source": s, "cursor": serde_json::from_str::<serde_json::Value>(c).unwrap_or(json!(c)),
                "updatedAt": timefmt::iso(*at)})).collect::<Vec<_>>(),
            "teams": teams.iter().map(|(tc, depth, paused)| json!({
                "team": tc.team,
                "queueDepth": depth,
                "states": State::ALL.iter().map(|st| (st.as_str().to_string(), json!(tc.get(*st)))).collect::<serde_json::Map<_, _>>(),
                "paused": paused.as_ref().map(|p| p.reason.clone()),
            })).collect::<Vec<_>>(),
            "sources": health.iter().map(|h| json!({
                "source": h.source, "topic": h.topic,
                "okAt": h.ok_at.map(timefmt::iso),
                "problem": h.problem, "problemSince": h.problem_since.map(timefmt::iso),
                "problemCount": h.problem_count})).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|(c, n)| json!({"reason": c, "count": n, "fix": fix_for(c)})).collect::<Vec<_>>(),
            "waiting": waiting.iter().map(|(c, n)| json!({"reason": c, "count": n})).collect::<Vec<_>>(),
            "counters": counters.iter().map(|(scope, name, v)| json!({"scope": scope, "name": name, "value": v})).collect::<Vec<_>>(),
            "inboxBacklog": backlog,
            "results": {
                "unscoredAfterSeconds": args.unscored_after.as_secs(),
                "unscored": unscored.iter().map(|(team, n, oldest)| json!({
                    "team": team, "count": n, "oldestSentAt": timefmt::iso(*oldest)})).collect::<Vec<_>>(),
                "unmatched": {
                    "count": unmatched.0,
                    "latest": unmatched.1.iter().map(|u| json!({
                        "eventId": u.event_id, "event": u.event, "callId": u.call_id,
                        "receivedAt": timefmt::iso(u.received_at)})).collect::<Vec<_>>(),
                },
            },
            "writeBacks": write_backs.iter().map(|w| json!({
                "source": w.source, "pending": w.pending, "done": w.done, "dead": w.dead,
                "lastError": w.last_error.as_ref().map(|e| e.0.clone()),
                "lastErrorAt": w.last_error.as_ref().map(|e| timefmt::iso(e.1))})).collect::<Vec<_>>(),
            "lastErrors": errors.iter().map(|r| json!({
                "source": r.key.source, "sourceId": r.key.source_id, "team": r.key.team,
                "state": r.state.as_str(), "code": r.reason_code, "reason": r.reason,
                "at": timefmt::iso(r.updated_at)})).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }

    println!("Checkpoints");
    if checkpoints.is_empty() {
        println!("  (none yet: no source has been polled)");
    }
    for (source, cursor, at) in &checkpoints {
        println!("  {source:<22} {cursor}  (moved {})", timefmt::iso(*at));
    }
    println!("\nSources");
    if health.is_empty() {
        println!("  (nothing recorded yet: no poll or webhook has run)");
    }
    for h in &health {
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
    for (tc, depth, paused) in &teams {
        let states: Vec<String> = State::ALL
            .iter()
            .map(|st| format!("{} {}", tc.get(*st), st))
            .collect();
        println!("  {}: queue {depth}; {}", tc.team, states.join(", "));
        let c = |name: &str| {
            counters
                .iter()
                .find(|(s, n, _)| s == &tc.team && n == name)
                .map_or(0, |(_, _, v)| *v)
        };
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
        for (code, n) in &skipped {
            println!("  {n:>6}  {code}: {}", fix_for(code));
        }
    }
    if !waiting.is_empty() {
        println!("\nWaiting, by reason");
        for (code, n) in &waiting {
            println!("  {n:>6}  {code}");
        }
    }
    let sources: Vec<String> = counters
        .iter()
        .filter(|(s, _, _)| ["salesloft", "hubspot", "aloware", "kendo"].contains(&s.as_str()))
        .map(|(s, n, v)| format!("{s}: {v} {}", counter_words(n)))
        .collect();
    println!("\nWebhooks and sources");
    println!("  inbox backlog {backlog}");
    if !sources.is_empty() {
        println!("  {}", sources.join(", "));
    }
    if !unscored.is_empty() || unmatched.0 > 0 {
        println!("\nKendo results");
        for (team, n, oldest) in &unscored {
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
        for w in &write_backs {
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
        for r in &errors {
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

/// What an operator can do about calls skipped for `code`.
fn fix_for(code: &str) -> &'static str {
    match code {
        "unknown-rep" => {
            "no email for the rep: add them to `[[reps]]` (or give the user an email in the source); \
             these calls are decided again on the next start"
        }
        "invalid-rep-email" => {
            "the rep's email is not an address: map the rep in `[[reps]]` or fix it in the source; \
             decided again on the next start"
        }
        "below-minimum-duration" => {
            "shorter than `rules.min_duration_seconds`: lower it to keep them; decided again on the next start"
        }
        "disposition-filtered" => {
            "disposition not in `rules.allowed_dispositions`: add it to keep them; decided again on the next start"
        }
        "not-completed" => "the call did not connect: nothing to do",
        "no-media" => "no recording and no transcript at the source: nothing Kendo can analyse",
        "not-a-call" => "the record is not a call: nothing to do",
        "archived" => "deleted or archived in the source: nothing to do",
        _ => "see the README's Operations section",
    }
}

/// A counter's name in words, for the text view (`--json` keeps names).
fn counter_words(name: &str) -> String {
    match name {
        counter::SOURCE_429 => "rate-limit answers (429) from the source",
        counter::BAD_SIGNATURE => "webhooks refused for a bad signature",
        counter::WEBHOOKS => "webhooks stored",
        counter::DUPLICATE_WEBHOOKS => "repeated webhook deliveries absorbed",
        counter::KENDO_429 => "Kendo 429s",
        counter::RETRIES => "retries",
        counter::RESENT_AFTER_LOST_ANSWER => "re-sent after a lost answer",
        write_back_counter::DONE => "write-backs done",
        write_back_counter::RETRIED => "write-back attempts retried",
        write_back_counter::DEAD => "write-backs given up",
        write_back_counter::HELD => "times write-backs were held for a refused credential or scope",
        other => return other.replace('_', " "),
    }
    .to_string()
}

//! `kendo-bridge replay` and `kendo-bridge resume`: the operator's levers.

use std::path::PathBuf;

use clap::Args;

use kendo_bridge::store::ReplayFilter;
use kendo_bridge_core::ledger::{operator, send, write_back};

use super::{Failure, Globals};

const REPLAY_HELP: &str = "\
Dead letters are calls whose retries ran out (Kendo down for hours, say). Replay puts
them back in the queue, due now, with their attempt count reset; a running `serve` picks
them up within its next idle check, or run `kendo-bridge sync --once`.
--include-failed also replays permanent rejections (400, 413): do that after fixing the
cause (a rep's email in [[reps]], say), or they fail again.
Calls parked as outcome-unknown (Kendo's answer was lost; Kendo may hold them) are never
replayed: check Kendo, then use `kendo-bridge settle`.
--write-backs instead puts dead write-backs to HubSpot (`hubspot.write_back`: retries ran
out, or the call was gone) back, due now, with fresh attempts.

Examples:
  kendo-bridge replay --config bridge.toml
  kendo-bridge replay --team emea --source hubspot
  kendo-bridge replay --source salesloft --id 98765432 --include-failed
  kendo-bridge replay --write-backs --config bridge.toml";

/// Put dead letters back in the queue.
#[derive(Debug, Args)]
#[command(after_help = REPLAY_HELP)]
pub struct ReplayArgs {
    /// Only this Kendo team.
    #[arg(long)]
    team: Option<String>,
    /// Only this source.
    #[arg(long)]
    source: Option<String>,
    /// Only this source call id (with --source).
    #[arg(long, requires = "source")]
    id: Option<String>,
    /// Also replay permanent rejections (failed), not only dead letters.
    #[arg(long)]
    include_failed: bool,
    /// Replay dead write-backs to HubSpot instead of calls.
    #[arg(long, conflicts_with_all = ["team", "source", "include_failed"])]
    write_backs: bool,
    /// Use this state database instead of the configuration's `state`.
    #[arg(long = "db", value_name = "FILE")]
    db: Option<PathBuf>,
}

pub fn run(globals: &Globals, args: ReplayArgs) -> Result<(), Failure> {
    let store = globals.state(args.db)?;
    let now = kendo_bridge::clock::Clock::system().now_ms();
    if args.write_backs {
        let n = store
            .run_here(|s| Ok(write_back::replay(s.database(), now)?))
            .map_err(|e| Failure::internal(e.into()))?;
        println!("{n} write-back(s) put back in the queue");
        return Ok(());
    }
    let filter = ReplayFilter {
        team: args.team,
        source: args.source,
        source_id: args.id,
        include_failed: args.include_failed,
    };
    let n = store
        .run_here(|s| Ok(operator::replay(s.database(), &filter, now)?))
        .map_err(|e| Failure::internal(e.into()))?;
    println!("{n} call(s) put back in the queue");
    Ok(())
}

/// Lift the pause of a team whose key Kendo refused.
#[derive(Debug, Args)]
#[command(
    after_help = "A team is paused when Kendo answers 401 to its key. Configuring a \
different key lifts the pause by itself on the next start; `resume` lifts it now (after \
Kendo re-enabled the same key, say)."
)]
pub struct ResumeArgs {
    /// The team to resume.
    #[arg(long)]
    team: String,
    /// Use this state database instead of the configuration's `state`.
    #[arg(long = "db", value_name = "FILE")]
    db: Option<PathBuf>,
}

pub fn resume(globals: &Globals, args: ResumeArgs) -> Result<(), Failure> {
    let store = globals.state(args.db)?;
    let team = args.team.clone();
    let lifted = store
        .run_here(|s| Ok(send::resume(s.database(), &team)?))
        .map_err(|e| Failure::internal(e.into()))?;
    if lifted {
        println!("team `{}` resumed", args.team);
    } else {
        println!("team `{}` was not paused", args.team);
    }
    Ok(())
}

//! `kendo-bridge sync`: poll and deliver without the webhook server.

use std::time::Duration;

use clap::Args;

use kendo_bridge::delivery::Delivered;
use kendo_bridge::engine::SyncEvent;

use super::{Failure, Globals, ops};

const AFTER_HELP: &str = "\
`sync --once` polls each source once, processes webhook deliveries already stored, sends
everything that is due (paced at the Kendo limit), prints what it did, and exits: run it
from cron or a CI schedule when you do not want a long-running process. Without --once it
repeats every poll interval (polling only: use `serve` to also receive webhooks).

Retries scheduled beyond --wait stay queued for the next run; `status` shows them.

Examples:
  kendo-bridge sync --once --config bridge.toml
  kendo-bridge sync --once --wait 10m --config bridge.toml";

/// Poll the sources and deliver what is due.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct SyncArgs {
    /// Run one cycle and exit.
    #[arg(long)]
    once: bool,
    /// How long to keep sending paced calls and retries that fall due.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    wait: Duration,
}

pub fn run(globals: &Globals, args: SyncArgs) -> Result<(), Failure> {
    let engine = globals.engine()?;
    let rt = ops::runtime()?;
    rt.block_on(async move {
        loop {
            let mut sent = 0u32;
            let mut problems = 0u32;
            let report = engine
                .sync_once(args.wait, |event| match event {
                    SyncEvent::Polled(source, cycle) => eprintln!(
                        "{source}: page {} read, {} records ({} queued, {} updated, {} already known, {} skipped, {} waiting, {} failed)",
                        cycle.pages,
                        cycle.records,
                        cycle.report.enqueued,
                        cycle.report.updated,
                        cycle.report.duplicates,
                        cycle.report.skipped,
                        cycle.report.waiting,
                        cycle.report.failed
                    ),
                    SyncEvent::Delivered(team, Delivered::Created(id)) => {
                        sent += 1;
                        tracing::info!(%team, call_id = ?id, "sent");
                    }
                    SyncEvent::Delivered(team, other) => {
                        problems += 1;
                        eprintln!("{team}: {other:?}");
                    }
                    SyncEvent::Paused(team, reason) => eprintln!("{team}: paused: {reason}"),
                })
                .await;
            let report = match report {
                Ok(report) => report,
                Err(e) if args.once => return Err(Failure::internal(e.into())),
                // A repeating sync keeps going: the failure is in `status`
                // and was logged when it began.
                Err(e) => {
                    eprintln!("sync: {e}; trying again next interval");
                    Default::default()
                }
            };
            let polled: Vec<String> = report
                .polled
                .iter()
                .map(|(s, c)| format!("{s} {} records", c.records))
                .collect();
            println!(
                "sync done: {}; {sent} sent, {problems} not sent this run (see `kendo-bridge status`)",
                if polled.is_empty() {
                    "no source polled".to_string()
                } else {
                    polled.join(", ")
                }
            );
            if args.once {
                return Ok(());
            }
            let interval = [
                engine.ctx.config.salesloft.as_ref().map(|c| c.poll_interval),
                engine.ctx.config.hubspot.as_ref().map(|c| c.poll_interval),
            ]
            .into_iter()
            .flatten()
            .filter(|d| !d.is_zero())
            .min()
            .unwrap_or(Duration::from_secs(60));
            tokio::time::sleep(interval).await;
        }
    })
}

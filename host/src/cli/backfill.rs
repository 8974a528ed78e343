//! `kendo-bridge backfill`: read a source from a date and deliver it, with
//! progress and an ETA from Kendo's per-key budget.

use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use kendo_bridge::delivery::Delivered;
use kendo_bridge::sources::CycleReport;
use kendo_bridge::timefmt;

use super::{Failure, Globals, ops};

const AFTER_HELP: &str = "\
Reads every call changed since --since (on its own checkpoint: the regular polling
checkpoint is untouched), queues those that qualify, then sends them paced at the Kendo
limit with a progress bar. Calls already sent are never sent again, so a backfill over a
period the bridge already covered only sends what is missing.

The ETA is the queue over the budget: at 30 requests per minute per key, 900 calls take
about 30 minutes. Interrupting is safe: run it again, or let `serve` send the rest.

Aloware has no API to read past calls from (webhooks only), so it cannot be backfilled.

Examples:
  kendo-bridge backfill --source salesloft --since 2026-04-01 --config bridge.toml
  kendo-bridge backfill --source hubspot --since 2026-04-01T09:00:00Z --no-deliver";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackfillSource {
    Salesloft,
    Hubspot,
}

/// Read a source from a date and deliver it.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct BackfillArgs {
    #[arg(long, value_enum)]
    source: BackfillSource,
    /// Start date: `2026-04-01` (midnight UTC) or RFC 3339.
    #[arg(long, value_name = "DATE")]
    since: String,
    /// Only queue the calls; `serve` or `sync` sends them.
    #[arg(long)]
    no_deliver: bool,
}

pub fn run(globals: &Globals, args: BackfillArgs) -> Result<(), Failure> {
    let since = timefmt::parse_date(&args.since).map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    let engine = globals.engine()?;
    let rt = ops::runtime()?;
    rt.block_on(async move {
        let reading = ProgressBar::new_spinner();
        reading.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        reading.enable_steady_tick(Duration::from_millis(120));
        let show = |c: &CycleReport| {
            reading.set_message(format!(
                "reading since {}: {} pages, {} calls, {} queued, {} updated, {} skipped, {} waiting, {} failed, {} already known",
                timefmt::iso(since),
                c.pages,
                c.records,
                c.report.enqueued,
                c.report.updated,
                c.report.skipped,
                c.report.waiting,
                c.report.failed,
                c.report.duplicates
            ))
        };
        let cycle = match args.source {
            BackfillSource::Salesloft => {
                let Some(sl) = &engine.sources.salesloft else {
                    return Err(Failure::usage(anyhow::anyhow!("[salesloft] is not enabled in the configuration")));
                };
                sl.backfill(since, show).await
            }
            BackfillSource::Hubspot => {
                let Some(hs) = &engine.sources.hubspot else {
                    return Err(Failure::usage(anyhow::anyhow!("[hubspot] is not enabled in the configuration")));
                };
                hs.backfill(since, show).await
            }
        }
        .map_err(|e| Failure::internal(e.into()))?;
        reading.finish_with_message(format!(
            "read {} calls in {} pages: {} queued, {} updated, {} skipped, {} waiting, {} failed, {} already known",
            cycle.records, cycle.pages, cycle.report.enqueued, cycle.report.updated,
            cycle.report.skipped, cycle.report.waiting, cycle.report.failed, cycle.report.duplicates
        ));
        if args.no_deliver {
            return Ok(());
        }
        let mut queued = 0u64;
        for team in &engine.teams {
            let name = team.team.clone();
            queued += engine
                .ctx
                .store
                .ledger(move |db| kendo_bridge_core::ledger::send::queue_depth(db, &name))
                .await
                .map_err(|e| Failure::internal(e.into()))?;
        }
        let spacing = engine.policy.window_ms as f64 / f64::from(engine.policy.limit.max(1))
            * (1.0 + engine.policy.margin);
        let per_key = queued as f64 / engine.teams.len().max(1) as f64;
        eprintln!(
            "sending {queued} calls at {} per {} per key: about {}",
            engine.policy.limit,
            ops::human_duration(engine.policy.window_ms),
            ops::human_duration((per_key * spacing) as i64)
        );
        let bar = ProgressBar::new(queued);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sent  ETA {eta}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut failures = 0u64;
        engine
            .deliver(Duration::from_secs(600), |event| {
                if let kendo_bridge::engine::SyncEvent::Delivered(_, d) = event {
                    match d {
                        Delivered::Created(_) => bar.inc(1),
                        Delivered::Dead(_) | Delivered::Rejected(_) | Delivered::Parked(_) => {
                            failures += 1;
                            bar.inc(1);
                        }
                        other => bar.set_message(format!("{other:?}")),
                    }
                }
            })
            .await
            .map_err(|e| Failure::internal(e.into()))?;
        bar.finish();
        println!(
            "backfill done: {} sent, {failures} failed for good; retries still queued are sent by `serve` or the next `sync`",
            bar.position().saturating_sub(failures)
        );
        Ok(())
    })
}

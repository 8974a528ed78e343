//! `kendo-bridge redecide`: map stored calls again under the current rules.

use clap::Args;

use kendo_bridge::sources::redecide::{FIXABLE_SKIPS, RETRYABLE_FAILURES};
use kendo_bridge::store::State;

use super::{Failure, Globals, ops};

const AFTER_HELP: &str = "\
A call skipped for a reason the configuration can fix (unknown-rep, invalid-rep-email,
below-minimum-duration, disposition-filtered) is decided again by itself when `serve` or
`sync` starts under changed rules ([rules], [[reps]], team routing or the plugin). This
command does it now, whether or not the rules changed, from the source record the bridge
kept (Salesloft, Aloware) or read again from the source (HubSpot). Calls it queues are sent
by the next `serve` or `sync`.

--include-failed also decides again calls that failed as unreadable or because the plugin
trapped: do that after changing the plugin (--plugin) or fixing the record at the source.

Examples:
  kendo-bridge redecide --config bridge.toml
  kendo-bridge redecide --reason unknown-rep --config bridge.toml
  kendo-bridge redecide --include-failed --plugin my-mapping.wasm --config bridge.toml";

/// Decide skipped calls again under the current rules.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RedecideArgs {
    /// Only calls skipped for this reason (repeatable). Default: every
    /// reason the configuration can fix.
    #[arg(long = "reason", value_name = "CODE", value_parser = clap::builder::PossibleValuesParser::new(FIXABLE_SKIPS))]
    reasons: Vec<String>,
    /// Also decide again calls that failed as unreadable or by a plugin trap.
    #[arg(long)]
    include_failed: bool,
}

pub fn run(globals: &Globals, args: RedecideArgs) -> Result<(), Failure> {
    let engine = globals.engine()?;
    let rt = ops::runtime()?;
    let skips: Vec<&'static str> = if args.reasons.is_empty() {
        FIXABLE_SKIPS.to_vec()
    } else {
        FIXABLE_SKIPS
            .into_iter()
            .filter(|c| args.reasons.iter().any(|r| r == c))
            .collect()
    };
    rt.block_on(async move {
        let mut runs = vec![engine
            .sources
            .redecide(&engine.ctx, State::Skipped, &skips)
            .await
            .map_err(|e| Failure::internal(e.into()))?];
        if args.include_failed {
            runs.push(
                engine
                    .sources
                    .redecide(&engine.ctx, State::Failed, &RETRYABLE_FAILURES)
                    .await
                    .map_err(|e| Failure::internal(e.into()))?,
            );
        }
        let (mut considered, mut queued, mut skipped, mut failed, mut waiting, mut not_kept) =
            (0, 0, 0, 0, 0, 0);
        let mut errors = Vec::new();
        for run in runs {
            considered += run.considered;
            queued += run.report.enqueued;
            skipped += run.report.skipped;
            failed += run.report.failed;
            waiting += run.report.waiting;
            not_kept += run.not_kept;
            errors.extend(run.errors);
        }
        println!(
            "{considered} call(s) decided again: {queued} queued for Kendo, {skipped} still skipped, \
             {waiting} waiting, {failed} failed; {not_kept} had no kept source record; {} could not be read now",
            errors.len()
        );
        for (key, why) in &errors {
            println!("  {}/{}: {why}", key.source, key.source_id);
        }
        if queued > 0 {
            println!("run `kendo-bridge serve` or `kendo-bridge sync --once` to send them");
        }
        Ok(())
    })
}

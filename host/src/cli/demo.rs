//! `kendo-bridge demo`: the bridge end to end on simulated services.

use std::path::PathBuf;

use clap::Args;

#[cfg(feature = "demo")]
use kendo_bridge::demo;

use super::{Failure, Globals};

const AFTER_HELP: &str = "\
Starts simulated Salesloft, HubSpot, Aloware and Kendo servers on 127.0.0.1 with a working
day of realistic calls, runs the bridge against them (polling and webhooks for the same
calls, Aloware deliveries, a recording that finishes later, Kendo's score webhooks) with
time sped up 30 times, and prints what happened: calls seen, sent, skipped with reasons,
duplicates suppressed, and Kendo's own count of duplicates and 429s. No account or
credential is needed; nothing leaves this machine.

The bridge serves its status page (GET /) while the demo runs; --keep-serving leaves the
bridge and the simulated services up after the run, with the page showing the run, until
Ctrl-C. The summary ends with the page's URL.

The state database stays in the demo directory: try
  kendo-bridge status --db <dir>/kendo-bridge.db
  kendo-bridge deliveries --db <dir>/kendo-bridge.db

Examples:
  kendo-bridge demo
  kendo-bridge demo --keep-serving";

/// Run the bridge end to end against simulated services.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DemoArgs {
    /// Where to keep the demo's configuration and state (a new temporary
    /// directory by default).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// After the run, keep the bridge (and the simulated services) up,
    /// serving its status page, until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,
}

/// This build carries no simulators (a release build): say how to get them.
#[cfg(not(feature = "demo"))]
pub fn run(_globals: &Globals, _args: DemoArgs) -> Result<(), Failure> {
    Err(Failure::usage(anyhow::anyhow!(
        "this kendo-bridge was built without the simulated services the demo needs \
         (release builds leave them out); from the source tree run `./dev demo`, or \
         `cargo run -p kendo-bridge --features demo -- demo`"
    )))
}

#[cfg(feature = "demo")]
pub fn run(globals: &Globals, args: DemoArgs) -> Result<(), Failure> {
    let plugin = globals.plugin()?;
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kendo-bridge-demo-{}", std::process::id()))
    });
    if dir.join("kendo-bridge.db").exists() {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} already holds a demo's state; pass another --dir",
            dir.display()
        )));
    }
    let rt = super::ops::runtime()?;
    let (summary, kept) = rt
        .block_on(demo::run_keeping(
            &dir,
            plugin,
            |line| eprintln!("  {line}"),
            args.keep_serving,
        ))
        .map_err(|e| Failure::internal(e.into()))?;

    println!(
        "\nkendo-bridge demo: done in {:.1} s",
        summary.elapsed.as_secs_f64()
    );
    println!(
        "  {:<10} {:>5} {:>5} {:>8} {:>8} {:>7}",
        "source", "seen", "sent", "skipped", "waiting", "failed"
    );
    for (source, l) in &summary.per_source {
        println!(
            "  {:<10} {:>5} {:>5} {:>8} {:>8} {:>7}",
            source, l.seen, l.sent, l.skipped, l.waiting, l.failed
        );
    }
    let reasons = |list: &[(String, u64)]| {
        list.iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !summary.skip_reasons.is_empty() {
        println!("  skipped because: {}", reasons(&summary.skip_reasons));
    }
    if !summary.wait_reasons.is_empty() {
        println!(
            "  still waiting because: {}",
            reasons(&summary.wait_reasons)
        );
    }
    println!(
        "  repeat sightings absorbed by the ledger (polling + webhooks, repeated deliveries): {}",
        summary.suppressed
    );
    println!(
        "  Kendo accepted {} calls in {} requests; duplicates in Kendo: {}; 429s caused by the bridge: {}",
        summary.kendo_accepted, summary.kendo_requests, summary.kendo_duplicates, summary.kendo_429
    );
    println!(
        "  Kendo score webhooks verified and stored: {}",
        summary.scores
    );
    println!(
        "  written back to HubSpot calls: Kendo Sent + Call ID on {}, Kendo AI Score on {}",
        summary.hubspot_marked_sent, summary.hubspot_marked_scored
    );
    println!(
        "  look around: kendo-bridge status --db {0}/kendo-bridge.db; kendo-bridge deliveries --db {0}/kendo-bridge.db",
        summary.dir.display()
    );
    if summary.ok() {
        println!("  every call that should reach Kendo did, exactly once.");
    }
    // The page's URL ends the summary in both modes.
    match kept {
        Some(kept) => {
            println!(
                "  status page: {} (the bridge and the simulated services stay up until Ctrl-C)",
                summary.page_url
            );
            rt.block_on(kept.serve_until(super::serve::wait_for_signal()));
        }
        None => println!(
            "  status page: it was at {} during the run; `kendo-bridge demo --keep-serving` (or `./dev demo --keep-serving`) keeps it up",
            summary.page_url
        ),
    }
    if summary.ok() {
        Ok(())
    } else {
        Err(Failure::internal(anyhow::anyhow!(
            "the demo did not meet its promises: missing {:?}, duplicates {}, 429s {}",
            summary.missing,
            summary.kendo_duplicates,
            summary.kendo_429
        )))
    }
}

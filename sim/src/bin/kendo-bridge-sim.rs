//! Starts the simulated Salesloft, HubSpot and Kendo with the demo data set
//! on fixed ports and prints where they are, for trying the bridge by hand.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kendo_bridge_sim::dataset::Source;
use kendo_bridge_sim::{
    AlowareAuth, DEMO_HUBSPOT_TOKEN, DEMO_KENDO_KEY, DEMO_KENDO_TEAM, DEMO_SALESLOFT_KEY, Dataset,
    SimOptions, Simulators,
};

/// Simulated Salesloft, HubSpot, Aloware and Kendo, loaded with a demo day.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Simulated seconds per real second (30 = a minute passes in 2 s).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Seed for the generated calls.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, default_value_t = 7101)]
    salesloft_port: u16,
    #[arg(long, default_value_t = 7102)]
    hubspot_port: u16,
    #[arg(long, default_value_t = 7103)]
    kendo_port: u16,
    /// Deliver the demo's Aloware events to this URL (the bridge's Aloware
    /// webhook endpoint) once the servers are up.
    #[arg(long)]
    aloware_url: Option<String>,
    /// Bearer token for the Aloware deliveries.
    #[arg(long, requires = "aloware_url")]
    aloware_bearer: Option<String>,
    /// After this many real seconds, finish the processing recordings and
    /// in-progress calls.
    #[arg(long, default_value_t = 30)]
    later_after_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sims = Simulators::start(SimOptions {
        time_scale: args.time_scale,
        ports: Some((args.salesloft_port, args.hubspot_port, args.kendo_port)),
        ..SimOptions::default()
    })
    .await
    .context("starting the simulators")?;
    let data = Dataset::demo(args.seed);
    data.load(&sims);

    println!("kendo-bridge-sim (time scale {})", args.time_scale);
    println!();
    println!(
        "Salesloft  {}/v2   Bearer {DEMO_SALESLOFT_KEY}",
        sims.salesloft_url()
    );
    println!(
        "HubSpot    {}      Bearer {DEMO_HUBSPOT_TOKEN}",
        sims.hubspot_url()
    );
    println!(
        "Kendo      {}   X-API-Key {DEMO_KENDO_KEY} (team \"{DEMO_KENDO_TEAM}\")",
        sims.kendo.ingest_url()
    );
    println!();
    println!("Rep directory:");
    for e in data.rep_directory() {
        let source = match e.source {
            Source::Salesloft => "salesloft user",
            Source::Hubspot => "hubspot owner",
            Source::Aloware => "aloware user",
        };
        println!("  {source:<15} {:<10} {} <{}>", e.key, e.name, e.email);
    }
    println!();
    println!(
        "{} Salesloft calls, {} HubSpot calls, {} Aloware events loaded.",
        data.salesloft_calls.len(),
        data.hubspot_calls.len(),
        data.aloware_events.len()
    );

    if let Some(url) = &args.aloware_url {
        let auth = match &args.aloware_bearer {
            Some(t) => AlowareAuth::Bearer(t.clone()),
            None => AlowareAuth::None,
        };
        for (i, r) in data
            .deliver_aloware(&sims.aloware, url, &auth, Duration::from_millis(500))
            .await
            .into_iter()
            .enumerate()
        {
            match r {
                Ok(status) => println!("Aloware event {i}: {status}"),
                Err(e) => println!("Aloware event {i}: {e}"),
            }
        }
    }

    let later = tokio::time::sleep(Duration::from_secs(args.later_after_secs));
    tokio::pin!(later);
    let mut applied = false;
    println!("Ctrl-C to stop.");
    loop {
        tokio::select! {
            _ = &mut later, if !applied => {
                applied = true;
                data.apply_later(&sims).context("applying the later changes")?;
                println!("Processing recordings finished; in-progress calls completed.");
            }
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for Ctrl-C")?;
                break;
            }
        }
    }
    let stats = sims.kendo.stats();
    println!(
        "Kendo received {} requests and created {} calls ({} duplicates).",
        stats.requests,
        stats.created,
        sims.kendo.duplicates().len()
    );
    Ok(())
}

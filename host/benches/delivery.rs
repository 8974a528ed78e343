//! Delivery benchmarks, measured side by side in one run:
//!
//! 1. Draining a Salesloft backlog of N calls into the simulated Kendo at
//!    its per-key limit (30 per minute, time-scaled): the drain time over
//!    the theoretical N / limit, and the 429s Kendo answered; by one bridge,
//!    then by two bridges sharing one state database.
//! 2. Verified Kendo webhooks durably stored per second on loopback, with
//!    p50 / p99 latency, from concurrent clients; and the same deliveries
//!    handled by the Spin app (composed with the plugin) in the test host.
//!
//!    And the same deliveries on a real `spin up` when a Spin CLI is found
//!    (SPIN_BIN, target/spin-cli, or `spin` on PATH), twice: with the
//!    default `database_sync` (normal) and with `full` (every commit
//!    waits for the disk).
//! 3. With `--spin-drain`: N calls queued on two real `spin up` processes
//!    sharing one database, drained by ticks on the README's schedule (one
//!    each minute per process, `tick_seconds = 55`), in real time: about
//!    11 minutes for 300.
//!
//! `cargo bench -p kendo-bridge --bench delivery [-- --n 300 --webhooks 4000 --clients 16 --spin-drain | --webhooks-only]`
//! (or `KENDO_BRIDGE_BENCH_N`, `KENDO_BRIDGE_BENCH_WEBHOOKS`). Nothing here
//! asserts a speed: it prints what it measured and the goal next to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hmac::{Hmac, Mac};
use kendo_bridge::demo::{KENDO_WEBHOOK_SECRET, Stage, StageOptions};
use kendo_bridge::plugin::Plugin;
use kendo_bridge_sim::{DEMO_KENDO_KEY, Dataset};
use serde_json::json;
use tokio::sync::watch;

/// Kendo's limit per key and window, as the simulator and the stage use it.
const LIMIT: f64 = 30.0;

struct Args {
    n: usize,
    webhooks: usize,
    clients: usize,
    /// Also drain N calls on two real `spin up` processes (real time).
    spin_drain: bool,
    /// Only the webhook measurements.
    webhooks_only: bool,
}

fn args() -> anyhow::Result<Args> {
    let env = |name: &str, default: usize| -> anyhow::Result<usize> {
        match std::env::var(name) {
            Ok(v) => v
                .parse()
                .with_context(|| format!("{name}={v} is not a count")),
            Err(_) => Ok(default),
        }
    };
    let mut args = Args {
        n: env("KENDO_BRIDGE_BENCH_N", 300)?,
        webhooks: env("KENDO_BRIDGE_BENCH_WEBHOOKS", 4_000)?,
        clients: 16,
        spin_drain: false,
        webhooks_only: false,
    };
    // `cargo bench` adds `--bench`; anything unknown is ignored likewise.
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let slot = match arg.as_str() {
            "--spin-drain" => {
                args.spin_drain = true;
                continue;
            }
            "--webhooks-only" => {
                args.webhooks_only = true;
                continue;
            }
            "--n" => &mut args.n,
            "--webhooks" => &mut args.webhooks,
            "--clients" => &mut args.clients,
            _ => continue,
        };
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        *slot = value
            .parse()
            .with_context(|| format!("{arg} {value} is not a count"))?;
    }
    if args.n == 0 || args.webhooks == 0 || args.clients == 0 {
        bail!("--n, --webhooks and --clients must be at least 1");
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("kendo-bridge delivery benchmarks ({cores} cores)");
    rt.block_on(async {
        if !args.webhooks_only {
            drain(args.n, 1).await?;
            drain(args.n, 2).await?;
        }
        let host = webhooks(args.webhooks, args.clients).await?;
        let real_spin = real_spin_webhooks(args.webhooks, args.clients, "normal").await?;
        let real_spin_full = match real_spin {
            Some(_) => real_spin_webhooks(args.webhooks, args.clients, "full").await?,
            None => None,
        };
        let spin = spin_webhooks(args.webhooks, args.clients).await?;
        println!();
        if let Some(real_spin) = real_spin {
            println!(
                "webhooks stored per second, the Spin app on a real Spin over the host: {:.2}   (goal: at least 500/s, p99 at most 100 ms)",
                real_spin / host
            );
        }
        if let (Some(normal), Some(full)) = (real_spin, real_spin_full) {
            println!(
                "webhooks stored per second on a real Spin, database_sync=full over the default normal: {:.2}",
                full / normal
            );
        }
        println!(
            "webhooks stored per second, Spin app in the test host over the host: {:.2}",
            spin / host
        );
        if args.spin_drain {
            real_spin_drain(args.n).await?;
        } else {
            println!();
            println!(
                "the drain on a real Spin (about 11 minutes for 300 calls, in real time): add --spin-drain"
            );
        }
        Ok(())
    })
}

/// A stage in a temporary directory with bridges serving it, all on its
/// one state database.
struct Serving {
    stage: Stage,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), kendo_bridge::engine::EngineError>>>,
    _dir: tempfile::TempDir,
}

async fn serve(
    dataset: Dataset,
    options: StageOptions,
    instances: usize,
) -> anyhow::Result<Serving> {
    let dir = tempfile::tempdir()?;
    let mut stage = Stage::start(dataset, dir.path(), options).await?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..instances.max(1) {
        let engine = stage.engine(Plugin::embedded()?)?;
        let listener = match i {
            0 => stage.listener.take().context("the stage's listener")?,
            _ => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        tasks.push(tokio::spawn(engine.serve(listener, stopped.clone())));
    }
    Ok(Serving {
        stage,
        stop,
        tasks,
        _dir: dir,
    })
}

impl Serving {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

async fn drain(n: usize, instances: usize) -> anyhow::Result<()> {
    // ~20 s of drain whatever N is: x30 for 300 calls, faster for more.
    let time_scale = 30.0 * (n as f64 / 300.0).max(1.0);
    let options = StageOptions {
        time_scale,
        ..StageOptions::default()
    };
    let serving = serve(Dataset::backlog(n, 1), options, instances).await?;
    let kendo = serving.stage.sims.kendo.clone();
    let patience = Instant::now() + Duration::from_secs(300);
    while kendo.accepted().len() < n {
        if Instant::now() > patience {
            bail!(
                "only {} of {n} calls reached Kendo in 5 minutes",
                kendo.accepted().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!();
    println!(
        "drain of {n} calls by {instances} bridge(s) on one state database into Kendo's limit (30 per minute per key, time x{time_scale:.0}: 30 per {} ms)",
        kendo.window().as_millis()
    );
    report_drain(&kendo, n, "1.02")?;
    serving.stop().await
}

fn kendo_webhook(i: usize) -> (String, String, String) {
    let id = format!("evt_bench_{i:08}");
    let body = json!({
        "id": id,
        "event": "call.uploaded",
        "created_at": "2026-04-22T16:00:00Z",
        "data": {
            "callId": format!("call_{i}"),
            "agentId": "agent_5c1f0e",
            "agentName": "Jamie Rivera",
            "userId": "user_5c1f0e",
            "teamMemberUserId": "member_5c1f0e",
            "duration": 485,
            "aiScore": format!("{}", 60 + i % 40),
            "timestamp": "2026-04-22T16:00:00Z",
        },
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KENDO_WEBHOOK_SECRET.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    (id, body, signature)
}

/// What posting signed Kendo webhooks measured.
struct Load {
    stored: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn per_second(&self) -> f64 {
        self.stored as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies.get(i).copied().unwrap_or_default()
    }

    fn print(&self, total: usize) {
        println!(
            "  {:.0} stored/s ({} of {total} answered 200 in {:.2} s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.per_second(),
            self.stored,
            self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.latencies
                .last()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3,
        );
    }
}

/// Posts `total` signed Kendo webhooks to `url` from `clients` concurrent
/// clients over loopback HTTP; a delivery counts when answered 200.
async fn post_webhooks(url: &str, total: usize, clients: usize) -> anyhow::Result<Load> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    // Signing is the senders' work, not the bridge's: done before the clock starts.
    let requests: Arc<Vec<(String, String, String)>> =
        Arc::new((0..total).map(kendo_webhook).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, requests, next) = (
            http.clone(),
            url.to_string(),
            requests.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((id, body, signature)) = requests.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let answer = http
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Kendo-Signature", signature)
                    .header("X-Kendo-Event", "call.uploaded")
                    .header("X-Kendo-Delivery-Id", id)
                    .body(body.clone())
                    .send()
                    .await;
                if let Ok(answer) = answer
                    && answer.status().as_u16() == 200
                    && answer.bytes().await.is_ok()
                {
                    latencies.push(sent.elapsed());
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.append(&mut task.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Load {
        stored: latencies.len(),
        elapsed,
        latencies,
    })
}

async fn webhooks(total: usize, clients: usize) -> anyhow::Result<f64> {
    let options = StageOptions {
        // The webhook server alone: no polling.
        poll_interval: Duration::ZERO,
        ..StageOptions::default()
    };
    let serving = serve(Dataset::default(), options, 1).await?;
    let url = serving.stage.webhook_url("kendo");
    let load = post_webhooks(&url, total, clients).await?;
    println!();
    println!(
        "verified Kendo webhooks durably stored, loopback, {clients} concurrent clients, {total} deliveries"
    );
    println!("  the host (kendo-bridge serve):");
    load.print(total);
    println!(
        "  each 200 follows the signature check in the plugin and a commit per delivery \
         (SQLite WAL, synchronous=NORMAL: in the log before the answer); the inbox processor \
         records each result meanwhile"
    );
    serving.stop().await?;
    Ok(load.per_second())
}

/// The same deliveries through the Spin app on a real `spin up` (the
/// shipped spin.toml, the plugin composed by Spin), over loopback HTTP: a
/// fresh instance per request, each answered once its delivery is
/// committed (WAL, synchronous=NORMAL), the result recorded after the
/// answer; the CPU counted once every result is recorded. None without a
/// Spin CLI (said).
/// `sync`: the app's `database_sync` (`normal`, the default, or `full`).
async fn real_spin_webhooks(
    total: usize,
    clients: usize,
    sync: &str,
) -> anyhow::Result<Option<f64>> {
    use kendo_bridge_spin_host::real::{self, RealSpin};
    let cli = match real::cli() {
        Ok(cli) => cli,
        Err(why) => {
            println!();
            println!("the same deliveries on a real Spin: skipped ({why})");
            return Ok(None);
        }
    };
    let dir = tempfile::tempdir()?;
    let spin = RealSpin::start(
        &cli,
        &real::root().join("spin.toml"),
        &dir.path().join("bridge.db"),
        &dir.path().join("spin"),
        &[
            ("kendo_api_key", DEMO_KENDO_KEY),
            ("kendo_webhook_secret", KENDO_WEBHOOK_SECRET),
            ("database_sync", sync),
        ],
    )
    .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    // The first request compiles the component (Spin caches it after).
    let _ = spin.request("GET", "/status", &[], "").await;
    let cpu_before = cpu_seconds(spin.pid());
    let load = post_webhooks(&format!("{}/webhooks/kendo", spin.url), total, clients).await?;
    let answered = Instant::now();
    // The processing that follows each answer, finished: every result in
    // the ledger (or 30 s passed).
    let database = dir.path().join("bridge.db");
    let mut recorded = results_recorded(&database);
    while recorded < total && answered.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        recorded = results_recorded(&database);
    }
    let processed = answered.elapsed();
    let cpu = cpu_seconds(spin.pid()).zip(cpu_before).map(|(a, b)| a - b);
    println!(
        "  the Spin app on a real `spin up` ({}), database_sync={sync}:",
        cli.display()
    );
    load.print(total);
    println!(
        "  {recorded} of {total} results recorded in the ledger {:.0} ms after the last answer",
        processed.as_secs_f64() * 1e3
    );
    if let Some(cpu) = cpu {
        println!(
            "  spin up used {:.2} s of CPU: {:.2} ms a delivery (stored, answered, then processed)",
            cpu,
            cpu * 1e3 / total as f64
        );
    }
    println!(
        "  each 200 follows the signature check in the composed plugin and a committed SQLite \
         transaction (WAL, synchronous={}, a connection per request as Spin opens one); the \
         result is recorded after the answer",
        sync.to_uppercase()
    );
    if load.stored < total {
        bail!(
            "only {} of {total} deliveries to the real Spin answered 200; spin up said:\n{}",
            load.stored,
            spin.log_text()
        );
    }
    Ok(Some(load.per_second()))
}

/// Kendo results in the ledger at `database`, read without writing (0 while
/// the file cannot be read yet).
fn results_recorded(database: &std::path::Path) -> usize {
    let read = || -> rusqlite::Result<i64> {
        let conn = rusqlite::Connection::open_with_flags(
            database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        conn.query_row("SELECT COUNT(*) FROM kendo_results", [], |row| row.get(0))
    };
    read().map_or(0, |n| n.max(0) as usize)
}

/// The same signed Kendo webhooks handled by the Spin app in the test host:
/// a fresh instance per request, as Spin runs it, verifying with the
/// composed plugin and storing each result in the app's SQLite ledger (a
/// file, WAL, one committed transaction per delivery, as the host's).
/// Requests are handed to the instance directly, not over a socket.
async fn spin_webhooks(total: usize, clients: usize) -> anyhow::Result<f64> {
    use kendo_bridge_spin_host::SpinApp;
    let variables = std::collections::HashMap::from([
        ("kendo_api_key".to_string(), DEMO_KENDO_KEY.to_string()),
        (
            "kendo_webhook_secret".to_string(),
            KENDO_WEBHOOK_SECRET.to_string(),
        ),
    ]);
    let app = SpinApp::load(
        &SpinApp::built_component(),
        &SpinApp::built_plugin(),
        variables,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("the Spin app (build it with ./dev lint first)")?;
    let requests: Arc<Vec<(String, String, String)>> =
        Arc::new((0..total).map(kendo_webhook).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (app, requests, next) = (app.clone(), requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, body, signature)) = requests.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let answer = app
                    .request(
                        "POST",
                        "/webhooks/kendo",
                        &[
                            ("content-type", "application/json"),
                            ("x-kendo-signature", signature.as_str()),
                        ],
                        body.clone(),
                    )
                    .await;
                if answer.is_ok_and(|a| a.status == 200 && a.body.contains("stored")) {
                    latencies.push(sent.elapsed());
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.append(&mut task.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let stored = latencies.len();
    let percentile = |p: f64| -> Duration {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(i).copied().unwrap_or_default()
    };
    let in_ledger = app
        .query("SELECT COUNT(*) FROM kendo_results")
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .first()
        .and_then(|row| row.first())
        .cloned()
        .unwrap_or_default();
    println!();
    println!(
        "the same deliveries through the Spin app in the test host (wasmtime, composed plugin, fresh instance per request), {clients} concurrent clients"
    );
    println!(
        "  {:.0} stored/s ({stored} answered 200 in {:.2} s, {in_ledger} results in the app's ledger); latency p50 {:.2} ms, p99 {:.2} ms",
        stored as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3
    );
    println!(
        "  each 200 follows the signature check in the plugin and a committed SQLite transaction (a file in WAL mode, a fresh connection per request, as Spin opens one)"
    );
    if stored < total {
        bail!("only {stored} of {total} Spin deliveries answered 200 stored");
    }
    Ok(stored as f64 / elapsed.as_secs_f64())
}

/// `n` Aloware calls delivered to two real `spin up` processes sharing one
/// database, then drained by the README's schedule: each process ticked
/// once a minute with `tick_seconds = 55`. Real time: Kendo's window is a
/// real minute here. Prints the drain over the theoretical n / 30 minutes.
async fn real_spin_drain(n: usize) -> anyhow::Result<()> {
    use kendo_bridge_sim::aloware::{AlowareCall, captured_completed_call};
    use kendo_bridge_sim::{SimOptions, Simulators};
    use kendo_bridge_spin_host::real::{self, RealSpin};
    const SECRET: &str = "bench-aloware-secret";
    let cli = match real::cli() {
        Ok(cli) => cli,
        Err(why) => {
            println!();
            println!("the drain on a real Spin: skipped ({why})");
            return Ok(());
        }
    };
    let sims = Simulators::start(SimOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let kendo_url = sims.kendo_url();
    let variables = [
        ("kendo_api_key", DEMO_KENDO_KEY),
        ("kendo_url", kendo_url.as_str()),
        ("aloware_secret", SECRET),
        (
            "rep_directory",
            r#"[{"key": "4242", "email": "sam@yourco.com", "name": "Sam Rivera"}]"#,
        ),
        ("aloware_transcript_wait_seconds", "0"),
        ("tick_seconds", "55"),
    ];
    let start = |name: &str| {
        RealSpin::start(
            &cli,
            &real::root().join("spin.toml"),
            &dir.path().join("bridge.db"),
            &dir.path().join(name),
            &variables,
        )
        .map_err(|e| anyhow::anyhow!("{e:#}"))
    };
    let spins = Arc::new([start("one")?, start("two")?]);
    let started = Instant::now();
    // Every call delivered (its three captured deliveries), half to each
    // process, eight at a time.
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (spins, next) = (spins.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let call = AlowareCall::captured(500_000 + i as u64, 4_242);
                let spin = &spins[i % 2];
                for step in captured_completed_call(&call, "https://app.aloware.io/r/b", "s", "t")
                    .iter()
                    .take(3)
                {
                    let answer = spin
                        .request(
                            "POST",
                            "/webhooks/aloware",
                            &[
                                ("content-type", "application/json"),
                                ("authorization", &format!("Bearer {SECRET}")),
                            ],
                            step.payload.to_string(),
                        )
                        .await
                        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
                    if answer.status != 200 {
                        bail!("a delivery was answered {}: {}", answer.status, answer.body);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let delivered = started.elapsed();
    // The schedule: both processes ticked at each minute, as two replicas
    // each with its cron; a tick lasts up to 55 s.
    let kendo = sims.kendo.clone();
    let patience = Instant::now() + Duration::from_secs(60 * (n as u64 / 20 + 5));
    let mut minute = 0u32;
    while kendo.accepted().len() < n {
        if Instant::now() > patience {
            bail!("only {} of {n} calls reached Kendo", kendo.accepted().len());
        }
        let ticks: Vec<_> = (0..2)
            .map(|p| {
                let spins = spins.clone();
                tokio::spawn(async move { spins[p].request("POST", "/tick", &[], "").await })
            })
            .collect();
        let next_minute = started + delivered + Duration::from_secs(60 * u64::from(minute + 1));
        while Instant::now() < next_minute && kendo.accepted().len() < n {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for t in ticks {
            t.abort();
        }
        minute += 1;
    }
    println!();
    println!(
        "drain of {n} calls on two real `spin up` processes sharing one database, ticked once a minute each (tick_seconds = 55), real time; {n} calls delivered in {:.1} s",
        delivered.as_secs_f64()
    );
    report_drain(&kendo, n, "1.1")
}

/// Prints a drain's time from the first request to the last acceptance
/// over the theoretical n / limit of Kendo's window, and its 429s,
/// busiest window and duplicates.
fn report_drain(
    kendo: &kendo_bridge_sim::kendo::KendoSim,
    n: usize,
    goal: &str,
) -> anyhow::Result<()> {
    let requests = kendo.requests();
    let accepted = kendo.accepted();
    let first = requests.first().context("no request reached Kendo")?.at;
    let last = accepted
        .iter()
        .map(|c| c.arrived_at)
        .max()
        .context("no call accepted")?;
    let drained = last.duration_since(first);
    let theoretical = kendo.window().mul_f64(n as f64 / LIMIT);
    let stats = kendo.stats();
    println!(
        "  first request to last acceptance {:.2} s; theoretical N/limit {:.2} s",
        drained.as_secs_f64(),
        theoretical.as_secs_f64()
    );
    println!(
        "  ratio {:.4}   (goal <= {goal})",
        drained.as_secs_f64() / theoretical.as_secs_f64()
    );
    println!(
        "  429s {}   (goal 0); busiest window held {} requests (limit 30); requests {}, duplicates {}",
        stats.rate_limited_429,
        kendo.max_requests_in_any_window(DEMO_KENDO_KEY),
        stats.requests,
        kendo.duplicates().len()
    );
    Ok(())
}

/// CPU time (user and system) process `pid` and its children have used,
/// in seconds (Linux): `spin up` runs the app in a child process.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = |pid: &str| -> Option<(u32, f64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The fields after the command name (which may hold spaces).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let parent = fields.get(1)?.parse().ok()?;
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on Linux.
        Some((parent, ticks / 100.0))
    };
    let mut total = stat(&pid.to_string())?.1;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((parent, seconds)) = stat(name)
            && parent == pid
        {
            total += seconds;
        }
    }
    Some(total)
}

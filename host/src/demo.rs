//! The demonstration: the bridge end to end against simulated Salesloft,
//! HubSpot, Aloware and Kendo, with time sped up.
//!
//! [`Stage`] (simulators plus a generated configuration) is also what the
//! end-to-end tests and the benchmarks build on, so the demo exercises the
//! same paths they check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kendo_bridge_sim::{
    AlowareAuth, DEMO_HUBSPOT_TOKEN, DEMO_KENDO_KEY, DEMO_SALESLOFT_KEY, Dataset, SimOptions,
    Simulators,
};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::BridgeConfig;
use crate::engine::{Engine, EngineError};
use crate::plugin::Plugin;
use crate::store::State;
use kendo_bridge_core::ledger::{report, write_back};

/// Webhook secrets the demo configures on both sides.
pub const SALESLOFT_CALLBACK_TOKEN: &str = "demo-salesloft-callback-token";
pub const HUBSPOT_CLIENT_SECRET: &str = "demo-hubspot-client-secret";
pub const ALOWARE_SECRET: &str = "demo-aloware-bearer-secret";
pub const KENDO_WEBHOOK_SECRET: &str = "demo-kendo-webhook-secret";

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("a simulator failed: {0}")]
    Sim(#[from] kendo_bridge_sim::SimError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write the demo directory {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::BridgeConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How to stage the simulated world.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Simulated seconds per real second. At 30, Kendo's limit of 30 per
    /// minute becomes 30 per 2 s.
    pub time_scale: f64,
    /// How often the bridge polls (real time).
    pub poll_interval: Duration,
    /// Kendo's request timeout as configured in the bridge.
    pub kendo_timeout: Duration,
    /// The bridge's back-off base for 5xx and timeouts.
    pub retry_base: Duration,
    pub max_attempts: u32,
    pub min_duration_seconds: u32,
    /// How long an Aloware call ready with its recording waits for its
    /// transcript (real time; `aloware.transcript_wait`).
    pub aloware_transcript_wait: Duration,
    /// `kendo.ambiguous_resends`: re-sends after a lost answer before a
    /// call is parked as outcome-unknown.
    pub ambiguous_resends: u32,
    /// `server.operator_token` (kept in a secret file): the status page's
    /// replay and resume need it. `None` leaves the page read-only.
    pub operator_token: Option<String>,
    /// `hubspot.write_back`: Kendo's answers written back to HubSpot calls.
    pub hubspot_write_back: bool,
    /// `kendo.pacing_margin`. A compressed minute leaves the real 1% a few
    /// milliseconds (20 ms of 2 s at x30): a test asserting no 429 on a
    /// loaded machine needs more slack than the bridge's default.
    pub pacing_margin: f64,
}

impl Default for StageOptions {
    fn default() -> Self {
        StageOptions {
            time_scale: 30.0,
            pacing_margin: kendo_bridge_core::policy::Policy::DEFAULT
                .kendo
                .pacing_margin,
            poll_interval: Duration::from_millis(500),
            kendo_timeout: Duration::from_secs(5),
            retry_base: Duration::from_millis(200),
            max_attempts: 8,
            min_duration_seconds: 0,
            // A simulated minute at the default 30x: the captured transcript
            // came 44 s after the recording.
            aloware_transcript_wait: Duration::from_secs(2),
            ambiguous_resends: 1,
            operator_token: None,
            hubspot_write_back: false,
        }
    }
}

/// Simulators with data, a listening socket for the bridge, and a
/// configuration file (with secret files) that points the bridge at them.
pub struct Stage {
    pub sims: Simulators,
    pub dataset: Dataset,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub listener: Option<TcpListener>,
    pub bridge_url: String,
    pub options: StageOptions,
}

impl Stage {
    /// Starts the simulators, loads `dataset` into them, binds the bridge's
    /// webhook socket and writes `dir/bridge.toml`.
    pub async fn start(
        dataset: Dataset,
        dir: &Path,
        options: StageOptions,
    ) -> Result<Stage, DemoError> {
        let sims = Simulators::start(SimOptions {
            time_scale: options.time_scale,
            hubspot_search_lag: Duration::from_secs(2),
            ..SimOptions::default()
        })
        .await?;
        dataset.load(&sims);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| DemoError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| DemoError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let bridge_url = format!("http://{addr}");
        let io = |source, path: &Path| DemoError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
        let secrets = [
            ("kendo-key", DEMO_KENDO_KEY),
            ("salesloft-key", DEMO_SALESLOFT_KEY),
            ("hubspot-token", DEMO_HUBSPOT_TOKEN),
            ("salesloft-callback-token", SALESLOFT_CALLBACK_TOKEN),
            ("hubspot-client-secret", HUBSPOT_CLIENT_SECRET),
            ("aloware-secret", ALOWARE_SECRET),
            ("kendo-webhook-secret", KENDO_WEBHOOK_SECRET),
        ];
        let mut files = BTreeMap::new();
        for (name, value) in secrets {
            let path = dir.join(format!("{name}.secret"));
            std::fs::write(&path, value).map_err(|e| io(e, &path))?;
            files.insert(name, toml_path(&path));
        }
        let operator_token = match &options.operator_token {
            Some(token) => {
                let path = dir.join("operator-token.secret");
                std::fs::write(&path, token).map_err(|e| io(e, &path))?;
                format!("operator_token = {{ file = \"{}\" }}\n", toml_path(&path))
            }
            None => String::new(),
        };
        let window_ms = (60_000.0 / options.time_scale).round().max(1.0) as u64;
        let margin = options.pacing_margin;
        let mut reps = String::new();
        for entry in dataset.rep_directory() {
            reps.push_str(&format!(
                "\n[[reps]]\nkey = \"{}\"\nemail = \"{}\"\nname = \"{}\"\n",
                entry.key, entry.email, entry.name
            ));
        }
        // Different sources give reps different ids, so one directory serves
        // all three; keys that collide across sources would need
        // per-source directories, which the demo data avoids.
        let config = format!(
            r#"# Written by kendo-bridge's demo: the bridge against simulated services.
state = "{state}"

[server]
listen = "{addr}"
public_url = "{bridge_url}"
{operator_token}
[kendo]
url = "{kendo}"
requests_per_window = 30
window = "{window_ms}ms"
pacing_margin = {margin}
timeout = "{timeout}ms"
ambiguous_resends = {ambiguous_resends}
webhook_secret = {{ file = "{kendo_webhook}" }}

[kendo.retry]
base = "{retry}ms"
cap = "{retry_cap}ms"
max_attempts = {attempts}

[[kendo.teams]]
name = "{team}"
api_key = {{ file = "{kendo_key}" }}

[salesloft]
api_url = "{salesloft}"
api_key = {{ file = "{salesloft_key}" }}
poll_interval = "{poll}ms"
initial_lookback = "20000days"
transcripts = true
rate_limit_window = "{window_ms}ms"
webhook_secret = {{ file = "{salesloft_cb}" }}

[hubspot]
api_url = "{hubspot}"
token = {{ file = "{hubspot_token}" }}
poll_interval = "{poll}ms"
initial_lookback = "20000days"
lookback = "30s"
transcripts = true
webhook_secret = {{ file = "{hubspot_secret}" }}
signature = "auto"
write_back = {hubspot_write_back}
write_back_per_second = {write_back_per_second}
write_back_attempts = 20

[aloware]
webhook_secret = {{ file = "{aloware}" }}
transcript_wait = "{transcript_wait}ms"

[rules]
min_duration_seconds = {min_duration}
{reps}"#,
            state = toml_path(&dir.join("kendo-bridge.db")),
            kendo = sims.kendo_url(),
            timeout = options.kendo_timeout.as_millis(),
            ambiguous_resends = options.ambiguous_resends,
            kendo_webhook = files["kendo-webhook-secret"],
            retry = options.retry_base.as_millis(),
            retry_cap = options.retry_base.as_millis() * 16,
            attempts = options.max_attempts,
            team = kendo_bridge_sim::DEMO_KENDO_TEAM,
            kendo_key = files["kendo-key"],
            salesloft = sims.salesloft_url(),
            salesloft_key = files["salesloft-key"],
            poll = options.poll_interval.as_millis(),
            salesloft_cb = files["salesloft-callback-token"],
            hubspot = sims.hubspot_url(),
            hubspot_token = files["hubspot-token"],
            hubspot_secret = files["hubspot-client-secret"],
            hubspot_write_back = options.hubspot_write_back,
            // Two a second of simulated time, as the default is in real time.
            write_back_per_second = (2.0 * options.time_scale).ceil().max(1.0) as u32,
            aloware = files["aloware-secret"],
            transcript_wait = options.aloware_transcript_wait.as_millis(),
            min_duration = options.min_duration_seconds,
        );
        let config_path = dir.join("bridge.toml");
        std::fs::write(&config_path, config).map_err(|e| io(e, &config_path))?;
        Ok(Stage {
            sims,
            dataset,
            dir: dir.to_path_buf(),
            config_path,
            listener: Some(listener),
            bridge_url,
            options,
        })
    }

    /// The generated configuration.
    pub fn config(&self) -> Result<BridgeConfig, DemoError> {
        Ok(BridgeConfig::load(&self.config_path)?)
    }

    /// Opens an engine on the generated configuration.
    pub fn engine(&self, plugin: Plugin) -> Result<Engine, DemoError> {
        Ok(Engine::open(self.config()?, plugin, Clock::system())?)
    }

    /// A webhook URL of the bridge.
    pub fn webhook_url(&self, source: &str) -> String {
        format!("{}/webhooks/{source}", self.bridge_url)
    }

    /// Delivers every Aloware event of the data set, in order.
    pub async fn deliver_aloware(&self) -> Vec<Result<u16, kendo_bridge_sim::SimError>> {
        self.dataset
            .deliver_aloware(
                &self.sims.aloware,
                &self.webhook_url("aloware"),
                &AlowareAuth::Bearer(ALOWARE_SECRET.into()),
                Duration::from_millis(20),
            )
            .await
    }

    /// Whether every call the data set expects to be sent reached Kendo.
    pub fn all_expected_sent(&self) -> bool {
        self.missing().is_empty()
    }

    /// Expected sends Kendo has not accepted yet, as (source, id).
    pub fn missing(&self) -> Vec<(String, String)> {
        let accepted: Vec<(String, String)> = self
            .sims
            .kendo
            .accepted()
            .iter()
            .filter_map(|c| Some((c.source()?.to_string(), c.source_call_id()?)))
            .collect();
        self.dataset
            .expected_sent(self.options.min_duration_seconds)
            .into_iter()
            .map(|(s, id)| (s.as_str().to_string(), id))
            .filter(|k| !accepted.contains(k))
            .collect()
    }
}

fn toml_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// What the demo saw, per source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceLine {
    pub seen: u64,
    pub sent: u64,
    pub skipped: u64,
    pub waiting: u64,
    pub failed: u64,
}

/// The demo's result.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub per_source: BTreeMap<String, SourceLine>,
    pub skip_reasons: Vec<(String, u64)>,
    pub wait_reasons: Vec<(String, u64)>,
    /// Sightings of calls already known (polling and webhooks, repeats).
    pub suppressed: u64,
    pub kendo_accepted: usize,
    pub kendo_duplicates: usize,
    pub kendo_429: u64,
    pub kendo_requests: u64,
    pub scores: u64,
    /// HubSpot calls carrying `Kendo Sent`, and those carrying `Kendo AI
    /// Score`, as the simulated HubSpot has them.
    pub hubspot_marked_sent: usize,
    pub hubspot_marked_scored: usize,
    pub missing: Vec<(String, String)>,
    pub elapsed: Duration,
    pub dir: PathBuf,
    /// The bridge's status page.
    pub page_url: String,
}

impl Summary {
    /// Whether the run met the bridge's promises.
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.kendo_duplicates == 0 && self.kendo_429 == 0
    }
}

/// The bridge and the simulators of a demo left running (`demo
/// --keep-serving`), so its status page can be looked at.
pub struct Kept {
    /// Kept for the simulators it owns: dropping it stops them.
    _stage: Stage,
    stop: watch::Sender<bool>,
    bridge: tokio::task::JoinHandle<Result<(), EngineError>>,
}

impl Kept {
    /// Serves until `signal` completes, then stops the bridge.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        let _ = self.stop.send(true);
        let _ = self.bridge.await;
    }
}

/// Runs the demonstration in `dir` and returns what happened.
pub async fn run(dir: &Path, plugin: Plugin, say: impl FnMut(&str)) -> Result<Summary, DemoError> {
    Ok(run_keeping(dir, plugin, say, false).await?.0)
}

/// [`run`]; with `keep`, the bridge and the simulators are left running
/// afterwards (see [`Kept`]).
pub async fn run_keeping(
    dir: &Path,
    plugin: Plugin,
    mut say: impl FnMut(&str),
    keep: bool,
) -> Result<(Summary, Option<Kept>), DemoError> {
    let started = tokio::time::Instant::now();
    // The loop closed too: Kendo's answers written back to HubSpot calls.
    let options = StageOptions {
        hubspot_write_back: true,
        ..StageOptions::default()
    };
    let mut stage = Stage::start(Dataset::demo(7), dir, options.clone()).await?;
    say(&format!(
        "simulated Salesloft {}, HubSpot {}, Kendo {}; time runs x{} (Kendo's 30 requests per minute = 30 per {} ms)",
        stage.sims.salesloft_url(),
        stage.sims.hubspot_url(),
        stage.sims.kendo_url(),
        options.time_scale,
        (60_000.0 / options.time_scale) as u64
    ));
    let engine = stage.engine(plugin)?;
    let store = engine.ctx.store.clone();
    let listener = stage.listener.take().ok_or_else(|| DemoError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other("listener already taken"),
    })?;
    let (stop, stopped) = watch::channel(false);
    let bridge = tokio::spawn(engine.serve(listener, stopped));
    say(&format!(
        "bridge listening on {} (state in {})",
        stage.bridge_url,
        dir.display()
    ));

    // Webhooks arrive while the pollers read the same calls: the double
    // path the ledger must de-duplicate.
    let deliveries = stage.deliver_aloware().await;
    let refused = deliveries
        .iter()
        .filter(|d| !matches!(d, Ok(200..=299)))
        .count();
    say(&format!(
        "delivered {} Aloware webhooks ({} not accepted)",
        deliveries.len(),
        refused
    ));
    let salesloft_ids: Vec<u64> = stage
        .dataset
        .salesloft_calls
        .iter()
        .map(|c| c.id)
        .take(6)
        .collect();
    for id in &salesloft_ids {
        let _ = stage
            .sims
            .salesloft
            .send_webhook(
                &stage.webhook_url("salesloft"),
                SALESLOFT_CALLBACK_TOKEN,
                "call_updated",
                *id,
            )
            .await;
    }
    let hubspot_ids: Vec<u64> = stage
        .dataset
        .hubspot_calls
        .iter()
        .map(|c| c.id)
        .take(4)
        .collect();
    let _ = stage
        .sims
        .hubspot
        .send_webhook_v3(
            &stage.webhook_url("hubspot"),
            HUBSPOT_CLIENT_SECRET,
            &hubspot_ids,
        )
        .await;
    say(&format!(
        "sent Salesloft webhooks for {} calls and a HubSpot webhook for {} calls the pollers also read",
        salesloft_ids.len(),
        hubspot_ids.len()
    ));

    // Later in the day: recordings finish processing, calls in progress end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stage.dataset.apply_later(&stage.sims)?;
    say("recordings finished processing and calls in progress ended at the sources");

    let deadline = started + Duration::from_secs(45);
    while !stage.all_expected_sent() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Kendo scores the calls and reports back through its signed webhook.
    let accepted = stage.sims.kendo.accepted();
    let mut scores = 0;
    for (i, call) in accepted.iter().enumerate() {
        let event = stage
            .sims
            .kendo
            .call_uploaded_event(call, 60 + (i as u32 * 7) % 40);
        if stage
            .sims
            .kendo
            .send_webhook(&stage.webhook_url("kendo"), KENDO_WEBHOOK_SECRET, &event)
            .await
            .delivered
        {
            scores += 1;
        }
    }
    // Let the inbox processor record the scores, and the write-backs reach
    // HubSpot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let write_back_deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < write_back_deadline
        && store
            .run(|s| Ok(write_back::counts(s.database())?))
            .await?
            .iter()
            .any(|c| c.pending > 0)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let running = if keep {
        Some((stop, bridge))
    } else {
        let _ = stop.send(true);
        let _ = bridge.await;
        None
    };

    let rows = store
        .run(|s| Ok(report::recent(s.database(), &[], false, 100_000)?))
        .await?;
    let mut per_source: BTreeMap<String, SourceLine> = BTreeMap::new();
    let mut suppressed = 0;
    for r in &rows {
        let line = per_source.entry(r.key.source.clone()).or_default();
        line.seen += 1;
        suppressed += u64::from(r.seen_count.saturating_sub(1));
        match r.state {
            State::Sent => line.sent += 1,
            State::Skipped => line.skipped += 1,
            State::Waiting => line.waiting += 1,
            State::Failed | State::Dead | State::OutcomeUnknown => line.failed += 1,
            State::Queued | State::Sending => {}
        }
    }
    let skip_reasons = store
        .run(|s| Ok(report::reasons(s.database(), State::Skipped)?))
        .await?;
    let wait_reasons = store
        .run(|s| Ok(report::reasons(s.database(), State::Waiting)?))
        .await?;
    let stats = stage.sims.kendo.stats();
    let summary = Summary {
        per_source,
        skip_reasons,
        wait_reasons,
        suppressed,
        kendo_accepted: accepted.len(),
        kendo_duplicates: stage.sims.kendo.duplicates().len(),
        kendo_429: stats.rate_limited_429,
        kendo_requests: stats.requests,
        scores,
        hubspot_marked_sent: hubspot_marked(&stage, "kendo_sent"),
        hubspot_marked_scored: hubspot_marked(&stage, "kendo_ai_score"),
        missing: stage.missing(),
        elapsed: started.elapsed(),
        dir: dir.to_path_buf(),
        page_url: format!("{}/", stage.bridge_url),
    };
    let kept = running.map(|(stop, bridge)| Kept {
        _stage: stage,
        stop,
        bridge,
    });
    Ok((summary, kept))
}

/// How many of the data set's HubSpot calls carry `property` in the
/// simulated HubSpot.
fn hubspot_marked(stage: &Stage, property: &str) -> usize {
    stage
        .dataset
        .hubspot_calls
        .iter()
        .filter_map(|c| stage.sims.hubspot.call(c.id))
        .filter(|c| c.properties.contains_key(property))
        .count()
}

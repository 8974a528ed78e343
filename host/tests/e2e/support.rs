//! Shared by the `e2e_*` tests: the bridge running against the simulators
//! (in this process, or as the built binary), the operator commands, webhook
//! signing for requests the simulators never send, and waiting for a
//! condition instead of sleeping.

// Each test module uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use kendo_bridge::demo::{Stage, StageOptions};
use kendo_bridge::engine::EngineError;
use kendo_bridge::plugin::Plugin;
use kendo_bridge::store::{LedgerRow, SharedStore};
use kendo_bridge_core::ledger::report;
use kendo_bridge_sim::Dataset;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The team the simulated Kendo key belongs to.
pub const TEAM: &str = kendo_bridge_sim::DEMO_KENDO_TEAM;
/// The simulated Kendo key.
pub const KEY: &str = kendo_bridge_sim::DEMO_KENDO_KEY;

/// How long any condition may take before the test fails. Generous: the
/// machine is shared, and a slow pass is not a wrong one.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The bridge (`Engine::serve`) running in this process against staged
/// simulators, with its state in a temporary directory of its own.
pub struct Running {
    pub stage: Stage,
    pub store: SharedStore,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), EngineError>>>,
    // Last: the directory outlives everything that writes into it.
    pub dir: tempfile::TempDir,
}

impl Running {
    /// Stages `dataset` and starts serving: pollers (unless
    /// `options.poll_interval` is zero), webhook server, inbox and workers.
    pub async fn start(dataset: Dataset, options: StageOptions) -> Running {
        let (dir, stage) = staged(dataset, options).await;
        Running::serve(dir, stage)
    }

    /// Starts serving a stage already set up (faults queued in the
    /// simulators, say).
    pub fn serve(dir: tempfile::TempDir, stage: Stage) -> Running {
        let plugin = Plugin::embedded().expect("the embedded plugin loads");
        Running::serve_with(dir, stage, plugin)
    }

    /// Starts serving a stage with `plugin` (a team's mapper composed in,
    /// say) instead of the built-in one.
    pub fn serve_with(dir: tempfile::TempDir, mut stage: Stage, plugin: Plugin) -> Running {
        let engine = stage
            .engine(plugin)
            .expect("the engine opens on the staged configuration");
        let store = engine.ctx.store.clone();
        let listener = stage.listener.take().expect("the stage's listener");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(engine.serve(listener, stopped));
        Running {
            stage,
            store,
            stop,
            task: Some(task),
            dir,
        }
    }

    /// The state database.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("kendo-bridge.db")
    }

    /// Every ledger row.
    pub fn ledger(&self) -> Vec<LedgerRow> {
        self.store
            .run_here(|s| Ok(report::recent(s.database(), &[], false, 100_000)?))
            .expect("the ledger reads")
    }

    /// One call's ledger row, if the bridge has seen it.
    pub fn row(&self, source: &str, id: &str) -> Option<LedgerRow> {
        self.store
            .run_here(|s| Ok(report::call(s.database(), source, id)?))
            .expect("the ledger reads")
            .into_iter()
            .next()
    }

    /// A counter of the state database (0 when never bumped).
    pub fn counter(&self, scope: &str, name: &str) -> i64 {
        self.store
            .run_here(|s| Ok(report::counter(s.database(), scope, name)?))
            .expect("the counters read")
    }

    /// Stops serving and hands back the directory and the stage (with a
    /// fresh listening socket), to serve again on the same state.
    pub async fn stop_keeping_stage(mut self) -> (tempfile::TempDir, Stage) {
        self.end().await;
        let Running { mut stage, dir, .. } = self;
        stage.listener = Some(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a new listening socket"),
        );
        (dir, stage)
    }

    /// Stops serving and checks the engine ended cleanly.
    pub async fn stop(mut self) {
        self.end().await;
    }

    async fn end(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let ended = tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the engine stops when asked");
            ended
                .expect("the engine task did not panic")
                .expect("the engine ended without an error");
        }
    }
}

/// A temporary directory and a stage in it.
pub async fn staged(dataset: Dataset, options: StageOptions) -> (tempfile::TempDir, Stage) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stage = Stage::start(dataset, dir.path(), options)
        .await
        .expect("the simulators start");
    (dir, stage)
}

/// Waits until `check` holds, looking every 50 ms; fails the test after
/// [`PATIENCE`], naming what it waited for.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if check() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PATIENCE:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many requests a simulator log holds for paths starting with `prefix`.
pub fn count_paths<'a>(paths: impl IntoIterator<Item = &'a str>, prefix: &str) -> usize {
    paths.into_iter().filter(|p| p.starts_with(prefix)).count()
}

// ---- the binary ----------------------------------------------------------------

/// The built `kendo-bridge` with a clean environment: no plugin, config or
/// log level from the caller's shell, and a compiled-plugin cache shared by
/// the end-to-end tests.
pub fn kendo_bridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kendo-bridge"));
    command
        .env_remove("KENDO_BRIDGE_PLUGIN")
        .env_remove("KENDO_BRIDGE_CONFIG")
        .env_remove("RUST_LOG")
        .env(
            "KENDO_BRIDGE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kendo-bridge-e2e-cache"),
        )
        .stdin(Stdio::null());
    command
}

/// Runs an operator command to completion and returns its output, failing
/// the test (with both streams) when it does not exit 0.
pub fn operator(args: &[&str]) -> Output {
    let output = kendo_bridge()
        .args(args)
        .output()
        .expect("kendo-bridge starts");
    assert!(
        output.status.success(),
        "kendo-bridge {} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `kendo-bridge status --db DB --json`, parsed.
pub fn status_json(db: &Path) -> Value {
    let db = db.to_str().expect("a UTF-8 path");
    let output = operator(&["status", "--db", db, "--json"]);
    serde_json::from_slice(&output.stdout).expect("status --json prints JSON")
}

/// A team's entry in `status --json`.
pub fn team_status<'a>(status: &'a Value, team: &str) -> &'a Value {
    status["teams"]
        .as_array()
        .and_then(|teams| teams.iter().find(|t| t["team"] == team))
        .unwrap_or_else(|| panic!("status has no team `{team}`: {status:#}"))
}

/// A counter from `status --json` (0 when absent).
pub fn status_counter(status: &Value, scope: &str, name: &str) -> i64 {
    status["counters"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|c| c["scope"] == scope && c["name"] == name)
        })
        .and_then(|c| c["value"].as_i64())
        .unwrap_or(0)
}

/// Rows of the state database that a read-only query counts, read on a
/// connection of its own, as another process would.
pub fn sql_count(db: &Path, sql: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the state database opens read-only");
    conn.query_row(sql, [], |r| r.get(0))
        .expect("the count query runs")
}

// ---- signing ---------------------------------------------------------------------

/// Hex HMAC-SHA1, as Salesloft signs a delivery.
pub fn hmac_sha1_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// HMAC-SHA256 over the concatenated parts.
pub fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Base64 HMAC-SHA256, as HubSpot's v3 signature.
pub fn hmac_sha256_base64(key: &str, parts: &[&[u8]]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key, parts))
}

/// Epoch milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A client for the tests' own requests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

//! The host engine in this process: `Engine::open` on a configuration
//! written from the [`Setup`], its webhook server (the real router) on a
//! local socket, and each tick one pass of what its background tasks do,
//! run here in order so that nothing happens between a scenario's steps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kendo_bridge::clock::Clock;
use kendo_bridge::config::BridgeConfig;
use kendo_bridge::delivery::Step;
use kendo_bridge::engine::Engine;
use kendo_bridge::plugin::Plugin;
use kendo_bridge::server;
use kendo_bridge_sim::{DEMO_KENDO_KEY, DEMO_SALESLOFT_KEY, SimOptions, Simulators};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{Answer, Driver, Operator, PluginChoice, Sender, Setup, Status, TEAM, Webhook};

/// The host bridge under test.
pub struct HostDriver {
    sims: Simulators,
    setup: Setup,
    engine: Engine,
    url: String,
    client: reqwest::Client,
    shift: &'static AtomicI64,
    server: JoinHandle<()>,
    gate: Option<Gate>,
    db: PathBuf,
    // Last: the directory outlives the database in it.
    _dir: tempfile::TempDir,
}

impl Drop for HostDriver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl HostDriver {
    /// Every ledger and outbox statement the host's own operator commands
    /// use, on this bridge's store.
    fn store(&self) -> &kendo_bridge::store::SharedStore {
        &self.engine.ctx.store
    }

    /// What the bridge does once a webhook is answered: its stored
    /// deliveries processed and what that queued sent (the inbox task and
    /// the delivery worker, run here).
    async fn after_delivery(&mut self) -> Result<(), String> {
        kendo_bridge::inbox::process_inbox(&self.engine.ctx, &self.engine.sources, || false)
            .await
            .map_err(|e| format!("the inbox: {e}"))?;
        self.send_due().await
    }

    /// Every send due now, paced: a send the key's pacing holds waits for
    /// the next tick, as on Spin (`tick_seconds = 0`).
    async fn send_due(&mut self) -> Result<(), String> {
        for team in self.engine.teams.clone() {
            let mut worker = self
                .engine
                .worker(&team)
                .await
                .map_err(|e| format!("a worker: {e}"))?;
            // Pace, Idle and Paused all mean: nothing more now.
            while let Step::Sent(_) = worker.step().await.map_err(|e| format!("a send: {e}"))? {}
        }
        Ok(())
    }
}

impl Driver for HostDriver {
    const NAME: &'static str = "host";

    async fn start(setup: Setup) -> HostDriver {
        let sims = Simulators::start(SimOptions {
            hubspot_search_lag: if setup.hubspot_search_now {
                Duration::ZERO
            } else {
                SimOptions::default().hubspot_search_lag
            },
            ..SimOptions::default()
        })
        .await
        .expect("the simulators start");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let gate = if setup.kendo_gate {
            Some(Gate::open(sims.kendo.addr()).await)
        } else {
            None
        };
        let kendo_url = match &gate {
            Some(g) => format!("http://{}", g.addr),
            None => sims.kendo_url(),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a socket for the webhooks");
        let addr = listener.local_addr().expect("the socket's address");
        let config_path = write_config(dir.path(), &setup, &sims, &kendo_url, addr);
        let config = BridgeConfig::load(&config_path).expect("the written configuration loads");
        let plugin = match setup.plugin {
            PluginChoice::BuiltIn => Plugin::embedded().expect("the embedded plugin loads"),
            PluginChoice::Trap => Plugin::with_mapper_file(&trap_mapper())
                .expect("the trap mapper plugs in (host build)"),
        };
        let shift: &'static AtomicI64 = Box::leak(Box::new(AtomicI64::new(0)));
        let clock = Clock::system().shifted(shift);
        let engine = Engine::open(config, plugin, clock).expect("the engine opens");
        // The webhook server, without the inbox task: a tick or a
        // delivery processes what it stored.
        let router =
            server::router(engine.ctx.clone(), Arc::new(Notify::new())).expect("the router builds");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        HostDriver {
            sims,
            setup,
            engine,
            url: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            shift,
            server,
            gate,
            db: dir.path().join("kendo-bridge.db"),
            _dir: dir,
        }
    }

    fn sims(&self) -> &Simulators {
        &self.sims
    }

    async fn try_deliver(&mut self, webhook: Webhook) -> Result<Answer, String> {
        let answer = self
            .post_raw(webhook.sender, webhook.headers, webhook.body)
            .await;
        self.after_delivery().await?;
        Ok(answer)
    }

    async fn post_raw(
        &mut self,
        sender: Sender,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self.client.post(format!("{}{}", self.url, sender.path()));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.expect("the bridge answers");
        Answer {
            status: response.status().as_u16(),
            body: response.text().await.unwrap_or_default(),
        }
    }

    async fn try_tick(&mut self) -> Result<(), String> {
        let ctx = self.engine.ctx.clone();
        let poll_salesloft = self.setup.salesloft.as_ref().is_some_and(|s| s.poll);
        let poll_hubspot = self.setup.hubspot.as_ref().is_some_and(|h| h.poll);
        if poll_salesloft && let Some(sl) = &self.engine.sources.salesloft {
            let cycle = sl.poll(|_| {}).await;
            ctx.poll_health("salesloft", &cycle)
                .await
                .map_err(|e| e.to_string())?;
        }
        if poll_hubspot && let Some(hs) = &self.engine.sources.hubspot {
            let cycle = hs.poll(|_| {}).await;
            ctx.poll_health("hubspot", &cycle)
                .await
                .map_err(|e| e.to_string())?;
        }
        kendo_bridge::inbox::process_inbox(&ctx, &self.engine.sources, || false)
            .await
            .map_err(|e| format!("the inbox: {e}"))?;
        if let Some(al) = &self.engine.sources.aloware {
            al.sweep()
                .await
                .map_err(|e| format!("aloware's sweep: {e}"))?;
        }
        // Write-backs before the sends, as a Spin tick orders them.
        if let Some(wb) = &self.engine.write_back {
            wb.pass().await.map_err(|e| format!("write-backs: {e}"))?;
        }
        self.send_due().await
    }

    fn advance(&mut self, by: Duration) {
        self.shift.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    fn now_ms(&self) -> i64 {
        self.engine.ctx.clock.now_ms()
    }

    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        crate::query_file(&self.db, sql).unwrap_or_else(|e| panic!("host: `{sql}`: {e}"))
    }

    fn execute(&self, sql: &str) {
        let conn = rusqlite::Connection::open(&self.db).expect("the host's database opens");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("a busy timeout");
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("host: `{sql}`: {e}"));
    }

    async fn status(&mut self) -> Status {
        let response = self
            .client
            .get(format!("{}/api/status", self.url))
            .send()
            .await
            .expect("the status page answers");
        let json: serde_json::Value = response.json().await.expect("/api/status is JSON");
        let status = &json["status"];
        let mut out = Status::default();
        for team in status["teams"].as_array().into_iter().flatten() {
            for (state, n) in team["states"].as_object().into_iter().flatten() {
                *out.states.entry(state.clone()).or_default() += n.as_i64().unwrap_or(0);
            }
        }
        for source in status["sources"].as_array().into_iter().flatten() {
            if let Some(problem) = source["problem"].as_str() {
                out.problems.push(format!(
                    "{} {}: {problem}",
                    source["source"].as_str().unwrap_or_default(),
                    source["topic"].as_str().unwrap_or_default()
                ));
            }
        }
        out
    }

    async fn operate(&mut self, op: Operator) {
        let now = self.now_ms();
        self.store()
            .run_here(|s| {
                crate::operate_on(s, &op, now);
                Ok(())
            })
            .expect("the store");
    }

    fn allow_kendo(&mut self, allowed: bool) {
        let gate = self
            .gate
            .as_mut()
            .expect("a scenario that refuses Kendo sets `kendo_gate`");
        gate.set(allowed);
    }
}

/// The trap plugin, as `host/build.rs` builds it.
fn trap_mapper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guest-trap/wasm32-wasip2/release/kendo_bridge_trap_guest.wasm")
}

/// `bridge.toml` for `setup`, with its secret files.
fn write_config(
    dir: &Path,
    setup: &Setup,
    sims: &Simulators,
    kendo_url: &str,
    addr: std::net::SocketAddr,
) -> PathBuf {
    let secret = |name: &str, value: &str| {
        let path = dir.join(format!("{name}.secret"));
        std::fs::write(&path, value).expect("a secret file");
        format!("{{ file = {:?} }}", path.display().to_string())
    };
    let mut config = format!(
        r#"state = {state:?}

[server]
listen = "{addr}"
public_url = "http://{addr}"
max_body_bytes = {max_body}

[kendo]
url = "{kendo_url}"
timeout = "{timeout}ms"
webhook_secret = {kendo_secret}

[[kendo.teams]]
name = "{TEAM}"
api_key = {kendo_key}

[aloware]
webhook_secret = {aloware_secret}
transcript_wait = "{transcript_wait}ms"

[rules]
min_duration_seconds = {min_duration}
"#,
        state = dir.join("kendo-bridge.db").display().to_string(),
        max_body = setup.max_body_bytes.unwrap_or(8 * 1024 * 1024),
        timeout = setup.kendo_timeout.as_millis(),
        kendo_secret = secret("kendo-webhook", crate::KENDO_SECRET),
        kendo_key = secret("kendo-key", DEMO_KENDO_KEY),
        aloware_secret = secret("aloware", crate::ALOWARE_SECRET),
        transcript_wait = setup.aloware_transcript_wait.as_millis(),
        min_duration = setup.min_duration_seconds,
    );
    for (key, email, name) in crate::REP_DIRECTORY {
        config.push_str(&format!(
            "\n[[reps]]\nkey = \"{key}\"\nemail = \"{email}\"\nname = \"{name}\"\n"
        ));
    }
    if let Some(sl) = &setup.salesloft {
        config.push_str(&format!(
            r#"
[salesloft]
api_url = "{url}"
api_key = {key}
webhook_secret = {hook}
transcripts = {transcripts}
direction_wait = "{wait}ms"
"#,
            url = sims.salesloft_url(),
            key = secret("salesloft-key", DEMO_SALESLOFT_KEY),
            hook = secret("salesloft-webhook", crate::SALESLOFT_SECRET),
            transcripts = sl.transcripts,
            wait = sl.direction_wait.as_millis(),
        ));
    }
    if let Some(hs) = &setup.hubspot {
        config.push_str(&format!(
            r#"
[hubspot]
api_url = "{url}"
token = {token}
webhook_secret = {hook}
signature = "auto"
transcripts = {transcripts}
write_back = {write_back}
"#,
            url = sims.hubspot_url(),
            token = secret("hubspot-token", &hs.token),
            hook = secret("hubspot-webhook", crate::HUBSPOT_SECRET),
            transcripts = hs.transcripts,
            write_back = hs.write_back,
        ));
    }
    let path = dir.join("bridge.toml");
    std::fs::write(&path, config).expect("bridge.toml");
    path
}

/// A local port in front of the simulated Kendo that forwards while
/// allowed and refuses connections (nothing listening) while not: the
/// host's nearest thing to Spin's `allowed_outbound_hosts` refusing a
/// request before it leaves (reqwest's connect error, `Unsent`).
struct Gate {
    addr: std::net::SocketAddr,
    target: std::net::SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Gate {
    async fn open(target: std::net::SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a socket for the gate");
        let addr = listener.local_addr().expect("the gate's address");
        Gate {
            addr,
            target,
            task: Some(tokio::spawn(forward(listener, target))),
        }
    }

    fn set(&mut self, allowed: bool) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if allowed {
            let listener = std::net::TcpListener::bind(self.addr)
                .and_then(|l| {
                    l.set_nonblocking(true)?;
                    TcpListener::from_std(l)
                })
                .expect("the gate's port again");
            self.task = Some(tokio::spawn(forward(listener, self.target)));
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Forwards each connection to `target`; aborted, it drops the listener
/// and every connection it forwards.
async fn forward(listener: TcpListener, target: std::net::SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

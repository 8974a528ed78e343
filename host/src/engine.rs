//! The sync engine: pollers, the webhook server, the inbox processor and
//! one delivery worker per Kendo key, in one process.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::{BridgeConfig, BridgeConfigError};
use crate::delivery::{DeliveryError, DeliveryPolicy, HttpTransport, TeamKey, Worker};
use crate::plugin::{Plugin, PluginError};
use crate::pool::PluginPool;
use crate::server;
use crate::sources::write_back::HubspotWriteBack;
use crate::sources::{Context, CycleReport, SourceError, Sources};
use crate::store::{SharedStore, Store, StoreError};

/// Why the engine could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] BridgeConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("the webhook server failed: {0}")]
    Server(std::io::Error),
}

/// An opened engine: configuration, state, plugin and sources, ready to
/// serve or to run one sync.
pub struct Engine {
    pub ctx: Context,
    pub sources: Sources,
    pub teams: Vec<TeamKey>,
    pub policy: DeliveryPolicy,
    transport: Arc<HttpTransport>,
    inbox_wake: Arc<Notify>,
    /// Writes Kendo's answers back to HubSpot calls (`hubspot.write_back`).
    pub write_back: Option<HubspotWriteBack>,
}

impl Engine {
    /// Opens the state database (recovering sends a crash left in flight),
    /// reads every key and secret, and sets up the enabled sources.
    pub fn open(config: BridgeConfig, plugin: Plugin, clock: Clock) -> Result<Engine, EngineError> {
        let mut store = Store::open(&config.state)?;
        kendo_bridge_core::ledger::connection::set_sync(store.database(), config.policy().sync)
            .map_err(crate::store::StoreError::from)?;
        if config
            .hubspot
            .as_ref()
            .is_some_and(|h| h.enabled && h.write_back)
        {
            store.set_write_back_sources(&[crate::sources::hubspot::SOURCE]);
        }
        let recovered = store.recover_in_flight(config.kendo.ambiguous_resends, clock.now_ms())?;
        crate::delivery::log_recovered(&recovered);
        let mut teams = Vec::new();
        for team in &config.kendo.teams {
            let api_key = team
                .api_key
                .resolve(&format!("kendo.teams `{}` api_key", team.name))?;
            teams.push(TeamKey {
                team: team.name.clone(),
                api_key,
            });
        }
        let http = http_client()?;
        let policy = DeliveryPolicy::from(&config.policy());
        let transport = Arc::new(HttpTransport::new(http.clone(), config.ingest_url()));
        let rules = config.directory.to_rules();
        let ctx = Context {
            config: Arc::new(config),
            store: SharedStore::new(store),
            plugin: PluginPool::new(plugin),
            clock,
            http,
            rules,
            wake: Arc::new(Notify::new()),
        };
        let sources = Sources::new(&ctx)?;
        let write_back = HubspotWriteBack::new(&ctx)?;
        Ok(Engine {
            ctx,
            sources,
            teams,
            policy,
            transport,
            inbox_wake: Arc::new(Notify::new()),
            write_back,
        })
    }

    /// The sources set up as `serve` sets them up, on a private in-memory
    /// store: what `doctor` probes with, so a check never touches the state
    /// a running bridge uses (no recovery, no counters, no caches).
    pub fn probe(
        config: BridgeConfig,
        plugin: Plugin,
        clock: Clock,
    ) -> Result<(Context, Sources), EngineError> {
        let rules = config.directory.to_rules();
        let ctx = Context {
            config: Arc::new(config),
            store: SharedStore::new(Store::open_in_memory()?),
            plugin: PluginPool::new(plugin),
            clock,
            http: http_client()?,
            rules,
            wake: Arc::new(Notify::new()),
        };
        let sources = Sources::new(&ctx)?;
        Ok((ctx, sources))
    }

    /// A delivery worker for one team.
    pub async fn worker(&self, team: &TeamKey) -> Result<Worker<HttpTransport>, EngineError> {
        Ok(Worker::new(
            team.clone(),
            self.policy.clone(),
            self.ctx.store.clone(),
            self.ctx.plugin.clone(),
            self.transport.clone(),
            self.ctx.clock,
            self.ctx.wake.clone(),
        )
        .await?)
    }

    /// Runs everything until `shutdown` turns true: the webhook server on
    /// `listener`, the pollers, the inbox processor and the workers.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), EngineError> {
        self.sources.redecide_if_rules_changed(&self.ctx).await?;
        let mut tasks: JoinSet<Result<(), EngineError>> = JoinSet::new();
        for team in &self.teams {
            let worker = self.worker(team).await?;
            let stop = shutdown.clone();
            tasks.spawn(async move { Ok(worker.run(stop).await?) });
        }
        if let Some(sl) = self.sources.salesloft.clone()
            && sl.can_poll()
        {
            let interval = self
                .ctx
                .config
                .salesloft
                .as_ref()
                .map_or(Duration::ZERO, |c| c.poll_interval);
            if !interval.is_zero() {
                let stop = shutdown.clone();
                tasks.spawn(poll_loop(
                    "salesloft",
                    self.ctx.clone(),
                    interval,
                    stop,
                    move || {
                        let sl = sl.clone();
                        async move { sl.poll(|_| {}).await }
                    },
                ));
            }
        }
        if let Some(hs) = self.sources.hubspot.clone()
            && hs.can_poll()
        {
            let interval = self
                .ctx
                .config
                .hubspot
                .as_ref()
                .map_or(Duration::ZERO, |c| c.poll_interval);
            if !interval.is_zero() {
                let stop = shutdown.clone();
                tasks.spawn(poll_loop(
                    "hubspot",
                    self.ctx.clone(),
                    interval,
                    stop,
                    move || {
                        let hs = hs.clone();
                        async move { hs.poll(|_| {}).await }
                    },
                ));
            }
        }
        // Write-backs run on their own: a slow or failing HubSpot never
        // holds up a Kendo send.
        if let Some(wb) = self.write_back.clone() {
            let stop = shutdown.clone();
            tasks.spawn(async move { Ok(wb.run(stop).await?) });
        }
        {
            let (ctx, sources, wake, stop) = (
                self.ctx.clone(),
                self.sources.clone(),
                self.inbox_wake.clone(),
                shutdown.clone(),
            );
            tasks
                .spawn(async move { Ok(crate::inbox::run_inbox(ctx, sources, wake, stop).await?) });
        }
        let app = server::router(self.ctx.clone(), self.inbox_wake.clone())?;
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .map_err(EngineError::Server)
        });
        // The first task to fail stops the process: a bridge that silently
        // lost its delivery worker would be worse than one that exits.
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(EngineError::Http(format!("a task panicked: {e}"))),
            }
        }
        Ok(())
    }

    /// One sync: poll each source once, process stored webhooks, then send
    /// everything due, paced, until nothing more is due within `wait`
    /// (retries scheduled later stay queued for the next run).
    pub async fn sync_once(
        &self,
        wait: Duration,
        mut on_event: impl FnMut(SyncEvent),
    ) -> Result<SyncReport, EngineError> {
        let mut report = SyncReport::default();
        // One failing source must not hold back the others, stored webhooks
        // or deliveries: its error is returned after everything else ran.
        let mut failed: Vec<SourceError> = Vec::new();
        self.sources.redecide_if_rules_changed(&self.ctx).await?;
        if let Some(sl) = &self.sources.salesloft
            && sl.can_poll()
        {
            let cycle = sl
                .poll(|c| on_event(SyncEvent::Polled("salesloft", *c)))
                .await;
            self.ctx.poll_health("salesloft", &cycle).await?;
            match cycle {
                Ok(cycle) => report.polled.push(("salesloft", cycle)),
                Err(e) => failed.push(e),
            }
        }
        if let Some(hs) = &self.sources.hubspot
            && hs.can_poll()
        {
            let cycle = hs
                .poll(|c| on_event(SyncEvent::Polled("hubspot", *c)))
                .await;
            self.ctx.poll_health("hubspot", &cycle).await?;
            match cycle {
                Ok(cycle) => report.polled.push(("hubspot", cycle)),
                Err(e) => failed.push(e),
            }
        }
        crate::inbox::process_inbox(&self.ctx, &self.sources, || false).await?;
        // Aloware calls whose wait for a transcript ended since the last
        // run go now, with their recording.
        if let Some(al) = &self.sources.aloware {
            al.sweep().await?;
        }
        self.deliver(wait, on_event).await?;
        // After the sends, so a failing HubSpot costs them nothing; its
        // problems show in `status` and the rest waits for the next run.
        if let Some(wb) = &self.write_back
            && let Err(e) = wb.drain(wait).await
        {
            failed.push(e);
        }
        match failed.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }

    /// Sends what is due for every team, paced, until nothing more is due
    /// within `wait` from now.
    pub async fn deliver(
        &self,
        wait: Duration,
        mut on_event: impl FnMut(SyncEvent),
    ) -> Result<(), EngineError> {
        let horizon = self.ctx.clock.now_ms() + wait.as_millis() as i64;
        for team in &self.teams {
            let mut worker = self.worker(team).await?;
            let name = team.team.clone();
            let end = worker
                .drain(horizon, |d| {
                    on_event(SyncEvent::Delivered(name.clone(), d.clone()))
                })
                .await?;
            if let crate::delivery::Step::Paused(reason) = end {
                on_event(SyncEvent::Paused(team.team.clone(), reason));
            }
        }
        Ok(())
    }
}

fn http_client() -> Result<reqwest::Client, EngineError> {
    reqwest::Client::builder()
        .user_agent(concat!("kendo-bridge/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| EngineError::Http(e.to_string()))
}

/// Progress of a sync, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum SyncEvent {
    Polled(&'static str, CycleReport),
    Delivered(String, crate::delivery::Delivered),
    Paused(String, String),
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub polled: Vec<(&'static str, CycleReport)>,
}

async fn poll_loop<F, Fut>(
    name: &'static str,
    ctx: Context,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    poll: F,
) -> Result<(), EngineError>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<CycleReport, SourceError>> + Send,
{
    loop {
        // A stop ends a cycle mid-way (a source request may be waiting out a
        // back-off of up to 32 s): every step of a cycle commits on its own
        // and the checkpoint moves only with the calls it covers, so the
        // next start reads the rest again.
        let outcome = tokio::select! {
            outcome = poll() => outcome,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        if let Err(e) = ctx.poll_health(name, &outcome).await {
            tracing::warn!(source = name, error = %e, "could not record the poll's health");
        }
        match outcome {
            Ok(cycle) => tracing::info!(
                source = name,
                pages = cycle.pages,
                records = cycle.records,
                queued = cycle.report.enqueued,
                updated = cycle.report.updated,
                duplicates = cycle.report.duplicates,
                skipped = cycle.report.skipped,
                waiting = cycle.report.waiting,
                failed = cycle.report.failed,
                "poll cycle done"
            ),
            // The checkpoint did not move: the next cycle reads the same
            // calls again.
            // Logged once, at warn, by `poll_health` when the problem is new.
            Err(e) => tracing::debug!(source = name, error = %e, "poll cycle failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
    }
}

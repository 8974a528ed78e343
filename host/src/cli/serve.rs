//! `kendo-bridge serve`: the long-running bridge.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Args;

use super::{Failure, Globals, ops};

const AFTER_HELP: &str = "\
Runs, in one process: the Salesloft and HubSpot pollers (every poll_interval), the webhook
server (/webhooks/salesloft, /webhooks/hubspot, /webhooks/aloware, /webhooks/kendo,
/healthz, and /metrics in Prometheus's text format), and one paced delivery worker per
Kendo team.

The status page is at the server's root, http://<listen>/ (e.g. http://127.0.0.1:8787/):
queues, counts by state with reasons, paused keys, checkpoints, source health, latest
errors, recent deliveries with Kendo callId and AI score, Kendo results and requests per
minute against the limit; it updates itself (GET /api/status gives the same as JSON). It
is read-only unless server.operator_token is set; then its Replay and Resume buttons ask
for that token. Nothing on it comes from the internet, and no secret is shown. Stop it with Ctrl-C or SIGTERM:
in-flight work is finished or left safely queued; a SIGKILL loses nothing either (a send
whose answer was lost is sent again and counted in `status`).

Examples:
  kendo-bridge serve --config bridge.toml
  KENDO_BRIDGE__SERVER__LISTEN=0.0.0.0:8787 kendo-bridge serve --config bridge.toml";

/// Run the bridge: pollers, webhook server and delivery workers.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ServeArgs {
    /// Listen here instead of `server.listen` from the configuration.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub fn run(globals: &Globals, args: ServeArgs) -> Result<(), Failure> {
    let engine = globals.engine()?;
    let listen = args.listen.unwrap_or(engine.ctx.config.server.listen);
    let rt = ops::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))
            .map_err(Failure::usage)?;
        let addr = listener.local_addr().unwrap_or(listen);
        eprintln!(
            "kendo-bridge listening on http://{addr} (status page http://{addr}/; teams: {}; state: {})",
            engine
                .teams
                .iter()
                .map(|t| t.team.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            engine.ctx.config.state.display()
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!("stopping: finishing in-flight work");
            let _ = stop.send(true);
        });
        engine
            .serve(listener, stopped)
            .await
            .map_err(|e| Failure::internal(e.into()))
    })
}

pub(super) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

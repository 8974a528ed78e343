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
for that token. Nothing on it comes from the internet, and no secret is shown.

Stop it with Ctrl-C or SIGTERM: it stops taking new work at once (stored webhook deliveries
not yet started stay stored), gives what is in flight up to server.shutdown_grace (10s by
default) to finish, abandons the rest and exits; everything not processed is taken up after
the restart. Give the supervisor a longer grace (systemd TimeoutStopSec,
Kubernetes terminationGracePeriodSeconds). A SIGKILL loses nothing either (a send whose
answer was lost is sent again and counted in `status`).

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
    let grace = engine.ctx.config.server.shutdown_grace;
    let rt = ops::runtime()?;
    let outcome = rt.block_on(async move {
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
        let mut signalled = stopped.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!(
                "stopping: no new work is taken; in-flight work has {:.1} s to finish",
                grace.as_secs_f64()
            );
            let _ = stop.send(true);
        });
        let serving = engine.serve(listener, stopped);
        let grace_over = async {
            let _ = signalled.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = serving => served.map_err(|e| Failure::internal(e.into())),
            () = grace_over => {
                // Dropping `serving` aborts every task: a send in flight is
                // taken up after its claim's lease, a delivery being
                // processed after the inbox's, by whichever process looks.
                eprintln!("stopping: the grace is over; work still in flight is abandoned and taken up after the restart");
                Ok(())
            }
        }
    });
    // A store write on a blocking thread finishes its transaction; nothing
    // else is waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    outcome
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

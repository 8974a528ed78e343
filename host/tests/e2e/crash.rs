//! The real binary killed with SIGKILL in the middle of a drain and started
//! again on the same state.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::{
    TEAM, eventually, kendo_bridge, operator, sql_count, staged, status_counter, status_json,
    team_status,
};
use kendo_bridge::demo::StageOptions;
use kendo_bridge_sim::Dataset;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `kendo-bridge serve` as a child process, killed if the test ends first;
/// its output is kept in a file and shown when the test fails.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(config: &Path, log: PathBuf) -> Serve {
        Serve::start_with(config, log, &[])
    }

    /// With settings overridden from the environment, as an operator would.
    fn start_with(config: &Path, log: PathBuf, env: &[(&str, &str)]) -> Serve {
        let out = File::create(&log).expect("the log file");
        let err = out.try_clone().expect("the log file, again");
        let child = kendo_bridge()
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "kendo_bridge=info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("kendo-bridge serve starts");
        Serve { child, log }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().expect("the bridge can be killed");
        self.child.wait().expect("the killed bridge is reaped");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {}\n{log}", self.log.display());
        }
    }
}

/// Source ids of the ledger rows marked in flight.
fn sending(db: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the state database opens read-only");
    let mut stmt = conn
        .prepare("SELECT source_id FROM ledger WHERE state = 'sending'")
        .expect("the query prepares");
    stmt.query_map([], |r| r.get(0))
        .expect("the query runs")
        .collect::<Result<_, _>>()
        .expect("the rows read")
}

/// The Salesloft checkpoint's lower bound, from `status --json`.
fn salesloft_checkpoint(status: &Value) -> OffsetDateTime {
    let cursor = status["checkpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["source"] == "salesloft"))
        .unwrap_or_else(|| panic!("no Salesloft checkpoint: {status:#}"));
    let bound = cursor["cursor"]["updated_since"]
        .as_str()
        .unwrap_or_else(|| panic!("a checkpoint without a bound: {cursor:#}"));
    OffsetDateTime::parse(bound, &Rfc3339).expect("the checkpoint is RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_killed_mid_drain_delivers_every_call_after_a_restart_and_counts_the_send_it_lost()
{
    let n = 120;
    // At x30 Kendo's 30 per minute is 30 per 2 s: the drain takes 8 s.
    let (dir, mut stage) = staged(Dataset::backlog(n, 11), StageOptions::default()).await;
    // The binary listens on the configured address itself.
    drop(stage.listener.take());
    let db = dir.path().join("kendo-bridge.db");
    let kendo = stage.sims.kendo.clone();
    let newest = stage
        .dataset
        .salesloft_calls
        .iter()
        .map(|c| c.updated_at)
        .max()
        .expect("a backlog");

    let first = Serve::start(&stage.config_path, dir.path().join("serve-1.log"));
    eventually("the bridge is draining the backlog", || {
        kendo.accepted().len() >= 30
    })
    .await;
    // Hold the answer to the next request well past the kill: Kendo creates
    // the call, the bridge never hears so.
    kendo.delay_next(1, Duration::from_secs(4));
    let mut lost = String::new();
    eventually(
        "a send is in flight whose call Kendo already created",
        || {
            let Ok([id]) = <[String; 1]>::try_from(sending(&db)) else {
                return false;
            };
            let held = kendo.accepted().iter().any(|c| {
                c.source_call_id().as_deref() == Some(id.as_str())
                    && c.arrived_at.elapsed() > Duration::from_millis(300)
            });
            if held {
                lost = id;
            }
            held
        },
    )
    .await;
    first.kill();

    let at_kill = status_json(&db);
    let sent_before = kendo.accepted().len();
    assert!(
        sent_before < n,
        "the kill landed mid-drain ({sent_before} of {n} accepted)"
    );
    assert_eq!(
        sending(&db),
        vec![lost.clone()],
        "the kill left exactly the held send in flight"
    );
    assert_eq!(
        salesloft_checkpoint(&at_kill),
        newest,
        "the checkpoint moved past every call read before the kill"
    );

    let second = Serve::start(&stage.config_path, dir.path().join("serve-2.log"));
    eventually("every backlog call reached Kendo after the restart", || {
        stage.missing().is_empty()
    })
    .await;
    eventually("the outbox is empty and nothing is in flight", || {
        sql_count(&db, "SELECT COUNT(*) FROM outbox") == 0 && sending(&db).is_empty()
    })
    .await;
    let after = status_json(&db);
    let flagged = operator(&[
        "deliveries",
        "--db",
        db.to_str().expect("a UTF-8 path"),
        "--maybe-duplicated",
        "--json",
    ]);
    drop(second);
    let log = std::fs::read_to_string(dir.path().join("serve-2.log")).expect("the second log");
    let recovery = log
        .lines()
        .find(|l| l.contains("the last run stopped while sending this call"))
        .unwrap_or_else(|| panic!("the restart logs the recovered send:\n{log}"));
    assert!(
        recovery.contains(&format!("source_id={lost}")) && recovery.contains("team="),
        "the line names the call and its team: {recovery}"
    );
    assert!(
        !log.contains(kendo_bridge_sim::DEMO_KENDO_KEY),
        "no log line carries the Kendo key"
    );

    let resent = status_counter(&after, TEAM, "resent_after_lost_answer");
    let duplicates = kendo.duplicates();
    assert_eq!(
        resent, 1,
        "the one send in flight at the kill was sent again and counted"
    );
    assert!(
        duplicates.len() as i64 <= resent,
        "{} duplicate(s) in Kendo but only {resent} counted: {duplicates:?}",
        duplicates.len()
    );
    for d in &duplicates {
        assert_eq!(
            d.source_call_id, lost,
            "only the send in flight at the kill is duplicated"
        );
    }
    assert_eq!(team_status(&after, TEAM)["states"]["sent"], n);
    let flagged: Value = serde_json::from_slice(&flagged.stdout).expect("deliveries prints JSON");
    let flagged = flagged.as_array().cloned().unwrap_or_default();
    assert_eq!(
        flagged.len(),
        1,
        "deliveries flags the send recovered after the kill: {flagged:#?}"
    );
    assert_eq!(flagged[0]["sourceId"], lost.as_str());
    assert_eq!(flagged[0]["maybeDuplicated"], true);
    assert_eq!(
        flagged[0]["kendoCallIds"].as_array().map(Vec::len),
        Some(1),
        "the callId the re-send got: {flagged:#?}"
    );
    assert_eq!(
        salesloft_checkpoint(&after),
        newest,
        "the restart did not move the checkpoint back"
    );
}

/// Stored, unprocessed Aloware deliveries, `n` calls of the fixture's
/// rep, inserted as `serve`'s webhook route stores them.
fn store_aloware_backlog(db: &Path, n: usize) {
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/aloware/recording-saved.json"),
    )
    .expect("the fixture reads");
    let store = kendo_bridge::store::Store::open(db).expect("the state database opens");
    for i in 0..n {
        let body = fixture.replace("cw_12345", &format!("cw_term_{i}"));
        kendo_bridge_core::ledger::inbox::insert(
            store.database(),
            "aloware",
            &format!("term-{i}"),
            None,
            body.as_bytes(),
            0,
        )
        .expect("the delivery is stored");
    }
}

/// SIGTERM stops taking stored deliveries at once and exits within the
/// grace, however large the backlog; what it did not process is processed
/// after the restart, each delivery once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_grace_and_the_backlog_is_processed_once_after_the_restart() {
    const N: usize = 2_000;
    const GRACE: Duration = Duration::from_secs(2);
    let options = StageOptions {
        poll_interval: Duration::ZERO,
        ..StageOptions::default()
    };
    let (dir, mut stage) = staged(Dataset::demo(7), options).await;
    drop(stage.listener.take());
    let db = dir.path().join("kendo-bridge.db");
    // The schema is made by the first open.
    store_aloware_backlog(&db, N);
    let unprocessed = || sql_count(&db, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL");
    assert_eq!(unprocessed(), N as i64);

    // The grace, shortened for the test.
    let serve = |log: &str| {
        Serve::start_with(
            &stage.config_path,
            dir.path().join(log),
            &[("KENDO_BRIDGE__SERVER__SHUTDOWN_GRACE", "2s")],
        )
    };

    let first = serve("serve-1.log");
    eventually("processing started", || unprocessed() < N as i64).await;
    let signalled = std::time::Instant::now();
    sigterm(&first);
    let exited = tokio::task::spawn_blocking(move || {
        let mut first = first;
        let status = first.child.wait().expect("the bridge is reaped");
        (first, status)
    });
    let (first, status) = tokio::time::timeout(GRACE + Duration::from_secs(8), exited)
        .await
        .expect("the bridge exited after SIGTERM")
        .expect("the waiting thread");
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < GRACE + Duration::from_secs(2),
        "exited {took:?} after SIGTERM"
    );
    let left = unprocessed();
    assert!(
        left > 0,
        "the whole backlog was processed before exiting: {took:?}"
    );
    drop(first);

    let second = serve("serve-2.log");
    eventually("the rest of the backlog was processed", || {
        unprocessed() == 0
    })
    .await;
    drop(second);
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(*) FROM inbox WHERE claims > 1 OR error IS NOT NULL"
        ),
        0,
        "no delivery taken twice or closed with an error"
    );
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(DISTINCT source_id) FROM ledger WHERE source = 'aloware' AND source_id LIKE 'cw_term_%'"
        ),
        N as i64,
        "each call recorded once"
    );
}

fn sigterm(serve: &Serve) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

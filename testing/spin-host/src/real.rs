//! The Spin app on a real Spin CLI (`spin up`), for the tests and the
//! benchmarks that only a real Spin can answer: `allowed_outbound_hosts`,
//! component dependencies, one SQLite file shared by several `spin up`
//! processes through a runtime config, answers sent before the handler
//! returns.
//!
//! The CLI is found as [`cli`] says; the app must be built (`./dev test`
//! and `./dev lint` build it, as `spin build` does).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::{Result, bail, format_err};

use crate::Answer;

/// The repository's root (where spin.toml is).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Spin CLI to run: `SPIN_BIN`, else `target/spin-cli` (where
/// `./dev test` unpacks the one in `../shared/tools/spin/`), else `spin`
/// on `PATH`. `Err` says why there is none.
pub fn cli() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("SPIN_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("SPIN_BIN={} is not a file", bin.display()))
        };
    }
    let unpacked = root().join("target/spin-cli");
    if unpacked.is_file() {
        return Ok(unpacked);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("spin");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(
        "no Spin CLI: set SPIN_BIN, put `spin` on PATH, or unpack one to target/spin-cli \
         (./dev test does when ../shared/tools/spin/ has one)"
            .into(),
    )
}

/// A free port on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One `spin up` of the app, stopped when dropped.
pub struct RealSpin {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: PathBuf,
}

impl RealSpin {
    /// Starts `spin up` on the manifest `manifest` with its `default`
    /// SQLite database at `database` (several processes given the same
    /// file share it), state (logs) under `state_dir`, and these
    /// variables; waits until it answers `GET /healthz`.
    pub fn start(
        cli: &Path,
        manifest: &Path,
        database: &Path,
        state_dir: &Path,
        variables: &[(&str, &str)],
    ) -> Result<RealSpin> {
        std::fs::create_dir_all(state_dir)?;
        let runtime_config = state_dir.join("runtime-config.toml");
        std::fs::write(
            &runtime_config,
            format!(
                "[sqlite_database.default]\ntype = \"spin\"\npath = {:?}\n",
                database.display().to_string()
            ),
        )?;
        let port = free_port()?;
        let log = state_dir.join("spin-up.log");
        let out = std::fs::File::create(&log)?;
        let mut command = Command::new(cli);
        command
            .arg("up")
            .arg("--from")
            .arg(manifest)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-config-file")
            .arg(&runtime_config)
            .arg("--state-dir")
            .arg(state_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // `spin up` runs the app in a child process (`spin trigger http`):
        // its own process group lets drop stop both, where killing `spin
        // up` alone leaves the trigger running, orphaned.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        for (name, value) in variables {
            command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        let child = command
            .spawn()
            .map_err(|e| format_err!("cannot run {}: {e}", cli.display()))?;
        let mut spin = RealSpin {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        spin.wait_until_up(Duration::from_secs(60))?;
        Ok(spin)
    }

    fn wait_until_up(&mut self, within: Duration) -> Result<()> {
        let started = Instant::now();
        let address = self.url.trim_start_matches("http://").to_string();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "spin up exited ({status}) before it answered:\n{}",
                    self.log_text()
                );
            }
            if std::net::TcpStream::connect(&address).is_ok() {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!(
                    "spin up did not listen within {within:?}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The `spin up` process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What `spin up` printed (its own lines and the component's logs).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request to the app, on a fresh connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Answer> {
        request(&self.url, method, path, headers, body.into()).await
    }
}

impl Drop for RealSpin {
    fn drop(&mut self) {
        // The whole group: `spin up` and its trigger process.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `method url+path` with `headers` and `body` over HTTP/1.1.
pub async fn request(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer> {
    let address = url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", address);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender.send_request(builder.body(Full::new(body))?).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
